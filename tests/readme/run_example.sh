#!/bin/sh
# Runs the README's first-handler program with a NATS URL where nothing
# listens: it must parse its flags, open its database and fail with the
# clear "no NATS server reachable" error instead of hanging or crashing;
# and with a mistyped flag it must refuse to start, naming the flag.
exe=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
sqlite3 "$dir/inventory.db" "CREATE TABLE stock(sku TEXT, reserved INTEGER)" || exit 1
"$exe" --service inventory --db "$dir/inventory.db" --nats-url nats://127.0.0.1:9 \
    --connect-wait-ms 300 --log-level error 2>"$dir/err"
rc=$?
cat "$dir/err"
[ $rc -eq 1 ] || { echo "expected exit 1, got $rc"; exit 1; }
grep -q "inventory: no NATS server reachable at nats://127.0.0.1:9" "$dir/err" || exit 1
echo ok
# A mistyped flag is refused at start, naming it and the flag meant.
"$exe" --service inventory --db "$dir/inventory.db" --nats-ulr nats://127.0.0.1:9 2>"$dir/err"
rc=$?
cat "$dir/err"
[ $rc -eq 1 ] || { echo "expected exit 1 for --nats-ulr, got $rc"; exit 1; }
grep -q "inventory: unknown flag --nats-ulr (did you mean --nats-url?)" "$dir/err" || exit 1
echo ok
