/* The admin handle, shared by the repair of parked messages (admin.c) and
 * the listing of durable consumers (consumers.c). */
#ifndef CHOREO_ADMIN_H
#define CHOREO_ADMIN_H

#include "config.h"
#include "faults.h"
#include "log.h"
#include "store.h"
#include "transport.h"

struct choreo_admin {
    choreo_config *cfg;
    choreo_store *st;
    choreo_logger log;
    choreo_nats_watch watch;
    int schema;      /* the database's choreo schema version: older ones lack tables */
    bool readonly;   /* choreo_admin_open_readonly: nothing may be written */
    choreo_crashpoints crash; /* CHOREO_CRASHPOINTS: retry_after_publish */
};

/* CHOREO_OK, or why a handle of choreo_admin_open_readonly may not do
 * what (a retry would publish and then fail to mark the row). */
choreo_status choreo__admin_writable(const choreo_admin *adm, const char *what);

/* A handle with a copy of cfg and its logger, and no database yet. */
choreo_status choreo__admin_new(const choreo_config *cfg, choreo_admin **out);

/* Connects to NATS for one command, waiting up to connect_wait_ms (5 s
 * when that is 0). Close *out with choreo__transport_close. */
choreo_status choreo__admin_connect(choreo_admin *adm, choreo_transport **out);

/* Copies text column col of s into dst (cap bytes); "" for NULL. */
void choreo__admin_copy_text(char *dst, size_t cap, choreo_q *s, int col);

#endif
