#!/usr/bin/env python3
"""tools/compare's engine on a small load, against this build.

First the rule of handler_loc on a small made-up service whose answer is
known, line for line; then unknown flags must be refused; then the three
styles of the shop on the same 150 orders, twice each: the JSON must hold
the three styles with every measure, each in a sane range (no timing is
asserted beyond sagas_per_s > 0 and p50 <= p99) and the median of its runs,
and the chart must parse as SVG.

usage: test_compare.py SOURCE_DIR BUILD_DIR
"""
import json
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

ORDERS = 150
RUNS = 2
STYLES = ("choreography", "orchestration", "tcc")
FIELDS = ("sagas_per_s", "p50_ms", "p99_ms", "events_per_saga", "timers_per_saga",
          "transactions_per_saga", "compensations", "intermediate_seen", "intermediate_mean_ms",
          "intermediate_max_ms", "intermediate_after_final", "handler_loc")

# A service in the three styles, written with every construct the reader
# follows: a test after other conditions, !=, an if with an early return,
# an else, a ternary, and a helper used by two styles.
DOMAIN = """typedef enum shop_style {
    SHOP_STYLE_CHOREOGRAPHY = 0,
    SHOP_STYLE_ORCHESTRATION = 1,
    SHOP_STYLE_TCC = 2,
    SHOP_STYLE_COUNT = 3,
} shop_style;
"""
SERVICE = """/* made up */
static int business(int x)
{
    return x + 1;
}

static int shared_request(void *u)
{
    return business(1);
}

/* three lines, comment not counted */
static int on_a(void *u)
{
    return business(2);
}

static int helper(void *u)
{
    // a comment line
    return business(3);
}

static int on_b(void *u)
{
    return helper(u);
}

static int on_c(void *u)
{
    int r = helper(u);

    return r;
}

static int define_x(void *d) { return 0; }

static int define_y(void *d)
{
    return 1;
}

static int setup(void *svc, shop_style style, void *user)
{
    int s = reg(svc, "rq", shared_request, user);
    if (s == 0 && style == SHOP_STYLE_CHOREOGRAPHY && (s = on(svc, on_a, user)))
        return s;
    if (style != SHOP_STYLE_CHOREOGRAPHY) {
        if ((s = on(svc, on_b, user)))
            return s;
    } else {
        return s;
    }
    if (style == SHOP_STYLE_TCC && (s = on(svc, on_c, user)))
        return s;
    struct def *d = NULL;
    return style == SHOP_STYLE_TCC ? define_y(d) : define_x(d);
}

int main(void)
{
    struct service_def def = { .name = "x", .register_handlers = setup };
    return run(&def);
}
"""
# Non-blank lines without comments: on_a 4, on_b 4, helper 4, on_c 5,
# define_x 1, define_y 4; business and shared_request run in every style.
EXPECTED = {"choreography": 4, "orchestration": 4 + 4 + 1, "tcc": 4 + 4 + 5 + 4}


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


def check_rule(engine_dir):
    sys.path.insert(0, engine_dir)
    import handler_loc
    with tempfile.TemporaryDirectory(prefix="choreo-compare-rule-") as root:
        os.makedirs(os.path.join(root, "services", "common"))
        os.makedirs(os.path.join(root, "services", "x"))
        with open(os.path.join(root, "services", "common", "shop_domain.h"), "w") as f:
            f.write(DOMAIN)
        with open(os.path.join(root, "services", "x", "x.c"), "w") as f:
            f.write(SERVICE)
        got = handler_loc.measure(root)
    loc = {st: got["styles"][st]["loc"] for st in STYLES}
    if loc != EXPECTED:
        fail("handler_loc of the made-up service: %s, expected %s (functions: %s)"
             % (loc, EXPECTED, {st: got["styles"][st]["functions"] for st in STYLES}))
    print("ok: handler_loc rule %s" % loc, flush=True)


def check_flags(engine, build):
    p = subprocess.run([sys.executable, engine, "--orderz", "5"], capture_output=True, text=True)
    if p.returncode != 2 or "--orderz" not in p.stderr:
        fail("an unknown flag gave status %d and %r" % (p.returncode, p.stderr))
    print("ok: unknown flag refused", flush=True)
    # A chart that cannot be written is refused before any run, not after
    # all of them.
    with tempfile.TemporaryDirectory(prefix="choreo-compare-test-") as tmp:
        p = subprocess.run([sys.executable, engine, "--build-dir", build, "--orders", "5",
                            "--svg", tmp],
                           capture_output=True, text=True, timeout=60)
    if p.returncode != 2 or "is a directory" not in p.stderr:
        fail("--svg DIR gave status %d and %r" % (p.returncode, p.stderr))
    print("ok: --svg of a directory refused", flush=True)


def number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_run(engine, build):
    with tempfile.TemporaryDirectory(prefix="choreo-compare-test-") as tmp:
        chart = os.path.join(tmp, "compare.svg")
        p = subprocess.run([sys.executable, engine, "--build-dir", build, "--orders", str(ORDERS),
                            "--runs", str(RUNS), "--json", "--svg", chart],
                           capture_output=True, text=True, timeout=600)
        if p.returncode != 0:
            fail("compare exited with %d\nstdout: %s\nstderr: %s"
                 % (p.returncode, p.stdout[-2000:], p.stderr[-4000:]))
        try:
            res = json.loads(p.stdout)
        except ValueError as e:
            fail("the output is not JSON (%s): %s" % (e, p.stdout[:500]))
        try:
            root = ET.parse(chart).getroot()
        except ET.ParseError as e:
            fail("the SVG does not parse as XML: %s" % e)
    if root.tag != "{http://www.w3.org/2000/svg}svg":
        fail("the chart's root element is %s" % root.tag)
    bars = [r for r in root.iter("{http://www.w3.org/2000/svg}rect")
            if r.find("{http://www.w3.org/2000/svg}title") is not None]
    if len(bars) < 3 * 7 or len(bars) % 3:
        fail("the chart has %d bars" % len(bars))
    if not isinstance(res, dict) or sorted(res.get("styles", {})) != sorted(STYLES):
        fail("styles in the JSON: %s" % list(res.get("styles", {})))
    for st in STYLES:
        r = res["styles"][st]
        missing = [k for k in FIELDS if k not in r or not number(r[k])]
        if missing:
            fail("%s: missing or not a number: %s" % (st, missing))
        checks = [
            ("sagas_per_s > 0", r["sagas_per_s"] > 0),
            ("0 < p50_ms <= p99_ms", 0 < r["p50_ms"] <= r["p99_ms"]),
            ("events_per_saga > 1", r["events_per_saga"] > 1),
            ("0 <= timers_per_saga < events_per_saga",
             0 <= r["timers_per_saga"] < r["events_per_saga"]),
            ("transactions_per_saga > 1", r["transactions_per_saga"] > 1),
            ("compensations > 0 (the mix cancels orders after a step)", r["compensations"] > 0),
            ("1 <= intermediate_seen <= orders", 1 <= r["intermediate_seen"] <= ORDERS),
            ("0 <= intermediate_after_final <= intermediate_seen",
             0 <= r["intermediate_after_final"] <= r["intermediate_seen"]),
            ("0 <= intermediate_mean_ms <= intermediate_max_ms",
             0 <= r["intermediate_mean_ms"] <= r["intermediate_max_ms"]),
            ("handler_loc > 0", r["handler_loc"] > 0),
            ("handler_functions listed", len(r.get("handler_functions", [])) > 0),
            ("orders = %d" % ORDERS, r.get("orders") == ORDERS),
            ("invariants_ok", r.get("invariants_ok") is True),
            ("%d runs listed" % RUNS, len(r.get("runs", [])) == RUNS),
        ]
        # Each measure is the median of the runs: between their least and
        # their greatest.
        for k in r.get("runs", [{}])[0]:
            vals = [run[k] for run in r["runs"]]
            checks.append(("%s within its runs %s" % (k, vals),
                           min(vals) - 0.01 <= r[k] <= max(vals) + 0.01))
        for what, ok in checks:
            if not ok:
                fail("%s: %s does not hold: %s" % (st, what, json.dumps(r)))
        print("ok: %s %s" % (st, {k: r[k] for k in FIELDS}), flush=True)


def main():
    if len(sys.argv) != 3:
        fail("usage: test_compare.py SOURCE_DIR BUILD_DIR")
    source, build = sys.argv[1], sys.argv[2]
    engine_dir = os.path.join(source, "tools", "compare.d")
    engine = os.path.join(engine_dir, "compare.py")
    check_rule(engine_dir)
    check_flags(engine, build)
    check_run(engine, build)
    print("PASS", flush=True)


if __name__ == "__main__":
    main()
