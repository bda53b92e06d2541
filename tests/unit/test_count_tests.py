#!/usr/bin/env python3
"""tools/lib/count_tests.py, which makes tools/test's closing line: a
criterion program counts as the tests it ran, any other test as one, a
failing test's output is shown on stderr (its assertion lines and its
last lines), and the total exits 1 on any failure.

    test_count_tests.py COUNT_TESTS_PY
"""
import json
import os
import subprocess
import sys
import tempfile

script = sys.argv[1]
synth = "Synthesis: Tested: {} | Passing: {} | Failing: {} | Crashing: 0\n"
logs = [
    {"name": "unit_a", "result": "OK", "returncode": 0, "duration": 1.0,
     "stdout": synth.format(5, 5, 0), "stderr": ""},
    {"name": "unit_b", "result": "FAIL", "returncode": 1, "duration": 2.0,
     "stdout": "[----] test_b.c:12: Assertion Failed\n[----]   the count was 3\n"
               + "".join(f"filler {i}\n" for i in range(60)) + synth.format(4, 3, 1),
     "stderr": ""},
    {"name": "demo_c", "result": "OK", "returncode": 0, "duration": 3.0,
     "stdout": "ok\n", "stderr": ""},
    {"name": "demo_d", "result": "TIMEOUT", "returncode": -15, "duration": 120.0,
     "stdout": "", "stderr": "waiting for the broker\n"},
]


def run(path, text, *args):
    """The script with args after writing text to path."""
    with open(path, "w") as f:
        f.write(text)
    return subprocess.run([sys.executable, script, *args], capture_output=True, text=True,
                          timeout=20)


with tempfile.TemporaryDirectory() as tmp:
    testlog = os.path.join(tmp, "testlog.json")
    per_test = run(testlog, "".join(json.dumps(t) + "\n" for t in logs), testlog, "plain")
    assert per_test.returncode == 0, per_test
    assert per_test.stdout.splitlines() == [
        "plain\tunit_a\tPASS\t5\t0", "plain\tunit_b\tFAIL\t3\t1",
        "plain\tdemo_c\tPASS\t1\t0", "plain\tdemo_d\tFAIL\t0\t1"], per_test.stdout
    err = per_test.stderr
    assert "== plain: unit_b failed (FAIL, exit 1, 2 s, 63 lines of output)" in err, err
    assert "test_b.c:12: Assertion Failed" in err and "filler 59" in err, err
    assert "filler 10" not in err, err  # neither marked nor among the last 40 lines
    assert "== plain: demo_d failed (TIMEOUT" in err and "waiting for the broker" in err, err
    assert "unit_a" not in err and "demo_c" not in err, err

    summary = os.path.join(tmp, "summary.txt")
    total = run(summary, per_test.stdout + "fuzz PASS\n", "--total", summary)
    assert (total.returncode, total.stdout) == (1, "10 passed, 2 failed\n"), total
    total = run(summary, "plain\tunit_a\tPASS\t5\t0\nfuzz PASS\n", "--total", summary)
    assert (total.returncode, total.stdout) == (0, "6 passed, 0 failed\n"), total
print("count_tests ok")
