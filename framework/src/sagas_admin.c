/* Reading orchestrated saga instances and their transitions, for
 * operators and choreoctl (choreo_admin_sagas, choreo_admin_saga). */
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "orchestrator.h"
#include "status.h"

#define ENTRY_COLUMNS                                                                       \
    "saga, definition, state, phase, waiting, steps, failed_step, started_at, updated_at,"  \
    " (SELECT COUNT(*) FROM choreo_saga_transitions t WHERE t.saga = i.saga)"

static void read_entry(choreo_q *s, choreo_saga_entry *e)
{
    memset(e, 0, sizeof *e);
    choreo__admin_copy_text(e->saga, sizeof e->saga, s, 0);
    choreo__admin_copy_text(e->definition, sizeof e->definition, s, 1);
    choreo__admin_copy_text(e->state, sizeof e->state, s, 2);
    choreo__admin_copy_text(e->phase, sizeof e->phase, s, 3);
    choreo__admin_copy_text(e->position, sizeof e->position, s, 4);
    choreo__admin_copy_text(e->steps, sizeof e->steps, s, 5);
    choreo__admin_copy_text(e->failed_step, sizeof e->failed_step, s, 6);
    e->started_ms = choreo__q_int64(s, 7);
    e->updated_ms = choreo__q_int64(s, 8);
    e->transitions = choreo__q_int64(s, 9);
}

choreo_status choreo_admin_sagas(choreo_admin *adm, const char *state, size_t limit,
                                 choreo_saga_entry **out, size_t *n)
{
    if (!adm || !out || !n)
        return choreo__fail(CHOREO_EINVAL, "choreo_admin_sagas: NULL argument");
    /* A database from before orchestration (read-only handles open one
     * without migrating it) has no instances. */
    if (adm->schema < CHOREO_SCHEMA_SAGAS) {
        *out = NULL;
        *n = 0;
        return CHOREO_OK;
    }
    choreo_q *s;
    int rc = choreo__q_prepare(adm->st, "SELECT " ENTRY_COLUMNS " FROM choreo_saga_instances i"
                                " WHERE CAST(?1 AS TEXT) IS NULL OR state = ?1 OR phase = ?1"
                                " ORDER BY started_at DESC, saga DESC LIMIT ?2", &s);
    if (rc != SQLITE_OK)
        return choreo__store_error(adm->st, rc, "listing saga instances");
    choreo__q_bind_text(s, 1, state, -1);
    /* No limit is the largest one: PostgreSQL refuses SQLite's -1. */
    choreo__q_bind_int64(s, 2, limit ? (int64_t)limit : INT64_MAX);
    choreo_saga_entry *list = NULL;
    size_t count = 0, cap = 0;
    while ((rc = choreo__q_step(s)) == SQLITE_ROW) {
        if (count == cap) {
            cap = cap ? cap * 2 : 16;
            choreo_saga_entry *grown = realloc(list, cap * sizeof *list);
            if (!grown) {
                free(list);
                choreo__q_finalize(s);
                return choreo__fail(CHOREO_ENOMEM, "out of memory listing saga instances");
            }
            list = grown;
        }
        read_entry(s, &list[count++]);
    }
    choreo__q_finalize(s);
    if (rc != SQLITE_DONE) {
        free(list);
        return choreo__store_error(adm->st, rc, "listing saga instances");
    }
    *out = list;
    *n = count;
    return CHOREO_OK;
}

choreo_status choreo_admin_saga(choreo_admin *adm, const char *saga, choreo_saga_entry *out,
                                choreo_saga_transition **trans, size_t *n)
{
    if (!adm || !saga || !out || !trans || !n)
        return choreo__fail(CHOREO_EINVAL, "choreo_admin_saga: NULL argument");
    if (adm->schema < CHOREO_SCHEMA_SAGAS)
        return choreo__fail(CHOREO_ENOTFOUND, "no orchestrated saga %s in this database (it is "
                            "from before orchestration)", saga);
    choreo_q *s;
    int rc = choreo__q_prepare(adm->st, "SELECT " ENTRY_COLUMNS " FROM choreo_saga_instances i"
                                " WHERE saga = ?1", &s);
    if (rc != SQLITE_OK)
        return choreo__store_error(adm->st, rc, "reading a saga instance");
    choreo__q_bind_text(s, 1, saga, -1);
    rc = choreo__q_step(s);
    choreo_saga_entry e;
    if (rc == SQLITE_ROW)
        read_entry(s, &e);
    choreo__q_finalize(s);
    if (rc == SQLITE_DONE)
        return choreo__fail(CHOREO_ENOTFOUND, "no orchestrated saga %s in this database", saga);
    if (rc != SQLITE_ROW)
        return choreo__store_error(adm->st, rc, "reading a saga instance");
    rc = choreo__q_prepare(adm->st, "SELECT at, event_id, event_type, from_state, to_state, note"
                            " FROM choreo_saga_transitions WHERE saga = ?1 ORDER BY id", &s);
    if (rc != SQLITE_OK)
        return choreo__store_error(adm->st, rc, "reading saga transitions");
    choreo__q_bind_text(s, 1, saga, -1);
    choreo_saga_transition *list = NULL;
    size_t count = 0, cap = 0;
    while ((rc = choreo__q_step(s)) == SQLITE_ROW) {
        if (count == cap) {
            cap = cap ? cap * 2 : 16;
            choreo_saga_transition *grown = realloc(list, cap * sizeof *list);
            if (!grown) {
                free(list);
                choreo__q_finalize(s);
                return choreo__fail(CHOREO_ENOMEM, "out of memory reading saga transitions");
            }
            list = grown;
        }
        choreo_saga_transition *t = &list[count++];
        memset(t, 0, sizeof *t);
        t->at_ms = choreo__q_int64(s, 0);
        choreo__admin_copy_text(t->event_id, sizeof t->event_id, s, 1);
        choreo__admin_copy_text(t->event_type, sizeof t->event_type, s, 2);
        choreo__admin_copy_text(t->from, sizeof t->from, s, 3);
        choreo__admin_copy_text(t->to, sizeof t->to, s, 4);
        choreo__admin_copy_text(t->note, sizeof t->note, s, 5);
    }
    choreo__q_finalize(s);
    if (rc != SQLITE_DONE) {
        free(list);
        return choreo__store_error(adm->st, rc, "reading saga transitions");
    }
    *out = e;
    *trans = list;
    *n = count;
    return CHOREO_OK;
}

choreo_status choreo__sagas_running(choreo_store *st,
                                    void (*fn)(const char *definition, const char *phase,
                                               int64_t count, void *user),
                                    void *user)
{
    return choreo__store_counts(st, STMT_SAGAS_RUNNING,
                                "SELECT definition, phase, COUNT(*) FROM choreo_saga_instances"
                                " WHERE phase NOT IN ('COMPLETED', 'FAILED') GROUP BY 1, 2"
                                " ORDER BY 1, 2",
                                NULL, fn, user, "counting running sagas");
}
