#!/usr/bin/env bash
# How shop-demo, shop-chaos and the shop services fail: a bad flag or work
# directory is refused with exit status 2, a message that starts with the
# program's name and nothing started; a demo that fails says why, also in
# its JSON; Ctrl-C on shop-chaos is a stop, not services that crashed; and
# the shop client says what failed once, with exit status 1.
#
#   test_failures.sh BUILD_DIR
set -uo pipefail
build=$1
demo=$build/tools/supervisor/shop-demo chaos=$build/tools/supervisor/shop-chaos
dir=$(mktemp -d "${TMPDIR:-/tmp}/choreo-demo-fail-XXXXXX")
pgid= natsd=
cleanup() {
    # Only the process group this test made, and only if something is left
    # (which is already a failure).
    [ -n "$pgid" ] && kill -KILL -- "-$pgid" 2>/dev/null
    [ -n "$natsd" ] && kill "$natsd" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# refused WANT_TEXT PROGRAM ARGS...: exit status 2 and WANT_TEXT on stderr,
# at once (nothing was started).
refused() {
    local want=$1 rc=0
    shift
    timeout 10 "$@" >"$dir/out" 2>"$dir/err" || rc=$?
    [ $rc -eq 2 ] || { cat "$dir/err"; fail "$*: exit status $rc, expected 2"; }
    grep -qF -- "$want" "$dir/err" || { cat "$dir/err"; fail "$*: no '$want' on stderr"; }
}
refused 'shop-demo: flag --synchronous: "bogus" is not one of off|normal|full|extra' \
    "$demo" --build-dir "$build" --synchronous bogus --dir "$dir/never"
refused 'shop-demo: flag --log-level: "loud" is not one of error|warn|info|debug' \
    "$demo" --build-dir "$build" --log-level loud --dir "$dir/never"
refused 'shop-chaos: flag --log-level: "loud" is not one of' \
    "$chaos" --build-dir "$build" --log-level loud --dir "$dir/never"
[ ! -e "$dir/never" ] || fail "a refused run made its work directory"
refused 'shop-demo: --orders: "10x" is not a whole number' "$demo" --orders 10x
refused 'shop-chaos: --sagas: "10x" is not a whole number' "$chaos" --sagas 10x
refused 'shop-order: --deadline-ms: "10x" is not a whole number' \
    "$build/services/order/shop-order" --deadline-ms 10x
refused 'shop-order: unknown flag --bogus' "$build/services/order/shop-order" --bogus
refused 'shop-points: unknown argument "extra"' "$build/services/points/shop-points" extra
# A service's own flags take FLAG=VALUE too, as choreo's do; a setting
# given twice, a bad variable and settings that do not go together are
# refused with 2 like any bad command line.
refused 'shop-payment: --deadline-ms: "x" is not a whole number' \
    "$build/services/payment/shop-payment" --deadline-ms=x
refused 'shop-points: --default-cap needs a value' "$build/services/points/shop-points" --default-cap
refused 'shop-order: flag --db is given twice: give it once' \
    "$build/services/order/shop-order" --db "$dir/a.db" --db "$dir/b.db"
refused 'shop-order: unknown environment variable CHOREO_NO_SUCH' \
    env CHOREO_NO_SUCH=1 "$build/services/order/shop-order"
refused 'shop-order: setting retry_cap_ms (100) is below retry_base_ms (5000)' \
    "$build/services/order/shop-order" --retry-base-ms 5000 --retry-cap-ms 100
[ ! -e "$dir/a.db" ] && [ ! -e "$dir/b.db" ] || fail "a refused service made a database"
rc=0
timeout 10 "$build/services/order/shop-order" --deadline-ms=5 --help >"$dir/out" 2>&1 || rc=$?
[ $rc -eq 0 ] && grep -q "usage: shop-order" "$dir/out" ||
    { cat "$dir/out"; fail "shop-order --deadline-ms=5 --help: exit status $rc"; }
# An earlier run's databases would count as this run's orders.
mkdir "$dir/used" && touch "$dir/used/order.db" "$dir/afile"
refused "shop-demo: --dir $dir/used already holds order.db" \
    "$demo" --build-dir "$build" --dir "$dir/used"
refused "pass an empty or new directory" "$chaos" --build-dir "$build" --dir "$dir/used"
refused "shop-demo: --dir $dir/afile is not a directory" \
    "$demo" --build-dir "$build" --dir "$dir/afile"

# json_field FILE EXPR: EXPR of the one JSON object the file holds (d).
json_field() {
    python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
print(eval(sys.argv[2]))' "$1" "$2"
}

# No nats-server: one JSON object on stdout all the same, saying so.
rc=0
CHOREO_NATS_SERVER=/nonexistent timeout 30 "$demo" --build-dir "$build" --orders 5 --json \
    --dir "$dir/nonats" >"$dir/nonats.json" 2>"$dir/nonats.err" || rc=$?
[ $rc -eq 1 ] || { cat "$dir/nonats.err"; fail "no nats-server: exit status $rc, expected 1"; }
[ "$(json_field "$dir/nonats.json" 'd["ok"], "nats-server" in d["error"]')" = "(False, True)" ] ||
    fail "no nats-server: the JSON does not say so: $(cat "$dir/nonats.json")"

# Offered at 20 a second, 40 orders take 2 s: after --timeout-s 1 they are
# not all placed, and that (not a violation) is why the run fails.
rc=0
timeout 60 "$demo" --build-dir "$build" --orders 40 --rate 20 --timeout-s 1 --deadline-ms 300 \
    --json --dir "$dir/slow" >"$dir/slow.json" 2>"$dir/slow.err" || rc=$?
[ $rc -eq 1 ] || { cat "$dir/slow.err"; fail "timeout: exit status $rc, expected 1"; }
got=$(json_field "$dir/slow.json" \
      'd["ok"], d["all_final"], d["violations"], " of 40 orders placed after 1 s" in d["error"]')
[ "$got" = "(False, False, 0, True)" ] ||
    fail "timeout: the JSON does not say why it failed: $(cat "$dir/slow.json")"

# Ctrl-C reaches the whole foreground group: the services stop (exit 0)
# while shop-chaos may be busy elsewhere. shop-chaos is held stopped until
# they did, so that it always finds them gone; their exits must not count
# as unexpected. Launched as a shell would a foreground job: SIGINT not
# ignored, a process group of its own.
python3 -c 'import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.setsid()
os.execv(sys.argv[1], sys.argv[1:])' "$chaos" --build-dir "$build" --sagas 100000 --json \
    --dir "$dir/chaos" >"$dir/chaos.json" 2>"$dir/chaos.err" &
pgid=$!
orders=0
for _ in $(seq 1 600); do
    orders=$(python3 -c "import sqlite3, sys
try:
    db = sqlite3.connect('file:' + sys.argv[1] + '?mode=ro', uri=True)
    print(db.execute('SELECT COUNT(*) FROM orders').fetchone()[0])
except Exception:
    print(0)" "$dir/chaos/order.db")
    [ "$orders" -ge 1 ] && break
    kill -0 "$pgid" 2>/dev/null || { cat "$dir/chaos.err"; fail "shop-chaos died early"; }
    sleep 0.1
done
[ "$orders" -ge 1 ] || { cat "$dir/chaos.err"; fail "shop-chaos placed no order within 60 s"; }
kill -STOP "$pgid"
kill -INT -- "-$pgid"
for _ in $(seq 1 300); do
    # Stopped shop-chaos reaps nobody: its children are gone when zombies.
    [ "$(ps -o stat= -s "$pgid" | grep -vc '^[TZ]')" -eq 0 ] && break
    sleep 0.1
done
kill -CONT "$pgid"
rc=0
wait "$pgid" || rc=$?
[ $rc -eq 130 ] ||
    { cat "$dir/chaos.err"; fail "shop-chaos: exit status $rc after SIGINT, expected 130"; }
if grep -q UNEXPECTED "$dir/chaos.err"; then
    cat "$dir/chaos.err"
    fail "shop-chaos took the services' stop on Ctrl-C for unexpected exits"
fi
pgrep -g "$pgid" >/dev/null && fail "processes of shop-chaos are left after SIGINT"
python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
assert d["ok"] is False and d["error"] == "interrupted", d' "$dir/chaos.json" ||
    fail "shop-chaos --json printed no object saying it was interrupted"
pgid=

# The shop client against a broker with no shop service: a field over its
# schema's limit and a service that never answers each fail with exit
# status 1 and their error on one line of stderr.
"${CHOREO_NATS_SERVER:-nats-server}" -a 127.0.0.1 -p -1 >"$dir/natsd.log" 2>&1 &
natsd=$!
port=
for _ in $(seq 1 100); do
    port=$(sed -n 's/.*Listening for client connections on 127\.0\.0\.1:\([0-9]*\).*/\1/p' \
           "$dir/natsd.log")
    [ -n "$port" ] && break
    sleep 0.1
done
[ -n "$port" ] || { cat "$dir/natsd.log"; fail "nats-server did not listen within 10 s"; }
shop_fails() {
    local want=$1 rc=0
    shift
    timeout 30 "$build/tools/shop/shop" --nats-url "nats://127.0.0.1:$port" "$@" \
        >"$dir/out" 2>"$dir/err" || rc=$?
    [ $rc -eq 1 ] || { cat "$dir/err"; fail "shop $*: exit status $rc, expected 1"; }
    [ "$(wc -l <"$dir/err")" -eq 1 ] && grep -qF -- "$want" "$dir/err" ||
        { cat "$dir/err"; fail "shop $*: expected '$want' on one line of stderr"; }
}
shop_fails "shop: PlaceOrder: field 'product_id': string of 65 bytes is longer than the limit" \
    place --user u --product "$(printf 'p%.0s' $(seq 1 65))" --qty 1
shop_fails "is the inventory service running?" restock --product p --qty 1
kill "$natsd"
wait "$natsd" 2>/dev/null
natsd=
echo "ok: bad flags and directories refused, failures reported, Ctrl-C on shop-chaos, shop client errors"
