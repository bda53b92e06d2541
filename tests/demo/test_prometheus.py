#!/usr/bin/env python3
"""A real Prometheus scrapes a short shop demo.

Runs the demo with --keep, checks each service's /metrics with promtool
check metrics (it must print nothing), starts a private Prometheus on a
free loopback port with temp storage, scraping the four services every
second and loading tools/monitoring/choreo-alerts.yml, then checks through
its HTTP API that:
  - every target is up;
  - the scraped saga counts, by outcome and reason, equal the demo's own
    summary (which the demo counts from the order database);
  - every alert rule evaluates without error against the real series;
  - each service has one active relay (choreo_relay_active).
Stops Prometheus and the demo by PID in every case.

usage: test_prometheus.py SHOP_DEMO BUILD_DIR SOURCE_DIR
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

ORDERS = 200


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def query(base, promql):
    url = base + "/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    body = json.loads(get(url))
    if body.get("status") != "success":
        fail("query %s: %s" % (promql, body))
    return body["data"]["result"]


def read_summary(demo, deadline):
    """The demo's JSON line on stdout (it keeps running afterwards)."""
    line = b""
    while time.time() < deadline:
        chunk = demo.stdout.readline()
        if not chunk:
            if demo.poll() is not None:
                fail("the demo exited with %s before printing its summary" % demo.returncode)
            continue
        line = chunk.strip()
        if line.startswith(b"{"):
            return json.loads(line)
    fail("no JSON summary from the demo within the time allowed")


def main():
    if len(sys.argv) != 4:
        fail(__doc__)
    shop_demo, build, source = sys.argv[1:4]
    for tool in ("prometheus", "promtool"):
        if not any(os.access(os.path.join(p, tool), os.X_OK)
                   for p in os.environ.get("PATH", "/usr/bin").split(":")):
            fail("%s is not installed: install the Debian package prometheus "
                 "(tools/test does)" % tool)
    rules = os.path.join(source, "tools", "monitoring", "choreo-alerts.yml")
    if not os.path.exists(rules):
        fail("the alert rules %s are missing" % rules)
    tmp = tempfile.mkdtemp(prefix="choreo-prom-")
    workdir = os.path.join(tmp, "demo")
    demo = subprocess.Popen(
        [shop_demo, "--orders", str(ORDERS), "--json", "--keep", "--build-dir", build,
         "--dir", workdir],
        stdout=subprocess.PIPE, stderr=open(os.path.join(tmp, "demo.err"), "w"))
    prom = None
    try:
        summary = read_summary(demo, time.time() + 120)
        if not summary.get("invariants_ok") or summary.get("pending") != 0:
            fail("the demo itself did not end clean: %s" % summary)
        targets = {}
        for name, url in summary["metrics"].items():
            text = get(url)
            check = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                                   capture_output=True)
            if check.returncode != 0 or check.stdout or check.stderr:
                fail("promtool check metrics on %s (%s): exit %d\n%s%s" % (
                    name, url, check.returncode, check.stdout.decode(), check.stderr.decode()))
            targets[name] = urllib.parse.urlparse(url).netloc
        print("promtool check metrics: silent on %s" % ", ".join(sorted(targets)), flush=True)

        port = free_port()
        config = os.path.join(tmp, "prometheus.yml")
        with open(config, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    "rule_files:\n  - %s\n"
                    "scrape_configs:\n  - job_name: choreo\n    static_configs:\n"
                    "      - targets: [%s]\n" % (
                        rules, ", ".join("'%s'" % t for t in targets.values())))
        prom = subprocess.Popen(
            ["prometheus", "--config.file=" + config,
             "--storage.tsdb.path=" + os.path.join(tmp, "data"),
             "--web.listen-address=127.0.0.1:%d" % port, "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "prometheus.log"), "w"))
        base = "http://127.0.0.1:%d" % port

        want = {("completed", ""): summary["completed"]}
        for reason, n in summary["by_reason"].items():
            outcome = "timed_out" if reason == "deadline" else "cancelled"
            if n:
                want[(outcome, reason)] = n
        got, ups = {}, []
        deadline = time.time() + 60
        while time.time() < deadline:
            if prom.poll() is not None:
                fail("prometheus exited with %s; see %s/prometheus.log" % (prom.returncode, tmp))
            try:
                ups = [r["metric"]["instance"] for r in query(base, "up == 1")]
                got = {(r["metric"].get("outcome", ""), r["metric"].get("reason", "")):
                       int(float(r["value"][1]))
                       for r in query(base, "sum by (outcome, reason) (choreo_sagas_total)")}
            except (OSError, ValueError):
                pass  # not serving yet
            if got == want and len(ups) == len(targets):
                break
            time.sleep(1)
        if len(ups) != len(targets):
            fail("targets up: %s of %s" % (ups, sorted(targets.values())))
        if got != want:
            fail("Prometheus has sagas %s, the demo counted %s" % (got, want))
        print("Prometheus scraped %d targets; sagas by outcome and reason equal the demo's: %s"
              % (len(targets), sorted(want.items())), flush=True)

        # Every rule has been evaluated against the real series, without error.
        deadline = time.time() + 20
        while True:
            groups = json.loads(get(base + "/api/v1/rules"))["data"]["groups"]
            rules_seen = [r for g in groups for r in g["rules"]]
            bad = [(r["name"], r.get("lastError")) for r in rules_seen
                   if r.get("health") != "ok"]
            if rules_seen and not bad:
                break
            if time.time() > deadline:
                fail("alert rules not all healthy: %s (of %d)" % (bad, len(rules_seen)))
            time.sleep(1)
        print("%d alert rules evaluate without error" % len(rules_seen), flush=True)

        # Each of the four services (one process each, on SQLite) has one
        # active relay, as ChoreoNoActiveRelay reads it.
        active = {r["metric"]["service"]: float(r["value"][1])
                  for r in query(base, "sum by (service) (choreo_relay_active)")}
        if active != {name: 1.0 for name in active} or len(active) != len(targets):
            fail("active relays by service: %s, expected 1 for each of %s"
                 % (active, sorted(targets)))
        print("one active relay in each service: %s" % sorted(active), flush=True)
    finally:
        for p in (prom, demo):
            if p and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
    shutil.rmtree(tmp, ignore_errors=True)
    print("ok")


if __name__ == "__main__":
    main()
