/* Orchestrated sagas: definitions registered on a service, and the state
 * machine that moves their instances on as replies and timeouts arrive. */
#ifndef CHOREO_ORCHESTRATOR_H
#define CHOREO_ORCHESTRATOR_H

#include "choreo.h"
#include "store.h"

/* Most steps of one definition, and so the letters of its status string. */
#define CHOREO_SAGA_STEPS_MAX 32

/* The event type of the orchestrator's timeouts. */
#define CHOREO_SAGA_TIMEOUT_TYPE "ChoreoSagaTimeout"

/* The handler of every reply type and of the timeouts (user: the service). */
choreo_result choreo__saga_on_event(choreo_tx *tx, const choreo_event *ev, void *user);

/* Frees every definition of svc (at destroy). */
void choreo__sagas_free(choreo_service *svc);

/* The definition whose reply (or timeout) type is, or NULL, so that
 * choreo_service_on can say so when the program registers it too. */
const char *choreo__saga_owner_of(const choreo_service *svc, const char *type);

/* Calls fn for each (definition, phase) of the instances that have not
 * ended, with their count. */
choreo_status choreo__sagas_running(choreo_store *st,
                                    void (*fn)(const char *definition, const char *phase,
                                               int64_t count, void *user),
                                    void *user);

#endif
