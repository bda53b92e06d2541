/* Help texts. Each command's help is complete on its own: usage, every flag,
 * the settings it uses, examples and exit codes, so that an operator in the
 * middle of an incident never has to look elsewhere. */
#include "help.h"

#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char settings_text[] =
    "Settings (a flag anywhere on the command line, or a CHOREO_* variable;\n"
    "flags win over variables):\n"
    "  --db FILE|URL          CHOREO_DB               the service's SQLite file, or its\n"
    "                                                 PostgreSQL database as\n"
    "                                                 postgresql://USER@HOST:PORT/DBNAME\n"
    "                                                 (required by dead, consumers, sagas\n"
    "                                                 and review; saga and status take\n"
    "                                                 several). Output names a URL\n"
    "                                                 without its user and password\n"
    "  --nats-url URLS        CHOREO_NATS_URL         NATS servers, comma-separated, used by\n"
    "                                                 retry, consumers, status, saga and tail\n"
    "                                                 [nats://127.0.0.1:4222]\n"
    "  --stream NAME          CHOREO_STREAM           the services' stream [CHOREO]\n"
    "  --prefix PREFIX        CHOREO_PREFIX           the events' subject prefix [choreo]\n"
    "  --nats-user NAME       CHOREO_NATS_USER        NATS user; needs --nats-password\n"
    "  --nats-password PASS   CHOREO_NATS_PASSWORD    NATS password (give it in the variable:\n"
    "                                                 a flag's value shows in ps)\n"
    "  --nats-token TOKEN     CHOREO_NATS_TOKEN       NATS token (instead of a user; in the\n"
    "                                                 variable too)\n"
    "  --nats-creds FILE      CHOREO_NATS_CREDS       NATS credentials file\n"
    "  --tls-ca FILE          CHOREO_TLS_CA           TLS CA certificate\n"
    "  --tls-cert FILE        CHOREO_TLS_CERT         TLS client certificate; needs --tls-key\n"
    "  --tls-key FILE         CHOREO_TLS_KEY          TLS client key\n"
    "  --connect-wait-ms MS   CHOREO_CONNECT_WAIT_MS  how long retry waits for NATS; 0 means\n"
    "                                                 5000 for choreoctl [0]\n"
    "  --busy-timeout-ms MS   CHOREO_BUSY_TIMEOUT_MS  how long to wait while the running\n"
    "                                                 service holds the database lock [5000]\n"
    "  --log-level LEVEL      CHOREO_LOG_LEVEL        error|warn|info|debug, logfmt lines on\n"
    "                                                 stderr [warn for choreoctl]\n"
    "The other choreo settings are accepted too, so the environment of a service\n"
    "works as it is (choreoctl --help-settings lists them all); they have no\n"
    "effect here. An unknown CHOREO_* variable is refused, as it is by services.\n";

static const char exit_text[] =
    "Exit status:\n"
    "  0  success\n"
    "  1  the operation failed: the database cannot be opened or is not a choreo\n"
    "     service's database, no message has that ID, the message is not parked\n"
    "     (any more), NATS could not be reached or did not confirm the publish;\n"
    "     with retry --all, at least one retry failed\n"
    "  2  usage error: unknown command or flag, missing --db, an ID that is not a\n"
    "     positive whole number, a consumer name no consumer can have (empty, over\n"
    "     255 bytes, or with a space, tab or line break, '.', '*', '>', '/' or\n"
    "     '\\'), a --service other than the one the database records, an invalid\n"
    "     --state or --limit, an invalid setting or CHOREO_* variable\n"
    "A failure is said on standard error, starting \"choreoctl: COMMAND:\"; with\n"
    "--json nothing is then printed on standard output, except by status, which\n"
    "always prints its object, with each database's error in it.\n";

void ctl_help_main(FILE *f)
{
    fputs("choreoctl: inspect and repair the parked messages and the durable consumers\n"
          "of a choreo service, decide the steps it holds for review, and follow the\n"
          "events of its sagas\n"
          "\n"
          "Usage:\n"
          "  choreoctl [SETTINGS] dead list [--status parked|retried|dropped|all] [--json]\n"
          "  choreoctl [SETTINGS] dead show ID [--json]\n"
          "  choreoctl [SETTINGS] dead retry ID | --all\n"
          "  choreoctl [SETTINGS] dead drop ID\n"
          "  choreoctl [SETTINGS] consumers list [--json]\n"
          "  choreoctl [SETTINGS] consumers delete NAME [--force]\n"
          "  choreoctl [SETTINGS] status [--db FILE]... [--dir DIR]... [--json]\n"
          "  choreoctl [SETTINGS] sagas [--state S] [--limit N] [--json]\n"
          "  choreoctl [SETTINGS] saga SAGA_ID [--dir DIR]... [--db FILE]... [--json]\n"
          "                       [--svg FILE] [--limit N]\n"
          "  choreoctl [SETTINGS] tail [--type TYPE]... [--saga SAGA_ID] [--from-start]\n"
          "                       [--json]\n"
          "  choreoctl [SETTINGS] review list [--state held|approved|rejected|expired|all]\n"
          "                       [--json]\n"
          "  choreoctl [SETTINGS] review approve|reject ID [--note TEXT] [--by NAME]\n"
          "                       [--json]\n"
          "  choreoctl [dead [list|show|retry|drop] | consumers | status | sagas | saga |\n"
          "            tail | review [list|approve|reject]] --help\n"
          "  choreoctl --help-settings\n"
          "\n"
          "A service parks a message in its table choreo_dead when its handler returns\n"
          "CHOREO_REJECT or the message cannot be applied (malformed, too large, a\n"
          "schema version it does not accept); the consumer then moves on. choreoctl\n"
          "works on that table in the service's database (--db), and may run while\n"
          "the service runs. Once the cause is fixed, `dead retry` publishes the\n"
          "message again with its original event id, for the consumer that parked it\n"
          "only (the others ack it unapplied); `dead drop` closes it for good. Of the\n"
          "dead commands, only retry uses NATS.\n"
          "\n"
          "`status` shows each service at a glance: whether it runs, its outbox\n"
          "backlog and relay, its consumers' backlog on the stream, what is parked.\n"
          "`sagas` lists the orchestrated saga instances a service owns, newest first:\n"
          "state, phase, what each waits for, its steps.\n"
          "`saga` reads one saga's events from the stream and sets them against the\n"
          "services' databases: who applied each event and when, who parked it and\n"
          "why, the saga barrier's marks, and where an orchestrated saga stands; as\n"
          "text, JSON or an SVG sequence diagram.\n"
          "`tail` prints the stream's events as they arrive.\n"
          "`review` lists the steps a service holds for a person's decision (a manual\n"
          "review, choreo_tx_hold) and approves or rejects one; the service carries\n"
          "the step on once its relay publishes the decision.\n"
          "\n"
          "Commands:\n"
          "  dead list     list parked messages (or retried, dropped, all)\n"
          "  dead show     one message: every field and its decoded body\n"
          "  dead retry    publish a parked message again and mark it retried\n"
          "  dead drop     mark a parked message dropped, never to be retried\n"
          "  consumers list    the service's durable consumers on the stream, and\n"
          "                    which of them its code still registers\n"
          "  consumers delete  delete a stale consumer from the stream\n"
          "  status        per service: process, outbox and relay, consumers, parked\n"
          "                messages and the last error\n"
          "  sagas         the orchestrated saga instances of a service, newest first\n"
          "  saga          one saga's timeline: its events from the stream and, from\n"
          "                the services' databases, who applied or parked each one\n"
          "                and, when it is orchestrated, its state and transitions\n"
          "  tail          print the events of the stream as they arrive\n"
          "  review list   the steps held for a decision (or decided, expired, all)\n"
          "  review approve, review reject\n"
          "                decide a held step, saying who decided and why\n"
          "Each has its own --help.\n"
          "\n",
          f);
    fputs(settings_text, f);
    fputs("\n"
          "Examples:\n"
          "  choreoctl --db /var/lib/inventory/inventory.db dead list\n"
          "  CHOREO_DB=inventory.db choreoctl dead show 12\n"
          "  choreoctl --db inventory.db --nats-url nats://nats:4222 dead retry 12\n"
          "  choreoctl --db inventory.db dead drop 13\n"
          "  choreoctl --db inventory.db consumers list\n"
          "  choreoctl --nats-url nats://nats:4222 status --dir /var/lib/shop\n"
          "  choreoctl --db order.db sagas --state COMPENSATING\n"
          "  choreoctl --nats-url nats://nats:4222 saga 01M8820SZ077Y3ENXTCWDQ25YP \\\n"
          "            --dir /var/lib/shop\n"
          "  choreoctl --nats-url nats://nats:4222 tail --type OrderCancelled\n"
          "  choreoctl --db payment.db review list\n"
          "  choreoctl --db payment.db review approve 3 --note \"known customer\"\n"
          "\n",
          f);
    fputs(exit_text, f);
}

/* The settings whose meaning or default is not a service's, as
 * --help-settings describes them for choreoctl. */
static const struct {
    const char *flag;
    const char *text;
} own_meaning[] = {
    { "--db", "the service's SQLite file, or its PostgreSQL database as "
              "postgresql://USER@HOST:PORT/DBNAME (dead, consumers, sagas and review need one; "
              "status and saga take several)" },
    { "--log-level", "log level (error|warn|info|debug) [" CTL_DEFAULT_LOG_LEVEL
                     " for choreoctl]" },
    { "--connect-wait-ms", "how long dead retry, consumers and status wait for NATS; 0 means "
                           "5000 for choreoctl [0]" },
    { "--nats-ping-interval-ms", "how often choreoctl pings its NATS server, ms; after two "
                                 "PINGs without a PONG the connection counts as lost (tail "
                                 "says so and reconnects) [" CTL_DEFAULT_PING_INTERVAL_MS
                                 " for choreoctl]" },
};

/* One line of choreo_config_print_help ("  --db  CHOREO_DB  text"), with
 * choreoctl's text for the settings of own_meaning. */
static void settings_line(FILE *f, const char *line)
{
    const char *flag = line + strspn(line, " ");
    size_t flag_len = strcspn(flag, " \n");
    for (size_t i = 0; i < sizeof own_meaning / sizeof own_meaning[0]; i++) {
        if (strlen(own_meaning[i].flag) != flag_len ||
            strncmp(flag, own_meaning[i].flag, flag_len) != 0)
            continue;
        const char *var = flag + flag_len + strspn(flag + flag_len, " ");
        const char *text = var + strcspn(var, " \n");
        text += strspn(text, " ");
        if (*text && *text != '\n') {
            fprintf(f, "%.*s%s\n", (int)(text - line), line, own_meaning[i].text);
            return;
        }
    }
    fputs(line, f);
}

void ctl_help_settings(FILE *f, const choreo_config *cfg)
{
    fputs("choreoctl reads the same settings as choreo services. It uses db, the NATS\n"
          "settings (for retry, consumers, status, saga and tail), stream and prefix,\n"
          "busy_timeout_ms and log_level; the others are accepted and have no effect.\n"
          "service is not required.\n\n",
          f);
    /* The library describes the settings for a service; the few that mean
     * something else here are said in choreoctl's words. */
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    if (m)
        choreo_config_print_help(cfg, m);
    if (!m || fclose(m) != 0) {
        free(text);
        choreo_config_print_help(cfg, f);
        return;
    }
    for (char *line = text; *line;) {
        char *nl = strchr(line, '\n');
        char *next = nl ? nl + 1 : line + strlen(line);
        char saved = *next;
        *next = '\0';
        settings_line(f, line);
        *next = saved;
        line = next;
    }
    free(text);
}

void ctl_help_dead(FILE *f)
{
    fputs("choreoctl dead: the parked (dead-letter) messages of a service\n"
          "\n"
          "Usage:\n"
          "  choreoctl [SETTINGS] dead list [--status parked|retried|dropped|all] [--json]\n"
          "  choreoctl [SETTINGS] dead show ID [--json]\n"
          "  choreoctl [SETTINGS] dead retry ID | --all\n"
          "  choreoctl [SETTINGS] dead drop ID\n"
          "\n"
          "Every parked message has an ID (the ID column of dead list) and a status:\n"
          "  parked    waiting for a person; the only status retry and drop act on\n"
          "  retried   published again by dead retry\n"
          "  dropped   closed by dead drop, kept for the record\n"
          "\n"
          "A typical repair: dead list, dead show ID to read the reason and the body,\n"
          "fix the cause (deploy the corrected handler, add the missing row), then\n"
          "dead retry ID; or dead drop ID when the message must never be applied.\n"
          "Each subcommand has its own --help.\n"
          "\n",
          f);
    fputs(settings_text, f);
    fputc('\n', f);
    fputs(exit_text, f);
}

void ctl_help_dead_list(FILE *f)
{
    fputs("choreoctl dead list: list parked messages, oldest first\n"
          "\n"
          "Usage:\n"
          "  choreoctl [SETTINGS] dead list [--status parked|retried|dropped|all] [--json]\n"
          "\n"
          "Flags:\n"
          "  --status S   which messages: parked (the default), retried, dropped or all\n"
          "  --json       one JSON array of objects instead of a table\n"
          "  -h, --help   this text\n"
          "\n"
          "The table has the columns ID, PARKED (UTC), STATUS, CONSUMER (the durable\n"
          "consumer <service>_<EventType> that parked it), TYPE, EVENT ID, ATTEMPTS\n"
          "(deliveries when parked) and REASON, cut to fit the terminal (dead show\n"
          "prints it whole). A \"-\" stands for a value the message did not have, as\n"
          "when its body could not be decoded.\n"
          "\n"
          "Each JSON object has the keys id, consumer, event_id, event_type, subject,\n"
          "reason, attempts, parked_at_ms and updated_at_ms (unix milliseconds;\n"
          "updated_at_ms is 0 until the message is retried or dropped), parked_at and\n"
          "updated_at (the same as UTC ISO-8601 text, updated_at null when 0), status\n"
          "and body_len (bytes).\n"
          "\n"
          "Examples:\n"
          "  choreoctl --db inventory.db dead list\n"
          "  choreoctl --db inventory.db dead list --status all --json\n"
          "  choreoctl --db inventory.db dead list --json | jq '.[].event_id'\n"
          "\n",
          f);
    fputs(settings_text, f);
    fputc('\n', f);
    fputs(exit_text, f);
}

void ctl_help_dead_show(FILE *f)
{
    fputs("choreoctl dead show: one parked message, whole\n"
          "\n"
          "Usage:\n"
          "  choreoctl [SETTINGS] dead show ID [--json]\n"
          "\n"
          "Arguments and flags:\n"
          "  ID           the message's number, from the ID column of dead list\n"
          "  --json       one JSON object instead of text\n"
          "  -h, --help   this text\n"
          "\n"
          "Prints every field of the entry, then its body. When the body is a choreo\n"
          "envelope (a msgpack map with id, type, v, saga, src, ts, data and perhaps\n"
          "cause), it prints the envelope's fields and its data as JSON; msgpack\n"
          "binary values appear as {\"$bin\": HEX}, extension values as\n"
          "{\"$ext\": TYPE, \"hex\": HEX}. Otherwise it says why the body is not a valid\n"
          "envelope and prints a hex dump of its first 256 bytes.\n"
          "\n"
          "The JSON object has the keys of dead list --json, plus \"envelope\": an object\n"
          "with the keys id, type, v, saga, cause (null when absent), src, ts and data,\n"
          "or null, in which case \"envelope_error\" says why and \"body_hex\" holds the\n"
          "whole body in hex.\n"
          "\n"
          "Examples:\n"
          "  choreoctl --db inventory.db dead show 12\n"
          "  choreoctl --db inventory.db dead show 12 --json | jq .envelope.data\n"
          "\n",
          f);
    fputs(settings_text, f);
    fputc('\n', f);
    fputs(exit_text, f);
}

void ctl_help_dead_retry(FILE *f)
{
    fputs("choreoctl dead retry: publish parked messages again\n"
          "\n"
          "Usage:\n"
          "  choreoctl [SETTINGS] dead retry ID\n"
          "  choreoctl [SETTINGS] dead retry --all\n"
          "\n"
          "Arguments and flags:\n"
          "  ID           the message's number, from the ID column of dead list\n"
          "  --all        retry every parked message, oldest first, reporting each;\n"
          "               when NATS cannot be reached (or refuses the login), it stops\n"
          "               at the first and says how many were not tried\n"
          "  -h, --help   this text\n"
          "\n"
          "Publishes the message's original body on its original subject, so it keeps\n"
          "its original event id, waits for JetStream to confirm, and marks the entry\n"
          "retried. The message carries the header Choreo-Retry-For naming the\n"
          "consumer that parked it (the CONSUMER column of dead list): that consumer\n"
          "runs its handler again (fix the cause first); every other consumer of the\n"
          "subject acks it without applying it, however old the event is, so a\n"
          "retry never applies an event twice elsewhere. A message whose handler\n"
          "rejects it again is parked again, as a new entry. Only parked messages can\n"
          "be retried, each once. Needs NATS: see the settings below.\n"
          "\n"
          "Examples:\n"
          "  choreoctl --db inventory.db dead retry 12\n"
          "  choreoctl --db inventory.db --nats-url nats://nats:4222 \\\n"
          "            --nats-creds /etc/choreo/inventory.creds dead retry --all\n"
          "\n",
          f);
    fputs(settings_text, f);
    fputc('\n', f);
    fputs(exit_text, f);
}

void ctl_help_dead_drop(FILE *f)
{
    fputs("choreoctl dead drop: close a parked message without applying it\n"
          "\n"
          "Usage:\n"
          "  choreoctl [SETTINGS] dead drop ID\n"
          "\n"
          "Arguments and flags:\n"
          "  ID           the message's number, from the ID column of dead list\n"
          "  -h, --help   this text\n"
          "\n"
          "Marks a parked message dropped. It stays in the table for the record\n"
          "(dead list --status dropped) and can no longer be retried. Nothing is\n"
          "published: if the saga needs a compensation, emit it from the service.\n"
          "\n"
          "Example:\n"
          "  choreoctl --db inventory.db dead drop 13\n"
          "\n",
          f);
    fputs(settings_text, f);
    fputc('\n', f);
    fputs(exit_text, f);
}

void ctl_help_consumers(FILE *f)
{
    fputs("choreoctl consumers: the durable consumers of a service\n"
          "\n"
          "Usage:\n"
          "  choreoctl [SETTINGS] [--service NAME] consumers list [--json]\n"
          "  choreoctl [SETTINGS] [--service NAME] consumers delete NAME [--force]\n"
          "\n"
          "Each handler of a service reads the stream through a durable consumer named\n"
          "<service>_<EventType>. A consumer stays on the server when its handler is\n"
          "renamed or removed (or was registered for a misspelt type), keeping its\n"
          "position and unacknowledged messages. At each start a service records the\n"
          "handlers its code registers in its database; list sets the consumers on\n"
          "the stream against that record:\n"
          "  registered  a handler of the service reads it\n"
          "  stale       on the server, but no handler reads it: delete it\n"
          "  missing     registered, but not on the server (the service has not\n"
          "              started since it was deleted; it creates it at start)\n"
          "  odd filter  on the server with the service's name, but reading other\n"
          "              subjects than <prefix>.<EventType>.*: choreo did not make\n"
          "              it so; find out who did, then delete it with --force\n"
          "with PENDING (events not yet delivered), ACK PENDING (delivered, not yet\n"
          "acknowledged), DELIVERED and whether a process reads it now. When none of\n"
          "them is on the server, list checks that the stream is there: with a wrong\n"
          "--stream or --nats-url it says so and exits 1, rather than show them all\n"
          "missing.\n"
          "\n"
          "delete removes a consumer and its position from the stream; the events\n"
          "stay. It refuses a registered consumer (the service would create it again,\n"
          "from its consumer_start setting: all, new or a time) and one a process\n"
          "is reading, unless --force is given.\n"
          "\n"
          "The database (--db) is one service's: a --service (or CHOREO_SERVICE) other\n"
          "than the one it records is refused with exit status 2, since set against\n"
          "another service's record every consumer would look stale. A database that\n"
          "records no handlers cannot tell: --service is taken as given, and list\n"
          "says that \"stale\" then means only \"not recorded here\".\n"
          "\n"
          "Flags:\n"
          "  --service NAME  the service (default: the one recorded in the database;\n"
          "                  another is refused)\n"
          "  --json          list: one JSON array of objects with the keys name, type,\n"
          "                  subjects, state, registered, registered_at, on_server and,\n"
          "                  when on_server, created_at, pending, ack_pending,\n"
          "                  delivered and pull_requests_waiting\n"
          "  --force         delete: also a registered consumer, or one being read\n"
          "  -h, --help      this text\n"
          "\n"
          "Examples:\n"
          "  choreoctl --db shipping.db consumers list\n"
          "  choreoctl --db shipping.db consumers delete shipping_OrderComplete\n"
          "\n",
          f);
    fputs(settings_text, f);
    fputc('\n', f);
    fputs(exit_text, f);
}

void ctl_help_sagas(FILE *f)
{
    fputs("choreoctl sagas: the orchestrated saga instances of a service\n"
          "\n"
          "Usage:\n"
          "  choreoctl [SETTINGS] sagas [--state S] [--limit N] [--json]\n"
          "\n"
          "A service that orchestrates sagas (choreo_service_saga) records each\n"
          "instance in its database, with every transition it went through. sagas\n"
          "lists them, newest first, with the columns\n"
          "  SAGA           the saga id\n"
          "  DEFINITION     the saga definition it runs\n"
          "  STATE          the last state reached: the initial one, a step's, or\n"
          "                 COMPENSATING, COMPLETED, FAILED\n"
          "  PHASE          RUNNING, CONFIRMING (a TCC group's confirms are out),\n"
          "                 COMPENSATING, COMPLETED or FAILED\n"
          "  STEPS          one letter per step, in the definition's order:\n"
          "                   -  not started\n"
          "                   P  its command sent, its reply awaited\n"
          "                   D  done\n"
          "                   K  confirmed (a TCC step)\n"
          "                   F  failed\n"
          "                   T  timed out\n"
          "                   X  its compensation sent, the answer awaited\n"
          "                   C  compensated\n"
          "  FAILED STEP    the step whose failure or timeout made it compensate\n"
          "  STARTED, UPDATED  when it started and last moved (UTC)\n"
          "  TRANSITIONS    how many transitions it went through\n"
          "  WAITING FOR    the reply it waits for and the step it belongs to, as\n"
          "                 \"PointsAwarded of award-points\"; \"-\" once it has ended\n"
          "An instance stuck in RUNNING or COMPENSATING waits for a participant that\n"
          "does not answer: see its timeline with choreoctl saga SAGA_ID --dir DIR.\n"
          "sagas may run while the service runs.\n"
          "\n"
          "Flags:\n"
          "  --state S    only instances whose state or phase is S (exactly, such as\n"
          "               COMPENSATING, RUNNING, FAILED or a step's state)\n"
          "  --limit N    list at most the newest N [100]; when there are more, stderr\n"
          "               says so\n"
          "  --json       one JSON array of objects instead of a table\n"
          "  -h, --help   this text\n"
          "\n"
          "Each JSON object has the keys saga, definition, state, phase, position (what\n"
          "it waits for, null once ended), steps, failed_step (null when none),\n"
          "started_at and updated_at (UTC ISO-8601 text), started_at_ms and\n"
          "updated_at_ms (unix milliseconds) and transitions (their number). A\n"
          "database without instances prints \"no orchestrated sagas in DB\", or [].\n"
          "\n"
          "Settings, as the services take them (a flag, or its CHOREO_* variable):\n"
          "  --db FILE (the orchestrating service's database; one), --busy-timeout-ms MS\n"
          "  (how long to wait for a database a writer holds [5000]). The other choreo\n"
          "  settings are accepted and have no effect here (choreoctl --help-settings\n"
          "  lists them all).\n"
          "\n"
          "Examples:\n"
          "  choreoctl --db order.db sagas\n"
          "  choreoctl --db order.db sagas --state COMPENSATING\n"
          "  choreoctl --db order.db sagas --state RUNNING --json | jq -r '.[].saga'\n"
          "\n"
          "Exit status:\n"
          "  0  the instances were listed (also none)\n"
          "  1  the database cannot be opened or read, or is not a choreo service's\n"
          "     database\n"
          "  2  usage error: no database given or more than one, an unknown flag or an\n"
          "     unexpected argument, an invalid --state or --limit, an invalid setting\n"
          "     or CHOREO_* variable\n",
          f);
}

/* What saga and tail read of the settings: they connect to NATS themselves. */
static const char stream_settings_text[] =
    "NATS settings, as the services take them (a flag, or its CHOREO_* variable):\n"
    "  --nats-url URLS, --stream NAME, --prefix PREFIX, --nats-inbox-prefix PREFIX,\n"
    "  the login --nats-user and --nats-password, --nats-token, --nats-creds FILE\n"
    "  or --nats-nkey and --nats-nkey-seed FILE, TLS --tls-ca, --tls-cert and\n"
    "  --tls-key, and --nats-ping-interval-ms MS [" CTL_DEFAULT_PING_INTERVAL_MS " for choreoctl].\n"
    "The other choreo settings are accepted and have no effect here (choreoctl\n"
    "--help-settings lists them all).\n";

void ctl_help_saga(FILE *f)
{
    fputs("choreoctl saga: the timeline of one saga\n"
          "\n"
          "Usage:\n"
          "  choreoctl [SETTINGS] saga SAGA_ID [--dir DIR]... [--db FILE]... [--json]\n"
          "                       [--svg FILE] [--limit N]\n"
          "\n"
          "Reads every event of the saga from the stream (its subjects are\n"
          "<prefix>.*.<SAGA_ID>; an ephemeral consumer reads them and is deleted\n"
          "afterwards) and, from the services' databases, which consumers applied each\n"
          "event and when, which parked it and why, and the marks of the saga barrier.\n"
          "It prints one line per event, in the order of their emit time:\n"
          "  OFFSET     milliseconds since the saga's first event (the envelopes' ts)\n"
          "  TYPE, SRC  the event's type and the service that emitted it\n"
          "  EVENT ID   the event's id\n"
          "  CAUSE      the id of the event whose handler emitted it (\"-\": a command)\n"
          "  KIND       failure (parked, not a choreo envelope, or Rejected or Failed in\n"
          "             its type), compensation (a consumer applied it behind a barrier\n"
          "             compensation, or Cancelled in its type) or normal\n"
          "  APPLIED BY / PARKED BY  each consumer <service>_<Type> that applied it,\n"
          "             with the offset of its transaction and the barrier marks it\n"
          "             wrote, then each one that parked it, with its reason\n"
          "and then the saga's barrier marks (offset, service, step, action or\n"
          "compensation, and the application that wrote it). A mark is matched to the\n"
          "application in the same database whose inbox mark precedes it most closely\n"
          "(within a second); when two applications share that millisecond, it is left\n"
          "unmatched. A database knows only what it still holds: inbox marks and barrier\n"
          "rows are pruned after inbox_retention_s.\n"
          "\n"
          "When one of the databases read is the one of the service that orchestrates\n"
          "the saga (choreo_service_saga), a block follows: the service, the\n"
          "definition, the instance's state and phase, what it waits for (or that it\n"
          "has ended, and which step failed), its steps as letters (as choreoctl sagas\n"
          "shows them, with what the letters there mean) and every transition it went\n"
          "through: its offset, FROM -> TO, the event that moved it (type and id; none\n"
          "for the start) and what happened (\"b done\", \"c failed: compensating\").\n"
          "\n",
          f);
    fputs("Arguments and flags:\n"
          "  SAGA_ID      the saga's id (1 to 64 of A-Z a-z 0-9 _ -)\n"
          "  --dir DIR    read every choreo database (*.db) in DIR, such as the work\n"
          "               directory that shop-demo --keep leaves; repeatable, up to 16\n"
          "               times\n"
          "  --db FILE    read this service's database, a file or a postgresql:// URL;\n"
          "               repeatable, up to 64 times. Without --dir and --db, or\n"
          "               CHOREO_DB, only the stream is read\n"
          "  --json       one JSON object instead of text\n"
          "  --svg FILE   also draw the timeline into FILE as an SVG sequence diagram:\n"
          "               a lane per service, the events from top to bottom, an arrow\n"
          "               from the emitter to each service that applied or parked the\n"
          "               event; failures red, compensations orange. FILE is replaced,\n"
          "               unless it is a SQLite database (one of those read, or any\n"
          "               other), which is refused before anything is read\n"
          "  --limit N    read at most N events [10000]; when the saga has more, the\n"
          "               first N are shown and stderr says so\n"
          "  -h, --help   this text\n"
          "\n"
          "The JSON object has the keys saga, stream, subjects, events_in_stream,\n"
          "truncated, data_omitted, first_ts (unix ms) and at, databases (path, service),\n"
          "events and barrier. Each event has seq (stream sequence), offset_ms, at, ts,\n"
          "stored_offset_ms (when the stream stored it), type, id, src, cause (null for a\n"
          "command), v, subject, kind, retry_for (the consumer a dead retry addressed, or\n"
          "null), envelope_error (null for a choreo envelope), data, applied (consumer,\n"
          "service, db, offset_ms, at, barrier: [{step, op}]) and parked (consumer,\n"
          "service, db, dead_id, reason, status, attempts, offset_ms, at). Each barrier\n"
          "mark has service, db, step, op, offset_ms, at, and event_id and consumer\n"
          "(null when unmatched). \"orchestration\" is null, or the orchestrated instance:\n"
          "service, db, and the keys of choreoctl sagas --json but transitions, which is\n"
          "the array of its transitions (offset_ms, at, event_id and event_type, null\n"
          "for the start, from, null for the start, to and note).\n"
          "\n",
          f);
    fputs(stream_settings_text, f);
    fputs("\n"
          "Examples:\n"
          "  choreoctl --nats-url nats://127.0.0.1:41613 saga 01M8820SZ077Y3ENXTCWDQ25YP \\\n"
          "            --dir /tmp/choreo-demo-AMGHss\n"
          "  choreoctl saga 01M8820SZ077Y3ENXTCWDQ25YP --db order.db --db payment.db \\\n"
          "            --json | jq '.events[] | .type'\n"
          "  choreoctl saga 01M8820SZ077Y3ENXTCWDQ25YP --dir /var/lib/shop --svg saga.svg\n"
          "\n"
          "Exit status:\n"
          "  0  the timeline was printed (and drawn)\n"
          "  1  no event of the saga in the stream, no such stream, NATS cannot be\n"
          "     reached or refused the login, a database cannot be read, a --dir holds\n"
          "     no choreo database, the --svg file is a database or cannot be written\n"
          "  2  usage error: a missing or invalid saga id, an unknown flag, a flag\n"
          "     without its value (an empty --svg or --dir), more than 16 --dir or 64\n"
          "     --db, an invalid setting or CHOREO_* variable\n",
          f);
}

void ctl_help_tail(FILE *f)
{
    fputs("choreoctl tail: print the events of the stream as they arrive\n"
          "\n"
          "Usage:\n"
          "  choreoctl [SETTINGS] tail [--type TYPE]... [--saga SAGA_ID] [--from-start]\n"
          "                       [--json]\n"
          "\n"
          "Prints one line per event, as the stream stores it, with the columns\n"
          "  TIME (the event's emit time, UTC), TYPE, SAGA, SRC (the emitting service),\n"
          "  EVENT ID and CAUSE (the id of the event whose handler emitted it, \"-\" for\n"
          "  a command)\n"
          "A message that is not a choreo envelope shows the type and saga of its\n"
          "subject and why. tail reads through an ordered consumer: ephemeral, in\n"
          "memory, without acks, unseen by the services. It deletes the consumer when\n"
          "it ends; should it be killed, the server drops the consumer by itself\n"
          "seconds later. SIGINT (Ctrl-C) and SIGTERM end it, with exit status 0.\n"
          "When the connection to NATS is lost, tail says so on stderr, reconnects for\n"
          "as long as it takes and goes on after the last event it printed. A server\n"
          "that stops answering without closing the connection is noticed by PINGs\n"
          "(--nats-ping-interval-ms): after three intervals without a PONG, about 6 s\n"
          "at choreoctl's " CTL_DEFAULT_PING_INTERVAL_MS " ms.\n"
          "\n"
          "Flags:\n"
          "  --type TYPE     only events of this type; repeatable, up to 32 times (one\n"
          "                  type is filtered by the server, several by tail)\n"
          "  --saga SAGA_ID  only this saga's events\n"
          "  --from-start    begin with the stream's first event instead of new ones\n"
          "  --json          one JSON object per line, with the keys seq, time, ts,\n"
          "                  subject, type, saga, src, id, cause, v and data (or\n"
          "                  envelope_error), and retry_for on a dead retry\n"
          "  -h, --help      this text\n"
          "\n",
          f);
    fputs(stream_settings_text, f);
    fputs("\n"
          "Examples:\n"
          "  choreoctl --nats-url nats://127.0.0.1:41613 tail\n"
          "  choreoctl tail --type PaymentRejected --type OrderCancelled\n"
          "  choreoctl tail --saga 01M8820SZ077Y3ENXTCWDQ25YP --from-start --json \\\n"
          "            | jq .type\n"
          "\n"
          "Exit status:\n"
          "  0  ended by SIGINT or SIGTERM\n"
          "  1  NATS cannot be reached at the start or refused the login, no such\n"
          "     stream, the subscription ended, or ending took more than 10 s\n"
          "  2  usage error: an invalid --type or --saga, more than 32 --type, an\n"
          "     unknown flag, an invalid setting or CHOREO_* variable\n",
          f);
}

void ctl_help_status(FILE *f)
{
    fputs("choreoctl status: each service at a glance\n"
          "\n"
          "Usage:\n"
          "  choreoctl [SETTINGS] status [--db FILE]... [--dir DIR]... [--json]\n"
          "\n"
          "Prints one block per service database:\n"
          "  service     the service that runs on it (from its lock file), else the one\n"
          "              that last recorded its handlers, else the file's name\n"
          "  database    the file, or the PostgreSQL database (postgresql://HOST:PORT/\n"
          "              DBNAME, without the URL's user and password)\n"
          "  process     running (the pid the service wrote into <db>.lock, with its\n"
          "              start time, is alive and has that file open) or stopped; a\n"
          "              service killed outright leaves its pid behind, shown as gone.\n"
          "              Where that process's open files cannot be read (another\n"
          "              user's), running means that the pid is alive. A PostgreSQL\n"
          "              database has no lock file: the service's instances share it,\n"
          "              and each one's metrics say whether it runs\n"
          "  outbox      pending rows (unpublished and due now) and how long the oldest\n"
          "              has been due; delayed rows (choreo_tx_emit_after, due later)\n"
          "              and when the next falls due; when the last row was published\n"
          "              (published rows are pruned after outbox_retention_s)\n"
          "  relay       one word and why:\n"
          "                idle        nothing due to publish\n"
          "                publishing  rows are due, the oldest for less than 5 s\n"
          "                behind      the service runs, but a row has been due for more\n"
          "                            than 5 s: NATS is away or does not confirm (on\n"
          "                            PostgreSQL also: no instance runs, or the one\n"
          "                            whose relay holds the lock is frozen, until the\n"
          "                            server ends its session after relay_lease_ms)\n"
          "                stopped     the service is not running; its rows wait for\n"
          "                            its next start (SQLite only)\n"
          "                unknown     the database cannot be read\n"
          "  consumers   the service's durable consumers, as consumers list shows them\n"
          "              (registered, stale, missing), with PENDING (events not yet\n"
          "              delivered), ACK PENDING (delivered, not yet acknowledged),\n"
          "              REDELIVERED (of those, delivered more than once), DELIVERED\n"
          "              and READ NOW (whether a process reads it now); this part\n"
          "              needs NATS, and says so when the stream (--stream) is not on\n"
          "              the server (--nats-url)\n"
          "  parked      how many messages are parked, by consumer and event type\n"
          "  last error  the most recently parked message still parked: when, its dead\n"
          "              id, consumer, type and reason\n"
          "  held        how many steps wait for a person's decision, by kind, and how\n"
          "              many of them are past their expiry (no longer decidable);\n"
          "              choreoctl review list shows them\n"
          "\n",
          f);
    fputs("status only reads: it writes nothing to the databases and reads the lock\n"
          "file without taking the lock, so it may run at any time beside the services.\n"
          "A database from an older choreo is read as it is, never upgraded.\n"
          "When NATS cannot be reached or has no such stream, the consumers line says\n"
          "so and the rest is printed all the same, with exit status 1. So is a --db\n"
          "that is not a choreo database (missing or damaged): it is reported in its\n"
          "place and the other databases are printed (given alone, only its error on\n"
          "stderr; with --json, the object is printed all the same, the error in its\n"
          "errors).\n"
          "\n"
          "Flags:\n"
          "  --db FILE    a service's database, a file or a postgresql:// URL;\n"
          "               repeatable, up to 64 times (a settings flag: it may also\n"
          "               stand before status, and CHOREO_DB gives one)\n"
          "  --dir DIR    every choreo database (*.db) in DIR, such as the work directory\n"
          "               that shop-demo --keep leaves; repeatable, up to 16 times\n"
          "  --json       one JSON object instead of text\n"
          "  -h, --help   this text\n"
          "\n"
          "The JSON object is {\"services\": [...]}, one object per database with the keys\n"
          "service, db, running, pid and started_at (from the lock file, null when it\n"
          "names no process; running is also null for a PostgreSQL database), outbox\n"
          "(pending, delayed, oldest_pending_age_ms, next_delayed_at,\n"
          "last_published_at), relay (state, detail), consumers (an array of objects\n"
          "with name, type, state, registered, on_server, pending, ack_pending,\n"
          "redelivered, delivered and pull_requests_waiting, null when not on the\n"
          "server), parked (total, truncated, by_consumer: [{consumer, type, count}]),\n"
          "last_error (id, consumer, type, event_id, reason, attempts, parked_at,\n"
          "parked_at_ms), holds (total, past_expiry, truncated, by_kind: [{kind,\n"
          "count}]: the steps waiting for a decision) and errors, what could not be\n"
          "read. A part that could not be read is null; last_error is null when\n"
          "nothing is parked.\n"
          "\n"
          "Settings, as the services take them (a flag, or its CHOREO_* variable):\n"
          "  --db FILE (above), --busy-timeout-ms MS (how long to wait for a database\n"
          "  a writer holds [5000]), --connect-wait-ms MS (how long to wait for NATS;\n"
          "  0 means 5000), and for the consumers --nats-url URLS, --stream NAME,\n"
          "  --prefix PREFIX, --nats-inbox-prefix PREFIX, the login --nats-user and\n"
          "  --nats-password, --nats-token, --nats-creds FILE or --nats-nkey and\n"
          "  --nats-nkey-seed FILE, and TLS --tls-ca, --tls-cert and --tls-key.\n"
          "The other choreo settings are accepted and have no effect here (choreoctl\n"
          "--help-settings lists them all).\n"
          "\n"
          "Examples:\n"
          "  choreoctl --db order.db status\n"
          "  choreoctl --nats-url nats://127.0.0.1:41613 status --dir /tmp/choreo-demo-AMGHss\n"
          "  choreoctl status --db order.db --db payment.db --json | jq '.services[].relay'\n"
          "\n"
          "Exit status:\n"
          "  0  every part of every database was read\n"
          "  1  a part could not be read (stderr says which and why: NATS cannot be\n"
          "     reached or refused the login or has no such stream, a database is\n"
          "     locked or damaged, a --db is not a choreo database); the rest is\n"
          "     printed all the same. Also: a --dir without a choreo database\n"
          "  2  usage error: no database given, an empty --dir, more than 16 --dir or\n"
          "     64 --db, an unknown flag, an invalid setting or CHOREO_* variable\n",
          f);
}

/* What review reads of the settings: the database only. */
static const char review_settings_text[] =
    "Settings, as the services take them (a flag, or its CHOREO_* variable):\n"
    "  --db FILE (the service's database; one), --busy-timeout-ms MS (how long to\n"
    "  wait while the running service holds the database's write lock [5000]).\n"
    "review does not use NATS: the service's relay publishes the decision. The\n"
    "other choreo settings are accepted and have no effect here (choreoctl\n"
    "--help-settings lists them all).\n";

static const char review_exit_text[] =
    "Exit status:\n"
    "  0  success; also a decision given again the same way, which changes\n"
    "     nothing (\"already approved by NAME at TIME; nothing changed\")\n"
    "  1  the decision was refused: the hold was decided the other way, ended\n"
    "     with its saga (choreo_tx_hold_end) or its expiry time passed, and the\n"
    "     message says when and why; no hold has that ID; the database cannot be\n"
    "     opened or is not a choreo service's database\n"
    "  2  usage error: an unknown subcommand or flag, a missing or invalid ID, an\n"
    "     invalid --state, an empty or too long --by or --note, no database or\n"
    "     more than one, an invalid setting or CHOREO_* variable\n";

void ctl_help_review(FILE *f)
{
    fputs("choreoctl review: the steps a service holds for a person's decision\n"
          "\n"
          "Usage:\n"
          "  choreoctl [SETTINGS] review list [--state held|approved|rejected|expired|all]\n"
          "                       [--json]\n"
          "  choreoctl [SETTINGS] review approve ID [--note TEXT] [--by NAME] [--json]\n"
          "  choreoctl [SETTINGS] review reject ID [--note TEXT] [--by NAME] [--json]\n"
          "\n"
          "A handler that must not go on without a person's say (a large payment, a\n"
          "refund) holds its step with choreo_tx_hold: the event is consumed, the\n"
          "saga waits, and the service's database records the hold with its kind and\n"
          "reason. Each hold has an ID (the ID column of review list) and a state:\n"
          "  held      waiting for a decision; the only state approve and reject act\n"
          "            on, until its expiry time\n"
          "  approved  approved by a person (who, when and the note are recorded)\n"
          "  rejected  rejected by a person\n"
          "  expired   ended undecided, as its saga ended first (choreo_tx_hold_end)\n"
          "\n"
          "approve and reject record the decision and put it in the service's own\n"
          "outbox, in one transaction; the service's relay publishes it, and the\n"
          "service runs its decision function for the hold's kind once, which carries\n"
          "the step on (emits its success or its failure). When the service is not\n"
          "running, that happens at its next start. A decision cannot be taken back:\n"
          "the other one is refused afterwards. review may run while the service runs.\n"
          "Each subcommand has its own --help.\n"
          "\n",
          f);
    fputs(review_settings_text, f);
    fputc('\n', f);
    fputs(review_exit_text, f);
}

void ctl_help_review_list(FILE *f)
{
    fputs("choreoctl review list: the held steps of a service, oldest first\n"
          "\n"
          "Usage:\n"
          "  choreoctl [SETTINGS] review list [--state held|approved|rejected|expired|all]\n"
          "                       [--json]\n"
          "\n"
          "Flags:\n"
          "  --state S    which holds: held (the default: those waiting for a decision),\n"
          "               approved, rejected, expired or all\n"
          "  --json       one JSON array of objects instead of a table\n"
          "  -h, --help   this text\n"
          "\n"
          "The table has the columns ID, HELD (UTC, when the step was held), SAGA,\n"
          "KIND (what is decided, such as payment-review), STATE, EXPIRES (UTC, the\n"
          "time after which a decision is refused, \"never\", and \"(passed)\" after\n"
          "it for a hold nobody decided in time), DECIDED (UTC, when it was decided\n"
          "or ended), BY (who decided), CARRIED ON (yes once the service ran its\n"
          "decision function, \"not yet\" before), NOTE (the person's note, or why an\n"
          "expired hold ended; cut to 40 characters) and REASON (why it was held, cut\n"
          "to fit the terminal). A \"-\" stands for a value the hold does not have.\n"
          "\n"
          "Each JSON object has the keys id, saga, kind, state, decidable (whether\n"
          "approve or reject would be taken now), reason, service, event_type (the\n"
          "held event's type), held_at, expires_at and decided_at (UTC ISO-8601 text,\n"
          "null for none), held_at_ms, expires_at_ms and decided_at_ms (unix\n"
          "milliseconds, 0 for none), decided_by (null when nobody decided), note and\n"
          "applied (the service ran its decision function).\n"
          "\n"
          "Examples:\n"
          "  choreoctl --db payment.db review list\n"
          "  choreoctl --db payment.db review list --state all --json | jq '.[].state'\n"
          "\n",
          f);
    fputs(review_settings_text, f);
    fputc('\n', f);
    fputs(review_exit_text, f);
}

void ctl_help_review_decide(FILE *f)
{
    fputs("choreoctl review approve, review reject: decide a held step\n"
          "\n"
          "Usage:\n"
          "  choreoctl [SETTINGS] review approve ID [--note TEXT] [--by NAME] [--json]\n"
          "  choreoctl [SETTINGS] review reject ID [--note TEXT] [--by NAME] [--json]\n"
          "\n"
          "Arguments and flags:\n"
          "  ID           the hold's number, from the ID column of review list\n"
          "  --note TEXT  why, kept with the decision and handed to the service's\n"
          "               decision function (1 to 255 bytes; none by default; a note\n"
          "               that starts with -- is given as --note=TEXT)\n"
          "  --by NAME    who decides (1 to 64 bytes) [$USER, else operator]\n"
          "  --json       the hold afterwards as one JSON object (the keys of review\n"
          "               list --json), with changed (false when it was already\n"
          "               decided this way) and service_running (null for a\n"
          "               PostgreSQL database, which has no lock file)\n"
          "  -h, --help   this text\n"
          "\n"
          "Records who decided, when and why, and puts the decision in the service's\n"
          "outbox in the same transaction. It prints one line: what happened and when\n"
          "the service carries the step on, when its relay publishes the decision or,\n"
          "when the service is not running (nobody holds its lock file), at its\n"
          "next start; on a PostgreSQL database, when an instance's relay\n"
          "publishes it. The same decision given again changes nothing and exits 0.\n"
          "A decision is refused, saying when and why, for a hold decided the other\n"
          "way, one that ended with its saga, and one whose expiry time has passed.\n"
          "\n"
          "Examples:\n"
          "  choreoctl --db payment.db review approve 3 --note \"known customer\"\n"
          "  choreoctl --db payment.db review reject 4 --note \"card reported stolen\" \\\n"
          "            --by alice\n"
          "\n",
          f);
    fputs(review_settings_text, f);
    fputc('\n', f);
    fputs(review_exit_text, f);
}
