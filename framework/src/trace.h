/* W3C trace context: the traceparent header that travels from each event to
 * the events its handler emits, so that a tracing system can stitch a saga
 * together. "00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>". */
#ifndef CHOREO_TRACE_H
#define CHOREO_TRACE_H

#include <stdbool.h>

/* Text length of a traceparent, plus NUL. */
#define CHOREO_TRACEPARENT_SIZE 56

/* True when s is a version-00 traceparent with a non-zero trace id and
 * parent id, in lower-case hex. */
bool choreo__traceparent_valid(const char *s);

/* Writes a traceparent for a new event: in the trace of parent, with a new
 * parent id, when parent is a valid traceparent; else in a new trace,
 * sampled. Thread-safe. */
void choreo__traceparent_child(const char *parent, char out[CHOREO_TRACEPARENT_SIZE]);

#endif
