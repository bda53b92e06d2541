/* A lock-free latency histogram for percentiles in microseconds. */
#ifndef CHOREO_LATENCY_H
#define CHOREO_LATENCY_H

#include <stdatomic.h>
#include <stdint.h>

#define CHOREO_LATENCY_BUCKETS 256

typedef struct choreo_latency {
    atomic_uint_fast64_t bucket[CHOREO_LATENCY_BUCKETS];
} choreo_latency;

/* Records one sample; any thread. */
void choreo__latency_record(choreo_latency *h, int64_t us);
/* The value below which fraction q (0..1) of the samples fall, within 1/8
 * of the true value; 0 when empty. */
int64_t choreo__latency_quantile(choreo_latency *h, double q);

#endif
