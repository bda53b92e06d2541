#!/usr/bin/env python3
"""The short chaos rounds of the test suite, about 300 sagas each.

chaos_round.py SHOP_CHAOS_BINARY            services killed (at least 10 times),
                                            nats-server restarted (at least once),
                                            processes paused with SIGSTOP for 0.5
                                            to 4 s (at least 3 times, the broker
                                            at least once), durable consumers
                                            deleted on the server (at least once),
                                            second processes of a running service
                                            (at least twice: on its SQLite database,
                                            then on a new file while the first is
                                            frozen; each must be refused), a service's
                                            database write-locked from outside (at
                                            least twice, once past its busy timeout),
                                            crash points on
chaos_round.py SHOP_CHAOS_BINARY --faults   the same with every injected fault on
                                            (full disk, slow handlers, events
                                            retried until their last delivery, kills
                                            on a last delivery), then the operator's
                                            repair: restart without faults and retry
                                            every parked message
chaos_round.py SHOP_CHAOS_BINARY --postgres the first round with the payment service
                                            on PostgreSQL in two instances (a private
                                            server), one of them killed at least
                                            three times, the server crashed or
                                            restarted at least once, the instance
                                            whose relay is active frozen at least
                                            twice past its relay lease (the other
                                            must take over, and one relay be
                                            active at the end)
... --seed N                                the round with seed N instead of its
                                            own (7; 11 with --faults)
... --style STYLE                           the services run the saga in STYLE:
                                            choreography (the default),
                                            orchestration or tcc

Fails on any lost or duplicated event, any broken invariant, any service exit
the harness did not cause, or too little chaos (or too few faults) to prove
anything.
"""
import json
import subprocess
import sys

binary = sys.argv[1]
faults = "--faults" in sys.argv[2:]
postgres = "--postgres" in sys.argv[2:]
# --seed N: the seed of the round's random schedule (each build of the
# suite gives its own); without it, the round's usual one.
seed = None
if "--seed" in sys.argv[2:]:
    seed = sys.argv[sys.argv.index("--seed") + 1]
if faults:
    cmd = [binary, "--sagas", "300", "--duration-s", "15", "--kill-interval-ms", "1000",
           "--broker-interval-ms", "8000", "--crash-prob", "0.001", "--faults",
           "--disk-full-prob", "0.008", "--slow-handler-prob", "0.004",
           "--retry-until-last-prob", "0.02", "--mark-fail-prob", "0.005", "--seed", "11",
           "--json"]
else:
    # Each kill waits for its restart, so under ThreadSanitizer 20 s of load
    # can hold only 9 kills: --min-kills goes on killing after the last order
    # until there were 10.
    cmd = [binary, "--sagas", "300", "--duration-s", "20", "--kill-interval-ms", "500",
           "--min-kills", "10", "--broker-interval-ms", "5000", "--crash-prob", "0.001",
           "--pause-interval-ms", "3000", "--min-pauses", "3",
           "--consumer-delete-interval-ms", "4000", "--second-copy-interval-ms", "4000",
           "--db-lock-interval-ms", "3000",
           "--seed", "7", "--json"]
if seed is not None:
    cmd[cmd.index("--seed") + 1] = seed
if "--style" in sys.argv[2:]:
    cmd[1:1] = ["--style", sys.argv[sys.argv.index("--style") + 1]]
if postgres:
    cmd[1:1] = ["--store", "payment=postgres", "--instances", "payment=2",
                "--postgres-interval-ms", "6000", "--min-instance-kills", "3",
                "--relay-freeze-interval-ms", "4000", "--min-relay-freezes", "2"]
print("running:", " ".join(cmd), flush=True)
proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=600)
sys.stderr.write(proc.stderr[-6000:])
print(proc.stdout)
try:
    r = json.loads(proc.stdout.strip().splitlines()[-1])
except (ValueError, IndexError):
    sys.exit(f"no JSON result (exit status {proc.returncode})")

problems = []
for key, want in (("lost", 0), ("duplicated", 0), ("lost_events", 0), ("duplicated_events", 0),
                  ("phantom_events", 0),
                  ("unexpected_exits", 0), ("sanitizer_reports", 0), ("failed_requests", 0),
                  ("retry_failures", 0), ("second_copy_failures", 0)):
    if r[key] != want:
        problems.append(f"{key} is {r[key]}, expected {want}")
for u in r["unexpected"]:
    problems.append(f"{u['service']} exited with {u['status']} during {u['phase']}")
if r["invariants_ok"] is not True:
    problems.append("the invariants do not hold")
if r["error"]:
    problems.append(f"the run ended early: {r['error']}")
if r["placed"] != r["sagas"]:
    problems.append(f"only {r['placed']} of {r['sagas']} orders were placed")
if faults:
    for key in ("disk_full_episodes", "slow_handlers", "retry_until_last", "last_delivery_kills",
                "mark_failures"):
        if r[key] < 1:
            problems.append(f"{key} is {r[key]}: that fault never fired")
else:
    if r["kills"] < 10:
        problems.append(f"only {r['kills']} kills (at least 10 expected)")
    if r["broker_restarts"] < 1:
        problems.append("nats-server was never restarted")
    if r["graceful_restarts"] < 1:
        problems.append("no service was restarted with SIGTERM")
    if r["pauses"] < 3 or r["broker_pauses"] < 1:
        problems.append(f"{r['pauses']} pauses, {r['broker_pauses']} of the broker "
                        "(at least 3 and 1 expected)")
    if r["consumers_deleted"] < 1:
        problems.append("no durable consumer was deleted")
    if r["second_copies"] < 2 or r["frozen_copies"] < 1:
        problems.append(f"{r['second_copies']} second processes started, {r['frozen_copies']} "
                        "on a new file with the first frozen (at least 2 and 1 expected)")
    if r["db_locks"] < 2:
        problems.append(f"{r['db_locks']} databases write-locked from outside (at least 2 "
                        "expected, the second past busy_timeout_ms)")
if postgres:
    if r["processes"] != 5:
        problems.append(f"{r['processes']} service processes, expected 5 (payment twice)")
    if r["instance_kills"] < 3:
        problems.append(f"only {r['instance_kills']} kills of a payment instance (3 expected)")
    if r["postgres_restarts"] < 1:
        problems.append("the PostgreSQL server was never restarted")
    if r["relay_freezes"] < 2 or r["relay_takeovers"] < 1:
        problems.append(f"{r['relay_freezes']} freezes of the active relay's instance, "
                        f"{r['relay_takeovers']} taken over (at least 2 and 1 expected)")
    if r["relays_not_one"] != 0:
        problems.append("a scaled service did not end with exactly one active relay")
if proc.returncode != 0:
    problems.append(f"shop-chaos exited with {proc.returncode}")
if r["ok"] is not (proc.returncode == 0):
    problems.append(f"\"ok\" is {r['ok']} but the exit status is {proc.returncode}")
if problems:
    sys.exit("chaos round failed: " + "; ".join(problems))
if faults:
    print(f"chaos round with faults ok: {r['sagas']} sagas, {r['disk_full_episodes']} disk full "
          f"episodes, {r['slow_handlers']} slow handlers, {r['retry_until_last']} events retried "
          f"until their last delivery, {r['last_delivery_kills']} last-delivery kills, "
          f"{r['mark_failures']} failed inbox marks, "
          f"{r['parked']} parked, {r['parked_retried']} retried, {r['still_parked']} still parked; "
          f"nothing lost or doubled")
else:
    print(f"chaos round ok: {r['sagas']} sagas, {r['kills']} kills "
          f"({r['instance_kills']} of an instance of a scaled service), "
          f"{r['graceful_restarts']} restarts with SIGTERM, "
          f"{r['broker_restarts']} broker restarts, {r['crashpoints_fired']} crash points "
          f"fired, nothing lost or doubled")
