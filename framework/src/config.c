/* Table-driven configuration: each key has a type, a default, bounds or
 * accepted values, and a line of help. Flags (--key-name) and environment
 * variables (CHOREO_KEY_NAME) are derived from the key, so the three ways of
 * configuring a service can never disagree about names. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "log.h"
#include "store.h"
#include "status.h"
#include "store.h"

extern char **environ;

enum kind { K_STR, K_NAME, K_SUBJECT, K_ENUM, K_INT, K_SECRET, K_START, K_ADDR };

struct key {
    const char *name;
    enum kind kind;
    size_t offset;
    const char *def;       /* default as text, NULL for none */
    int64_t min, max;      /* K_INT bounds; K_NAME max length */
    const char *choices;   /* K_ENUM: "a|b|c" */
    const char *help;
};

#define S(f) offsetof(struct choreo_config, f)

static const struct key keys[] = {
    { "service", K_NAME, S(service), NULL, 1, 32, NULL,
      "service name, [A-Za-z0-9_-], at most 32 characters (required)" },
    { "db", K_STR, S(db), NULL, 0, 0, NULL,
      "the service's database: a SQLite file's path or a postgresql:// URL (required)" },
    { "nats_url", K_STR, S(nats_url), "nats://127.0.0.1:4222", 0, 0, NULL,
      "NATS server URLs, comma-separated" },
    { "stream", K_NAME, S(stream), "CHOREO", 1, 64, NULL, "JetStream stream name" },
    { "prefix", K_SUBJECT, S(prefix), "choreo", 1, 32, NULL,
      "subject prefix: events go to <prefix>.<Type>.<saga>" },
    { "log_level", K_ENUM, S(log_level), "info", 0, 0, "error|warn|info|debug", "log level" },
    { "synchronous", K_ENUM, S(synchronous), "full", 0, 0, "off|normal|full|extra",
      "SQLite synchronous pragma" },
    { "delivery", K_ENUM, S(delivery), "outbox", 0, 0, "outbox|naive",
      "outbox (transactional outbox and inbox); naive publishes after commit with no outbox "
      "and no inbox, a demonstration of what that loses and doubles, never for production" },
    { "audit", K_ENUM, S(audit), "off", 0, 0, "off|on",
      "on records every emitted and every applied event in choreo_audit_* tables, in the "
      "same transactions, so that tools/chaos can count lost and doubled events" },
    { "busy_timeout_ms", K_INT, S(busy_timeout_ms), "5000", 0, 600000, NULL,
      "SQLite busy timeout in ms" },
    { "lock_timeout_ms", K_INT, S(lock_timeout_ms), "10", 1, 600000, NULL,
      "PostgreSQL: how long a statement waits for a row another instance's transaction "
      "holds before it fails and its event is retried; short, so that two instances' "
      "batches locking rows in opposite orders part at once" },
    { "db_wait_ms", K_INT, S(db_wait_ms), "30000", 0, 3600000, NULL,
      "PostgreSQL: how long a starting service waits for its database to take "
      "connections (a server restarting or recovering) before it fails" },
    { "nats_user", K_SECRET, S(nats_user), NULL, 0, 0, NULL, "NATS user name" },
    { "nats_password", K_SECRET, S(nats_password), NULL, 0, 0, NULL,
      "NATS password (give it in the variable: a flag's value shows in ps)" },
    { "nats_token", K_SECRET, S(nats_token), NULL, 0, 0, NULL,
      "NATS token (give it in the variable: a flag's value shows in ps)" },
    { "nats_creds", K_STR, S(nats_creds), NULL, 0, 0, NULL, "NATS credentials file" },
    { "nats_nkey", K_STR, S(nats_nkey), NULL, 0, 0, NULL,
      "NATS user public nkey (U..., 56 characters), with nats_nkey_seed" },
    { "nats_nkey_seed", K_STR, S(nats_nkey_seed), NULL, 0, 0, NULL,
      "file holding the seed (SU...) of nats_nkey; the file is the secret: keep it private" },
    { "tls_ca", K_STR, S(tls_ca), NULL, 0, 0, NULL,
      "PEM file of the CA that signed the NATS server's certificate; turns TLS on" },
    { "tls_cert", K_STR, S(tls_cert), NULL, 0, 0, NULL,
      "PEM client certificate file, for servers that verify clients; turns TLS on" },
    { "tls_key", K_STR, S(tls_key), NULL, 0, 0, NULL, "PEM private key file of tls_cert" },
    { "connect_wait_ms", K_INT, S(connect_wait_ms), "0", 0, INT32_MAX, NULL,
      "how long start waits for NATS; 0 waits until stopped" },
    { "nats_ping_interval_ms", K_INT, S(nats_ping_interval_ms), "5000", 100, 600000, NULL,
      "how often a connection pings its NATS server, ms; after two PINGs without a PONG it "
      "counts as lost and reconnects (to another node of a cluster)" },
    { "max_deliver", K_INT, S(max_deliver), "10", 2, 1000, NULL,
      "deliveries of one message before it is parked" },
    { "ack_wait_ms", K_INT, S(ack_wait_ms), "30000", 100, 3600000, NULL,
      "JetStream AckWait: redelivery after a crash, in ms" },
    { "max_ack_pending", K_INT, S(max_ack_pending), "1000", 1, 100000, NULL,
      "JetStream MaxAckPending per consumer" },
    { "batch_max", K_INT, S(batch_max), "256", 1, 10000, NULL,
      "most messages in one group commit" },
    { "max_event_bytes", K_INT, S(max_event_bytes), "1048576", 256, CHOREO_EVENT_BYTES_LIMIT, NULL,
      "largest event envelope emitted or accepted, bytes" },
    { "stream_max_age_s", K_INT, S(stream_max_age_s), "604800", 0, INT32_MAX, NULL,
      "max age of the stream when choreo creates it, s; 0 = unlimited" },
    { "stream_dup_window_s", K_INT, S(stream_dup_window_s), "120", 1, 86400, NULL,
      "JetStream duplicate window, s" },
    { "stream_replicas", K_INT, S(stream_replicas), "1", 1, 5, NULL, "stream replicas" },
    { "relay_scan_ms", K_INT, S(relay_scan_ms), "500", 10, 60000, NULL,
      "relay's fallback scan period, ms" },
    { "relay_lease_ms", K_INT, S(relay_lease_ms), "10000", 1000, 3600000, NULL,
      "PostgreSQL: how long the active relay's database session may stay silent (its "
      "instance frozen or stalled) before the server ends it and another instance's relay "
      "takes over, ms; at least twice relay_scan_ms plus 1000" },
    { "retry_base_ms", K_INT, S(retry_base_ms), "200", 1, 3600000, NULL,
      "first redelivery delay after RETRY, ms (doubles each attempt)" },
    { "retry_cap_ms", K_INT, S(retry_cap_ms), "30000", 1, 86400000, NULL,
      "longest redelivery delay after RETRY, ms" },
    { "outbox_retention_s", K_INT, S(outbox_retention_s), "86400", 0, INT32_MAX, NULL,
      "published outbox rows are deleted after this, s; 0 keeps them" },
    { "inbox_retention_s", K_INT, S(inbox_retention_s), "691200", 0, INT32_MAX, NULL,
      "inbox marks and barrier rows are deleted after this, s (longer than the stream's max "
      "age); 0 keeps them" },
    { "prune_interval_s", K_INT, S(prune_interval_s), "60", 1, 86400, NULL,
      "how often old outbox, inbox and barrier rows are pruned, s" },
    { "nats_inbox_prefix", K_SUBJECT, S(nats_inbox_prefix), "_INBOX", 1, 64, NULL,
      "subject prefix of this service's reply inboxes (JetStream answers, PubAcks, fetched "
      "events); one of its own, such as _INBOX_order, lets the server keep each service's "
      "replies to itself (choreo-gen --nats-permissions --private-inboxes)" },
    { "metrics_addr", K_ADDR, S(metrics_addr), NULL, 0, 0, NULL,
      "host:port where the service serves Prometheus metrics on /metrics, such as "
      "127.0.0.1:9464; unset or empty: no endpoint" },
    { "consumer_start", K_START, S(consumer_start), "all", 0, 0, NULL,
      "where a handler's new durable consumer starts: all (every event still in the "
      "stream), new (events published from then on), or a UTC time such as "
      "2026-11-30T08:00:00Z; a consumer that exists keeps its position" },
    { "take_over_consumers", K_ENUM, S(take_over_consumers), "off", 0, 0, "off|on",
      "on binds this service's durable consumers to this database when they are bound to "
      "another one (a database that replaces one lost for good); set it for one start, "
      "once the service on the old database is stopped" },
    { "binding_check_s", K_INT, S(binding_check_s), "60", 0, 86400, NULL,
      "how often a running service reads its durable consumers' binding, s (and after each "
      "reconnect): one taken over by another database meanwhile stops the service, and "
      "choreo_service_run returns CHOREO_ELOCKED; 0: only after reconnects" },
};

#define NKEYS (sizeof keys / sizeof keys[0])

static char **str_field(choreo_config *cfg, const struct key *k)
{
    return (char **)((char *)cfg + k->offset);
}

static int64_t *int_field(choreo_config *cfg, const struct key *k)
{
    return (int64_t *)((char *)cfg + k->offset);
}

static const struct key *find_key(const char *name)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

bool choreo__name_valid(const char *s, size_t max)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!isalnum((unsigned char)s[n]) && s[n] != '_' && s[n] != '-')
            return false;
    return n >= 1 && n <= max;
}

static bool subject_valid(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max || s[0] == '.' || s[n - 1] == '.' || strstr(s, ".."))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-' && s[i] != '.')
            return false;
    return true;
}

static bool choice_valid(const char *choices, const char *v)
{
    size_t n = strlen(v);
    for (const char *p = choices; *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncmp(p, v, n) == 0)
            return true;
        p += len + (bar ? 1 : 0);
    }
    return false;
}

/* "host:port" with a port of 0..65535; the host is checked when the
 * endpoint binds it. */
static bool addr_valid(const char *s)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || !colon[1] || strlen(colon + 1) > 5)
        return false;
    long port = 0;
    for (const char *p = colon + 1; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        port = port * 10 + (*p - '0');
    }
    if (port > 65535)
        return false;
    for (const char *p = s; p < colon; p++)
        if (*p == ' ' || *p == '/')
            return false;
    return true;
}

void choreo__redact_urls(const char *urls, char *out, size_t cap)
{
    size_t n = 0;
    const char *p = urls;
    while (*p && n + 1 < cap) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        /* The last @: a password with an @ in it is hidden whole. */
        const char *at = NULL;
        for (const char *q = p; q < p + len; q++)
            if (*q == '@')
                at = q;
        const char *scheme = strstr(p, "://");
        if (at) {
            size_t keep = scheme && scheme < at ? (size_t)(scheme + 3 - p) : 0;
            n += (size_t)snprintf(out + n, cap - n, "%.*s***@%.*s", (int)keep, p,
                                  (int)(len - (size_t)(at + 1 - p)), at + 1);
        } else {
            n += (size_t)snprintf(out + n, cap - n, "%.*s", (int)len, p);
        }
        if (n >= cap)
            n = cap - 1;
        if (!end)
            break;
        if (n + 1 < cap)
            out[n++] = ',';
        p = end + 1;
    }
    out[n < cap ? n : cap - 1] = '\0';
}

bool choreo__urls_want_tls(const char *urls)
{
    for (const char *p = urls; p && (p = strstr(p, "://")) != NULL; p += 3)
        if (p - urls >= 3 && strncasecmp(p - 3, "tls", 3) == 0)
            return true; /* no other part of a URL holds :// */
    return false;
}

/* Why one server URL of nats_url ([nats:// or tls://][user[:pass]@]host
 * [:port]) can never work, or NULL when it may. */
static const char *url_defect(const char *u, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)u[i] <= ' ' || u[i] == 0x7f)
            return "it contains a space or a control character";
    const char *end = u + len, *host = u;
    for (const char *p = u; p + 2 < end; p++)
        if (p[0] == ':' && p[1] == '/' && p[2] == '/') {
            size_t n = (size_t)(p - u);
            if (!((n == 4 && strncasecmp(u, "nats", 4) == 0) ||
                  (n == 3 && strncasecmp(u, "tls", 3) == 0)))
                return "its scheme is not nats:// or tls://";
            host = p + 3;
            break;
        }
    for (const char *p = end; p > host; p--)
        if (p[-1] == '@') {
            host = p;
            break;
        }
    for (const char *p = host; p < end; p++)
        if (*p == '/')
            return "a path follows its host (from its '/' on): a NATS server URL ends at its port";
    const char *port = NULL;
    if (host < end && *host == '[') {
        const char *close = memchr(host, ']', (size_t)(end - host));
        if (!close || close == host + 1)
            return "its IPv6 address has no closing ]";
        if (close + 1 < end && close[1] != ':')
            return "something other than :port follows its IPv6 address";
        port = close + 1 < end ? close + 2 : NULL;
    } else {
        const char *colon = memchr(host, ':', (size_t)(end - host));
        if (colon == host || host == end)
            return "it names no host";
        for (const char *p = host; p < (colon ? colon : end); p++)
            if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-' && *p != '_')
                return "its host has a character a host name cannot have";
        port = colon ? colon + 1 : NULL;
    }
    if (port) {
        long n = 0;
        if (port == end || end - port > 5)
            return "its port is not a number from 1 to 65535";
        for (const char *p = port; p < end; p++) {
            if (*p < '0' || *p > '9')
                return "its port is not a number from 1 to 65535";
            n = n * 10 + (*p - '0');
        }
        if (n < 1 || n > 65535)
            return "its port is not a number from 1 to 65535";
    }
    return NULL;
}

/* Whether a db setting starts as a URL does (a scheme, then ":/") without
 * being a PostgreSQL URL or a SQLite "file:" URI: a mistyped scheme, which
 * SQLite would take as a path (and show its password in every message). */
static bool mistyped_url(const char *db)
{
    const char *t = db + strspn(db, " \t\r\n"); /* blanks before it count as a typo */
    size_t scheme = strspn(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-");
    return scheme > 0 && strncmp(t + scheme, ":/", 2) == 0 &&
           (t != db || (!choreo__store_is_postgres(t) && strncmp(t, "file:", 5) != 0));
}

/* CHOREO_OK when every comma-separated URL of nats_url may work. */
static choreo_status urls_valid(const char *origin, const char *value)
{
    if (value[strspn(value, " ,")] == '\0')
        return choreo__fail(CHOREO_ECONFIG,
                            "%s names no NATS server: write nats://host:port, such as "
                            "nats://127.0.0.1:4222, several separated by commas",
                            origin);
    for (const char *u = value; *u;) {
        while (*u == ' ')
            u++;
        size_t len = strcspn(u, ",");
        size_t trimmed = len;
        while (trimmed > 0 && u[trimmed - 1] == ' ')
            trimmed--;
        const char *why = trimmed ? url_defect(u, trimmed) : NULL;
        if (why) {
            /* This URL (the first of u) without its password, at most 120
             * bytes. */
            char redacted[200];
            choreo__redact_urls(u, redacted, sizeof redacted);
            redacted[strcspn(redacted, ",")] = '\0';
            redacted[120] = '\0';
            for (size_t n = strlen(redacted); n > 0 && redacted[n - 1] == ' ';)
                redacted[--n] = '\0';
            return choreo__fail(CHOREO_ECONFIG,
                                "%s: \"%s\" is not a NATS server URL (%s): write "
                                "nats://host:port, such as nats://127.0.0.1:4222, several "
                                "separated by commas",
                                origin, CHOREO_SAFE(redacted), why);
        }
        u += len;
        if (*u == ',')
            u++;
    }
    return CHOREO_OK;
}

static bool digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* Parses an RFC 3339 time, "YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)",
 * into ns since the epoch. */
static bool parse_time(const char *s, int64_t *ns)
{
    int y, mo, d, h, mi, sec;
    if (strlen(s) < 20 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) ||
        s[7] != '-' || !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') ||
        !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' ||
        !digits(s + 17, 2, &sec))
        return false;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return false;
    const char *p = s + 19;
    int64_t frac = 0, scale = 1000000000;
    if (*p == '.') {
        if (p[1] < '0' || p[1] > '9')
            return false;
        for (p++; *p >= '0' && *p <= '9'; p++) {
            if (scale > 1) {
                scale /= 10;
                frac += (*p - '0') * scale;
            }
        }
    }
    int64_t offset_s = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (!digits(p + 1, 2, &oh) || p[3] != ':' || !digits(p + 4, 2, &om) || oh > 23 || om > 59)
            return false;
        offset_s = (int64_t)(oh * 3600 + om * 60) * (*p == '+' ? 1 : -1);
        p += 6;
    } else {
        return false;
    }
    if (*p)
        return false;
    struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
                     .tm_hour = h, .tm_min = mi, .tm_sec = sec };
    time_t t = timegm(&tm);
    if (t == (time_t)-1 || tm.tm_mday != d) /* 2026-02-30 normalises to March */
        return false;
    *ns = ((int64_t)t - offset_s) * 1000000000LL + frac;
    return true;
}

static choreo_status apply(choreo_config *cfg, const struct key *k, const char *value,
                           const char *origin)
{
    if (k->kind == K_START) {
        int64_t ns = CHOREO_START_ALL;
        if (strcmp(value, "new") == 0)
            ns = CHOREO_START_NEW;
        else if (strcmp(value, "all") != 0 && !parse_time(value, &ns))
            return choreo__fail(CHOREO_ECONFIG,
                                "%s: \"%s\" is not all, new or a UTC time such as "
                                "2026-11-30T08:00:00Z (RFC 3339, with Z or an offset)",
                                origin, value);
        cfg->consumer_start_ns = ns;
    }
    if (k->kind == K_INT) {
        char *end;
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (errno || end == value || *end || v < k->min || v > k->max)
            return choreo__fail(CHOREO_ECONFIG,
                                "%s: \"%s\" is not a whole number from %lld to %lld",
                                origin, value, (long long)k->min, (long long)k->max);
        *int_field(cfg, k) = v;
        return CHOREO_OK;
    }
    if (k->kind == K_NAME && !choreo__name_valid(value, (size_t)k->max))
        return choreo__fail(CHOREO_ECONFIG,
                            "%s: \"%s\" is not a valid name: use 1 to %lld characters "
                            "from A-Z a-z 0-9 _ -",
                            origin, value, (long long)k->max);
    if (k->kind == K_SUBJECT && !subject_valid(value, (size_t)k->max))
        return choreo__fail(CHOREO_ECONFIG,
                            "%s: \"%s\" is not a valid subject prefix: use dot-separated "
                            "tokens of A-Z a-z 0-9 _ -, at most %lld characters",
                            origin, value, (long long)k->max);
    if (k->kind == K_ADDR && value[0] && !addr_valid(value))
        return choreo__fail(CHOREO_ECONFIG,
                            "%s: \"%s\" is not host:port, such as 127.0.0.1:9464 or [::1]:9464 "
                            "(port 0 to 65535), or empty for off",
                            origin, value);
    if (k->kind == K_ENUM && !choice_valid(k->choices, value))
        return choreo__fail(CHOREO_ECONFIG, "%s: \"%s\" is not one of %s", origin, value,
                            k->choices);
    if (k->kind == K_STR && value[0] == '\0' && (strcmp(k->name, "db") == 0 ||
                                                  strcmp(k->name, "nats_url") == 0))
        return choreo__fail(CHOREO_ECONFIG, "%s: must not be empty", origin);
    if (strcmp(k->name, "nats_url") == 0 && urls_valid(origin, value) != CHOREO_OK)
        return CHOREO_ECONFIG;
    if (strcmp(k->name, "db") == 0 && mistyped_url(value)) {
        char shown[256];
        choreo__store_display(value, shown, sizeof shown);
        return choreo__fail(CHOREO_ECONFIG,
                            "%s: \"%s\" is not a PostgreSQL URL: write "
                            "postgresql://USER@HOST:PORT/DBNAME (or postgres://, with nothing "
                            "before it), or give the path of a SQLite file",
                            origin, shown);
    }
    char *copy = strdup(value);
    if (!copy)
        return choreo__fail(CHOREO_ENOMEM, "out of memory setting %s", k->name);
    char **f = str_field(cfg, k);
    free(*f);
    *f = copy;
    return CHOREO_OK;
}

choreo_status choreo_config_create(choreo_config **out)
{
    if (!out)
        return choreo__fail(CHOREO_EINVAL, "choreo_config_create: out is NULL");
    choreo_config *cfg = calloc(1, sizeof *cfg);
    if (!cfg)
        return choreo__fail(CHOREO_ENOMEM, "out of memory creating a configuration");
    for (size_t i = 0; i < NKEYS; i++) {
        if (!keys[i].def)
            continue;
        if (apply(cfg, &keys[i], keys[i].def, keys[i].name) != CHOREO_OK) {
            choreo_config_destroy(cfg);
            return CHOREO_ENOMEM;
        }
    }
    *out = cfg;
    return CHOREO_OK;
}

void choreo_config_destroy(choreo_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < NKEYS; i++)
        if (keys[i].kind != K_INT)
            free(*str_field(cfg, &keys[i]));
    for (int i = 0; i < cfg->nown_flags; i++)
        free(cfg->own_flags[i]);
    free(cfg->own_flags);
    free(cfg->own_flag_value);
    free(cfg);
}

int choreo__config_lock_wait_ms(const choreo_config *cfg)
{
    return (int)(choreo__store_is_postgres(cfg->db) ? cfg->lock_timeout_ms : cfg->busy_timeout_ms);
}

choreo_config *choreo__config_clone(const choreo_config *src)
{
    choreo_config *cfg = malloc(sizeof *cfg);
    if (!cfg)
        return NULL;
    memcpy(cfg, src, sizeof *cfg);
    /* The program's own flags matter only to choreo_config_from_args. */
    cfg->own_flags = NULL;
    cfg->own_flag_value = NULL;
    cfg->nown_flags = 0;
    bool ok = true;
    for (size_t i = 0; i < NKEYS; i++) {
        if (keys[i].kind == K_INT)
            continue;
        char **f = str_field(cfg, &keys[i]);
        if (*f && !(*f = strdup(*f)))
            ok = false;
    }
    if (!ok) {
        choreo_config_destroy(cfg);
        return NULL;
    }
    return cfg;
}

choreo_status choreo_config_set(choreo_config *cfg, const char *key, const char *value)
{
    if (!cfg || !key || !value)
        return choreo__fail(CHOREO_EINVAL, "choreo_config_set: cfg, key and value must not be NULL");
    const struct key *k = find_key(key);
    if (!k)
        return choreo__fail(CHOREO_ECONFIG,
                            "unknown setting \"%s\": see --help for the list of settings", key);
    return apply(cfg, k, value, key);
}

const char *choreo_config_get(const choreo_config *cfg, const char *key)
{
    const struct key *k = key ? find_key(key) : NULL;
    if (!cfg || !k)
        return NULL;
    choreo_config *c = (choreo_config *)cfg;
    if (k->kind == K_INT) {
        snprintf(c->text, sizeof c->text, "%lld", (long long)*int_field(c, k));
        return c->text;
    }
    const char *v = *str_field(c, k);
    if (v && (k->kind == K_SECRET))
        return "***";
    return v;
}

choreo_status choreo_config_from_env(choreo_config *cfg)
{
    if (!cfg)
        return choreo__fail(CHOREO_EINVAL, "choreo_config_from_env: cfg is NULL");
    for (char **e = environ; *e; e++) {
        /* faults.c reads these three; a misspelling of one is unknown here, as
         * any other. */
        if (strncmp(*e, "CHOREO_", 7) != 0 || strncmp(*e, "CHOREO_CRASHPOINTS=", 19) == 0 ||
            strncmp(*e, "CHOREO_CRASH_SEED=", 18) == 0 || strncmp(*e, "CHOREO_FAULTS=", 14) == 0)
            continue;
        const char *eq = strchr(*e, '=');
        if (!eq)
            continue;
        char name[64];
        size_t n = (size_t)(eq - *e) - 7;
        if (n >= sizeof name)
            return choreo__fail(CHOREO_ECONFIG, "unknown environment variable %.*s",
                                (int)(eq - *e), *e);
        for (size_t i = 0; i < n; i++)
            name[i] = (char)tolower((unsigned char)(*e)[7 + i]);
        name[n] = '\0';
        const struct key *k = find_key(name);
        if (!k)
            return choreo__fail(CHOREO_ECONFIG,
                                "unknown environment variable %.*s: choreo reads only the "
                                "CHOREO_* variables listed by --help",
                                (int)(eq - *e), *e);
        char origin[96];
        snprintf(origin, sizeof origin, "environment variable %.*s", (int)(eq - *e), *e);
        choreo_status s = apply(cfg, k, eq + 1, origin);
        if (s != CHOREO_OK)
            return s;
    }
    return CHOREO_OK;
}

/* The flag's name without "--" and "=value", in *name (a key's spelling:
 * '-' becomes '_' when underscores is set); *inline_value is the text after
 * '=' or NULL. False when the name does not fit. */
static bool flag_name(const char *arg, bool underscores, char *name, size_t cap,
                      const char **inline_value)
{
    size_t n = 0;
    const char *p = arg + 2;
    for (; *p && *p != '='; p++) {
        if (n + 1 >= cap)
            return false;
        name[n++] = underscores && *p == '-' ? '_' : *p;
    }
    name[n] = '\0';
    *inline_value = *p == '=' ? p + 1 : NULL;
    return true;
}

/* Index of the program's own flag arg in cfg->own_flags, or -1. */
static int own_flag(const choreo_config *cfg, const char *arg)
{
    char name[128];
    const char *value;
    if (!flag_name(arg, false, name, sizeof name, &value))
        return -1;
    for (int i = 0; i < cfg->nown_flags; i++)
        if (strcmp(cfg->own_flags[i], name) == 0)
            return i;
    return -1;
}

/* Edit distance of a and b, counting a swap of two neighbours as one edit
 * (both shorter than 64 characters). */
static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char d[64][64];
    if (la >= 64 || lb >= 64)
        return SIZE_MAX;
    for (size_t i = 0; i <= la; i++)
        d[i][0] = (unsigned char)i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = (unsigned char)j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            unsigned best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1u < best)
                best = d[i - 1][j] + 1u;
            if (d[i][j - 1] + 1u < best)
                best = d[i][j - 1] + 1u;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1u < best)
                best = d[i - 2][j - 2] + 1u;
            d[i][j] = (unsigned char)best;
        }
    }
    return d[la][lb];
}

/* The flag of a key, without "--": its '_' become '-'. */
static void flag_of(const char *key, char *out, size_t cap)
{
    size_t n = 0;
    for (const char *p = key; *p && n + 1 < cap; p++)
        out[n++] = *p == '_' ? '-' : *p;
    out[n] = '\0';
}

/* Writes " (did you mean --x?)" into out for the known flag closest to
 * name (a flag without "--"), or "" when none is close. */
static void suggest(const choreo_config *cfg, const char *name, char *out, size_t cap)
{
    char best[64] = "", flag[64];
    size_t best_d = strlen(name) / 3 + 1;
    for (size_t i = 0; i < NKEYS + (size_t)cfg->nown_flags; i++) {
        if (i < NKEYS)
            flag_of(keys[i].name, flag, sizeof flag);
        else
            snprintf(flag, sizeof flag, "%s", cfg->own_flags[i - NKEYS]);
        size_t d = distance(name, flag);
        if (d < best_d) {
            best_d = d;
            memcpy(best, flag, sizeof best);
        }
    }
    if (best[0])
        snprintf(out, cap, " (did you mean --%s?)", best);
    else
        out[0] = '\0';
}

choreo_status choreo_config_accept_flag(choreo_config *cfg, const char *flag, bool takes_value)
{
    if (!cfg || !flag)
        return choreo__fail(CHOREO_EINVAL, "choreo_config_accept_flag: cfg and flag must not be NULL");
    const char *name = strncmp(flag, "--", 2) == 0 ? flag + 2 : flag;
    size_t n = strlen(name);
    if (n == 0 || n >= 64 || name[0] == '-' || strchr(name, '='))
        return choreo__fail(CHOREO_EINVAL,
                            "choreo_config_accept_flag: \"%s\" is not a flag name: give it as "
                            "\"--name\" or \"name\", 1 to 63 characters, without '='",
                            flag);
    char key[64];
    for (size_t i = 0; i <= n; i++)
        key[i] = name[i] == '-' ? '_' : name[i];
    if (find_key(key))
        return choreo__fail(CHOREO_EINVAL,
                            "choreo_config_accept_flag: --%s is a choreo setting already; "
                            "a program's own flag needs another name",
                            name);
    char fake[70];
    snprintf(fake, sizeof fake, "--%s", name);
    int have = own_flag(cfg, fake);
    if (have >= 0) {
        cfg->own_flag_value[have] = takes_value;
        return CHOREO_OK;
    }
    char **names = realloc(cfg->own_flags, (size_t)(cfg->nown_flags + 1) * sizeof *names);
    if (!names)
        return choreo__fail(CHOREO_ENOMEM, "out of memory declaring flag --%s", name);
    cfg->own_flags = names;
    bool *values = realloc(cfg->own_flag_value, (size_t)(cfg->nown_flags + 1) * sizeof *values);
    if (!values)
        return choreo__fail(CHOREO_ENOMEM, "out of memory declaring flag --%s", name);
    cfg->own_flag_value = values;
    if (!(names[cfg->nown_flags] = strdup(name)))
        return choreo__fail(CHOREO_ENOMEM, "out of memory declaring flag --%s", name);
    values[cfg->nown_flags++] = takes_value;
    return CHOREO_OK;
}

/* Whether a is one of the flags this program reads: choreo's, its own,
 * or --help. */
static bool known_flag(const choreo_config *cfg, const char *a)
{
    if (strncmp(a, "--", 2) != 0)
        return false;
    if (strcmp(a, "--help") == 0 || own_flag(cfg, a) >= 0)
        return true;
    char name[64];
    const char *value = NULL;
    return flag_name(a, true, name, sizeof name, &value) && find_key(name) != NULL;
}

/* A flag followed by another flag where its value should be: the value was
 * forgotten, and taking the next flag as it would hide that. */
static choreo_status value_missing(const char *flag, const char *next)
{
    return choreo__fail(CHOREO_ECONFIG,
                        "flag %s needs a value, but %s follows it, which is a flag (write "
                        "%s=VALUE for a value that starts with --)",
                        flag, next, flag);
}

choreo_status choreo_config_from_args(choreo_config *cfg, int *argc, char **argv)
{
    if (!cfg || !argc || !argv)
        return choreo__fail(CHOREO_EINVAL, "choreo_config_from_args: NULL argument");
    int out = 1;
    int i = 1;
    /* A setting given twice is refused: the last would win silently, and
     * the first may be the one meant (a --db of a script, a second pasted
     * after it). */
    const char *given[NKEYS] = { 0 };
    for (; i < *argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0)
            break;
        if (strncmp(a, "--", 2) != 0 || strcmp(a, "--help") == 0) {
            argv[out++] = argv[i]; /* an argument, a short flag, or --help */
            continue;
        }
        int own = own_flag(cfg, a);
        if (own >= 0) {
            argv[out++] = argv[i];
            if (cfg->own_flag_value[own] && !strchr(a, '=') && i + 1 < *argc) {
                if (known_flag(cfg, argv[i + 1]))
                    return value_missing(a, argv[i + 1]);
                argv[out++] = argv[++i];
            }
            continue;
        }
        char name[64];
        const char *value = NULL;
        const struct key *k = flag_name(a, true, name, sizeof name, &value) ? find_key(name) : NULL;
        if (!k) {
            char hint[96] = "";
            char plain[128];
            const char *ignored;
            if (flag_name(a, false, plain, sizeof plain, &ignored))
                suggest(cfg, plain, hint, sizeof hint);
            return choreo__fail(CHOREO_ECONFIG,
                                "unknown flag %.*s%s: see --help for the flags",
                                (int)strcspn(a, "="), a, hint);
        }
        if (!value) {
            if (i + 1 >= *argc)
                return choreo__fail(CHOREO_ECONFIG, "flag %s needs a value", a);
            if (known_flag(cfg, argv[i + 1]))
                return value_missing(a, argv[i + 1]);
            value = argv[++i];
        }
        char flag[64], origin[96];
        flag_of(k->name, flag, sizeof flag);
        /* The values are not shown: one may be a password. */
        if (given[k - keys])
            return choreo__fail(CHOREO_ECONFIG, "flag --%s is given twice: give it once",
                                flag);
        given[k - keys] = value;
        snprintf(origin, sizeof origin, "flag --%s", flag);
        choreo_status s = apply(cfg, k, value, origin);
        if (s != CHOREO_OK)
            return s;
    }
    for (; i < *argc; i++)
        argv[out++] = argv[i];
    *argc = out;
    argv[out] = NULL;
    return CHOREO_OK;
}

/* A user's public nkey: 'U' and 55 more characters of base32 (A-Z, 2-7). */
static bool user_nkey_valid(const char *s)
{
    if (strlen(s) != 56 || s[0] != 'U')
        return false;
    for (const char *p = s; *p; p++)
        if (!(*p >= 'A' && *p <= 'Z') && !(*p >= '2' && *p <= '7'))
            return false;
    return true;
}

/* The nkey's value is never quoted back: one who pasted the seed there by
 * mistake must not find it in a log. */
static choreo_status validate_nkey(const choreo_config *cfg)
{
    if (!cfg->nats_nkey && !cfg->nats_nkey_seed)
        return CHOREO_OK;
    if (!cfg->nats_nkey || !cfg->nats_nkey_seed)
        return choreo__fail(CHOREO_ECONFIG,
                            "settings nats_nkey and nats_nkey_seed go together: set both (the "
                            "user's public nkey, and the file holding its seed) or neither");
    if (cfg->nats_nkey[0] == 'S')
        return choreo__fail(CHOREO_ECONFIG,
                            "setting nats_nkey holds what looks like a seed (it starts with S): "
                            "a seed is a secret; put it in a private file named by "
                            "nats_nkey_seed, give nats_nkey the user's public nkey (U...), and "
                            "replace the seed if it was shared");
    if (!user_nkey_valid(cfg->nats_nkey))
        return choreo__fail(CHOREO_ECONFIG,
                            "setting nats_nkey is not a user's public nkey: that is 56 characters "
                            "from A-Z and 2-7, starting with U (the one in the server's "
                            "authorization users list)");
    const char *other = cfg->nats_user ? "nats_user" : cfg->nats_token ? "nats_token"
                        : cfg->nats_creds ? "nats_creds" : NULL;
    if (other)
        return choreo__fail(CHOREO_ECONFIG,
                            "settings nats_nkey and %s are exclusive: use one way to log in",
                            other);
    return CHOREO_OK;
}

choreo_status choreo_config_validate(const choreo_config *cfg)
{
    if (!cfg)
        return choreo__fail(CHOREO_EINVAL, "choreo_config_validate: cfg is NULL");
    if (!cfg->service)
        return choreo__fail(CHOREO_ECONFIG,
                            "setting service is required: pass --service NAME or set CHOREO_SERVICE");
    if (!cfg->db)
        return choreo__fail(CHOREO_ECONFIG,
                            "setting db is required: pass --db FILE or set CHOREO_DB");
    if ((cfg->nats_user != NULL) != (cfg->nats_password != NULL))
        return choreo__fail(CHOREO_ECONFIG,
                            "settings nats_user and nats_password go together: set both or neither");
    if ((cfg->tls_cert != NULL) != (cfg->tls_key != NULL))
        return choreo__fail(CHOREO_ECONFIG,
                            "settings tls_cert and tls_key go together: set both or neither");
    if (cfg->stream_max_age_s > 0 && cfg->stream_dup_window_s > cfg->stream_max_age_s)
        return choreo__fail(CHOREO_ECONFIG,
                            "setting stream_dup_window_s (%lld) is longer than stream_max_age_s "
                            "(%lld): JetStream refuses a duplicate window longer than the max age",
                            (long long)cfg->stream_dup_window_s, (long long)cfg->stream_max_age_s);
    if (cfg->retry_cap_ms < cfg->retry_base_ms)
        return choreo__fail(CHOREO_ECONFIG,
                            "setting retry_cap_ms (%lld) is below retry_base_ms (%lld): the cap "
                            "must be at least the first delay",
                            (long long)cfg->retry_cap_ms, (long long)cfg->retry_base_ms);
    if (cfg->inbox_retention_s > 0 &&
        (cfg->stream_max_age_s == 0 || cfg->inbox_retention_s <= cfg->stream_max_age_s))
        return choreo__fail(CHOREO_ECONFIG,
                            "setting inbox_retention_s (%lld) must be longer than "
                            "stream_max_age_s (%lld, 0 = unlimited), or 0 to keep inbox marks: "
                            "otherwise an event still in the stream could be applied twice",
                            (long long)cfg->inbox_retention_s, (long long)cfg->stream_max_age_s);
    if (choreo__store_is_postgres(cfg->db) && cfg->relay_lease_ms < 2 * cfg->relay_scan_ms + 1000)
        return choreo__fail(CHOREO_ECONFIG,
                            "setting relay_lease_ms (%lld) must be at least twice relay_scan_ms "
                            "(%lld) plus 1000: an active relay that waits relay_scan_ms between "
                            "rounds would otherwise lose its lease while it works",
                            (long long)cfg->relay_lease_ms, (long long)cfg->relay_scan_ms);
    if (cfg->nats_token && cfg->nats_user)
        return choreo__fail(CHOREO_ECONFIG,
                            "settings nats_token and nats_user are exclusive: use one way to log in");
    if (cfg->nats_creds && (cfg->nats_user || cfg->nats_token))
        return choreo__fail(CHOREO_ECONFIG,
                            "settings nats_creds and %s are exclusive: use one way to log in",
                            cfg->nats_user ? "nats_user" : "nats_token");
    return validate_nkey(cfg);
}

void choreo_config_print_help(const choreo_config *cfg, void *file)
{
    FILE *f = file ? file : stdout;
    fprintf(f, "choreo settings (flag / environment variable, default):\n");
    for (size_t i = 0; i < NKEYS; i++) {
        char flag[64], env[64];
        size_t n = 0;
        for (const char *p = keys[i].name; *p && n + 1 < sizeof flag; p++, n++) {
            flag[n] = *p == '_' ? '-' : *p;
            env[n] = (char)toupper((unsigned char)*p);
        }
        flag[n] = env[n] = '\0';
        /* A program's own default (a value set before the flags are read)
         * is the one shown, and a required key it gave one is not. */
        const char *def = cfg ? choreo_config_get(cfg, keys[i].name) : keys[i].def;
        if (def && !*def)
            def = NULL;
        /* A password in a URL is the program's to know, not its help's. */
        char shown[1024];
        if (def && strcmp(keys[i].name, "nats_url") == 0) {
            choreo__redact_urls(def, shown, sizeof shown);
            def = shown;
        } else if (def && strcmp(keys[i].name, "db") == 0) {
            choreo__store_display(def, shown, sizeof shown);
            def = shown;
        }
        const char *help = keys[i].help, *required = strstr(help, " (required)");
        int len = def && required ? (int)(required - help) : (int)strlen(help);
        fprintf(f, "  --%-22s CHOREO_%-22s %.*s", flag, env, len, help);
        if (keys[i].kind == K_ENUM)
            fprintf(f, " (%s)", keys[i].choices);
        if (def)
            fprintf(f, " [%s]", def);
        fputc('\n', f);
    }
}
