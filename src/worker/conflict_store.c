#include "conflict_store.h"

#include <stdio.h>
#include <stdlib.h>

int conflict_store_changed_since(db_t *db, const char *org_id, const char *pfa_id,
                                 int base_version, json_t **fields)
{
    *fields = NULL;
    char sbase[16];
    snprintf(sbase, sizeof sbase, "%d", base_version);
    const char *params[] = { org_id, pfa_id, sbase };
    PGresult *res = db_query(db, "conflict_changed_since",
        "SELECT coalesce(jsonb_agg(DISTINCT f ORDER BY f), '[]'::jsonb)::text"
        " FROM pfa_mirror_history h, unnest(h.changed_fields) f"
        " WHERE h.organization_id = $1 AND h.pfa_id = $2 AND h.version >= $3::int", 3, params);
    if (!res)
        return db_last_status(db);
    json_t *arr = PQntuples(res) == 1 ? json_loads(PQgetvalue(res, 0, 0), 0, NULL) : NULL;
    PQclear(res);
    *fields = json_is_array(arr) ? arr : (json_decref(arr), json_array());
    return DB_OK;
}

int conflict_store_record(db_t *db, const char *worker_id, const struct wq_item *it,
                          const json_t *conflict_fields, int pems_version,
                          const json_t *pems_data, int http_status, int attempts_inc)
{
    char sseq[24], shttp[16], sver[16], satt[16];
    snprintf(sseq, sizeof sseq, "%lld", it->claim_seq);
    snprintf(shttp, sizeof shttp, "%d", http_status);
    snprintf(sver, sizeof sver, "%d", pems_version);
    snprintf(satt, sizeof satt, "%d", attempts_inc);
    char *fields = json_dumps(conflict_fields, JSON_COMPACT);
    char *pdata = json_dumps(pems_data, JSON_COMPACT);
    int rc = DB_ERROR;
    if (!fields || !pdata)
        goto cleanup;
    const char *params[] = { it->id, worker_id, sseq, http_status ? shttp : NULL, satt, sver,
                             fields, pdata };
    PGresult *res = db_query(db, "conflict_record",
        "WITH q AS ("
        "  UPDATE pfa_write_queue w SET status = 'completed', completed_at = now(),"
        "    locked_by = NULL, locked_until = NULL, last_error = 'conflict',"
        "    last_http_status = $4::int, attempts = w.attempts + $5::int,"
        "    duration_ms = greatest(0, (extract(epoch FROM clock_timestamp() - w.started_at) * 1000)::int),"
        "    updated_at = now()"
        "  WHERE w.id = $1 AND w.status = 'processing' AND w.locked_by = $2 AND w.claim_seq = $3::bigint"
        "  RETURNING w.id, w.organization_id, w.modification_id, w.attempts"
        "), m0 AS ("
        "  SELECT m.id, m.organization_id, m.pfa_id, m.base_version, m.delta, m.status"
        "  FROM pfa_modification m JOIN q ON m.id = q.modification_id"
        "), c AS ("
        "  INSERT INTO pfa_sync_conflict (organization_id, modification_id, pfa_id, local_version,"
        "    pems_version, conflict_fields, local_data, pems_data)"
        "  SELECT m0.organization_id, m0.id, m0.pfa_id, m0.base_version, $6::int,"
        "         ARRAY(SELECT jsonb_array_elements_text($7::jsonb)), m0.delta, $8::jsonb FROM m0"
        "  ON CONFLICT (modification_id) WHERE status = 'unresolved' DO NOTHING"
        "  RETURNING id, organization_id, pfa_id, conflict_fields, local_version, pems_version"
        "), mu AS ("
        "  UPDATE pfa_modification m SET status = 'conflict', updated_at = now()"
        "  FROM q WHERE m.id = q.modification_id RETURNING m.id"
        "), aud AS ("
        "  INSERT INTO audit_log (organization_id, user_id, actor, action, entity_type, entity_id,"
        "                         before, after)"
        "  SELECT q.organization_id, NULL::uuid, $2, 'queue_item.conflict', 'pfa_write_queue', q.id::text,"
        "         jsonb_build_object('status', 'processing'),"
        "         jsonb_build_object('status', 'completed', 'lastError', 'conflict',"
        "                            'attempts', q.attempts)"
        "  FROM q"
        "  UNION ALL"
        "  SELECT m0.organization_id, NULL::uuid, $2, 'modification.conflict', 'pfa_modification',"
        "         m0.id::text, jsonb_build_object('status', m0.status),"
        "         jsonb_build_object('status', 'conflict', 'conflictFields', $7::jsonb,"
        "                            'pemsVersion', $6::int)"
        "  FROM m0"
        "  UNION ALL"
        "  SELECT c.organization_id, NULL::uuid, $2, 'conflict.created', 'pfa_sync_conflict', c.id::text,"
        "         NULL, jsonb_build_object('status', 'unresolved', 'pfaId', c.pfa_id,"
        "           'conflictFields', to_jsonb(c.conflict_fields), 'localVersion', c.local_version,"
        "           'pemsVersion', c.pems_version)"
        "  FROM c"
        "  RETURNING 1"
        ")"
        " SELECT count(*) FROM q", 8, params);
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
