/* Fetch threads and the dispatcher thread with its group commit. */
#ifndef CHOREO_DISPATCH_H
#define CHOREO_DISPATCH_H

#include "service.h"

/* Makes or brings in line every route's durable consumer (refusing one
 * bound to another database) and subscribes to its answers; nothing is
 * pulled yet. */
choreo_status choreo__dispatch_subscribe(choreo_service *svc);

/* After choreo__dispatch_subscribe: subscribes every request route, then
 * starts one fetch thread per route and the dispatcher thread. */
choreo_status choreo__dispatch_start(choreo_service *svc);

/* Joins the threads after svc->stop is set; queued messages are handed back
 * to JetStream (nak) so that they are redelivered at once. */
void choreo__dispatch_join(choreo_service *svc);

/* Destroys the subscriptions, once the connection is closed: nats.c 3.4.1's
 * reader thread looks a subscription up without taking a reference, so a
 * pull request's late answer (a 408) arriving while the subscription is
 * destroyed would lock a freed mutex; closing the connection joins that
 * thread first. */
void choreo__dispatch_free_subs(choreo_service *svc);

/* True on the thread that runs svc's dispatcher. */
bool choreo__dispatch_on_dispatcher(const choreo_service *svc);

#endif
