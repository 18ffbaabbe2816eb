# Portcullis — plain GNU make + pkg-config.
#
#   make            build the gateway, the test build and the tools
#   make run        the gateway in front of the demo backend (conf/portcullis.yaml)
#   make test       unit, corpus, config and end-to-end tests (SANITIZE=1: under ASan+UBSan)
#   make fuzz       build the libFuzzer targets and run each for FUZZ_SECONDS
#   make bench      the load-test harness
#   make lint       clang-format check and cppcheck

CC ?= cc
SANITIZE ?=
FUZZ_SECONDS ?= 60
ifeq ($(SANITIZE),1)
BUILD ?= build/san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT := -O1
else
BUILD ?= build
SANFLAGS :=
OPT := -O2
endif

PKGS := libevent_core libevent_extra libevent_openssl libevent_pthreads openssl yaml-0.1 jansson libjwt hiredis libpcre2-8
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wformat=2 -Werror
CFLAGS ?= $(OPT) -g
# The shipped rule set, used when the configuration names none.
PC_RULES_DIR ?= $(CURDIR)/rules
ALL_CFLAGS = -std=gnu11 -D_GNU_SOURCE -pthread $(WARN) $(CFLAGS) $(SANFLAGS) $(PKG_CFLAGS) -MMD -MP \
  -DPC_LIBJWT_VERSION='"$(shell pkg-config --modversion libjwt 2>/dev/null)"' \
  -DPC_RULES_DIR='"$(PC_RULES_DIR)"'
LDLIBS_ALL = $(PKG_LIBS) -pthread $(SANFLAGS)

GW_SRCS := $(wildcard gateway/*.c gateway/filters/*.c)
GW_OBJS := $(GW_SRCS:%.c=$(BUILD)/obj/%.o)
GW_LIB_OBJS := $(filter-out $(BUILD)/obj/gateway/main.o,$(GW_OBJS))
# The test build: the same sources with test-only filters (-DPC_TESTING).
GWT_OBJS := $(GW_SRCS:%.c=$(BUILD)/objt/%.o)

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_NAMES := $(FUZZ_SRCS:tests/fuzz/fuzz_%.c=%)
REPLAY_BINS := $(FUZZ_NAMES:%=$(BUILD)/replay/%)

# Plugins: plugins/NAME.c -> $(BUILD)/plugins/NAME.so; test plugins
# tests/plugins/NAME.c -> $(BUILD)/plugins/test_NAME.so (for the tests only).
PLUGIN_SOS := $(patsubst plugins/%.c,$(BUILD)/plugins/%.so,$(wildcard plugins/*.c))
TEST_PLUGIN_SOS := $(patsubst tests/plugins/%.c,$(BUILD)/plugins/test_%.so,$(wildcard tests/plugins/*.c))
PLUGIN_CFLAGS = -std=gnu11 -D_GNU_SOURCE -fPIC -shared $(WARN) $(CFLAGS) $(SANFLAGS) -Igateway/include
# -z defs: a library the plugin forgot to link fails the build, not dlopen
# (not with the sanitizers, whose runtime only the executable carries)
PLUGIN_LDFLAGS = $(if $(SANFLAGS),,-Wl,-z,defs) $(shell pkg-config --libs libcrypto 2>/dev/null)

PYTEST := /usr/bin/python3 -m pytest

.PHONY: all deps test unit replay conftest waf e2e fuzz run bench lint clean
all: deps $(BUILD)/portcullis $(BUILD)/portcullis-test $(BUILD)/demo-upstream $(BUILD)/waf-check \
  $(PLUGIN_SOS)

deps:
	@scripts/deps.sh build

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/objt/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -DPC_TESTING -c $< -o $@

$(BUILD)/portcullis: $(GW_OBJS)
	$(CC) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/portcullis-test: $(GWT_OBJS)
	$(CC) -o $@ $^ $(LDLIBS_ALL)

# The allocation-failure build (tests/oom/alloc_fail.c, docs/internals/memory.md):
# the test build under ASan+UBSan whatever SANITIZE says, with the gateway's
# own calls to the allocator wrapped so that a test can make them fail.
OOM_BUILD := build/san
OOM_SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OOM_WRAP := $(foreach f,malloc calloc realloc strdup strndup,-Wl,--wrap=$(f))
OOM_OBJS := $(GW_SRCS:%.c=$(OOM_BUILD)/objt/%.o)
ifneq ($(BUILD),$(OOM_BUILD))
$(OOM_BUILD)/objt/%.o: SANFLAGS = $(OOM_SANFLAGS)
$(OOM_BUILD)/objt/%.o: OPT = -O1
$(OOM_BUILD)/objt/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -DPC_TESTING -c $< -o $@
endif
$(OOM_BUILD)/portcullis-oom: SANFLAGS = $(OOM_SANFLAGS)
$(OOM_BUILD)/portcullis-oom: OPT = -O1
$(OOM_BUILD)/portcullis-oom: tests/oom/alloc_fail.c $(OOM_OBJS)
	$(CC) $(ALL_CFLAGS) -DPC_TESTING -iquote gateway -o $@ $^ $(LDLIBS_ALL) $(OOM_WRAP)

$(BUILD)/demo-upstream: bench/upstream.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -D_GNU_SOURCE $(WARN) $(CFLAGS) $(SANFLAGS) -o $@ $< -pthread $(SANFLAGS)

$(BUILD)/plugins/%.so: plugins/%.c gateway/include/portcullis/plugin.h
	@mkdir -p $(dir $@)
	$(CC) $(PLUGIN_CFLAGS) -o $@ $< $(PLUGIN_LDFLAGS)

$(BUILD)/plugins/test_%.so: tests/plugins/%.c gateway/include/portcullis/plugin.h
	@mkdir -p $(dir $@)
	$(CC) $(PLUGIN_CFLAGS) -o $@ $< $(PLUGIN_LDFLAGS)

$(BUILD)/tests/test_%: tests/unit/test_%.c $(GW_LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -iquote gateway -iquote tests/unit -o $@ $^ $(LDLIBS_ALL)

# The WAF engine without a gateway, for rule tests (tests/waf/run).
$(BUILD)/waf-check: tests/waf/waf_check.c $(GW_LIB_OBJS)
	$(CC) $(ALL_CFLAGS) -iquote gateway -o $@ $^ $(LDLIBS_ALL)

# Each fuzz target linked with a plain main() that replays its corpus.
$(BUILD)/replay/%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c $(GW_LIB_OBJS) tests/fuzz/fuzz_common.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -iquote gateway -Igateway/include -o $@ $(filter %.c %.o,$(filter-out plugins/%,$^)) $(LDLIBS_ALL)

test: all
	@scripts/deps.sh test
	$(MAKE) --no-print-directory unit replay conftest waf e2e

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do $$t; done

replay: $(REPLAY_BINS)
	@set -e; for n in $(FUZZ_NAMES); do $(BUILD)/replay/$$n tests/fuzz/corpus/$$n; done

# The shipped rule set: every rule's cases, the corpora's rates (the floors
# catch a regression; bench/README.md has the figures) and the prefilter's
# equivalence.
waf: $(BUILD)/waf-check
	tests/waf/run rules --build $(BUILD)
	tests/waf/run corpus --build $(BUILD) --min-detect 97 --min-pass 99
	tests/waf/run same --build $(BUILD)

conftest: $(BUILD)/portcullis $(PLUGIN_SOS) $(TEST_PLUGIN_SOS)
	@tests/conf/run $(BUILD)/portcullis

e2e: $(BUILD)/portcullis $(BUILD)/portcullis-test $(BUILD)/demo-upstream $(PLUGIN_SOS) $(TEST_PLUGIN_SOS) \
  $(OOM_BUILD)/portcullis-oom
	PORTCULLIS_BUILD=$(BUILD) PORTCULLIS_OOM=$(OOM_BUILD)/portcullis-oom $(PYTEST) -q tests/e2e

FUZZ_CFLAGS = -std=gnu11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined $(PKG_CFLAGS) -iquote gateway \
  -Igateway/include
# fuzz_api_key.c and fuzz_webhook_hmac.c compile the plugin's source in (its parsers are static)
build/fuzz/api_key $(BUILD)/replay/api_key: plugins/api_key.c
build/fuzz/webhook_hmac $(BUILD)/replay/webhook_hmac: plugins/webhook_hmac.c
# The gateway's objects are built once for every target (make -j2 fuzz builds two at a time).
FUZZ_OBJS := $(patsubst %.c,build/fuzz/obj/%.o,$(filter-out gateway/main.c,$(GW_SRCS)))
FUZZ_BINS := $(FUZZ_NAMES:%=build/fuzz/%)
.SECONDARY: $(FUZZ_OBJS)
.PHONY: fuzz-deps
fuzz-deps: deps
	@scripts/deps.sh fuzz
build/fuzz/obj/%.o: %.c | fuzz-deps
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -MMD -MP -c $< -o $@
-include $(FUZZ_OBJS:.o=.d)
build/fuzz/%: tests/fuzz/fuzz_%.c $(FUZZ_OBJS) tests/fuzz/fuzz_common.h
	clang $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_OBJS) $(PKG_LIBS) -pthread
# Each target runs FUZZ_SECONDS on the seeds plus its growing corpus under
# build/fuzz; a crash fails the target and leaves the input in build/fuzz/.
fuzz: $(FUZZ_BINS)
	@set -e; for n in $(FUZZ_NAMES); do \
	  mkdir -p build/fuzz/corpus-$$n; \
	  echo "fuzz $$n for $(FUZZ_SECONDS)s"; \
	  dict=tests/fuzz/$$n.dict; [ -f $$dict ] || dict=tests/fuzz/http.dict; \
	  build/fuzz/$$n -max_total_time=$(FUZZ_SECONDS) -dict=$$dict -print_final_stats=1 \
	    -artifact_prefix=build/fuzz/$$n- build/fuzz/corpus-$$n tests/fuzz/corpus/$$n \
	    > build/fuzz/$$n.log 2>&1 || { tail -n 40 build/fuzz/$$n.log; exit 1; }; \
	  grep -E '^Done|number_of_executed_units' build/fuzz/$$n.log; \
	done

run: all
	@scripts/run-demo $(BUILD)

# make bench [COMPARE=1] [BENCH_ARGS="--scenarios passthrough --duration 10"]
bench: all
	@bench/run $(if $(COMPARE),--compare) $(BENCH_ARGS)

lint:
	@scripts/deps.sh lint
	clang-format --dry-run -Werror $(GW_SRCS) $(wildcard gateway/*.h gateway/filters/*.h bench/*.c) \
	  $(wildcard gateway/include/portcullis/*.h plugins/*.c tests/plugins/*.c)
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	  --suppress=missingIncludeSystem --inline-suppr -D__GNUC__ -Igateway -Igateway/include \
	  gateway plugins tests/plugins

clean:
	rm -rf build

-include $(GW_OBJS:.o=.d) $(GWT_OBJS:.o=.d) $(OOM_OBJS:.o=.d)
