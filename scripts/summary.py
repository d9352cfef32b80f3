#!/usr/bin/env python3
"""Summary of one run of scripts/test-all.sh: every test of every step.

usage: summary.py [LABEL=SOURCE ...] [--steps FILE] [--markdown FILE] [--scenarios FILE]

A SOURCE is a build directory (its meson-logs/testlog.json), a meson JSON
log (a run with --logbase), or a text log: the saved output of a program
printing CMocka-style lines, such as scripts/check-interop.py. From each
test program's output it takes CMocka's per-test lines; a program that
prints none counts as one test (program_<name>), passed or failed by its
exit status. A program that crashed or timed out counts its unreported tests
as failed, and one whose tests all passed but which still failed (a
memcheck error, a leak) counts as one failure.

--steps FILE is the ledger test-all.sh writes, one step a line:
NAME<TAB>pass|fail<TAB>SOURCE or "-". A step with a SOURCE and no LABEL of
its own is read as one more run; a step without is one check. A failed step
whose failure shows in no test (a build that broke, a missing log) counts as
one failure more. So nothing that failed can leave the total clean.

The per-label scenario table (tests named test_<id>_...) goes to --markdown
for the runs given as LABEL=SOURCE (docs/conformance.md). Its second column
says in words what each scenario checks, taken from the catalogue
(--scenarios, by default docs/scenarios.md): the first two cells of every
table row there whose first cell is a scenario id.

The last line is the total, "reseau: N passed, N failed, N skipped", followed
when anything failed by "; failing steps: " and the failing steps' names.
Exit status: 1 if anything failed or a log is missing, 2 if the summary
itself failed, else 0.
"""
import json
import re
import sys
from pathlib import Path

RESULT = re.compile(r"^\[\s*(OK|SKIPPED|FAILED|ERROR)\s*\] (test_\w+)\s*$")
RUN = re.compile(r"^\[ RUN\s*\] (test_\w+)\s*$")
REASON = re.compile(r"^\[  SKIP    \] reason: (.*)$")
SCENARIO = re.compile(r"^test_([a-z]+[0-9]+)_")
CATALOGUE_ROW = re.compile(r"^\|\s*([A-Z]+[0-9]+)\s*\|([^|]*)\|")
DEFAULT_CATALOGUE = Path(__file__).resolve().parent.parent / "docs" / "scenarios.md"


def catalogue(path):
    """Scenario id -> what it checks, from the catalogue's tables."""
    words = {}
    for line in Path(path).read_text().splitlines():
        m = CATALOGUE_ROW.match(line)
        if m:
            words.setdefault(m.group(1), m.group(2).strip())
    return words


def entries(source, passed=True):
    """One dict per test program: its name, result and standard output.
    A text log is one program, whose result is the step's (passed)."""
    path = Path(source)
    if path.is_dir():
        path = path / "meson-logs" / "testlog.json"
    if not path.is_file():
        return None
    if path.suffix == ".json":
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [{"name": path.stem, "result": "OK" if passed else "FAIL",
             "stdout": path.read_text(errors="replace")}]


def parse(source, passed=True):
    found = entries(source, passed)
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
        result = entry.get("result")
        program = f"program_{entry['name']}"
        if not started:
            # EXPECTEDFAIL: a check that must fail (meson's should_fail) did.
            status = {"OK": "pass", "EXPECTEDFAIL": "pass", "SKIP": "skip"}.get(result, "fail")
            results[program] = (status, None if status == "pass" else result)
        elif result not in ("OK", "EXPECTEDFAIL", "SKIP") and all(
                results[name][0] != "fail" for name in started):
            # Every test passed, yet the program failed: valgrind's error
            # exit, a sanitizer report at exit, a crash in clean-up.
            results[program] = ("fail", f"the program failed ({result}) after its tests passed")
    return results


def read_steps(path):
    """The ledger: (name, passed, source or None) per step."""
    steps = []
    for line in Path(path).read_text().splitlines():
        if not line.strip():
            continue
        name, status, source = (line.split("\t") + ["", "-"])[:3]
        steps.append((name, status == "pass", None if source in ("", "-") else source))
    return steps


def main(argv):
    markdown = None
    steps_file = None
    scenarios_file = DEFAULT_CATALOGUE
    runs = []
    args = list(argv)
    while args:
        a = args.pop(0)
        if a == "--markdown":
            markdown = args.pop(0)
        elif a == "--steps":
            steps_file = args.pop(0)
        elif a == "--scenarios":
            scenarios_file = args.pop(0)
        else:
            label, _, build_dir = a.partition("=")
            runs.append((label, build_dir))
    steps = read_steps(steps_file) if steps_file else []
    step_passed = {name: passed for name, passed, _ in steps}
    # Steps with a log of their own, not given as a table column: more runs.
    columns = {label for label, _ in runs}
    extra = [(name, source) for name, _, source in steps if source and name not in columns]
    totals = {"pass": 0, "fail": 0, "skip": 0}
    failing = []  # step (or run) names, in order
    table = {}
    reasons = {}
    other_skips = {}  # (test name, label) -> reason, for tests without a scenario id
    for label, build_dir in runs + extra:
        passed = step_passed.get(label, True)
        results = parse(build_dir, passed)
        if results is None:
            print(f"{label}: no test log in {build_dir}")
            results = {f"step_{label}": ("fail", f"no test log in {build_dir}")}
        counts = {"pass": 0, "fail": 0, "skip": 0}
        print(f"== {label} ==")
        for name in sorted(results):
            status, reason = results[name]
            counts[status] += 1
            m = SCENARIO.match(name)
            if label in columns and m:
                table.setdefault(m.group(1).upper(), {}).setdefault(label, []).append(status)
                if status == "skip" and reason:
                    reasons.setdefault((m.group(1).upper(), label), reason)
            elif label in columns and status == "skip":
                other_skips[(name, label)] = reason or "no reason given"
            if status != "pass":
                print(f"  {status.upper():4} {name}" + (f": {reason}" if reason else ""))
        if not passed and counts["fail"] == 0:
            print(f"  FAIL step {label}: the step failed outside its tests (see its output)")
            counts["fail"] += 1
        print(f"  {label}: {counts['pass']} passed, {counts['skip']} skipped, "
              f"{counts['fail']} failed")
        for k in totals:
            totals[k] += counts[k]
        if counts["fail"]:
            failing.append(label)
    # Steps that are one check each (docs, a benchmark smoke run, a fuzzer).
    logged = {label for label, _ in runs + extra}
    for name, passed, _ in steps:
        if name in logged:
            continue
        totals["pass" if passed else "fail"] += 1
        print(f"== {name} == {'passed' if passed else 'FAILED'}")
        if not passed:
            failing.append(name)
    if markdown:
        labels = [label for label, _ in runs]
        key = lambda s: (re.sub(r"[0-9]+", "", s), int(re.sub(r"[^0-9]", "", s) or 0))
        words = catalogue(scenarios_file)
        rows = ["| scenario | what it checks | " + " | ".join(labels) + " |",
                "|---|---|" + "---|" * len(labels)]
        for sid in sorted(table, key=key):
            cells = []
            for label in labels:
                st = table[sid].get(label, [])
                cells.append("fail" if "fail" in st else "pass" if "pass" in st else
                             "skip" if st else "-")
            what = words.get(sid, "(not in the catalogue, docs/scenarios.md)")
            rows.append(f"| {sid} | {what} | " + " | ".join(cells) + " |")
        notes = [f"- {sid} on {label}: {why}" for (sid, label), why in
                 sorted(reasons.items(), key=lambda kv: (key(kv[0][0]), kv[0][1]))]
        text = ["# Conformance: scenario x backend", "",
                "Generated by `scripts/summary.py` from the meson test logs (testlog.json) of one "
                "run of `scripts/test-all.sh`; a scenario with several tests passes only if all "
                "of them pass. What each scenario checks is from docs/scenarios.md.", ""] + rows + ["", "## Skips and their reasons", ""] + notes
        if other_skips:
            text += ["", "## Other tests skipped", ""] + [
                f"- {name} on {label}: {why}" for (name, label), why in sorted(other_skips.items())]
        Path(markdown).write_text("\n".join(text) + "\n")
    last = f"reseau: {totals['pass']} passed, {totals['fail']} failed, {totals['skip']} skipped"
    if failing:
        last += "; failing steps: " + ", ".join(failing)
    print(last)
    return 1 if totals["fail"] else 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except Exception as e:  # the last line must still tell the truth
        print(f"reseau: the summary failed ({e!r}): the run's result is unknown")
        sys.exit(2)
