#ifndef PEMS_PULL_H
#define PEMS_PULL_H

#include <jansson.h>
#include <stdint.h>

#include "db.h"
#include "server_lock.h"
#include "step.h"

/* The read half of the sync: PEMS's changes into pfa_mirror, superseded versions archived to
 * pfa_mirror_history with the fields the next version changed. */

struct pull_stats {
    int pages;
    int applied;    /* records inserted, updated or marked deleted */
};

/* One server's pull, a request at a time, driven by the caller's event loop: GET /health
 * (recorded in api_servers), then every record changed since api_servers.pull_since, page by
 * page; the newest updatedAt seen is stored as the next pull_since with each page. */
enum pull_state { PULL_HEALTH, PULL_PAGES, PULL_FINISHED };
struct pull_job {
    enum pull_state state;
    int64_t trust_until_ms;     /* PEMS's updatedAt beyond this is not a cursor */
    int64_t since_ms, newest_ms;    /* -1: none */
    char since[32], newest[32];
    char *cursor;               /* the next page's, NULL on the first */
    json_t *cursors;            /* every cursor sent: one coming back is a loop */
    struct pull_stats st;
};
/* Loads the cursor: STEP_OK or a DB status < 0. */
enum step pull_begin(db_t *db, const struct server_lock *sl, struct pull_job *job);
/* The next request of the job (NULL when out of memory). */
struct pems_request *pull_request(const struct server_lock *sl, struct pull_job *job);
/* Handles its answer: STEP_AGAIN (another request), STEP_DONE (finished, or PEMS failed:
 * logged, what was applied stays), or a DB status < 0. */
enum step pull_answer(db_t *db, struct server_lock *sl, struct pull_job *job,
                      const struct pems_response *resp);
void pull_job_clear(struct pull_job *job);

/* Applies PEMS records ({pfaId, version, updatedAt?, data?, deleted?}) to org_id's mirror:
 * new -> inserted, newer version -> old one archived + updated, same or older -> nothing,
 * deleted -> archived + marked deleted. pull_since (may be NULL) is stored in the same
 * transaction. Returns the number applied or a DB status < 0. */
int pull_apply(db_t *db, const char *org_id, const json_t *records, const char *pull_since);

#endif
