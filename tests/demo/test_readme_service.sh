#!/usr/bin/env bash
# The README's own points service replaces shop-points in a whole demo run:
# every path, and every invariant, must hold with it too.
#
#   test_readme_service.sh SHOP_DEMO README_POINTS BUILD_DIR
set -euo pipefail
demo=$1 points=$2 build=$3
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$demo" --build-dir "$build" --bin "points=$points" --orders 60 --json --deadline-ms 3000 \
    --window 40 >"$out" || { cat "$out"; echo "FAIL: shop-demo exited non-zero" >&2; exit 1; }
python3 - "$out" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["invariants_ok"] is True, d
assert all(v > 0 for v in d["by_reason"].values()), d["by_reason"]
assert d["by_reason"]["points_rejected"] <= d["by_kind"]["no_points"], d
assert d["completed"] > 0 and d["pending"] == 0, d
PY
echo "ok: the README's points service ran the demo"
