"""What the benchmark programs' tests share: their processes, read from
/proc, and a run started as a terminal starts it and then stopped by a
signal, checked whole.
"""
import glob
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from contextlib import closing


def processes():
    """(pid, ppid, session id, command line) of each live process; the
    command line as raw bytes, its arguments separated by NULs."""
    procs = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if fields[0] != "Z":
            procs.append((int(entry), int(fields[1]), int(fields[3]), cmdline))
    return procs


def children(pid):
    """(pid, command line) of pid's children."""
    return [(p, cmd) for p, ppid, _, cmd in processes() if ppid == pid]


def session(sid):
    """(pid, ppid, command line) of the processes of session sid."""
    return [(p, ppid, cmd) for p, ppid, s, cmd in processes() if s == sid]


def start(cmd, scratch):
    """cmd in a session of its own with TMPDIR scratch, taking SIGINT as
    from a shell (not ignored, as for a background job)."""
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, TMPDIR=scratch), start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def wait_emitting(run, scratch, timeout=60):
    """Waits until run's producer has committed events: an outbox row in a
    source database under scratch (a loaded machine can take seconds to
    start the consumer and the producer); True when it has."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and run.poll() is None:
        for db in glob.glob(os.path.join(scratch, "*", "source-*.db")):
            try:
                with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True,
                                             timeout=1)) as con:
                    if con.execute("SELECT 1 FROM choreo_outbox LIMIT 1").fetchone():
                        return True
            except sqlite3.Error:
                pass  # not created yet
        time.sleep(0.05)
    return False


def check_stopped(run, sig, to_group, scratch, timeout):
    """Sends sig to run (to its whole process group, as Ctrl-C does, with
    to_group) and checks that it exits 128 + sig saying so, leaving nothing
    in scratch and no process of its session; removes scratch."""
    assert run.poll() is None, (run.returncode, run.stderr.read())
    (os.killpg if to_group else os.kill)(run.pid, sig)
    err = run.communicate(timeout=timeout)[1]
    assert run.returncode == 128 + sig, (sig, run.returncode, err)
    assert "stopped what it started and removed its files" in err, err
    assert not os.listdir(scratch), (sig, os.listdir(scratch), err)
    for _ in range(20):  # what got SIGKILL may take a moment to go
        left = session(run.pid)
        if not left:
            break
        time.sleep(0.05)
    assert not left, (sig, left)
    os.rmdir(scratch)


def end(run, scratch):
    """After a test of run, whatever it asserted: its session killed if it
    still runs, and scratch removed."""
    if run.poll() is None:
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()
    shutil.rmtree(scratch, ignore_errors=True)
