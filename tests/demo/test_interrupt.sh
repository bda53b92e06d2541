#!/usr/bin/env bash
# Stopping the demo midway leaves nothing behind: shop-demo runs in a
# process group of its own (setsid), is interrupted with SIGINT while
# orders flow, must exit 130 within the stop grace and say so in its
# --json output, and no process of its group (services, nats-server) may
# be left; the same with SIGTERM (exit 143). Then the same with SIGKILL,
# where PR_SET_PDEATHSIG must take the children down.
#
#   test_interrupt.sh SHOP_DEMO BUILD_DIR
set -uo pipefail
demo=$1 build=$2
dir=$(mktemp -d "${TMPDIR:-/tmp}/choreo-demo-int-XXXXXX")
pids=()
cleanup() {
    # Only the process groups this test created, and only if something is
    # left (which is already a failure).
    for p in "${pids[@]}"; do kill -KILL -- "-$p" 2>/dev/null; done
    rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

orders_in() {
    python3 -c "import sqlite3,sys
try: print(sqlite3.connect('file:'+sys.argv[1]+'?mode=ro', uri=True).execute('SELECT COUNT(*) FROM orders').fetchone()[0])
except Exception: print(0)" "$1"
}

# run SIGNAL NAME: starts a long demo, waits for orders to flow, signals it.
run() {
    local sig=$1 name=$2 run="$dir/$2"
    setsid "$demo" --build-dir "$build" --orders 1000000 --json --dir "$run" \
        >"$dir/$name.out" 2>"$dir/$name.err" &
    local pid=$!
    pids+=("$pid")
    # setsid makes the group once it runs: give it that moment.
    local tries=0
    while [ "$(ps -o pgid= -p "$pid" | tr -d ' ')" != "$pid" ] && [ $tries -lt 100 ]; do
        sleep 0.02
        tries=$((tries + 1))
    done
    [ "$(ps -o pgid= -p "$pid" | tr -d ' ')" = "$pid" ] || fail "$name: shop-demo is not its own process group"
    local n=0
    for _ in $(seq 1 600); do
        n=$(orders_in "$run/order.db")
        [ "$n" -ge 50 ] && break
        kill -0 "$pid" 2>/dev/null || { cat "$dir/$name.err"; fail "$name: shop-demo died early"; }
        sleep 0.1
    done
    [ "$n" -ge 50 ] || { cat "$dir/$name.err"; fail "$name: no orders were placed within 60 s"; }
    local children
    children=$(pgrep -g "$pid" | grep -vx "$pid" | wc -l)
    [ "$children" -ge 5 ] || fail "$name: expected nats-server and 4 services in the group, found $children"
    kill "-$sig" "$pid"
    local gone=0
    for _ in $(seq 1 300); do
        if ! kill -0 "$pid" 2>/dev/null; then gone=1; break; fi
        sleep 0.1
    done
    [ $gone -eq 1 ] || fail "$name: shop-demo still runs 30 s after SIG$sig"
    wait "$pid"
    local rc=$?
    if [ "$sig" != KILL ]; then
        # As a shell reports a process the signal ended: 128 + its number.
        local want=$((128 + $(kill -l "$sig")))
        [ $rc -eq $want ] || { cat "$dir/$name.err"; fail "$name: exit status $rc, expected $want"; }
        grep -q "stopped everything it started" "$dir/$name.err" || fail "$name: no stop message"
        # --json: one object on stdout all the same, saying what happened.
        python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
assert d["ok"] is False and d["error"] == "interrupted by SIG" + sys.argv[2], d' \
            "$dir/$name.out" "$sig" ||
            fail "$name: stdout is not one JSON object saying it was interrupted: $(cat "$dir/$name.out")"
    fi
    # Children die with their parent (PR_SET_PDEATHSIG) or are stopped by it;
    # give the kernel a moment to deliver, then nothing may be left.
    for _ in $(seq 1 100); do
        pgrep -g "$pid" >/dev/null || break
        sleep 0.1
    done
    if pgrep -g "$pid" >/dev/null; then
        ps -o pid,pgid,args -g "$pid" >&2 || true
        fail "$name: processes of the demo are left after SIG$sig"
    fi
    echo "ok: SIG$sig stopped the demo after $n orders, nothing left"
}

run INT sigint
run TERM sigterm
run KILL sigkill
