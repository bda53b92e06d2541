/* The relay: publishes committed outbox rows to JetStream. */
#ifndef CHOREO_RELAY_H
#define CHOREO_RELAY_H

#include "service.h"

/* Opens the relay's own SQLite connection. The thread starts with
 * choreo__relay_start once the transport is connected. */
choreo_status choreo__relay_create(choreo_relay **out, choreo_service *svc);
choreo_status choreo__relay_start(choreo_relay *r);
/* Wakes the relay after a commit that wrote outbox rows. Any thread. */
void choreo__relay_wake(choreo_relay *r);
/* Wakes the relay after a commit, handing it copies of the rows the commit
 * wrote (rows is left empty). Call it only after the commit succeeded: the
 * relay may publish these copies without reading the table. Any thread. */
void choreo__relay_hand(choreo_relay *r, choreo_outbox_copies *rows);
/* Joins the thread (after svc->stop is set). */
void choreo__relay_join(choreo_relay *r);
void choreo__relay_destroy(choreo_relay *r);

#endif
