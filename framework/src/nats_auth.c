/* The NATS login and TLS: credentials and TLS files checked and set on the
 * connection options with errors that name the setting, the connect that
 * works around two nats.c 3.4.1 failures, and failed handshakes explained
 * in terms of the settings to change. */
#include "nats_auth.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "status.h"
#include "transport.h"

/* nats.c's last error on this thread without its "(conn.c:733): " source
 * prefix, or the status' own text when there is none. */
const char *choreo__nats_detail(natsStatus s)
{
    const char *e = nats_GetLastError(NULL);
    if (!e || !e[0])
        return natsStatus_GetText(s);
    const char *end = e[0] == '(' ? strstr(e, "): ") : NULL;
    return end ? end + 3 : e;
}

/* Whether a value given where a file's path belongs looks like the file's
 * secret contents (a PEM block, a creds file, an nkey seed), which an
 * error must not repeat. */
static bool looks_secret(const char *v)
{
    if (strchr(v, '\n') || strstr(v, "-----BEGIN") || strstr(v, "NKEY SEED"))
        return true;
    size_t n = strlen(v);
    if (n < 50 || v[0] != 'S')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((v[i] >= 'A' && v[i] <= 'Z') || (v[i] >= '2' && v[i] <= '7')))
            return false;
    return true; /* base32 of nkey seeds: SU..., SA..., SO... */
}

/* Checks that the file a setting names can be read, so that the error
 * names the setting, the file and the reason: nats.c says only that
 * loading failed, or finds out at the first connect. */
static choreo_status check_file(const char *setting, const char *path, const char *what)
{
    struct stat st;
    if (stat(path, &st) != 0 && looks_secret(path))
        return choreo__fail(CHOREO_ECONFIG,
                            "setting %s: its value is not the path of a file, and looks like the "
                            "secret itself (not shown here): give the path of %s",
                            setting, what);
    if (stat(path, &st) != 0)
        return choreo__fail(CHOREO_ECONFIG, "setting %s: cannot read %s (%s): give the path of %s",
                            setting, path, strerror(errno), what);
    if (!S_ISREG(st.st_mode))
        return choreo__fail(CHOREO_ECONFIG, "setting %s: %s is not a file: give the path of %s",
                            setting, path, what);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return choreo__fail(CHOREO_ECONFIG,
                            "setting %s: cannot read %s (%s): give the path of %s, readable by "
                            "this process",
                            setting, path, strerror(errno), what);
    close(fd);
    return CHOREO_OK;
}

/* Reads the seed file once, so that a missing file or one holding no seed
 * fails at start naming nats_nkey_seed (nats.c reads it only when the
 * server asks for a signature, at each connect). The seed is checked by
 * signing with it, and wiped from memory afterwards. */
static choreo_status check_seed(const char *path)
{
    const char *what = "the file holding the seed (SU...) of nats_nkey";
    choreo_status st = check_file("nats_nkey_seed", path, what);
    if (st != CHOREO_OK)
        return st;
    FILE *f = fopen(path, "r");
    if (!f)
        return choreo__fail(CHOREO_ECONFIG, "setting nats_nkey_seed: cannot read %s (%s): give "
                                            "the path of %s",
                            path, strerror(errno), what);
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *seed = NULL;
    for (char *line = buf; line && !seed;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        line += strspn(line, " \t");
        if (line[0] == 'S' && line[1] == 'U')
            seed = line;
        line = nl ? nl + 1 : NULL;
    }
    bool ok = false;
    if (seed) {
        seed[strcspn(seed, " \t\r")] = '\0';
        unsigned char *sig = NULL;
        int len = 0;
        ok = nats_Sign(seed, "choreo", &sig, &len) == NATS_OK;
        free(sig);
    }
    explicit_bzero(buf, sizeof buf);
    if (!ok)
        return choreo__fail(CHOREO_ECONFIG,
                            "setting nats_nkey_seed: %s holds no valid user seed (a line of 58 "
                            "characters starting with SU): give the file of the seed that "
                            "belongs to nats_nkey",
                            path);
    return CHOREO_OK;
}

choreo_status choreo__nats_set_credentials(natsOptions *o, const choreo_config *cfg)
{
    choreo_status st = CHOREO_OK;
    natsStatus s = NATS_OK;
    if (cfg->nats_user)
        s = natsOptions_SetUserInfo(o, cfg->nats_user, cfg->nats_password);
    if (s == NATS_OK && cfg->nats_token)
        s = natsOptions_SetToken(o, cfg->nats_token);
    if (s == NATS_OK && cfg->nats_creds) {
        st = check_file("nats_creds", cfg->nats_creds, "the NATS user credentials file (.creds)");
        if (st == CHOREO_OK)
            s = natsOptions_SetUserCredentialsFromFiles(o, cfg->nats_creds, NULL);
    }
    if (st == CHOREO_OK && s == NATS_OK && cfg->nats_nkey) {
        st = check_seed(cfg->nats_nkey_seed);
        if (st == CHOREO_OK)
            s = natsOptions_SetNKeyFromSeed(o, cfg->nats_nkey, cfg->nats_nkey_seed);
    }
    if (st == CHOREO_OK && s != NATS_OK)
        st = choreo__nats_error(s, "setting the NATS credentials (nats_user, nats_token, "
                                   "nats_creds or nats_nkey)");
    return st;
}

/* OpenSSL's reason in nats.c's "Error loading ... 'FILE': REASON", which
 * the caller's sentence already names the file of. */
static const char *ssl_reason(natsStatus s)
{
    const char *detail = choreo__nats_detail(s);
    const char *p = strstr(detail, "': ");
    return p ? p + 3 : detail;
}

/* Any TLS setting, or a tls:// URL, turns TLS on (nats.c itself ignores
 * the scheme and would talk in plain text); each file is checked before
 * nats.c loads it, and a file nats.c cannot use is reported under its own
 * setting. */
choreo_status choreo__nats_set_tls(natsOptions *o, const choreo_config *cfg)
{
    if (!cfg->tls_ca && !cfg->tls_cert && !choreo__urls_want_tls(cfg->nats_url))
        return CHOREO_OK;
    const char *ca_what = "the PEM file of the CA that signed the NATS server's certificate";
    choreo_status st = CHOREO_OK;
    if (cfg->tls_ca)
        st = check_file("tls_ca", cfg->tls_ca, ca_what);
    if (st == CHOREO_OK && cfg->tls_cert)
        st = check_file("tls_cert", cfg->tls_cert, "the PEM client certificate");
    if (st == CHOREO_OK && cfg->tls_cert)
        st = check_file("tls_key", cfg->tls_key, "the PEM private key of tls_cert");
    if (st != CHOREO_OK)
        return st;
    natsStatus s = natsOptions_SetSecure(o, true);
    if (s == NATS_OK && cfg->tls_ca) {
        s = natsOptions_LoadCATrustedCertificates(o, cfg->tls_ca);
        if (s == NATS_SSL_ERROR)
            return choreo__fail(CHOREO_ECONFIG,
                                "setting tls_ca: %s holds no certificate in PEM form (%s): give %s",
                                cfg->tls_ca, ssl_reason(s), ca_what);
    }
    if (s == NATS_OK && cfg->tls_cert) {
        s = natsOptions_LoadCertificatesChain(o, cfg->tls_cert, cfg->tls_key);
        if (s == NATS_SSL_ERROR && strstr(choreo__nats_detail(s), "private key"))
            return choreo__fail(CHOREO_ECONFIG,
                                "setting tls_key: %s is not a PEM private key or not the key of "
                                "the certificate in tls_cert (%s): give the key that belongs to "
                                "%s",
                                cfg->tls_key, ssl_reason(s), cfg->tls_cert);
        if (s == NATS_SSL_ERROR)
            return choreo__fail(CHOREO_ECONFIG,
                                "setting tls_cert: %s holds no certificate in PEM form (%s): give "
                                "the PEM client certificate",
                                cfg->tls_cert, ssl_reason(s));
    }
    return s == NATS_OK ? CHOREO_OK : choreo__nats_error(s, "turning TLS on for NATS");
}

bool choreo__nats_auth_failure(natsStatus s)
{
    if (s == NATS_CONNECTION_AUTH_FAILED || s == NATS_NOT_PERMITTED)
        return true;
    const char *e = nats_GetLastError(NULL);
    return e && (strstr(e, "uthorization") || strstr(e, "uthentication"));
}

/* nats.c 3.4.1 sends no signature when the ed25519 signature of the
 * server's nonce starts with a zero byte (its base64 encoder stops at a
 * leading 0; fixed in nats.c 3.10, issue 705), so one connect in 256 with
 * an nkey or a .creds file is refused as if the credentials were wrong.
 * Each connect signs a new nonce: a refusal of signed credentials is
 * believed only after SIGNED_AUTH_TRIES connects in a row, which leaves
 * one chance in 256^4 of a false one. */
#define SIGNED_AUTH_TRIES 4

/* A server that verifies clients and refuses the client certificate (or
 * gets none) closes the connection right after the TLS handshake. nats.c
 * then reports "Expected 'PONG', got ''" or, when the server's reset comes
 * before the client's first write, "SSL_write error". Either could also be
 * a server going down at that very moment: a server that drops the
 * connection after the handshake TLS_DROP_TRIES times in a row is refusing
 * the client, while one that went down is not reachable on the next try. */
#define TLS_DROP_TRIES 3

static bool dropped_after_tls(natsStatus s)
{
    const char *detail = choreo__nats_detail(s);
    return (s == NATS_IO_ERROR && strncmp(detail, "SSL_", 4) == 0) ||
           (s == NATS_PROTOCOL_ERROR && strstr(detail, "got ''"));
}

/* One connection, tried again at once for the two cases above. */
natsStatus choreo__nats_connect(natsConnection **nc, natsOptions *o, const choreo_config *cfg)
{
    int auth_tries = cfg->nats_nkey || cfg->nats_creds ? SIGNED_AUTH_TRIES : 1;
    int auth_refusals = 0, tls_drops = 0;
    for (;;) {
        natsStatus s = natsConnection_Connect(nc, o);
        if (s == NATS_OK)
            return s;
        if (choreo__nats_auth_failure(s)) {
            if (++auth_refusals >= auth_tries)
                return s;
        } else if (!dropped_after_tls(s) || ++tls_drops >= TLS_DROP_TRIES) {
            return s;
        }
    }
}

/* What to check when the server refused the credentials, from the
 * settings in use. */
const char *choreo__nats_credentials_hint(const choreo_config *cfg)
{
    if (cfg->nats_user)
        return "check nats_user and nats_password";
    if (cfg->nats_token)
        return "check nats_token";
    if (cfg->nats_nkey)
        return "check that nats_nkey is a user in the server's authorization block and that "
               "nats_nkey_seed holds that user's seed";
    if (cfg->nats_creds)
        return "check nats_creds";
    if (cfg->nats_url && strchr(cfg->nats_url, '@'))
        return "check the user and password in nats_url (user:password@host)";
    return "the server wants credentials and none are set: set nats_user and nats_password, "
           "nats_token, nats_nkey and nats_nkey_seed, or nats_creds";
}

/* A failed TLS handshake in terms of the settings to change, as
 * CHOREO_ETLS; CHOREO_OK when s is no TLS failure. nats.c reports a server
 * certificate it cannot verify as "SSL handshake error: <OpenSSL X509_V_ERR
 * number>:<reason>:depth=...". Under TLS 1.3 a server that verifies clients
 * finds the client certificate missing or unacceptable only after the
 * client's side of the handshake is done, and drops the connection
 * (dropped_after_tls, which connect_nats has seen TLS_DROP_TRIES times). */
choreo_status choreo__nats_tls_failure(natsStatus s, const choreo_config *cfg, const char *urls)
{
    const char *detail = choreo__nats_detail(s);
    if (s == NATS_SECURE_CONNECTION_WANTED && !cfg->tls_ca && !cfg->tls_cert)
        return choreo__fail(CHOREO_ETLS,
                            "nats_url asks for TLS (tls://), but the NATS server at %s does not "
                            "offer TLS: turn TLS on in the server's configuration (a tls block), "
                            "or write nats:// to talk to it in plain text",
                            urls);
    if (s == NATS_SECURE_CONNECTION_WANTED)
        return choreo__fail(CHOREO_ETLS,
                            "%s is set, but the NATS server at %s does not offer TLS: turn TLS "
                            "on in the server's configuration (a tls block), or remove tls_ca, "
                            "tls_cert and tls_key",
                            cfg->tls_ca ? "tls_ca" : "tls_cert", urls);
    if (dropped_after_tls(s)) {
        if (!cfg->tls_ca && !cfg->tls_cert) /* perhaps no TLS at all: hedge */
            return choreo__fail(CHOREO_ENATS,
                                "the NATS server at %s closed the connection before answering: if "
                                "it requires TLS client certificates, set tls_ca, tls_cert and "
                                "tls_key",
                                urls);
        if (cfg->tls_cert)
            return choreo__fail(CHOREO_ETLS,
                                "the NATS server at %s closed the connection right after the TLS "
                                "handshake: it refused the client certificate in tls_cert (%s): "
                                "give tls_cert and tls_key a certificate for client use, not "
                                "expired, signed by a CA the server trusts (its tls ca_file)",
                                urls, cfg->tls_cert);
        return choreo__fail(CHOREO_ETLS,
                            "the NATS server at %s closed the connection right after the TLS "
                            "handshake: it verifies clients and got no client certificate: set "
                            "tls_cert and tls_key to a certificate and its key signed by a CA the "
                            "server trusts (its tls ca_file)",
                            urls);
    }
    if (s != NATS_SSL_ERROR)
        return CHOREO_OK;
    const char *h = strstr(detail, "handshake error: ");
    char *end = NULL;
    long code = h ? strtol(h + 17, &end, 10) : -1;
    if (!h || end == h + 17 || *end != ':')
        return choreo__fail(CHOREO_ETLS,
                            "the TLS handshake with NATS at %s failed (%s): check that tls_ca, "
                            "tls_cert and tls_key fit the server's tls block; a server that "
                            "verifies clients needs tls_cert and tls_key",
                            urls, detail);
    if (code == 9 || code == 10) /* X509_V_ERR_CERT_NOT_YET_VALID, _HAS_EXPIRED */
        return choreo__fail(CHOREO_ETLS,
                            "the NATS server at %s presented a certificate that %s "
                            "(certificate verification failed: %s): renew the server's "
                            "certificate; its dates are checked against this machine's clock",
                            urls, code == 10 ? "has expired" : "is not valid yet", detail);
    if (code == 62 || code == 64) /* X509_V_ERR_HOSTNAME_MISMATCH, _IP_ADDRESS_MISMATCH */
        return choreo__fail(CHOREO_ETLS,
                            "the NATS server at %s presented a certificate for another host "
                            "(certificate verification failed: %s): put in nats_url a host name "
                            "or IP address that the certificate's subjectAltName lists, or "
                            "reissue the certificate for this host",
                            urls, detail);
    if (cfg->tls_ca)
        return choreo__fail(CHOREO_ETLS,
                            "the NATS server's certificate at %s is not signed by the CA in "
                            "tls_ca %s (certificate verification failed: %s): set tls_ca to the "
                            "PEM file of the CA that signed the server's certificate",
                            urls, cfg->tls_ca, detail);
    return choreo__fail(CHOREO_ETLS,
                        "the NATS server at %s requires TLS, and its certificate is not signed by "
                        "a CA this machine trusts (certificate verification failed: %s): set "
                        "tls_ca to the PEM file of the CA that signed it",
                        urls, detail);
}
