#ifndef PEMS_AUDIT_H
#define PEMS_AUDIT_H

#include <jansson.h>
#include "db.h"

/* Appends one audit_log row on the caller's transaction. user_id may be NULL (the worker);
 * actor is the user id or the worker id. before/after may be NULL. DB_OK or failure status. */
int audit_write(db_t *db, const char *org_id, const char *user_id, const char *actor,
                const char *action, const char *entity_type, const char *entity_id,
                const json_t *before, const json_t *after);

#endif
