#!/usr/bin/env python3
"""The demo saga at rising offered rates, in one run: a table of offered and
achieved rate with the p50 and p99 latency (placed -> final), and an SVG plot
of latency against rate with the knee marked.

    sweep.py SHOP_DEMO [--rates R1,R2,...] [--seconds S] [--svg FILE] [--json]

Each rate runs a fresh demo (tools/demo --rate R) for about S seconds of
orders. The knee is the highest rate that was sustained with a p99 within
four times the p99 of the lowest rate: past it, sagas queue.
"""
import argparse
import json
import math
import os
import subprocess
import sys


# What shop-demo takes.
MAX_RATE, MAX_ORDERS = 1000000, 10000000


def orders_at(rate, seconds):
    return max(100, int(rate * seconds))


def run(demo, rate, seconds):
    cmd = [demo, "--rate", str(rate), "--orders", str(orders_at(rate, seconds)), "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate()
    except KeyboardInterrupt:
        # Ctrl-C reached the demo too: it stops its services and removes its
        # work directory, which takes a moment; killing it would leave that.
        try:
            proc.wait(timeout=30)
        except KeyboardInterrupt:
            pass
        print("sweep: interrupted", file=sys.stderr)
        sys.exit(130)
    try:
        d = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        sys.exit(f"sweep: {' '.join(cmd)} gave no summary (exit {proc.returncode}):\n"
                 f"{err[-2000:]}")
    return {"offered": rate, "orders": orders_at(rate, seconds), "achieved": d["achieved_rate"],
            "sustained": d["rate_sustained"], "late": d["late_orders"],
            "p50_ms": d["p50_ms"], "p99_ms": d["p99_ms"], "invariants_ok": d["invariants_ok"]}


def knee(points):
    base = points[0]["p99_ms"]
    ok = [p for p in points if p["sustained"] and p["p99_ms"] <= 4 * max(base, 1.0)]
    return ok[-1]["offered"] if ok else None


def svg(points, knee_rate, path):
    w, h, left, bottom, top, right = 640, 400, 60, 50, 20, 20
    xs = [p["offered"] for p in points]
    ys = [v for p in points for v in (p["p50_ms"], p["p99_ms"]) if v > 0]
    xmax = max(xs) * 1.05
    ylo, yhi = math.log10(max(min(ys) / 1.5, 0.1)), math.log10(max(ys) * 1.5)

    def px(x):
        return left + (w - left - right) * x / xmax

    def py(y):
        y = math.log10(max(y, 0.1))
        return h - bottom - (h - top - bottom) * (y - ylo) / max(yhi - ylo, 1e-9)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<line x1="{left}" y1="{h - bottom}" x2="{w - right}" y2="{h - bottom}" stroke="black"/>',
           f'<line x1="{left}" y1="{top}" x2="{left}" y2="{h - bottom}" stroke="black"/>',
           f'<text x="{w / 2}" y="{h - 12}" text-anchor="middle">offered sagas/s</text>',
           f'<text x="14" y="{h / 2}" transform="rotate(-90 14 {h / 2})" '
           f'text-anchor="middle">placed to final, ms (log)</text>']
    for x in xs:
        out.append(f'<text x="{px(x):.1f}" y="{h - bottom + 16}" text-anchor="middle">{x}</text>')
    for e in range(math.floor(ylo), math.ceil(yhi) + 1):
        y = py(10 ** e)
        if top <= y <= h - bottom:
            out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{10 ** e:g}</text>')
            out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{w - right}" y2="{y:.1f}" '
                       f'stroke="#ddd"/>')
    for key, colour in (("p50_ms", "#1f77b4"), ("p99_ms", "#d62728")):
        pts = " ".join(f"{px(p['offered']):.1f},{py(p[key]):.1f}" for p in points)
        out.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for p in points:
            out.append(f'<circle cx="{px(p["offered"]):.1f}" cy="{py(p[key]):.1f}" r="3" '
                       f'fill="{colour}"/>')
        last = points[-1]
        out.append(f'<text x="{px(last["offered"]) - 4:.1f}" y="{py(last[key]) - 6:.1f}" '
                   f'text-anchor="end" fill="{colour}">{key[:3]}</text>')
    if knee_rate is not None:
        x = px(knee_rate)
        out.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{h - bottom}" '
                   f'stroke="#2ca02c" stroke-dasharray="4 3"/>')
        out.append(f'<text x="{x + 4:.1f}" y="{top + 12}" fill="#2ca02c">knee {knee_rate}/s</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def main():
    ap = argparse.ArgumentParser(prog="sweep", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("demo", metavar="SHOP_DEMO", help="the shop-demo program to run")
    ap.add_argument("--rates", default="100,200,400,600,800,1000,1200,1500,2000",
                    help="offered sagas/s, separated by commas [%(default)s]")
    ap.add_argument("--seconds", type=float, default=4,
                    help="seconds of orders at each rate [%(default)s]")
    ap.add_argument("--svg", default="sweep.svg", metavar="FILE",
                    help="where the plot goes [%(default)s]")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    a = ap.parse_args()
    # Every flag is checked before the first demo runs (exit 2, as argparse).
    try:
        rates = sorted({int(r) for r in a.rates.split(",")})
    except ValueError:
        ap.error(f"--rates takes whole numbers separated by commas, not {a.rates!r}")
    if not rates or rates[0] < 1 or rates[-1] > MAX_RATE:
        ap.error(f"--rates takes rates from 1 to {MAX_RATE} per second, not {a.rates!r}")
    if not (math.isfinite(a.seconds) and 0 < a.seconds <= 3600):
        ap.error(f"--seconds takes the seconds of orders at each rate, more than 0 "
                 f"and at most 3600, not {a.seconds:g}")
    if orders_at(rates[-1], a.seconds) > MAX_ORDERS:
        ap.error(f"{rates[-1]}/s for {a.seconds:g} s is more than the {MAX_ORDERS} orders "
                 f"a demo takes: lower the rate or --seconds")
    if not (os.path.isfile(a.demo) and os.access(a.demo, os.X_OK)):
        ap.error(f"SHOP_DEMO {a.demo!r} is not a program that can run: give the path of "
                 f"shop-demo (build/tools/supervisor/shop-demo; tools/bench --sweep finds it)")
    # Found out before the sweep, not after it: where the plot goes.
    where = os.path.dirname(os.path.abspath(a.svg))
    if os.path.isdir(a.svg) or not os.path.isdir(where) or not os.access(where, os.W_OK):
        ap.error(f"cannot write the plot to {a.svg}: give --svg a file in a directory "
                 f"that exists and is writable")
    points = []
    for r in rates:
        points.append(run(a.demo, r, a.seconds))
        if not a.json:
            p = points[-1]
            print(f"  offered {r:6d}/s  achieved {p['achieved']:8.1f}/s  p50 {p['p50_ms']:8.2f} ms"
                  f"  p99 {p['p99_ms']:8.2f} ms  {'sustained' if p['sustained'] else 'NOT sustained'}"
                  f"{'' if p['invariants_ok'] else '  INVARIANTS BROKEN'}", flush=True)
    k = knee(points)
    svg(points, k, a.svg)
    if a.json:
        print(json.dumps({"points": points, "knee_rate": k, "svg": a.svg}))
    else:
        print(f"knee: {k}/s (the highest rate sustained with p99 within 4x the lowest rate's)"
              if k else "knee: none (no rate was sustained)")
        print(f"plot: {a.svg}")
    return 0 if all(p["invariants_ok"] for p in points) else 1


if __name__ == "__main__":
    sys.exit(main())
