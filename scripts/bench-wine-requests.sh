#!/bin/sh
# Wineserver requests per operation for the IOCP build under Wine. Under
# Wine the wall time of an IOCP operation is close to (requests per
# operation) x (the cost of one bare request), and the count, unlike the
# time, repeats from run to run. Method: a wineserver started with
# `-f -p -d1` traces every request; each workload runs with N operations and
# with 0 (same set-up and teardown), and only the requests of the bench
# process's own threads are counted. (N-run - 0-run) / N is reported.
#
#   scripts/bench-wine-requests.sh [BUILD_DIR]
#
# BUILD_DIR defaults to build/bench-iocp (cross-configured with
# cross/mingw-w64-x86_64.ini if missing). Environment: WINEPREFIX (default
# build/wine-prefix), IMPLS (default "reseau iocp"), WORKLOADS (default
# "pingpong stream connect tasks timers udp udp_to pipe watch"), N_<workload>.
# BREAKDOWN=1 also prints, per workload and implementation, the requests
# by name ((N-run - 0-run) / N for each name that differs).
# Counts for tasks and timers depend on timing (how many wake-ups batch
# together, how often the loop sleeps); the I/O counts do not.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build/bench-iocp}
impls=${IMPLS:-reseau iocp}
workloads=${WORKLOADS:-pingpong stream connect tasks timers udp udp_to pipe watch}

if [ ! -f "$build/bench/reseau-bench.exe" ]; then
    if [ ! -d "$build" ]; then
        meson setup "$build" "$root" --cross-file "$root/cross/mingw-w64-x86_64.ini" \
            --buildtype=release --wrap-mode=nodownload -Dbench=true -Dtests=false \
            -Dexamples=false >/dev/null
    fi
    ninja -C "$build" >/dev/null
fi
exe=$build/bench/reseau-bench.exe

RS_ROOT=$root
export RS_ROOT
# shellcheck source=scripts/wine-env.sh
. "$root/scripts/wine-env.sh"
wine_env_start
wineserver -k >/dev/null 2>&1 || true
work=$(mktemp -d)
trace=$work/trace.log
wineserver -f -p -d1 2>"$trace" &
server=$!
cleanup() {
    wineserver -k >/dev/null 2>&1 || true
    wait "$server" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
# Warm-up: Wine's own services start on the first run, not inside a measurement.
wine "$exe" --list >/dev/null 2>&1

ops_for() {
    case $1 in
    pingpong) echo "${N_pingpong:-500}" ;;
    stream) echo "${N_stream:-200}" ;; # 64 KiB chunks
    connect) echo "${N_connect:-200}" ;;
    tasks) echo "${N_tasks:-5000}" ;;
    timers) echo "${N_timers:-5000}" ;;
    udp) echo "${N_udp:-1000}" ;;
    udp_to) echo "${N_udp_to:-1000}" ;;
    pipe) echo "${N_pipe:-200}" ;; # 64 KiB chunks
    watch) echo "${N_watch:-500}" ;;
    *) echo 100 ;;
    esac
}

# Requests made by the threads of one bench process: from its
# init_first_thread (matched by Unix pid) through the threads it creates.
# Prints the total; with a fourth argument, also writes "name count" lines
# to that file.
requests() { # impl workload ops [names-file]
    start=$(wc -l <"$trace")
    wine "$exe" --quick --impl "$1" --workload "$2" --ops "$3" --reps 1 --json \
        >"$work/out.json" 2>/dev/null &
    pid=$!
    wait "$pid" || true
    sleep 1 # let the server write the process's last requests
    if ! grep -q '"status":"ok"' "$work/out.json"; then
        echo na
        return 0
    fi
    tail -n +"$((start + 1))" "$trace" | awk -v pid="$pid" '
        !first && $2 == "init_first_thread(" && index($0, "unix_pid=" pid ",") {
            first = 1; mine[substr($1, 1, 4)] = 1
        }
        !first { next }
        {
            t = substr($1, 1, 4)
            if (!(t in mine)) next
            if ($2 == "new_thread()" && match($0, /tid=[0-9a-f]+/))
                mine[substr($0, RSTART + 4, RLENGTH - 4)] = 1
            if ($2 ~ /^[a-z_0-9]+\($/ || ($2 ~ /^[a-z_0-9]+\(\)$/ && $3 != "=")) {
                n++
                name = $2
                sub(/\(.*/, "", name)
                by[name]++
            }
        }
        END {
            print n + 0
            if (names != "") for (k in by) print k, by[k] > names
        }' names="${4:-}"
}

printf '%-9s %-7s %6s %14s\n' workload impl N 'requests/op'
for w in $workloads; do
    n=$(ops_for "$w")
    for i in $impls; do
        a=$(requests "$i" "$w" "$n" "$work/names-n")
        if [ "$a" = na ]; then
            printf '%-9s %-7s %6s %14s\n' "$w" "$i" "$n" n/a
            continue
        fi
        b=$(requests "$i" "$w" 0 "$work/names-0")
        awk -v w="$w" -v i="$i" -v n="$n" -v a="$a" -v b="$b" \
            'BEGIN { printf "%-9s %-7s %6d %14.2f\n", w, i, n, (a - b) / n }'
        if [ "${BREAKDOWN:-0}" = 1 ]; then
            awk -v n="$n" 'FNR == NR { zero[$1] = $2; next }
                { d = ($2 - zero[$1]) / n; if (d > 0.005 || d < -0.005) printf "    %-28s %8.2f\n", $1, d }' \
                "$work/names-0" "$work/names-n" | sort -k2 -nr
        fi
    done
done
