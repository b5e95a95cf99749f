#ifndef PEMS_PULL_H
#define PEMS_PULL_H

#include <signal.h>
#include <jansson.h>

#include "db.h"
#include "server_lease.h"

/* The read half of the sync: PEMS's changes into pfa_mirror, superseded versions archived to
 * pfa_mirror_history with the fields the next version changed. */

struct pull_stats {
    int pages;
    int applied;    /* records inserted, updated or marked deleted */
};

/* Pulls every record changed since api_servers.pull_since, page by page, through the lease's
 * rate window; stores the newest updatedAt seen as the next pull_since after each page.
 * 0 done, 1 PEMS failed or paused us (logged; what was applied stays), DB status < 0. */
int pull_server(db_t *db, struct server_lease *sl, volatile sig_atomic_t *stop,
                struct pull_stats *st);

/* Applies PEMS records ({pfaId, version, updatedAt?, data?, deleted?}) to org_id's mirror:
 * new -> inserted, newer version -> old one archived + updated, same or older -> nothing,
 * deleted -> archived + marked deleted. pull_since (may be NULL) is stored in the same
 * transaction. Returns the number applied or a DB status < 0. */
int pull_apply(db_t *db, const char *org_id, const json_t *records, const char *pull_since);

/* GET /health through the window; records health_ok/health_error/health_checked_at.
 * 0 healthy, 1 not, DB status < 0. */
int pull_health_check(db_t *db, struct server_lease *sl);

#endif
