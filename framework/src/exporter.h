/* The metrics endpoint (metrics_addr): an HTTP server on its own thread
 * that renders the service's metrics in the Prometheus text format, and a
 * sampler thread that reads what the hot path does not count (the outbox
 * backlog, parked rows, consumer lag) every few seconds. Neither takes a
 * lock the dispatcher or the relay waits for. */
#ifndef CHOREO_EXPORTER_H
#define CHOREO_EXPORTER_H

#include "service.h"

/* Binds metrics_addr and starts serving; does nothing when it is empty.
 * Fails with CHOREO_ECONFIG naming the address when it cannot be bound. */
choreo_status choreo__exporter_start(choreo_service *svc);
void choreo__exporter_stop(choreo_service *svc);

/* Starts the sampler once NATS is connected (when metrics_addr is set);
 * joined once the service stops, before the connections close. */
choreo_status choreo__sampler_start(choreo_service *svc);
void choreo__sampler_join(choreo_service *svc);

/* Counts what a committed transaction noted, and empties the log. */
void choreo__metrics_commit(choreo_service *svc, choreo_mlog *log);

/* The metrics as Prometheus text; NULL when out of memory. free() it. */
char *choreo__metrics_render(choreo_service *svc, size_t *len);

#endif
