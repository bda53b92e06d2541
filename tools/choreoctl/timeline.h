/* The timeline of one saga: its events as the stream holds them, and what
 * the services' databases recorded about each of them (which consumers
 * applied it and when, which parked it and why, the saga barrier's marks),
 * and the orchestrated instance of the saga when one of them owns it.
 * Built by `choreoctl saga`, drawn by its text, JSON and SVG writers. */
#ifndef CHOREOCTL_TIMELINE_H
#define CHOREOCTL_TIMELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <choreo.h>

#include "cli.h"
#include "natsconn.h"

/* Events a saga command reads by default, and at most. */
#define CTL_TIMELINE_LIMIT 10000
#define CTL_TIMELINE_LIMIT_MAX 1000000

/* A database read into the timeline; path is borrowed. */
typedef struct ctl_db {
    const char *path;  /* as given: a file, or a URL that may hold a password */
    char *shown;       /* path as printed (choreo_db_display), owned */
    char service[80];  /* the service recorded in it, or its file name's stem */
    bool orchestrates; /* it holds an orchestrated instance of the saga */
} ctl_db;

/* A consumer that applied an event (its inbox mark). */
typedef struct ctl_apply {
    char consumer[160];
    const ctl_db *db;
    int64_t at_ms; /* when its transaction marked the event */
} ctl_apply;

/* A consumer that parked an event (its choreo_dead row). */
typedef struct ctl_park {
    int64_t id;
    char consumer[160];
    const ctl_db *db;
    char reason[512];
    char status[16];
    int64_t attempts;
    int64_t at_ms;
} ctl_park;

/* One message of the saga's subjects. Text fields are copied from the
 * message as they are (cut to their size): clean them before printing. */
typedef struct ctl_tl_event {
    uint64_t seq;        /* stream sequence */
    int64_t stored_ms;   /* when the stream stored it */
    bool decoded;        /* the body is a choreo envelope */
    char why[200];       /* otherwise why not */
    char subject[256];
    char id[64], type[80], src[80], cause[64];
    char retry_for[160]; /* header Choreo-Retry-For: a `dead retry` for that consumer */
    bool has_cause;
    uint64_t version;
    int64_t ts_ms;       /* emit time (envelope ts), or stored_ms when not decoded */
    uint8_t *data;       /* msgpack data map, NULL when not kept */
    size_t data_len;
    ctl_apply *applied;
    size_t napplied;
    ctl_park *parked;
    size_t nparked;
} ctl_tl_event;

/* A row of a service's choreo_barrier for the saga, with the application
 * it was written in when that is clear (see ctl_timeline_finish). */
typedef struct ctl_mark {
    const ctl_db *db;
    char step[80];
    char op[16];   /* "action" or "compensation" */
    int64_t at_ms;
    long event;    /* index in ev, or -1 */
    long apply;    /* index in that event's applied, or -1 */
} ctl_mark;

/* The orchestrated instance of the saga, as the database of the service
 * that owns it records it (choreo_admin_saga). */
typedef struct ctl_orch {
    const ctl_db *db;               /* NULL when no database read holds one */
    choreo_saga_entry entry;
    choreo_saga_transition *trans;  /* oldest first */
    size_t ntrans;
} ctl_orch;

typedef enum ctl_kind {
    CTL_KIND_NORMAL,
    CTL_KIND_FAILURE,      /* parked, not a choreo envelope, or a *Rejected / *Failed type */
    CTL_KIND_COMPENSATION, /* applied behind a barrier compensation, or a *Cancelled type */
} ctl_kind;

typedef struct ctl_timeline {
    char saga[CHOREO_SAGA_MAX + 1];
    char stream[80];
    char filter[200];   /* <prefix>.*.<saga> */
    uint64_t in_stream; /* messages on filter when the read began */
    size_t limit;
    bool truncated;     /* in_stream > limit, or the data bytes cap was reached */
    bool data_dropped;  /* some events' data were not kept (size cap) */
    int64_t t0;         /* the first event's ts */
    ctl_tl_event *ev;   /* sorted by ts, then seq, after ctl_timeline_finish */
    size_t n;
    ctl_mark *marks;
    size_t nmarks;
    ctl_db dbs[CTL_DB_MAX * 2];
    size_t ndbs;
    size_t data_bytes;  /* msgpack data kept */
    ctl_orch orch;
    struct ctl_id_ref *by_id; /* events sorted by id, then stored_ms; NULL until needed */
} ctl_timeline;

/* A saga id as the wire format allows: [A-Za-z0-9_-]{1,64}. */
bool ctl_saga_id_valid(const char *s);

/* Starts an empty timeline. */
void ctl_timeline_init(ctl_timeline *t, const char *saga, const char *stream,
                       const char *prefix, size_t limit);

/* Reads the saga's messages, at most t->limit, through an ephemeral pull
 * consumer on t->filter (in memory, no acks, deleted afterwards; the server
 * drops it by itself 30 s after a crash). It stops at the messages that
 * were there when it began. Prints an error and returns CTL_EXIT_FAIL, or
 * returns CTL_EXIT_OK, also when there were none (t->n == 0). */
int ctl_timeline_read_stream(ctl_timeline *t, ctl_nats *n);

/* Adds what the database at path (a service's, already checked: a file or
 * a PostgreSQL URL) recorded about the events read: inbox marks, parked
 * messages, barrier rows, and whether it holds an orchestrated instance of
 * the saga; the first database read that holds one gives t->orch (NULL
 * when none does). It is read with the settings of s (ctl_open_readonly).
 * path must outlive t. Prints an error and returns CTL_EXIT_FAIL, or
 * CTL_EXIT_OK. */
int ctl_timeline_read_db(ctl_timeline *t, const ctl_settings *s, const char *path);

/* Sorts the events, sets t0, and attributes each barrier mark to the
 * application of one of the saga's events in the same database that marked
 * its inbox last before it (within a second); a mark stays unattributed
 * when two applications share that millisecond. */
void ctl_timeline_finish(ctl_timeline *t);

/* How event i is drawn: see ctl_kind. */
ctl_kind ctl_timeline_kind(const ctl_timeline *t, size_t i);
const char *ctl_kind_name(ctl_kind k);

/* The barrier marks written by application a of event i, one after another:
 * start with *cursor = 0; returns NULL after the last. */
const ctl_mark *ctl_timeline_next_mark(const ctl_timeline *t, size_t i, size_t a, size_t *cursor);

void ctl_timeline_free(ctl_timeline *t);

#endif
