"""shop-demo --broker-profile-port: while the demo runs, its nats-server
serves a CPU profile on that loopback port, tools/perf/pprof_top.py prints
the broker's own functions from it (read from the URL, and from the file it
saved), and the demo ends as usual. A port that
is not a port, one that is taken, and the flag with --cluster, are refused.

  test_broker_profile.py SHOP_DEMO BUILD_DIR PPROF_TOP
"""
import gzip
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

demo, build, pprof_top = sys.argv[1:4]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def refused(args, words):
    r = subprocess.run([demo, "--build-dir", build] + args, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2 and all(w in r.stderr for w in words), (args, r.returncode,
                                                                    r.stderr)


refused(["--broker-profile-port", "0"], ["--broker-profile-port", "1..65535"])
refused(["--broker-profile-port", "80x"], ["--broker-profile-port", "1..65535"])
refused(["--broker-profile-port", "6061", "--cluster"], ["--broker-profile-port", "--cluster"])
with socket.socket() as taken:  # the broker would only exit, its reason in its log
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    refused(["--broker-profile-port", str(port)], [f"127.0.0.1:{port} is taken"])

with tempfile.TemporaryDirectory(prefix="choreo-broker-profile-") as tmp:
    port = free_port()
    out = open(os.path.join(tmp, "demo.json"), "w")
    run = subprocess.Popen([demo, "--build-dir", build, "--orders", "900", "--rate", "150",
                            "--json", "--dir", os.path.join(tmp, "run"),
                            "--broker-profile-port", str(port)], stdout=out)
    base = "http://127.0.0.1:%d/debug/pprof/" % port
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(base, timeout=1).read()
                break
            except OSError:
                assert run.poll() is None, "shop-demo exited (%s) before its broker served a " \
                    "profile" % run.returncode
                time.sleep(0.1)
        else:
            raise AssertionError("no profile endpoint at %s within 30 s" % base)
        # Straight from the URL, keeping the profile; then the kept file.
        profile = os.path.join(tmp, "broker.pprof")
        top = subprocess.run([sys.executable, pprof_top, base + "profile?seconds=2", "--top",
                              "10", "--save", profile], capture_output=True, text=True,
                             timeout=60)
        assert top.returncode == 0, top.stderr
        assert "s of CPU sampled" in top.stdout and "cumulative" in top.stdout, top.stdout
        # The broker's own code, by name: nats-server, not a guess.
        assert "nats-server/server." in top.stdout, top.stdout
        again = subprocess.run([sys.executable, pprof_top, profile, "--top", "10"],
                               capture_output=True, text=True, timeout=60)
        assert again.returncode == 0 and again.stdout == top.stdout, (again.stderr,
                                                                      again.stdout)
        # Damaged profiles: the real one with a last field that runs past its end, and fields of the wrong
        # wire type (a number where a sample or a string belongs), are
        # refused by name, never with a traceback.
        good = open(profile, "rb").read()
        raw = gzip.decompress(good) if good[:2] == b"\x1f\x8b" else good
        for i, data in enumerate((raw + b"\x0a\x7f", b"\x20\x05", b"\x12\x02\x08\x01\x32\x01",
                                  b"\x10\x07\x32\x03abc")):
            bad = os.path.join(tmp, "bad%d.pprof" % i)
            open(bad, "wb").write(data)
            r = subprocess.run([sys.executable, pprof_top, bad], capture_output=True, text=True,
                               timeout=60)
            assert r.returncode == 1 and "Traceback" not in r.stderr and \
                ("is not a pprof profile" in r.stderr or "has no samples" in r.stderr), \
                (data[:20], r.returncode, r.stderr)
        assert run.wait(timeout=120) == 0, "shop-demo exited %s" % run.returncode
    finally:
        if run.poll() is None:
            run.terminate()
            run.wait(timeout=30)
    out.close()
    d = json.load(open(os.path.join(tmp, "demo.json")))
    assert d["invariants_ok"] is True and d["placed"] == 900, d
    print("broker profile ok: %s" % top.stdout.splitlines()[0])
