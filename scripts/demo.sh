#!/usr/bin/env bash
# The README's first command: installs what reseau needs, builds it on the
# default backend (libevent here) and runs the demo: the echo server from
# examples/ on a port the system picks, and the echo client sending it a
# message over loopback TCP.
set -euo pipefail
RS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$RS_ROOT"
bash scripts/install-deps.sh
if [ ! -f build/demo/build.ninja ]; then
    meson setup build/demo --wrap-mode=nodownload -Dtests=false >/dev/null
fi
ninja -C build/demo >/dev/null

out="$(mktemp)"
./build/demo/examples/echo_server --port 0 >"$out" 2>&1 &
server=$!
trap 'kill -INT $server 2>/dev/null; wait $server 2>/dev/null; rm -f "$out"' EXIT
for _ in $(seq 100); do
    grep -q listening "$out" && break
    sleep 0.05
done
cat "$out"
port="$(sed -n 's/.* port \([0-9]*\).*/\1/p' "$out" | head -n 1)"
./build/demo/examples/echo_client --port "$port" --message "${1:-hello from reseau}"
./build/demo/examples/timers --loops 2 --tasks 3
