#!/usr/bin/env bash
# The secure shop demo (shop-demo --secure): TLS to nats-server and one NATS
# user per service under the permissions choreo-gen generates from the
# shop's schema and services file. The saga must complete with every
# invariant true; the databases, keys and server configuration (which holds
# the passwords) must be mode 0600; and the broker must refuse a client
# without credentials, a client with a service's user asking for what only
# the shop's client may, and a client that does not verify TLS.
#
#   test_secure.sh SHOP_DEMO SHOP BUILD_DIR
set -euo pipefail
demo=$1 shop=$2 build=$3
dir=$(mktemp -d "${TMPDIR:-/tmp}/choreo-secure-test-XXXXXX")
demo_pid=""
cleanup() {
    if [ -n "$demo_pid" ] && kill -0 "$demo_pid" 2>/dev/null; then
        kill -TERM "$demo_pid"
        wait "$demo_pid" || true
    fi
    rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# Each step says when it starts, so that a run the test harness has to
# kill shows where it stood.
step() { echo "$(date +%T) $*" >&2; }

step "starting shop-demo --secure --keep"
"$demo" --build-dir "$build" --secure --orders 200 --json --keep --dir "$dir/run" \
    >"$dir/out.json" 2>"$dir/keep.txt" &
demo_pid=$!
for ((i = 0; i < 600; i++)); do
    grep -q 'The shop is still running' "$dir/keep.txt" 2>/dev/null && break
    kill -0 "$demo_pid" 2>/dev/null || { cat "$dir/out.json" "$dir/keep.txt"; fail "shop-demo --secure exited"; }
    sleep 0.2
done
grep -q 'The shop is still running' "$dir/keep.txt" || fail "shop-demo --secure did not finish its orders in 120 s"
step "the demo finished its orders and keeps running"

python3 - "$dir/out.json" <<'PY' || fail "the secure demo's summary is wrong: $(cat "$dir/out.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["secure"] is True, d
assert d["invariants_ok"] is True and d["violations"] == 0, d
assert d["orders"] == 200 and d["completed"] + d["cancelled"] == 200, d
assert d["completed"] > 0 and d["compensations"] > 0, d
PY

run=$dir/run
for f in "$run"/order.db "$run"/inventory.db "$run"/payment.db "$run"/points.db \
         "$run"/secure/ca.key "$run"/secure/server.key "$run"/secure/nats.conf; do
    mode=$(stat -c %a "$f")
    [ "$mode" = 600 ] || fail "$f has mode $mode, not 600"
done
[ "$(stat -c %a "$run/secure")" = 700 ] || fail "$run/secure is not mode 700"

url=$(awk '/nats-server/ {print $2; exit}' "$dir/keep.txt")
ca=$run/secure/ca.pem
password() { sed -n "s/^$1_PASSWORD: \"\(.*\)\"\$/\1/p" "$run/secure/nats.conf"; }
order=$(sqlite3 "$run/order.db" "SELECT order_id FROM orders LIMIT 1")
step "the shop client, with its own user"
# The shop's client, with its credentials and its own reply inbox, reads an
# order; with another user's inbox it gets no answer.
CHOREO_NATS_USER=shop CHOREO_NATS_PASSWORD=$(password SHOP) CHOREO_TLS_CA=$ca \
    CHOREO_NATS_INBOX_PREFIX=_INBOX_shop "$shop" --nats-url "$url" status "$order" >"$dir/ok.txt" 2>&1 ||
    { cat "$dir/ok.txt"; fail "the shop client with its own user was refused"; }
grep -q "$order" "$dir/ok.txt" || fail "status did not show the order: $(cat "$dir/ok.txt")"
step "the shop client on the order service's inbox"
if CHOREO_NATS_USER=shop CHOREO_NATS_PASSWORD=$(password SHOP) CHOREO_TLS_CA=$ca \
    CHOREO_NATS_INBOX_PREFIX=_INBOX_order timeout 60 "$shop" --nats-url "$url" status "$order" \
    >"$dir/inbox.txt" 2>&1; then
    fail "the shop client got answers on the order service's inbox"
fi
step "no credentials, a wrong password, another service's user, no CA"
# No credentials: refused.
if CHOREO_TLS_CA=$ca "$shop" --nats-url "$url" status "$order" >"$dir/anon.txt" 2>&1; then
    fail "a client without credentials was let in"
fi
grep -q "refused the shop client's credentials" "$dir/anon.txt" ||
    fail "no credentials: unexpected error: $(cat "$dir/anon.txt")"
# A wrong password: refused; and it never shows in the error.
if CHOREO_NATS_USER=shop CHOREO_NATS_PASSWORD=not-the-password CHOREO_TLS_CA=$ca \
    "$shop" --nats-url "$url" status "$order" >"$dir/wrong.txt" 2>&1; then
    fail "a wrong password was let in"
fi
! grep -q "not-the-password" "$dir/wrong.txt" || fail "the password appears in the error"
# The points service's user may not ask the order service anything.
if CHOREO_NATS_USER=points CHOREO_NATS_PASSWORD=$(password POINTS) CHOREO_TLS_CA=$ca \
    CHOREO_NATS_INBOX_PREFIX=_INBOX_points timeout 60 "$shop" --nats-url "$url" status "$order" >"$dir/points.txt" 2>&1; then
    fail "the points service's user read an order: $(cat "$dir/points.txt")"
fi
# Without the CA the client cannot verify the server: no connection.
if CHOREO_NATS_USER=shop CHOREO_NATS_PASSWORD=$(password SHOP) \
    "$shop" --nats-url "$url" status "$order" >"$dir/notls.txt" 2>&1; then
    fail "a client that does not verify TLS got in"
fi
grep -q "SSL" "$dir/notls.txt" || fail "without the CA: unexpected error: $(cat "$dir/notls.txt")"
step "SIGTERM to the demo"
kill -TERM "$demo_pid"
for ((i = 0; i < 300; i++)); do
    kill -0 "$demo_pid" 2>/dev/null || break
    sleep 0.1
done
if kill -0 "$demo_pid" 2>/dev/null; then
    kill -KILL "$demo_pid"
    tail -20 "$dir/keep.txt" >&2
    fail "shop-demo --secure still ran 30 s after SIGTERM"
fi
wait "$demo_pid" || fail "shop-demo --secure exited $? on SIGTERM"
demo_pid=""
echo ok
