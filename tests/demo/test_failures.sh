#!/usr/bin/env bash
# How shop-demo, shop-chaos and the shop services fail: a bad flag or work
# directory is refused with exit status 2, a message that starts with the
# program's name and nothing started.
#
#   test_failures.sh BUILD_DIR
set -uo pipefail
build=$1
demo=$build/tools/supervisor/shop-demo chaos=$build/tools/supervisor/shop-chaos
dir=$(mktemp -d "${TMPDIR:-/tmp}/choreo-demo-fail-XXXXXX")
cleanup() {
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
# An earlier run's databases would count as this run's orders.
mkdir "$dir/used" && touch "$dir/used/order.db" "$dir/afile"
refused "shop-demo: --dir $dir/used already holds order.db" \
    "$demo" --build-dir "$build" --dir "$dir/used"
refused "pass an empty or new directory" "$chaos" --build-dir "$build" --dir "$dir/used"
refused "shop-demo: --dir $dir/afile is not a directory" \
    "$demo" --build-dir "$build" --dir "$dir/afile"
echo "ok: bad flags and directories refused"
