#!/usr/bin/env bash
# Builds and tests reseau on both backends, with warnings as errors:
#   1. libevent, native
#   2. libevent, native, under ASan + UBSan
#   3. libevent, native, under TSan
#   4. iocp, cross-built with mingw-w64, run under Wine
# plus valgrind memcheck on a subset of the plain native build, the client
# torture suite against the examples (scripts/torture), and each
# libFuzzer target for 60 s (clang, build/fuzz), then prints the
# per-backend scenario summary. Installs what it needs first
# (scripts/install-deps.sh). Exit status: 0 only if every run passed.
set -uo pipefail
RS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export RS_ROOT
cd "$RS_ROOT"

bash scripts/install-deps.sh || exit 1

status=0
run() { # name, meson setup args...
    local name="$1"
    shift
    local dir="build/$name"
    echo "=== $name ==="
    if [ -f "$dir/build.ninja" ]; then
        meson setup --reconfigure "$dir" --wrap-mode=nodownload "$@" >/dev/null || { status=1; return; }
    else
        meson setup "$dir" --wrap-mode=nodownload "$@" >/dev/null || { status=1; return; }
    fi
    ninja -C "$dir" || { status=1; return; }
    meson test -C "$dir" --print-errorlogs --num-processes 1 || status=1
}

run libevent -Dwerror=true
echo "=== API reference (doxygen, undocumented symbols are errors) ==="
ninja -C build/libevent docs || status=1
# Its own log name, so the summary below still reads the full run's log.
echo "=== valgrind memcheck (plain native build, subset) ==="
meson test -C build/libevent --logbase valgrind --print-errorlogs --num-processes 1 \
    --wrap='valgrind --error-exitcode=1 --leak-check=full' \
    event_loop socket socket_callbacks pipe alloc_failure stress_smoke || status=1
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    run libevent-asan -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false
TSAN_OPTIONS=halt_on_error=1 \
    run libevent-tsan -Dwerror=true -Db_sanitize=thread -Db_lundef=false

. scripts/wine-env.sh
wine_env_start
run iocp -Dwerror=true --cross-file cross/mingw-w64-x86_64.ini
echo "=== interoperability: the IOCP examples under Wine with the native ones ==="
python3 scripts/check-interop.py build/libevent/examples build/iocp/examples \
    | tee build/interop.log || status=1

# Hostile clients (resets, half-closes, clients that never read, slow readers,
# descriptor exhaustion, 1,000 connections) against the example servers.
echo "=== torture: hostile clients against the examples, native and IOCP under Wine ==="
python3 scripts/torture/torture.py build/libevent/examples || status=1
python3 scripts/torture/torture.py --wine build/iocp/examples || status=1

wine_env_stop

echo "=== benchmark smoke runs (the tool works; speed is not judged) ==="
bash scripts/bench-quick.sh native || status=1
bash scripts/bench-quick.sh iocp || status=1

echo "=== fuzzing: each libFuzzer target for 60 s (clang, ASan + UBSan) ==="
for target in fuzz_address fuzz_options fuzz_socket_sequence; do
    bash scripts/fuzz.sh "$target" 60 || status=1
done

python3 scripts/summary.py libevent=build/libevent libevent-asan=build/libevent-asan \
    libevent-tsan=build/libevent-tsan iocp=build/iocp interop=build/interop.log \
    --markdown docs/conformance.md || status=1
exit $status
