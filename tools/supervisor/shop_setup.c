/* Setup shared by shop-demo and shop-chaos: finding the service binaries
 * next to the running program and catching the signals that end a run. */
#include "shop_setup.h"

#include <libgen.h>
#include <signal.h>
#include <stdio.h>
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
