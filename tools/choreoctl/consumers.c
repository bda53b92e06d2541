/* The consumers subcommands: the durable consumers of a service on the
 * stream, set against the handlers its code registered at its last start
 * (recorded in its database), so that a consumer a renamed or removed
 * handler left behind shows as stale and can be deleted. */
#include "consumers.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "help.h"
#include "json.h"
#include "text.h"

/* "registered", "stale" (on the server, no handler) or "missing" (a
 * handler whose consumer is not on the server: the service has not started
 * since, or it was deleted). */
bool ctl_consumer_own_filter(const choreo_consumer_entry *e)
{
    const char *dot = strchr(e->subjects, '.');
    size_t tl = strlen(e->type);
    return dot && strncmp(dot + 1, e->type, tl) == 0 && strcmp(dot + 1 + tl, ".*") == 0;
}

const char *ctl_consumer_state(const choreo_consumer_entry *e)
{
    if (e->on_server && !ctl_consumer_own_filter(e))
        return "odd filter";
    if (e->registered)
        return e->on_server ? "registered" : "missing";
    return "stale";
}

/* A paragraph per consumer with an odd filter. */
static void odd_filter_notes(const choreo_consumer_entry *list, size_t n, const char *indent)
{
    for (size_t i = 0; i < n; i++)
        if (list[i].on_server && !ctl_consumer_own_filter(&list[i]))
            printf("%s%s reads %s, not what choreo gives a handler of %s (<prefix>.%s.*): "
                   "choreo did not make it so; find out who did (another NATS user with this "
                   "service's permissions can), then choreoctl consumers delete %s --force\n",
                   indent, list[i].name,
                   list[i].subjects[0] ? list[i].subjects : "the whole stream", list[i].type,
                   list[i].type, list[i].name);
}

void ctl_consumer_notes(const choreo_consumer_entry *list, size_t n, const char *indent)
{
    odd_filter_notes(list, n, indent);
    size_t stale = 0;
    for (size_t i = 0; i < n; i++)
        stale += strcmp(ctl_consumer_state(&list[i]), "stale") == 0;
    if (stale > 0)
        printf("%s%zu stale: no handler of the service's code as it last started reads %s; "
               "choreoctl consumers delete NAME removes one\n",
               indent, stale, stale == 1 ? "it" : "them");
}

/* What "stale" means when the database records no handlers: only that they
 * are not recorded there, which holds as well for the consumers of a
 * service whose database this is not. On stderr when stdout is JSON. */
static void unrecorded_note(bool to_stderr, const char *service, const char *db)
{
    char note[CTL_DB_SHOWN_MAX * 2 + 512];
    snprintf(note, sizeof note,
             "database %s records no handlers of any service (no service with handlers has "
             "started on it since choreo recorded them), so \"stale\" says only that: it "
             "cannot tell which consumers of service %s its code reads. Check that %s is "
             "service %s's database before deleting one",
             db, service, db, service);
    if (to_stderr)
        ctl_error("%s", note);
    else
        printf("%s\n", note);
}

/* unrecorded: the database records no handlers, the service was named by
 * hand (db is the database as shown). */
static void print_text(const choreo_consumer_entry *list, size_t n, bool unrecorded,
                       const char *service, const char *db)
{
    if (n == 0) {
        printf("no durable consumers\n");
        return;
    }
    size_t wname = strlen("CONSUMER"), wtype = strlen("TYPE");
    for (size_t i = 0; i < n; i++) {
        size_t a = strlen(list[i].name), b = strlen(list[i].type);
        wname = a > wname ? a : wname;
        wtype = b > wtype ? b : wtype;
    }
    printf("%-*s  %-*s  %-10s  %10s  %11s  %10s  %s\n", (int)wname, "CONSUMER", (int)wtype,
           "TYPE", "STATE", "PENDING", "ACK PENDING", "DELIVERED", "READ BY A PROCESS");
    for (size_t i = 0; i < n; i++) {
        const choreo_consumer_entry *e = &list[i];
        if (e->on_server)
            printf("%-*s  %-*s  %-10s  %10" PRIu64 "  %11" PRIu64 "  %10" PRIu64 "  %s\n",
                   (int)wname, e->name, (int)wtype, e->type, ctl_consumer_state(e), e->pending,
                   e->ack_pending, e->delivered, e->waiting > 0 ? "yes" : "no");
        else
            printf("%-*s  %-*s  %-10s  %10s  %11s  %10s  %s\n", (int)wname, e->name, (int)wtype,
                   e->type, ctl_consumer_state(e), "-", "-", "-", "-");
    }
    for (size_t i = 0; i < n; i++)
        if (!list[i].registered || !ctl_consumer_own_filter(&list[i])) {
            putchar('\n'); /* the notes below, apart from the table */
            break;
        }
    if (unrecorded) {
        odd_filter_notes(list, n, "");
        unrecorded_note(false, service, db);
    } else {
        ctl_consumer_notes(list, n, "");
    }
}

static int print_json(const choreo_consumer_entry *list, size_t n)
{
    ctl_json j;
    ctl_json_init(&j, (size_t)16 << 20, true, 0);
    ctl_json_array_begin(&j);
    for (size_t i = 0; i < n; i++) {
        const choreo_consumer_entry *e = &list[i];
        char t[32];
        ctl_json_object_begin(&j);
        ctl_json_kstr(&j, "name", e->name);
        ctl_json_kstr(&j, "type", e->type);
        ctl_json_kstr(&j, "subjects", e->subjects);
        ctl_json_kstr(&j, "state", ctl_consumer_state(e));
        ctl_json_kbool(&j, "registered", e->registered);
        ctl_json_key(&j, "registered_at");
        if (e->registered_at_ms > 0) {
            ctl_time_iso(e->registered_at_ms, true, t);
            ctl_json_cstr(&j, t);
        } else {
            ctl_json_null(&j);
        }
        ctl_json_kbool(&j, "on_server", e->on_server);
        if (e->on_server) {
            ctl_json_key(&j, "created_at");
            ctl_time_iso(e->created_ms, true, t);
            ctl_json_cstr(&j, t);
            ctl_json_kuint(&j, "pending", e->pending);
            ctl_json_kuint(&j, "ack_pending", e->ack_pending);
            ctl_json_kuint(&j, "delivered", e->delivered);
            ctl_json_kint(&j, "pull_requests_waiting", e->waiting);
        }
        ctl_json_object_end(&j);
    }
    ctl_json_array_end(&j);
    int rc = CTL_EXIT_OK;
    if (j.failed) {
        ctl_error("out of memory writing the list");
        rc = CTL_EXIT_FAIL;
    } else {
        printf("%s\n", j.buf ? j.buf : "[]");
    }
    ctl_json_free(&j);
    return rc;
}

/* Says what went wrong in a choreo_admin_consumer* call; the status picks
 * the exit code. */
static int failed(const char *cmd, choreo_status st)
{
    ctl_error("%s: %s", cmd, choreo_last_error());
    return ctl_exit_of(st);
}

/* The server's rule for a consumer's name (nats-server refuses any other
 * when the consumer is made), so no consumer is named otherwise. */
#define CONSUMER_NAME_MAX 255
static const char consumer_name_banned[] = " \t\r\n\f.*>/\\";

/* Refuses a name no consumer can have before NATS is asked: the answer
 * would be "no consumer" of that name, as if it were a typo of one. */
static int check_name(const char *cmd, const char *name)
{
    size_t len = strlen(name);
    if (len > 0 && len <= CONSUMER_NAME_MAX && !name[strcspn(name, consumer_name_banned)])
        return CTL_EXIT_OK;
    char *shown = ctl_text_clean(name, len);
    ctl_error("%s: invalid consumer name \"%s\": the server names a consumer with 1 to %d "
              "bytes, none of them a space, tab or line break, '.', '*', '>', '/' or '\\'; "
              "give a name from the CONSUMER column of choreoctl consumers list", cmd,
              shown ? shown : "?", CONSUMER_NAME_MAX);
    free(shown);
    return CTL_EXIT_USAGE;
}

/* Refuses a service given (--service or CHOREO_SERVICE) that is not the
 * one the database records: set against another service's record, each of
 * the given service's consumers shows as stale, and a delete would take one
 * that service still reads, with its position. Sets *unrecorded when a
 * service is given for a database that records none, which cannot be told
 * from its own. */
static int check_service(choreo_admin *adm, const char *cmd, const char *given,
                         const char *shown, bool *unrecorded)
{
    char recorded[64];
    if (choreo_admin_service(adm, recorded, sizeof recorded) != CHOREO_OK) {
        ctl_error("%s: %s", cmd, choreo_last_error());
        return CTL_EXIT_FAIL;
    }
    *unrecorded = given && !recorded[0];
    if (!given || !recorded[0] || strcmp(given, recorded) == 0)
        return CTL_EXIT_OK;
    const char *env = getenv("CHOREO_SERVICE");
    bool from_env = env && strcmp(env, given) == 0;
    ctl_error("%s: --service %s%s, but database %s belongs to service %s: pass service %s's "
              "database, or leave --service out%s to work on service %s's",
              cmd, given, from_env ? " (from CHOREO_SERVICE in the environment)" : "", shown,
              recorded, given, from_env ? " and unset CHOREO_SERVICE" : "", recorded);
    return CTL_EXIT_USAGE;
}

struct args {
    bool help, json, force;
    const char *name;
};

static int parse(const char *cmd, bool deleting, int argc, char **argv, struct args *a)
{
    memset(a, 0, sizeof *a);
    bool flags = true;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (flags && (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)) {
            a->help = true;
            return CTL_EXIT_OK;
        }
        if (flags && strcmp(arg, "--") == 0) {
            flags = false;
        } else if (flags && !deleting && strcmp(arg, "--json") == 0) {
            a->json = true;
        } else if (flags && deleting && strcmp(arg, "--force") == 0) {
            a->force = true;
        } else if (flags && arg[0] == '-') {
            ctl_error("%s: unknown flag %s: see choreoctl %s --help", cmd, arg, cmd);
            return CTL_EXIT_USAGE;
        } else if (deleting && !a->name) {
            a->name = arg;
        } else {
            ctl_error("%s: unexpected argument \"%s\": see choreoctl %s --help", cmd, arg, cmd);
            return CTL_EXIT_USAGE;
        }
    }
    if (deleting && !a->name) {
        ctl_error("%s: missing consumer name: give a name from the CONSUMER column of choreoctl "
                  "consumers list", cmd);
        return CTL_EXIT_USAGE;
    }
    return deleting ? check_name(cmd, a->name) : CTL_EXIT_OK;
}

int ctl_consumers_main(ctl_settings *s, int argc, char **argv)
{
    int rc = ctl_subcommand_intro("consumers", "list or delete", argc, argv, ctl_help_consumers);
    if (rc >= 0)
        return rc;
    bool deleting = strcmp(argv[0], "delete") == 0;
    if (!deleting && strcmp(argv[0], "list") != 0) {
        ctl_error("consumers: unknown subcommand \"%s\": use list or delete (see choreoctl "
                  "consumers --help)", argv[0]);
        return CTL_EXIT_USAGE;
    }
    const char *cmd = deleting ? "consumers delete" : "consumers list";
    struct args a;
    rc = parse(cmd, deleting, argc - 1, argv + 1, &a);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (a.help) {
        ctl_help_consumers(stdout);
        return CTL_EXIT_OK;
    }
    if (s->ndbs > 1) {
        ctl_error("%s: %d --db given: consumers works on one service's database, pass one "
                  "--db FILE", cmd, s->ndbs);
        return CTL_EXIT_USAGE;
    }
    /* The service is the one given, or else the one recorded in the
     * database; ctl_settings_check names choreoctl itself otherwise. */
    char service[64] = "";
    const char *given = choreo_config_get(s->cfg, "service");
    if (given)
        snprintf(service, sizeof service, "%s", given);
    const char *svc = service[0] ? service : NULL;
    choreo_admin *adm = NULL;
    /* Even a delete only reads the database: it deletes on the server. */
    if ((rc = ctl_admin_open(cmd, s, false, &adm)) != CTL_EXIT_OK)
        return rc;
    char shown[CTL_DB_SHOWN_MAX];
    choreo_db_display(choreo_config_get(s->cfg, "db"), shown, sizeof shown);
    bool unrecorded = false;
    rc = check_service(adm, cmd, svc, shown, &unrecorded);
    if (rc != CTL_EXIT_OK) {
        choreo_admin_close(adm);
        return rc;
    }
    if (deleting) {
        choreo_status st = choreo_admin_consumer_delete(adm, svc, a.name, a.force);
        if (st != CHOREO_OK)
            rc = failed(cmd, st);
        else
            printf("deleted consumer %s; its events stay in the stream\n", a.name);
    } else {
        choreo_consumer_entry *list = NULL;
        size_t n = 0;
        choreo_status st = choreo_admin_consumers(adm, svc, &list, &n);
        if (st != CHOREO_OK) {
            rc = failed(cmd, st);
        } else if (a.json) {
            rc = print_json(list, n);
            if (unrecorded && n > 0)
                unrecorded_note(true, service, shown);
        } else {
            print_text(list, n, unrecorded, service, shown);
        }
        free(list);
    }
    choreo_admin_close(adm);
    return rc;
}
