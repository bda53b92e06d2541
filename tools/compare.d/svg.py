"""The comparison as small multiples: one panel per measure, one bar per
style, each bar labelled with its value. Plain SVG 1.1, no script, no
external resources."""
from xml.sax.saxutils import escape

PANELS = [
    ("sagas_per_s", "sagas per second", "%.0f", "higher is better"),
    ("p50_ms", "p50 latency (ms)", "%.1f", "placed -> final"),
    ("p99_ms", "p99 latency (ms)", "%.1f", "placed -> final"),
    ("compensations", "compensations", "%d", "released + unfrozen + revoked"),
    ("events_per_saga", "events per saga", "%.2f", "outbox rows / orders"),
    ("timers_per_saga", "timers per saga", "%.2f", "delayed events among them"),
    ("transactions_per_saga", "local transactions per saga", "%.2f", "inbox marks + requests"),
    ("handler_loc", "handler lines of code", "%d", "style-specific functions"),
    ("intermediate_seen", "orders seen held", "%d", "stock reserved or money frozen"),
    ("intermediate_after_final", "seen held after final", "%d", "settled after the outcome"),
    ("intermediate_mean_ms", "mean time seen held (ms)", "%.0f", "first to last sample"),
    ("intermediate_p50_ms", "median time seen held (ms)", "%.0f", "first to last sample"),
]
COLORS = {"choreography": "#4e79a7", "orchestration": "#f28e2b", "tcc": "#59a14f"}
W, H, COLS = 250, 190, 4


def panel(key, title, fmt, note, x0, y0, values, styles):
    out = ['<g transform="translate(%d,%d)">' % (x0, y0),
           '<rect x="0" y="0" width="%d" height="%d" fill="#fafafa" stroke="#ddd"/>'
           % (W - 10, H - 10),
           '<text x="10" y="20" font-size="13" font-weight="bold">%s</text>' % escape(title),
           '<text x="10" y="35" font-size="10" fill="#666">%s</text>' % escape(note)]
    top = max([v for v in values if v is not None] + [0]) or 1
    base, height, bw = H - 40, H - 95, 50
    for i, st in enumerate(styles):
        v = values[i]
        x = 20 + i * (bw + 23)
        h = 0 if v is None else height * v / top
        out.append('<rect x="%d" y="%.1f" width="%d" height="%.1f" fill="%s"><title>%s: %s'
                   '</title></rect>' % (x, base - h, bw, h, COLORS.get(st, "#999"),
                                        escape(st), "n/a" if v is None else fmt % v))
        out.append('<text x="%d" y="%.1f" font-size="11" text-anchor="middle">%s</text>'
                   % (x + bw // 2, base - h - 4, "n/a" if v is None else fmt % v))
        out.append('<text x="%d" y="%d" font-size="10" text-anchor="middle">%s</text>'
                   % (x + bw // 2, base + 14, escape(st[:13])))
    out.append('<line x1="12" y1="%d" x2="%d" y2="%d" stroke="#999"/>' % (base, W - 22, base))
    out.append("</g>")
    return out


def write(path, res, styles):
    rows = (len(PANELS) + COLS - 1) // COLS
    width, height = COLS * W + 10, rows * H + 60
    run = res["run"]
    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           '<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="%d" height="%d" '
           'viewBox="0 0 %d %d" font-family="sans-serif">' % (width, height, width, height),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="10" y="24" font-size="16" font-weight="bold">%s</text>'
           % escape("The shop in three saga styles: %d orders each, seed %d, median of %d run%s"
                    % (run["orders"], run["seed"], run["runs"],
                       "" if run["runs"] == 1 else "s"))]
    x = 10
    for st in styles:
        out.append('<rect x="%d" y="34" width="12" height="12" fill="%s"/>'
                   % (x, COLORS.get(st, "#999")))
        label = "%s (%s)" % (st, res["classic"][st]["as"])
        out.append('<text x="%d" y="45" font-size="12">%s</text>' % (x + 16, escape(label)))
        x += 16 + 7 * len(label) + 24
    for k, (key, title, fmt, note) in enumerate(PANELS):
        values = [res["styles"][st].get(key) for st in styles]
        out += panel(key, title, fmt, note, 10 + (k % COLS) * W, 55 + (k // COLS) * H, values,
                     styles)
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
