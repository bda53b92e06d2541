/* Status texts and the per-thread detail of the last failure. */
#ifndef CHOREO_STATUS_H
#define CHOREO_STATUS_H

#include "choreo.h"

/* Records a detail sentence for the calling thread and returns s, so that a
 * failing path can read: return choreo__fail(CHOREO_EINVAL, "...", ...). */
choreo_status choreo__fail(choreo_status s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Clears the calling thread's detail text. */
void choreo__clear_error(void);

#endif
