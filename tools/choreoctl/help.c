/* Help texts. Each command's help is complete on its own: usage, every flag,
 * the settings it uses, examples and exit codes, so that an operator in the
 * middle of an incident never has to look elsewhere. */
#include "help.h"

static const char settings_text[] =
    "Settings (a flag anywhere on the command line, or a CHOREO_* variable;\n"
    "flags win over variables):\n"
    "  --db FILE              CHOREO_DB               the service's SQLite file (required)\n"
    "  --nats-url URLS        CHOREO_NATS_URL         NATS servers, comma-separated, used by\n"
    "                                                 retry and consumers\n"
    "                                                 [nats://127.0.0.1:4222]\n"
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
          "of a choreo service\n"
          "\n"
          "Usage:\n"
          "  choreoctl [SETTINGS] dead list [--status parked|retried|dropped|all] [--json]\n"
          "  choreoctl [SETTINGS] dead show ID [--json]\n"
          "  choreoctl [SETTINGS] dead retry ID | --all\n"
          "  choreoctl [SETTINGS] dead drop ID\n"
          "  choreoctl [SETTINGS] consumers list [--json]\n"
          "  choreoctl [SETTINGS] consumers delete NAME [--force]\n"
          "  choreoctl [dead [list|show|retry|drop] | consumers] --help\n"
          "  choreoctl --help-settings\n"
          "\n"
          "A service parks a message in its table choreo_dead when its handler returns\n"
          "CHOREO_REJECT or the message cannot be applied (malformed, too large, a\n"
          "schema version it does not accept); the consumer then moves on. choreoctl\n"
          "works on that table in the service's database (--db), and may run while\n"
          "the service runs. Once the cause is fixed, `dead retry` publishes the\n"
          "message again with its original event id, for the consumer that parked it\n"
          "only (the others ack it unapplied); `dead drop` closes it for good. Only\n"
          "retry uses NATS.\n"
          "\n"
          "Commands:\n"
          "  dead list     list parked messages (or retried, dropped, all)\n"
          "  dead show     one message: every field and its decoded body\n"
          "  dead retry    publish a parked message again and mark it retried\n"
          "  dead drop     mark a parked message dropped, never to be retried\n"
          "  consumers list    the service's durable consumers on the stream, and\n"
          "                    which of them its code still registers\n"
          "  consumers delete  delete a stale consumer from the stream\n"
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
          "\n",
          f);
    fputs(exit_text, f);
}

void ctl_help_settings(FILE *f, const choreo_config *cfg)
{
    fputs("choreoctl reads the same settings as choreo services. It uses db, the NATS\n"
          "settings (for retry), busy_timeout_ms and log_level; the others are accepted\n"
          "and have no effect. service is not required.\n\n",
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
