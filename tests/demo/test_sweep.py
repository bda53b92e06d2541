#!/usr/bin/env python3
"""tools/bench --sweep's program on two low rates: one demo per rate, a JSON
summary whose points are paced (never faster than offered), and an SVG plot
that parses, with both latency lines and the knee; bad flags refused first.

    test_sweep.py SWEEP_PY SHOP_DEMO
"""
import json
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

sweep, demo = sys.argv[1], sys.argv[2]
# tools/bench's help names its benchmarks without building anything, and
# --sweep and --scale are found anywhere among its flags.
bench = os.path.join(os.path.dirname(os.path.abspath(sweep)), "..", "bench")
# The plain build's choreo-bench, which --help shows, with its own libraries:
# not those of the build this test runs in (a sanitized one).
plain = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
proc = subprocess.run([bench, "--json", "--help"], stdout=subprocess.PIPE, text=True, timeout=20,
                      env=plain)
assert proc.returncode == 0 and "--sweep" in proc.stdout and "--scale" in proc.stdout, proc
proc = subprocess.run([bench, "--json", "--sweep", "--scale"], stderr=subprocess.PIPE, text=True,
                      timeout=20)
assert proc.returncode == 2 and "give one" in proc.stderr, (proc.returncode, proc.stderr)
with tempfile.TemporaryDirectory() as d:
    # Bad flags are refused with what to give, before any demo runs (a
    # plot that cannot be written used to end a whole sweep in a traceback).
    bad = [(["--seconds", "0"], "--seconds takes"), (["--seconds", "nan"], "--seconds takes"),
           (["--rates", "60,x"], "--rates takes"), (["--rates", "0"], "from 1 to 1000000"),
           (["--rates", "60,2000000"], "from 1 to 1000000"),
           (["--rates", "900000", "--seconds", "100"], "more than the 10000000 orders"),
           (["--svg", f"{d}/missing/sweep.svg"], "cannot write the plot"),
           (["--svg", d], "cannot write the plot")]
    for args, says in bad:
        proc = subprocess.run([sys.executable, sweep, demo, *args], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=20)
        assert proc.returncode == 2 and says in proc.stderr, (args, proc.returncode, proc.stderr)
        assert "Traceback" not in proc.stderr, (args, proc.stderr)
    # A SHOP_DEMO that is not a program: refused the same way.
    for wrong in (f"{d}/no-such-demo", d):
        proc = subprocess.run([sys.executable, sweep, wrong, "--rates", "60"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=20)
        assert proc.returncode == 2 and "is not a program that can run" in proc.stderr, \
            (wrong, proc.returncode, proc.stderr)
    svg = f"{d}/sweep.svg"
    proc = subprocess.run([sys.executable, sweep, demo, "--rates", "60,120", "--seconds", "2",
                           "--svg", svg, "--json"], stdout=subprocess.PIPE, text=True)
    assert proc.returncode == 0, proc.returncode
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    pts = r["points"]
    assert [p["offered"] for p in pts] == [60, 120], pts
    for p in pts:
        assert p["invariants_ok"] is True, p
        # Never faster than offered; how near it comes is the machine's
        # business, and a point that fell short must say so.
        assert 0 < p["achieved"] <= 1.05 * p["offered"], p
        if p["achieved"] < 0.949 * p["offered"]:
            assert p["sustained"] is False, p
        assert 0 < p["p50_ms"] <= p["p99_ms"], p
    root = ET.parse(svg).getroot()
    lines = [e for e in root.iter() if e.tag.endswith("polyline")]
    assert len(lines) == 2, "expected the p50 and p99 lines"
    texts = " ".join(e.text or "" for e in root.iter() if e.tag.endswith("text"))
    if r["knee_rate"] is not None:
        assert f"knee {r['knee_rate']}/s" in texts, texts
    print(f"sweep ok: {pts}, knee {r['knee_rate']}")
