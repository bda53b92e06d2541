/* Wall-clock and monotonic time in the units choreo stores and measures. */
#ifndef CHOREO_CLOCK_H
#define CHOREO_CLOCK_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

int64_t choreo__now_ms(void);   /* unix time, milliseconds */
int64_t choreo__now_us(void);   /* unix time, microseconds */
int64_t choreo__mono_us(void);  /* monotonic, microseconds */
/* Initialises a condition variable whose timed waits use CLOCK_MONOTONIC,
 * so that a step of the wall clock neither stalls nor hurries a wait. */
void choreo__cond_init(pthread_cond_t *cond);

/* An absolute CLOCK_MONOTONIC deadline ms from now, for pthread_cond_timedwait
 * on a condition variable made by choreo__cond_init. */
struct timespec choreo__deadline_in_ms(int64_t ms);
void choreo__sleep_ms(int64_t ms);

/* Writes unix milliseconds as UTC RFC 3339 with milliseconds,
 * 2026-11-30T10:00:00.123Z (at least 25 bytes). */
void choreo__format_rfc3339(int64_t ms, char *out, size_t cap);

#endif
