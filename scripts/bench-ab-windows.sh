#!/usr/bin/env bash
# Same-OS A/B under Wine: reseau on the IOCP backend against reseau on the
# libevent backend built for Windows, with the raw IOCP floor, on every
# workload of reseau-bench, in one session. Writes the table into
# docs/performance.md (between its "ab-windows" markers) and prints it.
#
#   scripts/bench-ab-windows.sh [--quick] [--reps N] [--no-requests] [--no-write]
#
# --quick runs the tool's small counts (reseau-bench --quick): under Wine a
# full-size run of every workload takes hours. WINEPREFIX may name a prefix
# of its own (default build/wine-prefix), so that it can run beside the
# test suite's.
#
# Both builds are release cross builds with the benchmark only:
# build/bench-iocp and build/bench-libevent-win. For each workload the two
# executables run back to back (IOCP build: reseau and the floor; libevent
# build: reseau), so the wall ratios come from one session on one machine
# load. Then, unless --no-requests, scripts/bench-wine-requests.sh counts the
# wineserver requests per operation of each build's reseau (and of the
# floor): the count repeats from run to run, the wall time under Wine does
# not (docs/performance.md, "Under Wine").
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
reps=5
quick=
requests=1
write=1
while [ $# -gt 0 ]; do
    case $1 in
    --reps) reps=$2; shift 2 ;;
    --quick) quick=--quick; shift ;;
    --no-requests) requests=0; shift ;;
    --no-write) write=0; shift ;;
    *) echo "usage: scripts/bench-ab-windows.sh [--quick] [--reps N] [--no-requests] [--no-write]" >&2; exit 2 ;;
    esac
done

iocp_build=$root/build/bench-iocp
le_build=$root/build/bench-libevent-win
configure() { # dir backend
    if [ ! -f "$1/build.ninja" ]; then
        meson setup "$1" "$root" --cross-file "$root/cross/mingw-w64-x86_64.ini" \
            --buildtype=release --wrap-mode=nodownload -Dbench=true -Dtests=false \
            -Dexamples=false "-Dio_backend=$2" >/dev/null
    fi
    ninja -C "$1" >/dev/null
}
configure "$iocp_build" iocp
configure "$le_build" libevent

RS_ROOT=$root
export RS_ROOT
# shellcheck source=scripts/wine-env.sh
. "$root/scripts/wine-env.sh"
wine_env_start
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

wine "$iocp_build/bench/reseau-bench.exe" --list >/dev/null 2>&1 # Wine's services start here
workloads=$(wine "$iocp_build/bench/reseau-bench.exe" --list 2>/dev/null |
    awk '$1 == "workload" { print $2 }')
for w in $workloads; do
    echo "wall: $w" >&2
    wine "$iocp_build/bench/reseau-bench.exe" $quick --impl reseau,iocp --workload "$w" \
        --reps "$reps" --json >"$work/iocp-$w.json" 2>/dev/null || true
    wine "$le_build/bench/reseau-bench.exe" $quick --impl reseau --workload "$w" \
        --reps "$reps" --json >"$work/le-$w.json" 2>/dev/null || true
done

if [ "$requests" = 1 ]; then
    echo "wineserver requests per operation" >&2
    IMPLS="reseau iocp" bash "$root/scripts/bench-wine-requests.sh" "$iocp_build" \
        >"$work/req-iocp.txt"
    IMPLS="reseau" bash "$root/scripts/bench-wine-requests.sh" "$le_build" >"$work/req-le.txt"
fi
wine_env_stop

python3 - "$work" "$reps" "$root/docs/performance.md" "$write" "${quick:+quick}" <<'EOF'
import datetime, glob, json, os, sys

work, reps, doc, write = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4] == "1"
size = "the tool's --quick counts" if len(sys.argv) > 5 and sys.argv[5] else "full counts"

def load(prefix):
    out = {}
    for path in sorted(glob.glob(os.path.join(work, prefix + "-*.json"))):
        try:
            data = json.load(open(path))
        except ValueError:
            continue
        for r in data["results"]:
            out[(r["workload"], r["impl"])] = r
    return out

iocp, le = load("iocp"), load("le")

def requests(name):
    rows = {}
    path = os.path.join(work, name)
    if os.path.exists(path):
        for line in open(path).read().splitlines()[1:]:
            f = line.split()
            if len(f) == 4:
                rows[(f[0], f[1])] = f[3]
    return rows

req_iocp, req_le = requests("req-iocp.txt"), requests("req-le.txt")
order = []
for (w, _) in list(iocp) + list(le):
    if w not in order:
        order.append(w)

def value(r):
    return r["median"] if r and r.get("status") == "ok" else None

def text(r):
    if not r:
        return "-"
    if r.get("status") != "ok":
        return r.get("status", "-")
    v = r["median"]
    return f"{v:,.0f}" if v >= 100 else f"{v:.3g}"

lines = [
    f"| workload | unit | reseau-iocp | reseau-libevent | iocp floor | libevent / iocp "
    f"| requests/op iocp | requests/op libevent | requests/op floor |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|",
]
for w in order:
    a, b, f = iocp.get((w, "reseau")), le.get((w, "reseau")), iocp.get((w, "iocp"))
    unit = (a or b or f or {}).get("unit", "")
    va, vb = value(a), value(b)
    ratio = "-"
    if va and vb:
        # Above 1: the libevent build is better. Lower is better for
        # "s until all fired" and for memory ("heap B/conn").
        r = va / vb if unit.startswith("s ") or "B/" in unit else vb / va
        ratio = f"{r:.2f}"
    lines.append(f"| {w} | {unit} | {text(a)} | {text(b)} | {text(f)} | {ratio} "
                 f"| {req_iocp.get((w, 'reseau'), '-')} | {req_le.get((w, 'reseau'), '-')} "
                 f"| {req_iocp.get((w, 'iocp'), '-')} |")
stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%MZ")
table = "\n".join(lines)
block = (f"<!-- ab-windows:begin (scripts/bench-ab-windows.sh writes this block) -->\n"
         f"Run of {stamp}, {size}, {reps} runs per cell (medians), one session under Wine; "
         f"`libevent / iocp` is the libevent build's figure relative to the IOCP build's "
         f"(above 1: faster, or less memory for heap B/conn).\n\n{table}\n<!-- ab-windows:end -->")
print(table)
if write:
    text_doc = open(doc).read()
    begin = text_doc.find("<!-- ab-windows:begin")
    end = text_doc.find("<!-- ab-windows:end -->")
    if begin < 0 or end < 0:
        sys.exit("docs/performance.md has no ab-windows markers")
    end += len("<!-- ab-windows:end -->")
    open(doc, "w").write(text_doc[:begin] + block + text_doc[end:])
EOF
