#ifndef PEMS_UPSTREAM_REJECTS_H
#define PEMS_UPSTREAM_REJECTS_H

#include <jansson.h>

#include "db.h"
#include "pems_record.h"

/* What a PEMS server sent and the worker did not take (README, Security): each reject is
 * logged with its organization and pfaId, counted (pems_upstream_rejected_total) and kept in
 * pems_rejected_records, which makes /health `degraded`. Returns a DB status. */

/* rejects: [{pfaId, reason, detail}] as pems_page_parse gives them */
int upstream_rejects_note(db_t *db, const char *org_id, const json_t *rejects);
int upstream_reject_note(db_t *db, const char *org_id, const char *pfa_id, enum pems_reject r,
                         const char *detail);

#endif
