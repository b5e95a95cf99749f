#include "results.h"
#include "log.h"
#include "step.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

#define RESULT_CONNS 2            /* flushes in flight at once, each on its own connection */
#define FLUSH_COUNT 50            /* a batch this full goes out at once */
#define FLUSH_AGE_NS 50000000LL   /* results wait at most 50 ms to be recorded */
#define FLUSH_MAX 100             /* results gathered while a flush is in flight, at most */

struct results {
    const char *worker_id;
    struct {
        db_t *db;
        struct wq_batch batch;
    } conn[RESULT_CONNS];
    int gathering;              /* the connection whose batch gathers */
    int64_t since_ns;           /* when the gathering batch got its first result, 0: empty */
};


struct results *results_new(const char *conninfo, const char *worker_id)
{
    struct results *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->worker_id = worker_id;
    for (int i = 0; i < RESULT_CONNS; i++) {
        wq_batch_init(&r->conn[i].batch);
        if (!(r->conn[i].db = db_new(conninfo))) {
            results_free(r);
            return NULL;
        }
    }
    return r;
}

void results_free(struct results *r)
{
    if (!r)
        return;
    for (int i = 0; i < RESULT_CONNS; i++) {
        wq_batch_clear(&r->conn[i].batch);
        db_free(r->conn[i].db);
    }
    free(r);
}

struct wq_batch *results_batch(struct results *r)
{
    return &r->conn[r->gathering].batch;
}

void results_touch(struct results *r)
{
    if (r->since_ns == 0)
        r->since_ns = util_mono_ns();
}

enum step results_settle(struct results *r)
{
    enum step rc = STEP_OK;
    for (int i = 0; i < RESULT_CONNS; i++) {
        int s = wq_batch_settle(r->conn[i].db, &r->conn[i].batch);
        if (s < 0 && rc == STEP_OK)
            rc = s;
    }
    return rc;
}

/* Hands the gathered results to the database without waiting; the next connection's batch
 * gathers from now on. Its connection must have nothing in flight. */
static enum step send_gathered(struct results *r)
{
    struct wq_batch *b = results_batch(r);
    db_t *db = r->conn[r->gathering].db;
    int n = wq_batch_count(b);
    if (n == 0)
        return STEP_OK;
    int rc = wq_batch_send(db, r->worker_id, b);
    if (rc < 0) {
        log_warn("results_not_recorded", "count=%d error=\"%s\"", n, db_errmsg(db));
        return rc;
    }
    r->gathering = (r->gathering + 1) % RESULT_CONNS;
    r->since_ns = 0;
    return STEP_OK;
}

int64_t results_due_in(const struct results *r)
{
    const struct wq_batch *b = &r->conn[r->gathering].batch;
    if (wq_batch_count(b) == 0)
        return INT64_MAX;
    if (wq_batch_count(b) >= FLUSH_COUNT)
        return 0;
    int64_t left = r->since_ns + FLUSH_AGE_NS - util_mono_ns();
    return left > 0 ? left : 0;
}

enum step results_collect(struct results *r, int *collected)
{
    *collected = 0;
    for (int i = 0; i < RESULT_CONNS; i++) {
        if (db_sent(r->conn[i].db) && db_send_done(r->conn[i].db)) {
            int rc = wq_batch_settle(r->conn[i].db, &r->conn[i].batch);
            if (rc < 0)
                return (enum step)rc;
            (*collected)++;
        }
    }
    return STEP_OK;
}

enum step results_pump(struct results *r)
{
    if (results_due_in(r) > 0)
        return STEP_OK;
    db_t *db = r->conn[r->gathering].db;
    if (db_sent(db)) {
        /* the previous flush on this connection still runs: keep gathering, up to FLUSH_MAX
         * (memory stays bounded, and requests do not run ahead of their recording) */
        if (!db_send_done(db) && wq_batch_count(results_batch(r)) < FLUSH_MAX)
            return STEP_OK;
        int rc = wq_batch_settle(db, results_batch(r));
        if (rc < 0)
            return rc;
    }
    return send_gathered(r);
}

enum step results_flush(struct results *r)
{
    enum step rc = results_settle(r);
    if (rc == STEP_OK)
        rc = send_gathered(r);
    if (rc == STEP_OK)
        rc = results_settle(r);
    return rc;
}

void results_abandon(struct results *r)
{
    /* each result is fenced by its claim, so a late one changes nothing */
    results_flush(r);
    for (int i = 0; i < RESULT_CONNS; i++)
        json_array_clear(r->conn[i].batch.rows);
    r->since_ns = 0;
}

int results_waitfds(struct results *r, struct curl_waitfd *fds, int max)
{
    int n = 0;
    for (int i = 0; i < RESULT_CONNS && n < max; i++) {
        PGconn *pg = db_sent(r->conn[i].db) ? db_pg(r->conn[i].db) : NULL;
        if (pg && PQsocket(pg) >= 0) {
            fds[n].fd = PQsocket(pg);
            fds[n].events = CURL_WAIT_POLLIN;
            fds[n].revents = 0;
            n++;
        }
    }
    return n;
}

void results_written(const struct results *r, json_t *set)
{
    for (int i = 0; i < RESULT_CONNS; i++)
        wq_batch_written(&r->conn[i].batch, set);
}

int results_pending(const struct results *r)
{
    int n = 0;
    for (int i = 0; i < RESULT_CONNS; i++)
        n += wq_batch_count(&r->conn[i].batch) + (int)json_array_size(r->conn[i].batch.sent_rows);
    return n;
}
