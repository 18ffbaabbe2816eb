#!/bin/sh
# deps.sh — installs the Debian 12 packages a make target needs, and only
# those that are missing. Usage: scripts/deps.sh build|test|lint|fuzz|bench|compare
# Runs apt-get non-interactively when root; otherwise prints what to install.
set -eu

build="gcc make pkg-config openssl libevent-dev libssl-dev libyaml-dev libjansson-dev libpcre2-dev libhiredis-dev libjwt-dev"
test="$build python3 python3-pytest python3-yaml redis-server curl openssl wrk"
lint="clang-format cppcheck"
fuzz="$build clang libclang-rt-14-dev"
bench="$build wrk curl openssl"
compare="$bench nginx haproxy libnginx-mod-http-modsecurity modsecurity-crs"

case "${1:-build}" in
build) want=$build ;;
test) want=$test ;;
lint) want=$lint ;;
fuzz) want=$fuzz ;;
bench) want=$bench ;;
compare) want=$compare ;;
*) echo "usage: $0 build|test|lint|fuzz|bench|compare" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "missing packages:$missing" >&2
    echo "install them with: sudo apt-get install -y$missing" >&2
    exit 1
fi
echo "installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
# policy-rc.d keeps packaged daemons (redis, nginx, haproxy) from starting:
# the tests and the bench start their own on ephemeral ports.
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get install -y -qq --no-install-recommends $missing >&2
