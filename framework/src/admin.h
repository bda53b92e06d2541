/* The admin handle, shared by the repair of parked messages (admin.c) and
 * the listing of durable consumers (consumers.c). */
#ifndef CHOREO_ADMIN_H
#define CHOREO_ADMIN_H

#include "config.h"
#include "log.h"
#include "store.h"
#include "transport.h"

struct choreo_admin {
    choreo_config *cfg;
    choreo_store *st;
    choreo_logger log;
    choreo_nats_watch watch;
};

/* Connects to NATS for one command, waiting up to connect_wait_ms (5 s
 * when that is 0). Close *out with choreo__transport_close. */
choreo_status choreo__admin_connect(choreo_admin *adm, choreo_transport **out);

/* Copies text column col of s into dst (cap bytes); "" for NULL. */
void choreo__admin_copy_text(char *dst, size_t cap, choreo_q *s, int col);

#endif
