/* A NATS connection built from choreo's settings, for the commands that
 * read the stream themselves (saga, tail): the URLs, the login, TLS, the
 * reply inbox prefix and the ping interval, as a service would use them. */
#ifndef CHOREOCTL_NATSCONN_H
#define CHOREOCTL_NATSCONN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <nats/nats.h>

#include "cli.h"

typedef struct ctl_nats {
    natsConnection *nc;
    jsCtx *js;
    char urls[512];    /* nats_url with any user:password@ shown as ***@ */
    const char *cmd;   /* "saga", "tail": starts every error message */
    atomic_bool closing; /* a deliberate close: its disconnect is no loss to report */
} ctl_nats;

/* Connects with the settings of s (and its raw login, see ctl_settings).
 * With follow, the connection is re-established forever after it was lost,
 * with a note on stderr each time it goes and comes back; otherwise a lost
 * connection stays lost. The first connect is tried once (a refused login
 * and a failed TLS handshake are reported as such). Prints an error naming
 * the URLs and what to check, and returns CTL_EXIT_FAIL, or CTL_EXIT_USAGE
 * for a credential or TLS file that cannot be read; CTL_EXIT_OK fills n.
 * JetStream requests made through n->js wait at most 5 s. */
int ctl_nats_open(ctl_nats *n, ctl_settings *s, const char *cmd, bool follow);

/* Closes the connection and frees n's contents; n may be half filled. */
void ctl_nats_close(ctl_nats *n);

/* Checks that the stream exists, so that its absence is one clear error
 * rather than a failed subscription, and gives the sequence of its last
 * message when last_seq is not NULL. Prints the error and returns
 * CTL_EXIT_FAIL, or returns CTL_EXIT_OK. */
int ctl_nats_check_stream(ctl_nats *n, const char *stream, uint64_t *last_seq);

/* nats.c's last error text on this thread without its "(file.c:123): "
 * prefix, or the status' own text. */
const char *ctl_nats_detail(natsStatus s);

/* Why an operation on n failed with s: the server's refusal of the user,
 * when that is what the connection last heard (a request the server
 * refuses is otherwise seen only as a timeout), else ctl_nats_detail. */
const char *ctl_nats_why(const ctl_nats *n, natsStatus s);

#endif
