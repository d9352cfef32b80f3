#!/usr/bin/env bash
# The README's first command: installs what reseau needs, builds it on the
# default backend (libevent here) and runs the demo program.
set -euo pipefail
RS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$RS_ROOT"
bash scripts/install-deps.sh
if [ ! -f build/demo/build.ninja ]; then
    meson setup build/demo --wrap-mode=nodownload -Dtests=false >/dev/null
fi
ninja -C build/demo >/dev/null
./build/demo/examples/timers "$@"
