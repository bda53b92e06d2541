/* What the shop demo and the chaos harness set up the same way: the four
 * service binaries of a build, and their signal handling. */
#ifndef SHOP_SETUP_H
#define SHOP_SETUP_H

#include <limits.h>
#include <stddef.h>

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

/* Sends SIGINT, SIGTERM and SIGHUP to fn, and ignores SIGPIPE. */
void shop_catch_signals(void (*fn)(int));

#endif
