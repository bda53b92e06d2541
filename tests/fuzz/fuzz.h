/* The libFuzzer entry point every fuzz target defines. The same function is
 * driven by libFuzzer (tests/fuzz/run) or by replay.c over a corpus. */
#ifndef CHOREO_FUZZ_H
#define CHOREO_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Stops the run when a property does not hold: a crash both libFuzzer and
 * the replay test report. */
#define FUZZ_CHECK(cond, what)                                                        \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "fuzz: %s:%d: %s does not hold: %s\n", __FILE__, __LINE__, \
                    #cond, (what));                                                   \
            abort();                                                                  \
        }                                                                             \
    } while (0)

#endif
