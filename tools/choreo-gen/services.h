/* The model of a *.services file: which program emits, handles and serves
 * what, and which requests each client calls. Checked against the event
 * schema whose events it names. The language is described in
 * events/README.md ("NATS permissions from the schemas"). */
#ifndef CHOREO_GEN_SERVICES_H
#define CHOREO_GEN_SERVICES_H

#include "schema.h"

/* Longest service, client or operator name: choreo's service setting. */
#define GEN_ROLE_NAME_MAX 32
/* Longest request name: choreo_service_on_request's limit. */
#define GEN_REQUEST_NAME_MAX 64

typedef enum gen_role_kind {
    GEN_ROLE_SERVICE,  /* a choreo service: emits, handles, serves, calls */
    GEN_ROLE_CLIENT,   /* a program that only calls requests */
    GEN_ROLE_OPERATOR, /* choreoctl: consumers and parked events, all types */
} gen_role_kind;

/* One word of a clause, as written, with where it was written. */
typedef struct gen_word {
    const char *text;
    gen_loc loc;
} gen_word;

typedef struct gen_word_list {
    gen_word *items;
    size_t n, cap;
} gen_word_list;

/* A request a role calls, resolved by the checker: a wildcard call
 * (order.* or *.Ping) becomes one gen_call per request it stands for. */
typedef struct gen_call {
    const char *service;
    const char *request;
} gen_call;

typedef struct gen_role {
    gen_role_kind kind;
    const char *name;
    const char *var;     /* NAME in capitals, '-' as '_': NAME_PERMISSIONS */
    gen_loc loc;         /* of the name */
    gen_word_list emits; /* event types */
    gen_word_list handles;
    gen_word_list serves; /* request names */
    gen_word_list calls;  /* "service.request", either side may be '*' */
    gen_call *resolved;   /* calls, expanded and without repeats, set by the checker */
    size_t nresolved;
} gen_role;

typedef struct gen_services {
    const char *file;
    gen_role *roles; /* in the order of the file */
    size_t nroles;
    gen_arena *arena; /* owns every node and string above */
} gen_services;

/* Parses text (len bytes) read from `file` (the name used in diagnostics)
 * and checks it against `schema`: every emitted or handled type must be an
 * event there, every call must name a declared service and a request it
 * serves, and nothing may be declared twice. Returns the model, or NULL
 * with the errors in diags. Freed with gen_services_free. */
gen_services *gen_services_parse(const char *file, const char *text, size_t len,
                                 const gen_schema *schema, gen_diags *diags);

/* Reads and parses a file; an unreadable file is reported in diags too. */
gen_services *gen_services_load(const char *path, const gen_schema *schema, gen_diags *diags);

void gen_services_free(gen_services *s);

/* The word for a kind as written in the file ("service"). */
const char *gen_role_kind_name(gen_role_kind k);

#endif
