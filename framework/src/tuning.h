/* The fixed sizes and times of the delivery path, in one place. Settings a
 * user may want to change are in config.c instead; these are the internal
 * choices behind them, each with the reason for its value. */
#ifndef CHOREO_TUNING_H
#define CHOREO_TUNING_H

/* Dispatch queue slots: the bound that pushes back on fetching, so that a
 * slow dispatcher leaves messages on the server, not in memory. */
#define CHOREO_QUEUE_CAP 1024

/* A fetch thread's pull request asks for up to CHOREO_FETCH_MAX messages
 * and stays open at the server for CHOREO_PULL_EXPIRES_MS, delivering
 * events as they come. The next one is sent once the open one has less
 * than CHOREO_PULL_RENEW_MS to run or has delivered half its messages, so
 * that one is always waiting. A request that has neither brought its
 * messages nor ended with a status CHOREO_PULL_GRACE_MS after its expiry
 * was lost (a broker restart, the loss of its consumer's leader) and is
 * replaced; after a reconnect every open request is. */
#define CHOREO_FETCH_MAX 128
#define CHOREO_PULL_EXPIRES_MS 1000
#define CHOREO_PULL_RENEW_MS 250
#define CHOREO_PULL_GRACE_MS 200
/* At most this many of a fetch thread's pull requests are open at once. */
#define CHOREO_PULL_OPEN_MAX 3
/* The pull requests a durable consumer holds waiting at most: a fetch
 * thread keeps CHOREO_PULL_OPEN_MAX, choreoctl none. The consumers of a
 * database get BASE + (its identity mod SPREAD), which tells two databases
 * apart when both make a consumer at once (see consumer_config). nats-server
 * keeps an array of that many slots per consumer. */
#define CHOREO_MAX_WAITING_BASE 256
#define CHOREO_MAX_WAITING_SPREAD 1024

/* A fetch thread's pause after a failed pull (broker away), and how often
 * it says so in the log. */
#define CHOREO_FETCH_ERROR_PAUSE_MS 100
#define CHOREO_FETCH_WARN_EVERY_US 5000000
/* This long after a pull answered "409 Consumer Deleted" or with no
 * responders, or expired with no answer at all, a fetch thread looks
 * whether its durable consumer still exists (and makes it again when it
 * does not); so often at most. The relay looks for the stream likewise
 * after a publish that nothing answered. */
#define CHOREO_CONSUMER_CHECK_MS 2000

/* Redelivery delay of a message handed back at a stop (fetched, not yet
 * dispatched). With no delay the server sends it straight back to this
 * process's own pull requests, still open for up to CHOREO_PULL_EXPIRES_MS,
 * where it waits out its whole AckWait (30 s by default) before the next
 * instance sees it. By this delay those requests have expired. */
#define CHOREO_HAND_BACK_DELAY_MS (CHOREO_PULL_EXPIRES_MS + CHOREO_PULL_GRACE_MS)

/* Redelivery delay of a message whose batch could not commit or begin, when
 * its delivery count is unknown (otherwise it backs off as a RETRY does). */
#define CHOREO_REDELIVER_DELAY_MS 100

/* BEGIN attempts of a batch before it is handed back to the server, with
 * the pause between them (each also waits up to busy_timeout_ms). */
#define CHOREO_BEGIN_ATTEMPTS 20
#define CHOREO_BEGIN_PAUSE_MS 100

/* A batch is committed early once it has run this share of ack_wait_ms
 * (and at most CHOREO_BATCH_CUT_MAX_MS), so that a batch of slow handlers
 * neither outlives its messages' AckWait nor holds the write lock for long;
 * a message of the batch that has waited this share of ack_wait_ms since
 * its fetch (or its last such signal) is told to the server as still in
 * progress. A quarter leaves room for a handler, a commit and a busy
 * machine between two looks before the AckWait runs out. */
#define CHOREO_BATCH_CUT_DIVISOR 4
#define CHOREO_BATCH_CUT_MAX_MS 1000
#define CHOREO_KEEP_ALIVE_DIVISOR 4

/* One size for every reason text written to choreo_dead. */
#define CHOREO_REASON_MAX 512

/* The relay: rows per publish batch (so at most this many publishes in
 * flight), and how long it waits for a batch's PubAcks before taking the
 * rest back to send again. 1,024 against 256 raised tools/bench's hop, where
 * a producer commits 100 rows at a time, by about a fifth; 4,096 by no
 * more. */
#define CHOREO_RELAY_BATCH 1024
/* The bytes the copies handed from commits to the relay may hold (their
 * bodies, ids, subjects and headers); past it, as past CHOREO_RELAY_BATCH
 * rows, the relay reads the table instead. */
#define CHOREO_RELAY_COPY_BYTES (4 << 20)
#define CHOREO_RELAY_ACK_WAIT_MS 5000
/* A round of at most this many copies handed over by commits is sent a
 * write per row on the unbuffered connection: cheaper than the buffered
 * connection's flush, a PING and its PONG, for a row or two. */
#define CHOREO_RELAY_ASAP_MAX 8
#define CHOREO_RELAY_BACKOFF_FIRST_MS 50
#define CHOREO_RELAY_BACKOFF_MAX_MS 2000
#define CHOREO_RELAY_MARK_ATTEMPTS 100
/* How long acknowledged rows may wait to be marked published when the
 * outbox is drained a few rows at a time: one mark transaction covers this
 * span's rounds instead of one each, which the dispatcher would otherwise
 * meet as a taken write lock on every commit. */
#define CHOREO_RELAY_MARK_DELAY_MS 50
/* How long a round keeps its window open while it reads PubAcks: rows that
 * committing threads send in that time join its batch; after it, the round
 * ends once their answers are in. */
#define CHOREO_RELAY_WINDOW_MS 50
/* PostgreSQL: how often a standing-by relay asks for the relay lock, so the
 * longest a crashed active relay's outbox waits for another instance. */
#define CHOREO_RELAY_STANDBY_MS 500

/* PostgreSQL: how often an open, a command's BEGIN or the handler record
 * is tried again while the server is away or restarting (up to
 * db_wait_ms). */
#define CHOREO_DB_RETRY_MS 250

/* PostgreSQL: a connect gives up after CHOREO_PG_CONNECT_TIMEOUT_S (then
 * the open tries again until db_wait_ms is spent), and TCP keepalives on
 * the client's and the server's side find a peer whose machine is gone
 * after about idle + interval * count seconds: 25 s. */
#define CHOREO_PG_CONNECT_TIMEOUT_S 5
#define CHOREO_PG_KEEPALIVE_IDLE_S 10
#define CHOREO_PG_KEEPALIVE_INTERVAL_S 5
#define CHOREO_PG_KEEPALIVE_COUNT 3

/* NATS connections: reconnect forever every CHOREO_NATS_RECONNECT_WAIT_MS,
 * keeping up to CHOREO_NATS_RECONNECT_BUF bytes of publishes meanwhile (the
 * relay's in-flight batches and acks); a connect or request gives up after
 * CHOREO_NATS_TIMEOUT_MS, a JetStream API call after CHOREO_JS_API_WAIT_MS.
 * A service that cannot reach any server tries again every
 * CHOREO_CONNECT_RETRY_MS. */
#define CHOREO_NATS_RECONNECT_WAIT_MS 250
#define CHOREO_NATS_RECONNECT_BUF (64 * 1024 * 1024)
#define CHOREO_NATS_TIMEOUT_MS 2000
/* PINGs a connection may have unanswered (one every nats_ping_interval_ms)
 * before it counts as lost. */
#define CHOREO_NATS_MAX_PINGS_OUT 2
/* How long closing a connection waits for nats.c's closed callback. */
#define CHOREO_NATS_CLOSE_WAIT_MS 5000
#define CHOREO_JS_API_WAIT_MS 5000
#define CHOREO_CONNECT_RETRY_MS 1000

/* Slices of the waits of threads that must notice a stop promptly. */
#define CHOREO_STOP_SLICE_MS 50
/* At a stop a fetch thread withdraws its pull requests' interest and hands
 * back what the server sent them before it learnt so: a round trip to the
 * broker, given this long at most. */
#define CHOREO_STOP_DRAIN_MS 2000

/* The metrics endpoint: connections served at once and how long an idle
 * one is kept; the sampler reads the backlog and the parked rows every
 * CHOREO_METRICS_SAMPLE_MS, the consumers' lag every
 * CHOREO_METRICS_LAG_SAMPLE_MS, and gives a JetStream consumer info request
 * CHOREO_METRICS_JS_WAIT_MS. A consumer info is not cheap for the broker:
 * nats-server 2.9 counts a consumer's pending events by matching its filter
 * against every subject (one per saga and event type) in the stream's
 * newest blocks, holding the stream's store and the consumer, and it then
 * counts again at the consumer's next pull. Read every 2 s, that raised the
 * shop demo's p99 at 500 sagas/s from 47 to 76 ms (means of eight pairs). */
#define CHOREO_METRICS_CONNECTIONS 32
#define CHOREO_METRICS_IDLE_S 10
#define CHOREO_METRICS_SAMPLE_MS 2000
#define CHOREO_METRICS_LAG_SAMPLE_MS 15000
#define CHOREO_METRICS_JS_WAIT_MS 2000

/* The consumer name under which the relay parks an outbox row that the
 * broker refuses for good (too big, invalid): never a handler's consumer,
 * since those are <service>_<Type>. */
#define CHOREO_OUTBOX_CONSUMER "(outbox)"

/* How many SQL texts choreo_tx_prepare keeps prepared per connection; past
 * it, a new text takes the place of one not used in the current
 * transaction (a transaction that uses more keeps them all). */
#define CHOREO_USER_STMT_KEEP 64

#endif
