/* Orchestrated sagas. A definition is a list of stages: a single step, or a
 * TCC group whose tries go out together. An instance is one row of
 * choreo_saga_instances; every reply or timeout the orchestrator applies is
 * handled inside the dispatcher's transaction for that event, so the row,
 * a row of choreo_saga_transitions and the commands it sends commit
 * together with the event's inbox mark, or not at all.
 *
 * The instance's phase says what it waits for:
 *   RUNNING       the replies of stage pos (each of its steps 'P' until
 *                 answered 'D' or 'F'), or its timeout;
 *   CONFIRMING    the confirms of TCC stage pos ('D' until 'K'), resent
 *                 every retry_ms;
 *   COMPENSATING  the compensated reply of step pos ('X'), resent every
 *                 retry_ms; steps are compensated one at a time from the
 *                 highest down;
 *   COMPLETED, FAILED  nothing: it has ended.
 * A timeout carries the epoch of the wait it was armed for; the epoch goes
 * up with every new wait, so a timeout of an older wait is ignored, as is
 * a reply the instance no longer waits for (a late or repeated one). */
#include "orchestrator.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "envelope.h"
#include "extras.h"
#include "status.h"
#include "tx.h"

#define NAME_SIZE 65

enum phase { RUNNING, CONFIRMING, COMPENSATING, COMPLETED, FAILED };
static const char *const phase_names[] = { "RUNNING", "CONFIRMING", "COMPENSATING", "COMPLETED",
                                           "FAILED" };

struct step {
    char name[NAME_SIZE], state[NAME_SIZE];
    char command[NAME_SIZE], success[NAME_SIZE], failure[NAME_SIZE];
    char compensate[NAME_SIZE], compensated[NAME_SIZE];
    char confirm[NAME_SIZE], confirmed[NAME_SIZE];
    int64_t timeout_ms, retry_ms;
    int stage;
};

struct stage {
    int first, n;
    bool tcc;
    char state[NAME_SIZE]; /* reached when the stage is done */
    int64_t timeout_ms;    /* the longest of its steps', 0 when none has one */
};

struct choreo_saga_def {
    choreo_service *svc;
    char name[NAME_SIZE], initial[NAME_SIZE];
    choreo_saga_end_fn on_end;
    void *user;
    struct step steps[CHOREO_SAGA_STEPS_MAX];
    int nsteps;
    struct stage stages[CHOREO_SAGA_STEPS_MAX];
    int nstages;
    struct choreo_saga_def *next;
};

/* One instance, loaded for the event being applied. */
struct inst {
    char saga[CHOREO_SAGA_MAX + 1];
    char definition[NAME_SIZE];
    char state[NAME_SIZE];
    enum phase phase;
    int pos;
    char steps[CHOREO_SAGA_STEPS_MAX + 1];
    int64_t epoch;
    char failed_step[NAME_SIZE];
    bool timed_out;
    char failure_type[NAME_SIZE];
    uint8_t *failure_data;
    size_t failure_len;
    uint8_t *data;
    size_t data_len;
    int64_t started_ms;
    char waiting[256]; /* what it waits for, for people */
    char note[160];    /* what the event did, for the transition row */
};

/* ---- definitions ------------------------------------------------------- */

static bool type_ok(const char *t)
{
    return t && choreo__type_valid(t, strlen(t));
}

static const struct choreo_saga_def *find_def(const choreo_service *svc, const char *name)
{
    for (const struct choreo_saga_def *d = svc->sagas; d; d = d->next)
        if (strcmp(d->name, name) == 0)
            return d;
    return NULL;
}

const char *choreo__saga_owner_of(const choreo_service *svc, const char *type)
{
    if (svc->sagas && strcmp(type, CHOREO_SAGA_TIMEOUT_TYPE) == 0)
        return svc->sagas->name;
    for (const struct choreo_saga_def *d = svc->sagas; d; d = d->next) {
        for (int i = 0; i < d->nsteps; i++) {
            const struct step *s = &d->steps[i];
            if (strcmp(s->success, type) == 0 || strcmp(s->failure, type) == 0 ||
                strcmp(s->compensated, type) == 0 || strcmp(s->confirmed, type) == 0)
                return d->name;
        }
    }
    return NULL;
}

void choreo__sagas_free(choreo_service *svc)
{
    while (svc->sagas) {
        struct choreo_saga_def *d = svc->sagas;
        svc->sagas = d->next;
        free(d);
    }
}

/* Registers the orchestrator's handler for type, unless it has it already. */
static choreo_status own_type(choreo_service *svc, const char *def, const char *type)
{
    for (int i = 0; i < svc->nroutes; i++) {
        if (strcmp(svc->routes[i].type, type) != 0)
            continue;
        if (svc->routes[i].fn == choreo__saga_on_event)
            return CHOREO_OK;
        return choreo__fail(CHOREO_EDUPLICATE,
                            "saga %s: %s already has a handler of the program's own; a reply "
                            "of an orchestrated saga is handled by the orchestrator: give the "
                            "step a reply type of its own",
                            def, type);
    }
    return choreo_service_on(svc, type, choreo__saga_on_event, svc);
}

choreo_status choreo_service_saga(choreo_service *svc, const char *name,
                                  const char *initial_state, choreo_saga_end_fn on_end,
                                  void *user, choreo_saga_def **out)
{
    choreo__clear_error();
    if (!svc || !name || !initial_state || !out)
        return choreo__fail(CHOREO_EINVAL,
                            "choreo_service_saga: svc, name, initial_state and out must not be "
                            "NULL");
    if (svc->started)
        return choreo__fail(CHOREO_ESTATE, "choreo_service_saga(%s): define sagas before start",
                            name);
    if (!choreo__name_valid(name, 64) || !choreo__name_valid(initial_state, 64))
        return choreo__fail(CHOREO_EINVAL,
                            "choreo_service_saga: \"%s\" and \"%s\" must be 1 to 64 characters "
                            "of A-Z a-z 0-9 _ -",
                            name, initial_state);
    if (find_def(svc, name))
        return choreo__fail(CHOREO_EDUPLICATE, "choreo_service_saga: %s is already defined",
                            name);
    struct choreo_saga_def *d = calloc(1, sizeof *d);
    if (!d)
        return choreo__fail(CHOREO_ENOMEM, "out of memory defining a saga");
    choreo_status s = own_type(svc, name, CHOREO_SAGA_TIMEOUT_TYPE);
    if (s != CHOREO_OK) {
        free(d);
        return s;
    }
    d->svc = svc;
    snprintf(d->name, sizeof d->name, "%s", name);
    snprintf(d->initial, sizeof d->initial, "%s", initial_state);
    d->on_end = on_end;
    d->user = user;
    struct choreo_saga_def **tail = &svc->sagas;
    while (*tail)
        tail = &(*tail)->next;
    *tail = d;
    *out = d;
    return CHOREO_OK;
}

/* Copies and checks one step; tcc steps need confirm and compensate. */
static choreo_status take_step(const struct choreo_saga_def *d, const choreo_saga_step_spec *in,
                               bool tcc, struct step *out)
{
    const char *what = in && in->name ? in->name : "(unnamed)";
    if (!in || !in->name || !choreo__name_valid(in->name, 64))
        return choreo__fail(CHOREO_EINVAL,
                            "saga %s: a step needs a name of 1 to 64 characters of A-Z a-z "
                            "0-9 _ -",
                            d->name);
    if (!type_ok(in->command) || !type_ok(in->success))
        return choreo__fail(CHOREO_EINVAL,
                            "saga %s, step %s: command and success must be event types "
                            "(UpperCamel)",
                            d->name, what);
    if ((in->failure && !type_ok(in->failure)) ||
        (in->compensate && !type_ok(in->compensate)) ||
        (in->compensated && !type_ok(in->compensated)) ||
        (in->confirm && !type_ok(in->confirm)) || (in->confirmed && !type_ok(in->confirmed)))
        return choreo__fail(CHOREO_EINVAL, "saga %s, step %s: every type must be an event type "
                            "(UpperCamel)", d->name, what);
    if (!in->compensate != !in->compensated)
        return choreo__fail(CHOREO_EINVAL,
                            "saga %s, step %s: compensate and compensated go together",
                            d->name, what);
    if (tcc && (!in->compensate || !in->confirm || !in->confirmed || !in->failure))
        return choreo__fail(CHOREO_EINVAL,
                            "saga %s, TCC step %s: needs a try (command) with success and "
                            "failure, a cancel (compensate, compensated) and a confirm "
                            "(confirm, confirmed)",
                            d->name, what);
    if (!tcc && (in->confirm || in->confirmed))
        return choreo__fail(CHOREO_EINVAL,
                            "saga %s, step %s: confirm belongs to TCC steps (choreo_saga_tcc)",
                            d->name, what);
    if (in->timeout_ms < 0 || in->retry_ms < 0)
        return choreo__fail(CHOREO_EINVAL, "saga %s, step %s: times must not be negative",
                            d->name, what);
    if (in->state && !choreo__name_valid(in->state, 64))
        return choreo__fail(CHOREO_EINVAL,
                            "saga %s, step %s: state must be 1 to 64 characters of A-Z a-z "
                            "0-9 _ -",
                            d->name, what);
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", in->name);
    if (in->state) {
        snprintf(out->state, sizeof out->state, "%s", in->state);
    } else {
        for (size_t i = 0; in->name[i] && i + 1 < sizeof out->state; i++)
            out->state[i] = in->name[i] == '-' ? '_' : (char)toupper((unsigned char)in->name[i]);
    }
#define COPY(f) snprintf(out->f, sizeof out->f, "%s", in->f ? in->f : "")
    COPY(command);
    COPY(success);
    COPY(failure);
    COPY(compensate);
    COPY(compensated);
    COPY(confirm);
    COPY(confirmed);
#undef COPY
    out->timeout_ms = in->timeout_ms;
    out->retry_ms = in->retry_ms ? in->retry_ms : 30000;
    return CHOREO_OK;
}

/* choreo's own event types begin with this (ChoreoSagaTimeout,
 * ChoreoHoldDecided); a definition's may not. */
#define RESERVED_PREFIX "Choreo"

/* The types of a step by role. The orchestrator consumes the replies, the
 * participants the commands. */
enum { NROLES = 7 };
static const char *const roles[NROLES] = { "command", "success", "failure", "compensate",
                                           "compensated", "confirm", "confirmed" };
static const bool is_reply[NROLES] = { false, true, true, false, true, false, true };

/* One type of a definition where it is used: by which step, in which role. */
struct use {
    const char *type, *step;
    int role;
};

/* Every type of a definition is outside choreo's own, every reply type is
 * distinct, and none is a command: the orchestrator handles each reply
 * type, so a command that is also a reply would come back to it as that
 * reply, and a reply of two meanings could not be told apart. */
static choreo_status check_types(const struct choreo_saga_def *d, const struct step *add, int n)
{
    struct use u[CHOREO_SAGA_STEPS_MAX * NROLES];
    int nu = 0;
    for (int k = 0; k < d->nsteps + n; k++) {
        const struct step *s = k < d->nsteps ? &d->steps[k] : &add[k - d->nsteps];
        const char *const t[NROLES] = { s->command, s->success, s->failure, s->compensate,
                                        s->compensated, s->confirm, s->confirmed };
        for (int r = 0; r < NROLES; r++) {
            if (strncmp(t[r], RESERVED_PREFIX, strlen(RESERVED_PREFIX)) == 0)
                return choreo__fail(CHOREO_EINVAL,
                                    "saga %s, step %s: %s %s begins with " RESERVED_PREFIX
                                    ", which choreo keeps for its own event types (such as "
                                    CHOREO_SAGA_TIMEOUT_TYPE "): give it another name",
                                    d->name, s->name, roles[r], t[r]);
            if (t[r][0])
                u[nu++] = (struct use){ t[r], s->name, r };
        }
    }
    /* Each reply against the replies before it and against every command. */
    for (int a = 0; a < nu; a++) {
        if (!is_reply[u[a].role])
            continue;
        for (int b = 0; b < nu; b++) {
            if ((is_reply[u[b].role] && b >= a) || strcmp(u[a].type, u[b].type) != 0)
                continue;
            if (is_reply[u[b].role])
                return choreo__fail(CHOREO_EINVAL,
                                    "saga %s: %s is the reply of two steps or outcomes (step "
                                    "%s's %s and step %s's %s); each reply type must say one "
                                    "thing",
                                    d->name, u[a].type, u[b].step, roles[u[b].role], u[a].step,
                                    roles[u[a].role]);
            return choreo__fail(CHOREO_EINVAL,
                                "saga %s: %s is step %s's %s and also step %s's %s reply, so the "
                                "orchestrator would take its own command for the reply: give "
                                "the reply a type of its own",
                                d->name, u[a].type, u[b].step, roles[u[b].role], u[a].step,
                                roles[u[a].role]);
        }
    }
    return CHOREO_OK;
}

static choreo_status add_stage(choreo_saga_def *d, const choreo_saga_step_spec *specs, int n,
                               bool tcc, const char *state)
{
    choreo__clear_error();
    if (!d || !specs)
        return choreo__fail(CHOREO_EINVAL, "choreo_saga_step: def and step must not be NULL");
    if (d->svc->started)
        return choreo__fail(CHOREO_ESTATE, "saga %s: add steps before start", d->name);
    if (d->nstages > 0 && d->stages[d->nstages - 1].tcc)
        return choreo__fail(CHOREO_EINVAL,
                            "saga %s: a TCC group's confirms are final, so nothing can come "
                            "after the group: make it the saga's last stage",
                            d->name);
    if (d->nsteps + n > CHOREO_SAGA_STEPS_MAX)
        return choreo__fail(CHOREO_ETOOBIG, "saga %s: at most %d steps", d->name,
                            CHOREO_SAGA_STEPS_MAX);
    struct step add[16];
    for (int i = 0; i < n; i++) {
        choreo_status s = take_step(d, &specs[i], tcc, &add[i]);
        if (s != CHOREO_OK)
            return s;
        for (int j = 0; j < d->nsteps + i; j++)
            if (strcmp(j < d->nsteps ? d->steps[j].name : add[j - d->nsteps].name,
                       add[i].name) == 0)
                return choreo__fail(CHOREO_EDUPLICATE, "saga %s: two steps are named %s",
                                    d->name, add[i].name);
    }
    choreo_status s = check_types(d, add, n);
    for (int i = 0; i < n && s == CHOREO_OK; i++) {
        const char *replies[] = { add[i].success, add[i].failure, add[i].compensated,
                                  add[i].confirmed };
        for (int r = 0; r < 4 && s == CHOREO_OK; r++)
            if (replies[r][0])
                s = own_type(d->svc, d->name, replies[r]);
    }
    if (s != CHOREO_OK)
        return s;
    struct stage *st = &d->stages[d->nstages];
    st->first = d->nsteps;
    st->n = n;
    st->tcc = tcc;
    snprintf(st->state, sizeof st->state, "%s", tcc ? state : add[0].state);
    for (int i = 0; i < n; i++) {
        add[i].stage = d->nstages;
        if (add[i].timeout_ms > st->timeout_ms)
            st->timeout_ms = add[i].timeout_ms;
        d->steps[d->nsteps++] = add[i];
    }
    d->nstages++;
    return CHOREO_OK;
}

choreo_status choreo_saga_step(choreo_saga_def *def, const choreo_saga_step_spec *step)
{
    return add_stage(def, step, 1, false, NULL);
}

choreo_status choreo_saga_tcc(choreo_saga_def *def, const char *state,
                              const choreo_saga_step_spec *steps, int n)
{
    if (def && (n < 2 || n > 16))
        return choreo__fail(CHOREO_EINVAL, "saga %s: a TCC group has 2 to 16 steps, not %d",
                            def->name, n);
    if (def && (!state || !choreo__name_valid(state, 64)))
        return choreo__fail(CHOREO_EINVAL,
                            "saga %s: a TCC group needs the state it reaches, 1 to 64 "
                            "characters of A-Z a-z 0-9 _ -",
                            def->name);
    return add_stage(def, steps, n, true, state);
}

/* ---- the instance's row ------------------------------------------------ */

static void inst_free(struct inst *in)
{
    free(in->data);
    free(in->failure_data);
    in->data = in->failure_data = NULL;
}

static uint8_t *blob_copy(choreo_q *s, int col, size_t *len)
{
    size_t n = (size_t)choreo__q_bytes(s, col);
    const void *b = choreo__q_blob(s, col);
    *len = b ? n : 0;
    if (!b)
        return NULL;
    uint8_t *c = malloc(n ? n : 1);
    if (c)
        memcpy(c, b, n);
    return c;
}

static void text_copy(choreo_q *s, int col, char *out, size_t cap)
{
    const unsigned char *t = choreo__q_text(s, col);
    snprintf(out, cap, "%s", t ? (const char *)t : "");
}

static enum phase phase_of(const char *p)
{
    for (int i = 0; i <= FAILED; i++)
        if (strcmp(phase_names[i], p) == 0)
            return (enum phase)i;
    return FAILED;
}

#define SAGA_GET_SQL \
    "SELECT definition, state, phase, pos, steps, epoch, failed_step, timed_out," \
    " failure_type, failure_data, data, started_at FROM choreo_saga_instances" \
    " WHERE saga = ?1"

/* Loads the instance; *found false when there is none. On PostgreSQL two
 * instances of the service apply events of one saga at once (its replies
 * come through consumers of their own), and under READ COMMITTED both would
 * read the row before either wrote it, the second write undoing the first:
 * FOR UPDATE makes the second wait for the first's commit and read what it
 * wrote. SQLite has one writer at a time from BEGIN on. */
static choreo_status load(choreo_store *st, const char *saga, struct inst *in, bool *found)
{
    choreo_q *s = choreo__store_stmt(st, STMT_SAGA_GET,
                                     st->engine == ENGINE_POSTGRES ? SAGA_GET_SQL " FOR UPDATE"
                                                                   : SAGA_GET_SQL);
    if (!s)
        return CHOREO_ESTORE;
    memset(in, 0, sizeof *in);
    choreo__q_bind_text(s, 1, saga, -1);
    int rc = choreo__q_step(s);
    *found = rc == SQLITE_ROW;
    if (rc == SQLITE_ROW) {
        char phase[16];
        snprintf(in->saga, sizeof in->saga, "%s", saga);
        text_copy(s, 0, in->definition, sizeof in->definition);
        text_copy(s, 1, in->state, sizeof in->state);
        text_copy(s, 2, phase, sizeof phase);
        in->phase = phase_of(phase);
        in->pos = choreo__q_int(s, 3);
        text_copy(s, 4, in->steps, sizeof in->steps);
        in->epoch = choreo__q_int64(s, 5);
        text_copy(s, 6, in->failed_step, sizeof in->failed_step);
        in->timed_out = choreo__q_int(s, 7) != 0;
        text_copy(s, 8, in->failure_type, sizeof in->failure_type);
        in->failure_data = blob_copy(s, 9, &in->failure_len);
        in->data = blob_copy(s, 10, &in->data_len);
        in->started_ms = choreo__q_int64(s, 11);
    }
    choreo__q_reset(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return choreo__store_error(st, rc, "reading a saga instance");
    if (*found && !in->data) {
        inst_free(in);
        return choreo__fail(CHOREO_ENOMEM, "out of memory reading a saga instance");
    }
    return CHOREO_OK;
}

static choreo_status save(choreo_store *st, const struct inst *in, bool insert)
{
    choreo_q *s = insert
        ? choreo__store_stmt(st, STMT_SAGA_INSERT,
              "INSERT INTO choreo_saga_instances(definition, state, phase, pos, steps, epoch,"
              " failed_step, timed_out, failure_type, failure_data, data, started_at,"
              " updated_at, saga, waiting) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10,"
              " ?11, ?12, ?13, ?14, ?15)")
        : choreo__store_stmt(st, STMT_SAGA_UPDATE,
              "UPDATE choreo_saga_instances SET definition = ?1, state = ?2, phase = ?3,"
              " pos = ?4, steps = ?5, epoch = ?6, failed_step = ?7, timed_out = ?8,"
              " failure_type = ?9, failure_data = ?10, data = ?11, started_at = ?12,"
              " updated_at = ?13, waiting = ?15 WHERE saga = ?14");
    if (!s)
        return CHOREO_ESTORE;
    choreo__q_bind_text(s, 1, in->definition, -1);
    choreo__q_bind_text(s, 2, in->state, -1);
    choreo__q_bind_text(s, 3, phase_names[in->phase], -1);
    choreo__q_bind_int(s, 4, in->pos);
    choreo__q_bind_text(s, 5, in->steps, -1);
    choreo__q_bind_int64(s, 6, in->epoch);
    choreo__q_bind_text(s, 7, in->failed_step, -1);
    choreo__q_bind_int(s, 8, in->timed_out);
    choreo__q_bind_text(s, 9, in->failure_type, -1);
    if (in->failure_data)
        choreo__q_bind_blob(s, 10, in->failure_data, (int)in->failure_len);
    choreo__q_bind_blob(s, 11, in->data ? (const void *)in->data : "", (int)in->data_len);
    choreo__q_bind_int64(s, 12, in->started_ms);
    choreo__q_bind_int64(s, 13, choreo__now_ms());
    choreo__q_bind_text(s, 14, in->saga, -1);
    choreo__q_bind_text(s, 15, in->waiting, -1);
    int rc = choreo__q_step(s);
    choreo__q_reset(s);
    if (insert && (rc & 0xff) == SQLITE_CONSTRAINT)
        return choreo__fail(CHOREO_EDUPLICATE, "saga %s already has an instance", in->saga);
    return rc == SQLITE_DONE ? CHOREO_OK
                             : choreo__store_error(st, rc, "writing a saga instance");
}

static choreo_status transition(choreo_store *st, const struct inst *in, const choreo_event *ev,
                                const char *from)
{
    choreo_q *s = choreo__store_stmt(st, STMT_SAGA_TRANSITION,
        "INSERT INTO choreo_saga_transitions(saga, at, event_id, event_type, from_state,"
        " to_state, note) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    if (!s)
        return CHOREO_ESTORE;
    choreo__q_bind_text(s, 1, in->saga, -1);
    choreo__q_bind_int64(s, 2, choreo__now_ms());
    choreo__q_bind_text(s, 3, ev ? ev->id : "", -1);
    choreo__q_bind_text(s, 4, ev ? ev->type : "", -1);
    choreo__q_bind_text(s, 5, from, -1);
    choreo__q_bind_text(s, 6, in->state, -1);
    choreo__q_bind_text(s, 7, in->note, -1);
    int rc = choreo__q_step(s);
    choreo__q_reset(s);
    return rc == SQLITE_DONE ? CHOREO_OK
                             : choreo__store_error(st, rc, "writing a saga transition");
}

/* Writes what the instance waits for into in->waiting. */
static void describe(const struct choreo_saga_def *d, struct inst *in)
{
    size_t n = 0;
    in->waiting[0] = '\0';
    if (in->phase == COMPLETED || in->phase == FAILED)
        return;
    if (in->phase == COMPENSATING) {
        snprintf(in->waiting, sizeof in->waiting, "%s of %s", d->steps[in->pos].compensated,
                 d->steps[in->pos].name);
        return;
    }
    const struct stage *st = &d->stages[in->pos];
    char want = in->phase == CONFIRMING ? 'D' : 'P';
    for (int i = st->first; i < st->first + st->n && n < sizeof in->waiting; i++) {
        if (in->steps[i] != want)
            continue;
        const struct step *s = &d->steps[i];
        n += (size_t)snprintf(in->waiting + n, sizeof in->waiting - n, "%s%s of %s",
                              n ? ", " : "", in->phase == CONFIRMING ? s->confirmed : s->success,
                              s->name);
    }
}

/* ---- moving an instance on --------------------------------------------- */

static choreo_status send(choreo_tx *tx, const struct inst *in, const char *type)
{
    return choreo_tx_emit(tx, type, 1, in->saga, in->data, in->data_len, NULL);
}

/* Starts a new wait and, when it has a limit, its timeout event. */
static choreo_status arm(choreo_tx *tx, const struct choreo_saga_def *d, struct inst *in,
                         int64_t after_ms)
{
    in->epoch++;
    if (after_ms <= 0)
        return CHOREO_OK;
    uint8_t buf[160];
    choreo_mp_writer w = { .buf = buf, .cap = sizeof buf, .max = sizeof buf };
    choreo_mp_write_map(&w, 3);
    choreo_mp_write_cstr(&w, "service");
    choreo_mp_write_cstr(&w, d->svc->cfg->service);
    choreo_mp_write_cstr(&w, "definition");
    choreo_mp_write_cstr(&w, d->name);
    choreo_mp_write_cstr(&w, "epoch");
    choreo_mp_write_int(&w, in->epoch);
    if (choreo_mp_writer_status(&w) != CHOREO_OK)
        return choreo__fail(CHOREO_ETOOBIG, "saga %s: the timeout's data is too large", d->name);
    return choreo_tx_emit_after(tx, after_ms, CHOREO_SAGA_TIMEOUT_TYPE, 1, in->saga, w.buf,
                                w.len, NULL);
}

static choreo_status start_stage(choreo_tx *tx, const struct choreo_saga_def *d,
                                 struct inst *in, int k)
{
    const struct stage *st = &d->stages[k];
    in->phase = RUNNING;
    in->pos = k;
    choreo_status s = CHOREO_OK;
    for (int i = st->first; i < st->first + st->n && s == CHOREO_OK; i++) {
        in->steps[i] = 'P';
        s = send(tx, in, d->steps[i].command);
    }
    return s == CHOREO_OK ? arm(tx, d, in, st->timeout_ms) : s;
}

static choreo_result end(choreo_tx *tx, const struct choreo_saga_def *d, struct inst *in,
                         bool completed)
{
    in->phase = completed ? COMPLETED : FAILED;
    snprintf(in->state, sizeof in->state, "%s", completed ? "COMPLETED" : "FAILED");
    in->epoch++;
    if (!d->on_end)
        return CHOREO_DONE;
    choreo_saga_info info = {
        .saga = in->saga, .definition = d->name, .completed = completed,
        .failed_step = completed ? NULL : in->failed_step, .timed_out = in->timed_out,
        .failure_type = in->failure_type, .failure_data = in->failure_data,
        .failure_len = in->failure_len, .data = in->data, .data_len = in->data_len,
        .started_ms = in->started_ms,
    };
    return d->on_end(tx, &info, d->user);
}

/* Sends the compensation of the highest step below pos that needs one, or
 * ends the instance FAILED when none is left. */
static choreo_result next_compensation(choreo_tx *tx, const struct choreo_saga_def *d,
                                       struct inst *in, const choreo_event *ev)
{
    for (int j = in->pos - 1; j >= 0; j--) {
        char st = in->steps[j];
        if (!d->steps[j].compensate[0] || (st != 'D' && st != 'P' && st != 'T'))
            continue;
        in->pos = j;
        in->steps[j] = 'X';
        if (send(tx, in, d->steps[j].compensate) != CHOREO_OK ||
            arm(tx, d, in, d->steps[j].retry_ms) != CHOREO_OK)
            return CHOREO_RETRY;
        return CHOREO_DONE;
    }
    in->pos = 0;
    return end(tx, d, in, false);
}

static choreo_result begin_compensation(choreo_tx *tx, const struct choreo_saga_def *d,
                                        struct inst *in, const choreo_event *ev)
{
    in->phase = COMPENSATING;
    snprintf(in->state, sizeof in->state, "COMPENSATING");
    in->pos = d->nsteps;
    return next_compensation(tx, d, in, ev);
}

static bool stage_all(const struct stage *st, const struct inst *in, char want)
{
    for (int i = st->first; i < st->first + st->n; i++)
        if (in->steps[i] != want)
            return false;
    return true;
}

/* The stage pos is done: the next one, or the end. */
static choreo_result stage_done(choreo_tx *tx, const struct choreo_saga_def *d, struct inst *in,
                                const choreo_event *ev)
{
    snprintf(in->state, sizeof in->state, "%s", d->stages[in->pos].state);
    choreo__extras_crash(&tx->svc->extras, CP_ORCH_AFTER_REPLY);
    if (in->pos + 1 < d->nstages)
        return start_stage(tx, d, in, in->pos + 1) == CHOREO_OK ? CHOREO_DONE : CHOREO_RETRY;
    return end(tx, d, in, true);
}

static choreo_result confirm_stage(choreo_tx *tx, const struct choreo_saga_def *d,
                                   struct inst *in)
{
    const struct stage *st = &d->stages[in->pos];
    int64_t retry = 0;
    in->phase = CONFIRMING;
    for (int i = st->first; i < st->first + st->n; i++) {
        if (in->steps[i] != 'D')
            continue;
        if (send(tx, in, d->steps[i].confirm) != CHOREO_OK)
            return CHOREO_RETRY;
        if (!retry || d->steps[i].retry_ms < retry)
            retry = d->steps[i].retry_ms;
    }
    return arm(tx, d, in, retry) == CHOREO_OK ? CHOREO_DONE : CHOREO_RETRY;
}

enum reply { R_SUCCESS, R_FAILURE, R_COMPENSATED, R_CONFIRMED, R_NONE };

static enum reply reply_of(const struct choreo_saga_def *d, const char *type, int *step)
{
    for (int i = 0; i < d->nsteps; i++) {
        const struct step *s = &d->steps[i];
        *step = i;
        if (strcmp(s->success, type) == 0)
            return R_SUCCESS;
        if (s->failure[0] && strcmp(s->failure, type) == 0)
            return R_FAILURE;
        if (s->compensated[0] && strcmp(s->compensated, type) == 0)
            return R_COMPENSATED;
        if (s->confirmed[0] && strcmp(s->confirmed, type) == 0)
            return R_CONFIRMED;
    }
    return R_NONE;
}

/* A reply; *moved is false when the instance does not wait for it. */
static choreo_result apply_reply(choreo_tx *tx, const struct choreo_saga_def *d,
                                 struct inst *in, const choreo_event *ev, bool *moved)
{
    int i = 0;
    enum reply r = reply_of(d, ev->type, &i);
    const struct step *s = &d->steps[i];
    *moved = false;
    if ((r == R_SUCCESS || r == R_FAILURE) && in->phase == RUNNING && s->stage == in->pos &&
        in->steps[i] == 'P') {
        *moved = true;
        const struct stage *st = &d->stages[in->pos];
        if (r == R_FAILURE) {
            in->steps[i] = 'F';
            snprintf(in->failed_step, sizeof in->failed_step, "%s", s->name);
            snprintf(in->failure_type, sizeof in->failure_type, "%s", ev->type);
            free(in->failure_data);
            in->failure_data = malloc(ev->data_len ? ev->data_len : 1);
            if (!in->failure_data)
                return CHOREO_RETRY;
            memcpy(in->failure_data, ev->data, ev->data_len);
            in->failure_len = ev->data_len;
            snprintf(in->note, sizeof in->note, "%s failed: compensating", s->name);
            choreo__extras_crash(&tx->svc->extras, CP_ORCH_AFTER_REPLY);
            return begin_compensation(tx, d, in, ev);
        }
        in->steps[i] = 'D';
        snprintf(in->note, sizeof in->note, "%s done", s->name);
        if (!stage_all(st, in, 'D'))
            return CHOREO_DONE; /* the group's other tries are still out */
        if (st->tcc) {
            snprintf(in->note, sizeof in->note, "%s done: every try succeeded, confirming",
                     s->name);
            choreo__extras_crash(&tx->svc->extras, CP_ORCH_AFTER_REPLY);
            return confirm_stage(tx, d, in);
        }
        return stage_done(tx, d, in, ev);
    }
    if (r == R_CONFIRMED && in->phase == CONFIRMING && s->stage == in->pos &&
        in->steps[i] == 'D') {
        *moved = true;
        in->steps[i] = 'K';
        snprintf(in->note, sizeof in->note, "%s confirmed", s->name);
        return stage_all(&d->stages[in->pos], in, 'K') ? stage_done(tx, d, in, ev)
                                                        : CHOREO_DONE;
    }
    if (r == R_COMPENSATED && in->phase == COMPENSATING && in->pos == i && in->steps[i] == 'X') {
        *moved = true;
        in->steps[i] = 'C';
        snprintf(in->note, sizeof in->note, "%s compensated", s->name);
        choreo_result res = next_compensation(tx, d, in, ev);
        if (res == CHOREO_DONE && in->phase == COMPENSATING)
            choreo__extras_crash(&tx->svc->extras, CP_ORCH_BETWEEN_COMPENSATIONS);
        return res;
    }
    return CHOREO_DONE;
}

/* A timeout of the current wait. */
static choreo_result apply_timeout(choreo_tx *tx, const struct choreo_saga_def *d,
                                   struct inst *in, const choreo_event *ev, bool *moved)
{
    choreo_mp_reader r;
    choreo_mp_reader_init(&r, ev->data, ev->data_len);
    uint32_t n = 0;
    int64_t epoch = -1;
    if (choreo_mp_read_map(&r, &n) != CHOREO_OK)
        return CHOREO_REJECT;
    for (uint32_t k = 0; k < n; k++) {
        const char *key;
        uint32_t klen;
        if (choreo_mp_read_str(&r, &key, &klen) != CHOREO_OK)
            return CHOREO_REJECT;
        const char *v;
        uint32_t vlen;
        if (klen == 5 && memcmp(key, "epoch", 5) == 0) {
            if (choreo_mp_read_int(&r, &epoch) != CHOREO_OK)
                return CHOREO_REJECT;
        } else if (klen == 7 && memcmp(key, "service", 7) == 0) {
            if (choreo_mp_read_str(&r, &v, &vlen) != CHOREO_OK)
                return CHOREO_REJECT;
            const char *me = tx->svc->cfg->service;
            if (vlen != strlen(me) || memcmp(v, me, vlen) != 0)
                return CHOREO_DONE; /* another orchestrator's timeout: not ours */
        } else if (choreo_mp_skip(&r, 4) != CHOREO_OK) {
            return CHOREO_REJECT;
        }
    }
    *moved = epoch == in->epoch;
    if (!*moved)
        return CHOREO_DONE; /* the timeout of a wait that is over */
    if (in->phase == RUNNING) {
        const struct stage *st = &d->stages[in->pos];
        for (int i = st->first; i < st->first + st->n; i++) {
            if (in->steps[i] != 'P')
                continue;
            in->steps[i] = 'T';
            if (!in->timed_out) {
                in->timed_out = true;
                snprintf(in->failed_step, sizeof in->failed_step, "%s", d->steps[i].name);
            }
        }
        in->failure_type[0] = '\0';
        snprintf(in->note, sizeof in->note, "%s timed out: compensating", in->failed_step);
        return begin_compensation(tx, d, in, ev);
    }
    if (in->phase == CONFIRMING) {
        snprintf(in->note, sizeof in->note, "confirms unanswered: sent again");
        return confirm_stage(tx, d, in);
    }
    if (in->phase == COMPENSATING) {
        const struct step *s = &d->steps[in->pos];
        snprintf(in->note, sizeof in->note, "%s's compensation unanswered: sent again", s->name);
        return send(tx, in, s->compensate) == CHOREO_OK && arm(tx, d, in, s->retry_ms) ==
                   CHOREO_OK ? CHOREO_DONE : CHOREO_RETRY;
    }
    *moved = false;
    return CHOREO_DONE;
}

choreo_result choreo__saga_on_event(choreo_tx *tx, const choreo_event *ev, void *user)
{
    choreo_service *svc = user;
    struct inst in;
    bool found = false;
    if (load(tx->st, ev->saga, &in, &found) != CHOREO_OK) {
        choreo_tx_set_reason(tx, choreo_last_error());
        return CHOREO_RETRY;
    }
    if (!found) {
        /* Another service's saga, or one of this type's events outside any
         * orchestrated saga: not this orchestrator's business. */
        CHOREO_LOG(&svc->log, CHOREO_LOG_DEBUG, "no saga instance for this event; ignored",
                   "saga=%s type=%s event=%s", ev->saga, ev->type, ev->id);
        return CHOREO_DONE;
    }
    const struct choreo_saga_def *d = find_def(svc, in.definition);
    if (!d || (int)strlen(in.steps) != d->nsteps) {
        char why[300];
        snprintf(why, sizeof why,
                 "saga instance %s belongs to definition %s, which this service's code %s", in.saga,
                 in.definition, d ? "defines with another number of steps" : "does not define");
        choreo_tx_set_reason(tx, why);
        inst_free(&in);
        return CHOREO_REJECT;
    }
    char from[NAME_SIZE];
    snprintf(from, sizeof from, "%s", in.state);
    bool moved = false;
    choreo_result res = CHOREO_DONE;
    if (in.phase != COMPLETED && in.phase != FAILED)
        res = strcmp(ev->type, CHOREO_SAGA_TIMEOUT_TYPE) == 0
                  ? apply_timeout(tx, d, &in, ev, &moved)
                  : apply_reply(tx, d, &in, ev, &moved);
    if (res == CHOREO_DONE && moved)
        describe(d, &in);
    if (res == CHOREO_DONE && moved &&
        (save(tx->st, &in, false) != CHOREO_OK || transition(tx->st, &in, ev, from) != CHOREO_OK)) {
        choreo_tx_set_reason(tx, choreo_last_error());
        res = CHOREO_RETRY;
    }
    if (res == CHOREO_DONE && !moved)
        CHOREO_LOG(&svc->log, CHOREO_LOG_DEBUG, "saga event not waited for; ignored",
                   "saga=%s type=%s phase=%s", ev->saga, ev->type, phase_names[in.phase]);
    inst_free(&in);
    return res;
}

/* Writes a new instance's row and first transition and sends its first
 * stage; a failure may leave some of that written. */
static choreo_status start_instance(choreo_tx *tx, const struct choreo_saga_def *d,
                                    const char *saga, const void *data, size_t data_len)
{
    struct inst in;
    memset(&in, 0, sizeof in);
    snprintf(in.saga, sizeof in.saga, "%s", saga);
    snprintf(in.definition, sizeof in.definition, "%s", d->name);
    snprintf(in.state, sizeof in.state, "%s", d->initial);
    memset(in.steps, '-', (size_t)d->nsteps);
    in.started_ms = choreo__now_ms();
    in.data = (uint8_t *)data;
    in.data_len = data_len;
    snprintf(in.note, sizeof in.note, "started");
    choreo_status s = save(tx->st, &in, true);
    if (s == CHOREO_OK)
        s = transition(tx->st, &in, NULL, "");
    if (s == CHOREO_OK)
        s = start_stage(tx, d, &in, 0);
    if (s == CHOREO_OK) {
        describe(d, &in);
        s = save(tx->st, &in, false);
    }
    return s;
}

choreo_status choreo_tx_saga_start(choreo_tx *tx, const char *def, const char *saga,
                                   const void *data, size_t data_len)
{
    choreo__clear_error();
    if (!tx || !def || !saga || (data_len && !data))
        return choreo__fail(CHOREO_EINVAL,
                            "choreo_tx_saga_start: tx, def and saga must not be NULL, nor data "
                            "when data_len is not 0");
    const struct choreo_saga_def *d = find_def(tx->svc, def);
    if (!d)
        return choreo__fail(CHOREO_ENOTFOUND,
                            "choreo_tx_saga_start: service %s defines no saga %s "
                            "(choreo_service_saga)",
                            tx->svc->cfg->service, def);
    if (d->nstages == 0)
        return choreo__fail(CHOREO_EINVAL, "choreo_tx_saga_start: saga %s has no steps", def);
    if (!choreo__saga_valid(saga, strlen(saga)))
        return choreo__fail(CHOREO_EINVAL,
                            "choreo_tx_saga_start: saga id \"%.64s\" is not 1 to 64 characters "
                            "of A-Z a-z 0-9 _ -",
                            saga);
    /* The row is written before the commands that check the data, and a
     * TCC group's later try can fail after its siblings' rows: a savepoint
     * takes back whatever was written, as a failed choreo_tx_emit leaves
     * nothing, so that the caller can correct the call and go on in the
     * same transaction. On PostgreSQL it also lifts the abort that a
     * failed statement (a saga id in use) puts on the transaction. */
    choreo_tx_mark mark = choreo__tx_mark(tx);
    choreo_status s = choreo__store_call_savepoint(tx->st);
    if (s != CHOREO_OK)
        return choreo__fail(s, "choreo_tx_saga_start: starting saga %s, instance %s: %s",
                            d->name, saga, choreo_last_error());
    s = start_instance(tx, d, saga, data, data_len);
    if (s == CHOREO_OK)
        s = choreo__store_call_release(tx->st);
    if (s == CHOREO_OK)
        return CHOREO_OK;
    char why[1024];
    snprintf(why, sizeof why, "%s", choreo_last_error());
    choreo__tx_undo(tx, mark);
    bool undone = choreo__store_call_rollback_to(tx->st) == CHOREO_OK;
    return choreo__fail(s, "choreo_tx_saga_start: starting saga %s, instance %s: %s%s", d->name,
                        saga, why,
                        undone ? "" : "; what it wrote could not be taken back: roll the "
                                      "transaction back");
}
