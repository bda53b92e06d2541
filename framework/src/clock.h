/* Wall-clock and monotonic time in the units choreo stores and measures. */
#ifndef CHOREO_CLOCK_H
#define CHOREO_CLOCK_H

#include <stdint.h>
#include <time.h>

int64_t choreo__now_ms(void);   /* unix time, milliseconds */
int64_t choreo__now_us(void);   /* unix time, microseconds */
int64_t choreo__mono_us(void);  /* monotonic, microseconds */
/* An absolute CLOCK_REALTIME deadline ms from now, for pthread_cond_timedwait. */
struct timespec choreo__deadline_in_ms(int64_t ms);
void choreo__sleep_ms(int64_t ms);

#endif
