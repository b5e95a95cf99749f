#ifndef PEMS_CONFLICT_STORE_H
#define PEMS_CONFLICT_STORE_H

#include <jansson.h>
#include <stdint.h>

#include "db.h"
#include "write_queue.h"

/* What conflict detection needs from the database, and what it leaves there. */

/* Sorted array of the fields PEMS changed since base_version: the union of changed_fields of
 * the pfa_mirror_history rows with version >= base_version. DB_OK or a failure status. */
int conflict_store_changed_since(db_t *db, const char *org_id, const char *pfa_id,
                                 int64_t base_version, json_t **fields);

/* In one transaction, fenced by the item's claim: a pfa_sync_conflict row (local data = the
 * modification's delta, local version = its base version, PEMS data/version = the mirror's
 * now), the modification 'conflict', the queue item 'completed' with last_error 'conflict',
 * and their audit rows. Returns 1 when recorded, 0 when the claim was no longer ours, or a
 * DB status < 0. http_status 0 = none; attempts_inc 1 when a PEMS request was made. */
int conflict_store_record(db_t *db, const char *worker_id, const struct item *it,
                          const json_t *conflict_fields, int64_t pems_version,
                          const json_t *pems_data, int http_status, int attempts_inc);

#endif
