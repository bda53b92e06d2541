/* Writes nats-server permissions for the roles of a *.services file. Each
 * subject allowed is one choreo uses (nats.c 3.4.1 against nats-server
 * 2.9.10): event subjects <prefix>.<Type>.<saga>, the JetStream API calls a
 * service makes at start and while fetching, acks, request subjects
 * <prefix>-rpc.<service>.<request>, and the inbox where replies come. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "emitter.h"
#include "perms.h"

bool gen_subject_prefix_valid(const char *p)
{
    size_t n = strlen(p);
    if (n == 0 || n > 32 || p[0] == '.' || p[n - 1] == '.' || strstr(p, ".."))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return false;
    }
    return true;
}

bool gen_stream_name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* Writes text as '#' comment lines of at most 78 columns after indent,
 * breaking at spaces. */
static void comment(gen_buf *b, const char *indent, const char *text)
{
    const size_t width = 78 - strlen(indent) - 2;
    while (*text) {
        size_t n = strlen(text);
        if (n > width) {
            n = width;
            while (n > 0 && text[n] != ' ')
                n--;
            if (n == 0) /* one long word: keep it whole */
                n = strcspn(text, " ");
        }
        gen_buf_printf(b, "%s# %.*s\n", indent, (int)n, text);
        text += n;
        while (*text == ' ')
            text++;
    }
}

/* A note above a group of subjects in an allow list. */
static void note(gen_buf *b, const char *text)
{
    comment(b, "      ", text);
}

static void subject(gen_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void subject(gen_buf *b, const char *fmt, ...)
{
    char s[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s, sizeof s, fmt, ap);
    va_end(ap);
    gen_buf_printf(b, "      \"%s\"\n", s);
}

/* "service order: emits A B; handles C; serves D" into buf. */
static void summary(const gen_role *r, char *buf, size_t size)
{
    const gen_word_list *lists[] = {&r->emits, &r->handles, &r->serves, &r->calls};
    static const char *const verbs[] = {"emits", "handles", "serves", "calls"};
    size_t n = (size_t)snprintf(buf, size, "%s %s", gen_role_kind_name(r->kind), r->name);
    const char *sep = ": ";
    if (r->kind == GEN_ROLE_OPERATOR)
        n += (size_t)snprintf(buf + n, size - n, ": looks up, lists and deletes consumers, "
                              "and publishes parked events of any type again (choreoctl)");
    for (size_t k = 0; k < 4 && n < size; k++) {
        if (lists[k]->n == 0)
            continue;
        n += (size_t)snprintf(buf + n, size - n, "%s%s", sep, verbs[k]);
        for (size_t i = 0; i < lists[k]->n && n < size; i++)
            n += (size_t)snprintf(buf + n, size - n, " %s", lists[k]->items[i].text);
        sep = "; ";
    }
    if (n < size)
        snprintf(buf + n, size - n, ".");
}

static void inbox(gen_buf *b, const gen_role *r, const gen_perms_opts *o)
{
    if (o->private_inboxes)
        subject(b, "_INBOX_%s.>", r->name);
    else
        subject(b, "_INBOX.>");
}

static void service_publish(gen_buf *b, const gen_role *r, const gen_perms_opts *o)
{
    const char *P = o->subject_prefix, *S = o->stream;
    if (r->emits.n)
        note(b, "the events it emits: <prefix>.<Type>.<saga>, stored by JetStream");
    for (size_t i = 0; i < r->emits.n; i++)
        subject(b, "%s.%s.*", P, r->emits.items[i].text);
    note(b, "the stream: looked up at start, created when missing");
    subject(b, "$JS.API.STREAM.INFO.%s", S);
    subject(b, "$JS.API.STREAM.CREATE.%s", S);
    if (r->handles.n) {
        note(b, "at start, the newest event of each type it handles");
        subject(b, "$JS.API.STREAM.MSG.GET.%s", S);
    }
    if (r->handles.n)
        note(b, "the durable consumer of each handler, <service>_<Type>: look up, create or "
                "update, fetch, and ack what it fetched");
    for (size_t i = 0; i < r->handles.n; i++) {
        const char *t = r->handles.items[i].text;
        subject(b, "$JS.API.CONSUMER.INFO.%s.%s_%s", S, r->name, t);
        subject(b, "$JS.API.CONSUMER.DURABLE.CREATE.%s.%s_%s", S, r->name, t);
        subject(b, "$JS.API.CONSUMER.MSG.NEXT.%s.%s_%s", S, r->name, t);
        subject(b, "$JS.ACK.%s.%s_%s.>", S, r->name, t);
    }
}

static void calls_publish(gen_buf *b, const gen_role *r, const gen_perms_opts *o)
{
    if (r->nresolved)
        note(b, "the requests it calls");
    for (size_t i = 0; i < r->nresolved; i++)
        subject(b, "%s-rpc.%s.%s", o->subject_prefix, r->resolved[i].service,
                r->resolved[i].request);
}

static void operator_publish(gen_buf *b, const gen_perms_opts *o)
{
    const char *S = o->stream;
    note(b, "the stream and its consumers: look up, list, delete");
    subject(b, "$JS.API.STREAM.INFO.%s", S);
    subject(b, "$JS.API.CONSUMER.LIST.%s", S);
    subject(b, "$JS.API.CONSUMER.NAMES.%s", S);
    subject(b, "$JS.API.CONSUMER.INFO.%s.*", S);
    subject(b, "$JS.API.CONSUMER.DELETE.%s.*", S);
    note(b, "choreoctl saga and tail: a consumer of their own for the stream's events, its "
            "pulls, acks and flow control");
    subject(b, "$JS.API.CONSUMER.CREATE.%s", S);
    subject(b, "$JS.API.CONSUMER.MSG.NEXT.%s.*", S);
    subject(b, "$JS.ACK.%s.>", S);
    subject(b, "$JS.FC.%s.>", S);
    note(b, "parked events, published again on their own subject: any type");
    subject(b, "%s.*.*", o->subject_prefix);
}

static void role_perms(gen_buf *b, const gen_role *r, const gen_perms_opts *o)
{
    char text[4096];
    summary(r, text, sizeof text);
    comment(b, "", text);
    gen_buf_printf(b, "%s_PERMISSIONS = {\n  publish: {\n    allow: [\n", r->var);
    if (r->kind == GEN_ROLE_SERVICE)
        service_publish(b, r, o);
    if (r->kind == GEN_ROLE_OPERATOR)
        operator_publish(b, o);
    calls_publish(b, r, o);
    gen_buf_printf(b, "    ]\n  }\n  subscribe: {\n    allow: [\n");
    if (r->kind == GEN_ROLE_SERVICE)
        note(b, r->nresolved ? "replies to it: JetStream API answers, PubAcks, the events it "
                               "fetches, answers to its requests"
                             : "replies to it: JetStream API answers, PubAcks, the events it "
                               "fetches");
    else if (r->kind == GEN_ROLE_CLIENT)
        note(b, "answers to its requests");
    else
        note(b, "replies to it: JetStream API answers and PubAcks");
    inbox(b, r, o);
    if (r->serves.n) {
        snprintf(text, sizeof text, "the requests it serves, in queue group %s", r->name);
        note(b, text);
    }
    for (size_t i = 0; i < r->serves.n; i++)
        subject(b, "%s-rpc.%s.%s", o->subject_prefix, r->name, r->serves.items[i].text);
    gen_buf_printf(b, "    ]\n  }\n");
    if (r->serves.n)
        gen_buf_printf(b, "  # it answers each request on the requester's reply subject\n"
                          "  allow_responses: true\n");
    gen_buf_printf(b, "}\n\n");
}

static void header(gen_buf *b, const gen_services *s, const gen_perms_opts *o)
{
    char text[1024];
    snprintf(text, sizeof text, "NATS permissions of the services, clients and operators of %s, "
             "for the events of %s: subjects under \"%s\", stream %s.", o->services_name,
             o->schema_name, o->subject_prefix, o->stream);
    comment(b, "", text);
    gen_buf_printf(b, "# Generated by choreo-gen %s; do not edit. Regenerate with\n"
                      "#   choreo-gen --nats-permissions %s %s",
                   CHOREO_GEN_VERSION, o->services_name, o->schema_name);
    if (strcmp(o->subject_prefix, "choreo") != 0)
        gen_buf_printf(b, " --subject-prefix %s", o->subject_prefix);
    if (strcmp(o->stream, "CHOREO") != 0)
        gen_buf_printf(b, " --stream %s", o->stream);
    if (o->no_users)
        gen_buf_printf(b, " --no-users");
    if (o->private_inboxes)
        gen_buf_printf(b, " --private-inboxes");
    gen_buf_printf(b, "\n#\n");
    comment(b, "", "Each NAME_PERMISSIONS variable is the permissions map of one NATS user.");
    const char *var = s->nroles ? s->roles[0].var : "NAME";
    if (o->no_users)
        snprintf(text, sizeof text, "Give each to a user of your own, as in { nkey: U..., "
                 "permissions: $%s_PERMISSIONS }: nats-server refuses a variable it never "
                 "uses.", var);
    else
        snprintf(text, sizeof text, "The authorization block at the end makes one user per "
                 "name, whose password is the variable NAME_PASSWORD: nats-server takes it "
                 "from its environment, so this file holds no secret. nats-server reads the "
                 "value as configuration: quote it, as in %s_PASSWORD='\"secret\"'.", var);
    comment(b, "", text);
    if (o->private_inboxes)
        comment(b, "", "Each user receives replies on _INBOX_<name>.> only: every program must "
                       "use that inbox prefix (nats.c: natsOptions_SetCustomInboxPrefix).");
    gen_buf_printf(b, "\n");
}

static void users(gen_buf *b, const gen_services *s)
{
    gen_buf_printf(b, "authorization {\n  users = [\n");
    for (size_t i = 0; i < s->nroles; i++) {
        const gen_role *r = &s->roles[i];
        gen_buf_printf(b, "    { user: \"%s\", password: $%s_PASSWORD, permissions: "
                          "$%s_PERMISSIONS }\n",
                       r->name, r->var, r->var);
    }
    gen_buf_printf(b, "  ]\n}\n");
}

void gen_perms_emit(const gen_services *s, const gen_perms_opts *o, gen_buf *out)
{
    header(out, s, o);
    for (size_t i = 0; i < s->nroles; i++)
        role_perms(out, &s->roles[i], o);
    if (!o->no_users)
        users(out, s);
    else if (out->len >= 2 && out->data[out->len - 2] == '\n')
        out->data[--out->len] = '\0'; /* no blank line at the end */
}
