/* The dead subcommands. Reading (list, show) touches only the database;
 * retry publishes through choreo_admin_dead_retry, which keeps the original
 * subject and body and addresses the message to the consumer that parked it
 * (header Choreo-Retry-For), so no other consumer applies it again. Each
 * entry is read first so that errors can say what state it is in. */
#include "dead.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "help.h"
#include "json.h"
#include "mpjson.h"
#include "text.h"

/* Largest JSON document choreoctl builds; parked bodies are at most
 * max_event_bytes (8 MiB at most), twice that in hex. */
#define JSON_MAX ((size_t)64 << 20)
/* Bytes of a body that is not an envelope shown in the text hex dump. */
#define HEXDUMP_MAX 256

/* A cleaned copy of s for a terminal, "-" for an empty string. */
static char *cell(const char *s)
{
    return ctl_text_clean(*s ? s : "-", strlen(*s ? s : "-"));
}

static int oom(void)
{
    ctl_error("out of memory");
    return CTL_EXIT_FAIL;
}

enum { COL_ID, COL_PARKED, COL_STATUS, COL_CONSUMER, COL_TYPE, COL_EVENT, COL_ATTEMPTS,
       COL_REASON, NCOLS };

static const char *const headers[NCOLS] = { "ID",   "PARKED (UTC)", "STATUS",   "CONSUMER",
                                            "TYPE", "EVENT ID",     "ATTEMPTS", "REASON" };

static bool fill_row(char **row, const choreo_dead_entry *e)
{
    char id[24], at[32], attempts[24];
    snprintf(id, sizeof id, "%" PRId64, e->id);
    ctl_time_iso(e->parked_at_ms, false, at);
    snprintf(attempts, sizeof attempts, "%" PRId64, e->attempts);
    const char *src[NCOLS] = { id, at, e->status, e->consumer, e->event_type, e->event_id,
                               attempts, e->reason };
    for (int c = 0; c < NCOLS; c++)
        if (!(row[c] = cell(src[c])))
            return false;
    return true;
}

static int print_table(const choreo_dead_entry *list, size_t n)
{
    char **cells = calloc(n * NCOLS, sizeof *cells);
    if (!cells)
        return oom();
    int rc = CTL_EXIT_OK;
    size_t width[NCOLS];
    for (int c = 0; c < NCOLS; c++)
        width[c] = ctl_text_width(headers[c]);
    for (size_t i = 0; i < n && rc == CTL_EXIT_OK; i++) {
        if (!fill_row(cells + i * NCOLS, &list[i])) {
            rc = oom();
            break;
        }
        for (int c = 0; c < COL_REASON; c++) {
            size_t w = ctl_text_width(cells[i * NCOLS + c]);
            width[c] = w > width[c] ? w : width[c];
        }
    }
    if (rc == CTL_EXIT_OK) {
        size_t used = 0;
        for (int c = 0; c < COL_REASON; c++)
            used += width[c] + 2;
        size_t rw = ctl_text_room(used);
        for (size_t i = 0; i <= n; i++) {
            for (int c = 0; c < NCOLS; c++) {
                if (i > 0 && c == COL_REASON)
                    ctl_text_truncate(cells[(i - 1) * NCOLS + c], rw);
                const char *s = i == 0 ? headers[c] : cells[(i - 1) * NCOLS + c];
                if (c == COL_REASON)
                    fputs(s, stdout);
                else
                    ctl_text_pad(stdout, s, width[c] + 2);
            }
            fputc('\n', stdout);
        }
    }
    for (size_t i = 0; i < n * NCOLS; i++)
        free(cells[i]);
    free(cells);
    return rc;
}

/* The fields of an entry as members of the JSON object being written. */
static void entry_json(ctl_json *j, const choreo_dead_entry *e)
{
    char t[32];
    ctl_json_kint(j, "id", e->id);
    ctl_json_kstr(j, "consumer", e->consumer);
    ctl_json_kstr(j, "event_id", e->event_id);
    ctl_json_kstr(j, "event_type", e->event_type);
    ctl_json_kstr(j, "subject", e->subject);
    ctl_json_kstr(j, "reason", e->reason);
    ctl_json_kint(j, "attempts", e->attempts);
    ctl_json_kint(j, "parked_at_ms", e->parked_at_ms);
    ctl_json_key(j, "parked_at");
    ctl_time_iso(e->parked_at_ms, true, t);
    ctl_json_cstr(j, t);
    ctl_json_kint(j, "updated_at_ms", e->updated_at_ms);
    ctl_json_key(j, "updated_at");
    if (e->updated_at_ms > 0) {
        ctl_time_iso(e->updated_at_ms, true, t);
        ctl_json_cstr(j, t);
    } else {
        ctl_json_null(j);
    }
    ctl_json_kstr(j, "status", e->status);
    ctl_json_kuint(j, "body_len", e->body_len);
}


static int cmd_list(choreo_admin *adm, const ctl_args *a, const char *db)
{
    choreo_dead_entry *list = NULL;
    size_t n = 0;
    if (choreo_admin_dead_list(adm, a->status, &list, &n) != CHOREO_OK) {
        ctl_error("dead list: %s", choreo_last_error());
        return CTL_EXIT_FAIL;
    }
    int rc;
    if (a->json) {
        ctl_json j;
        ctl_json_init(&j, JSON_MAX, true, 0);
        ctl_json_array_begin(&j);
        for (size_t i = 0; i < n; i++) {
            ctl_json_object_begin(&j);
            entry_json(&j, &list[i]);
            ctl_json_object_end(&j);
        }
        ctl_json_array_end(&j);
        rc = ctl_json_print(&j, NULL);
        ctl_json_free(&j);
    } else if (n == 0) {
        printf("No %s messages in %s.\n", a->status ? a->status : "parked, retried or dropped",
               db);
        rc = CTL_EXIT_OK;
    } else {
        rc = print_table(list, n);
    }
    free(list);
    return rc;
}

/* Reads an entry, saying what is wrong when it cannot. */
static int get_entry(choreo_admin *adm, const char *cmd, int64_t id, const char *db,
                     choreo_dead_entry *e, uint8_t **body, size_t *len)
{
    choreo_status s = choreo_admin_dead_get(adm, id, e, body, len);
    if (s == CHOREO_ENOTFOUND) {
        ctl_error("%s: no message with ID %" PRId64 " in %s: see choreoctl dead list "
                  "--status all for the IDs there are", cmd, id, db);
        return CTL_EXIT_FAIL;
    }
    if (s != CHOREO_OK) {
        ctl_error("%s: %s", cmd, choreo_last_error());
        return CTL_EXIT_FAIL;
    }
    return CTL_EXIT_OK;
}

static void show_field(const char *label, const char *value)
{
    char *clean = cell(value);
    printf("%-12s%s\n", label, clean ? clean : "(out of memory)");
    free(clean);
}

static void show_envelope_field(const char *label, const char *s, uint32_t len)
{
    char *clean = len ? ctl_text_clean(s, len) : NULL;
    printf("  %-9s%s\n", label, clean ? clean : "-");
    free(clean);
}

static void show_entry_text(const choreo_dead_entry *e)
{
    char t[32];
    printf("%-12s%" PRId64 "\n", "ID:", e->id);
    show_field("Status:", e->status);
    show_field("Consumer:", e->consumer);
    show_field("Event id:", e->event_id);
    show_field("Event type:", e->event_type);
    show_field("Subject:", e->subject);
    printf("%-12s%" PRId64 "\n", "Attempts:", e->attempts);
    ctl_time_iso(e->parked_at_ms, true, t);
    printf("%-12s%s\n", "Parked at:", t);
    ctl_time_iso(e->updated_at_ms, true, t);
    printf("%-12s%s\n", "Updated at:", t);
    show_field("Reason:", e->reason);
}

static void show_text(const choreo_dead_entry *e, const uint8_t *body, size_t len,
                      const ctl_envelope *env, const ctl_json *data, const char *why)
{
    show_entry_text(e);
    if (!env) {
        char *clean = ctl_text_clean(why, strlen(why));
        printf("%-12s%zu bytes, not a valid choreo envelope: %s\n", "Body:", len,
               clean ? clean : why);
        free(clean);
        ctl_hexdump(stdout, body, len, HEXDUMP_MAX, 2);
        return;
    }
    char t[32];
    printf("%-12s%zu bytes, a choreo envelope:\n", "Body:", len);
    show_envelope_field("id:", env->id, env->id_len);
    show_envelope_field("type:", env->type, env->type_len);
    printf("  %-9s%" PRIu64 "\n", "v:", env->version);
    show_envelope_field("saga:", env->saga, env->saga_len);
    show_envelope_field("cause:", env->cause, env->has_cause ? env->cause_len : 0);
    show_envelope_field("src:", env->src, env->src_len);
    ctl_time_iso(env->ts_ms, true, t);
    printf("  %-9s%" PRId64 " (%s)\n", "ts:", env->ts_ms, t);
    printf("  %-9s%s\n", "data:", data->buf);
}

static void show_json(ctl_json *j, const choreo_dead_entry *e, const uint8_t *body, size_t len,
                      const ctl_envelope *env, const ctl_json *data, const char *why)
{
    ctl_json_object_begin(j);
    entry_json(j, e);
    ctl_json_key(j, "envelope");
    if (env) {
        ctl_json_object_begin(j);
        ctl_json_key(j, "id");
        ctl_json_str(j, env->id, env->id_len);
        ctl_json_key(j, "type");
        ctl_json_str(j, env->type, env->type_len);
        ctl_json_kuint(j, "v", env->version);
        ctl_json_key(j, "saga");
        ctl_json_str(j, env->saga, env->saga_len);
        ctl_json_key(j, "cause");
        if (env->has_cause)
            ctl_json_str(j, env->cause, env->cause_len);
        else
            ctl_json_null(j);
        ctl_json_key(j, "src");
        ctl_json_str(j, env->src, env->src_len);
        ctl_json_kint(j, "ts", env->ts_ms);
        ctl_json_key(j, "data");
        /* data was rendered at this depth and margin; splice its text in. */
        ctl_json_raw(j, data->buf, data->len);
        ctl_json_object_end(j);
    } else {
        ctl_json_null(j);
        ctl_json_kstr(j, "envelope_error", why);
        ctl_json_key(j, "body_hex");
        ctl_json_hex(j, body, len);
    }
    ctl_json_object_end(j);
}

static int cmd_show(choreo_admin *adm, const ctl_args *a, const char *db)
{
    choreo_dead_entry e;
    uint8_t *body = NULL;
    size_t len = 0;
    int rc = get_entry(adm, "dead show", a->id, db, &e, &body, &len);
    if (rc != CTL_EXIT_OK)
        return rc;
    ctl_envelope env;
    char why[256] = "";
    ctl_json data;
    /* In JSON, data sits two levels deep (entry object, envelope object); in
     * text, it follows the "  data:    " label. */
    ctl_json_init(&data, JSON_MAX, true, a->json ? 4 : 11);
    bool ok = ctl_envelope_read(body, len, &env, why, sizeof why);
    if (ok) {
        choreo_mp_reader r;
        choreo_mp_reader_init(&r, env.data, env.data_len);
        ok = ctl_mp_json(&r, &data, CTL_DATA_DEPTH, why, sizeof why);
    }
    if (ok && data.failed) {
        rc = ctl_json_print(&data, NULL); /* says why there is no output */
    } else if (a->json) {
        ctl_json j;
        ctl_json_init(&j, JSON_MAX, true, 0);
        show_json(&j, &e, body, len, ok ? &env : NULL, &data, why);
        rc = ctl_json_print(&j, NULL);
        ctl_json_free(&j);
    } else {
        show_text(&e, body, len, ok ? &env : NULL, &data, why);
    }
    ctl_json_free(&data);
    free(body);
    return rc;
}

static const char *status_phrase(const char *status)
{
    if (strcmp(status, "retried") == 0)
        return "was already retried";
    if (strcmp(status, "dropped") == 0)
        return "was dropped";
    return "is not parked"; /* a status written by a newer choreo */
}

/* "event 01J... (OrderCreated)", or what stands in for it when the body
 * could not be decoded, cleaned for the terminal. */
static void describe(const choreo_dead_entry *e, char *out, size_t cap)
{
    if (!e->event_id[0]) {
        snprintf(out, cap, "a message without an event id");
        return;
    }
    char *id = cell(e->event_id), *type = cell(e->event_type);
    snprintf(out, cap, "event %s (%s)", id ? id : "?", type ? type : "?");
    free(id);
    free(type);
}

/* Whether the connection to NATS could not be made: the next retry, with
 * the same settings, would wait for it as long again and fail the same way. */
static bool unreachable(choreo_status s)
{
    return s == CHOREO_ENOSERVER || s == CHOREO_EAUTH || s == CHOREO_ETLS;
}

/* A failed retry or drop: NATS failures happen before anything changed,
 * others may come from either side of the publish, so say where to look. */
static void admin_failed(const char *cmd, int64_t id, choreo_status s)
{
    if (s == CHOREO_ENATS || unreachable(s) || s == CHOREO_ETIMEOUT)
        ctl_error("%s: message %" PRId64 " stays parked: %s", cmd, id, choreo_last_error());
    else
        ctl_error("%s: message %" PRId64 ": %s; see its state with choreoctl dead show %" PRId64,
                  cmd, id, choreo_last_error(), id);
}

/* Retries one entry; prints one line on stdout when it worked. *st is what
 * choreo_admin_dead_retry returned, CHOREO_OK when it was not called. */
static int retry_one(choreo_admin *adm, int64_t id, const char *db, choreo_status *st)
{
    *st = CHOREO_OK;
    choreo_dead_entry e;
    int rc = get_entry(adm, "dead retry", id, db, &e, NULL, NULL);
    if (rc != CTL_EXIT_OK)
        return rc;
    char t[32], what[128];
    if (strcmp(e.status, "parked") != 0) {
        ctl_time_iso(e.updated_at_ms, false, t);
        ctl_error("dead retry: message %" PRId64 " %s at %s; only parked messages can be "
                  "retried, each once (see choreoctl dead list)", id, status_phrase(e.status), t);
        return CTL_EXIT_FAIL;
    }
    *st = choreo_admin_dead_retry(adm, id);
    if (*st != CHOREO_OK) {
        admin_failed("dead retry", id, *st);
        return CTL_EXIT_FAIL;
    }
    describe(&e, what, sizeof what);
    char *subject = cell(e.subject), *consumer = cell(e.consumer);
    printf("retried message %" PRId64 ": %s published again on %s for consumer %s\n", id, what,
           subject ? subject : "its subject", consumer ? consumer : "-");
    free(subject);
    free(consumer);
    return CTL_EXIT_OK;
}

static int cmd_retry(choreo_admin *adm, const ctl_args *a, const char *db)
{
    choreo_status st;
    if (!a->all)
        return retry_one(adm, a->id, db, &st);
    choreo_dead_entry *list = NULL;
    size_t n = 0;
    if (choreo_admin_dead_list(adm, "parked", &list, &n) != CHOREO_OK) {
        ctl_error("dead retry --all: %s", choreo_last_error());
        return CTL_EXIT_FAIL;
    }
    if (n == 0)
        printf("No parked messages in %s: nothing to retry.\n", db);
    /* Each retry connects to NATS anew: once that fails, the rest are not
     * tried, rather than each waiting out connect_wait_ms in its turn. */
    size_t failed = 0, tried = 0;
    for (bool stop = false; tried < n && !stop; tried++) {
        if (retry_one(adm, list[tried].id, db, &st) != CTL_EXIT_OK)
            failed++;
        stop = unreachable(st);
    }
    free(list);
    /* The counts add up to n: retried, failed (the last of them because
     * NATS could not be reached), and not tried. */
    if (tried < n)
        printf("Retried %zu of %zu parked messages; %zu failed%s because NATS could not be "
               "reached (see the error%s above), so the remaining %zu %s not tried: %s "
               "parked.\n", tried - failed, n, failed, failed == 1 ? "" : ", the last",
               failed == 1 ? "" : "s", n - tried, n - tried == 1 ? "was" : "were",
               n - tried == 1 ? "it stays" : "they stay");
    else if (n > 0)
        printf("Retried %zu of %zu parked messages%s.\n", n - failed, n,
               failed ? "; see the errors above" : "");
    return failed ? CTL_EXIT_FAIL : CTL_EXIT_OK;
}

static int cmd_drop(choreo_admin *adm, const ctl_args *a, const char *db)
{
    choreo_dead_entry e;
    int rc = get_entry(adm, "dead drop", a->id, db, &e, NULL, NULL);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (strcmp(e.status, "parked") != 0) {
        char t[32];
        ctl_time_iso(e.updated_at_ms, false, t);
        ctl_error("dead drop: message %" PRId64 " %s at %s; only parked messages can be "
                  "dropped (see choreoctl dead list)", a->id, status_phrase(e.status), t);
        return CTL_EXIT_FAIL;
    }
    choreo_status st = choreo_admin_dead_drop(adm, a->id);
    if (st != CHOREO_OK) {
        admin_failed("dead drop", a->id, st);
        return CTL_EXIT_FAIL;
    }
    char what[128];
    describe(&e, what, sizeof what);
    printf("dropped message %" PRId64 ": %s will not be retried\n", a->id, what);
    return CTL_EXIT_OK;
}

struct subcommand {
    const char *name;  /* "dead list" */
    unsigned allowed;  /* enum ctl_opt */
    void (*help)(FILE *f);
    int (*run)(choreo_admin *adm, const ctl_args *a, const char *db);
    bool writes; /* opens the database to write */
};

static const struct subcommand subcommands[] = {
    { "dead list", CTL_OPT_STATUS | CTL_OPT_JSON, ctl_help_dead_list, cmd_list, false },
    { "dead show", CTL_OPT_ID | CTL_OPT_JSON, ctl_help_dead_show, cmd_show, false },
    { "dead retry", CTL_OPT_ID | CTL_OPT_ALL, ctl_help_dead_retry, cmd_retry, true },
    { "dead drop", CTL_OPT_ID, ctl_help_dead_drop, cmd_drop, true },
};

int ctl_dead_main(ctl_settings *s, int argc, char **argv)
{
    int rc = ctl_subcommand_intro("dead", "list, show, retry or drop", argc, argv, ctl_help_dead);
    if (rc >= 0)
        return rc;
    const struct subcommand *sub = NULL;
    for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
        if (strcmp(argv[0], subcommands[i].name + 5) == 0)
            sub = &subcommands[i];
    if (!sub) {
        if (argv[0][0] == '-')
            ctl_error("dead: unknown flag %s: flags follow the subcommand, as in choreoctl dead "
                      "list --json (see choreoctl dead --help)", argv[0]);
        else
            ctl_error("dead: unknown subcommand \"%s\": use list, show, retry or drop (see "
                      "choreoctl dead --help)", argv[0]);
        return CTL_EXIT_USAGE;
    }
    ctl_args a;
    rc = ctl_args_parse(sub->name, sub->allowed, argc - 1, argv + 1, &a);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (a.help) {
        sub->help(stdout);
        return CTL_EXIT_OK;
    }
    if (s->ndbs > 1) {
        ctl_error("%s: %d --db given: dead works on one service's database, pass one --db FILE",
                  sub->name, s->ndbs);
        return CTL_EXIT_USAGE;
    }
    choreo_admin *adm = NULL;
    if ((rc = ctl_admin_open(sub->name, s, sub->writes, &adm)) != CTL_EXIT_OK)
        return rc;
    /* Messages name the database without the password a URL may hold. */
    char shown[CTL_DB_SHOWN_MAX];
    choreo_db_display(choreo_config_get(s->cfg, "db"), shown, sizeof shown);
    rc = sub->run(adm, &a, shown);
    choreo_admin_close(adm);
    return rc;
}
