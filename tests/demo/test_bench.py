#!/usr/bin/env python3
"""tools/bench's program on tiny figures: every figure it prints is there
and is a measurement (positive), and demo_ratio is the demo's events/s over
the raw pipeline's of the same run. No figure is compared with a target.

    test_bench.py CHOREO_BENCH
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import interrupting

bench = sys.argv[1]
cmd = [bench, "--events", "1000", "--per-tx", "100", "--latency-events", "50",
       "--latency-rate", "200", "--metrics-pairs", "1", "--demo-orders", "150", "--json"]
# In a TMPDIR of its own, which the bench (and the demo it runs) must leave
# empty: its databases and stream take about 170 MB with the defaults.
scratch = tempfile.mkdtemp(prefix="choreo-bench-test-")
proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                      timeout=240, env=dict(os.environ, TMPDIR=scratch))
if proc.returncode != 0:
    sys.exit(f"FAIL: choreo-bench exited {proc.returncode}:\n{proc.stderr[-3000:]}")
left = os.listdir(scratch)
assert not left, f"choreo-bench left {left} in {scratch}"
os.rmdir(scratch)
d = json.loads(proc.stdout.strip().splitlines()[-1])
for key in ("raw_events_per_s", "hop_events_per_s", "hop_ratio", "relay_p50_us",
            "hop_p50_us", "service_rss_kb", "demo_sagas_per_s", "demo_events_per_s",
            "demo_ratio"):
    assert isinstance(d.get(key), (int, float)) and d[key] > 0, (key, d.get(key), d)
assert d["demo_orders"] == 150, d
# The data-scale figures take minutes and run only with --data-scale: without
# it they are there as null, with the flag that gives them.
assert d["inbox_10m_ratio"] is None and d["delayed_1m_ratio"] is None, d
assert "--data-scale" in d["data_scale"], d
# The broker's Go threads: half the CPUs, at least one, unless GOMAXPROCS is set.
cpus = os.cpu_count() or 1
want = int(os.environ["GOMAXPROCS"]) if os.environ.get("GOMAXPROCS") else max(1, cpus // 2)
assert d["broker_gomaxprocs"] == want, (d["broker_gomaxprocs"], want)
ratio = d["demo_events_per_s"] / d["raw_events_per_s"]
assert abs(ratio - d["demo_ratio"]) < 0.002, (ratio, d["demo_ratio"])
# A saga of the shop emits several events, so the demo's events/s is above
# its sagas/s.
assert d["demo_events_per_s"] > 2 * d["demo_sagas_per_s"], d
print("bench ok: raw %d events/s, hop %d (%.3f), demo %.0f sagas/s, %.0f events/s (%.3f)"
      % (d["raw_events_per_s"], d["hop_events_per_s"], d["hop_ratio"], d["demo_sagas_per_s"],
         d["demo_events_per_s"], d["demo_ratio"]))

# Without the demo the figures are there and the demo's are not.
cmd[cmd.index("--demo-orders") + 1] = "0"
proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                      timeout=240)
assert proc.returncode == 0, proc.stderr[-3000:]
d = json.loads(proc.stdout.strip().splitlines()[-1])
assert "demo_ratio" not in d and d["hop_events_per_s"] > 0, d

# A mistyped count is refused with a word and exit status 2.
for bad in ("-5", "many", "10x"):
    proc = subprocess.run([bench, "--demo-orders", bad], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=30)
    assert proc.returncode == 2 and "--demo-orders takes a whole number from 0 to" in proc.stderr, \
        (bad, proc)
# So is a count out of range, before anything starts, with the range; one too
# big for a long among them: it used to pass as LONG_MAX events, which the
# consumer could not hold and the producer went on writing to disk for.
scratch = tempfile.mkdtemp(prefix="choreo-bench-test-")
for flag, top in (("events", 10000000), ("per-tx", 100000), ("latency-events", 1000000),
                  ("latency-rate", 100000), ("metrics-pairs", 50), ("inbox-rows", 100000000),
                  ("delayed-rows", 100000000), ("demo-orders", 10000000)):
    for bad in ("99999999999999999999", str(top + 1)):
        proc = subprocess.run([bench, "--demo-orders", "0", "--" + flag, bad, "--json"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=10, env=dict(os.environ, TMPDIR=scratch))
        says = f"--{flag} takes a whole number from "
        assert proc.returncode == 2 and says in proc.stderr and f"to {top}," in proc.stderr, \
            (flag, bad, proc)
        assert not os.listdir(scratch), (flag, bad, os.listdir(scratch))
os.rmdir(scratch)
proc = subprocess.run([bench, "--help"], stdout=subprocess.PIPE, text=True, timeout=10)
assert proc.returncode == 0 and "1 to 10000000" in proc.stdout, proc
# So is a synchronous setting it does not take (it used to start the
# consumer with it, which said only "did not start").
proc = subprocess.run([bench, "--synchronous", "fast"], stdout=subprocess.PIPE,
                      stderr=subprocess.PIPE, text=True, timeout=30)
assert proc.returncode == 2 and "--synchronous takes full or normal" in proc.stderr, proc
# And a word that is no flag, which it used to run without.
proc = subprocess.run([bench, "--demo-orders", "0", "stray"], stdout=subprocess.PIPE,
                      stderr=subprocess.PIPE, text=True, timeout=30)
assert proc.returncode == 2 and '"stray" is not an option' in proc.stderr, proc

# A demo that fails is shown: its own messages come before choreo-bench's
# word, here a service that refuses an unknown CHOREO_ variable at start.
env = dict(os.environ, CHOREO_NO_SUCH_SETTING="1")
cmd[cmd.index("--demo-orders") + 1] = "20"
proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                      timeout=240, env=env)
assert proc.returncode == 1, (proc.returncode, proc.stderr[-3000:])
err = proc.stderr
assert "the shop demo's last messages:" in err, err[-3000:]
assert "exited at start" in err, err[-3000:]
assert err.index("exited at start") < err.index("the shop demo failed"), err[-3000:]
# The failed demo keeps its work directory for the user to read; the test
# removes it.
for line in err.splitlines():
    if "logs and databases kept in " in line:
        shutil.rmtree(line.split("logs and databases kept in ", 1)[1].strip(), ignore_errors=True)
print("bench shows a failed demo's messages")

# A consumer that dies during a run ends it with a word and status 1 at once:
# the producer went on emitting every event, and with a large count went on
# writing to disk for as long as it had any. The run it kept is the test's.
scratch = tempfile.mkdtemp(prefix="choreo-bench-test-")
run = subprocess.Popen([bench, "--events", "10000000", "--per-tx", "1000", "--demo-orders", "0"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                       env=dict(os.environ, TMPDIR=scratch), start_new_session=True)
try:
    deadline = time.monotonic() + 20
    consumer = None
    while consumer is None and time.monotonic() < deadline and run.poll() is None:
        consumer = next((k for k, cmd in interrupting.children(run.pid) if b"consumer" in cmd),
                        None)
        time.sleep(0.05)
    assert consumer, "no consumer process appeared"
    assert interrupting.wait_emitting(run, scratch), "the producer never emitted"
    os.kill(consumer, signal.SIGKILL)
    err = run.communicate(timeout=10)[1]
    assert run.returncode == 1, (run.returncode, err)
    assert "consumer: ended during the run: it was killed by signal 9" in err, err
    assert "kept in " + scratch in err, err
finally:
    interrupting.end(run, scratch)
print("bench stops when its consumer dies")

# Ctrl-C (SIGINT to the process group, as a terminal sends it) and SIGTERM
# to the bench alone: either stops the consumer and nats-server, removes the
# work directory and exits 128 + the signal. It had no handler, and kept its
# directory (tens of MB) in TMPDIR.
for sig, to_group in ((signal.SIGINT, True), (signal.SIGTERM, False)):
    scratch = tempfile.mkdtemp(prefix="choreo-bench-test-")
    run = interrupting.start([bench, "--events", "10000000", "--per-tx", "1000",
                              "--demo-orders", "0"], scratch)
    try:
        deadline = time.monotonic() + 20
        while run.poll() is None and time.monotonic() < deadline and \
                not any(b"consumer" in cmd for _, cmd in interrupting.children(run.pid)):
            time.sleep(0.05)
        assert interrupting.wait_emitting(run, scratch), "the producer never emitted"
        interrupting.check_stopped(run, sig, to_group, scratch, 15)
    finally:
        interrupting.end(run, scratch)
print("bench stops its children and removes its directory on SIGINT and SIGTERM")
