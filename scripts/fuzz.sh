#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan, in build/fuzz) and runs
# one of them for a bounded time:
#   scripts/fuzz.sh TARGET SECONDS
# TARGET: fuzz_address, fuzz_options or fuzz_socket_sequence. The run starts
# from the committed seeds (fuzz/corpus/TARGET, never written to) and keeps
# what it learns in build/fuzz/corpus/TARGET; a crash, a sanitizer report or
# a hang (an input over 30 s) leaves its input in build/fuzz/artifacts/ and
# makes the script fail. Prints "fuzz TARGET: N executions in S s".
set -uo pipefail
RS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$RS_ROOT"

if [ $# -ne 2 ]; then
    echo "usage: $0 TARGET SECONDS" >&2
    exit 2
fi
target="$1"
seconds="$2"
dir=build/fuzz

if [ ! -f "$dir/build.ninja" ]; then
    CC=clang meson setup "$dir" --wrap-mode=nodownload -Dfuzz=true -Dtests=false \
        -Dexamples=false >/dev/null || exit 1
fi
ninja -C "$dir" "fuzz/$target" >/dev/null || exit 1

mkdir -p "$dir/corpus/$target" "$dir/artifacts"
log="$dir/$target.log"
"$dir/fuzz/$target" -max_total_time="$seconds" -timeout=30 -print_final_stats=1 \
    -artifact_prefix="$dir/artifacts/$target-" \
    "$dir/corpus/$target" "fuzz/corpus/$target" >"$log" 2>&1
rc=$?
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
time=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
if [ $rc -ne 0 ]; then
    tail -40 "$log"
    echo "fuzz $target: FAILED after ${runs:-?} executions (see $log and $dir/artifacts/)"
    exit 1
fi
echo "fuzz $target: ${runs:-?} executions in ${time:-$seconds} s, no finding"
