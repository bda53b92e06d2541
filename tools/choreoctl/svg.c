/* The SVG sequence diagram of `choreoctl saga --svg`. Rows are spaced
 * evenly rather than by time, so a saga whose deadline fires seconds after
 * its first steps still fits on a page; each row says its offset. Every
 * text comes from events or databases, so it is escaped for XML and cleaned
 * of what XML 1.0 forbids (control characters, invalid UTF-8). */
#include "svg.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "text.h"

#define LABEL_W 260    /* the left column: offset and type */
#define LANE_W 180
#define NOTE_W 340     /* room right of the last lane for labels (60 characters) */
#define HEAD_H 112     /* title, legend and lane names */
#define ROW_H 34       /* an event with one arrow */
#define ARROW_GAP 18   /* each further arrow of the same event */
#define LANES_MAX 64   /* services past this share the last lane */

static const char *const colour[] = {
    [CTL_KIND_NORMAL] = "#2b6cb0",
    [CTL_KIND_FAILURE] = "#c53030",
    [CTL_KIND_COMPENSATION] = "#c05621",
};

struct lanes {
    const char *name[LANES_MAX];
    int n;
};

/* Writes s, at most max characters of it, as XML character data. */
static void esc(FILE *f, const char *s, size_t max)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t len = strlen(s), chars = 0;
    for (size_t i = 0; i < len; chars++) {
        if (chars == max) {
            fputs("\u2026", f);
            return;
        }
        size_t n = ctl_utf8_seq(p + i, len - i);
        if (n == 0) {
            fputs("\ufffd", f);
            i++;
        } else if (p[i] < 0x20 || p[i] == 0x7f) {
            fputc(' ', f);
            i++;
        } else if (p[i] == '&') {
            fputs("&amp;", f);
            i++;
        } else if (p[i] == '<') {
            fputs("&lt;", f);
            i++;
        } else if (p[i] == '>') {
            fputs("&gt;", f);
            i++;
        } else if (p[i] == '"') {
            fputs("&quot;", f);
            i++;
        } else if (p[i] == '\'') {
            fputs("&apos;", f);
            i++;
        } else {
            fwrite(p + i, 1, n, f);
            i += n;
        }
    }
}

static int lane_of(struct lanes *l, const char *service)
{
    const char *name = *service ? service : "?";
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->name[i], name) == 0)
            return i;
    if (l->n == LANES_MAX)
        return LANES_MAX - 1;
    l->name[l->n] = name;
    return l->n++;
}

/* Lanes in order of first appearance: the emitter, then those it reached. */
static void find_lanes(const ctl_timeline *t, struct lanes *l)
{
    memset(l, 0, sizeof *l);
    for (size_t i = 0; i < t->n; i++) {
        const ctl_tl_event *e = &t->ev[i];
        lane_of(l, e->src);
        for (size_t a = 0; a < e->napplied; a++)
            lane_of(l, e->applied[a].db->service);
        for (size_t p = 0; p < e->nparked; p++)
            lane_of(l, e->parked[p].db->service);
    }
}

static int lane_x(int lane)
{
    return LABEL_W + LANE_W / 2 + lane * LANE_W;
}

static int row_height(const ctl_tl_event *e)
{
    size_t arrows = e->napplied + e->nparked;
    return ROW_H + (arrows > 1 ? (int)(arrows - 1) * ARROW_GAP : 0);
}

static void head(FILE *f, const ctl_timeline *t, const struct lanes *l, int width, int height)
{
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
               "viewBox=\"0 0 %d %d\" font-family=\"Helvetica, Arial, sans-serif\" "
               "font-size=\"12\">\n", width, height, width, height);
    fputs("<title>saga ", f);
    esc(f, t->saga, 64);
    fputs("</title>\n<defs>\n", f);
    for (int k = 0; k < 3; k++)
        fprintf(f, "  <marker id=\"head%d\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" "
                   "markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\">"
                   "<path d=\"M0,0 L10,5 L0,10 z\" fill=\"%s\"/></marker>\n", k, colour[k]);
    fprintf(f, "</defs>\n<rect width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", width, height);
    fputs("<text x=\"12\" y=\"24\" font-size=\"16\" font-weight=\"bold\">saga ", f);
    esc(f, t->saga, 64);
    fprintf(f, "</text>\n<text x=\"12\" y=\"44\" fill=\"#4a5568\">%zu event%s in stream ",
            t->n, t->n == 1 ? "" : "s");
    esc(f, t->stream, 64);
    char at[32];
    ctl_time_iso(t->t0, true, at);
    fprintf(f, ", offsets from %s%s</text>\n", at, t->truncated ? " (cut: see --limit)" : "");
    static const char *const legend[] = { "event applied", "failure or parked",
                                          "compensation" };
    for (int k = 0; k < 3; k++) {
        int x = 12 + k * 170;
        fprintf(f, "<line x1=\"%d\" y1=\"62\" x2=\"%d\" y2=\"62\" stroke=\"%s\" "
                   "stroke-width=\"2\" marker-end=\"url(#head%d)\"/>"
                   "<text x=\"%d\" y=\"66\">%s</text>\n", x, x + 30, colour[k], k, x + 38,
                legend[k]);
    }
    for (int i = 0; i < l->n; i++) {
        int x = lane_x(i);
        fprintf(f, "<rect x=\"%d\" y=\"78\" width=\"%d\" height=\"24\" rx=\"4\" "
                   "fill=\"#edf2f7\" stroke=\"#a0aec0\"/>"
                   "<text x=\"%d\" y=\"94\" text-anchor=\"middle\" font-weight=\"bold\">",
                x - LANE_W / 2 + 10, LANE_W - 20, x);
        esc(f, i == LANES_MAX - 1 && l->n == LANES_MAX ? "(others)" : l->name[i], 22);
        fprintf(f, "</text>\n<line x1=\"%d\" y1=\"102\" x2=\"%d\" y2=\"%d\" stroke=\"#cbd5e0\" "
                   "stroke-dasharray=\"4 4\"/>\n", x, x, height - 16);
    }
}

/* One arrow from the emitter's lane at height y; a service reading its
 * own event gets a loop. */
static void arrow(FILE *f, int from, int to, int y, int kind, bool dashed)
{
    const char *dash = dashed ? " stroke-dasharray=\"5 3\"" : "";
    if (from == to)
        fprintf(f, "<path d=\"M%d,%d h34 v10 h-28\" fill=\"none\" stroke=\"%s\" "
                   "stroke-width=\"1.6\"%s marker-end=\"url(#head%d)\"/>\n", from, y - 5,
                colour[kind], dash, kind);
    else
        fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" "
                   "stroke-width=\"1.6\"%s marker-end=\"url(#head%d)\"/>\n", from, y,
                to + (to > from ? -4 : 4), y, colour[kind], dash, kind);
}

/* A label right of the arrow's head: past it for an arrow to the right,
 * above the arrow's line for one to the left, so that it never runs into
 * the column of event types. */
static void arrow_label(FILE *f, int from, int to, int y, int kind)
{
    int x = from == to ? to + 40 : to + 8;
    fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"10\" fill=\"%s\">", x, y - 3,
            colour[kind]);
}

static void event_row(FILE *f, const ctl_timeline *t, size_t i, struct lanes *l, int y)
{
    const ctl_tl_event *e = &t->ev[i];
    int kind = (int)ctl_timeline_kind(t, i);
    int src = lane_x(lane_of(l, e->src));
    fprintf(f, "<g>\n<title>");
    esc(f, e->type, 80);
    fputs(" ", f);
    esc(f, e->id, 64);
    fputs(" from ", f);
    esc(f, e->src, 80);
    fputs(e->has_cause ? ", cause " : "", f);
    esc(f, e->has_cause ? e->cause : "", 64);
    fprintf(f, "</title>\n<text x=\"12\" y=\"%d\" font-family=\"monospace\" fill=\"#4a5568\">"
               "%+" PRId64 " ms</text>\n", y + 4, e->ts_ms - t->t0);
    fprintf(f, "<text x=\"100\" y=\"%d\" font-weight=\"bold\" fill=\"%s\">", y + 4,
            colour[kind]);
    esc(f, e->type, 24);
    fprintf(f, "</text>\n<circle cx=\"%d\" cy=\"%d\" r=\"4\" fill=\"%s\"/>\n", src, y,
            colour[kind]);
    int k = 0;
    for (size_t a = 0; a < e->napplied; a++, k++) {
        const ctl_apply *ap = &e->applied[a];
        int to = lane_x(lane_of(l, ap->db->service)), ak = kind;
        size_t cursor = 0;
        for (const ctl_mark *m; (m = ctl_timeline_next_mark(t, i, a, &cursor)) != NULL;)
            if (strcmp(m->op, "compensation") == 0)
                ak = CTL_KIND_COMPENSATION;
        arrow(f, src, to, y + k * ARROW_GAP, ak, false);
        arrow_label(f, src, to, y + k * ARROW_GAP, ak);
        esc(f, ap->consumer, 40);
        fprintf(f, " %+" PRId64 " ms</text>\n", ap->at_ms - t->t0);
    }
    for (size_t p = 0; p < e->nparked; p++, k++) {
        const ctl_park *pk = &e->parked[p];
        int to = lane_x(lane_of(l, pk->db->service)), yy = y + k * ARROW_GAP;
        arrow(f, src, to, yy, CTL_KIND_FAILURE, true);
        fprintf(f, "<path d=\"M%d,%d l8,8 m0,-8 l-8,8\" stroke=\"%s\" stroke-width=\"2\"/>\n",
                to - 4, yy - 4, colour[CTL_KIND_FAILURE]);
        arrow_label(f, src, to, yy, CTL_KIND_FAILURE);
        fputs("parked by ", f);
        esc(f, pk->consumer, 40);
        /* The reason goes on a line of its own, under the arrow. */
        fprintf(f, "</text>\n<text x=\"%d\" y=\"%d\" font-size=\"10\" fill=\"%s\">",
                to + 8, yy + 10, colour[CTL_KIND_FAILURE]);
        esc(f, pk->reason, 60);
        fputs("</text>\n", f);
    }
    fputs("</g>\n", f);
}

int ctl_svg_write(const ctl_timeline *t, const char *path)
{
    struct lanes l;
    find_lanes(t, &l);
    int height = HEAD_H + 24;
    for (size_t i = 0; i < t->n; i++)
        height += row_height(&t->ev[i]);
    int width = LABEL_W + (l.n > 0 ? l.n : 1) * LANE_W + NOTE_W;
    FILE *f = fopen(path, "w");
    if (!f) {
        ctl_error("saga: cannot write the SVG to %s: %s", path, strerror(errno));
        return CTL_EXIT_FAIL;
    }
    head(f, t, &l, width, height);
    int y = HEAD_H + 14;
    for (size_t i = 0; i < t->n; i++) {
        event_row(f, t, i, &l, y);
        y += row_height(&t->ev[i]);
    }
    fputs("</svg>\n", f);
    bool failed = ferror(f) != 0;
    if (fclose(f) != 0)
        failed = true;
    if (failed) {
        ctl_error("saga: cannot write the SVG to %s: %s", path, strerror(errno));
        return CTL_EXIT_FAIL;
    }
    return CTL_EXIT_OK;
}
