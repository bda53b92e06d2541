"""A reader of the shop's databases while the demo runs: every period it
reads, read-only, which orders have stock reserved (inventory's reservations
in state RESERVED) or money frozen (payment's payments in state FROZEN, or
HELD for review: the states whose amounts make up an account's frozen
column), and the state of those orders. WAL lets it read while the services
write; each of its reads is one short read transaction of one database, so
it takes no lock a service waits for.

An order seen in such a state is an intermediate state a reader could see:
while the order is still PENDING, or after it became final and before the
services settled it (sold or released, captured or unfrozen). For each such
order it keeps the first and the last sample that saw it held.
"""
import os
import resource
import sqlite3
import threading
import time

HELD_STOCK = "SELECT order_id FROM reservations WHERE state = 'RESERVED'"
HELD_MONEY = "SELECT order_id FROM payments WHERE state IN ('FROZEN', 'HELD')"


class Sampler(threading.Thread):
    def __init__(self, workdir, period_ms):
        super().__init__(daemon=True)
        self.workdir, self.period = workdir, period_ms / 1000.0
        self.stop_flag = threading.Event()
        self.dbs = {}
        self.first, self.last = {}, {}
        self.after_final = set()
        self.final = {}  # order_id -> finished_us, once seen final
        self.samples = 0
        self.started = self.ended = None
        self.errors = 0
        self.cpu_s = 0.0

    def open(self, name):
        if name in self.dbs:
            return self.dbs[name]
        path = os.path.join(self.workdir, name + ".db")
        if not os.path.exists(path):
            return None
        db = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=1.0,
                             isolation_level=None, check_same_thread=False)
        self.dbs[name] = db
        return db

    def query(self, name, sql, args=()):
        db = self.open(name)
        if db is None:
            return None
        try:
            return db.execute(sql, args).fetchall()
        except sqlite3.OperationalError:
            return None  # the service has not created its tables yet

    def sample(self):
        t = time.time()
        stock = self.query("inventory", HELD_STOCK)
        money = self.query("payment", HELD_MONEY)
        if stock is None or money is None:
            return False
        held = {r[0] for r in stock} | {r[0] for r in money}
        unknown = [o for o in held if o not in self.final]
        for i in range(0, len(unknown), 500):
            part = unknown[i:i + 500]
            rows = self.query("order", "SELECT order_id, finished_us FROM orders "
                              "WHERE state != 'PENDING' AND order_id IN (%s)"
                              % ",".join("?" * len(part)), part)
            for oid, fin in rows or ():
                self.final[oid] = fin or 0
        for oid in held:
            self.first.setdefault(oid, t)
            self.last[oid] = t
            fin = self.final.get(oid)
            if fin is not None and fin / 1e6 < t:
                self.after_final.add(oid)
        return True

    def run(self):
        def cpu():
            r = resource.getrusage(resource.RUSAGE_THREAD)
            return r.ru_utime + r.ru_stime

        cpu0 = cpu()
        nxt = time.time()
        while not self.stop_flag.is_set():
            try:
                if self.sample():
                    self.samples += 1
                    self.started = self.started or time.time()
                    self.ended = time.time()
            except sqlite3.Error:
                self.errors += 1
            nxt += self.period
            delay = nxt - time.time()
            if delay < 0:
                nxt = time.time()
                delay = 0
            self.stop_flag.wait(delay)
        self.cpu_s = cpu() - cpu0

    def finish(self):
        """Stops sampling and returns the summary."""
        self.stop_flag.set()
        self.join()
        for db in self.dbs.values():
            db.close()
        held = sorted((self.last[o] - self.first[o]) * 1000.0 for o in self.first)
        span = (self.ended - self.started) if self.samples > 1 else 0.0
        return {
            "orders_seen": len(held),
            "mean_ms": round(sum(held) / len(held), 1) if held else 0.0,
            "p50_ms": round(held[len(held) // 2], 1) if held else 0.0,
            "max_ms": round(held[-1], 1) if held else 0.0,
            "after_final": len(self.after_final),
            "samples": self.samples,
            "period_ms": round(span * 1000.0 / (self.samples - 1), 2) if self.samples > 1 else 0.0,
            "read_errors": self.errors,
            "cpu_s": round(self.cpu_s, 2),
        }
