#!/usr/bin/env python3
"""Runs doxygen, then makes its man pages fit to install beside other libraries'.

usage: build-reference.py DOXYGEN DOXYFILE OUTPUT_DIR

Doxygen writes a page per header (socket.h.3), per struct and per function,
plus a link page per documented name, struct members included (port.3,
address.3). Installed in a shared man3 directory, the header pages and the
member links would take generic names that other packages use too, so the
header pages are renamed after their include path (reseau_socket.h.3) and
only the links for reseau's own names (rs_*, RS_*) are kept.
"""
import re
import shutil
import subprocess
import sys
from pathlib import Path

doxygen, doxyfile, output = sys.argv[1:4]
man3 = Path(output) / "man3"
# A page of a symbol since removed must not stay behind to be installed.
for stale in (man3, Path(output) / "html"):
    shutil.rmtree(stale, ignore_errors=True)
if subprocess.run([doxygen, doxyfile]).returncode != 0:
    sys.exit(1)

OWN = re.compile(r"^(rs_|RS_|reseau)")
renamed = {}
for page in sorted(man3.glob("*.h.3")):
    new = page.with_name("reseau_" + page.name)
    page.replace(new)
    renamed[page.name] = new.name

for page in sorted(man3.glob("*.3")):
    text = page.read_text()
    if not OWN.match(page.name):
        page.unlink()
        continue
    m = re.match(r"^\.so man3/(\S+)\s*$", text)
    if m and m.group(1) in renamed:
        page.write_text(f".so man3/{renamed[m.group(1)]}\n")
