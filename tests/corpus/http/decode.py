#!/usr/bin/env python3
"""Loader and checker for the end-to-end HTTP request corpus (see README.md).

    from decode import load_case
    case = load_case("tests/corpus/http/001-get-simple.txt")
    # {'expect': 200, 'expect_next': None, 'forwarded': True,
    #  'description': '...', 'data': b'GET / HTTP/1.1\\r\\n...', 'name': '001-get-simple'}

Run as a script, it validates every case file in this directory (or the
files and directories given as arguments) and exits 1 if any is malformed.
"""
import os
import re
import sys

NAME_RE = re.compile(r"^(\d{3})-[a-z0-9][a-z0-9-]*\.txt$")
SIMPLE_ESCAPES = {"r": 0x0D, "n": 0x0A, "t": 0x09, "0": 0x00, "\\": 0x5C}
HEX = "0123456789abcdefABCDEF"


class CaseError(ValueError):
    """A case file that does not follow the format."""


def decode_data(text, where="data"):
    """Decodes the escaped request bytes. Literal newlines are ignored; every
    other byte must be printable ASCII (space included) or an escape."""
    out = bytearray()
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            i += 1
            continue
        if c == "\\":
            if i + 1 >= n:
                raise CaseError("%s: backslash at the end" % where)
            e = text[i + 1]
            if e in SIMPLE_ESCAPES:
                out.append(SIMPLE_ESCAPES[e])
                i += 2
                continue
            if e == "x":
                h = text[i + 2 : i + 4]
                if len(h) != 2 or h[0] not in HEX or h[1] not in HEX:
                    raise CaseError("%s: bad \\x escape %r" % (where, text[i : i + 4]))
                out.append(int(h, 16))
                i += 4
                continue
            raise CaseError("%s: unknown escape \\%s" % (where, e))
        o = ord(c)
        if o < 0x20 or o > 0x7E:
            raise CaseError(
                "%s: literal byte 0x%02x at offset %d must be written as an escape" % (where, o, i)
            )
        out.append(o)
        i += 1
    return bytes(out)


def _status(value, key, path):
    if not re.fullmatch(r"[1-5]\d\d", value):
        raise CaseError("%s: %s: expected a 3-digit status, got %r" % (path, key, value))
    return int(value)


def load_case(path):
    """Parses one case file; raises CaseError when it is malformed."""
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as e:
        raise CaseError("%s: non-ASCII byte at offset %d (use \\xHH)" % (path, e.start))
    if "\r" in text:
        raise CaseError("%s: literal CR in the file (use \\r)" % path)
    head, sep, body = text.partition("\n\n")
    if not sep:
        raise CaseError("%s: no blank line between the header lines and the request" % path)
    case = {"expect": None, "expect_next": None, "forwarded": None, "description": None}
    seen = set()
    for lineno, line in enumerate(head.split("\n"), 1):
        where = "%s:%d" % (path, lineno)
        if line.startswith("#"):
            if case["description"] is None:
                case["description"] = line[1:].strip()
            continue
        key, colon, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if not colon or not key:
            raise CaseError("%s: expected 'key: value' or '# comment', got %r" % (where, line))
        if key in seen:
            raise CaseError("%s: duplicate key %r" % (where, key))
        seen.add(key)
        if key == "expect":
            case["expect"] = _status(value, key, where)
        elif key == "expect-next":
            case["expect_next"] = _status(value, key, where)
        elif key == "forwarded":
            if value not in ("yes", "no"):
                raise CaseError("%s: forwarded: expected yes or no, got %r" % (where, value))
            case["forwarded"] = value == "yes"
        else:
            raise CaseError("%s: unknown key %r" % (where, key))
    if case["expect"] is None:
        raise CaseError("%s: missing 'expect: STATUS'" % path)
    if not case["description"]:
        raise CaseError("%s: missing '# description' line" % path)
    if case["forwarded"] is None:
        case["forwarded"] = case["expect"] < 400
    case["data"] = decode_data(body, path)
    if not case["data"]:
        raise CaseError("%s: no request bytes" % path)
    case["name"] = os.path.basename(path)[: -len(".txt")] if path.endswith(".txt") else path
    return case


def case_files(paths):
    """The .txt case files among paths (directories are listed, sorted)."""
    for p in paths:
        if os.path.isdir(p):
            for name in sorted(os.listdir(p)):
                if name.endswith(".txt"):
                    yield os.path.join(p, name)
        else:
            yield p


def main(argv):
    paths = argv[1:] or [os.path.dirname(os.path.abspath(__file__))]
    errors, cases, numbers = [], [], {}
    for path in case_files(paths):
        name = os.path.basename(path)
        m = NAME_RE.match(name)
        if not m:
            errors.append("%s: file name must be NNN-short-name.txt" % path)
        elif m.group(1) in numbers:
            errors.append("%s: number %s already used by %s" % (path, m.group(1), numbers[m.group(1)]))
        else:
            numbers[m.group(1)] = name
        try:
            cases.append(load_case(path))
        except (CaseError, OSError) as e:
            errors.append(str(e))
    for e in errors:
        print("error: " + e, file=sys.stderr)
    ok = [c for c in cases if c["expect"] < 400]
    print(
        "%d cases: %d valid (2xx), %d refused, %d with a pipelined second request; %d errors"
        % (
            len(cases),
            len(ok),
            len(cases) - len(ok),
            sum(1 for c in cases if c["expect_next"] is not None),
            len(errors),
        )
    )
    return 1 if errors or not cases else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
