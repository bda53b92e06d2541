/* Status codes as text, and a thread-local sentence describing the last
 * failure, so that callers get both a stable code and a readable reason
 * (what failed, with what, and what to do) without allocating. */
#include "status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_error[1024];

const char *choreo_status_str(choreo_status s)
{
    switch (s) {
    case CHOREO_OK: return "ok";
    case CHOREO_EINVAL: return "invalid argument";
    case CHOREO_ENOMEM: return "out of memory";
    case CHOREO_ECONFIG: return "invalid configuration";
    case CHOREO_ESTORE: return "database error";
    case CHOREO_EBUSY: return "database busy";
    case CHOREO_ENATS: return "NATS error";
    case CHOREO_EAUTH: return "NATS authorization failed";
    case CHOREO_ENOSERVER: return "no NATS server reachable";
    case CHOREO_ETOOBIG: return "size limit exceeded";
    case CHOREO_EDECODE: return "malformed message";
    case CHOREO_ESTATE: return "not allowed in this state";
    case CHOREO_ENOTFOUND: return "not found";
    case CHOREO_ESTREAM: return "stream setup conflict";
    case CHOREO_ETIMEOUT: return "timed out";
    case CHOREO_EDUPLICATE: return "already exists";
    case CHOREO_ELOCKED: return "service already running in another process";
    case CHOREO_ETLS: return "TLS handshake with NATS failed";
    }
    return "unknown status";
}

const char *choreo_last_error(void)
{
    return last_error;
}

choreo_status choreo__fail(choreo_status s, const char *fmt, ...)
{
    /* Format into a copy first: callers may pass choreo_last_error() itself
     * as an argument to wrap the previous detail. */
    char text[sizeof last_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    memcpy(last_error, text, sizeof text);
    return s;
}

void choreo__clear_error(void)
{
    last_error[0] = '\0';
}
