#!/bin/sh
# Instructions (user space, valgrind --tool=callgrind) and system calls
# (strace -f -c) per operation, for reseau and each native peer. Both are
# differential: a run of N operations minus a run of 0 operations (same
# set-up and teardown), divided by N, so start-up costs cancel out. Unlike
# wall times these counts repeat from run to run on a shared machine.
#
#   scripts/bench-callgrind.sh [BUILD_DIR]
#
# BUILD_DIR defaults to build/bench-release (configured with
# --buildtype=release -Dbench=true if missing). Environment:
#   WORKLOADS  workloads to count (default "pingpong tasks timers")
#   IMPLS      implementations (default "reseau libevent libuv blocking")
#   N_pingpong, N_tasks, N_timers, ...  operations per workload
#   KEEP=1     keep the callgrind output files (for callgrind_annotate)
#   BENCH_ARGS extra reseau-bench arguments, e.g. "--conns 1000" for fanin
#              (whose --ops is the round trips of all connections together)
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build/bench-release}
workloads=${WORKLOADS:-pingpong tasks timers}
impls=${IMPLS:-reseau libevent libuv blocking}

if [ ! -x "$build/bench/reseau-bench" ]; then
    if [ ! -d "$build" ]; then
        meson setup "$build" "$root" --buildtype=release --wrap-mode=nodownload \
            -Dbench=true -Dtests=false -Dexamples=false >/dev/null
    fi
    ninja -C "$build" >/dev/null
fi
bench=$build/bench/reseau-bench
work=$(mktemp -d)
trap 'if [ "${KEEP:-0}" = 1 ]; then echo "callgrind files kept in $work" >&2; else rm -rf "$work"; fi' EXIT

ops_for() {
    case $1 in
    pingpong) echo "${N_pingpong:-20000}" ;;
    tasks) echo "${N_tasks:-200000}" ;;
    timers) echo "${N_timers:-100000}" ;;
    connect) echo "${N_connect:-2000}" ;;
    udp) echo "${N_udp:-20000}" ;;
    stream) echo "${N_stream:-2000}" ;; # 64 KiB chunks
    pipe) echo "${N_pipe:-2000}" ;;    # 64 KiB chunks
    fanin) echo "${N_fanin:-20000}" ;;
    *) echo "${N_other:-10000}" ;;
    esac
}

# Total instructions of one run (every thread of the process).
instructions() { # impl workload ops
    out=$work/callgrind.$1.$2.$3
    valgrind --tool=callgrind --callgrind-out-file="$out" \
        "$bench" --impl "$1" --workload "$2" --ops "$3" --reps 1 --json ${BENCH_ARGS:-} \
        >"$out.json" 2>"$out.stderr" || true
    if ! grep -q '"status":"ok"' "$out.json"; then
        echo na
        return 0
    fi
    sed -n 's/^summary: *\([0-9]*\).*/\1/p; s/^totals: *\([0-9]*\).*/\1/p' "$out" | head -n 1
}

# System calls of one run (every thread).
syscalls() { # impl workload ops
    out=$work/strace.$1.$2.$3
    strace -f -c -o "$out" "$bench" --impl "$1" --workload "$2" --ops "$3" --reps 1 ${BENCH_ARGS:-} \
        >/dev/null 2>&1 || return 1
    awk '$NF == "total" { print $4 }' "$out"
}

printf '%-9s %-9s %8s %14s %14s\n' workload impl N 'instr/op' 'syscalls/op'
for w in $workloads; do
    n=$(ops_for "$w")
    for i in $impls; do
        a=$(instructions "$i" "$w" "$n")
        if [ "$a" = na ]; then
            printf '%-9s %-9s %8s %14s %14s\n' "$w" "$i" "$n" n/a n/a
            continue
        fi
        b=$(instructions "$i" "$w" 0)
        sa=$(syscalls "$i" "$w" "$n")
        sb=$(syscalls "$i" "$w" 0)
        awk -v w="$w" -v i="$i" -v n="$n" -v a="$a" -v b="$b" -v sa="$sa" -v sb="$sb" \
            'BEGIN { printf "%-9s %-9s %8d %14.1f %14.2f\n", w, i, n, (a - b) / n, (sa - sb) / n }'
    done
done
