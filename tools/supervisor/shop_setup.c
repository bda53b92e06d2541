/* Setup shared by shop-demo and shop-chaos: finding the service binaries
 * next to the running program and catching the signals that end a run. */
#include "shop_setup.h"

#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *const shop_service_names[SHOP_SERVICES] = { "order", "inventory", "payment", "points" };

void shop_build_dir(const char *given, char *out, size_t cap)
{
    char exe[PATH_MAX];
    ssize_t n = given ? -1 : readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        snprintf(out, cap, "%s", given ? given : "build");
        return;
    }
    exe[n] = '\0';
    snprintf(out, cap, "%s", dirname(dirname(dirname(exe))));
}

int shop_service_binaries(const char *build, const char *const override[SHOP_SERVICES],
                          char bin[SHOP_SERVICES][SHOP_BIN_MAX], const char *who,
                          const char *hint)
{
    for (int i = 0; i < SHOP_SERVICES; i++) {
        const char *name = shop_service_names[i];
        if (override && override[i])
            snprintf(bin[i], SHOP_BIN_MAX, "%s", override[i]);
        else
            snprintf(bin[i], SHOP_BIN_MAX, "%s/services/%s/shop-%s", build, name, name);
        if (access(bin[i], X_OK) != 0) {
            fprintf(stderr, "%s: %s is missing: %s\n", who, bin[i], hint);
            return -1;
        }
    }
    return 0;
}

static int service_index(const char *name, size_t len)
{
    for (int i = 0; i < SHOP_SERVICES; i++)
        if (strlen(shop_service_names[i]) == len && strncmp(shop_service_names[i], name, len) == 0)
            return i;
    return -1;
}

int shop_scale_flag(shop_scale *sc, const char *flag, const char *value, const char *who)
{
    const char *eq = strchr(value, '=');
    int i = eq ? service_index(value, (size_t)(eq - value)) : -1;
    if (i < 0) {
        fprintf(stderr, "%s: %s %s: give NAME=%s with NAME one of order, inventory, payment, "
                        "points\n", who, flag, value,
                strcmp(flag, "--store") == 0 ? "sqlite|postgres" : "N");
        return -1;
    }
    const char *v = eq + 1;
    if (strcmp(flag, "--store") == 0) {
        if (strcmp(v, "postgres") != 0 && strcmp(v, "sqlite") != 0) {
            fprintf(stderr, "%s: --store %s: the store is sqlite or postgres\n", who, value);
            return -1;
        }
        sc->postgres[i] = strcmp(v, "postgres") == 0;
        return 0;
    }
    char *end = NULL;
    long n = strtol(v, &end, 10);
    if (!*v || *end || n < 1 || n > 8) {
        fprintf(stderr, "%s: --instances %s: the number of instances is 1 to 8\n", who, value);
        return -1;
    }
    sc->instances[i] = (int)n;
    return 0;
}

int shop_scale_check(const shop_scale *sc, const char *who)
{
    for (int i = 0; i < SHOP_SERVICES; i++) {
        if (sc->instances[i] > 1 && !sc->postgres[i]) {
            fprintf(stderr, "%s: --instances %s=%d needs --store %s=postgres: a SQLite database "
                            "belongs to one process, several instances share a PostgreSQL one\n",
                    who, shop_service_names[i], sc->instances[i], shop_service_names[i]);
            return -1;
        }
    }
    return 0;
}

/* The arguments of a service run in several instances: its own, then
 * smaller group commits and quicker retries. Instances contend for the
 * same rows (a customer's account), and a batch holds its rows' locks
 * until it commits: small batches keep those waits short, and an event
 * that gave up waiting (lock_timeout_ms) comes back after 25 ms rather
 * than 200. */
static const char *const *scaled_args(const char *const *args, const char *out[64])
{
    static const char *const extra[] = { "--batch-max", "8", "--retry-base-ms", "25", NULL };
    int n = 0;
    for (; args && args[n] && n < 64 - 5; n++)
        out[n] = args[n];
    for (int k = 0; extra[k]; k++)
        out[n++] = extra[k];
    out[n] = NULL;
    return out;
}

int shop_scale_add(sup *s, const shop_scale *sc, const sup_service_spec specs[SHOP_SERVICES])
{
    char urls[SHOP_SERVICES][300];
    const char *args[SHOP_SERVICES][64];
    for (int i = 0; i < SHOP_SERVICES; i++) {
        sup_service_spec spec = specs[i];
        if (sc->instances[i] > 1)
            spec.args = scaled_args(specs[i].args, args[i]);
        if (sc->postgres[i]) {
            if (sup_postgres_db(s, shop_service_names[i], urls[i], sizeof urls[i]) != 0)
                return -1;
            spec.db = urls[i];
        }
        if (sup_add_service(s, &spec) != i)
            return -1;
    }
    for (int i = 0; i < SHOP_SERVICES; i++) {
        for (int k = 2; k <= sc->instances[i]; k++) {
            char label[64];
            snprintf(label, sizeof label, "%s-%d", shop_service_names[i], k);
            sup_service_spec spec = specs[i];
            spec.label = label;
            spec.db = urls[i];
            spec.args = args[i];
            if (sup_add_service(s, &spec) < 0)
                return -1;
        }
    }
    return 0;
}

void shop_catch_signals(void (*fn)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}
