/* The audit trail (setting audit=on): every emitted and every applied event
 * recorded in the same transaction as the work itself. */
#ifndef CHOREO_AUDIT_H
#define CHOREO_AUDIT_H

#include "store.h"

choreo_status choreo__audit_emitted(choreo_store *st, const char *event_id, const char *type,
                                    const char *saga, int64_t now_ms);
choreo_status choreo__audit_applied(choreo_store *st, const char *consumer, const char *type,
                                    const char *event_id, const char *saga, int64_t now_ms);

#endif
