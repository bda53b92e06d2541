#!/bin/sh
# Runs the README's orchestrator with a NATS URL where nothing listens: it
# must define its saga, place one order (the row and the saga's first
# command in one transaction), then fail with the clear "no NATS server
# reachable" error; the instance and its first command wait in its database.
exe=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
sqlite3 "$dir/order.db" "CREATE TABLE orders(id TEXT PRIMARY KEY, state TEXT)" || exit 1
"$exe" --service order --db "$dir/order.db" --nats-url nats://127.0.0.1:9 \
    --connect-wait-ms 300 --log-level error 2>"$dir/err"
rc=$?
cat "$dir/err"
[ $rc -eq 1 ] || { echo "expected exit 1, got $rc"; exit 1; }
grep -q "order: no NATS server reachable at nats://127.0.0.1:9" "$dir/err" || exit 1
got=$(sqlite3 "$dir/order.db" "SELECT o.state, i.state, i.phase, i.steps,
    (SELECT group_concat(subject) FROM choreo_outbox WHERE subject NOT LIKE '%Timeout%')
    FROM orders o JOIN choreo_saga_instances i ON i.saga = o.id")
echo "$got"
case "$got" in
    "PENDING|ORDER_CREATED|RUNNING|P--|choreo.AwardPoints."*) echo ok ;;
    *) echo "expected a PENDING order waiting for AwardPoints"; exit 1 ;;
esac
# Without its orders table it says what the database said, and exits 1.
"$exe" --service order --db "$dir/bare.db" --nats-url nats://127.0.0.1:9 \
    --connect-wait-ms 300 --log-level error 2>"$dir/err"
rc=$?
cat "$dir/err"
[ $rc -eq 1 ] || { echo "expected exit 1 without the orders table, got $rc"; exit 1; }
grep -q "order: placing an order: no such table: orders" "$dir/err" || exit 1
echo ok
