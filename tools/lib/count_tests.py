#!/usr/bin/env python3
"""Counts executed tests for tools/test.

count_tests.py TESTLOG.json LABEL   prints per-test lines LABEL, NAME, PASS|FAIL, p, f
                                    (tab-separated), and what each failing test printed of
                                    its failure, on stderr
count_tests.py --total SUMMARY      prints "N passed, N failed", exit 1 on failures

A criterion executable counts as the tests it ran (its Synthesis line); any
other test counts as one. A test whose process failed without a failing
criterion count (a crash, a timeout, a sanitizer report) counts one failure.
"""
import json
import re
import sys

SYNTH = re.compile(r"Synthesis: Tested: (\d+) \| Passing: (\d+) \| Failing: (\d+) \| Crashing: (\d+)")


def per_test(path, label):
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            t = json.loads(line)
            out = (t.get("stdout") or "") + (t.get("stderr") or "")
            ok = t.get("result") in ("OK", "EXPECTEDFAIL")
            m = None
            for m in SYNTH.finditer(out):
                pass
            if m:
                tested, passing = int(m.group(1)), int(m.group(2))
                failed = tested - passing
                if not ok and failed == 0:
                    failed = 1
                passed = passing
            else:
                passed, failed = (1, 0) if ok else (0, 1)
            verdict = "PASS" if failed == 0 else "FAIL"
            print(f"{label}\t{t['name']}\t{verdict}\t{passed}\t{failed}")
            if failed:
                show_failure(label, t, out)


# A failing test's output on stderr, where the run is seen only as what
# it printed (a CI log) and its build directory is gone by the time someone
# reads it: the lines that say what failed (criterion's assertions and
# verdicts, a sanitizer's report line) and the last lines.
MARKS = re.compile(r"\[----\]|FAIL|Assertion|CRASH|Timed out|ERROR: |runtime error")
MARKED_LINES = 30
TAIL_LINES = 40


def show_failure(label, t, out):
    lines = out.rstrip("\n").splitlines()
    print(f"== {label}: {t['name']} failed ({t.get('result')}, exit {t.get('returncode')},"
          f" {t.get('duration', 0):.0f} s, {len(lines)} lines of output)", file=sys.stderr)
    head = len(lines) - TAIL_LINES
    marked = [line for line in lines[:max(head, 0)] if MARKS.search(line)][:MARKED_LINES]
    if marked:
        print("   what failed, before the last lines:", file=sys.stderr)
        for line in marked:
            print(f"   {line[:300]}", file=sys.stderr)
    print(f"   its last {min(len(lines), TAIL_LINES)} lines:", file=sys.stderr)
    for line in lines[-TAIL_LINES:]:
        print(f"   {line[:300]}", file=sys.stderr)


def total(path):
    passed = failed = 0
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) == 5:
                passed += int(parts[3])
                failed += int(parts[4])
            else:
                words = line.split()
                if words and words[-1] == "PASS":
                    passed += 1
                elif words:  # "fuzz FAIL", "BUILD plain failed"
                    failed += 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    if sys.argv[1] == "--total":
        sys.exit(total(sys.argv[2]))
    per_test(sys.argv[1], sys.argv[2])
