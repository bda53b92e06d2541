/* The dead-letter table: messages parked for a person to inspect. */
#ifndef CHOREO_DEAD_H
#define CHOREO_DEAD_H

#include "store.h"

typedef struct choreo_dead_row {
    const char *consumer;
    const char *event_id;   /* NULL when the body could not be decoded */
    const char *event_type; /* NULL when unknown */
    const char *subject;
    const uint8_t *body;
    size_t body_len;
    const char *reason;
    int64_t attempts;
} choreo_dead_row;

/* Inserts a parked message in the current transaction. */
choreo_status choreo__dead_insert(choreo_store *st, const choreo_dead_row *row, int64_t now_ms);

/* Parks the unpublished outbox row seq (its event id, subject and body)
 * under consumer, in the current transaction. */
choreo_status choreo__dead_insert_from_outbox(choreo_store *st, int64_t seq, const char *consumer,
                                              const char *event_type, const char *reason,
                                              int64_t now_ms);

/* Whether the consumer already has this message parked (a repeated delivery
 * of a message whose park committed but whose Term never reached the server):
 * the event id and the same body, in a row other than except_id (0: any
 * row). Another message under the same id (a producer that reused it) is
 * not the same and gets a row of its own. */
choreo_status choreo__dead_is_parked(choreo_store *st, const char *consumer, const char *event_id,
                                     const void *body, size_t body_len, int64_t except_id,
                                     bool *out);

/* Marks retried, in the current transaction, the rows that still say the
 * consumer parked this event: a retry of it was applied. */
choreo_status choreo__dead_settle(choreo_store *st, const char *consumer, const char *event_id,
                                  int64_t now_ms);

/* Calls fn for each (consumer, type) with parked entries, with their
 * count; type is "" when unknown. */
choreo_status choreo__dead_parked_counts(choreo_store *st,
                                         void (*fn)(const char *consumer, const char *type,
                                                    int64_t count, void *user),
                                         void *user);

#endif
