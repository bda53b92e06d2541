/* Message bodies for people: the fields of a choreo envelope, and msgpack
 * values rendered as JSON, read with libchoreo's public bounded reader. */
#ifndef CHOREOCTL_MPJSON_H
#define CHOREOCTL_MPJSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <choreo.h>

#include "json.h"

/* How deep event data may nest (README, "Wire format"). */
#define CTL_DATA_DEPTH 32

/* The fields of an envelope, pointing into the body (strings are not
 * NUL-terminated). */
typedef struct ctl_envelope {
    const char *id, *type, *saga, *cause, *src;
    uint32_t id_len, type_len, saga_len, cause_len, src_len;
    bool has_cause;
    uint64_t version;
    int64_t ts_ms;
    const uint8_t *data;
    size_t data_len;
} ctl_envelope;

/* Reads body as an envelope: one msgpack map with string keys, the fields id,
 * type, saga, src (strings), v (non-negative integer), ts (integer), data (a
 * map nested at most CTL_DATA_DEPTH levels) and optionally cause (string),
 * no field twice and nothing after the map. Unknown fields are skipped. The
 * values are not checked further (a ULID, a type name), since a message is
 * often parked for exactly such a defect and the operator wants to see it.
 * On failure writes a sentence naming the defect to why and returns false. */
bool ctl_envelope_read(const uint8_t *body, size_t len, ctl_envelope *env, char *why,
                       size_t why_cap);

/* Reads the next msgpack value from r and writes it to j as JSON: nil, bool,
 * integers, floats and strings as themselves, binary as {"$bin": HEX},
 * extensions as {"$ext": TYPE, "hex": HEX}, non-string map keys as their JSON
 * text in a string. Containers may nest depth levels. On malformed input
 * writes the defect to why and returns false. */
bool ctl_mp_json(choreo_mp_reader *r, ctl_json *j, int depth, char *why, size_t why_cap);

#endif
