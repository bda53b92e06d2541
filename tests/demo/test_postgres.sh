#!/usr/bin/env bash
# The shop demo with the payment service on PostgreSQL in two instances (a
# private PostgreSQL server the demo starts and stops): every saga final,
# the invariants true as read from PostgreSQL, and both instances up with
# their metrics.
#
#   test_postgres.sh SHOP_DEMO BUILD_DIR
set -euo pipefail
demo=$1 build=$2
dir=$(mktemp -d "${TMPDIR:-/tmp}/choreo-demo-pg-XXXXXX")
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; tail -20 "$dir"/run/payment*.log >&2 || true; exit 1; }

rc=0
"$demo" --build-dir "$build" --orders 150 --json --deadline-ms 3000 --window 40 \
    --store payment=postgres --instances payment=2 --dir "$dir/run" >"$dir/out.json" || rc=$?
[ $rc -eq 0 ] || { cat "$dir/out.json"; fail "shop-demo exited $rc"; }
python3 - "$dir/out.json" <<'PY' || fail "the demo's JSON summary is wrong: $(cat "$dir/out.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["orders"] == 150 and d["placed"] == 150, d
assert d["pending"] == 0, d["pending"]
assert d["invariants_ok"] is True, d["violation_samples"]
assert set(d["metrics"]) == {"order", "inventory", "payment", "points", "payment-2"}, d["metrics"]
assert d["completed"] > 0 and d["cancelled"] > 0, d
PY
[ -s "$dir/run/postgres.log" ] || fail "no PostgreSQL server log in the work directory"
echo "demo on PostgreSQL ok: $(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(d['completed'], 'completed,', d['cancelled'], 'cancelled,', d['sagas_per_s'], 'sagas/s')" "$dir/out.json")"
