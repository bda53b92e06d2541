/* The service configuration: one table of keys drives defaults, parsing,
 * validation, flags, environment variables and help. */
#ifndef CHOREO_CONFIG_H
#define CHOREO_CONFIG_H

#include "choreo.h"

struct choreo_config {
    char *service;
    char *db;
    char *nats_url;
    char *stream;
    char *prefix;
    char *log_level;
    char *synchronous;
    char *delivery;
    char *audit;
    char *nats_user;
    char *nats_password;
    char *nats_token;
    char *nats_creds;
    char *nats_nkey;      /* the user's public nkey, "U..." */
    char *nats_nkey_seed; /* path of the file holding its seed */
    char *tls_ca;
    char *tls_cert;
    char *tls_key;
    char *consumer_start;
    char *take_over_consumers; /* "on": rebind consumers bound to another database */
    char *nats_inbox_prefix;
    char *metrics_addr;   /* host:port of the metrics endpoint; NULL or "" = off */
    int64_t busy_timeout_ms;
    int64_t lock_timeout_ms;
    int64_t db_wait_ms;
    int64_t connect_wait_ms;
    int64_t nats_ping_interval_ms;
    int64_t max_deliver;
    int64_t ack_wait_ms;
    int64_t max_ack_pending;
    int64_t batch_max;
    int64_t max_event_bytes;
    int64_t stream_max_age_s;
    int64_t stream_dup_window_s;
    int64_t stream_replicas;
    int64_t relay_scan_ms;
    int64_t relay_lease_ms;
    int64_t retry_base_ms;
    int64_t retry_cap_ms;
    int64_t outbox_retention_s;
    int64_t inbox_retention_s;
    int64_t prune_interval_s;
    int64_t binding_check_s;
    /* consumer_start parsed: CHOREO_START_ALL, CHOREO_START_NEW, or the
     * start time in ns since the epoch. */
    int64_t consumer_start_ns;
    /* The program's own flags (choreo_config_accept_flag): names without
     * the leading "--", and whether each takes a value. */
    char **own_flags;
    bool *own_flag_value;
    int nown_flags;
    char text[64]; /* scratch for choreo_config_get of numbers */
};

#define CHOREO_START_ALL 0
#define CHOREO_START_NEW (-1)

/* Deep copy; returns NULL when out of memory. */
choreo_config *choreo__config_clone(const choreo_config *cfg);

/* How long a statement waits for a lock: busy_timeout_ms on SQLite,
 * lock_timeout_ms on PostgreSQL. */
int choreo__config_lock_wait_ms(const choreo_config *cfg);

/* True when s is a valid name token: [A-Za-z0-9_-]{1,max}. */
bool choreo__name_valid(const char *s, size_t max);

/* Writes the URL list with any user:password@ part removed, for logs. */
void choreo__redact_urls(const char *urls, char *out, size_t cap);

/* Whether one of the comma-separated URLs asks for TLS (tls://). */
bool choreo__urls_want_tls(const char *urls);

#endif
