/* ULIDs: 48 bits of unix milliseconds then 80 random bits, in Crockford
 * base32, so event ids sort by creation time as text. Within one
 * millisecond the random part is incremented, keeping ids of one process
 * strictly increasing (the monotonic ULID variant). */
#include "ulid.h"

#include <pthread.h>
#include <string.h>
#include <sys/random.h>

#include "clock.h"

static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t last_ms;
static uint8_t last_rnd[10];

void choreo__ulid_format(char out[CHOREO_ID_SIZE], uint64_t ms, const uint8_t rnd[10])
{
    uint8_t b[16];
    for (int i = 0; i < 6; i++)
        b[i] = (uint8_t)(ms >> (8 * (5 - i)));
    memcpy(b + 6, rnd, 10);
    /* 128 bits as 26 groups of 5 bits, the first group holding 3 bits. */
    for (int i = 0; i < 26; i++) {
        int bit = i == 0 ? 0 : 3 + (i - 1) * 5; /* first bit of this group */
        int width = i == 0 ? 3 : 5;
        unsigned v = 0;
        for (int k = 0; k < width; k++) {
            int pos = bit + k;
            v = (v << 1) | ((b[pos / 8] >> (7 - pos % 8)) & 1u);
        }
        out[i] = alphabet[v];
    }
    out[26] = '\0';
}

void choreo__random_fill(void *out, size_t n)
{
    uint8_t *p = out;
    while (n > 0) {
        ssize_t got = getrandom(p, n, 0);
        if (got <= 0)
            continue;
        p += got;
        n -= (size_t)got;
    }
}

void choreo__ulid_new(char out[CHOREO_ID_SIZE])
{
    uint64_t ms = (uint64_t)choreo__now_ms();
    uint8_t rnd[10];
    pthread_mutex_lock(&lock);
    if (ms <= last_ms) {
        /* Same millisecond (or the clock stepped back): increment. */
        ms = last_ms;
        int i = 9;
        while (i >= 0 && ++last_rnd[i] == 0)
            i--;
        if (i < 0)
            ms = ++last_ms; /* 2^80 ids in one ms: move to the next ms */
    } else {
        choreo__random_fill(last_rnd, sizeof last_rnd);
        last_rnd[0] &= 0x7f; /* leave room to increment within the ms */
        last_ms = ms;
    }
    memcpy(rnd, last_rnd, sizeof rnd);
    pthread_mutex_unlock(&lock);
    choreo__ulid_format(out, ms, rnd);
}

bool choreo__ulid_valid(const char *s, size_t len)
{
    if (len != 26 || s[0] > '7')
        return false;
    for (size_t i = 0; i < len; i++)
        if (!memchr(alphabet, s[i], 32) || s[i] == '\0')
            return false;
    return true;
}

void choreo_saga_new(char out[CHOREO_ID_SIZE])
{
    choreo__ulid_new(out);
}
