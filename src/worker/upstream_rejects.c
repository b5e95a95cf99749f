#include "upstream_rejects.h"
#include "log.h"
#include "metrics.h"
#include "text.h"

#include <stdlib.h>
#include <string.h>

/* a value PEMS chose, for a log line: valid UTF-8 within the budget (the logger quotes it) */
static void log_safe(const char *s, char *out, size_t outlen)
{
    text_utf8_clip(s, s ? strlen(s) : 0, out, outlen);
}

int upstream_rejects_note(db_t *db, const char *org_id, const json_t *rejects)
{
    size_t i;
    const json_t *r;
    if (json_array_size(rejects) == 0)
        return DB_OK;
    json_array_foreach(rejects, i, r) {
        char id[256], detail[400];
        const char *reason = json_string_value(json_object_get(r, "reason"));
        log_safe(json_string_value(json_object_get(r, "pfaId")), id, sizeof id);
        log_safe(json_string_value(json_object_get(r, "detail")), detail, sizeof detail);
        log_warn("pems_record_rejected", "org=%s pfa_id=\"%s\" reason=%s detail=\"%s\"", org_id,
                 id, reason ? reason : "invalid", detail);
        metrics_upstream_rejected(reason);
    }
    char *s = json_dumps(rejects, JSON_COMPACT);
    if (!s)
        return DB_ERROR;
    const char *params[] = { org_id, s };
    int rc = db_exec(db, "pems_note_rejects", "SELECT pems_note_rejects($1::uuid, $2::jsonb)", 2,
                     params);
    free(s);
    return rc;
}

int upstream_reject_note(db_t *db, const char *org_id, const char *pfa_id, enum pems_reject r,
                         const char *detail)
{
    json_t *rejects = json_pack("[{s:s?, s:s, s:s}]", "pfaId", pfa_id, "reason",
                                pems_reject_name(r), "detail", detail ? detail : "");
    int rc = rejects ? upstream_rejects_note(db, org_id, rejects) : DB_ERROR;
    json_decref(rejects);
    return rc;
}
