#!/usr/bin/env python3
"""The relay's outbox-query benchmark (choreo-outbox-bench): its usage, its
refusals of bad arguments, a tiny run that prints its three figures, and no
database left behind when SIGTERM cuts a long fill short.

    test_outbox_bench.py CHOREO_OUTBOX_BENCH
"""
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

bench = sys.argv[1]
scratch = tempfile.mkdtemp(prefix="choreo-outbox-bench-test-")
env = dict(os.environ, TMPDIR=scratch)


def run(*args):
    return subprocess.run([bench, *args], capture_output=True, text=True, timeout=60, env=env)


p = run("--help")
assert p.returncode == 0 and p.stdout.startswith("usage: choreo-outbox-bench"), p

for args, says in ((["99999999999999999999"], 'DELAYED takes a whole number from 0 to 100000000, not "99999999999999999999"'),
                   (["-1"], "DELAYED takes a whole number from 0"),
                   (["10x"], "DELAYED takes a whole number from 0"),
                   ([""], "DELAYED takes a whole number from 0"),
                   (["10", "100000001"], "DUE takes a whole number from 0 to 100000000"),
                   (["10", "1", "0"], 'RUNS takes a whole number from 1 to 100000, not "0"'),
                   (["10", "1", "1", "extra"], "too many arguments (4)")):
    p = run(*args)
    assert p.returncode == 2 and says in p.stderr, (args, p)
assert os.listdir(scratch) == [], os.listdir(scratch)

p = run("200", "10", "2")
assert p.returncode == 0, p
assert "200 delayed rows (due in 1 h) and 10 due rows written" in p.stdout, p.stdout
assert re.search(r"^pending +[0-9.]+ ms +\(210 rows\)$", p.stdout, re.M), p.stdout
assert re.search(r"^due +[0-9.]+ ms +\(10 rows of a batch of 256\)$", p.stdout, re.M), p.stdout
p = run("0", "0", "1")
assert p.returncode == 0 and "(no row waiting)" in p.stdout, p
assert os.listdir(scratch) == [], os.listdir(scratch)

# A fill far too long to finish: SIGTERM must remove the database it began.
proc = subprocess.Popen([bench, "100000000"], env=env, stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE)
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    made = [os.path.join(scratch, d) for d in os.listdir(scratch)]
    if made and os.path.exists(os.path.join(made[0], "bench.db")):
        break
    time.sleep(0.05)
else:
    proc.kill()
    sys.exit("no database was made within 30 s")
time.sleep(0.3)
proc.send_signal(signal.SIGTERM)
proc.wait(timeout=30)
assert proc.returncode == -signal.SIGTERM, proc.returncode
assert os.listdir(scratch) == [], os.listdir(scratch)
os.rmdir(scratch)
print("ok: usage, refusals, a tiny run, and nothing left after SIGTERM")
