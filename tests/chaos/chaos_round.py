#!/usr/bin/env python3
"""The short chaos round of the test suite: about 300 sagas while services
are killed (at least 10 times), nats-server is restarted (at least once) and
crash points fire. Fails on any lost or duplicated event, any broken
invariant, or too little chaos to prove anything.

chaos_round.py SHOP_CHAOS_BINARY
"""
import json
import subprocess
import sys

cmd = [sys.argv[1], "--sagas", "300", "--duration-s", "15", "--kill-interval-ms", "500",
       "--broker-interval-ms", "5000", "--crash-prob", "0.001", "--seed", "7", "--json"]
print("running:", " ".join(cmd), flush=True)
proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=600)
sys.stderr.write(proc.stderr[-4000:])
print(proc.stdout)
try:
    r = json.loads(proc.stdout.strip().splitlines()[-1])
except (ValueError, IndexError):
    sys.exit(f"no JSON result (exit status {proc.returncode})")
problems = []
for key, want in (("lost", 0), ("duplicated", 0), ("lost_events", 0), ("duplicated_events", 0),
                  ("unexpected_exits", 0), ("failed_requests", 0)):
    if r[key] != want:
        problems.append(f"{key} is {r[key]}, expected {want}")
if r["invariants_ok"] is not True:
    problems.append("the invariants do not hold")
if r["placed"] != r["sagas"]:
    problems.append(f"only {r['placed']} of {r['sagas']} orders were placed")
if r["kills"] < 10:
    problems.append(f"only {r['kills']} kills (at least 10 expected)")
if r["broker_restarts"] < 1:
    problems.append("nats-server was never restarted")
if proc.returncode != 0:
    problems.append(f"shop-chaos exited with {proc.returncode}")
if problems:
    sys.exit("chaos round failed: " + "; ".join(problems))
print(f"chaos round ok: {r['sagas']} sagas, {r['kills']} kills, {r['broker_restarts']} broker "
      f"restarts, {r['crashpoints_fired']} crash points fired, nothing lost or doubled")
