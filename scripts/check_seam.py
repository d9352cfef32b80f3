#!/usr/bin/env python3
"""Checks that the backend uses nothing of common/ outside the seam.

    check_seam.py --nm NM --header common/backend.h LIBRARY.a

The seam is common/backend.h (docs/backend-contract.md): the internal (rs__)
functions it declares, and nothing else. Every object of LIBRARY whose name
starts with "backends_" may use, of the symbols that the objects starting
with "common_" define, only those; and it may use no function of the public
API (rs_ with one underscore) wherever it is defined: a backend calls the
internal form that backend.h declares. NM lists the
symbols (the nm of the build's target: the cross build's reads its COFF
objects). Exit status 1, with each offending object and symbol, on a
violation; 0 otherwise.
"""
import argparse
import re
import subprocess
import sys


def is_public(name):
    """A function of the public API: rs_ with one underscore."""
    return name.startswith("rs_") and not name.startswith("rs__")


def seam_names(header_text):
    """The internal function names declared in the header."""
    # Declarations: comments removed, an identifier followed by "(" at the
    # start of a declarator (after a type), not inside a macro body. A public
    # name there (a parameter type such as rs_task_fn) is no part of the seam.
    code = re.sub(r"/\*.*?\*/", " ", header_text, flags=re.S)
    code = re.sub(r"^\s*#.*$", " ", code, flags=re.M)
    return {n for n in re.findall(r"\b(rs_\w+)\s*\(", code) if not is_public(n)}


def symbols(nm, library):
    """{object: (defined, undefined)} from `nm -A -g`."""
    out = subprocess.run([nm, "-A", "-g", library], check=True, capture_output=True,
                         text=True).stdout
    table = {}
    for line in out.splitlines():
        # "lib.a:member.o:0000000000000000 T name" or "lib.a:member.o:  U name"
        m = re.match(r"(.*?):([^:]+):\s*(?:[0-9a-fA-F]+\s+)?([A-Za-z])\s+(\S+)$", line)
        if not m:
            continue
        member, kind, name = m.group(2), m.group(3), m.group(4)
        defined, undefined = table.setdefault(member, (set(), set()))
        (undefined if kind == "U" else defined).add(name)
    return table


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nm", default="nm")
    parser.add_argument("--header", required=True)
    parser.add_argument("library")
    args = parser.parse_args()
    with open(args.header, encoding="utf-8") as f:
        seam = seam_names(f.read())
    table = symbols(args.nm, args.library)
    common = set()
    own = set()
    for member, (defined, _) in table.items():
        if member.startswith("common_"):
            common |= defined
        elif member.startswith("backends_"):
            own |= defined
    backends = {m: u for m, (_, u) in table.items() if m.startswith("backends_")}
    if not common or not backends:
        print(f"check_seam: no common_ or backends_ objects in {args.library}", file=sys.stderr)
        return 1
    bad = 0
    for member in sorted(backends):
        public = {n for n in backends[member] if is_public(n) and n not in own}
        for name in sorted(public):
            print(f"{member}: calls {name} of the public API (use the internal form "
                  f"common/backend.h declares)")
            bad += 1
        for name in sorted((backends[member] & common) - seam - public):
            print(f"{member}: uses {name}, which common/backend.h does not offer")
            bad += 1
    if bad:
        print(f"check_seam: {bad} use(s) of common/ outside the seam")
        return 1
    print(f"check_seam: {len(backends)} backend objects use only the seam "
          f"({len(seam)} names)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
