/* shop: the command-line client of the shop demo. It places orders (with an
 * idempotency key, so a retry never orders twice), seeds stock, money and
 * points rules, shows an order, generates load with bounded concurrency,
 * and runs the invariant checker on the four databases. */
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shop_check.h"
#include "shop_client.h"
#include "shop_svc.h"
#include "shop_world.h"

static const char USAGE[] =
    "usage: shop [--nats-url URL] [--prefix P] [--nats-user U] [--tls-ca FILE] COMMAND [options]\n"
    "\n"
    "URL defaults to $CHOREO_NATS_URL, then nats://127.0.0.1:4222. Against a secure\n"
    "shop (shop-demo --secure): --nats-user (or $CHOREO_NATS_USER) with its password\n"
    "in $CHOREO_NATS_PASSWORD (never on the command line), --tls-ca (or\n"
    "$CHOREO_TLS_CA), the CA certificate that verifies the server, and its reply\n"
    "inbox prefix in $CHOREO_NATS_INBOX_PREFIX.\n"
    "\n"
    "Commands:\n"
    "  place --user U --product P --qty Q [--amount CENTS] [--key K] [--wait]\n"
    "        place an order; the amount defaults to qty x the demo's unit price;\n"
    "        the same --key again returns the same order; --wait polls until final\n"
    "  status ORDER_ID | status --key K      show an order\n"
    "  restock --product P --qty N [--ref R]     add stock (once per ref)\n"
    "  deposit --user U --amount CENTS [--review yes|no] [--ref R]\n"
    "        credit an account (once per ref); review holds its payments\n"
    "  enroll --user U [--cap N] [--no-points]   set a customer's points rule\n"
    "  seed --orders N [--seed S] [--run NAME]   seed the demo world for N orders\n"
    "  load --orders N [--concurrency C] [--seed S] [--run NAME]\n"
    "        place the demo's mix of N orders (seed first with the same values)\n"
    "  check --dir D [--final]   check the invariants of D/{order,inventory,payment,points}.db;\n"
    "        --final also requires every saga to be final; exit 1 on a violation\n";

struct args {
    int argc;
    char **argv;
    int i;
};

/* Value of "--name VALUE" anywhere after the command, or def. */
static const char *opt(const struct args *a, const char *name, const char *def)
{
    for (int i = a->i; i + 1 < a->argc; i++)
        if (strcmp(a->argv[i], name) == 0)
            return a->argv[i + 1];
    return def;
}

static bool has(const struct args *a, const char *name)
{
    for (int i = a->i; i < a->argc; i++)
        if (strcmp(a->argv[i], name) == 0)
            return true;
    return false;
}

static bool num(const struct args *a, const char *name, int64_t def, int64_t min, int64_t max,
                int64_t *out)
{
    const char *v = opt(a, name, NULL);
    if (!v) {
        *out = def;
        return true;
    }
    return shop_parse_i64(name, v, min, max, out);
}

static int need(const char *what)
{
    fprintf(stderr, "shop: %s (see shop --help)\n", what);
    return 2;
}

/* Prints the shop client's last error; exit status 1. Each command prints
 * its own failure, once. */
static int client_failed(void)
{
    fprintf(stderr, "shop: %s\n", shop_client_last_error());
    return 1;
}

static void unique_key(char *out, size_t cap, const char *what)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(out, cap, "%s-%lld%06ld-%d", what, (long long)ts.tv_sec, ts.tv_nsec / 1000,
             (int)getpid());
}

static int print_status(shop_client *c, const char *id, const char *key)
{
    shop_order_status st;
    if (shop_client_get_order(c, id, key, &st) != CHOREO_OK)
        return client_failed();
    if (!st.found) {
        printf("no such order%s%s\n", st.detail[0] ? ": " : "", st.detail);
        return 1;
    }
    printf("order %s %s", st.order_id, st.state);
    if (st.reason[0])
        printf(" (%s: %s)", st.reason, st.detail);
    printf("\n");
    return 0;
}

static int cmd_place(shop_client *c, const struct args *a)
{
    const char *user = opt(a, "--user", NULL), *product = opt(a, "--product", NULL);
    int64_t qty, amount;
    if (!user || !product)
        return need("place needs --user and --product");
    if (!num(a, "--qty", 1, 1, 1000000, &qty))
        return 2;
    if (!num(a, "--amount", qty * shop_price_cents(product), 0, INT64_C(1000000000000), &amount))
        return 2;
    char key[80];
    unique_key(key, sizeof key, "cli");
    const char *k = opt(a, "--key", key);
    shop_placed r;
    if (shop_client_place(c, k, user, product, (int32_t)qty, amount, 5000, 10, &r) != CHOREO_OK)
        return client_failed();
    if (strcmp(r.status, "REFUSED") == 0) {
        printf("refused: %s\n", r.error);
        return 1;
    }
    printf("order %s %s (key %s, %" PRId64 " x %s for %" PRId64 " cents)\n", r.order_id,
           r.status, k, qty, product, amount);
    if (!has(a, "--wait"))
        return 0;
    for (int waited = 0; waited < 120000; waited += 100) {
        shop_order_status st;
        if (shop_client_get_order(c, r.order_id, NULL, &st) == CHOREO_OK &&
            strcmp(st.state, "PENDING") != 0)
            return print_status(c, r.order_id, NULL);
        struct timespec ts = { 0, 100 * 1000000L };
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "shop: order %s is still PENDING after 120 s\n", r.order_id);
    return 1;
}

static int cmd_seed_or_load(shop_client *c, const struct args *a, bool load)
{
    int64_t n, seed, conc;
    if (!num(a, "--orders", 1000, 1, 10000000, &n) || !num(a, "--seed", 1, 0, INT64_MAX, &seed) ||
        !num(a, "--concurrency", 32, 1, 1024, &conc))
        return 2;
    shop_world w;
    if (shop_world_plan(&w, (long)n, (uint64_t)seed, opt(a, "--run", "demo")) != CHOREO_OK)
        return need("cannot plan the world");
    int rc = 0;
    if (!load) {
        if (shop_world_seed(&w, c) != CHOREO_OK) {
            fprintf(stderr, "shop: seeding failed: %s\n", shop_client_last_error());
            rc = 1;
        } else {
            printf("seeded run %s for %" PRId64 " orders\n", w.run, n);
        }
    } else {
        shop_load_opts o = { .concurrency = (int)conc };
        shop_load_stats st;
        memset(&st, 0, sizeof st);
        if (shop_world_load(&w, c, &o, &st) != CHOREO_OK) {
            fprintf(stderr, "shop: out of memory starting the load\n");
            shop_world_free(&w);
            return 1;
        }
        double secs = (double)(st.ended_us - st.started_us) / 1e6;
        printf("placed %ld, refused %ld, failed %ld in %.2f s (%.0f orders/s); %ld retried; "
               "replayed keys: %ld of %ld gave the same order\n",
               atomic_load(&st.placed), atomic_load(&st.refused), atomic_load(&st.failed), secs,
               secs > 0 ? (double)atomic_load(&st.placed) / secs : 0.0,
               atomic_load(&st.retried), st.replays_same, st.replays);
        rc = atomic_load(&st.failed) || atomic_load(&st.refused) || st.replays_same != st.replays;
    }
    shop_world_free(&w);
    return rc;
}

static int cmd_check(const struct args *a)
{
    const char *dir = opt(a, "--dir", NULL);
    if (!dir)
        return need("check needs --dir");
    char p[4][600];
    const char *names[] = { "order", "inventory", "payment", "points" };
    for (int i = 0; i < 4; i++)
        snprintf(p[i], sizeof p[i], "%s/%s.db", dir, names[i]);
    shop_check_paths paths = { p[0], p[1], p[2], p[3] };
    shop_check_report r;
    char err[512];
    if (shop_check_run(&paths, has(a, "--final"), &r, err, sizeof err) != CHOREO_OK) {
        fprintf(stderr, "shop: %s\n", err);
        return 2;
    }
    shop_check_print(&r, stdout);
    int rc = r.ok ? 0 : 1;
    shop_check_report_free(&r);
    return rc;
}

static int cmd_status(shop_client *c, const struct args *a)
{
    const char *key = opt(a, "--key", NULL);
    if (key)
        return print_status(c, NULL, key);
    if (a->i < a->argc)
        return print_status(c, a->argv[a->i], NULL);
    return need("status needs an order id or --key");
}

static int cmd_restock(shop_client *c, const struct args *a)
{
    char ref[80];
    unique_key(ref, sizeof ref, "cli");
    const char *product = opt(a, "--product", NULL);
    int64_t n = 0;
    if (!product || !num(a, "--qty", 0, 1, INT64_C(1000000000), &n) || n == 0)
        return need("restock needs --product and --qty");
    if (shop_client_restock(c, opt(a, "--ref", ref), product, n) != CHOREO_OK)
        return client_failed();
    printf("restocked %" PRId64 " x %s\n", n, product);
    return 0;
}

static int cmd_deposit(shop_client *c, const struct args *a)
{
    char ref[80];
    unique_key(ref, sizeof ref, "cli");
    const char *user = opt(a, "--user", NULL), *review = opt(a, "--review", NULL);
    int64_t n = -1;
    if (!user || !num(a, "--amount", -1, 0, INT64_C(1000000000000), &n) || n < 0)
        return need("deposit needs --user and --amount");
    if (shop_client_deposit(c, opt(a, "--ref", ref), user, n, review != NULL,
                            review && strcmp(review, "yes") == 0) != CHOREO_OK)
        return client_failed();
    printf("deposited %" PRId64 " cents for %s\n", n, user);
    return 0;
}

static int cmd_enroll(shop_client *c, const struct args *a)
{
    const char *user = opt(a, "--user", NULL);
    int64_t cap = 0;
    if (!user || !num(a, "--cap", INT64_C(1000000000), 0, INT64_MAX, &cap))
        return need("enroll needs --user");
    if (shop_client_enroll(c, user, cap, has(a, "--no-points")) != CHOREO_OK)
        return client_failed();
    printf("enrolled %s\n", user);
    return 0;
}

static int cmd_seed(shop_client *c, const struct args *a)
{
    return cmd_seed_or_load(c, a, false);
}

static int cmd_load(shop_client *c, const struct args *a)
{
    return cmd_seed_or_load(c, a, true);
}

static const struct command {
    const char *name;
    int (*fn)(shop_client *c, const struct args *a);
} COMMANDS[] = {
    { "place", cmd_place },     { "status", cmd_status }, { "restock", cmd_restock },
    { "deposit", cmd_deposit }, { "enroll", cmd_enroll }, { "seed", cmd_seed },
    { "load", cmd_load },
};

int main(int argc, char **argv)
{
    shop_set_program("shop");
    const char *url = getenv("CHOREO_NATS_URL");
    const char *prefix = getenv("CHOREO_PREFIX");
    const char *user = getenv("CHOREO_NATS_USER"), *ca = getenv("CHOREO_TLS_CA");
    const char *inbox = getenv("CHOREO_NATS_INBOX_PREFIX");
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(USAGE, stdout);
            return 0;
        } else if (strcmp(argv[i], "--nats-url") == 0 && i + 1 < argc) {
            url = argv[++i];
        } else if (strcmp(argv[i], "--prefix") == 0 && i + 1 < argc) {
            prefix = argv[++i];
        } else if (strcmp(argv[i], "--nats-user") == 0 && i + 1 < argc) {
            user = argv[++i];
        } else if (strcmp(argv[i], "--tls-ca") == 0 && i + 1 < argc) {
            ca = argv[++i];
        } else {
            return need("unknown option before the command");
        }
    }
    if (i >= argc)
        return need("a command is needed");
    signal(SIGPIPE, SIG_IGN);
    struct args a = { argc, argv, i + 1 };
    if (has(&a, "--help")) {
        fputs(USAGE, stdout);
        return 0;
    }
    if (strcmp(argv[i], "check") == 0)
        return cmd_check(&a);
    const struct command *cmd = NULL;
    for (size_t k = 0; k < sizeof COMMANDS / sizeof COMMANDS[0]; k++)
        if (strcmp(argv[i], COMMANDS[k].name) == 0)
            cmd = &COMMANDS[k];
    if (!cmd)
        return need("unknown command");
    shop_client *c = NULL;
    if (shop_client_create_secure(&c, url && *url ? url : "nats://127.0.0.1:4222", prefix,
                                  user && *user ? user : NULL, getenv("CHOREO_NATS_PASSWORD"),
                                  ca && *ca ? ca : NULL, inbox && *inbox ? inbox : NULL) !=
        CHOREO_OK)
        return client_failed();
    int rc = cmd->fn(c, &a);
    shop_client_destroy(c);
    return rc;
}
