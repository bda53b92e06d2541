/* Shared pieces of the integration tests: a private nats-server, temp
 * directories, services configured for tests, and waiting for conditions. */
#ifndef CHOREO_TEST_SUPPORT_H
#define CHOREO_TEST_SUPPORT_H

#include <criterion/criterion.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/types.h>

#include "choreo.h"
#include "natsd.h"

/* A fresh directory under /tmp. */
void support_tmpdir(char *out, size_t cap);

/* Starts a nats-server in dir/nats (asserting success). */
void support_server(natsd *d, const char *dir, const char *user, const char *pass);

/* A service configuration for tests: name, db at dir/<name>.db, the server's
 * URL, a short ack_wait; extra "key=value" settings may follow, NULL-ended. */
choreo_config *support_config(const char *dir, const char *name, const char *url, ...);

/* Creates a service (asserting success). */
choreo_service *support_service(const choreo_config *cfg);

/* Polls cond(arg) every 10 ms up to timeout_ms; true when it held. */
bool support_wait(bool (*cond)(void *), void *arg, int timeout_ms);

/* Opens the service's database file read-only and runs a one-number query. */
long long support_count(const char *dir, const char *name, const char *sql);

/* Polls support_count(dir, name, sql) every 20 ms up to timeout_ms; true
 * once it returned want. */
bool support_wait_count(const char *dir, const char *name, const char *sql, long long want,
                        int timeout_ms);

/* Creates a business table in a service's database before it starts. */
void support_exec(const char *dir, const char *name, const char *sql);

/* Publishes the outbox body of event id (NULL: the oldest row) from service
 * name's database on its subject again under the Nats-Msg-Id msg_id: the
 * stream keeps it as a new message, as a producer's repeat past the
 * duplicate window would be. With as_id (not NULL, as long as id), the
 * envelope's event id is replaced by as_id: another event under an id
 * already used, as a producer that reuses ids would send. */
void support_republish(const char *url, const char *dir, const char *name, const char *id,
                       const char *as_id, const char *msg_id);

/* Publishes m to JetStream on a connection of its own, asserting the
 * PubAck; destroys m. */
void support_js_publish(const char *url, natsMsg *m);

/* Emits one event of type with data {"n": n} in tx (asserting success), or
 * in its own command transaction. */
void support_tx_emit(choreo_tx *tx, const char *type, const char *saga, int64_t n,
                     char id_out[CHOREO_ID_SIZE]);
void support_emit(choreo_service *svc, const char *type, const char *saga, int64_t n,
                  char id_out[CHOREO_ID_SIZE]);

/* fork() for tests: the child is killed when the test process dies, so a
 * failed assertion never leaves a service process behind. */
pid_t support_fork(void);

/* Waits for pid up to timeout_ms; its exit status, or -1 (killed after the
 * wait, or it ended by a signal). */
int support_reap(pid_t pid, int timeout_ms);

/* Whether the file at path comes to hold needle within timeout_ms. */
bool support_wait_file_has(const char *path, const char *needle, int timeout_ms);

/* How many times needle occurs in text. */
size_t support_count_of(const char *text, const char *needle);

/* The first line of text that holds needle, copied into out (cut at
 * cap - 1 bytes), or "" when none does. */
void support_line_with(const char *text, const char *needle, char *out, size_t cap);

/* Fills envp (cap entries, NULL-terminated) with this process's environment
 * less its CHOREO_* variables, for a program the test runs. */
void support_env_without_choreo(char *envp[], int cap);

/* The same, with the variables of extra ("NAME=value", NULL-ended) after
 * them. */
void support_env_with(char *envp[], int cap, char *const extra[]);

/* A loopback TCP port that was free a moment ago, below the range the
 * kernel takes the local ports of outgoing connections from. */
int support_free_port(void);

/* Collects choreo_service_stats. */
choreo_stats support_stats(choreo_service *svc);

/* Monotonic milliseconds, and a sleep of ms milliseconds. */
int64_t support_mono_ms(void);
void support_sleep_ms(int64_t ms);

/* choreo_service_start(svc) run on a thread of its own, for the tests of a
 * start that waits for its broker: support_start_begin starts it (asserting
 * the thread was made), result is -1 while start runs, and
 * support_start_join waits for it and returns what start returned, with
 * start's choreo_last_error() in error. */
typedef struct support_start {
    choreo_service *svc;
    pthread_t thread;
    atomic_int result;
    char error[512];
} support_start;

void support_start_begin(support_start *st, choreo_service *svc);
choreo_status support_start_join(support_start *st);

/* Reads field "n" from an event's data map. */
int64_t support_data_n(const choreo_event *ev);

/* Writes text into the file path, and reads a file into buf (cut at
 * cap - 1 bytes, NUL-terminated); both assert success. */
void support_write_file(const char *path, const char *text);
void support_slurp(const char *path, char *buf, size_t cap);

/* Starts a nats-server in dir/nats reading the configuration config_text,
 * written to dir/nats.conf (asserting success). */
void support_server_config(natsd *d, const char *dir, const char *config_text);

/* Makes a test PKI in dir with the openssl command (asserting success):
 * ca.pem, and server.pem (for IP 127.0.0.1), client.pem (for client use),
 * otherhost.pem (for IP 10.9.9.9) signed by it; wrong-ca.pem, an unrelated
 * CA, and stranger.pem, a client certificate it signed; expired.pem, the
 * server's certificate valid only on 2020-01-01. The key of X.pem is
 * X-key.pem; expired.pem's is server-key.pem. */
void support_make_certs(const char *dir);

/* Makes a NATS user nkey pair: the seed in dir/<name>.nk (mode 0600), the
 * public key (U..., 56 characters) in dir/<name>.pub and in pub. Needs the
 * openssl command and python3. */
void support_make_nkey(const char *dir, const char *name, char pub[64]);

/* Sends this process's stderr to the file path; returns the saved
 * descriptor, which support_stderr_back puts back. */
int support_stderr_to(const char *path);
void support_stderr_back(int saved);

/* Sends "METHOD path" over HTTP/1.0 to 127.0.0.1:port; returns the status
 * code (-1 when nothing answered) and the body in buf. */
int support_http(int port, const char *method, const char *path, char *buf, size_t cap);

/* The value of the series named exactly by series (name{labels}) in a
 * Prometheus text, or -1 when absent. */
double support_metric(const char *text, const char *series);

/* Polls http://127.0.0.1:port/metrics until series has the value want,
 * asserting that it does within timeout_ms. */
void support_expect_metric(int port, const char *series, double want, int timeout_ms);

/* Runs argv[0] (found on PATH) with the environment envp, stdout and
 * stderr in dir/<tag>.out and .err; its exit status, or -1 when it ended by
 * a signal or ran for more than a minute (then it is killed). */
int support_run(const char *dir, const char *tag, char *const argv[], char *const envp[]);

/* Runs python3 -c script on the JSON text json (written to dir/check.json)
 * with the arguments that follow (NULL-ended); true when the script's
 * checks held, with its complaint (its stderr) in err otherwise. */
bool support_json_holds(const char *dir, const char *json, char *err, size_t cap,
                        const char *script, ...);

#endif
