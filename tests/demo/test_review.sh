#!/usr/bin/env bash
# Payments held for review in a whole demo run: the review customers'
# payments are held steps, the demo's reviewer approves a third, rejects a
# third and leaves a third to their deadline, and each order ends as its
# decision says: approved ones complete, rejected ones are cancelled as
# payment_rejected with the amount given back, undecided ones end with their
# saga (cancelled by the deadline, the hold expired). Then the invariant
# checker must catch a tampered hold.
#
#   test_review.sh SHOP_DEMO SHOP BUILD_DIR STYLE
set -euo pipefail
demo=$1 shop=$2 build=$3 style=$4
dir=$(mktemp -d "${TMPDIR:-/tmp}/choreo-review-test-XXXXXX")
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

rc=0
# At most 40 sagas in flight: with the default 200 at once, a sanitized
# build beside other tests took longer than the 1.5 s deadline for half
# the sagas (p50 1.47 s), and every approved hold ended by the deadline
# instead of its decision.
"$demo" --build-dir "$build" --style "$style" --orders 300 --window 40 --json \
    --dir "$dir/run" >"$dir/out.json" || rc=$?
[ $rc -eq 0 ] || { cat "$dir/out.json"; fail "shop-demo --style $style exited $rc"; }

python3 - "$dir/out.json" "$dir/run" <<'PY' || fail "the held payments of the $style demo went wrong: $(cat "$dir/out.json")"
import json, sqlite3, sys
d = json.load(open(sys.argv[1]))
assert d["invariants_ok"] is True and d["violations"] == 0, d
assert all(v > 0 for v in d["by_reason"].values()), d["by_reason"]
held, approved, rejected, expired = d["held"], d["approved"], d["rejected"], d["expired"]
assert held > 0 and approved > 0 and rejected > 0 and expired > 0, d
# Every hold ended one way, and the reviewer's decisions are those recorded.
assert held == approved + rejected + expired, d
assert 0 < held <= d["by_kind"]["review"], d
assert d["reviewer"]["approved"] == approved and d["reviewer"]["rejected"] == rejected, d
# (A hold made just before its deadline may end before the reviewer looks.)
assert d["reviewer"]["left"] + d["reviewer"]["refused"] <= expired, d
reasons, kinds = d["by_reason"], d["by_kind"]
assert reasons["payment_rejected"] <= kinds["broke"] + rejected, d
assert reasons["deadline"] >= expired, d

run = sys.argv[2]
db = sqlite3.connect(run + "/payment.db")
db.execute("ATTACH ? AS o", (run + "/order.db",))
rows = db.execute(
    "SELECT h.id, h.state, h.applied, h.decided_by, h.note, h.kind, h.expires_at, o.state,"
    " o.reason, p.state FROM choreo_holds h JOIN o.orders o ON o.order_id = h.saga"
    " JOIN payments p ON p.order_id = h.saga").fetchall()
assert len(rows) == held, (len(rows), held)
ends = {}
for hid, state, applied, by, note, kind, expires, o_state, reason, p_state in rows:
    assert kind == "payment-review" and expires > 0, (hid, kind, expires)
    if state in ("approved", "rejected"):
        assert by == "demo-reviewer" and note and applied == 1, (hid, state, by, note, applied)
    else:
        assert state == "expired" and applied == 0 and note, (hid, state, applied, note)
    ends.setdefault(state, set()).add((o_state, reason, p_state))
# A slow machine may let a deadline beat a decision, never the other way.
assert ("COMPLETED", "", "CAPTURED") in ends["approved"], ends
assert ends["approved"] <= {("COMPLETED", "", "CAPTURED"), ("CANCELLED", "deadline", "RELEASED")}, ends
assert ("CANCELLED", "payment_rejected", "REJECTED") in ends["rejected"], ends
assert ends["rejected"] <= {("CANCELLED", "payment_rejected", "REJECTED"),
                            ("CANCELLED", "deadline", "REJECTED"),
                            ("CANCELLED", "deadline", "RELEASED")}, ends
assert ends["expired"] == {("CANCELLED", "deadline", "RELEASED")}, ends
PY

"$shop" check --dir "$dir/run" --final >"$dir/check.txt" || { cat "$dir/check.txt"; fail "check of the demo's databases"; }
grep -qE "^reviews     held [1-9][0-9]* for review: [1-9][0-9]* approved, [1-9][0-9]* rejected, [1-9][0-9]* expired" \
    "$dir/check.txt" || { cat "$dir/check.txt"; fail "the checker's report lacks the reviews"; }

# tamper NAME SQL EXPECTED: applies SQL (with {order}, a completed order
# whose review was approved) to a copy of the payment database and expects
# the checker to fail with EXPECTED in its report.
completed=$(python3 - "$dir/run" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1] + "/payment.db")
db.execute("ATTACH ? AS o", (sys.argv[1] + "/order.db",))
print(db.execute("SELECT h.saga FROM choreo_holds h JOIN o.orders x ON x.order_id = h.saga"
                 " WHERE h.state = 'approved' AND x.state = 'COMPLETED' LIMIT 1").fetchone()[0])
PY
)
tamper() {
    local name=$1 sql=$2 expected=$3 copy="$dir/$1"
    mkdir -p "$copy"
    cp "$dir"/run/*.db* "$copy/"
    python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.commit()" "$copy/payment.db" "${sql//\{order\}/$completed}"
    if "$shop" check --dir "$copy" --final >"$copy/check.txt"; then
        fail "$name: the checker did not notice: $sql"
    fi
    grep -qF -- "$expected" "$copy/check.txt" || { cat "$copy/check.txt"; fail "$name: no '$expected' in the report"; }
}
tamper completed_without_approval \
    "UPDATE choreo_holds SET state = 'rejected' WHERE saga = '{order}'" \
    "order $completed is COMPLETED but its payment's review"
tamper review_left_waiting \
    "UPDATE choreo_holds SET state = 'held' WHERE state = 'expired'" \
    "still waits for a decision"
tamper decision_not_carried_out \
    "UPDATE choreo_holds SET applied = 0 WHERE saga = '{order}'" \
    "was never carried out by the payment service"
echo "ok: payments held for review ($style)"
