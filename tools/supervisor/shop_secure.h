/* The secure shop (shop-demo --secure): a CA and a TLS certificate for the
 * broker at 127.0.0.1, made with openssl; one NATS user per service, and
 * one for the demo's own client, each with a random password, under the
 * least-privilege permissions choreo-gen generates from the shop's schema
 * and its services file. Everything lives in WORKDIR/secure (mode 0700);
 * the keys and the server configuration, which holds the passwords, are
 * mode 0600. */
#ifndef SHOP_SECURE_H
#define SHOP_SECURE_H

#include <limits.h>

#include "shop_setup.h"

/* The NATS users of the demo's load client (a client in shop.services) and
 * of choreoctl (its operator). */
#define SHOP_SECURE_CLIENT "shop"
#define SHOP_SECURE_OPERATOR "choreoctl"
/* The reply inbox prefix of the load client: each user's is _INBOX_<name>. */
#define SHOP_SECURE_CLIENT_INBOX "_INBOX_shop"

typedef struct shop_secure {
    char dir[PATH_MAX];
    char ca[PATH_MAX + 16];     /* the CA certificate that verifies the broker */
    char config[PATH_MAX + 32]; /* the nats-server configuration (natsd_start_config) */
    /* Passwords of the services, in shop_service_names order, then of
     * SHOP_SECURE_CLIENT and SHOP_SECURE_OPERATOR. */
    char password[SHOP_SERVICES + 2][33];
    /* Each service's CHOREO_NATS_USER, CHOREO_NATS_PASSWORD, CHOREO_TLS_CA
     * and CHOREO_NATS_INBOX_PREFIX, as a NULL-terminated environment list
     * in envp. */
    char env[SHOP_SERVICES][4][PATH_MAX + 64];
    const char *envp[SHOP_SERVICES][5];
} shop_secure;

/* Makes all of the above under workdir, running openssl and choreo_gen
 * (--nats-permissions services schema). Returns 0, or -1 after saying why
 * on stderr. */
int shop_secure_setup(shop_secure *sec, const char *workdir, const char *choreo_gen,
                      const char *schema, const char *services);

#endif
