#!/usr/bin/env python3
"""The engine of tools/compare: runs the shop demo once per saga style on the
same seed and load, measures each run, and prints the classic comparison of
TCC, Saga and the local message table with measured columns next to its
opinions.

Each run of a style is `shop-demo --style S --orders N --seed S --json --dir
D` while sampler.py reads the four databases in D; then the databases the
run left behind (outboxes, inboxes, consumers) are counted. The styles run
round by round (--runs, 3 by default) and each measure is the median of its
runs. handler_loc.py reads the handler code of services/*/*.c. Text table,
--json, --svg FILE.
"""
import argparse
import ctypes
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import handler_loc  # noqa: E402
import sampler  # noqa: E402
import svg  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STYLES = ("choreography", "orchestration", "tcc")
SERVICES = ("order", "inventory", "payment", "points")

# The classic table's opinions. Its columns are TCC, Saga and the local
# message table; the shop's styles stand for them as: tcc, orchestration
# (an orchestrated saga) and choreography (each service's local message
# table, its outbox, alone carries the flow from one service to the next).
CLASSIC = {
    "choreography": {"as": "local message table", "consistency": "eventual",
                     "intrusion": "low", "performance": "high", "intermediate_states": "visible"},
    "orchestration": {"as": "Saga", "consistency": "eventual", "intrusion": "low",
                      "performance": "high", "intermediate_states": "visible"},
    "tcc": {"as": "TCC", "consistency": "strong", "intrusion": "high", "performance": "lower",
            "intermediate_states": "not visible"},
}

RULES = {
    "sagas_per_s": "the demo's own: sagas that ended on their own (not by the deadline) "
                   "from the first order placed to the last of them final",
    "p50_ms": "the demo's own: placed -> final per saga, deadline expiries excluded",
    "p99_ms": "the demo's own, as p50_ms",
    "events_per_saga": "rows of the four services' choreo_outbox after the run, per order: "
                       "every event written, published or (a timer) still waiting; the outbox "
                       "keeps published rows for outbox_retention_s (a day), and the audit "
                       "tables are off by default",
    "timers_per_saga": "the part of events_per_saga written with a delay: deadlines, step "
                       "timeouts and compensation retries",
    "transactions_per_saga": "local transactions per order: one per handled event (the rows of "
                             "choreo_inbox, one per consumer and event) and one per PlaceOrder "
                             "request that placed an order, plus the transactions the events "
                             "still waiting in an outbox will cost (one per consumer of their "
                             "type); seeding requests and re-sent idempotency keys not counted",
    "compensations": "the demo's own: stock released + payments unfrozen + points revoked",
    "intermediate_seen": "orders a reader saw, at least once, with stock RESERVED or money "
                         "FROZEN or HELD, while PENDING or after final but before settlement",
    "intermediate_mean_ms": "mean over those orders of the time from the first to the last "
                            "sample that saw them held (resolution: the sampling period)",
    "intermediate_max_ms": "the longest such time; a payment held for review stays frozen "
                           "until it is decided or its deadline passes",
    "intermediate_after_final": "orders seen held after their order was already final",
    "handler_loc": "non-blank, non-comment lines of the functions a style's registration "
                   "reaches in services/*/*.c, less those every style reaches "
                   "(tools/compare.d/handler_loc.py)",
}


# The measures kept for each run, next to their medians.
RUN_KEYS = ("sagas_per_s", "p50_ms", "p99_ms", "events_per_saga", "transactions_per_saga",
            "compensations", "intermediate_seen", "intermediate_mean_ms",
            "intermediate_after_final")


class Failed(Exception):
    pass


class Stop(Exception):
    """SIGTERM: stop the run in progress and clean up."""


def on_term(sig, frame):
    raise Stop()


def parse(argv):
    p = argparse.ArgumentParser(
        prog="tools/compare", allow_abbrev=False,
        description="Runs the shop demo in each saga style (choreography, orchestration, tcc) "
                    "on the same seed and load and prints the classic comparison of TCC, Saga "
                    "and the local message table with measured columns.")
    p.add_argument("--orders", type=int, default=1000, metavar="N",
                   help="orders per style [1000]")
    p.add_argument("--seed", type=int, default=1, metavar="S", help="seed of the order mix [1]")
    p.add_argument("--build-dir", default=os.path.join(ROOT, "build"), metavar="DIR",
                   help="the build with shop-demo and the services [build/]")
    p.add_argument("--runs", type=int, default=3, metavar="K",
                   help="runs of each style, in rounds; each measure is the median [3]")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--svg", metavar="FILE", help="write a bar chart of the measures to FILE")
    p.add_argument("--sample-ms", type=float, default=5.0, metavar="MS",
                   help="how often the reader samples the databases [5]")
    o = p.parse_args(argv)
    if o.orders < 1 or o.orders > 10000000:
        p.error("--orders takes 1 to 10000000, not %d" % o.orders)
    if o.runs < 1 or o.runs > 99:
        p.error("--runs takes 1 to 99, not %d" % o.runs)
    if o.seed < 0 or o.seed > 2**63 - 1:
        p.error("--seed takes 0 to %d, not %d" % (2**63 - 1, o.seed))
    if o.sample_ms < 1 or o.sample_ms > 1000:
        p.error("--sample-ms takes 1 to 1000, not %g" % o.sample_ms)
    return o


def counts(workdir):
    """What the run left in the four databases."""
    out = {"outbox": 0, "timers": 0, "inbox": 0, "orders": 0, "by_type": {}, "waiting": []}
    consumers = {}
    for name in SERVICES:
        db = sqlite3.connect("file:%s?mode=ro" % os.path.join(workdir, name + ".db"), uri=True,
                             timeout=5.0)
        try:
            for headers, subject, delayed, waiting in db.execute(
                    "SELECT headers, subject, publish_at * 1000 > created_at + 1000, "
                    "published_at IS NULL FROM choreo_outbox"):
                typ = event_type(headers, subject)
                out["outbox"] += 1
                out["timers"] += delayed
                out["by_type"][typ] = out["by_type"].get(typ, 0) + 1
                if waiting:
                    out["waiting"].append(typ)
            out["inbox"] += db.execute("SELECT COUNT(*) FROM choreo_inbox").fetchone()[0]
            for (typ,) in db.execute("SELECT type FROM choreo_consumers"):
                consumers[typ] = consumers.get(typ, 0) + 1
            if name == "order":
                out["orders"] = db.execute("SELECT COUNT(*) FROM orders").fetchone()[0]
        finally:
            db.close()
    out["pending_tx"] = sum(consumers.get(t, 0) for t in out["waiting"])
    out["waiting"] = len(out["waiting"])
    return out


def event_type(headers, subject):
    for line in headers.splitlines():
        if line.startswith("Choreo-Type:"):
            return line.split(":", 1)[1].strip()
    parts = subject.split(".")
    return parts[1] if len(parts) > 2 else subject


LIBC = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def die_with_parent():
    """In the demo's process before exec: SIGTERM when this process dies,
    also by SIGKILL, so that the demo stops what it started (as the
    supervisor's children do with the demo)."""
    LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def run_style(o, style, demo, tmp, k):
    """Run k of one style: the demo's JSON, the sampler's summary and the
    counts of the databases, as one dict of measures."""
    workdir = os.path.join(tmp, "%s-%d" % (style, k + 1))
    err_path = workdir + ".stderr"
    cmd = [demo, "--style", style, "--orders", str(o.orders), "--seed", str(o.seed), "--json",
           "--dir", workdir, "--build-dir", o.build_dir]
    print("tools/compare: run %d/%d, %s: %d orders (seed %d) ..."
          % (k + 1, o.runs, style, o.orders, o.seed), file=sys.stderr, flush=True)
    os.makedirs(workdir)
    reader = sampler.Sampler(workdir, o.sample_ms)
    with open(err_path, "w") as err:
        # The reader starts after the fork (no other thread may run while
        # the child sets its parent-death signal); it waits for the
        # databases, which the services create only once nats-server is up.
        child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True,
                                 preexec_fn=die_with_parent)
        reader.start()
        try:
            out, _ = child.communicate()
        except BaseException:
            # Ctrl-C reaches the demo too; SIGTERM is passed on. Either way
            # it stops what it started; wait for that.
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
            child.wait()
            reader.finish()
            raise
    seen = reader.finish()
    try:
        d = json.loads(out)
    except ValueError:
        d = None
    if child.returncode != 0 or d is None:
        with open(err_path) as f:
            tail = f.read()[-3000:]
        raise Failed("%s: shop-demo exited with status %d%s\n%s\n(databases and logs kept in "
                     "%s)" % (style, child.returncode,
                              "" if d else " and printed no JSON",
                              tail.rstrip(), workdir))
    try:
        c = counts(workdir)
    except sqlite3.Error as e:
        raise Failed("%s: cannot read the databases in %s: %s" % (style, workdir, e))
    shutil.rmtree(workdir, ignore_errors=True)
    os.remove(err_path)
    n = c["orders"] or 1
    return {
        "sagas_per_s": d["sagas_per_s"],
        "p50_ms": d["p50_ms"],
        "p99_ms": d["p99_ms"],
        "events_per_saga": round(c["outbox"] / n, 2),
        "timers_per_saga": round(c["timers"] / n, 2),
        "transactions_per_saga": round((c["inbox"] + c["orders"] + c["pending_tx"]) / n, 2),
        "compensations": d["compensations"],
        "intermediate_seen": seen["orders_seen"],
        "intermediate_mean_ms": seen["mean_ms"],
        "intermediate_p50_ms": seen["p50_ms"],
        "intermediate_max_ms": seen["max_ms"],
        "intermediate_after_final": seen["after_final"],
        "orders": c["orders"],
        "completed": d["completed"],
        "cancelled": d["cancelled"],
        "invariants_ok": d["invariants_ok"],
        "by_kind": d["by_kind"],
        "events": c["outbox"],
        "events_by_type": dict(sorted(c["by_type"].items())),
        "inbox_marks": c["inbox"],
        "transactions_pending": c["pending_tx"],
        "sampler": {"samples": seen["samples"], "period_ms": seen["period_ms"],
                    "read_errors": seen["read_errors"], "cpu_s": seen["cpu_s"]},
        "wall_s": d["wall_s"],
    }


def combine(rs):
    """The runs of one style as one: the median of each number; lists and
    maps from the run with the median sagas_per_s; invariants_ok only when
    they held in every run; and each run's main measures under "runs"."""
    by_speed = sorted(rs, key=lambda r: r["sagas_per_s"])
    out = dict(by_speed[(len(rs) - 1) // 2])
    for key, v in rs[0].items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            m = statistics.median(r[key] for r in rs)
            out[key] = int(m) if m == int(m) and isinstance(v, int) else round(m, 2)
    out["invariants_ok"] = all(r["invariants_ok"] for r in rs)
    out["runs"] = [{key: r[key] for key in RUN_KEYS} for r in rs]
    return out


def text_table(res):
    s = res["styles"]
    fmt = "%-14s %7s %7s %7s %7s %7s %5s %6s %6s %9s %7s | %s"
    head = fmt % ("style", "sagas/s", "p50 ms", "p99 ms", "events", "tx", "comp", "held",
                  "after", "held ms", "handler", "the classic table says")
    sub = fmt % ("", "", "", "", "/saga", "/saga", "", "orders", "final", "mean/max", "LOC",
                 "consistency, intrusion, performance, intermediate states")
    cut = head.index("|")
    lines = [head, sub, "-" * cut + "+" + "-" * (len(sub) - cut - 1)]
    for st in STYLES:
        r, q = s[st], CLASSIC[st]
        lines.append(fmt % (
            st, "%.0f" % r["sagas_per_s"], "%.1f" % r["p50_ms"], "%.1f" % r["p99_ms"],
            "%.2f" % r["events_per_saga"], "%.2f" % r["transactions_per_saga"],
            r["compensations"], r["intermediate_seen"], r["intermediate_after_final"],
            "%.0f/%.0f" % (r["intermediate_mean_ms"], r["intermediate_max_ms"]), r["handler_loc"],
            "%s: %s, %s, %s, %s" % (q["as"], q["consistency"], q["intrusion"], q["performance"],
                                    q["intermediate_states"])))
    return "\n".join(lines)


def print_text(res):
    o = res["run"]
    print("choreo: the shop in three styles, %d orders each, seed %d; the median of %d run%s "
          "per style" % (o["orders"], o["seed"], o["runs"], "" if o["runs"] == 1 else "s"))
    print("on %d CPUs, load average %.1f before and %.1f after"
          % (o["cpus"], o["load_before"], o["load_after"]))
    print()
    print(text_table(res))
    print()
    s = res["styles"]
    print("events/saga   rows of the four choreo_outbox tables per order; timers among them:")
    print("              %s" % ", ".join("%s %.2f" % (st, s[st]["timers_per_saga"])
                                         for st in STYLES))
    print("tx/saga       local transactions per order: choreo_inbox rows (one per handled event)")
    print("              + one PlaceOrder request + those the timers still waiting will cost")
    print("comp          compensations: stock released + payments unfrozen + points revoked")
    print("held orders   orders a reader saw with stock RESERVED or money FROZEN/HELD")
    print("              (sampled every %g ms, read-only); after final: of those, seen held"
          % o["sample_ms"])
    print("              once the order was COMPLETED or CANCELLED, before it was settled")
    print("held ms       first to last sample that saw an order held; the %d orders of customers"
          % o["review_orders"])
    print("              flagged for review stay held until decided or out of time")
    print("handler LOC   lines of the functions each style's registration reaches in")
    print("              services/*/*.c, less those every style reaches (the shared business")
    print("              steps); rule in tools/compare.d/handler_loc.py, functions in --json")
    print("The classic table's TCC, Saga and local message table are the tcc, orchestration")
    print("and choreography styles here; all three run on the same outbox, inbox and barrier.")


def main(argv):
    o = parse(argv)
    o.build_dir = os.path.abspath(o.build_dir)
    demo = os.path.join(o.build_dir, "tools", "supervisor", "shop-demo")
    if not os.access(demo, os.X_OK):
        print("tools/compare: no shop-demo in %s: build first (tools/compare does), or pass "
              "--build-dir" % o.build_dir, file=sys.stderr)
        return 2
    if o.svg:
        where = os.path.dirname(os.path.abspath(o.svg))
        why = ("is a directory: give a file name" if os.path.isdir(o.svg) else
               "no such directory" if not os.path.isdir(where) else
               "cannot write there" if not os.access(where, os.W_OK) else None)
        if why:
            print("tools/compare: --svg %s: %s" % (o.svg, why), file=sys.stderr)
            return 2
    try:
        loc = handler_loc.measure(ROOT)
    except (OSError, handler_loc.ReadError) as e:
        print("tools/compare: cannot read the services' handlers: %s" % e, file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, on_term)
    load_before = os.getloadavg()[0]
    tmp = tempfile.mkdtemp(prefix="choreo-compare-")
    keep = False
    runs = {st: [] for st in STYLES}
    try:
        # Round by round, so that a slower spell of the machine falls on
        # every style rather than on one.
        for k in range(o.runs):
            for st in STYLES:
                runs[st].append(run_style(o, st, demo, tmp, k))
    except Failed as e:
        print("tools/compare: %s" % e, file=sys.stderr)
        keep = True
        return 1
    except (KeyboardInterrupt, Stop):
        print("tools/compare: interrupted; the demo stopped what it started", file=sys.stderr)
        return 130
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
    styles = {}
    for st in STYLES:
        styles[st] = combine(runs[st])
        styles[st]["handler_loc"] = loc["styles"][st]["loc"]
        styles[st]["handler_functions"] = loc["styles"][st]["functions"]
    review = styles[STYLES[0]]["by_kind"].get("review", 0)
    res = {
        "styles": styles,
        "run": {"orders": o.orders, "seed": o.seed, "runs": o.runs, "sample_ms": o.sample_ms,
                "cpus": os.cpu_count(), "build_dir": o.build_dir,
                "review_orders": review, "load_before": round(load_before, 2),
                "load_after": round(os.getloadavg()[0], 2)},
        "classic": CLASSIC,
        "rules": RULES,
        "handler_loc_services": loc["services"],
    }
    if o.svg:
        svg.write(o.svg, res, STYLES)
    if o.json:
        print(json.dumps(res, indent=2))
    else:
        print_text(res)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
