/* Fuzz target for the envelope decoder: any input must be decoded or refused
 * without a crash, a leak or undefined behaviour, and whatever is accepted
 * must re-encode to an envelope that decodes to the same fields. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "fuzz.h"

/* Inputs beyond this are refused by size alone; fuzzing them finds nothing. */
#define MAX_BYTES (64 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    choreo_envelope env;
    if (choreo__envelope_decode(&env, data, size, MAX_BYTES) != CHOREO_OK) {
        FUZZ_CHECK(choreo_last_error()[0] != '\0', "a refusal explains itself");
        return 0;
    }
    FUZZ_CHECK(env.data_len == 0 || (env.data >= data && env.data + env.data_len <= data + size),
               "data lies inside the input");
    choreo_mp_writer w;
    choreo_mp_writer_init(&w, 2 * MAX_BYTES);
    FUZZ_CHECK(choreo__envelope_encode(&env, &w) == CHOREO_OK, "an accepted envelope encodes");
    choreo_envelope again;
    FUZZ_CHECK(choreo__envelope_decode(&again, w.buf, w.len, 2 * MAX_BYTES) == CHOREO_OK,
               choreo_last_error());
    FUZZ_CHECK(strcmp(env.id, again.id) == 0 && strcmp(env.type, again.type) == 0 &&
                   env.version == again.version && strcmp(env.saga, again.saga) == 0 &&
                   strcmp(env.cause, again.cause) == 0 && strcmp(env.src, again.src) == 0 &&
                   env.ts_ms == again.ts_ms && env.data_len == again.data_len &&
                   (env.data_len == 0 || memcmp(env.data, again.data, env.data_len) == 0),
               "re-encoding keeps every field");
    choreo_mp_writer_free(&w);
    return 0;
}
