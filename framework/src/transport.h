/* The service's NATS connection and JetStream context, the stream, and the
 * durable pull consumers. The only module that maps natsStatus codes. */
#ifndef CHOREO_TRANSPORT_H
#define CHOREO_TRANSPORT_H

#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>

#include "config.h"
#include "log.h"
#include "metrics.h"

/* What the connection callbacks report to: the log, and the metrics'
 * connection state (NULL: none). It must outlive the transport. */
typedef struct choreo_nats_watch {
    const choreo_logger *log;
    choreo_metrics *metrics;
    bool second; /* a second connection to the same servers (the relay's): its
                  * outages count in the connection state only, not as
                  * reconnections, and are logged at debug level */
} choreo_nats_watch;

typedef struct choreo_transport {
    natsConnection *nc;     /* fetches, naks, requests, the relay's rounds of a few
                             * rows: every write sent at once */
    jsCtx *js;
    natsConnection *nc_pub; /* the relay's larger rounds, buffered and flushed per
                             * batch, the relay's PubAcks, and the acks */
    const choreo_logger *log;
    const choreo_nats_watch *watch;
    choreo_nats_watch pub_watch; /* nc_pub's: watch, as its second connection */
    natsOptions *opts;
    /* nats.c runs connection callbacks on a thread of its own, from a queue
     * in which a connection's closed callback comes last: closing waits for
     * it, so that no callback runs after the watch it reads is freed. */
    pthread_mutex_t closed_lock;
    pthread_cond_t closed_cond;
    int closed;             /* connections whose closed callback has run */
    /* The description that binds the service's durable consumers to its
     * database ("choreo database <id>"), empty for none. */
    char binding[64];
    int max_waiting; /* the consumers' MaxWaiting, made from the identity (0: the server's) */
} choreo_transport;

/* Connects, retrying while no server is reachable (logging each attempt)
 * until connected, *stop is set, or connect_wait_ms passes. Credentials
 * refused by the server fail at once with CHOREO_EAUTH, a failed TLS
 * handshake with CHOREO_ETLS, and a credential or TLS file that cannot be
 * read or used with CHOREO_ECONFIG naming its setting; none of these texts
 * holds a password, token or seed. With relay, a second connection
 * (nc_pub) is opened for the relay. */
choreo_status choreo__transport_connect(choreo_transport **out, const choreo_config *cfg,
                                        const choreo_nats_watch *watch, const atomic_bool *stop,
                                        bool relay);

/* Creates the stream when absent (*made says whether it did; made may be
 * NULL); checks that an existing one covers "<prefix>.>" and otherwise
 * fails with CHOREO_ESTREAM. */
choreo_status choreo__transport_ensure_stream(choreo_transport *tp, const choreo_config *cfg,
                                             bool *made);

/* Makes the stream again when the server no longer has it, while the
 * service runs (deleted, or lost with a single server's store), says so in
 * the log as an error and counts it (choreo_jetstream_remade_total). An
 * existing stream is left as it is. */
choreo_status choreo__transport_stream_restore(choreo_transport *tp, const choreo_config *cfg);

/* Binds the durable consumers this transport makes or brings in line to
 * the database of identity db_id: choreo__transport_pull_subscribe then
 * refuses, with CHOREO_ELOCKED, one bound to another database, unless
 * take_over_consumers is on. */
void choreo__transport_bind(choreo_transport *tp, int64_t db_id);

/* The error for a stream that is not on the server: CHOREO_ENOTFOUND,
 * naming the stream and the server and what to check. */
choreo_status choreo__transport_no_stream(const choreo_config *cfg);

/* CHOREO_OK when cfg's stream is on the server. */
choreo_status choreo__transport_stream_check(choreo_transport *tp, const choreo_config *cfg);

/* Whether the durable consumer is on cfg's stream (*exists) and, when it
 * is bound to another database than the one tp was bound to
 * (choreo__transport_bind), that database's identity in other ("" when
 * not). choreo__transport_no_stream's error when the stream is missing. */
choreo_status choreo__transport_consumer_binding(choreo_transport *tp, const choreo_config *cfg,
                                                const char *durable, bool *exists, char *other,
                                                size_t cap);

/* Reads the durable consumer's binding while the service runs: CHOREO_OK
 * when it is bound to this database (or to none), CHOREO_ELOCKED when a
 * service on another database took it over since, another status when it
 * cannot be read just now. */
choreo_status choreo__transport_still_bound(choreo_transport *tp, const choreo_config *cfg,
                                           const char *durable);

/* A durable pull consumer as a fetch thread reads it: a plain subscription
 * on <inbox>.*, where pull request N is answered on <inbox>.N, and the
 * subject those requests go to. */
typedef struct choreo_puller {
    natsSubscription *sub;
    char inbox[96];
    char next_subject[256]; /* $JS.API.CONSUMER.MSG.NEXT.<stream>.<durable> */
    bool missing; /* choreo__transport_consumer_settle found no consumer to settle */
} choreo_puller;

/* Subscribes *sub, on nc_pub, to <inbox>.* for the PubAcks of the relay's
 * publishes: one whose reply subject is <inbox>.N is answered there. inbox
 * is set to a new unique subject under nats_inbox_prefix. */
choreo_status choreo__transport_ack_subscribe(choreo_transport *tp, const choreo_config *cfg,
                                              natsSubscription **sub, char *inbox, size_t cap);

/* Looks the durable consumer `durable` on `filter` up: one bound to
 * another database is refused with CHOREO_ELOCKED (unless
 * take_over_consumers is on), an existing one brought in line; when the
 * server has none, out->missing is set and nothing is made. Run it for
 * every consumer of a service before choreo__transport_pull_subscribe, so
 * that a refused start makes none. */
choreo_status choreo__transport_consumer_settle(choreo_transport *tp, const choreo_config *cfg,
                                                const char *filter, const char *durable,
                                                choreo_puller *out);

/* After choreo__transport_consumer_settle: creates the consumer when it was
 * missing (and checks it as settle does when another process made it
 * meanwhile), and subscribes out->sub to its answers. */
choreo_status choreo__transport_pull_subscribe(choreo_transport *tp, const choreo_config *cfg,
                                               const char *filter, const char *durable,
                                               choreo_puller *out);

/* Makes the durable consumer again when the server no longer has it (it was
 * deleted while the service ran, or lost with the broker's store), as a
 * start would: from consumer_start; and the stream first when that is gone
 * too. Each one made again is said in the log as an error and counted, as
 * choreo__transport_stream_restore does. *made says whether the consumer
 * was made. An existing consumer is left as it is. */
choreo_status choreo__transport_consumer_restore(choreo_transport *tp, const choreo_config *cfg,
                                                 const char *filter, const char *durable,
                                                 bool *made);

/* Asks the consumer for up to batch messages, answered on <inbox>.id until
 * expires_ms pass (then with a 408 status), on the connection's writes
 * that go out at once. */
natsStatus choreo__transport_pull(choreo_transport *tp, const choreo_puller *p, int64_t id,
                                  int batch, int64_t expires_ms);

/* Answers a JetStream message: acknowledged (on the buffered connection
 * when the service has one), handed back for redelivery after delay_ms (0:
 * at once), still being worked on, or never to be delivered again (these
 * three on the main connection, at once). */
enum choreo_js_answer { JS_ACK, JS_NAK, JS_IN_PROGRESS, JS_TERM };
void choreo__transport_answer(choreo_transport *tp, natsMsg *msg, enum choreo_js_answer a,
                              int64_t delay_ms);

/* Maps a natsStatus to a choreo status with what failed. */
choreo_status choreo__nats_error(natsStatus s, const char *what);

/* True for failures that pass by themselves: no server, a connection that
 * closed or broke, JetStream not answering yet, a timeout. */
bool choreo__nats_transient(natsStatus s);

/* True when a JetStream call that failed with s most likely met a stream or
 * consumer without a leader: a timeout or no responders while nats_url
 * lists more than one server (a cluster). After a node's loss the cluster
 * elects new leaders within seconds, and calls then go through again. */
bool choreo__nats_electing(natsStatus s, const choreo_config *cfg);

/* CHOREO_EAUTH, naming the operation, when the server refused one of the
 * connection's operations for lack of permission (a JetStream call at start
 * then only times out); CHOREO_OK otherwise. */
choreo_status choreo__transport_refused(choreo_transport *tp);

void choreo__transport_close(choreo_transport *tp);

#endif
