#include "api_modifications.h"
#include "api_params.h"
#include "audit.h"
#include "auth.h"
#include "log.h"
#include "pems_record.h"
#include "util.h"
#include "validation.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const op_values[] = { "update", "delete", NULL };
static const char *const status_values[] = { "draft", "pending_sync", "queued", "synced",
                                             "sync_error", "conflict", "discarded", NULL };

void api_modification_send(struct api_ctx *ctx, struct http_request *req, const char *id,
                           int status)
{
    const char *params[] = { id };
    PGresult *res = db_query(ctx->db, "modification_json",
                             "SELECT pems_modification_json(m)::text FROM pfa_modification m"
                             " WHERE m.id = $1::uuid",
                             1, params);
    if (!res) {
        api_db_failure(ctx, req);
        return;
    }
    if (PQntuples(res) == 0)
        http_send_error(req, 404, "not_found", "No such modification", NULL);
    else
        http_send_json_text(req, status, PQgetvalue(res, 0, 0));
    PQclear(res);
}

static const struct api_field create_fields[] = {
    { "organizationId", AF_UUID, true, 0, 0, NULL },
    { "pfaId", AF_STRING, true, 1, 200, NULL },
    { "operation", AF_ENUM, true, 0, 0, op_values },
    { "baseVersion", AF_INT, true, 0, PEMS_VERSION_MAX, NULL },
    { "delta", AF_OBJECT, false, 0, 0, NULL },
    { "replaces", AF_UUID, false, 0, 0, NULL },
};

/* The operation and its delta agree: a delete takes none, an update changes something. *op is
 * the operation named (update when none is). */
static void check_operation_delta(const json_t *entry, enum pfa_op *op, json_t *details)
{
    const char *op_name = json_string_value(json_object_get(entry, "operation"));
    const json_t *delta = json_object_get(entry, "delta");
    if (json_is_null(delta))
        delta = NULL;
    *op = PFA_OP_UPDATE;
    if (op_name && pfa_op_parse(op_name, op) == 0 && json_is_object(delta)) {
        if (*op == PFA_OP_DELETE && json_object_size(delta) > 0)
            api_detail_add(details, "delta", "a delete takes an empty or absent delta");
        if (*op == PFA_OP_UPDATE && json_object_size(delta) == 0)
            api_detail_add(details, "delta", "an update must change at least one field");
    } else if (op_name && *op == PFA_OP_UPDATE && !delta) {
        api_detail_add(details, "delta", "is required for an update");
    }
}

/* A baseVersion the mirror has not reached is refused. */
static bool base_version_known(long long base_version, long long mirror_version,
                               json_t *details)
{
    if (base_version <= mirror_version)
        return true;
    char msg[96];
    snprintf(msg, sizeof msg, "is newer than the mirror's version %lld", mirror_version);
    api_detail_add(details, "baseVersion", msg);
    return false;
}

/* `replaces`: the draft or refused (sync_error) modification of the same record this one
 * corrects, discarded in the same transaction (pems_modification_replace,
 * sql/functions/modifications.sql). 0 when done; else the answer is sent, and the caller rolls
 * back. */
static int replace_modification(struct api_ctx *ctx, struct http_request *req, const char *org,
                                const char *pfa_id, const char *old_id, const char *new_id)
{
    const char *p[] = { org, pfa_id, old_id, new_id, req->user_id };
    PGresult *res = db_query(ctx->db, "modification_replace",
                             "SELECT pems_modification_replace($1::uuid, $2, $3::uuid, $4::uuid,"
                             " $5::uuid)",
                             5, p);
    if (!res)
        return -2;
    const char *r = PQgetvalue(res, 0, 0);
    int rc = 0;
    if (strcmp(r, "replaced") == 0) {
        rc = 0;
    } else if (strcmp(r, "not_found") == 0) {
        http_send_error(req, 404, "not_found", "No such modification to replace", NULL);
        rc = -1;
    } else {
        json_t *details = json_array();
        char msg[160];
        if (strcmp(r, "other_record") == 0)
            snprintf(msg, sizeof msg, "is a modification of another record");
        else
            snprintf(msg, sizeof msg, "is %s: only a draft or a change PEMS refused (sync_error)"
                     " can be replaced", r);
        api_detail_add(details, "replaces", msg);
        if (strcmp(r, "other_record") == 0)
            http_send_error(req, 400, "validation_failed", "The request is not valid", details);
        else
            http_send_error(req, 409, "conflict", "That modification can no longer be replaced",
                            details);
        rc = -1;
    }
    PQclear(res);
    return rc;
}

void api_modification_create(struct api_ctx *ctx, struct http_request *req)
{
    json_t *body = api_body_object(req, false);
    json_t *details = NULL, *current = NULL, *sanitized = NULL, *vdetails = NULL;
    PGresult *res = NULL;
    if (!body)
        return;
    details = json_array();
    api_check_body(body, create_fields, sizeof create_fields / sizeof create_fields[0], details);
    const char *op_name = json_string_value(json_object_get(body, "operation"));
    json_t *delta = json_object_get(body, "delta");
    if (json_is_null(delta))
        delta = NULL;
    enum pfa_op op = PFA_OP_UPDATE;
    check_operation_delta(body, &op, details);
    if (json_array_size(details) > 0) {
        api_reject(ctx, req, details);
        details = NULL;
        goto cleanup;
    }
    json_decref(details);
    details = NULL;
    const char *org = json_string_value(json_object_get(body, "organizationId"));
    const char *pfa_id = json_string_value(json_object_get(body, "pfaId"));
    long long base_version = json_integer_value(json_object_get(body, "baseVersion"));
    if (auth_org(ctx, req, org) < 0)
        goto cleanup;

    const char *mp[] = { org, pfa_id };
    res = db_query(ctx->db, "modification_mirror",
                   "SELECT version, data::text FROM pfa_mirror"
                   " WHERE organization_id = $1::uuid AND pfa_id = $2 AND NOT deleted",
                   2, mp);
    if (!res) {
        api_db_failure(ctx, req);
        goto cleanup;
    }
    if (PQntuples(res) == 0) {
        http_send_error(req, 404, "not_found", "No such PFA record in this organization", NULL);
        goto cleanup;
    }
    long long mirror_version = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    current = json_loads(PQgetvalue(res, 0, 1), 0, NULL);
    PQclear(res);
    res = NULL;
    details = json_array();
    if (!base_version_known(base_version, mirror_version, details)) {
        http_send_error(req, 400, "validation_failed", "The request is not valid", details);
        details = NULL;
        goto cleanup;
    }
    if (pfa_validate_modification(op, delta, current, &sanitized, &vdetails) != 0) {
        http_send_error(req, 400, "validation_failed", "The modification is not valid",
                        vdetails ? vdetails : json_array());
        vdetails = NULL;
        goto cleanup;
    }
    char *delta_text = json_dumps(sanitized, JSON_COMPACT);
    char bv[24];
    snprintf(bv, sizeof bv, "%lld", base_version);
    const char *ip[] = { org, pfa_id, op_name, bv, delta_text, req->user_id };
    if (db_begin(ctx->db) != DB_OK) {
        free(delta_text);
        api_db_failure(ctx, req);
        goto cleanup;
    }
    res = db_query(ctx->db, "modification_insert",
                   "INSERT INTO pfa_modification (organization_id, pfa_id, operation,"
                   " base_version, delta, status, modified_by)"
                   " VALUES ($1::uuid, $2, $3, $4::bigint, $5::jsonb, 'pending_sync', $6::uuid)"
                   " RETURNING id::text",
                   6, ip);
    free(delta_text);
    if (!res)
        goto db_fail;
    char id[37];
    snprintf(id, sizeof id, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    res = NULL;
    const char *replaces = json_string_value(json_object_get(body, "replaces"));
    if (replaces) {
        int rrc = replace_modification(ctx, req, org, pfa_id, replaces, id);
        if (rrc == -2)
            goto db_fail;
        if (rrc < 0) {
            db_rollback(ctx->db);
            goto cleanup;
        }
    }
    json_t *after = json_pack("{s:s, s:s, s:I, s:O, s:s}", "pfaId", pfa_id, "operation", op_name,
                              "baseVersion", (json_int_t)base_version, "delta", sanitized,
                              "status", "pending_sync");
    int arc = audit_write(ctx->db, org, req->user_id, req->user_id, "modification.create",
                          "pfa_modification", id, NULL, after);
    json_decref(after);
    if (arc != DB_OK || db_commit(ctx->db) != DB_OK)
        goto db_fail;
    log_debug("modification_created", "id=%s org=%s pfa_id=%s", id, org, pfa_id);
    api_modification_send(ctx, req, id, 201);
    goto cleanup;

db_fail:
    if (db_last_status(ctx->db) == DB_ERROR && strcmp(db_sqlstate(ctx->db), "23503") == 0) {
        db_rollback(ctx->db);
        http_send_error(req, 404, "not_found", "No such PFA record in this organization", NULL);
        goto cleanup;
    }
    api_db_failure(ctx, req);
    db_rollback(ctx->db);
cleanup:
    if (res)
        PQclear(res);
    json_decref(body);
    json_decref(details);
    json_decref(current);
    json_decref(sanitized);
    json_decref(vdetails);
}

void api_modification_get(struct api_ctx *ctx, struct http_request *req)
{
    const char *id = http_param(req, "id");
    if (!util_is_uuid(id)) {
        auth_not_found(ctx, req);
        return;
    }
    const char *params[] = { req->user_id, id, auth_need(req) };
    PGresult *res = db_query(
        ctx->db, "modification_get",
        "SELECT EXISTS (SELECT 1 FROM users WHERE id = $1::uuid),"
        " pems_has_permission(p.permissions, $3),"
        " CASE WHEN pems_has_permission(p.permissions, $3)"
        " THEN pems_modification_json(m)::text END"
        " FROM (SELECT 1) one"
        " LEFT JOIN pfa_modification m ON m.id = $2::uuid"
        " LEFT JOIN user_organizations p ON p.user_id = $1::uuid"
        " AND p.organization_id = m.organization_id",
        3, params);
    if (!res) {
        api_db_failure(ctx, req);
        return;
    }
    if (auth_row(req, db_value(res, 0, 0), db_value(res, 0, 1)) == 0)
        http_send_json_text(req, 200, PQgetvalue(res, 0, 2));
    PQclear(res);
}

static const struct api_field list_fields[] = {
    { "organizationId", AF_UUID, true, 0, 0, NULL },
    { "status", AF_ENUM, false, 0, 0, status_values },
    { "pfaId", AF_STRING, false, 1, 200, NULL },
    { "limit", AF_INT, false, 1, 500, NULL },
    { "offset", AF_INT, false, 0, INT32_MAX, NULL },
};

void api_modifications_list(struct api_ctx *ctx, struct http_request *req)
{
    struct query_params q;
    if (!api_query_accept(ctx, req, &q, list_fields, sizeof list_fields / sizeof list_fields[0]))
        return;
    const char *limit = api_query_get(&q, "limit");
    const char *offset = api_query_get(&q, "offset");
    const char *params[] = { req->user_id, api_query_get(&q, "organizationId"), auth_need(req),
                             api_query_get(&q, "status"), api_query_get(&q, "pfaId"),
                             limit ? limit : "50", offset ? offset : "0" };
    auth_org_answer(ctx, req, db_query(
        ctx->db, "modifications_list",
        "SELECT EXISTS (SELECT 1 FROM users WHERE id = $1::uuid),"
        " pems_has_permission(p.permissions, $3),"
        " CASE WHEN pems_has_permission(p.permissions, $3) THEN json_build_object("
        "  'modifications', coalesce((SELECT json_agg(pems_modification_json(m)"
        "    ORDER BY m.created_at DESC, m.id DESC)"
        "   FROM (SELECT id FROM pfa_modification WHERE organization_id = $2::uuid"
        "     AND ($4::text IS NULL OR status = $4) AND ($5::text IS NULL OR strpos(lower(pfa_id), lower($5)) > 0)"
        "     ORDER BY created_at DESC, id DESC LIMIT $6::int OFFSET $7::int) page"
        "   JOIN pfa_modification m ON m.id = page.id), '[]'::json),"
        "  'total', (SELECT count(*) FROM pfa_modification WHERE organization_id = $2::uuid"
        "     AND ($4::text IS NULL OR status = $4) AND ($5::text IS NULL OR strpos(lower(pfa_id), lower($5)) > 0))"
        " )::text END"
        " FROM (SELECT 1) one LEFT JOIN user_organizations p"
        " ON p.user_id = $1::uuid AND p.organization_id = $2::uuid",
        7, params));
}

#define BATCH_MAX 500

static const struct api_field batch_entry_fields[] = {
    { "pfaId", AF_STRING, true, 1, 200, NULL },
    { "operation", AF_ENUM, true, 0, 0, op_values },
    { "baseVersion", AF_INT, true, 0, PEMS_VERSION_MAX, NULL },
    { "delta", AF_OBJECT, false, 0, 0, NULL },
};

/* Moves the details of one entry into details, each field named modifications[i].<field>. */
static void entry_details(json_t *details, size_t i, json_t *entry_details)
{
    size_t k;
    json_t *d;
    json_array_foreach(entry_details, k, d) {
        const char *field = json_string_value(json_object_get(d, "field"));
        char name[300];
        snprintf(name, sizeof name, "modifications[%zu]%s%s", i, field && *field ? "." : "",
                 field ? field : "");
        api_detail_add(details, name, json_string_value(json_object_get(d, "message")));
    }
    json_decref(entry_details);
}

/* The entries' shapes, each as POST /modifications checks its body, and one entry per
 * record. Details added to details. */
static void batch_check_shapes(const json_t *entries, json_t *details)
{
    size_t i;
    const json_t *e;
    json_array_foreach(entries, i, e) {
        json_t *d = json_array();
        if (!json_is_object(e)) {
            api_detail_add(d, "", "must be an object");
            entry_details(details, i, d);
            continue;
        }
        api_check_body(e, batch_entry_fields,
                       sizeof batch_entry_fields / sizeof batch_entry_fields[0], d);
        enum pfa_op op;
        check_operation_delta(e, &op, d);
        const char *pfa_id = json_string_value(json_object_get(e, "pfaId"));
        for (size_t j = 0; pfa_id && j < i; j++) {
            const char *other =
                json_string_value(json_object_get(json_array_get(entries, j), "pfaId"));
            if (other && strcmp(other, pfa_id) == 0) {
                char msg[96];
                snprintf(msg, sizeof msg, "modifications[%zu] is for this record already", j);
                api_detail_add(d, "pfaId", msg);
                break;
            }
        }
        entry_details(details, i, d);
    }
}

/* The entries with their sanitized deltas as one JSON array for the insert:
 * [{i, pfa_id, operation, base_version, delta}], checked on the records as the mirror holds
 * them (res: pfa_id, version, data). NULL with details added when any entry fails. */
static json_t *batch_check_records(const json_t *entries, PGresult *res, json_t *details)
{
    json_t *rows = json_array();
    size_t i;
    const json_t *e;
    json_array_foreach(entries, i, e) {
        const char *pfa_id = json_string_value(json_object_get(e, "pfaId"));
        int row = -1;
        for (int r = 0; r < PQntuples(res) && row < 0; r++)
            if (strcmp(PQgetvalue(res, r, 0), pfa_id) == 0)
                row = r;
        json_t *d = json_array();
        if (row < 0) {
            api_detail_add(d, "pfaId", "no such PFA record in this organization");
            entry_details(details, i, d);
            continue;
        }
        long long base = json_integer_value(json_object_get(e, "baseVersion"));
        long long mirror_version = strtoll(PQgetvalue(res, row, 1), NULL, 10);
        json_t *current = json_loads(PQgetvalue(res, row, 2), 0, NULL);
        const char *op_name = json_string_value(json_object_get(e, "operation"));
        enum pfa_op op = PFA_OP_UPDATE;
        pfa_op_parse(op_name, &op);
        json_t *delta = json_object_get(e, "delta");
        if (json_is_null(delta))
            delta = NULL;
        json_t *sanitized = NULL, *vdetails = NULL;
        if (base_version_known(base, mirror_version, d) &&
            pfa_validate_modification(op, delta, current, &sanitized, &vdetails) == 0) {
            json_array_append_new(rows, json_pack("{s:I, s:s, s:s, s:I, s:o}", "i",
                                                  (json_int_t)i, "pfa_id", pfa_id, "operation",
                                                  op_name, "base_version", (json_int_t)base,
                                                  "delta", sanitized));
        } else if (vdetails) {
            json_array_extend(d, vdetails);
        }
        json_decref(vdetails);
        json_decref(current);
        entry_details(details, i, d);
    }
    if (json_array_size(details) > 0) {
        json_decref(rows);
        return NULL;
    }
    return rows;
}

/* All the entries in one statement: the modifications, each with its audit row as POST
 * /modifications writes it, returned in the request's order (pfaIds are distinct). */
static const char batch_insert_sql[] =
    "WITH e AS (SELECT * FROM jsonb_to_recordset($2::jsonb)"
    "  AS x(i int, pfa_id text, operation text, base_version bigint, delta jsonb)),"
    " ins AS (INSERT INTO pfa_modification (organization_id, pfa_id, operation, base_version,"
    "  delta, status, modified_by)"
    "  SELECT $1::uuid, pfa_id, operation, base_version, delta, 'pending_sync', $3::uuid"
    "  FROM e ORDER BY i RETURNING *),"
    " aud AS (INSERT INTO audit_log (organization_id, user_id, actor, action, entity_type,"
    "  entity_id, before, after)"
    "  SELECT $1::uuid, $3::uuid, $3, 'modification.create', 'pfa_modification', ins.id::text,"
    "   NULL, jsonb_build_object('pfaId', ins.pfa_id, 'operation', ins.operation,"
    "    'baseVersion', ins.base_version, 'delta', ins.delta, 'status', ins.status)"
    "  FROM ins)"
    " SELECT json_build_object('modifications',"
    "  json_agg(pems_modification_json(ROW(ins.*)::pfa_modification) ORDER BY e.i))::text"
    " FROM ins JOIN e ON e.pfa_id = ins.pfa_id";

void api_modifications_batch(struct api_ctx *ctx, struct http_request *req)
{
    json_t *body = api_body_object(req, false);
    json_t *details = NULL, *rows = NULL;
    PGresult *res = NULL;
    char *ids = NULL, *rows_text = NULL;
    if (!body)
        return;
    details = json_array();
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v)
        if (strcmp(key, "organizationId") != 0 && strcmp(key, "modifications") != 0)
            api_detail_add(details, key, "unknown field");
    json_t *org_v = json_object_get(body, "organizationId");
    if (!org_v || json_is_null(org_v))
        api_detail_add(details, "organizationId", "is required");
    else if (!util_is_uuid(json_string_value(org_v)))
        api_detail_add(details, "organizationId", "must be a uuid");
    json_t *entries = json_object_get(body, "modifications");
    if (!entries || json_is_null(entries))
        api_detail_add(details, "modifications", "is required");
    else if (!json_is_array(entries) || json_array_size(entries) < 1 ||
             json_array_size(entries) > BATCH_MAX)
        api_detail_add(details, "modifications", "must be an array of 1 to 500 modifications");
    else
        batch_check_shapes(entries, details);
    if (json_array_size(details) > 0) {
        api_reject(ctx, req, details);
        details = NULL;
        goto cleanup;
    }
    const char *org = json_string_value(org_v);
    if (auth_org(ctx, req, org) < 0)
        goto cleanup;

    /* the records the entries name, as the mirror holds them */
    json_t *names = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e)
        json_array_append(names, json_object_get(e, "pfaId"));
    ids = json_dumps(names, JSON_COMPACT);
    json_decref(names);
    const char *mp[] = { org, ids };
    res = db_query(ctx->db, "modifications_batch_mirror",
                   "SELECT pfa_id, version, data::text FROM pfa_mirror"
                   " WHERE organization_id = $1::uuid AND NOT deleted"
                   " AND pfa_id IN (SELECT jsonb_array_elements_text($2::jsonb))",
                   2, mp);
    if (!res) {
        api_db_failure(ctx, req);
        goto cleanup;
    }
    rows = batch_check_records(entries, res, details);
    PQclear(res);
    res = NULL;
    if (!rows) {
        http_send_error(req, 400, "validation_failed", "Some modifications are not valid; "
                        "nothing was stored", details);
        details = NULL;
        goto cleanup;
    }
    rows_text = json_dumps(rows, JSON_COMPACT);
    const char *ip[] = { org, rows_text, req->user_id };
    if (db_begin(ctx->db) != DB_OK) {
        api_db_failure(ctx, req);
        goto cleanup;
    }
    res = db_query(ctx->db, "modifications_batch_insert", batch_insert_sql, 3, ip);
    if (!res || db_commit(ctx->db) != DB_OK) {
        api_db_failure(ctx, req);
        db_rollback(ctx->db);
        goto cleanup;
    }
    log_debug("modifications_batch", "org=%s count=%zu", org, json_array_size(rows));
    http_send_json_text(req, 201, PQgetvalue(res, 0, 0));

cleanup:
    if (res)
        PQclear(res);
    free(ids);
    free(rows_text);
    json_decref(rows);
    json_decref(body);
    json_decref(details);
}
