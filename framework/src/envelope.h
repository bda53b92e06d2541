/* The envelope: the msgpack map every choreo event travels in. */
#ifndef CHOREO_ENVELOPE_H
#define CHOREO_ENVELOPE_H

#include "choreo.h"

#define CHOREO_SOURCE_MAX 64
#define CHOREO_ENVELOPE_DEPTH 32

/* A header that an operator's retry of a parked message carries: the one
 * consumer that must apply it; every other consumer of the type acks it
 * without applying it. */
#define CHOREO_HDR_RETRY_FOR "Choreo-Retry-For"
/* On such a retry: the id of the choreo_dead row it retries. */
#define CHOREO_HDR_RETRY_ROW "Choreo-Retry-Row"
/* W3C trace context of the event (trace.h). */
#define CHOREO_HDR_TRACEPARENT "traceparent"

/* A decoded envelope. Strings are copied and NUL-terminated; data points
 * into the decoded buffer and is valid as long as that buffer is. */
typedef struct choreo_envelope {
    char id[CHOREO_ID_SIZE];
    char type[CHOREO_TYPE_MAX + 1];
    uint32_t version;
    char saga[CHOREO_SAGA_MAX + 1];
    char cause[CHOREO_ID_SIZE]; /* "" when absent */
    char src[CHOREO_SOURCE_MAX + 1];
    int64_t ts_ms;
    const uint8_t *data;
    size_t data_len;
} choreo_envelope;

/* Encodes env (with env->data as the payload map) into w. */
choreo_status choreo__envelope_encode(const choreo_envelope *env, choreo_mp_writer *w);

/* Decodes and validates buf strictly: a map with the fields id (ULID), type
 * (UpperCamel ASCII), v (1..65535), saga ([A-Za-z0-9_-]{1,64}), cause
 * (ULID, optional), src (name), ts (unix ms >= 0), data (map nested at most
 * CHOREO_ENVELOPE_DEPTH levels). Unknown fields are skipped; duplicate
 * fields, trailing bytes and anything over max_bytes are errors. Each defect
 * has its own message in choreo_last_error(). */
choreo_status choreo__envelope_decode(choreo_envelope *env, const uint8_t *buf, size_t len,
                                      size_t max_bytes);

/* True for UpperCamel ASCII names: [A-Z][A-Za-z0-9]{0,63}. */
bool choreo__type_valid(const char *s, size_t len);

/* True for saga ids: [A-Za-z0-9_-]{1,64}. */
bool choreo__saga_valid(const char *s, size_t len);

#endif
