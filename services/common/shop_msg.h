/* Small msgpack maps for the shop's own requests that are not events
 * (restock, deposit, enroll, order status): a table of named fields decoded
 * from, or encoded to, a map keyed by field name, like event data. */
#ifndef SHOP_MSG_H
#define SHOP_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <choreo.h>

typedef enum shop_field_type { SHOP_F_STR, SHOP_F_I64, SHOP_F_BOOL } shop_field_type;

/* One field: for SHOP_F_STR, str points to a buffer of cap bytes (the value
 * must fit with its NUL); for SHOP_F_I64 i64, for SHOP_F_BOOL b. `seen`
 * tells, after decoding, whether the map had the field. */
typedef struct shop_field {
    const char *name;
    shop_field_type type;
    char *str;
    size_t cap;
    int64_t *i64;
    bool *b;
    bool required;
    bool seen;
} shop_field;

#define SHOP_FIELD_STR(n, buf, req) \
    { (n), SHOP_F_STR, (buf), sizeof(buf), NULL, NULL, (req), false }
#define SHOP_FIELD_I64(n, p, req) { (n), SHOP_F_I64, NULL, 0, (p), NULL, (req), false }
#define SHOP_FIELD_BOOL(n, p, req) { (n), SHOP_F_BOOL, NULL, 0, NULL, (p), (req), false }

/* Decodes a msgpack map into the fields. Unknown keys are skipped. Fails
 * with CHOREO_EDECODE and a sentence in err when the data is not a map, a
 * field has the wrong type or does not fit, or a required one is missing. */
CHOREO_WUR choreo_status shop_msg_decode(const void *data, size_t len, shop_field *fields, size_t n,
                                         char *err, size_t errlen);

/* Encodes the fields as a map into w (initialised by the caller). */
void shop_msg_encode(choreo_mp_writer *w, const shop_field *fields, size_t n);

/* Encodes fields as a request handler's reply: CHOREO_DONE when set,
 * CHOREO_RETRY when it could not be (out of memory). */
choreo_result shop_msg_reply(choreo_reply *reply, const shop_field *fields, size_t n);

#endif
