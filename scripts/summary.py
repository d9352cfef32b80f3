#!/usr/bin/env python3
"""Per-backend scenario summary of one or more meson test runs.

usage: summary.py LABEL=BUILD_DIR|LOG [LABEL=BUILD_DIR|LOG ...] [--markdown FILE]

Reads BUILD_DIR/meson-logs/testlog.json (or LOG, the saved output of a
program printing CMocka-style lines, such as scripts/check-interop.py), takes CMocka's per-test lines from
each test program's output, and prints, per label, the scenarios (tests named
test_<id>_...) passed, skipped (with the reason the test printed) and failed.
A test program that crashed or timed out counts its unreported tests as failed.
The last line is the plain total: "N passed, N failed, N skipped".
Exit status: 1 if anything failed or a log is missing, else 0.
"""
import json
import re
import sys
from pathlib import Path

RESULT = re.compile(r"^\[\s*(OK|SKIPPED|FAILED|ERROR)\s*\] (test_\w+)\s*$")
RUN = re.compile(r"^\[ RUN\s*\] (test_\w+)\s*$")
REASON = re.compile(r"^\[  SKIP    \] reason: (.*)$")
SCENARIO = re.compile(r"^test_([a-z]+[0-9]+)_")


def entries(build_dir):
    """One dict per test program: its name, result and standard output."""
    path = Path(build_dir)
    if path.suffix == ".log":
        if not path.exists():
            return None
        return [{"name": path.stem, "result": "OK", "stdout": path.read_text()}]
    log = path / "meson-logs" / "testlog.json"
    if not log.exists():
        return None
    return [json.loads(line) for line in log.read_text().splitlines()]


def parse(build_dir):
    found = entries(build_dir)
    if found is None:
        return None
    results = {}  # test name -> (status, reason)
    for entry in found:
        current, reason = None, None
        started = []
        for out in (entry.get("stdout") or "").splitlines():
            m = RUN.match(out)
            if m:
                current, reason = m.group(1), None
                started.append(current)
                continue
            m = REASON.match(out)
            if m:
                reason = m.group(1)
                continue
            m = RESULT.match(out)
            if m and m.group(2) == current:
                status = {"OK": "pass", "SKIPPED": "skip"}.get(m.group(1), "fail")
                results[m.group(2)] = (status, reason)
        # A crash or timeout ends the output early: whatever started without a
        # result failed.
        for name in started:
            results.setdefault(name, ("fail", f"no result ({entry.get('result')})"))
        if entry.get("result") not in ("OK", "SKIP") and not started:
            results[f"test_program_{entry['name']}"] = ("fail", entry.get("result"))
    return results


def main(argv):
    markdown = None
    runs = []
    args = list(argv)
    while args:
        a = args.pop(0)
        if a == "--markdown":
            markdown = args.pop(0)
        else:
            label, _, build_dir = a.partition("=")
            runs.append((label, build_dir))
    totals = {"pass": 0, "fail": 0, "skip": 0}
    bad = False
    table = {}
    reasons = {}
    other_skips = {}  # (test name, label) -> reason, for tests without a scenario id
    for label, build_dir in runs:
        results = parse(build_dir)
        if results is None:
            print(f"{label}: no test log in {build_dir}")
            bad = True
            continue
        counts = {"pass": 0, "fail": 0, "skip": 0}
        print(f"== {label} ==")
        for name in sorted(results):
            status, reason = results[name]
            counts[status] += 1
            m = SCENARIO.match(name)
            if m:
                table.setdefault(m.group(1).upper(), {}).setdefault(label, []).append(status)
                if status == "skip" and reason:
                    reasons.setdefault((m.group(1).upper(), label), reason)
            elif status == "skip":
                other_skips[(name, label)] = reason or "no reason given"
            if status != "pass":
                print(f"  {status.upper():4} {name}" + (f": {reason}" if reason else ""))
        print(f"  {label}: {counts['pass']} passed, {counts['skip']} skipped, "
              f"{counts['fail']} failed")
        for k in totals:
            totals[k] += counts[k]
        bad = bad or counts["fail"] > 0
    if markdown:
        labels = [label for label, _ in runs]
        key = lambda s: (re.sub(r"[0-9]+", "", s), int(re.sub(r"[^0-9]", "", s) or 0))
        rows = ["| scenario | " + " | ".join(labels) + " |",
                "|---|" + "---|" * len(labels)]
        for sid in sorted(table, key=key):
            cells = []
            for label in labels:
                st = table[sid].get(label, [])
                cells.append("fail" if "fail" in st else "pass" if "pass" in st else
                             "skip" if st else "-")
            rows.append(f"| {sid} | " + " | ".join(cells) + " |")
        notes = [f"- {sid} on {label}: {why}" for (sid, label), why in
                 sorted(reasons.items(), key=lambda kv: (key(kv[0][0]), kv[0][1]))]
        text = ["# Conformance: scenario x backend", "",
                "Generated by `scripts/summary.py` from the meson test logs (testlog.json) of one "
                "run of `scripts/test-all.sh`; a scenario with several tests passes only if all "
                "of them pass.", ""] + rows + ["", "## Skips and their reasons", ""] + notes
        if other_skips:
            text += ["", "## Other tests skipped", ""] + [
                f"- {name} on {label}: {why}" for (name, label), why in sorted(other_skips.items())]
        Path(markdown).write_text("\n".join(text) + "\n")
    print(f"reseau: {totals['pass']} passed, {totals['fail']} failed, {totals['skip']} skipped")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
