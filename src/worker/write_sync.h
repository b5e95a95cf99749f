#ifndef PEMS_WRITE_SYNC_H
#define PEMS_WRITE_SYNC_H

#include <stdbool.h>
#include <jansson.h>

#include "db.h"
#include "server_lease.h"
#include "write_queue.h"

/* One queue item (src/README.md, How a modification flows): conflict check -> validation ->
 * PEMS call -> result. The result of a finished item is added to the batch (recorded by
 * wq_batch_send), except a conflict, which is recorded at once in its own transaction. */

struct sync_stats {
    int processed;
    int successful;   /* synced, merged ones included */
    int failed;       /* permanently */
    int conflicts;
    int skipped;      /* handed back without a result: retry scheduled, 429, never started */
    int merged;       /* auto-merged and synced */
    int pulled;
};

struct write_ctx {
    db_t *db;
    const char *worker_id;
    int max_attempts;
    struct server_lease *sl;
    struct wq_batch *batch;
    int (*settle)(void *arg);   /* waits for results in flight: before writes of a record */
    void *settle_arg;
    struct sync_stats *stats;
};

/* What to send, decided before the request. */
struct write_plan {
    json_t *changes;     /* update: the sanitized delta on the current version */
    int version;         /* the version written on */
    bool merged;
};
void write_plan_clear(struct write_plan *p);

enum write_step {
    WRITE_DONE = 0,        /* finished without a request (conflict, invalid, converged) */
    WRITE_NEEDS_REQUEST = 1
};

/* Conflict check and validation. WRITE_DONE / WRITE_NEEDS_REQUEST, or a DB status < 0. */
int write_sync_prepare(struct write_ctx *c, struct wq_item *it, struct write_plan *plan);

/* The caller has taken a slot of the rate window: sends the write and handles the answer
 * (409: refresh, re-check, retry at once or conflict). 0, or a DB status < 0. */
int write_sync_execute(struct write_ctx *c, struct wq_item *it, struct write_plan *plan);

/* The item goes back to pending untouched (shutdown, or a second item on a record already
 * written in this batch). */
int write_sync_release(struct write_ctx *c, const struct wq_item *it);

#endif
