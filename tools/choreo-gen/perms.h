/* NATS permissions from a checked *.services file: the authorization part of
 * a nats-server configuration, one permissions map per service, client and
 * operator, allowing exactly the subjects choreo uses for what each one
 * emits, handles, serves and calls. */
#ifndef CHOREO_GEN_PERMS_H
#define CHOREO_GEN_PERMS_H

#include "emit.h"
#include "services.h"

typedef struct gen_perms_opts {
    const char *subject_prefix; /* choreo's prefix setting: "choreo" */
    const char *stream;         /* choreo's stream setting: "CHOREO" */
    const char *services_name;  /* file names for the header, without directories */
    const char *schema_name;
    bool no_users;        /* write the variables only, no authorization block */
    bool private_inboxes; /* each user subscribes to _INBOX_<name>.> only */
} gen_perms_opts;

/* choreo's rule for the prefix setting: dot-separated tokens of
 * [A-Za-z0-9_-], at most 32 characters. */
bool gen_subject_prefix_valid(const char *prefix);

/* choreo's rule for the stream setting: [A-Za-z0-9_-], 1 to 64 characters. */
bool gen_stream_name_valid(const char *stream);

/* Writes the nats-server configuration text for s into out: a header
 * comment, NAME_PERMISSIONS = { ... } per role in the file's order, and
 * unless o->no_users an authorization block with one user per role whose
 * password is the variable NAME_PASSWORD. The same input always gives the
 * same bytes. Aborts when out of memory. */
void gen_perms_emit(const gen_services *s, const gen_perms_opts *o, gen_buf *out);

#endif
