/* Crash points for tests and the chaos harness. A point fires with its
 * configured probability, drawn from a seeded counter-based generator so a
 * run can be repeated; firing raises SIGKILL so nothing is flushed or
 * cleaned up, exactly as when an operator or the kernel kills the process. */
#include "crashpoint.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "status.h"

static const char *const names[CP_COUNT] = {
    "after_commit_before_ack", "after_commit_before_publish", "after_publish_before_mark",
    "inside_batch",            "inside_mark",                 "between_fetch_and_dispatch",
};

const char *choreo__crashpoint_name(choreo_crashpoint_id id)
{
    return id < CP_COUNT ? names[id] : "unknown";
}

choreo_status choreo__crashpoints_load(choreo_crashpoints *cp)
{
    memset(cp, 0, sizeof *cp);
    /* The PID is mixed in so that a restarted process does not crash at the
     * very same draw again and again: a run is repeatable in its seed and
     * its probabilities, not down to the draw. */
    const char *seed = getenv("CHOREO_CRASH_SEED");
    cp->seed = (seed ? strtoull(seed, NULL, 10) : 0) * 0x9e3779b97f4a7c15ULL + (uint64_t)getpid();
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
            s = choreo__fail(CHOREO_ECONFIG,
                             "CHOREO_CRASHPOINTS: unknown point \"%s\"; known points: "
                             "after_commit_before_ack, after_commit_before_publish, "
                             "after_publish_before_mark, inside_batch, inside_mark, "
                             "between_fetch_and_dispatch",
                             tok);
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

void choreo__crashpoint(choreo_crashpoints *cp, choreo_crashpoint_id id)
{
    if (!cp->any || cp->probability[id] <= 0)
        return;
    uint64_t n = atomic_fetch_add(&cp->draws, 1);
    double u = (double)(splitmix64(cp->seed ^ (n * 0x2545F4914F6CDD1DULL)) >> 11) / 9007199254740992.0;
    if (u >= cp->probability[id])
        return;
    char line[128];
    int len = snprintf(line, sizeof line, "choreo: crash point %s fired (pid %d)\n", names[id],
                       (int)getpid());
    if (len > 0)
        (void)!write(STDERR_FILENO, line, (size_t)len);
    kill(getpid(), SIGKILL);
    _exit(137);
}
