#!/usr/bin/env bash
# Builds and tests reseau on both backends, with warnings as errors:
#   1. libevent, native (with the install-and-consume check)
#   2. libevent, native, under ASan + UBSan
#   3. libevent, native, under TSan
#   4. iocp, cross-built with mingw-w64, run under Wine
#   5. libevent, cross-built with mingw-w64 (libevent from Debian's source
#      package, subprojects/libevent.wrap), run under Wine
# plus the API reference, valgrind memcheck on a subset of the plain native
# build, the IOCP examples under Wine against the native ones, the client
# torture suite against the examples (scripts/torture), benchmark smoke
# runs and each libFuzzer target for 60 s (clang, build/fuzz), then
# prints the summary of every step (scripts/summary.py). Installs what it
# needs first (scripts/install-deps.sh).
#
# Every step is recorded in build/steps.tsv and counted in the summary,
# whose last line, "reseau: N passed, N failed, N skipped", names the
# failing steps when there are any. Exit status: 0 only if every step passed.
#
# Timeouts: each wait inside a test is bounded by 20 s times
# RS_TEST_TIME_SCALE (default 1; set it higher on a slow machine); the
# valgrind step multiplies it, and meson's per-program timeouts, by
# RS_VALGRIND_SLOWDOWN (default 5).
set -uo pipefail
RS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export RS_ROOT
cd "$RS_ROOT"

bash scripts/install-deps.sh || exit 1

mkdir -p build
STEPS=build/steps.tsv
: >"$STEPS"

# record NAME EXIT_STATUS SOURCE: one line of the ledger. SOURCE is what the
# summary reads for the step's tests ("-": the step is one check).
record() {
    local status=pass
    [ "$2" -eq 0 ] || status=fail
    printf '%s\t%s\t%s\n' "$1" "$status" "$3" >>"$STEPS"
}

# step NAME COMMAND...: runs COMMAND as one check.
# step NAME --log FILE COMMAND...: also copies its output to FILE, whose
# CMocka-style lines ("[ RUN      ] test_x", "[       OK ] test_x") the
# summary counts one by one.
# Another check is one line here, e.g.
#   step torture --log build/torture.log python3 scripts/torture/run.py
step() {
    local name="$1" log=- rc
    shift
    if [ "${1:-}" = --log ]; then
        log="$2"
        shift 2
    fi
    echo "=== $name ==="
    if [ "$log" = - ]; then
        "$@"
        rc=$?
    else
        rm -f "$log"
        "$@" 2>&1 | tee "$log"
        rc=${PIPESTATUS[0]}
    fi
    record "$name" "$rc" "$log"
}

# run NAME MESON_SETUP_ARGS...: configures, builds and tests build/NAME.
run() {
    local name="$1"
    shift
    local dir="build/$name" rc=0
    echo "=== $name ==="
    # A log left by an earlier run must not stand in for this one.
    rm -f "$dir/meson-logs/testlog.json"
    if [ -f "$dir/build.ninja" ]; then
        meson setup --reconfigure "$dir" --wrap-mode=nodownload "$@" >/dev/null || rc=1
    else
        meson setup "$dir" --wrap-mode=nodownload "$@" >/dev/null || rc=1
    fi
    [ $rc -ne 0 ] || ninja -C "$dir" || rc=1
    [ $rc -ne 0 ] || meson test -C "$dir" --print-errorlogs --num-processes 1 || rc=1
    record "$name" $rc "$dir"
}

slowdown="${RS_VALGRIND_SLOWDOWN:-5}"
valgrind_scale="$(awk -v a="${RS_TEST_TIME_SCALE:-1}" -v b="$slowdown" 'BEGIN { print a * b }')"

run libevent -Dwerror=true
step docs ninja -C build/libevent docs
# Its own log name, so the summary reads the full run's log as well. Under
# memcheck everything runs many times slower: the waits inside the tests
# and meson's per-program timeouts are scaled up together.
echo "=== valgrind memcheck (plain native build, subset) ==="
rm -f build/libevent/meson-logs/valgrind-valgrind.json
RS_TEST_TIME_SCALE="$valgrind_scale" \
    meson test -C build/libevent --logbase valgrind --print-errorlogs --num-processes 1 \
    --timeout-multiplier "$slowdown" \
    --wrap='valgrind --error-exitcode=1 --leak-check=full' \
    event_loop socket socket_callbacks pipe alloc_failure harness ordering stress_smoke watch
record valgrind $? build/libevent/meson-logs/valgrind-valgrind.json
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    run libevent-asan -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false
TSAN_OPTIONS=halt_on_error=1 \
    run libevent-tsan -Dwerror=true -Db_sanitize=thread -Db_lundef=false

. scripts/wine-env.sh
wine_env_start
run iocp -Dwerror=true --cross-file cross/mingw-w64-x86_64.ini
step interop --log build/interop.log \
    python3 scripts/check-interop.py build/libevent/examples build/iocp/examples
# Hostile clients (resets, half-closes, clients that never read, slow readers,
# descriptor exhaustion, 1,000 connections) against the example servers.
step torture-native --log build/torture-native.log \
    python3 scripts/torture/torture.py build/libevent/examples
step torture-iocp --log build/torture-iocp.log \
    python3 scripts/torture/torture.py --wine build/iocp/examples
# The same shared suite on the libevent backend built for Windows: both
# backends on one system (docs/backends.md).
run libevent-win -Dwerror=true --cross-file cross/mingw-w64-x86_64.ini -Dio_backend=libevent
wine_env_stop

# The tool works; speed is not judged.
step bench-native bash scripts/bench-quick.sh native
step bench-iocp bash scripts/bench-quick.sh iocp

# Each libFuzzer target for 60 s (clang, ASan + UBSan).
for target in fuzz_address fuzz_options fuzz_socket_sequence; do
    step "$target" bash scripts/fuzz.sh "$target" 60
done

python3 scripts/summary.py libevent=build/libevent libevent-asan=build/libevent-asan \
    libevent-tsan=build/libevent-tsan iocp=build/iocp libevent-win=build/libevent-win \
    interop=build/interop.log \
    --steps "$STEPS" --markdown docs/conformance.md
