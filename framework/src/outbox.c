/* Outbox rows: inserted inside the caller's transaction, read in seq order
 * by the relay, and marked published only after JetStream acknowledged them.
 * A row that is never marked is simply published again with the same
 * Nats-Msg-Id, which JetStream or the consumer's inbox drops. Every query
 * of unpublished rows goes through a partial index on them, so its cost
 * does not grow with the delayed rows waiting for their time. */
#include "outbox.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"
#include "tuning.h"

choreo_status choreo__outbox_insert(choreo_store *st, const choreo_outbox_row *row, int64_t *seq)
{
    choreo_q *s = choreo__store_stmt(st, STMT_OUTBOX_INSERT,
        "INSERT INTO choreo_outbox(event_id, subject, headers, body, created_at, publish_at)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    if (!s)
        return CHOREO_ESTORE;
    choreo__q_bind_text(s, 1, row->event_id, -1);
    choreo__q_bind_text(s, 2, row->subject, -1);
    choreo__q_bind_text(s, 3, row->headers, -1);
    choreo__q_bind_blob(s, 4, row->body, (int)row->body_len);
    choreo__q_bind_int64(s, 5, row->created_us);
    choreo__q_bind_int64(s, 6, row->publish_at);
    int rc = choreo__q_step(s);
    choreo__q_reset(s);
    if (rc == SQLITE_CONSTRAINT)
        return choreo__fail(CHOREO_EDUPLICATE, "event %s is already in the outbox",
                            row->event_id);
    if (rc == SQLITE_DONE)
        choreo__store_note_outbox(st); /* other instances' relays learn of it at commit */
    if (seq)
        *seq = rc == SQLITE_DONE && st->engine == ENGINE_SQLITE ? sqlite3_last_insert_rowid(st->db)
                                                                : 0;
    return rc == SQLITE_DONE ? CHOREO_OK : choreo__store_error(st, rc, "writing an outbox row");
}

choreo_status choreo__outbox_due(choreo_store *st, int64_t now_ms, int64_t after_seq, int limit,
                                 bool (*fn)(const choreo_outbox_row *row, void *user),
                                 void *user)
{
    /* Two bounded reads, merged in seq order: the next `limit` unpublished
     * rows after the cursor in seq order (the rows emitted for now, in commit
     * order), and the `limit` earliest due rows after the cursor by
     * publish_at (delayed rows that fell due). Either one alone would walk
     * every delayed row not yet due: the first when they come before the
     * due rows in seq order, the second ordered by seq. */
    choreo_q *s = choreo__store_stmt(st, STMT_OUTBOX_DUE,
        "WITH head AS (SELECT seq, publish_at FROM choreo_outbox"
        "              WHERE published_at IS NULL AND seq > ?3 ORDER BY seq LIMIT ?2),"
        " ready AS (SELECT seq FROM head WHERE publish_at <= ?1"
        "           UNION"
        "           SELECT seq FROM (SELECT seq FROM choreo_outbox"
        "                            WHERE published_at IS NULL AND publish_at <= ?1 AND seq > ?3"
        "                            ORDER BY publish_at LIMIT ?2) AS due)"
        " SELECT o.seq, o.event_id, o.subject, o.headers, o.body, o.created_at, o.publish_at"
        " FROM ready JOIN choreo_outbox o ON o.seq = ready.seq ORDER BY o.seq LIMIT ?2");
    if (!s)
        return CHOREO_ESTORE;
    choreo__q_bind_int64(s, 1, now_ms);
    choreo__q_bind_int(s, 2, limit);
    choreo__q_bind_int64(s, 3, after_seq);
    int rc;
    while ((rc = choreo__q_step(s)) == SQLITE_ROW) {
        choreo_outbox_row row = {
            .seq = choreo__q_int64(s, 0),
            .event_id = (const char *)choreo__q_text(s, 1),
            .subject = (const char *)choreo__q_text(s, 2),
            .headers = (const char *)choreo__q_text(s, 3),
            .body = choreo__q_blob(s, 4),
            .body_len = (size_t)choreo__q_bytes(s, 4),
            .created_us = choreo__q_int64(s, 5),
            .publish_at = choreo__q_int64(s, 6),
        };
        if (!fn(&row, user)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    choreo__q_reset(s);
    return rc == SQLITE_DONE ? CHOREO_OK : choreo__store_error(st, rc, "reading due outbox rows");
}

choreo_status choreo__outbox_mark_published(choreo_store *st, const int64_t *seqs, int n,
                                            int64_t now_ms, choreo_crashpoints *cp)
{
    if (n == 0)
        return CHOREO_OK;
    choreo_status s = choreo__store_begin(st);
    if (s != CHOREO_OK)
        return s;
    choreo_q *stmt = choreo__store_stmt(st, STMT_OUTBOX_MARK,
        "UPDATE choreo_outbox SET published_at = ?1, attempts = attempts + 1,"
        " last_error = NULL WHERE seq = ?2");
    if (!stmt) {
        choreo__store_rollback(st);
        return CHOREO_ESTORE;
    }
    for (int i = 0; i < n; i++) {
        if (cp && i == n / 2)
            choreo__crashpoint(cp, CP_INSIDE_MARK);
        choreo__q_bind_int64(stmt, 1, now_ms);
        choreo__q_bind_int64(stmt, 2, seqs[i]);
        int rc = choreo__q_step(stmt);
        choreo__q_reset(stmt);
        if (rc != SQLITE_DONE) {
            s = choreo__store_error(st, rc, "marking outbox rows published");
            choreo__store_rollback(st);
            return s;
        }
    }
    return choreo__store_commit(st);
}

choreo_status choreo__outbox_record_failure(choreo_store *st, int64_t seq, const char *error)
{
    choreo_q *s = choreo__store_stmt(st, STMT_OUTBOX_FAILED,
        "UPDATE choreo_outbox SET attempts = attempts + 1, last_error = ?1 WHERE seq = ?2");
    if (!s)
        return CHOREO_ESTORE;
    choreo__q_bind_text(s, 1, error, -1);
    choreo__q_bind_int64(s, 2, seq);
    int rc = choreo__q_step(s);
    choreo__q_reset(s);
    return rc == SQLITE_DONE ? CHOREO_OK : choreo__store_error(st, rc, "recording a publish failure");
}

static choreo_status single_int(choreo_store *st, enum choreo_stmt id, const char *sql,
                                int64_t if_null, int64_t *out, const char *what)
{
    choreo_q *s = choreo__store_stmt(st, id, sql);
    if (!s)
        return CHOREO_ESTORE;
    int rc = choreo__q_step(s);
    if (rc == SQLITE_ROW)
        *out = choreo__q_is_null(s, 0) ? if_null : choreo__q_int64(s, 0);
    choreo__q_reset(s);
    return rc == SQLITE_ROW ? CHOREO_OK : choreo__store_error(st, rc, what);
}

choreo_status choreo__outbox_next_due(choreo_store *st, int64_t *out_ms)
{
    return single_int(st, STMT_OUTBOX_NEXT_DUE,
                      "SELECT MIN(publish_at) FROM choreo_outbox WHERE published_at IS NULL",
                      INT64_MAX, out_ms, "finding the next due outbox row");
}

choreo_status choreo__outbox_pending(choreo_store *st, int64_t *out)
{
    return single_int(st, STMT_OUTBOX_PENDING,
                      "SELECT COUNT(*) FROM choreo_outbox WHERE published_at IS NULL", 0, out,
                      "counting unpublished outbox rows");
}

choreo_status choreo__outbox_backlog(choreo_store *st, int64_t now_ms, int64_t *due,
                                     int64_t *oldest_due_us, int64_t *delayed)
{
    choreo_q *s = choreo__store_stmt(st, STMT_OUTBOX_BACKLOG,
        "SELECT COUNT(*), COALESCE(MIN(CASE WHEN created_at > publish_at * 1000 THEN created_at"
        "                             ELSE publish_at * 1000 END), 0) FROM choreo_outbox"
        " WHERE published_at IS NULL AND publish_at <= ?1");
    if (!s)
        return CHOREO_ESTORE;
    choreo__q_bind_int64(s, 1, now_ms);
    int rc = choreo__q_step(s);
    if (rc == SQLITE_ROW) {
        *due = choreo__q_int64(s, 0);
        *oldest_due_us = choreo__q_int64(s, 1);
    }
    choreo__q_reset(s);
    if (rc != SQLITE_ROW)
        return choreo__store_error(st, rc, "counting due outbox rows");
    s = choreo__store_stmt(st, STMT_OUTBOX_DELAYED,
        "SELECT COUNT(*) FROM choreo_outbox WHERE published_at IS NULL AND publish_at > ?1");
    if (!s)
        return CHOREO_ESTORE;
    choreo__q_bind_int64(s, 1, now_ms);
    rc = choreo__q_step(s);
    if (rc == SQLITE_ROW)
        *delayed = choreo__q_int64(s, 0);
    choreo__q_reset(s);
    return rc == SQLITE_ROW ? CHOREO_OK
                            : choreo__store_error(st, rc, "counting delayed outbox rows");
}

choreo_status choreo__outbox_delete(choreo_store *st, int64_t seq)
{
    choreo_q *s = choreo__store_stmt(st, STMT_OUTBOX_DELETE,
                                         "DELETE FROM choreo_outbox WHERE seq = ?1");
    if (!s)
        return CHOREO_ESTORE;
    choreo__q_bind_int64(s, 1, seq);
    int rc = choreo__q_step(s);
    choreo__q_reset(s);
    return rc == SQLITE_DONE ? CHOREO_OK
                             : choreo__store_error(st, rc, "deleting an outbox row");
}

/* The size of a kept copy's one allocation, which runs from its event_id
 * to the end of its body (choreo__outbox_copy). */
static size_t copy_size(const choreo_outbox_row *copy)
{
    return (size_t)((const char *)copy->body - copy->event_id) + copy->body_len;
}

void choreo__outbox_copy(choreo_outbox_copies *l, const choreo_outbox_row *row)
{
    size_t id = strlen(row->event_id) + 1, subject = strlen(row->subject) + 1,
           headers = strlen(row->headers) + 1, size = id + subject + headers + row->body_len;
    /* More than a relay round takes are read from the table anyway. */
    if (l->n >= CHOREO_RELAY_BATCH || l->bytes + size > CHOREO_RELAY_COPY_BYTES)
        l->incomplete = true;
    if (l->incomplete)
        return;
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 16;
        choreo_outbox_row *v = realloc(l->v, sizeof *v * (size_t)cap);
        if (!v) {
            l->incomplete = true;
            return;
        }
        l->v = v;
        l->cap = cap;
    }
    char *buf = malloc(size);
    if (!buf) {
        l->incomplete = true;
        return;
    }
    l->bytes += size;
    memcpy(buf, row->event_id, id);
    memcpy(buf + id, row->subject, subject);
    memcpy(buf + id + subject, row->headers, headers);
    if (row->body_len)
        memcpy(buf + id + subject + headers, row->body, row->body_len);
    l->v[l->n++] = (choreo_outbox_row){
        .seq = row->seq,
        .event_id = buf,
        .subject = buf + id,
        .headers = buf + id + subject,
        .body = (const uint8_t *)buf + id + subject + headers,
        .body_len = row->body_len,
        .created_us = row->created_us,
        .publish_at = row->publish_at,
    };
}

void choreo__outbox_copies_move(choreo_outbox_copies *dst, choreo_outbox_copies *src)
{
    if (src->incomplete || dst->n + src->n > CHOREO_RELAY_BATCH ||
        dst->bytes + src->bytes > CHOREO_RELAY_COPY_BYTES)
        dst->incomplete = true;
    if (!dst->incomplete && dst->n + src->n > dst->cap) {
        int cap = dst->n + src->n > 2 * dst->cap ? dst->n + src->n : 2 * dst->cap;
        choreo_outbox_row *v = realloc(dst->v, sizeof *v * (size_t)cap);
        if (v) {
            dst->v = v;
            dst->cap = cap;
        } else {
            dst->incomplete = true;
        }
    }
    if (dst->incomplete) {
        choreo__outbox_copies_truncate(src, 0);
        return;
    }
    if (src->n)
        memcpy(dst->v + dst->n, src->v, sizeof *src->v * (size_t)src->n);
    dst->n += src->n;
    dst->bytes += src->bytes;
    src->n = 0;
    src->bytes = 0;
}

void choreo__outbox_copies_truncate(choreo_outbox_copies *l, int n)
{
    for (int i = n; i < l->n; i++) {
        l->bytes -= copy_size(&l->v[i]);
        free((void *)l->v[i].event_id);
    }
    if (n < l->n)
        l->n = n;
    if (n == 0) {
        l->incomplete = false;
        l->bytes = 0;
    }
}

void choreo__outbox_copies_free(choreo_outbox_copies *l)
{
    choreo__outbox_copies_truncate(l, 0);
    free(l->v);
    l->v = NULL;
    l->cap = 0;
}
