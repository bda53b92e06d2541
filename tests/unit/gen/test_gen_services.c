/* The *.services reader and the NATS permissions writer of choreo-gen: what
 * a valid description turns into, the file:line:col and text of the error
 * each kind of mistake produces, the exact text written for the fixture in
 * perms/ (golden files), and that events/shop.services says what the shop's
 * code does. $GEN_TEST_DIR names this folder (set by meson).
 *
 * After an intended change to the generated text, regenerate the golden
 * files in perms/ with the commands in their first lines, and read the
 * difference before committing it. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "perms.h"
#include "schema.h"
#include "services.h"

static const char events_text[] =
    "record Address {\n"
    "  city: string\n"
    "}\n"
    "event ParcelBooked v1 {\n"
    "  parcel_id: string\n"
    "}\n"
    "event ParcelShipped v1 {\n"
    "  parcel_id: string\n"
    "}\n"
    "event ParcelLost v1 {\n"
    "  parcel_id: string\n"
    "}\n";

static gen_schema *schema(void)
{
    gen_diags d;
    memset(&d, 0, sizeof d);
    gen_schema *s = gen_schema_parse("t.events", events_text, strlen(events_text), &d);
    cr_assert_not_null(s);
    return s;
}

static gen_services *parse(const gen_schema *sc, const char *text, gen_diags *d)
{
    memset(d, 0, sizeof *d);
    return gen_services_parse("t.services", text, strlen(text), sc, d);
}

static const char *diag(const gen_diags *d, size_t i, char *buf, size_t size)
{
    if (i >= d->n)
        return "(no error)";
    snprintf(buf, size, "%s:%d:%d: %s", d->items[i].loc.file, d->items[i].loc.line,
             d->items[i].loc.col, d->items[i].msg);
    return buf;
}

static char *read_file(const char *rel, size_t *len)
{
    const char *dir = getenv("GEN_TEST_DIR");
    cr_assert_not_null(dir, "GEN_TEST_DIR must name tests/unit/gen");
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    gen_diags d;
    memset(&d, 0, sizeof d);
    char *text = gen_read_text(path, "file", len, &d);
    cr_assert_not_null(text, "cannot read %s", path);
    return text;
}

Test(gen_services, reads_roles_clauses_and_resolves_calls)
{
    gen_schema *sc = schema();
    gen_diags d;
    gen_services *s = parse(sc,
                            "# a comment\n"
                            "service depot {\n"
                            "  emits ParcelBooked   # trailing comment\n"
                            "  emits ParcelLost\n"
                            "  handles ParcelShipped\n"
                            "  serves Book Ping\n"
                            "}\n"
                            "service fleet-eu\n"
                            "{\n"
                            "  serves Ping\n"
                            "  calls depot.Book\n"
                            "}\n"
                            "client desk { calls depot.* *.Ping depot.Book }\n"
                            "operator ops\n",
                            &d);
    char buf[600];
    cr_assert_not_null(s, "%s", diag(&d, 0, buf, sizeof buf));
    cr_assert_eq(s->nroles, 4);
    const gen_role *depot = &s->roles[0], *fleet = &s->roles[1], *desk = &s->roles[2];
    cr_assert_eq(depot->kind, GEN_ROLE_SERVICE);
    cr_assert_str_eq(depot->name, "depot");
    cr_assert_eq(depot->loc.line, 2);
    cr_assert_eq(depot->loc.col, 9);
    cr_assert_eq(depot->emits.n, 2, "two emits clauses add up");
    cr_assert_str_eq(depot->emits.items[1].text, "ParcelLost");
    cr_assert_eq(depot->emits.items[1].loc.line, 4);
    cr_assert_eq(depot->handles.n, 1);
    cr_assert_eq(depot->serves.n, 2);
    cr_assert_str_eq(fleet->var, "FLEET_EU");
    cr_assert_eq(fleet->nresolved, 1);
    cr_assert_str_eq(fleet->resolved[0].service, "depot");
    cr_assert_str_eq(fleet->resolved[0].request, "Book");
    cr_assert_eq(desk->kind, GEN_ROLE_CLIENT);
    /* depot.* is Book and Ping; *.Ping adds fleet-eu.Ping; depot.Book
     * again adds nothing. */
    cr_assert_eq(desk->nresolved, 3);
    cr_assert_str_eq(desk->resolved[0].request, "Book");
    cr_assert_str_eq(desk->resolved[1].request, "Ping");
    cr_assert_str_eq(desk->resolved[2].service, "fleet-eu");
    cr_assert_eq(s->roles[3].kind, GEN_ROLE_OPERATOR);
    cr_assert_str_eq(s->roles[3].var, "OPS");
    gen_services_free(s);
    gen_schema_free(sc);
}

typedef struct bad_case {
    const char *text;
    const char *error; /* the first diagnostic, exactly */
} bad_case;

static const bad_case bad_cases[] = {
    /* events the schema does not have */
    {"service a {\n  emits ParcelBoked\n}\n",
     "t.services:2:9: unknown event 'ParcelBoked'; did you mean 'ParcelBooked'?"},
    {"service a {\n  handles parcelshipped\n}\n",
     "t.services:2:11: unknown event 'parcelshipped'; did you mean 'ParcelShipped'?"},
    {"service a {\n  handles OrderCreated\n}\n",
     "t.services:2:11: unknown event 'OrderCreated': t.events declares no event of that name"},
    {"service a {\n  handles Address\n}\n",
     "t.services:2:11: 'Address' is a record in t.events, not an event: only events are "
     "emitted and handled"},
    /* duplicates */
    {"service a {\n  emits ParcelLost\n  emits ParcelBooked ParcelLost\n}\n",
     "t.services:3:22: service a emits ParcelLost twice (first at line 2)"},
    {"service a {\n  handles ParcelLost ParcelLost\n}\n",
     "t.services:2:22: service a handles ParcelLost twice (first at line 2)"},
    {"service a {\n  serves Ping Ping\n}\n",
     "t.services:2:15: service a serves Ping twice (first at line 2)"},
    {"service a {\n  serves Ping\n}\nclient c {\n  calls a.Ping a.Ping\n}\n",
     "t.services:5:16: client c calls a.Ping twice (first at line 5)"},
    {"service a\noperator a\n",
     "t.services:2:10: 'a' is already declared at line 1 (as a service): each name is one NATS "
     "user"},
    {"service a-b\nservice a_b\n",
     "t.services:2:9: service a_b and service a-b (line 1) both give the variable "
     "A_B_PERMISSIONS; rename one"},
    /* calls */
    {"service depot {\n  serves Book\n}\nclient c {\n  calls depo.Book\n}\n",
     "t.services:5:9: call depo.Book: no service 'depo' is declared; did you mean 'depot'?"},
    {"service depot {\n  serves Book\n}\nclient c {\n  calls mars.Book\n}\n",
     "t.services:5:9: call mars.Book: no service 'mars' is declared in t.services"},
    {"service depot {\n  serves Book\n}\nclient c {\n  calls depot.Bok\n}\n",
     "t.services:5:9: call depot.Bok: service depot does not serve 'Bok'; did you mean 'Book'?"},
    {"service depot {\n  serves Book\n}\nclient c {\n  calls depot.Unload\n}\n",
     "t.services:5:9: call depot.Unload: service depot does not serve 'Unload' (add it to its "
     "serves clause)"},
    {"client c {\n  calls d.Ping\n}\nclient d {\n  calls c.Ping\n}\n",
     "t.services:2:9: call d.Ping: 'd' is a client, not a service: only services serve "
     "requests"},
    {"service depot {\n  serves Book\n}\nclient c {\n  calls *.Bok\n}\n",
     "t.services:5:9: call *.Bok: no service serves 'Bok'; did you mean 'Book'?"},
    {"service depot\nclient c {\n  calls depot.*\n}\n",
     "t.services:3:9: call depot.*: service depot serves no requests"},
    {"service depot {\n  serves Book\n}\nclient c {\n  calls *.*\n}\n",
     "t.services:5:9: '*.*' would call every request of every service: name the service or the "
     "request"},
    {"service depot {\n  serves Book\n}\nclient c {\n  calls depot\n}\n",
     "t.services:5:9: bad call 'depot': write service.request (order.PlaceOrder), service.* or "
     "*.request"},
    {"client c\n", "t.services:1:8: client c calls nothing: give it a 'calls' clause naming the "
                   "requests it sends (service.request)"},
    /* names */
    {"service 9lives\n",
     "t.services:1:9: bad service name '9lives': use a letter, then letters, digits, '_' or "
     "'-', at most 32 characters in all (it is the NATS user name and, for a service, choreo's "
     "service setting)"},
    {"service a {\n  serves Bo.ok\n}\n",
     "t.services:2:10: bad request name 'Bo.ok': use letters, digits, '_' and '-', at most 64 "
     "characters"},
    /* structure */
    {"servise a {\n}\n", "t.services:1:1: unknown declaration 'servise'; did you mean 'service'?"},
    {"event A v1 {\n}\n",
     "t.services:1:1: expected 'service', 'client' or 'operator' at the start of a declaration, "
     "found 'event'"},
    {"service {\n}\n", "t.services:1:9: expected a name after 'service', found '{'"},
    {"service a b {\n}\n",
     "t.services:1:11: unexpected 'b' after service a: clauses go inside '{' and '}'"},
    {"service a {\n  emit ParcelLost\n}\n",
     "t.services:2:3: unknown clause 'emit'; did you mean 'emits'?"},
    {"service a {\n  produces ParcelLost\n}\n",
     "t.services:2:3: expected emits, handles, serves, calls or '}', found 'produces'"},
    {"service a {\n  emits\n}\n",
     "t.services:2:3: 'emits' needs one or more event types on its line"},
    {"client c {\n  emits ParcelLost\n}\n",
     "t.services:2:3: a client only calls requests: 'emits' belongs in a service"},
    {"operator o { calls a.b }\n",
     "t.services:1:14: operator o takes no clauses: its permissions are fixed (consumers and "
     "parked events of every type)"},
    {"service a {\n  emits ParcelLost\n",
     "t.services:3:1: missing '}' to close service a opened at line 1"},
    {"service a {\n  emits ParcelLost\n\nservice b {\n}\n",
     "t.services:4:1: missing '}' to close service a opened at line 1"},
    {"service a {\n} extra\n",
     "t.services:2:3: unexpected 'extra' after the '}' closing service a"},
    {"service a {\n  emits ParcelLost, ParcelBooked\n}\n",
     "t.services:2:19: unexpected character ','"},
    {"service a {\n  emits Parcel\xc3\xa9\n}\n",
     "t.services:2:15: unexpected byte 0xc3 (only ASCII is allowed outside comments)"},
    {"# nothing yet\n",
     "t.services:0:0: the file declares no service, client or operator: nothing could log in"},
};

Test(gen_services, each_mistake_is_reported_with_its_place)
{
    gen_schema *sc = schema();
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        gen_diags d;
        gen_services *s = parse(sc, bad_cases[i].text, &d);
        char got[600];
        cr_expect_null(s, "case %zu was accepted:\n%s", i, bad_cases[i].text);
        gen_services_free(s);
        diag(&d, 0, got, sizeof got);
        cr_expect(strcmp(got, bad_cases[i].error) == 0, "case %zu:\n%s got:  %s\nwant: %s", i,
                  bad_cases[i].text, got, bad_cases[i].error);
    }
    gen_schema_free(sc);
}

Test(gen_services, every_mistake_is_reported_in_one_run)
{
    gen_schema *sc = schema();
    gen_diags d;
    gen_services *s = parse(sc,
                            "service a {\n"
                            "  emits ParcelBoked\n"
                            "  handles Address\n"
                            "}\n"
                            "service a\n",
                            &d);
    char buf[600];
    cr_assert_null(s);
    cr_assert_eq(d.n, 3, "%s", diag(&d, 2, buf, sizeof buf));
    cr_assert_str_eq(diag(&d, 0, buf, sizeof buf),
                     "t.services:5:9: 'a' is already declared at line 1 (as a service): each "
                     "name is one NATS user");
    cr_assert(strstr(diag(&d, 1, buf, sizeof buf), "t.services:2:9: unknown event"));
    cr_assert(strstr(diag(&d, 2, buf, sizeof buf), "t.services:3:11: 'Address' is a record"));
    s = parse(sc, "service a {\n  emits ParcelLost, X\n  bogus\n}\n", &d);
    cr_assert_null(s);
    cr_assert_eq(d.n, 2, "a syntax error per line: %s", diag(&d, 1, buf, sizeof buf));
    gen_schema_free(sc);
}

Test(gen_services, a_nul_byte_is_refused)
{
    gen_schema *sc = schema();
    gen_diags d;
    memset(&d, 0, sizeof d);
    gen_services *s = gen_services_parse("t.services", "service a\0", 10, sc, &d);
    cr_assert_null(s);
    cr_assert(strstr(d.items[0].msg, "NUL byte"), "%s", d.items[0].msg);
    gen_schema_free(sc);
}

/* Emits the permissions of perms/mini.services and perms/mini.events. */
static void emit_mini(const gen_perms_opts *opts, gen_buf *out)
{
    size_t slen, elen;
    char *stext = read_file("perms/mini.services", &slen);
    char *etext = read_file("perms/mini.events", &elen);
    gen_diags d;
    memset(&d, 0, sizeof d);
    gen_schema *sc = gen_schema_parse("mini.events", etext, elen, &d);
    cr_assert_not_null(sc);
    gen_services *s = gen_services_parse("mini.services", stext, slen, sc, &d);
    char buf[600];
    cr_assert_not_null(s, "%s", diag(&d, 0, buf, sizeof buf));
    gen_perms_opts o = *opts;
    o.services_name = "mini.services";
    o.schema_name = "mini.events";
    gen_perms_emit(s, &o, out);
    gen_services_free(s);
    gen_schema_free(sc);
    free(stext);
    free(etext);
}

/* Fails naming the first line where got differs from want. */
static void assert_same_text(const char *got, size_t got_len, const char *want, const char *name)
{
    size_t want_len = strlen(want);
    if (got_len == want_len && memcmp(got, want, got_len) == 0)
        return;
    int line = 1;
    size_t i = 0, start = 0;
    for (; i < got_len && i < want_len && got[i] == want[i]; i++) {
        if (got[i] == '\n') {
            line++;
            start = i + 1;
        }
    }
    cr_assert_fail("the text differs from %s at line %d:\n got: %.*s\nwant: %.*s", name, line,
                   (int)strcspn(got + start, "\n"), got + start,
                   (int)strcspn(want + start, "\n"), want + start);
}

Test(gen_services, the_permissions_are_the_golden_text)
{
    static const struct {
        gen_perms_opts opts;
        const char *golden;
    } cases[] = {
        {{.subject_prefix = "choreo", .stream = "CHOREO"}, "perms/mini.conf"},
        {{.subject_prefix = "acme.choreo", .stream = "ACME", .no_users = true,
          .private_inboxes = true},
         "perms/mini-options.conf"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        gen_buf got = {0}, again = {0};
        emit_mini(&cases[k].opts, &got);
        emit_mini(&cases[k].opts, &again);
        cr_assert(got.len == again.len && memcmp(got.data, again.data, got.len) == 0,
                  "two runs gave different bytes");
        size_t wlen;
        char *want = read_file(cases[k].golden, &wlen);
        assert_same_text(got.data, got.len, want, cases[k].golden);
        free(want);
        gen_buf_free(&got);
        gen_buf_free(&again);
    }
}

/* ------------------------------------------------------------------------ */
/* events/shop.services against the shop's code */

/* The text of a file of the source tree, relative to this folder. */
static char *source(const char *rel)
{
    size_t len;
    return read_file(rel, &len);
}

/* Does code register a handler for (or emit) the event with this snake
 * name through the generated shop API? */
static bool code_handles(const char *code, const char *snake)
{
    char needle[160];
    snprintf(needle, sizeof needle, "shop_on_%s(", snake);
    return strstr(code, needle) != NULL;
}

static bool code_emits(const char *code, const char *snake)
{
    static const char *const tails[] = {"(", "_after(", "_at("};
    for (size_t i = 0; i < 3; i++) {
        char needle[160];
        snprintf(needle, sizeof needle, "shop_emit_%s%s", snake, tails[i]);
        if (strstr(code, needle))
            return true;
    }
    return false;
}

static bool listed(const gen_word_list *l, const char *text)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->items[i].text, text) == 0)
            return true;
    return false;
}

/* The request name a SHOP_RQ_ macro stands for, from shop_domain.h. */
static void request_name(const char *domain, const char *macro, size_t mlen, char *out,
                         size_t cap)
{
    char needle[96];
    snprintf(needle, sizeof needle, "#define %.*s \"", (int)mlen, macro);
    const char *p = strstr(domain, needle);
    cr_assert_not_null(p, "shop_domain.h has no %s", needle);
    p += strlen(needle);
    size_t n = strcspn(p, "\"");
    snprintf(out, cap, "%.*s", (int)n, p);
}

Test(gen_services, shop_services_says_what_the_shops_code_does)
{
    size_t len;
    char *etext = read_file("../../../events/shop.events", &len);
    gen_diags d;
    memset(&d, 0, sizeof d);
    gen_schema *sc = gen_schema_parse("shop.events", etext, len, &d);
    cr_assert_not_null(sc);
    char *stext = read_file("../../../events/shop.services", &len);
    gen_services *s = gen_services_parse("shop.services", stext, len, sc, &d);
    char buf[600];
    cr_assert_not_null(s, "%s", diag(&d, 0, buf, sizeof buf));
    char *domain = source("../../../services/common/shop_domain.h");
    char *common = source("../../../services/common/shop_svc.c");
    cr_assert(strstr(common, "choreo_service_on_request(svc, \"Ping\""),
              "every shop service serves Ping");
    size_t services = 0;
    for (size_t i = 0; i < s->nroles; i++) {
        const gen_role *r = &s->roles[i];
        if (r->kind != GEN_ROLE_SERVICE)
            continue;
        services++;
        char rel[256];
        snprintf(rel, sizeof rel, "../../../services/%s/%s.c", r->name, r->name);
        char *code = source(rel);
        for (size_t k = 0; k < sc->ndecls; k++) {
            const gen_decl *e = &sc->decls[k];
            if (!e->is_event)
                continue;
            /* A decision on a held step is put in the holding service's own
             * outbox by choreo and handled by choreo for the service's
             * decision function: registering one handles and emits it. */
            bool decided = strcmp(e->name, "ChoreoHoldDecided") == 0;
            bool handles = decided ? strstr(code, "choreo_service_on_decision(") != NULL
                                   : code_handles(code, e->snake);
            bool emits = decided ? handles : code_emits(code, e->snake);
            cr_expect_eq(handles, listed(&r->handles, e->name),
                         "%s: the code %s %s, shop.services says otherwise", r->name,
                         handles ? "handles" : "does not handle", e->name);
            cr_expect_eq(emits, listed(&r->emits, e->name),
                         "%s: the code %s %s, shop.services says otherwise", r->name,
                         emits ? "emits" : "does not emit", e->name);
        }
        size_t served = 1; /* Ping */
        cr_expect(listed(&r->serves, "Ping"), "%s does not list Ping", r->name);
        const char *reg = "choreo_service_on_request(svc, SHOP_RQ_";
        for (const char *p = strstr(code, reg); p; p = strstr(p + 1, reg)) {
            const char *macro = p + strlen(reg) - strlen("SHOP_RQ_");
            char name[80];
            request_name(domain, macro, strcspn(macro, ","), name, sizeof name);
            cr_expect(listed(&r->serves, name), "%s serves %s, shop.services does not say so",
                      r->name, name);
            served++;
        }
        cr_expect_eq(r->serves.n, served, "%s: shop.services lists requests it does not serve",
                     r->name);
        free(code);
    }
    cr_assert_eq(services, 4);

    /* The shop client's calls: request(c, "service", SHOP_RQ_X ...) and
     * seed(c, "service", SHOP_RQ_X ...), and Ping of any service. */
    char *client = source("../../../services/common/shop_client.c");
    const gen_role *shop = NULL;
    for (size_t i = 0; i < s->nroles; i++)
        if (strcmp(s->roles[i].name, "shop") == 0)
            shop = &s->roles[i];
    cr_assert_not_null(shop);
    size_t calls = 0;
    for (const char *p = strstr(client, "(c, \""); p; p = strstr(p + 1, "(c, \"")) {
        const char *svc = p + 5;
        size_t slen = strcspn(svc, "\"");
        const char *macro = strstr(svc, "SHOP_RQ_");
        if (!macro || macro > svc + slen + 4)
            continue;
        char name[80];
        request_name(domain, macro, strcspn(macro, ","), name, sizeof name);
        bool found = false;
        for (size_t k = 0; k < shop->nresolved; k++)
            found = found || (strlen(shop->resolved[k].service) == slen &&
                              strncmp(shop->resolved[k].service, svc, slen) == 0 &&
                              strcmp(shop->resolved[k].request, name) == 0);
        cr_expect(found, "the shop client calls %.*s.%s; shop.services does not let it",
                  (int)slen, svc, name);
        calls++;
    }
    cr_assert_geq(calls, 5, "the scan of shop_client.c found only %zu calls", calls);
    cr_assert_eq(shop->nresolved, 5 + services, "shop calls five requests and every Ping");
    free(client);
    free(common);
    free(domain);
    free(stext);
    free(etext);
    gen_services_free(s);
    gen_schema_free(sc);
}
