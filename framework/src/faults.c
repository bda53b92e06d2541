/* Crash points and injected faults for tests and the chaos harness. A point
 * or fault fires with its configured probability, drawn from a seeded
 * counter-based generator so a run can be repeated; a crash point raises
 * SIGKILL so nothing is flushed or cleaned up, exactly as when an operator
 * or the kernel kills the process. Every firing writes one line to stderr,
 * which the chaos harness counts. */
#include "faults.h"

#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "status.h"

static const char *const names[CP_COUNT] = {
    "after_commit_before_ack", "after_commit_before_publish", "after_publish_before_mark",
    "inside_batch",            "inside_mark",                 "between_fetch_and_dispatch",
    "last_delivery",           "orchestrator_after_reply",    "orchestrator_between_compensations",
    "after_committer_send",    "retry_after_publish",
};

const char *choreo__crashpoint_name(choreo_crashpoint_id id)
{
    return id < CP_COUNT ? names[id] : "unknown";
}

static uint64_t run_seed(void)
{
    const char *seed = getenv("CHOREO_CRASH_SEED");
    return (seed ? strtoull(seed, NULL, 10) : 0) * 0x9e3779b97f4a7c15ULL + (uint64_t)getpid();
}

choreo_status choreo__crashpoints_load(choreo_crashpoints *cp)
{
    memset(cp, 0, sizeof *cp);
    /* The PID is mixed in so that a restarted process does not crash at the
     * very same draw again and again: a run is repeatable in its seed and
     * its probabilities, not down to the draw. */
    cp->seed = run_seed();
    const char *spec = getenv("CHOREO_CRASHPOINTS");
    if (!spec || !*spec)
        return CHOREO_OK;
    char *copy = strdup(spec);
    if (!copy)
        return choreo__fail(CHOREO_ENOMEM, "out of memory reading CHOREO_CRASHPOINTS");
    choreo_status s = CHOREO_OK;
    for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok && s == CHOREO_OK;
         tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        double p = 1.0;
        if (eq) {
            *eq = '\0';
            char *end;
            p = strtod(eq + 1, &end);
            if (*end || p < 0 || p > 1) {
                s = choreo__fail(CHOREO_ECONFIG,
                                 "CHOREO_CRASHPOINTS: probability of %s must be from 0 to 1", tok);
                break;
            }
        }
        int id = -1;
        for (int i = 0; i < CP_COUNT; i++)
            if (strcmp(names[i], tok) == 0)
                id = i;
        if (id < 0) {
            char known[512] = "";
            for (int i = 0, len = 0; i < CP_COUNT && len < (int)sizeof known; i++)
                len += snprintf(known + len, sizeof known - (size_t)len, "%s%s",
                                i ? ", " : "", names[i]);
            s = choreo__fail(CHOREO_ECONFIG,
                             "CHOREO_CRASHPOINTS: unknown point \"%s\"; known points: %s", tok,
                             known);
            break;
        }
        cp->probability[id] = p;
        cp->any = cp->any || p > 0;
    }
    free(copy);
    return s;
}

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* A uniform number in [0, 1) from the seed and the n-th draw. */
static double draw(uint64_t seed, atomic_uint_fast64_t *draws)
{
    uint64_t n = atomic_fetch_add(draws, 1);
    return (double)(splitmix64(seed ^ (n * 0x2545F4914F6CDD1DULL)) >> 11) / 9007199254740992.0;
}

static void say_fired(const char *what, const char *name)
{
    char line[128];
    int len = snprintf(line, sizeof line, "choreo: %s %s fired (pid %d)\n", what, name,
                       (int)getpid());
    if (len > 0)
        (void)!write(STDERR_FILENO, line, (size_t)len);
}

void choreo__crashpoint(choreo_crashpoints *cp, choreo_crashpoint_id id)
{
    if (!cp->any || cp->probability[id] <= 0)
        return;
    if (draw(cp->seed, &cp->draws) >= cp->probability[id])
        return;
    say_fired("crash point", names[id]);
    kill(getpid(), SIGKILL);
    _exit(137);
}

/* One "name=value" item of CHOREO_FAULTS. */
static choreo_status fault_item(choreo_faults *f, const char *name, const char *value)
{
    static const struct {
        const char *name;
        bool probability;
        size_t off;
    } items[] = {
        { "disk_full", true, offsetof(choreo_faults, disk_full) },
        { "disk_full_ms", false, offsetof(choreo_faults, disk_full_ms) },
        { "slow_handler", true, offsetof(choreo_faults, slow_handler) },
        { "slow_handler_ms", false, offsetof(choreo_faults, slow_handler_ms) },
        { "retry_until_last", true, offsetof(choreo_faults, retry_until_last) },
        { "mark_fail", true, offsetof(choreo_faults, mark_fail) },
    };
    for (size_t i = 0; i < sizeof items / sizeof items[0]; i++) {
        if (strcmp(items[i].name, name) != 0)
            continue;
        char *end;
        if (items[i].probability) {
            double p = strtod(value, &end);
            if (*end || end == value || p < 0 || p > 1)
                return choreo__fail(CHOREO_ECONFIG,
                                    "CHOREO_FAULTS: %s takes a probability from 0 to 1, not "
                                    "\"%s\"", name, value);
            *(double *)((char *)f + items[i].off) = p;
            f->any = f->any || p > 0;
        } else {
            long long ms = strtoll(value, &end, 10);
            if (*end || end == value || ms < 0 || ms > 3600000)
                return choreo__fail(CHOREO_ECONFIG,
                                    "CHOREO_FAULTS: %s takes milliseconds from 0 to 3600000, "
                                    "not \"%s\"", name, value);
            *(int64_t *)((char *)f + items[i].off) = ms;
        }
        return CHOREO_OK;
    }
    return choreo__fail(CHOREO_ECONFIG,
                        "CHOREO_FAULTS: unknown fault \"%s\"; known faults: disk_full, "
                        "disk_full_ms, slow_handler, slow_handler_ms, retry_until_last, "
                        "mark_fail", name);
}

choreo_status choreo__faults_load(choreo_faults *f)
{
    memset(f, 0, sizeof *f);
    f->seed = run_seed() ^ 0x5851f42d4c957f2dULL;
    const char *seed = getenv("CHOREO_CRASH_SEED");
    f->pick_seed = splitmix64(seed ? strtoull(seed, NULL, 10) : 0); /* no PID: restarts agree */
    f->disk_full_ms = 1000;
    f->slow_handler_ms = 1500;
    const char *spec = getenv("CHOREO_FAULTS");
    if (!spec || !*spec)
        return CHOREO_OK;
    char *copy = strdup(spec);
    if (!copy)
        return choreo__fail(CHOREO_ENOMEM, "out of memory reading CHOREO_FAULTS");
    choreo_status s = CHOREO_OK;
    for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok && s == CHOREO_OK;
         tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq) {
            s = choreo__fail(CHOREO_ECONFIG, "CHOREO_FAULTS: \"%s\" needs a value (name=value)",
                             tok);
            break;
        }
        *eq = '\0';
        s = fault_item(f, tok, eq + 1);
    }
    free(copy);
    return s;
}

bool choreo__fault_disk_full(choreo_faults *f)
{
    if (f->disk_full <= 0)
        return false;
    int64_t now = choreo__mono_us();
    if (now < atomic_load(&f->disk_full_until_us))
        return true;
    if (draw(f->seed, &f->draws) >= f->disk_full)
        return false;
    /* One episode in two is a single failed commit (a one-off write
     * error): the work of a batch that failed must not leak into the next
     * one, which a long episode hides by failing that one too. */
    int64_t ms = draw(f->seed, &f->draws) < 0.5 ? 0 : f->disk_full_ms;
    atomic_store(&f->disk_full_until_us, now + ms * 1000);
    say_fired("fault", "disk_full");
    return true;
}

bool choreo__fault_mark_fail(choreo_faults *f)
{
    if (f->mark_fail <= 0 || draw(f->seed, &f->draws) >= f->mark_fail)
        return false;
    say_fired("fault", "mark_fail");
    return true;
}

void choreo__fault_slow_handler(choreo_faults *f)
{
    if (f->slow_handler <= 0 || draw(f->seed, &f->draws) >= f->slow_handler)
        return;
    say_fired("fault", "slow_handler");
    choreo__sleep_ms(f->slow_handler_ms);
}

bool choreo__fault_retry_until_last(choreo_faults *f, const char *event_id, int64_t attempt,
                                    int64_t max_deliver)
{
    if (f->retry_until_last <= 0 || attempt >= max_deliver - 1)
        return false;
    uint64_t h = 1469598103934665603ULL; /* FNV-1a of the id, so every delivery agrees */
    for (const char *p = event_id; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    double u = (double)(splitmix64(h ^ f->pick_seed) >> 11) / 9007199254740992.0;
    if (u >= f->retry_until_last)
        return false;
    if (attempt == 1)
        say_fired("fault", "retry_until_last");
    return true;
}
