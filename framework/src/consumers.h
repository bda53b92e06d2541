/* The record of the handlers a service registered at its last start, which
 * the admin functions set against the durable consumers on the server. */
#ifndef CHOREO_CONSUMERS_H
#define CHOREO_CONSUMERS_H

#include "service.h"
#include "store.h"

/* Replaces the record with the service's routes, in its own transaction. */
choreo_status choreo__consumers_record(choreo_store *st, const choreo_config *cfg,
                                       const choreo_route *routes, int n, int64_t now_ms);

#endif
