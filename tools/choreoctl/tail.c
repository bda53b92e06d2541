/* The tail command: an ordered consumer (ephemeral, no acks, recreated by
 * nats.c after a gap or a reconnect) on <prefix>.<Type|*>.<saga|*> prints
 * each event as one line. SIGINT and SIGTERM end it: it deletes its
 * consumer and exits 0 within a few seconds even when the server is gone.
 * A lost connection is re-established quietly (a note on stderr), since a
 * tail is most useful exactly while things go wrong. */
#include "tail.h"

#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "help.h"
#include "json.h"
#include "mpjson.h"
#include "natsconn.h"
#include "text.h"
#include "timeline.h"

#define TYPES_MAX 32
/* How long one wait for a message lasts: the bound on noticing a signal. */
#define POLL_MS 200
/* The most a shutdown may take before the process gives up on it. */
#define SHUTDOWN_S 10

struct tail_args {
    bool help, json, from_start;
    const char *types[TYPES_MAX];
    int ntypes;
    const char *saga;
};

/* Set by the signal handler, which may run on any thread (nats.c's
 * included): a lock-free atomic, safe in a handler and between threads. */
static atomic_int stop_signal;

static void on_stop(int sig)
{
    atomic_store(&stop_signal, sig);
}

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "choreoctl: tail: the shutdown took longer than 10 s; exiting "
                              "(its ephemeral consumer expires on the server by itself)\n";
    ssize_t n = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)n;
    _exit(CTL_EXIT_FAIL);
}

static bool type_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > CHOREO_TYPE_MAX || !(s[0] >= 'A' && s[0] <= 'Z'))
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
            return false;
    return true;
}

static int parse(int argc, char **argv, struct tail_args *a)
{
    memset(a, 0, sizeof *a);
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i], *v;
        bool missing = false;
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            a->help = true;
            return CTL_EXIT_OK;
        }
        if (strcmp(arg, "--json") == 0) {
            a->json = true;
        } else if (strcmp(arg, "--from-start") == 0) {
            a->from_start = true;
        } else if ((v = ctl_flag_value("--type", argc, argv, &i, &missing)) != NULL) {
            if (!type_valid(v)) {
                ctl_error("tail: invalid --type \"%s\": an event type is UpperCamel ASCII, "
                          "[A-Z][A-Za-z0-9]*, at most %d characters", v, CHOREO_TYPE_MAX);
                return CTL_EXIT_USAGE;
            }
            if (a->ntypes == TYPES_MAX) {
                ctl_error("tail: more than %d --type flags", TYPES_MAX);
                return CTL_EXIT_USAGE;
            }
            a->types[a->ntypes++] = v;
        } else if ((v = ctl_flag_value("--saga", argc, argv, &i, &missing)) != NULL) {
            if (!ctl_saga_id_valid(v)) {
                ctl_error("tail: invalid --saga \"%s\": a saga id is 1 to %d of A-Z a-z 0-9 _ -",
                          v, CHOREO_SAGA_MAX);
                return CTL_EXIT_USAGE;
            }
            a->saga = v;
        } else if (missing) {
            ctl_error("tail: %s needs a value (see choreoctl tail --help)", arg);
            return CTL_EXIT_USAGE;
        } else if (arg[0] == '-') {
            ctl_error("tail: unknown flag %s: see choreoctl tail --help", arg);
            return CTL_EXIT_USAGE;
        } else {
            ctl_error("tail: unexpected argument \"%s\": filter with --type and --saga (see "
                      "choreoctl tail --help)", arg);
            return CTL_EXIT_USAGE;
        }
    }
    return CTL_EXIT_OK;
}

/* The second token of <prefix>.<Type>.<saga>, and the third. */
static void subject_parts(const char *subject, size_t prefix_len, char *type, size_t type_cap,
                          const char **saga)
{
    const char *t = strlen(subject) > prefix_len + 1 ? subject + prefix_len + 1 : "";
    const char *dot = strchr(t, '.');
    size_t n = dot ? (size_t)(dot - t) : strlen(t);
    if (n >= type_cap)
        n = type_cap - 1;
    memcpy(type, t, n);
    type[n] = '\0';
    *saga = dot ? dot + 1 : "";
}

/* With several --type flags the subject filter takes every type, and the
 * types are picked here. */
static bool wanted(const struct tail_args *a, const char *type)
{
    if (a->ntypes <= 1)
        return true;
    for (int i = 0; i < a->ntypes; i++)
        if (strcmp(a->types[i], type) == 0)
            return true;
    return false;
}

static void cell(const char *s, size_t len, int width)
{
    char *c = len ? ctl_text_clean(s, len) : NULL;
    if (width > 0)
        ctl_text_pad(stdout, c ? c : "-", (size_t)width);
    else
        fputs(c ? c : "-", stdout);
    free(c);
}

static void print_text(const ctl_envelope *env, const char *why, const char *type,
                       const char *saga, int64_t stored_ms)
{
    char at[32];
    ctl_time_iso(env ? env->ts_ms : stored_ms, true, at);
    printf("%s  ", at);
    if (!env) {
        cell(type, strlen(type), 22);
        cell(saga, strlen(saga), 28);
        cell("", 0, 14);
        cell("", 0, 28);
        fputs("-  (not a choreo envelope: ", stdout);
        cell(why, strlen(why), 0);
        fputs(")\n", stdout);
        return;
    }
    cell(env->type, env->type_len, 22);
    cell(env->saga, env->saga_len, 28);
    cell(env->src, env->src_len, 14);
    cell(env->id, env->id_len, 28);
    cell(env->cause, env->has_cause ? env->cause_len : 0, 0);
    fputc('\n', stdout);
}

static void print_json(const ctl_envelope *env, const char *why, const char *type,
                       const char *saga, int64_t stored_ms, uint64_t seq, natsMsg *m)
{
    ctl_json j;
    char at[32];
    ctl_json_init(&j, (size_t)64 << 20, false, 0);
    ctl_json_object_begin(&j);
    ctl_json_kuint(&j, "seq", seq);
    ctl_json_key(&j, "time");
    ctl_time_iso(env ? env->ts_ms : stored_ms, true, at);
    ctl_json_cstr(&j, at);
    ctl_json_kint(&j, "ts", env ? env->ts_ms : stored_ms);
    ctl_json_kstr(&j, "subject", natsMsg_GetSubject(m));
    if (env) {
        ctl_json_key(&j, "type");
        ctl_json_str(&j, env->type, env->type_len);
        ctl_json_key(&j, "saga");
        ctl_json_str(&j, env->saga, env->saga_len);
        ctl_json_key(&j, "src");
        ctl_json_str(&j, env->src, env->src_len);
        ctl_json_key(&j, "id");
        ctl_json_str(&j, env->id, env->id_len);
        ctl_json_key(&j, "cause");
        if (env->has_cause)
            ctl_json_str(&j, env->cause, env->cause_len);
        else
            ctl_json_null(&j);
        ctl_json_kuint(&j, "v", env->version);
        ctl_json_key(&j, "data");
        choreo_mp_reader r;
        char dwhy[200];
        choreo_mp_reader_init(&r, env->data, env->data_len);
        if (!ctl_mp_json(&r, &j, CTL_DATA_DEPTH, dwhy, sizeof dwhy))
            j.failed = true;
    } else {
        ctl_json_kstr(&j, "type", type);
        ctl_json_kstr(&j, "saga", saga);
        ctl_json_kstr(&j, "envelope_error", why);
    }
    const char *retry_for = NULL;
    if (natsMsgHeader_Get(m, "Choreo-Retry-For", &retry_for) == NATS_OK && retry_for) {
        ctl_json_kstr(&j, "retry_for", retry_for);
    }
    ctl_json_object_end(&j);
    if (j.failed)
        printf("{\"seq\": %" PRIu64 ", \"error\": \"the event does not fit in JSON\"}\n", seq);
    else
        printf("%s\n", j.buf);
    ctl_json_free(&j);
}

/* Where the output stands in the stream. */
struct position {
    size_t prefix_len;
    uint64_t printed; /* the last stream sequence printed, or where new events begin */
};

/* Prints one message; false when stdout is gone. A message at or before
 * the last one printed is a repeat: nats.c 3.4.1 recreates an ordered
 * consumer that has delivered nothing yet (after a server restart) from
 * the stream's first message, whatever its start, and that replay is
 * dropped here. */
static bool print_message(const struct tail_args *a, natsMsg *m, struct position *pos)
{
    uint64_t seq = 0;
    int64_t stored_ms = 0;
    jsMsgMetaData *meta = NULL;
    if (natsMsg_GetMetaData(&meta, m) == NATS_OK) {
        seq = meta->Sequence.Stream;
        stored_ms = meta->Timestamp / 1000000;
        jsMsgMetaData_Destroy(meta);
    }
    if (seq <= pos->printed)
        return true;
    pos->printed = seq;
    char type[CHOREO_TYPE_MAX + 1];
    const char *saga;
    subject_parts(natsMsg_GetSubject(m), pos->prefix_len, type, sizeof type, &saga);
    if (!wanted(a, type))
        return true;
    ctl_envelope env;
    char why[200] = "";
    bool ok = ctl_envelope_read((const uint8_t *)natsMsg_GetData(m),
                                (size_t)natsMsg_GetDataLength(m), &env, why, sizeof why);
    if (a->json)
        print_json(ok ? &env : NULL, why, type, saga, stored_ms, seq, m);
    else
        print_text(ok ? &env : NULL, why, type, saga, stored_ms);
    return fflush(stdout) == 0 && !ferror(stdout);
}

static void handle_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    /* A closed pipe shows up as a failed write, so the consumer is still
     * deleted; the default action would end the process at once. */
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* Reads until a signal; CTL_EXIT_OK then, CTL_EXIT_FAIL when the
 * subscription cannot go on. */
static int follow(const struct tail_args *a, natsSubscription *sub, struct position *pos)
{
    natsStatus last = NATS_OK;
    while (!atomic_load(&stop_signal)) {
        natsMsg *m = NULL;
        natsStatus st = natsSubscription_NextMsg(&m, sub, POLL_MS);
        if (st == NATS_OK) {
            bool written = print_message(a, m, pos);
            natsMsg_Destroy(m);
            if (!written)
                return CTL_EXIT_OK; /* main reports the closed output */
            last = NATS_OK;
            continue;
        }
        if (st == NATS_TIMEOUT)
            continue;
        if (st == NATS_CONNECTION_CLOSED || st == NATS_INVALID_SUBSCRIPTION) {
            ctl_error("tail: the subscription ended: %s", ctl_nats_detail(st));
            return CTL_EXIT_FAIL;
        }
        /* Slow consumer, a missed heartbeat while the server is away: the
         * ordered consumer recovers by itself. Said once per kind. */
        if (st != last)
            fprintf(stderr, "choreoctl: tail: %s; going on\n", ctl_nats_detail(st));
        last = st;
        sleep_ms(POLL_MS);
    }
    return CTL_EXIT_OK;
}

/* The name of the ordered consumer that sub reads through, copied; NULL
 * when the server does not know it (its restart lost it, and nats.c makes a
 * new one). tail deletes the consumer by this copy, not with
 * natsSubscription_Unsubscribe: nats.c (3.4) reads the name there without
 * the subscription's lock, while the thread in which it recreates an
 * ordered consumer (after a reconnect, a missed heartbeat or a gap) frees
 * it, so a tail ended just after a reconnect could read freed memory.
 * natsSubscription_GetConsumerInfo copies the name under the lock. A
 * consumer that a recreation still under way makes has no subscriber once
 * tail is gone, and the server drops it after 5 s, as it does every
 * ephemeral consumer left without one. */
static char *consumer_name(natsSubscription *sub)
{
    jsConsumerInfo *ci = NULL;
    char *name = NULL;
    if (natsSubscription_GetConsumerInfo(&ci, sub, NULL, NULL) == NATS_OK && ci->Name)
        name = strdup(ci->Name);
    jsConsumerInfo_Destroy(ci);
    return name;
}

static int run(ctl_settings *s, const struct tail_args *a)
{
    const char *stream = choreo_config_get(s->cfg, "stream");
    const char *prefix = choreo_config_get(s->cfg, "prefix");
    char filter[256];
    snprintf(filter, sizeof filter, "%s.%s.%s", prefix, a->ntypes == 1 ? a->types[0] : "*",
             a->saga ? a->saga : "*");
    ctl_nats n;
    int rc = ctl_nats_open(&n, s, "tail", true);
    if (rc != CTL_EXIT_OK)
        return rc;
    uint64_t last_seq = 0;
    rc = ctl_nats_check_stream(&n, stream, &last_seq);
    natsSubscription *sub = NULL;
    if (rc == CTL_EXIT_OK) {
        jsSubOptions so;
        jsSubOptions_Init(&so);
        so.Stream = stream;
        so.Ordered = true;
        /* New events are those after the stream's last message now. */
        so.Config.DeliverPolicy = a->from_start ? js_DeliverAll : js_DeliverByStartSequence;
        so.Config.OptStartSeq = a->from_start ? 0 : last_seq + 1;
        jsErrCode jerr = 0;
        natsStatus st = js_SubscribeSync(&sub, n.js, filter, NULL, &so, &jerr);
        if (st != NATS_OK) {
            ctl_error("tail: cannot follow %s on stream %s at %s: %s", filter, stream, n.urls,
                      ctl_nats_why(&n, st));
            rc = CTL_EXIT_FAIL;
        }
    }
    if (rc == CTL_EXIT_OK) {
        fprintf(stderr, "choreoctl: tail: following %s on stream %s%s%s; stop with Ctrl-C\n",
                filter, stream, a->from_start ? " from its first event" : ", new events only",
                a->ntypes > 1 ? " (of the --type given)" : "");
        struct position pos = { strlen(prefix), a->from_start ? 0 : last_seq };
        rc = follow(a, sub, &pos);
    }
    /* From here on nothing waits for long, but a server that went away
     * mid-request must not keep the process: the alarm ends it. */
    alarm(SHUTDOWN_S);
    char *consumer = NULL;
    if (sub && natsConnection_Status(n.nc) == NATS_CONN_STATUS_CONNECTED)
        consumer = consumer_name(sub);
    else if (sub)
        fprintf(stderr, "choreoctl: tail: NATS at %s is away: its server drops tail's consumer "
                "by itself once it is back\n", n.urls);
    natsSubscription_Destroy(sub); /* unsubscribes; leaves the consumer */
    if (consumer)
        js_DeleteConsumer(n.js, stream, consumer, NULL, NULL);
    free(consumer);
    ctl_nats_close(&n);
    return rc;
}

int ctl_tail_main(ctl_settings *s, int argc, char **argv)
{
    struct tail_args a;
    int rc = parse(argc, argv, &a);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (a.help) {
        ctl_help_tail(stdout);
        return CTL_EXIT_OK;
    }
    if ((rc = ctl_settings_check_nats(s)) != CTL_EXIT_OK)
        return rc;
    handle_signals();
    return run(s, &a);
}
