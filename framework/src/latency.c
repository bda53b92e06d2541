/* Log-linear buckets: exact below 16 us, then 8 buckets per power of two,
 * which bounds the relative error of a percentile to 12.5% with a fixed
 * 2 KiB of counters that threads update with relaxed atomics. */
#include "latency.h"

static int bucket_of(int64_t v)
{
    if (v < 16)
        return v < 0 ? 0 : (int)v;
    int e = 63 - __builtin_clzll((unsigned long long)v); /* floor(log2 v), >= 4 */
    int idx = 16 + (e - 4) * 8 + (int)((v >> (e - 3)) & 7);
    return idx < CHOREO_LATENCY_BUCKETS ? idx : CHOREO_LATENCY_BUCKETS - 1;
}

static int64_t bucket_value(int idx)
{
    if (idx < 16)
        return idx;
    int e = (idx - 16) / 8 + 4;
    int sub = (idx - 16) % 8;
    /* Midpoint of the bucket [ (8+sub) << (e-3), (9+sub) << (e-3) ). */
    return ((int64_t)(8 + sub) << (e - 3)) + ((int64_t)1 << (e - 3)) / 2;
}

void choreo__latency_record(choreo_latency *h, int64_t us)
{
    atomic_fetch_add_explicit(&h->bucket[bucket_of(us)], 1, memory_order_relaxed);
}

int64_t choreo__latency_quantile(choreo_latency *h, double q)
{
    uint64_t counts[CHOREO_LATENCY_BUCKETS];
    uint64_t total = 0;
    for (int i = 0; i < CHOREO_LATENCY_BUCKETS; i++) {
        counts[i] = atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
        total += counts[i];
    }
    if (total == 0)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)total);
    if (rank >= total)
        rank = total - 1;
    uint64_t seen = 0;
    for (int i = 0; i < CHOREO_LATENCY_BUCKETS; i++) {
        seen += counts[i];
        if (seen > rank)
            return bucket_value(i);
    }
    return bucket_value(CHOREO_LATENCY_BUCKETS - 1);
}
