/* The NATS login and TLS of a service's connection (transport.c connects). */
#ifndef CHOREO_NATS_AUTH_H
#define CHOREO_NATS_AUTH_H

#include <nats/nats.h>
#include <stdbool.h>

#include "config.h"

/* nats.c's last error on this thread without its "(conn.c:733): " source
 * prefix, or the status' own text when there is none. */
const char *choreo__nats_detail(natsStatus s);

/* Sets the credentials of cfg (user and password, token, .creds file, or
 * nkey and seed file), checking the files first; CHOREO_ECONFIG names the
 * setting and the file. */
choreo_status choreo__nats_set_credentials(natsOptions *o, const choreo_config *cfg);

/* Turns TLS on when tls_ca or tls_cert is set and loads the files, each
 * checked first and reported under its own setting. */
choreo_status choreo__nats_set_tls(natsOptions *o, const choreo_config *cfg);

/* Whether s (with nats.c's last error) means the server refused the
 * credentials. */
bool choreo__nats_auth_failure(natsStatus s);

/* natsConnection_Connect, tried again at once when nats.c 3.4.1 drops an
 * nkey signature by chance, and when a server refusing the client
 * certificate closes the connection in a way nats.c reports as an I/O
 * error. */
natsStatus choreo__nats_connect(natsConnection **nc, natsOptions *o, const choreo_config *cfg);

/* What to check when the server refused the credentials of cfg. */
const char *choreo__nats_credentials_hint(const choreo_config *cfg);

/* A failed TLS handshake as CHOREO_ETLS with what to change; CHOREO_OK when
 * s is no TLS failure. urls is the redacted nats_url. */
choreo_status choreo__nats_tls_failure(natsStatus s, const choreo_config *cfg, const char *urls);

#endif
