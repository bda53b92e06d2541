#!/usr/bin/env bash
# Installs choreo the way the README's "Install" section says, then uses it
# as a project outside this repository would:
#   1. meson setup + ninja install, to a temporary prefix (default) or
#      system-wide into /usr/local (--system, as root, with ldconfig);
#   2. builds the README's first example with cc and pkg-config, runs it
#      against a private nats-server, and runs the installed choreoctl and
#      choreo-gen, none of them with LD_LIBRARY_PATH;
#   3. copies services/shipping out of the tree and builds it with meson
#      and with make from the installed files only (the build must not name
#      the source tree), and shows that the make build fails without the
#      header, the pkg-config file or choreo-gen;
#   4. runs the shop demo (from BUILD_DIR) with shipping beside it, kills
#      shipping with SIGKILL several times on the way, and checks one
#      parcel per completed order and one noted order per created one.
#
#   tests/install/check_install.sh SOURCE_DIR BUILD_DIR [--system] [--orders N]   (default 1000)
#
# BUILD_DIR is a build of SOURCE_DIR with the shop demo (tools/supervisor).
# --system installs into /usr/local and leaves it installed (for a fresh
# machine); without it everything lives in a temporary directory.
set -euo pipefail

src=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)
shift 2
system=0 orders=1000
while [ $# -gt 0 ]; do
    case "$1" in
        --system) system=1 ;;
        --orders) orders=$2; shift ;;
        *) echo "check_install: unknown flag $1" >&2; exit 2 ;;
    esac
    shift
done

work=$(mktemp -d /tmp/choreo-install-XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

step() { echo "== $*"; }
fail() { echo "check_install: FAIL: $*" >&2; exit 1; }
# Bounded wait: wait_for SECONDS COMMAND...
wait_for() {
    local until=$((SECONDS + $1)); shift
    until "$@"; do
        [ $SECONDS -lt $until ] || return 1
        sleep 0.2
    done
}

# 1. Install, as the README says: the commands below are the README's own,
# with P=$prefix, and must stay there word for word.
for line in \
    'meson setup build-release --buildtype=release -Dtests=disabled' \
    'ninja -C build-release install' \
    'ldconfig' \
    'cc first.c $(pkg-config --cflags --libs choreo) -o first' \
    'meson setup build-prefix --prefix "$P" --libdir lib --buildtype=release -Dtests=disabled' \
    'ninja -C build-prefix install' \
    'export PKG_CONFIG_PATH=$P/lib/pkgconfig PATH=$P/bin:$PATH' \
    'cc first.c $(pkg-config --cflags --libs choreo) -Wl,-rpath,"$P/lib" -o first' \
    'choreoctl --help'; do
    grep -qF -- "$line" "$src/README.md" || fail "the README's Install section no longer says: $line"
done
if [ $system -eq 1 ]; then
    prefix=/usr/local
    step "system-wide install into $prefix"
    meson setup "$work/build" "$src" --buildtype=release -Dtests=disabled >"$work/setup.log"
    ninja -C "$work/build" install >"$work/install.log"
    ldconfig
else
    prefix=$work/prefix
    step "install to the prefix $prefix"
    meson setup "$work/build" "$src" --prefix "$prefix" --libdir lib --buildtype=release \
        -Dtests=disabled >"$work/setup.log"
    ninja -C "$work/build" install >"$work/install.log"
    export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
fi
unset LD_LIBRARY_PATH
export PATH=$prefix/bin:$PATH
pkg-config --exists choreo || fail "pkg-config does not find choreo after the install"
gen=$(pkg-config --variable=choreo_gen choreo)
[ -x "$gen" ] || fail "pkg-config's choreo_gen ($gen) is not an executable"
echo "pkg-config: choreo $(pkg-config --modversion choreo), choreo_gen=$gen"

# 2. The installed programs and the README's first example.
step "installed choreoctl and choreo-gen run"
# Whole outputs to files first: head closing the pipe early would end the
# program with SIGPIPE, which pipefail counts as a failure.
choreoctl --help >"$work/choreoctl.help" || fail "choreoctl --help failed"
choreo-gen --help >"$work/choreo-gen.help" || fail "choreo-gen --help failed"
head -1 "$work/choreoctl.help"
head -1 "$work/choreo-gen.help"
[ "$(command -v choreoctl)" = "$prefix/bin/choreoctl" ] || fail "choreoctl on PATH is not the installed one"
python3 "$src/tests/readme/extract.py" "$src/README.md" first_handler "$work/first.c"
cd "$work"
if [ $system -eq 1 ]; then
    cc first.c $(pkg-config --cflags --libs choreo) -o first
else
    P=$prefix
    cc first.c $(pkg-config --cflags --libs choreo) -Wl,-rpath,"$P/lib" -o first
fi
mkdir -p "$work/nats"
/usr/sbin/nats-server -a 127.0.0.1 -p -1 --ports_file_dir "$work/nats" -js -sd "$work/nats" \
    >"$work/nats/log" 2>&1 &
pids+=($!)
nats_pid=$!
wait_for 10 compgen -G "$work/nats/*.ports" >/dev/null || fail "nats-server did not start"
url=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["nats"][0])' \
    "$(compgen -G "$work/nats/*.ports" | head -1)")
step "first example against $url"
sqlite3 "$work/inventory.db" "CREATE TABLE stock(sku TEXT, reserved INTEGER);
                              INSERT INTO stock VALUES ('apple', 0)"
./first --service inventory --db "$work/inventory.db" --nats-url "$url" 2>"$work/first.log" &
first_pid=$!
wait_for 15 grep -q 'service started' "$work/first.log" || { cat "$work/first.log"; fail "first example did not start"; }
kill -TERM $first_pid
wait $first_pid || fail "first example exited with $? on SIGTERM"
grep 'service started' "$work/first.log"

# 3. shipping, out of the tree.
step "shipping built from the installed files only"
cp -r "$src/services/shipping" "$work/shipping"
cd "$work/shipping"
meson setup mbuild -Dshop_events="$src/events/shop.events" >"$work/shipping-setup.log"
ninja -C mbuild >"$work/shipping-build.log"
meson test -C mbuild >"$work/shipping-test.log" || { cat mbuild/meson-logs/testlog.txt; fail "the consumer check of shop_orders.events failed"; }
! grep -q -- "$src" mbuild/compile_commands.json || fail "the shipping build used the source tree"
make >"$work/shipping-make.log" 2>&1 || { cat "$work/shipping-make.log"; fail "make failed"; }
make check-events SHOP_EVENTS="$src/events/shop.events" >/dev/null
./shipping --help >/dev/null
# Without a piece of the install, the build must fail, not find it elsewhere.
for missing in include/choreo.h lib/pkgconfig/choreo.pc bin/choreo-gen; do
    [ $system -eq 1 ] && break # the files of a system install stay where they are
    mv "$prefix/$missing" "$prefix/$missing.away"
    make clean >/dev/null
    if make >"$work/make-missing.log" 2>&1; then
        mv "$prefix/$missing.away" "$prefix/$missing"
        fail "shipping built without $missing"
    fi
    mv "$prefix/$missing.away" "$prefix/$missing"
    echo "without $missing: make fails ($(grep -m1 -i -E 'error|not found|no such' "$work/make-missing.log" || true))"
done
make clean >/dev/null
make >/dev/null 2>&1

# 4. Against the shop demo, with kills.
kill -TERM $nats_pid
wait $nats_pid 2>/dev/null || true
step "shop demo with $orders orders, and shipping beside it, killed on the way"
"$build/tools/supervisor/shop-demo" --orders "$orders" --keep --dir "$work/demo" \
    --build-dir "$build" >"$work/demo.out" 2>"$work/demo.err" &
demo_pid=$!
pids+=($demo_pid)
# The demo's broker writes its port as soon as it listens: shipping runs
# while the orders flow, and is killed with SIGKILL again and again.
wait_for 30 compgen -G "$work/demo/nats/*.ports" >/dev/null || fail "the demo's nats-server did not start"
url=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["nats"][0])' \
    "$(compgen -G "$work/demo/nats/*.ports" | head -1)")
db=$work/shipping.db
# A killed run's unacknowledged deliveries come back after ack_wait_ms:
# short here, so the test does not wait for long.
run_shipping() {
    ./shipping --db "$db" --nats-url "$url" --log-level warn --ack-wait-ms 2000 \
        2>>"$work/shipping.log" &
    ship_pid=$!
}
kills=0 live_kills=0
until_s=$((SECONDS + 180))
while [ $kills -lt 6 ] || ! grep -q 'The shop is still running' "$work/demo.out"; do
    [ $SECONDS -lt $until_s ] || { cat "$work/demo.out" "$work/demo.err"; fail "the demo did not finish its orders"; }
    kill -0 $demo_pid 2>/dev/null || { cat "$work/demo.out" "$work/demo.err"; fail "the demo exited"; }
    run_shipping
    sleep "0.$((RANDOM % 6 + 2))"
    grep -q 'The shop is still running' "$work/demo.out" || live_kills=$((live_kills + 1))
    kill -KILL $ship_pid 2>/dev/null && kills=$((kills + 1))
    wait $ship_pid 2>/dev/null || true
done
run_shipping
pids+=($ship_pid)
completed=$(sqlite3 "$work/demo/order.db" "SELECT COUNT(*) FROM orders WHERE state = 'COMPLETED'")
created=$(sqlite3 "$work/demo/order.db" "SELECT COUNT(*) FROM orders")
echo "demo: $created orders, $completed completed"
[ "$completed" -gt 0 ] || fail "no order completed"
parcels() { sqlite3 "$db" "SELECT COUNT(*) FROM parcels" 2>/dev/null || echo 0; }
all_shipped() { [ "$(parcels)" -eq "$completed" ]; }
wait_for 240 all_shipped || fail "$(parcels) parcels for $completed completed orders"
sleep 1
kill -TERM $ship_pid
wait $ship_pid || fail "shipping exited with $? on SIGTERM"
doubled=$(sqlite3 "$db" "SELECT COUNT(*) FROM (SELECT order_id FROM parcels GROUP BY 1 HAVING COUNT(*) > 1)")
noted=$(sqlite3 "$db" "SELECT COUNT(*) FROM orders")
marked=$(sqlite3 "$db" "SELECT COUNT(*) FROM completed")
distinct=$(sqlite3 "$db" "SELECT COUNT(DISTINCT order_id) FROM orders")
sqlite3 "$db" "ATTACH '$work/demo/order.db' AS shop;
               SELECT COUNT(*) FROM parcels p JOIN shop.orders o USING (order_id)
               WHERE o.state = 'COMPLETED'" >"$work/joined"
echo "shipping: $kills SIGKILLs ($live_kills while orders flowed), $(parcels) parcels for $completed completed orders, $doubled doubled; $noted orders noted ($distinct distinct) of $created created"
[ "$doubled" -eq 0 ] || fail "$doubled orders got more than one parcel"
[ "$(cat "$work/joined")" -eq "$completed" ] || fail "parcels do not match the completed orders"
[ "$noted" -eq "$created" ] && [ "$distinct" -eq "$created" ] || fail "OrderCreated noted $noted times for $created orders"
[ "$marked" -eq "$completed" ] || fail "OrderCompleted noted $marked times for $completed completed orders"
if grep -q -E 'level=error' "$work/shipping.log"; then
    grep -E 'level=error' "$work/shipping.log" | head -5
    fail "shipping logged errors"
fi
echo "check_install: OK"
