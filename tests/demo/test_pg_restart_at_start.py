#!/usr/bin/env python3
"""A shop service on PostgreSQL whose server crashes while the service
creates its schema at start: the service waits for the server, creates the
schema again and runs, where it used to exit 1 ("committing a transaction:
server closed the connection unexpectedly").

The crash is made to land inside the schema's transaction: another session
holds an uncommitted CREATE TABLE accounts, so the service's CREATE TABLE IF
NOT EXISTS accounts waits on it (lock_timeout_ms 60000), and the server is stopped in immediate mode
(a crash: every connection drops, open transactions roll back) and started
again while it waits. Then the service starts on a real nats-server, and a
SIGTERM ends it with status 0.

  with-postgres test_pg_restart_at_start.py SHOP_PAYMENT
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

payment = sys.argv[1]
url = os.environ["CHOREO_TEST_PG"]
pg_bin = os.environ["CHOREO_TEST_PG_BIN"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def psql(sql):
    r = subprocess.run(["psql", "-X", "-qtA", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, (sql, r.stderr)
    return r.stdout.strip()


def pg_ctl(*args):
    cmd = [os.path.join(pg_bin, "pg_ctl")] + list(args)
    if os.getuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    # No pipes: the server it starts would hold them open.
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=90,
                       cwd="/")
    assert r.returncode == 0, (args, r.returncode)


def wait_for(what, cond, seconds, proc=None, log=None):
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        if cond():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError("shop-payment exited %s while waiting for %s; its log:\n%s"
                                 % (proc.returncode, what, open(log).read()[-3000:]))
        time.sleep(0.1)
    raise AssertionError("no %s within %d s" % (what, seconds))


data_dir = psql("SHOW data_directory")
with tempfile.TemporaryDirectory(prefix="choreo-pg-restart-") as tmp:
    nats_port = free_port()
    nats = subprocess.Popen([shutil.which("nats-server"), "-a", "127.0.0.1", "-p", str(nats_port),
                             "-js", "-sd", os.path.join(tmp, "js")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    holder = service = None
    log_path = os.path.join(tmp, "payment.log")
    try:
        # The session that holds the table's name in an open transaction.
        holder = subprocess.Popen(["psql", "-X", "-q", url], stdin=subprocess.PIPE,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  text=True)
        holder.stdin.write("BEGIN; CREATE TABLE accounts(x integer); SELECT pg_sleep(120);\n")
        holder.stdin.flush()
        wait_for("held CREATE TABLE",
                 lambda: psql("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                              "AND query LIKE 'SELECT pg_sleep(120)%'") != "0", 30)

        log = open(log_path, "w")
        service = subprocess.Popen([payment, "--db", url, "--nats-url",
                                    "nats://127.0.0.1:%d" % nats_port, "--log-level", "info",
                                    "--lock-timeout-ms", "60000"],
                                   stdout=log, stderr=subprocess.STDOUT,
                                   env={k: v for k, v in os.environ.items()
                                        if not k.startswith("CHOREO_")})
        # The service's schema transaction waits for the holder's lock.
        wait_for("schema statement waiting on the held table",
                 lambda: psql("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = "
                              "'Lock' AND query LIKE '%CREATE TABLE IF NOT EXISTS accounts%'")
                 != "0", 30, service, log_path)

        pg_ctl("restart", "-D", data_dir, "-m", "immediate", "-w", "-t", "60", "-l",
               os.path.join(os.path.dirname(data_dir), "server.log"))
        holder.wait(timeout=30)

        # Past its schema, the service connects to NATS, makes its stream and
        # consumers, and logs that it started.
        wait_for("start after the crash", lambda: 'msg="service started"' in open(log_path).read(),
                 60, service, log_path)
        columns = psql("SELECT string_agg(column_name, ',' ORDER BY column_name) FROM "
                       "information_schema.columns WHERE table_name = 'accounts'")
        assert columns == "balance,frozen,review,spent,user_id", columns
        text = open(log_path).read()
        assert "creating the schema failed; trying again" in text, text[-3000:]
        time.sleep(1)
        assert service.poll() is None, "shop-payment exited %s; its log:\n%s" % (
            service.returncode, open(log_path).read()[-3000:])
        service.terminate()
        rc = service.wait(timeout=60)
        assert rc == 0, "shop-payment ended with %s after SIGTERM; its log:\n%s" % (
            rc, open(log_path).read()[-3000:])
        print("service on PostgreSQL crashed during its schema: created again and started")
    finally:
        for p in (service, holder, nats):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
