#!/usr/bin/env python3
"""Writes reseau.wrap, meson's wrap file for a release tarball.

usage: make-wrap.py TARBALL URL [OUTPUT]

TARBALL is the release archive (`meson dist` makes reseau-VERSION.tar.xz),
URL where it is published. The wrap names the archive's top directory, its
file name and SHA-256, and provides the `reseau` dependency (reseau_dep), so
a project with this file in subprojects/ gets reseau from
`dependency('reseau')`. The same file is what a WrapDB release entry carries
for a project that builds with meson itself. Written to OUTPUT, or printed.
"""
import hashlib
import sys
import tarfile
from pathlib import Path

tarball, url = Path(sys.argv[1]), sys.argv[2]
with tarfile.open(tarball) as archive:
    tops = {Path(m.name).parts[0] for m in archive.getmembers() if m.name not in ("", ".")}
if len(tops) != 1:
    sys.exit(f"make-wrap: {tarball} must hold exactly one top directory, not {sorted(tops)}")
wrap = (Path(__file__).with_name("reseau.wrap.in").read_text()
        .replace("@DIRECTORY@", tops.pop())
        .replace("@URL@", url)
        .replace("@FILENAME@", tarball.name)
        .replace("@SHA256@", hashlib.sha256(tarball.read_bytes()).hexdigest()))
if len(sys.argv) > 3:
    Path(sys.argv[3]).write_text(wrap)
else:
    sys.stdout.write(wrap)
