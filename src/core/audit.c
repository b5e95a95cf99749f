#include "audit.h"

#include <stdlib.h>

int audit_write(db_t *db, const char *org_id, const char *user_id, const char *actor,
                const char *action, const char *entity_type, const char *entity_id,
                const json_t *before, const json_t *after)
{
    char *b = before ? json_dumps(before, JSON_COMPACT) : NULL;
    char *a = after ? json_dumps(after, JSON_COMPACT) : NULL;
    const char *params[] = { org_id, user_id, actor, action, entity_type, entity_id, b, a };
    int rc = db_exec(db, "audit_write",
                     "INSERT INTO audit_log (organization_id, user_id, actor, action, entity_type,"
                     " entity_id, before, after) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                     8, params);
    free(b);
    free(a);
    return rc;
}
