/* Time-sortable unique ids (ULID text, 26 Crockford base32 characters). */
#ifndef CHOREO_ULID_H
#define CHOREO_ULID_H

#include <stdbool.h>
#include <stdint.h>

#include "choreo.h"

/* Writes a new ULID for the current time; ids made by one process are
 * strictly increasing. Thread-safe. */
void choreo__ulid_new(char out[CHOREO_ID_SIZE]);

/* Fills out with n bytes from getrandom(2), waiting for them. */
void choreo__random_fill(void *out, size_t n);

/* Writes the ULID for a given time and 80 random bits (for tests). */
void choreo__ulid_format(char out[CHOREO_ID_SIZE], uint64_t ms, const uint8_t rnd[10]);

/* True when s is 26 Crockford base32 characters (upper case). */
bool choreo__ulid_valid(const char *s, size_t len);

#endif
