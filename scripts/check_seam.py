#!/usr/bin/env python3
"""Checks that the backend uses nothing of common/ outside the seam.

    check_seam.py --nm NM --header common/backend.h [--sources ROOT] LIBRARY.a

The seam is common/backend.h (docs/backend-contract.md): the internal (rs__)
functions it declares, and nothing else. Every object of LIBRARY whose name
starts with "backends_" may use, of the symbols that the objects starting
with "common_" define, only those; and it may use no function of the public
API (rs_ with one underscore) wherever it is defined: a backend calls the
internal form that backend.h declares.

With --sources, it also reads the backends' C files under ROOT/backends and
fails on a write (=, op=, ++, --) to a field of a record common/ owns
(rs_socket, rs_event_loop, the pipe ends, the write requests, rs_watch) other than
those the header's "backend-writes:" lines give the backend. The record of
`x->a->field` is found from the type x was declared with last before the
write (a local or a parameter) and the declared types of the fields on the
way; where that cannot be told, a field that only common/ records have
counts as common/'s. NM lists the
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


# The records common/ owns, by the type names a backend declares them with.
COMMON_RECORDS = {
    "rs_socket": "rs_socket",
    "struct rs_socket": "rs_socket",
    "rs_event_loop": "rs_event_loop",
    "struct rs_event_loop": "rs_event_loop",
    "rs_pipe_read_end": "rs_pipe_read_end",
    "struct rs_pipe_read_end": "rs_pipe_read_end",
    "rs_pipe_write_end": "rs_pipe_write_end",
    "struct rs_pipe_write_end": "rs_pipe_write_end",
    "struct rs__socket_write": "rs__socket_write",
    "struct rs__pipe_write_req": "rs__pipe_write_req",
    "rs_watch": "rs_watch",
    "struct rs_watch": "rs_watch",
}


def strip_comments(text):
    """C text with comments and string literals blanked (lines kept)."""
    def blank(m):
        return re.sub(r"[^\n]", " ", m.group(0))
    return re.sub(r'/\*.*?\*/|//[^\n]*|"(?:\\.|[^"\\\n])*"', blank, text, flags=re.S)


def struct_fields(text):
    """{struct name: {field name: pointer type or None}} of the struct
    definitions in C text (nested members count as the outer struct's)."""
    fields = {}
    for m in re.finditer(r"\bstruct\s+(\w+)\s*\{", text):
        depth, i = 1, m.end()
        while depth and i < len(text):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        body = text[m.end():i - 1]
        names = fields.setdefault(m.group(1), {})
        for name in re.findall(r"(\w+)\s*(?:\[[^\]]*\])?\s*(?::\s*\d+)?\s*;", body):
            names.setdefault(name, None)
        for ty, name in re.findall(r"((?:struct\s+)?\w+)\s*\*\s*(\w+)\s*;", body):
            names[name] = record_name(ty)
    return fields


def record_name(type_name):
    """A struct's name from a type name: its common/ record, or the struct tag."""
    type_name = re.sub(r"\s+", " ", type_name)
    return COMMON_RECORDS.get(type_name, type_name.replace("struct ", ""))


def backend_writes(header_text):
    """{record: fields} from the header's "backend-writes:" lines."""
    allowed = {}
    for m in re.finditer(r"backend-writes:\s*([^\n]*)", header_text):
        for item in re.findall(r"\b(\w+)\.(\w+)\b", m.group(1)):
            allowed.setdefault(item[0], set()).add(item[1])
    return allowed


WRITE = re.compile(r"((?:\b\w+(?:->|\.))*)\b(\w+)(->|\.)(\w+)\s*(?:[-+*/|&^]?=(?!=)|\+\+|--)")


def receiver_type(code, pos, name):
    """The type name `name` was declared with last before pos, or None."""
    decl = re.compile(r"((?:struct\s+)?\w+)\s*\*\s*(?:const\s+)?" + re.escape(name) + r"\b\s*[=;,)\[]")
    found = None
    for m in decl.finditer(code, 0, pos):
        found = m.group(1)
    return re.sub(r"\s+", " ", found) if found else None


def field_writes(root, header_text):
    """The writes to common/'s fields in ROOT/backends, as messages."""
    import glob
    import os
    common_text = ""
    for path in sorted(glob.glob(os.path.join(root, "common", "*.h"))):
        with open(path, encoding="utf-8") as f:
            common_text += strip_comments(f.read())
    backend_text = {}
    for path in sorted(glob.glob(os.path.join(root, "backends", "*", "*.[ch]"))):
        with open(path, encoding="utf-8") as f:
            backend_text[path] = strip_comments(f.read())
    structs = struct_fields(common_text)
    for text in backend_text.values():
        for name, names in struct_fields(text).items():
            structs.setdefault(name, {}).update(names)
    records = sorted(set(COMMON_RECORDS.values()))
    common_fields = set()
    for record in records:
        common_fields |= set(structs.get(record, {}))
    own_fields = set()
    for name, names in structs.items():
        if name not in records:
            own_fields |= set(names)
    allowed = backend_writes(header_text)
    problems = []
    for path, code in backend_text.items():
        for m in WRITE.finditer(code):
            hops = re.findall(r"(\w+)(?:->|\.)", m.group(1) + m.group(2) + m.group(3))
            field = m.group(4)
            # The record the field belongs to: follow the declared types.
            ty = receiver_type(code, m.start(), hops[0])
            ty = record_name(ty) if ty else None
            for hop in hops[1:]:
                ty = structs.get(ty, {}).get(hop) if ty else None
            if ty is None and field in common_fields and field not in own_fields:
                ty = next((r for r in records if field in structs.get(r, {})), None)
            if ty not in records or field in allowed.get(ty, set()):
                continue
            line = code.count("\n", 0, m.start()) + 1
            rel = os.path.relpath(path, root)
            problems.append(f"{rel}:{line}: writes {ty}.{field}, which common/ owns")
    return problems


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
    parser.add_argument("--sources", help="the source tree, for the field-write check")
    parser.add_argument("library")
    args = parser.parse_args()
    with open(args.header, encoding="utf-8") as f:
        header_text = f.read()
    seam = seam_names(header_text)
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
    if args.sources:
        for problem in field_writes(args.sources, header_text):
            print(problem)
            bad += 1
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
