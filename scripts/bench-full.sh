#!/usr/bin/env bash
# One full benchmark session: every figure of docs/performance.md's summary
# ("Results"), measured one after the other on one machine, into one
# directory, so that the summary is read from a single run and can be
# repeated with one command.
#
#   scripts/bench-full.sh [OUT_DIR]        (default build/bench-full-<UTC time>)
#
# Files written (each starts with its step's start time and load average and
# ends with its end time and load average):
#   native.txt           reseau-bench --reps 5, every workload but idle, full
#                        counts, release build (wall; ratios within the run)
#   idle-IMPL.txt        reseau-bench --workload idle --impl IMPL --reps 1,
#                        10,000 connections, one process per implementation
#                        (a process that ran nothing else: its resident growth
#                        is its own, docs/performance.md "Memory per connection")
#   counts.txt           scripts/bench-callgrind.sh over every workload but idle
#                        (instructions and system calls per operation)
#   fanin-counts-N.txt   the same for fanin at N connections, one file per
#                        count of FANIN_CONNS
#   ab-windows.txt       scripts/bench-ab-windows.sh --quick: IOCP build, libevent
#                        build for Windows and the raw IOCP floor under Wine, wall
#                        ratios and wineserver requests per operation (it also
#                        rewrites its block of docs/performance.md)
#   wine-idle-N.txt      the IOCP build's idle workload under Wine at N
#                        connections (WINE_IDLE_CONNS)
# Environment: REPS (default 5), FANIN_CONNS (default "10 1000"),
# WINE_IDLE_CONNS (default 1000), SKIP_WINE=1 (native steps only).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/build/bench-full-$(date -u +%Y%m%dT%H%M%SZ)}
reps=${REPS:-5}
mkdir -p "$out"

native=$root/build/bench-release
if [ ! -d "$native" ]; then
    meson setup "$native" "$root" --buildtype=release --wrap-mode=nodownload -Dbench=true \
        -Dtests=false -Dexamples=false >/dev/null
else
    # A directory left by another command may be meson's default -O0 build
    # or lack the bench: its figures would not be the summary's.
    meson configure "$native" -Dbuildtype=release -Dbench=true >/dev/null
fi
ninja -C "$native" >/dev/null
bench=$native/bench/reseau-bench

stamp() { printf '# %s: %s, load average %s\n' "$1" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    "$(cut -d' ' -f1-3 /proc/loadavg)"; }

# step FILE COMMAND...: runs COMMAND into OUT_DIR/FILE between two stamps.
step() {
    local file=$out/$1
    shift
    echo "bench-full: $(date -u +%H:%M:%SZ) $(basename "$file") ..." >&2
    {
        stamp start
        echo "# command: $*"
        "$@" 2>&1 || echo "# failed with status $?"
        stamp end
    } >"$file"
}

workloads=$("$bench" --list | awk '$1 == "workload" && $2 != "idle" { print $2 }' | paste -sd, -)

step native.txt "$bench" --reps "$reps" --workload "$workloads"
for impl in reseau libevent libuv; do
    step "idle-$impl.txt" "$bench" --workload idle --impl "$impl" --conns 10000 --reps 1
done
step counts.txt env WORKLOADS="${workloads//,/ }" "$root/scripts/bench-callgrind.sh" "$native"
for conns in ${FANIN_CONNS:-10 1000}; do
    step "fanin-counts-$conns.txt" env WORKLOADS=fanin BENCH_ARGS="--conns $conns" \
        IMPLS="reseau libevent libuv" "$root/scripts/bench-callgrind.sh" "$native"
done

if [ "${SKIP_WINE:-0}" != 1 ]; then
    step ab-windows.txt "$root/scripts/bench-ab-windows.sh" --quick
    iocp=$root/build/bench-iocp # built by bench-ab-windows.sh
    for conns in ${WINE_IDLE_CONNS:-1000}; do
        step "wine-idle-$conns.txt" bash -c "export RS_ROOT='$root'; . '$root/scripts/wine-env.sh'; \
            wine_env_start; status=0; \
            wine '$iocp/bench/reseau-bench.exe' --workload idle --conns $conns --reps 1 || status=\$?; \
            wine_env_stop; exit \$status"
    done
fi
echo "bench-full: done, results in $out" >&2
