/* The transactional outbox: events written with the business rows and
 * published later by the relay. */
#ifndef CHOREO_OUTBOX_H
#define CHOREO_OUTBOX_H

#include "faults.h"
#include "store.h"

typedef struct choreo_outbox_row {
    int64_t seq;
    const char *event_id;
    const char *subject;
    const char *headers; /* "Key: value\n" lines */
    const uint8_t *body;
    size_t body_len;
    int64_t created_us;  /* unix microseconds */
    int64_t publish_at;  /* unix milliseconds */
} choreo_outbox_row;

/* Inserts a row in the current transaction. *seq (may be NULL) is set to
 * the row's seq on SQLite, and to 0 on PostgreSQL, where seqs do not follow
 * commit order and the relay never takes rows from memory. */
choreo_status choreo__outbox_insert(choreo_store *st, const choreo_outbox_row *row, int64_t *seq);

/* Copies of the rows a transaction wrote to the outbox, kept until its
 * commit and then handed to the relay, which publishes them without reading
 * them back when they are the rows a read would return next. Each row's
 * strings and body are one allocation, starting at its event_id. One thread
 * at a time. */
typedef struct choreo_outbox_copies {
    choreo_outbox_row *v;
    int n, cap;
    size_t bytes;    /* of the rows' allocations */
    bool incomplete; /* a copy could not be kept: the relay must read the table */
} choreo_outbox_copies;

/* Keeps a copy of row (with its seq); out of memory, or a list that holds
 * a relay round's worth already (CHOREO_RELAY_BATCH rows, or
 * CHOREO_RELAY_COPY_BYTES), marks the list incomplete instead of failing,
 * since the row is in the table anyway. */
void choreo__outbox_copy(choreo_outbox_copies *l, const choreo_outbox_row *row);
/* Moves every row of src to the end of dst (src is left empty); a dst that
 * cannot grow, or that would pass a relay round's worth, is marked
 * incomplete and keeps nothing more. */
void choreo__outbox_copies_move(choreo_outbox_copies *dst, choreo_outbox_copies *src);
/* Forgets the rows after the first n (a rolled-back savepoint); n = 0 also
 * clears incomplete. */
void choreo__outbox_copies_truncate(choreo_outbox_copies *l, int n);
void choreo__outbox_copies_free(choreo_outbox_copies *l);

/* Calls fn for up to limit unpublished rows due at now_ms with a seq above
 * after_seq, in seq order: the next due rows in seq order, with the
 * earliest delayed rows that fell due further on. A due row that is skipped
 * (below the last seq returned, when more than limit rows are due) comes
 * with a later call from a lower after_seq. The cost grows with limit and
 * the due rows below after_seq, not with the delayed rows waiting. Row
 * pointers are valid only during the call. fn returning false stops. */
choreo_status choreo__outbox_due(choreo_store *st, int64_t now_ms, int64_t after_seq, int limit,
                                 bool (*fn)(const choreo_outbox_row *row, void *user),
                                 void *user);

/* Marks the rows published at now_ms, in one transaction. cp (may be NULL)
 * is consulted for the inside_mark crash point halfway through. */
choreo_status choreo__outbox_mark_published(choreo_store *st, const int64_t *seqs, int n,
                                            int64_t now_ms, choreo_crashpoints *cp);

/* Records a failed publish attempt for a row (outside any transaction). */
choreo_status choreo__outbox_record_failure(choreo_store *st, int64_t seq, const char *error);

/* Deletes row seq in the current transaction. */
choreo_status choreo__outbox_delete(choreo_store *st, int64_t seq);

/* Earliest publish_at of an unpublished row, or INT64_MAX when none. */
choreo_status choreo__outbox_next_due(choreo_store *st, int64_t *out_ms);

/* Number of unpublished rows. */
choreo_status choreo__outbox_pending(choreo_store *st, int64_t *out);

/* The backlog: unpublished rows due by now_ms, the time (unix
 * microseconds) the longest-waiting of them fell due (its insert, or its
 * publish time when delayed; 0 when none), and the rows due later. */
choreo_status choreo__outbox_backlog(choreo_store *st, int64_t now_ms, int64_t *due,
                                     int64_t *oldest_due_us, int64_t *delayed);

#endif
