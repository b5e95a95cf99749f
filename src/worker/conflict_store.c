#include "conflict_store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

int conflict_store_changed_since(db_t *db, const char *org_id, const char *pfa_id,
                                 int64_t base_version, json_t **fields)
{
    *fields = NULL;
    char sbase[24];
    snprintf(sbase, sizeof sbase, "%" PRId64, base_version);
    const char *params[] = { org_id, pfa_id, sbase };
    PGresult *res = db_query(db, "conflict_changed_since",
        "SELECT coalesce(jsonb_agg(DISTINCT f ORDER BY f), '[]'::jsonb)::text"
        " FROM pfa_mirror_history h, unnest(h.changed_fields) f"
        " WHERE h.organization_id = $1 AND h.pfa_id = $2 AND h.version >= $3::bigint", 3, params);
    if (!res)
        return db_last_status(db);
    json_t *arr = PQntuples(res) == 1 ? json_loads(PQgetvalue(res, 0, 0), 0, NULL) : NULL;
    PQclear(res);
    *fields = json_is_array(arr) ? arr : (json_decref(arr), json_array());
    return DB_OK;
}

int conflict_store_record(db_t *db, const char *worker_id, const struct item *it,
                          const json_t *conflict_fields, int64_t pems_version,
                          const json_t *pems_data, int http_status, int attempts_inc)
{
    char sseq[24], shttp[16], sver[24], satt[16];
    snprintf(sseq, sizeof sseq, "%lld", it->claim_seq);
    snprintf(shttp, sizeof shttp, "%d", http_status);
    snprintf(sver, sizeof sver, "%" PRId64, pems_version);
    snprintf(satt, sizeof satt, "%d", attempts_inc);
    char *fields = json_dumps(conflict_fields, JSON_COMPACT);
    char *pdata = json_dumps(pems_data, JSON_COMPACT);
    int rc = DB_ERROR;
    if (!fields || !pdata)
        goto cleanup;
    const char *params[] = { it->id, worker_id, sseq, http_status ? shttp : NULL, satt, sver,
                             fields, pdata };
    /* sql/functions/worker_results.sql */
    PGresult *res = db_query(db, "conflict_record",
        "SELECT pfa_sync_conflict_record($1::uuid, $2, $3::bigint, $4::int, $5::int, $6::bigint,"
        " $7::jsonb, $8::jsonb)", 8, params);
    if (!res) {
        rc = db_last_status(db);
        goto cleanup;
    }
    rc = atoi(PQgetvalue(res, 0, 0)) > 0 ? 1 : 0;
    PQclear(res);
cleanup:
    free(fields);
    free(pdata);
    return rc;
}
