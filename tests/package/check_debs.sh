#!/usr/bin/env bash
# Proves that choreo's Debian packages install and work on their own. Meant
# for a brand-new Debian 12 machine (or container), as root, in a clone of
# the repository:
#
#   bash tests/package/check_debs.sh
#
#  1. tools/package builds libchoreo0, libchoreo-dev and choreo-tools.
#  2. The build dependencies are purged (meson, libnats-dev, libmsgpack-dev,
#     libsqlite3-dev, pkg-config, ... and what only they needed), so that
#     only the packages' own Depends can bring back what they need.
#  3. apt-get installs libchoreo0 and choreo-tools, and choreoctl must run;
#     then it installs all three packages.
#  4. The README's first handler is compiled exactly as the README says,
#     cc first.c $(pkg-config --cflags --libs choreo); choreoctl, choreo-gen
#     and pkg-config's choreo_gen variable are checked.
#  5. Against a private nats-server (JetStream, a free loopback port, a
#     temporary directory), tests/package/emit_one.c emits one OrderCreated
#     from a service named order; the README's handler must reserve the stock
#     (stock.reserved becomes 1), then stop on SIGTERM with exit status 0.
#
# Each command is printed with its output. The last line is "check_debs: OK",
# or "check_debs: FAIL: ..." with a non-zero exit status. It removes packages
# from the machine and installs choreo's packages in /usr: do not run it on a
# machine used to develop choreo (tools/test would reinstall the build
# dependencies, but choreo would stay installed in /usr).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)

work=$(mktemp -d "${TMPDIR:-/tmp}/check-debs.XXXXXX")
nats_pid=""
first_pid=""

# Stops what the check started, by PID, and removes its directory.
cleanup() {
    local pid
    for pid in $first_pid $nats_pid; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            stop_wait "$pid" 10 || kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
    echo "check_debs: FAIL: $*"
    exit 1
}

step() {
    echo
    echo "== $*"
}

# run CMD: prints "$ CMD", runs it in this shell and prints its output
# (of a progress line redrawn with carriage returns, the last state); a
# failing command fails the check.
run() {
    echo "\$ $1"
    local rc=0
    eval "$1" >"$work/out" 2>&1 || rc=$?
    sed -e 's/\r$//' -e 's/.*\r//' "$work/out"
    [ $rc -eq 0 ] || fail "'$1' exited with status $rc (output above)"
}

# stop_wait PID SECONDS: waits until PID has exited, at most SECONDS.
stop_wait() {
    local pid=$1 i
    for ((i = 0; i < $2 * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    return 1
}

# show_log NAME FILE: prints a log the check collected.
show_log() {
    echo "-- $1 ($2):"
    cat "$2" 2>/dev/null || echo "(no log)"
}

[ "$(id -u)" -eq 0 ] || fail "run as root: the check installs and removes Debian packages"
command -v apt-get >/dev/null || fail "this needs Debian (apt-get): run it on a fresh Debian 12 machine"

step "1. build the packages"
run "tools/package --out $work/debs"
debs=("$work"/debs/*.deb)
[ ${#debs[@]} -eq 3 ] || fail "tools/package left ${#debs[@]} .deb files in $work/debs, not 3"

step "2. purge the build dependencies"
# What tools/lib/deps.sh installs, less what this check itself uses: the C
# compiler (build-essential), python3 (the README extractor), nats-server
# and the sqlite3 shell; openssl stays too, since ca-certificates needs it.
# pkgconf is the package behind pkg-config.
. tools/lib/deps.sh
keep=" build-essential python3 nats-server sqlite3 openssl "
purge=()
for p in $CHOREO_PACKAGES pkgconf; do
    case "$keep" in *" $p "*) ;; *) purge+=("$p") ;; esac
done
run "DEBIAN_FRONTEND=noninteractive apt-get purge -y -q ${purge[*]}"
run "DEBIAN_FRONTEND=noninteractive apt-get autoremove --purge -y -q"
gone="libnats-dev libnats3.4 libmsgpack-dev libmsgpackc2 libsqlite3-dev libcriterion-dev pkgconf pkg-config meson"
left=""
for p in $gone; do
    if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        left="$left $p"
    fi
done
[ -z "$left" ] || fail "still installed after the purge:$left; the check cannot prove the packages' Depends"
echo "not installed any more: $gone"
if command -v pkg-config >/dev/null; then fail "pkg-config is still on PATH after the purge"; fi

step "3. install the packages"
run "DEBIAN_FRONTEND=noninteractive apt-get install -y -q $work/debs/libchoreo0_*.deb $work/debs/choreo-tools_*.deb"
run "choreoctl --help > $work/choreoctl-help.txt && head -n 3 $work/choreoctl-help.txt"
if ldd /usr/bin/choreoctl | grep "not found"; then fail "choreoctl misses libraries (above)"; fi
if dpkg-query -W -f='${Status}' libnats-dev 2>/dev/null | grep -q "ok installed"; then
    fail "libchoreo0 or choreo-tools pulled in libnats-dev: a runtime package depends on development files"
fi
run "DEBIAN_FRONTEND=noninteractive apt-get install -y -q $work/debs/*.deb"
# choreo.h needs sqlite3.h only: the development package must not drag in
# the development files of libnats or msgpack (and through it Boost).
for p in libnats-dev libmsgpack-dev libboost-dev; do
    if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        fail "libchoreo-dev pulled in $p, which building against choreo does not need"
    fi
done
run "dpkg-query -W -f='\${Package} \${Version} \${Status}\n' libchoreo0 libchoreo-dev choreo-tools"

step "4. build the README's first handler against the installed packages"
app=$work/app
mkdir -p "$app"
cd "$app"
run "python3 $root/tests/readme/extract.py $root/README.md first_handler first.c"
run "pkg-config --cflags --libs choreo"
run 'cc first.c $(pkg-config --cflags --libs choreo) -o first'
run "cp $root/tests/package/emit_one.c ."
run 'cc emit_one.c $(pkg-config --cflags --libs choreo) -o emit_one'
run "choreo-gen --help > $work/choreo-gen-help.txt && head -n 3 $work/choreo-gen-help.txt"
run "pkg-config --variable=choreo_gen choreo"
gen=$(pkg-config --variable=choreo_gen choreo)
[ -x "$gen" ] || fail "pkg-config's choreo_gen variable names $gen, which is not an executable"
run "$gen --check $root/events/shop.events"

step "5. the first handler handles an OrderCreated"
mkdir -p "$work/nats"
echo "\$ nats-server -a 127.0.0.1 -p -1 --ports_file_dir $work/nats -js -sd $work/nats/js &"
nats-server -a 127.0.0.1 -p -1 --ports_file_dir "$work/nats" -js -sd "$work/nats/js" \
    >"$work/nats.log" 2>&1 &
nats_pid=$!
url=""
for ((i = 0; i < 100; i++)); do
    ports=$work/nats/nats-server_$nats_pid.ports
    if [ -s "$ports" ]; then
        url=$(sed -n 's/.*"nats":\["\(nats:\/\/[^"]*\)".*/\1/p' "$ports")
        [ -n "$url" ] && break
    fi
    kill -0 "$nats_pid" 2>/dev/null || { show_log nats-server "$work/nats.log"; fail "nats-server exited at start"; }
    sleep 0.1
done
[ -n "$url" ] || { show_log nats-server "$work/nats.log"; fail "nats-server wrote no ports file within 10 s"; }
echo "nats-server (pid $nats_pid) listens on $url"

run "sqlite3 inv.db \"CREATE TABLE stock(sku TEXT, reserved INTEGER); INSERT INTO stock VALUES('apple', 0)\""
echo "\$ ./first --service inventory --db inv.db --nats-url $url &"
./first --service inventory --db inv.db --nats-url "$url" >"$work/first.log" 2>&1 &
first_pid=$!
for ((i = 0; i < 200; i++)); do
    grep -q 'msg="service started"' "$work/first.log" && break
    kill -0 "$first_pid" 2>/dev/null || { show_log first "$work/first.log"; fail "./first exited at start"; }
    sleep 0.1
done
grep -q 'msg="service started"' "$work/first.log" ||
    { show_log first "$work/first.log"; fail "./first did not log \"service started\" within 20 s"; }
echo "./first (pid $first_pid) started"

run "timeout 60 ./emit_one --db order.db --nats-url $url"

echo "\$ sqlite3 inv.db \"SELECT reserved FROM stock WHERE sku = 'apple'\"   (every 0.2 s, at most 20 s)"
reserved=""
for ((i = 0; i < 100; i++)); do
    reserved=$(sqlite3 -cmd ".timeout 2000" inv.db "SELECT reserved FROM stock WHERE sku = 'apple'" 2>&1) || true
    [ "$reserved" = 1 ] && break
    kill -0 "$first_pid" 2>/dev/null || { show_log first "$work/first.log"; fail "./first exited while handling"; }
    sleep 0.2
done
echo "$reserved"
[ "$reserved" = 1 ] ||
    { show_log first "$work/first.log"; fail "stock.reserved is '$reserved' after 20 s, not 1: the handler did not run"; }

echo "\$ kill -TERM $first_pid   (./first)"
kill -TERM "$first_pid"
stop_wait "$first_pid" 15 || { show_log first "$work/first.log"; fail "./first did not exit within 15 s of SIGTERM"; }
rc=0
wait "$first_pid" || rc=$?
first_pid=""
show_log "./first's log" "$work/first.log"
[ $rc -eq 0 ] || fail "./first exited with status $rc after SIGTERM, not 0"
echo "./first exited with status 0"
# The handler ran once: a redelivery would have found its inbox mark.
run "sqlite3 inv.db \"SELECT reserved FROM stock WHERE sku = 'apple'\""
[ "$(cat "$work/out")" = 1 ] || fail "stock.reserved is not 1 after ./first stopped: the event was applied twice"

echo "\$ kill -TERM $nats_pid   (nats-server)"
kill -TERM "$nats_pid"
stop_wait "$nats_pid" 10 || kill -KILL "$nats_pid" 2>/dev/null || true
wait "$nats_pid" 2>/dev/null || true
nats_pid=""

echo
echo "check_debs: OK"
