/* Loads libpq at run time; see pq.h. Built with PostgreSQL support only
 * (meson adds it then; a build of every source without libpq's headers,
 * such as the fuzzers', gets an empty module). */
#ifdef CHOREO_HAVE_PG
#define CHOREO_PQ_LOADER
#include "pq.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

struct choreo_pq choreo__pq;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char failure[512]; /* empty: loaded */

/* Fills t from the library named soname; on failure writes why into why
 * and returns false. The handle stays open when keep, else is closed. */
static bool fill(struct choreo_pq *t, const char *soname, bool keep, char *why, size_t cap)
{
    void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(why, cap, "%s", e ? e : "not found");
        return false;
    }
    bool ok = true;
#define CHOREO_PQ_RESOLVE(f)                                                                   \
    if (ok) {                                                                                  \
        void *p = dlsym(h, #f);                                                                \
        if (!p) {                                                                              \
            snprintf(why, cap, "%s has no function %s", soname, #f);                           \
            ok = false;                                                                        \
        }                                                                                      \
        memcpy(&t->f, &p, sizeof p); /* ISO C has no cast from void * to a function */       \
    }
    CHOREO_PQ_FUNCS(CHOREO_PQ_RESOLVE)
#undef CHOREO_PQ_RESOLVE
    if (!ok || !keep)
        dlclose(h);
    return ok;
}

static void load_once(void)
{
    char why[400];
    if (!fill(&choreo__pq, CHOREO_LIBPQ, true, why, sizeof why))
        snprintf(failure, sizeof failure, "%s", why);
}

static choreo_status refuse(const char *soname, const char *why)
{
    return choreo__fail(CHOREO_ECONFIG,
                        "db names a PostgreSQL database, but the PostgreSQL client library %s "
                        "cannot be loaded (%s): install it (on Debian and Ubuntu: apt install "
                        "libpq5), or use a SQLite file",
                        soname, why);
}

choreo_status choreo__pq_load(void)
{
    pthread_once(&once, load_once);
    return failure[0] ? refuse(CHOREO_LIBPQ, failure) : CHOREO_OK;
}

choreo_status choreo__pq_try(const char *soname)
{
    struct choreo_pq t;
    char why[400];
    return fill(&t, soname, false, why, sizeof why) ? CHOREO_OK : refuse(soname, why);
}

#else
typedef int choreo_pq_unused; /* ISO C wants a declaration in every file */
#endif
