/* Help texts. Each command's help is complete on its own: usage, every flag,
 * the settings it uses, examples and exit codes, so that an operator in the
 * middle of an incident never has to look elsewhere. */
#include "help.h"

static const char settings_text[] =
    "Settings (a flag anywhere on the command line, or a CHOREO_* variable;\n"
    "flags win over variables):\n"
    "  --db FILE              CHOREO_DB               the service's SQLite file (required by\n"
    "                                                 dead and consumers; saga and status\n"
    "                                                 take several)\n"
    "  --nats-url URLS        CHOREO_NATS_URL         NATS servers, comma-separated, used by\n"
    "                                                 retry, consumers, status, saga and tail\n"
    "                                                 [nats://127.0.0.1:4222]\n"
    "  --stream NAME          CHOREO_STREAM           the services' stream [CHOREO]\n"
    "  --prefix PREFIX        CHOREO_PREFIX           the events' subject prefix [choreo]\n"
    "  --nats-user NAME       CHOREO_NATS_USER        NATS user; needs --nats-password\n"
    "  --nats-password PASS   CHOREO_NATS_PASSWORD    NATS password\n"
    "  --nats-token TOKEN     CHOREO_NATS_TOKEN       NATS token (instead of a user)\n"
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
    "     positive whole number, an invalid setting or CHOREO_* variable\n";

void ctl_help_main(FILE *f)
{
    fputs("choreoctl: inspect and repair the parked messages and the durable consumers\n"
          "of a choreo service, and follow the events of its sagas\n"
          "\n"
          "Usage:\n"
          "  choreoctl [SETTINGS] dead list [--status parked|retried|dropped|all] [--json]\n"
          "  choreoctl [SETTINGS] dead show ID [--json]\n"
          "  choreoctl [SETTINGS] dead retry ID | --all\n"
          "  choreoctl [SETTINGS] dead drop ID\n"
          "  choreoctl [SETTINGS] consumers list [--json]\n"
          "  choreoctl [SETTINGS] consumers delete NAME [--force]\n"
          "  choreoctl [SETTINGS] status [--db FILE]... [--dir DIR]... [--json]\n"
          "  choreoctl [SETTINGS] saga SAGA_ID [--dir DIR]... [--db FILE]... [--json]\n"
          "                       [--svg FILE] [--limit N]\n"
          "  choreoctl [SETTINGS] tail [--type TYPE]... [--saga SAGA_ID] [--from-start]\n"
          "                       [--json]\n"
          "  choreoctl [dead [list|show|retry|drop] | consumers | status | saga | tail]\n"
          "            --help\n"
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
          "`saga` reads one saga's events from the stream and sets them against the\n"
          "services' databases: who applied each event and when, who parked it and\n"
          "why, the saga barrier's marks; as text, JSON or an SVG sequence diagram.\n"
          "`tail` prints the stream's events as they arrive.\n"
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
          "  saga          one saga's timeline: its events from the stream and, from\n"
          "                the services' databases, who applied or parked each one\n"
          "  tail          print the events of the stream as they arrive\n"
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
          "  choreoctl --nats-url nats://nats:4222 saga 01M8820SZ077Y3ENXTCWDQ25YP \\\n"
          "            --dir /var/lib/shop\n"
          "  choreoctl --nats-url nats://nats:4222 tail --type OrderCancelled\n"
          "\n",
          f);
    fputs(exit_text, f);
}

void ctl_help_settings(FILE *f, const choreo_config *cfg)
{
    fputs("choreoctl reads the same settings as choreo services. It uses db, the NATS\n"
          "settings (for retry, consumers, status, saga and tail), stream and prefix,\n"
          "busy_timeout_ms and log_level; the others are accepted and have no effect.\n"
          "service is not required.\n\n",
          f);
    choreo_config_print_help(cfg, f);
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
          "  --all        retry every parked message, oldest first, reporting each\n"
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
          "with PENDING (events not yet delivered), ACK PENDING (delivered, not yet\n"
          "acknowledged), DELIVERED and whether a process reads it now.\n"
          "\n"
          "delete removes a consumer and its position from the stream; the events\n"
          "stay. It refuses a registered consumer (the service would create it again,\n"
          "from its consumer_start setting: all, new or a time) and one a process\n"
          "is reading, unless --force is given.\n"
          "\n"
          "Flags:\n"
          "  --service NAME  the service (default: the one recorded in the database)\n"
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

/* What saga and tail read of the settings: they connect to NATS themselves. */
static const char stream_settings_text[] =
    "NATS settings, as the services take them (a flag, or its CHOREO_* variable):\n"
    "  --nats-url URLS, --stream NAME, --prefix PREFIX, --nats-inbox-prefix PREFIX,\n"
    "  the login --nats-user and --nats-password, --nats-token, --nats-creds FILE\n"
    "  or --nats-nkey and --nats-nkey-seed FILE, and TLS --tls-ca, --tls-cert and\n"
    "  --tls-key.\n"
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
          "Arguments and flags:\n"
          "  SAGA_ID      the saga's id (1 to 64 of A-Z a-z 0-9 _ -)\n"
          "  --dir DIR    read every choreo database (*.db) in DIR, such as the work\n"
          "               directory that shop-demo --keep leaves; repeatable\n"
          "  --db FILE    read this service's database; repeatable. Without --dir and\n"
          "               --db, or CHOREO_DB, only the stream is read\n"
          "  --json       one JSON object instead of text\n"
          "  --svg FILE   also draw the timeline into FILE as an SVG sequence diagram:\n"
          "               a lane per service, the events from top to bottom, an arrow\n"
          "               from the emitter to each service that applied or parked the\n"
          "               event; failures red, compensations orange\n"
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
          "(null when unmatched).\n"
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
          "     no choreo database, the SVG file cannot be written\n"
          "  2  usage error: a missing or invalid saga id, an unknown flag, an invalid\n"
          "     setting or CHOREO_* variable\n",
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
          "as long as it takes and goes on after the last event it printed.\n"
          "\n"
          "Flags:\n"
          "  --type TYPE     only events of this type; repeatable (one type is filtered\n"
          "                  by the server, several by tail)\n"
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
          "  2  usage error: an invalid --type or --saga, an unknown flag, an invalid\n"
          "     setting or CHOREO_* variable\n",
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
          "  database    the file\n"
          "  process     running (the pid and start time the service wrote into\n"
          "              <db>.lock, and that process is alive) or stopped; a service\n"
          "              killed outright leaves its pid behind, shown as gone\n"
          "  outbox      pending rows (unpublished and due now) and how long the oldest\n"
          "              has been due; delayed rows (choreo_tx_emit_after, due later)\n"
          "              and when the next falls due; when the last row was published\n"
          "              (published rows are pruned after outbox_retention_s)\n"
          "  relay       one word and why:\n"
          "                idle        nothing due to publish\n"
          "                publishing  rows are due, the oldest for less than 5 s\n"
          "                behind      the service runs, but a row has been due for more\n"
          "                            than 5 s: NATS is away or does not confirm\n"
          "                stopped     the service is not running; its rows wait for\n"
          "                            its next start\n"          "                unknown     the database cannot be read\n"
          "  consumers   the service's durable consumers, as consumers list shows them\n"
          "              (registered, stale, missing), with PENDING (events not yet\n"
          "              delivered), ACK PENDING (delivered, not yet acknowledged),\n"
          "              DELIVERED and whether a process reads it now; this part needs\n"
          "              NATS\n"
          "  parked      how many messages are parked, by consumer and event type\n"
          "  last error  the most recently parked message still parked: when, its dead\n"
          "              id, consumer, type and reason\n"
          "\n",
          f);
    fputs("status only reads: it writes nothing to the databases and reads the lock\n"
          "file without taking the lock, so it may run at any time beside the services.\n"
          "When NATS cannot be reached, the consumers line says so and the rest is\n"
          "printed all the same, with exit status 1.\n"
          "\n"
          "Flags:\n"
          "  --db FILE    a service's database; repeatable (a settings flag: it may\n"
          "               also stand before status, and CHOREO_DB gives one)\n"
          "  --dir DIR    every choreo database (*.db) in DIR, such as the work directory\n"
          "               that shop-demo --keep leaves; repeatable\n"
          "  --json       one JSON object instead of text\n"
          "  -h, --help   this text\n"
          "\n"
          "The JSON object is {\"services\": [...]}, one object per database with the keys\n"
          "service, db, running, pid and started_at (from the lock file, null when it\n"
          "names no process), outbox (pending, delayed, oldest_pending_age_ms,\n"
          "next_delayed_at, last_published_at), relay (state, detail), consumers (an\n"
          "array of objects with name, type, state, registered, on_server, pending,\n"
          "ack_pending, delivered and pull_requests_waiting, null when not on the\n"
          "server), parked (total, truncated, by_consumer: [{consumer, type, count}]),\n"
          "last_error (id, consumer, type, event_id, reason, attempts, parked_at,\n"
          "parked_at_ms) and errors, what could not be read. A part that could not be\n"
          "read is null; last_error is null when nothing is parked.\n"
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
          "     reached or refused the login, a database is locked or damaged); the\n"
          "     rest is printed all the same. Also: a --db that is not a choreo\n"
          "     database, a --dir without one\n"
          "  2  usage error: no database given, an unknown flag, an invalid setting or\n"
          "     CHOREO_* variable\n",
          f);
}
