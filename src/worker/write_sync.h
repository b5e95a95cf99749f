#ifndef PEMS_WRITE_SYNC_H
#define PEMS_WRITE_SYNC_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "db.h"
#include "server_lock.h"
#include "step.h"
#include "write_queue.h"

/* One queue item (src/README.md, How a modification flows): conflict check -> validation ->
 * PEMS request(s) -> result. The result of a finished item is added to the batch (the result
 * pipeline, results.h), except a conflict, which is recorded at once in its own transaction.
 * The requests are made here and performed by the caller (pems_request), so many items are
 * in flight at once. */

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
    struct server_lock *sl;
    struct wq_batch *batch;
    enum step (*settle)(void *arg);   /* waits for results in flight: before writes of a record */
    void *settle_arg;
    struct sync_stats *stats;
};

/* Conflict check and validation (write_decide): STEP_AGAIN (a request is planned), STEP_DONE
 * (finished without one: conflict, invalid, converged), or a DB status < 0. */
enum step write_sync_prepare(struct write_ctx *c, struct item *it);

/* The planned request (the write, or the GET after a 409), to be started once the server's
 * rate window allows it. NULL when out of memory. */
struct pems_request *write_sync_request(struct write_ctx *c, struct item *it);

/* Handles the answer to that request (409: refresh, re-check, then another request or a
 * conflict): STEP_AGAIN (another request is planned), STEP_DONE, or a DB status < 0. */
enum step write_sync_answer(struct write_ctx *c, struct item *it,
                            const struct pems_response *resp);

/* The item goes back to pending untouched (shutdown, or its server went away): STEP_OK or
 * STEP_ERROR. */
enum step write_sync_release(struct write_ctx *c, const struct item *it);

#endif
