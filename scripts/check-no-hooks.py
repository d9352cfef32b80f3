#!/usr/bin/env python3
"""Checks with nm that libraries carry no fault hook of the test suite.

usage: check-no-hooks.py NM LIBRARY...

The fault hooks (common/test_hooks.h, common/test_hooks.c,
backends/iocp/iocp_faults.c) are compiled into the test build of the
library only. A hook symbol in a library, defined or referenced (a call site
left on an I/O path), fails the check and is printed. Exit status: 0 when no
library has one, 1 otherwise, 2 when nm cannot read a library.
"""
import re
import subprocess
import sys

# Every hook's name matches: the injecting side (inject, clear, the tests'
# setters, all named *_test_*) and the side the library consults (take, and
# the settings tests change).
HOOK = re.compile(r"\brs__\w*(_test_|fault_take|take_option_fault|take_collision|inject|"
                  r"clear_faults|skip_disallowed|read_places|forced_version|base_hidden)\w*")


def hook_symbols(nm, library):
    out = subprocess.run([nm, library], capture_output=True, text=True)
    if out.returncode != 0:
        print(f"{nm} {library} failed: {out.stderr.strip()}", file=sys.stderr)
        sys.exit(2)
    return sorted({m.group(0) for m in HOOK.finditer(out.stdout)})


def main():
    nm, libraries = sys.argv[1], sys.argv[2:]
    found = False
    for library in libraries:
        symbols = hook_symbols(nm, library)
        for symbol in symbols:
            print(f"{library}: test hook {symbol}")
        found = found or bool(symbols)
        if not symbols:
            print(f"{library}: no test hook")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
