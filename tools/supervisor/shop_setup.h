/* What the shop demo and the chaos harness set up the same way: the four
 * service binaries of a build, and their signal handling. */
#ifndef SHOP_SETUP_H
#define SHOP_SETUP_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "supervisor.h"

#define SHOP_SERVICES 4
#define SHOP_BIN_MAX (PATH_MAX + 64)

/* order, inventory, payment, points: the supervisor's service indexes. */
extern const char *const shop_service_names[SHOP_SERVICES];

/* The build directory: given, or three levels above this program
 * (build/tools/supervisor/PROGRAM). */
void shop_build_dir(const char *given, char *out, size_t cap);

/* The path of each service binary: override[i] when not NULL, else
 * BUILD/services/NAME/shop-NAME. Prints which one is missing, with who and
 * hint, and returns -1 when one cannot be run; 0 otherwise. */
int shop_service_binaries(const char *build, const char *const override[SHOP_SERVICES],
                          char bin[SHOP_SERVICES][SHOP_BIN_MAX], const char *who,
                          const char *hint);

/* Where each service keeps its database and how many instances of it run
 * (--store NAME=sqlite|postgres, --instances NAME=N). Several instances
 * share one database, so they need PostgreSQL. */
typedef struct shop_scale {
    bool postgres[SHOP_SERVICES];
    int instances[SHOP_SERVICES]; /* 0 means 1 */
} shop_scale;

/* Takes one --store or --instances value ("payment=postgres",
 * "payment=2"). Prints what is wrong and returns -1 on a bad one. */
int shop_scale_flag(shop_scale *sc, const char *flag, const char *value, const char *who);

/* Checks the whole: every service with more than one instance is on
 * PostgreSQL. Prints what to do and returns -1 otherwise. */
int shop_scale_check(const shop_scale *sc, const char *who);

/* Adds the four services (as specs[i], index i) with their databases, then
 * the further instances, labelled NAME-2, NAME-3, ... Services on
 * PostgreSQL get a database of their name on the supervisor's PostgreSQL
 * server. Returns 0, or -1 after printing why. */
int shop_scale_add(sup *s, const shop_scale *sc, const sup_service_spec specs[SHOP_SERVICES]);

/* Sends SIGINT, SIGTERM and SIGHUP to fn, and ignores SIGPIPE. */
void shop_catch_signals(void (*fn)(int));

#endif
