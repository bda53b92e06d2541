/* choreoctl's own NATS connection, for reading the stream. The public API
 * has no call that reads the stream, so saga and tail connect with nats.c
 * directly and rebuild the connection options from the same settings a
 * service uses. The secrets (user, password, token) come from the raw flags
 * and variables, since choreo_config_get shows them as "***". */
#include "natsconn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Most comma-separated URLs in nats_url. */
#define URLS_MAX 32
/* How long a JetStream request and a first connect may take. */
#define WAIT_MS 5000
/* nats.c 3.4.1 drops an nkey signature that starts with a zero byte, so one
 * signed login in 256 is refused by chance (the service does the same). */
#define SIGNED_AUTH_TRIES 4

const char *ctl_nats_detail(natsStatus s)
{
    const char *e = nats_GetLastError(NULL);
    if (!e || !e[0])
        return natsStatus_GetText(s);
    const char *end = e[0] == '(' ? strstr(e, "): ") : NULL;
    return end ? end + 3 : e;
}

const char *ctl_nats_why(const ctl_nats *n, natsStatus s)
{
    static _Thread_local char why[600];
    const char *detail = NULL;
    if (n->nc && natsConnection_GetLastError(n->nc, &detail) == NATS_NOT_PERMITTED) {
        snprintf(why, sizeof why,
                 "the server refused this NATS user an operation (%s): give the user that "
                 "permission (choreo-gen --nats-permissions writes an operator's)",
                 detail && detail[0] ? detail : "permissions violation");
        return why;
    }
    return ctl_nats_detail(s);
}

/* nats_url for messages: the user and password of nats://u:p@h:4222 become ***. */
static void redact(const char *urls, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = '\0';
    for (const char *p = urls; *p && o + 1 < cap;) {
        const char *scheme = strstr(p, "://");
        const char *comma = strchr(p, ',');
        const char *part_end = comma ? comma : p + strlen(p);
        const char *host = scheme && scheme < part_end ? scheme + 3 : p;
        const char *at = NULL;
        for (const char *q = host; q < part_end && *q != '/'; q++)
            if (*q == '@')
                at = q;
        int n = at ? snprintf(out + o, cap - o, "%.*s***%.*s", (int)(host - p), p,
                              (int)(part_end - at), at)
                   : snprintf(out + o, cap - o, "%.*s", (int)(part_end - p), p);
        if (n < 0 || (size_t)n >= cap - o)
            break;
        o += (size_t)n;
        p = part_end;
        if (*p == ',' && o + 1 < cap) {
            out[o++] = ',';
            out[o] = '\0';
            p++;
        }
    }
}

static void on_disconnected(natsConnection *nc, void *closure)
{
    (void)nc;
    ctl_nats *n = closure;
    if (!atomic_load(&n->closing))
        fprintf(stderr, "choreoctl: %s: lost the connection to NATS at %s; reconnecting\n",
                n->cmd, n->urls);
}

static void on_reconnected(natsConnection *nc, void *closure)
{
    (void)nc;
    const ctl_nats *n = closure;
    fprintf(stderr, "choreoctl: %s: connected to NATS at %s again\n", n->cmd, n->urls);
}

/* The servers of nats_url, trimmed, as malloc'd strings. */
static int split_urls(const char *urls, char **list)
{
    int count = 0;
    for (const char *p = urls; *p && count < URLS_MAX;) {
        p += strspn(p, " \t");
        size_t len = strcspn(p, ",");
        size_t end = len;
        while (end > 0 && (p[end - 1] == ' ' || p[end - 1] == '\t'))
            end--;
        if (end > 0 && (list[count] = strndup(p, end)) != NULL)
            count++;
        p += len;
        if (*p == ',')
            p++;
    }
    return count;
}

static const char *get(ctl_settings *s, const char *key)
{
    return choreo_config_get(s->cfg, key);
}

/* Whether a URL of the list asks for TLS (tls://, any case). */
static bool wants_tls(const char *urls)
{
    for (const char *p = urls; p && (p = strstr(p, "://")) != NULL; p += 3)
        if (p - urls >= 3 && strncasecmp(p - 3, "tls", 3) == 0)
            return true;
    return false;
}

/* The login and TLS of the settings. A file that cannot be used is a usage
 * error naming its setting. */
static int set_security(ctl_nats *n, natsOptions *o, ctl_settings *s)
{
    natsStatus st = NATS_OK;
    if (s->nats_user)
        st = natsOptions_SetUserInfo(o, s->nats_user, s->nats_password);
    if (st == NATS_OK && s->nats_token)
        st = natsOptions_SetToken(o, s->nats_token);
    if (st == NATS_OK && get(s, "nats_creds"))
        st = natsOptions_SetUserCredentialsFromFiles(o, get(s, "nats_creds"), NULL);
    if (st == NATS_OK && get(s, "nats_nkey"))
        st = natsOptions_SetNKeyFromSeed(o, get(s, "nats_nkey"), get(s, "nats_nkey_seed"));
    if (st != NATS_OK) {
        ctl_error("%s: cannot use the NATS credentials (%s): check --nats-user and "
                  "--nats-password, --nats-token, --nats-creds or --nats-nkey and "
                  "--nats-nkey-seed", n->cmd, ctl_nats_detail(st));
        return CTL_EXIT_USAGE;
    }
    const char *ca = get(s, "tls_ca"), *cert = get(s, "tls_cert"), *key = get(s, "tls_key");
    if (!ca && !cert && !wants_tls(get(s, "nats_url")))
        return CTL_EXIT_OK; /* nats.c ignores tls:// itself: it would talk in plain text */
    st = natsOptions_SetSecure(o, true);
    if (st == NATS_OK && ca && (st = natsOptions_LoadCATrustedCertificates(o, ca)) != NATS_OK) {
        ctl_error("%s: setting tls_ca: cannot use %s (%s): give the PEM file of the CA that "
                  "signed the NATS server's certificate", n->cmd, ca, ctl_nats_detail(st));
        return CTL_EXIT_USAGE;
    }
    if (st == NATS_OK && cert &&
        (st = natsOptions_LoadCertificatesChain(o, cert, key)) != NATS_OK) {
        ctl_error("%s: settings tls_cert and tls_key: cannot use %s and %s (%s): give a PEM "
                  "client certificate and its key", n->cmd, cert, key, ctl_nats_detail(st));
        return CTL_EXIT_USAGE;
    }
    if (st != NATS_OK) {
        ctl_error("%s: cannot turn TLS on (%s)", n->cmd, ctl_nats_detail(st));
        return CTL_EXIT_FAIL;
    }
    return CTL_EXIT_OK;
}

/* The setting nats_ping_interval_ms, whose range the settings checked. */
static int64_t ping_interval_ms(ctl_settings *s)
{
    const char *v = get(s, "nats_ping_interval_ms");
    return strtoll(v ? v : CTL_DEFAULT_PING_INTERVAL_MS, NULL, 10);
}

static int build_options(ctl_nats *n, natsOptions *o, ctl_settings *s, bool follow)
{
    char *list[URLS_MAX];
    int count = split_urls(get(s, "nats_url"), list);
    natsStatus st = count > 0 ? natsOptions_SetServers(o, (const char **)list, count)
                              : NATS_INVALID_ARG;
    for (int i = 0; i < count; i++)
        free(list[i]);
    if (st != NATS_OK) {
        ctl_error("%s: setting nats_url: \"%s\" holds no usable URL (%s): give URLs such as "
                  "nats://host:4222, comma-separated", n->cmd, n->urls, ctl_nats_detail(st));
        return CTL_EXIT_USAGE;
    }
    st = natsOptions_SetName(o, "choreoctl");
    if (st == NATS_OK)
        st = natsOptions_SetTimeout(o, WAIT_MS);
    /* Without PINGs a server that stops answering (frozen, or its host
     * gone without a reset) goes unnoticed: nats.c counts the connection
     * lost after two unanswered ones. */
    if (st == NATS_OK)
        st = natsOptions_SetPingInterval(o, ping_interval_ms(s));
    if (st == NATS_OK)
        st = natsOptions_SetSendAsap(o, true);
    if (st == NATS_OK && follow)
        st = natsOptions_SetMaxReconnect(o, -1);
    if (st == NATS_OK && follow)
        st = natsOptions_SetReconnectWait(o, 1000);
    if (st == NATS_OK && follow)
        st = natsOptions_SetDisconnectedCB(o, on_disconnected, n);
    if (st == NATS_OK && follow)
        st = natsOptions_SetReconnectedCB(o, on_reconnected, n);
    if (st == NATS_OK && !follow)
        st = natsOptions_SetAllowReconnect(o, false);
    const char *inbox = get(s, "nats_inbox_prefix");
    if (st == NATS_OK && inbox && strcmp(inbox, "_INBOX") != 0)
        st = natsOptions_SetCustomInboxPrefix(o, inbox);
    if (st != NATS_OK) {
        ctl_error("%s: cannot set up the NATS connection (%s)", n->cmd, ctl_nats_detail(st));
        return CTL_EXIT_FAIL;
    }
    return set_security(n, o, s);
}

static bool auth_failure(natsStatus s)
{
    if (s == NATS_CONNECTION_AUTH_FAILED || s == NATS_NOT_PERMITTED)
        return true;
    const char *e = nats_GetLastError(NULL);
    return e && (strstr(e, "uthorization") || strstr(e, "uthentication"));
}

static bool tls_failure(natsStatus s)
{
    return s == NATS_SSL_ERROR || s == NATS_SECURE_CONNECTION_WANTED ||
           s == NATS_SECURE_CONNECTION_REQUIRED || strncmp(ctl_nats_detail(s), "SSL_", 4) == 0;
}

/* A server that verifies clients and got no acceptable certificate drops
 * the connection once the handshake is done (TLS 1.3): nats.c then reads
 * nothing where it waited for the PONG of its connect. */
static bool dropped_after_tls(natsStatus s)
{
    return s == NATS_PROTOCOL_ERROR && strstr(ctl_nats_detail(s), "got ''") != NULL;
}

static void connect_failed(const ctl_nats *n, natsStatus s, bool tls)
{
    const char *detail = ctl_nats_detail(s);
    if (tls && dropped_after_tls(s))
        ctl_error("%s: the NATS server at %s closed the connection right after the TLS "
                  "handshake: it verifies clients and did not take this one's certificate: set "
                  "--tls-cert and --tls-key (CHOREO_TLS_CERT, CHOREO_TLS_KEY) to a certificate "
                  "and its key signed by a CA the server trusts", n->cmd, n->urls);
    else if (auth_failure(s))
        ctl_error("%s: the NATS server at %s refused the login (%s): check --nats-user and "
                  "--nats-password, --nats-token, --nats-creds or --nats-nkey and "
                  "--nats-nkey-seed (or their CHOREO_* variables)", n->cmd, n->urls, detail);
    else if (tls_failure(s))
        ctl_error("%s: the TLS handshake with NATS at %s failed (%s): check --tls-ca, "
                  "--tls-cert and --tls-key against the server's tls block", n->cmd, n->urls,
                  detail);
    else if (s == NATS_NO_SERVER || s == NATS_TIMEOUT)
        ctl_error("%s: cannot reach NATS at %s (%s): check --nats-url (CHOREO_NATS_URL) and "
                  "that the server runs", n->cmd, n->urls, detail);
    else
        ctl_error("%s: cannot connect to NATS at %s: %s", n->cmd, n->urls, detail);
}

int ctl_nats_open(ctl_nats *n, ctl_settings *s, const char *cmd, bool follow)
{
    memset(n, 0, sizeof *n);
    atomic_init(&n->closing, false);
    n->cmd = cmd;
    redact(get(s, "nats_url"), n->urls, sizeof n->urls);
    natsOptions *o = NULL;
    if (natsOptions_Create(&o) != NATS_OK) {
        ctl_error("%s: out of memory", cmd);
        return CTL_EXIT_FAIL;
    }
    int rc = build_options(n, o, s, follow);
    int tries = get(s, "nats_nkey") || get(s, "nats_creds") ? SIGNED_AUTH_TRIES : 1;
    natsStatus st = NATS_ERR;
    for (int i = 0; rc == CTL_EXIT_OK && i < tries; i++) {
        st = natsConnection_Connect(&n->nc, o);
        if (st == NATS_OK || !auth_failure(st))
            break;
    }
    natsOptions_Destroy(o);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (st != NATS_OK) {
        connect_failed(n, st, get(s, "tls_ca") || get(s, "tls_cert") ||
                                  wants_tls(get(s, "nats_url")));
        return CTL_EXIT_FAIL;
    }
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = WAIT_MS;
    st = natsConnection_JetStream(&n->js, n->nc, &jo);
    if (st != NATS_OK) {
        ctl_error("%s: cannot use JetStream on NATS at %s: %s", cmd, n->urls, ctl_nats_detail(st));
        ctl_nats_close(n);
        return CTL_EXIT_FAIL;
    }
    return CTL_EXIT_OK;
}

void ctl_nats_close(ctl_nats *n)
{
    atomic_store(&n->closing, true);
    jsCtx_Destroy(n->js);
    n->js = NULL;
    natsConnection_Destroy(n->nc);
    n->nc = NULL;
    /* Waits for nats.c's own threads, so that nothing of it outlives the
     * command (and leak checkers see its memory freed). */
    nats_CloseAndWait(WAIT_MS);
}

int ctl_nats_check_stream(ctl_nats *n, const char *stream, uint64_t *last_seq)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus st = js_GetStreamInfo(&si, n->js, stream, NULL, &jerr);
    if (st == NATS_OK && last_seq)
        *last_seq = si->State.LastSeq;
    jsStreamInfo_Destroy(si);
    if (st == NATS_OK)
        return CTL_EXIT_OK;
    if (st == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr)
        ctl_error("%s: no stream %s on NATS at %s: are --nats-url (CHOREO_NATS_URL) and "
                  "--stream (CHOREO_STREAM) the server and the stream the services use?",
                  n->cmd, stream, n->urls);
    else if (st == NATS_NO_RESPONDERS)
        ctl_error("%s: JetStream does not answer on NATS at %s: the server runs without "
                  "JetStream, or this user may not use its API", n->cmd, n->urls);
    else
        ctl_error("%s: cannot read stream %s on NATS at %s: %s", n->cmd, stream, n->urls,
                  ctl_nats_why(n, st));
    return CTL_EXIT_FAIL;
}
