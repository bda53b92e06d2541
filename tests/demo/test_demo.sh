#!/usr/bin/env bash
# The shop demo end to end: a small run must finish with every saga final,
# every failure path taken and every invariant true, with no sanitizer
# report in any service's log; then the invariant checker must catch
# tampered copies of the databases, naming the order or the product.
# STYLE (choreography by default) is the services' saga style: with
# orchestration and tcc every order must also be one orchestrated saga
# instance of the order service, ended COMPLETED or FAILED as the order.
#
#   test_demo.sh SHOP_DEMO SHOP BUILD_DIR [STYLE]
set -euo pipefail
demo=$1 shop=$2 build=$3 style=${4:-choreography}
dir=$(mktemp -d "${TMPDIR:-/tmp}/choreo-demo-test-XXXXXX")
sanitizers="AddressSanitizer|LeakSanitizer|ThreadSanitizer|runtime error"
# sanitizer_reports: what a sanitizer wrote into the services' logs.
sanitizer_reports() {
    grep -hE -A40 "$sanitizers" "$dir"/run/*.log 2>/dev/null | head -200 >&2 || true
}
# A failed run shows any sanitizer report before its logs are removed.
cleanup() {
    [ $? -ne 0 ] && sanitizer_reports
    rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

rc=0
"$demo" --build-dir "$build" --orders 120 --json --deadline-ms 3000 --window 40 \
    --style "$style" --dir "$dir/run" >"$dir/out.json" || rc=$?
[ $rc -eq 0 ] || { cat "$dir/out.json"; fail "shop-demo exited $rc"; }

python3 - "$dir/out.json" "$style" "$dir/run/order.db" <<'PY' || fail "the demo's JSON summary is wrong: $(cat "$dir/out.json")"
import json, sqlite3, sys
d = json.load(open(sys.argv[1]))
style = sys.argv[2]
assert d["style"] == style, d["style"]
for k in ("orders", "completed", "cancelled", "by_reason", "compensations", "invariants_ok",
          "sagas_per_s", "p50_ms", "p99_ms"):
    assert k in d, "missing key " + k
assert d["orders"] == 120 and d["placed"] == 120, d
assert d["completed"] + d["cancelled"] == 120 and d["pending"] == 0, d
assert d["invariants_ok"] is True and d["violations"] == 0, d
reasons = d["by_reason"]
assert set(reasons) == {"stock_rejected", "payment_rejected", "points_rejected", "deadline"}, reasons
assert all(v > 0 for v in reasons.values()), reasons
assert d["completed"] > 0 and d["compensations"] > 0, d
# Each failure path is deterministic, except that a very slow machine may let
# an order reach its deadline before its own answer: the deadline can only
# take orders from the other paths, never add rejections. The review
# customers' payments are held: the reviewer rejects some (payment_rejected)
# and leaves some to their deadline (expired), see test_review.sh.
kinds = d["by_kind"]
assert d["held"] > 0 and d["held"] == d["approved"] + d["rejected"] + d["expired"], d
assert 0 < reasons["payment_rejected"] <= kinds["broke"] + d["rejected"], (reasons, kinds, d)
assert 0 < reasons["points_rejected"] <= kinds["no_points"], (reasons, kinds)
assert reasons["deadline"] >= d["expired"] > 0, (reasons, d)
assert d["idempotent_replays"] > 0 and d["idempotent_replays_same"] == d["idempotent_replays"], d
assert d["service_restarts"] == 0, d
assert d["sagas_per_s"] > 0 and 0 < d["p50_ms"] <= d["p99_ms"], d
# The style really ran: orchestrated sagas are rows of the order service's
# choreo_saga_instances, one per order, ended as the order was.
db = sqlite3.connect(sys.argv[3])
if style == "choreography":
    has = db.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'choreo_saga_instances'")
    assert has.fetchone()[0] == 0 or \
        db.execute("SELECT COUNT(*) FROM choreo_saga_instances").fetchone()[0] == 0
else:
    phases = dict(db.execute("SELECT phase, COUNT(*) FROM choreo_saga_instances GROUP BY 1"))
    assert phases == {"COMPLETED": d["completed"], "FAILED": d["cancelled"]}, (phases, d)
    mismatched = db.execute(
        "SELECT COUNT(*) FROM orders o JOIN choreo_saga_instances i ON i.saga = o.order_id"
        " WHERE (o.state = 'COMPLETED') != (i.phase = 'COMPLETED')").fetchone()[0]
    assert mismatched == 0, mismatched
PY

if grep -lE "$sanitizers" "$dir"/run/*.log; then
    fail "a service reported a sanitizer error (logs above)"
fi
"$shop" check --dir "$dir/run" --final >"$dir/check.txt" || { cat "$dir/check.txt"; fail "check of the demo's databases"; }
grep -q "invariants  OK" "$dir/check.txt" || fail "check output lacks 'invariants  OK'"

# tamper NAME SQL_DB SQL EXPECTED: applies SQL (with {order}, the id of a
# completed and {cancelled} of a cancelled order whose payment was frozen
# and given back, of reason {reason}) to a copy and expects the checker to
# fail with EXPECTED in its report. Which cancelled orders froze money
# depends on the style (in tcc the points come first, so a points_rejected
# order never reaches the payment): the first such one is taken,
# points_rejected when there is one.
completed=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"SELECT order_id FROM orders WHERE state='COMPLETED' LIMIT 1\").fetchone()[0])" "$dir/run/order.db")
# (Read once the reader has exited: it may still be closing the databases.)
picked=$(python3 - "$dir/run" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1] + "/order.db")
db.execute("ATTACH ? AS pay", (sys.argv[1] + "/payment.db",))
print(*db.execute(
    "SELECT o.order_id, o.reason FROM orders o JOIN pay.payments p USING (order_id)"
    " WHERE o.state = 'CANCELLED' AND p.state = 'RELEASED'"
    " ORDER BY o.reason = 'points_rejected' DESC, o.order_id LIMIT 1").fetchone())
PY
)
read -r cancelled reason <<<"$picked"
tamper() {
    local name=$1 db=$2 sql=$3 expected=$4 copy="$dir/$1"
    mkdir -p "$copy"
    cp "$dir"/run/*.db* "$copy/"
    sql=${sql//\{order\}/$completed}
    sql=${sql//\{cancelled\}/$cancelled}
    python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.commit()" "$copy/$db.db" "$sql"
    if "$shop" check --dir "$copy" --final >"$copy/check.txt"; then
        fail "$name: the checker did not notice: $sql"
    fi
    grep -qF -- "$expected" "$copy/check.txt" || { cat "$copy/check.txt"; fail "$name: no '$expected' in the report"; }
}
tamper captured_after_cancel payment \
    "UPDATE payments SET state='CAPTURED' WHERE order_id='{cancelled}'" \
    "order $cancelled is CANCELLED ($reason) but its payment is CAPTURED"
tamper stock_from_nowhere inventory \
    "UPDATE products SET available = available + 1 WHERE product_id = 'apple'" \
    "product apple is not conserved"
tamper points_lost points \
    "DELETE FROM awards WHERE order_id='{order}'" \
    "order $completed is COMPLETED but its points are missing"
tamper money_left_frozen payment \
    "UPDATE payments SET state='FROZEN' WHERE order_id='{cancelled}'; UPDATE accounts SET balance = balance - (SELECT amount_cents FROM payments WHERE order_id='{cancelled}'), frozen = frozen + (SELECT amount_cents FROM payments WHERE order_id='{cancelled}') WHERE user_id = (SELECT user_id FROM payments WHERE order_id='{cancelled}')" \
    "still has"
tamper not_final order \
    "UPDATE orders SET state='PENDING' WHERE order_id='{order}'" \
    "order $completed is still PENDING"
tamper orphan inventory \
    "INSERT INTO reservations VALUES ('NOSUCHORDER', 'apple', 1, 'RELEASED', '', 0)" \
    "inventory reservation for order NOSUCHORDER (RELEASED) has no order"
echo "ok: demo run ($style) and invariant checker"
