#include "api_conflicts.h"
#include "api_params.h"
#include "audit.h"
#include "auth.h"
#include "conflict.h"
#include "log.h"
#include "page_cache.h"
#include "util.h"
#include "validation.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const list_status_values[] = { "unresolved", "resolved", NULL };

static const struct api_field list_fields[] = {
    { "organizationId", AF_UUID, true, 0, 0, NULL },
    { "status", AF_ENUM, false, 0, 0, list_status_values },
    { "limit", AF_INT, false, 1, 500, NULL },
    { "offset", AF_INT, false, 0, INT32_MAX, NULL },
};

/* Each conflict's entry is kept rendered in pfa_sync_conflict.doc (sql/functions/conflicts.sql):
 * one row per entry of the page (one row with a NULL doc when the page is empty), each carrying
 * the caller's membership, the total and the organization's conflicts version
 * (sql/functions/conflicts.sql) read in the same snapshot, and the page is their
 * concatenation. */
static const char list_sql[] =
    "SELECT a.user_ok, a.allowed, a.total, c.doc, a.version FROM ("
    "  SELECT EXISTS (SELECT 1 FROM users WHERE id = $1::uuid) AS user_ok,"
    "   pems_has_permission(p.permissions, $3) AS allowed,"
    "   (SELECT version FROM pfa_sync_conflict_version WHERE organization_id = $2::uuid),"
    "   CASE WHEN pems_has_permission(p.permissions, $3) THEN"
    "    (SELECT count(*) FROM pfa_sync_conflict WHERE organization_id = $2::uuid"
    "     AND ($4::text IS NULL OR status = $4)) END AS total"
    "  FROM (SELECT 1) one LEFT JOIN user_organizations p"
    "   ON p.user_id = $1::uuid AND p.organization_id = $2::uuid"
    "  OFFSET 0) a" /* evaluated once, not once per entry */
    " LEFT JOIN LATERAL (SELECT doc, created_at, id FROM pfa_sync_conflict"
    "   WHERE organization_id = $2::uuid AND ($4::text IS NULL OR status = $4)"
    "   ORDER BY created_at DESC, id DESC LIMIT $5::int OFFSET $6::int) c ON a.allowed"
    " ORDER BY c.created_at DESC, c.id DESC";

/* When this process holds a page of the organization: the membership and the current version
 * only; the page is sent again while the version is the one it was rendered at. */
static const char version_sql[] =
    "SELECT EXISTS (SELECT 1 FROM users WHERE id = $1::uuid),"
    " (SELECT pems_has_permission(permissions, $3) FROM user_organizations"
    "  WHERE user_id = $1::uuid AND organization_id = $2::uuid),"
    " (SELECT version FROM pfa_sync_conflict_version WHERE organization_id = $2::uuid)";

#define PAGE_CACHE_SLOTS 8
_Static_assert(API_ETAG_SIZE <= PAGE_CACHE_TAG_SIZE, "a page's entity tag fits its cache slot");
#define PAGE_CACHE_BYTES (256 * 1024)

/* The page of res (its rows' docs), sent, and cached under key (unless NULL) when res
 * carries a version. */
static void send_page(struct api_ctx *ctx, struct http_request *req, PGresult *res,
                      const char *key)
{
    static const char head[] = "{\"conflicts\":[", mid[] = "],\"total\":";
    int rows = PQntuples(res);
    const char *total = PQgetvalue(res, 0, 2);
    size_t len = strlen(head) + strlen(mid) + strlen(total) + 1 + (size_t)rows;
    for (int i = 0; i < rows; i++)
        len += (size_t)PQgetlength(res, i, 3);
    char *page = malloc(len + 1), *at = page;
    if (!page) {
        api_internal_error(req, "out of memory");
        return;
    }
    at = stpcpy(at, head);
    for (int i = 0; i < rows; i++) {
        if (PQgetisnull(res, i, 3))
            continue;
        if (i > 0)
            *at++ = ',';
        memcpy(at, PQgetvalue(res, i, 3), (size_t)PQgetlength(res, i, 3));
        at += PQgetlength(res, i, 3);
    }
    at = stpcpy(at, mid);
    at = stpcpy(at, total);
    at = stpcpy(at, "}");
    /* the tag is computed once, kept with the page: a repeated page costs no hash */
    char etag[API_ETAG_SIZE];
    api_etag_of(page, (size_t)(at - page), etag);
    http_send_json_tagged(req, page, (size_t)(at - page), etag);
    if (key && !PQgetisnull(res, 0, 4)) {
        if (!ctx->conflict_pages)
            ctx->conflict_pages = page_cache_new(PAGE_CACHE_SLOTS, PAGE_CACHE_BYTES);
        if (ctx->conflict_pages)
            page_cache_put(ctx->conflict_pages, key, strtoll(PQgetvalue(res, 0, 4), NULL, 10),
                           page, (size_t)(at - page), etag);
    }
    free(page);
}

void api_conflicts_list(struct api_ctx *ctx, struct http_request *req)
{
    struct query_params q;
    if (!api_query_accept(ctx, req, &q, list_fields, sizeof list_fields / sizeof list_fields[0]))
        return;
    const char *org = api_query_get(&q, "organizationId");
    const char *status = api_query_get(&q, "status");
    const char *limit = api_query_get(&q, "limit");
    const char *offset = api_query_get(&q, "offset");
    if (!limit)
        limit = "50";
    if (!offset)
        offset = "0";
    /* the query's values are validated (a uuid, an enum, two integers); the integers as
     * parsed, since "+0050" is 50 too; a key that does not fit is not cached */
    char key[128];
    int kn = snprintf(key, sizeof key, "%s|%s|%ld|%ld", org, status ? status : "",
                      strtol(limit, NULL, 10), strtol(offset, NULL, 10));
    bool cacheable = kn > 0 && (size_t)kn < sizeof key;
    long long have = cacheable && ctx->conflict_pages
        ? page_cache_version(ctx->conflict_pages, key) : -1;
    const char *params[] = { req->user_id, org, auth_need(req), status, limit, offset };
    PGresult *res;
    if (have >= 0) {
        if (!(res = db_query(ctx->db, "conflicts_version", version_sql, 3, params))) {
            api_db_failure(ctx, req);
            return;
        }
        if (auth_org_row(req, db_value(res, 0, 0), db_value(res, 0, 1)) < 0) {
            PQclear(res);
            return;
        }
        size_t len;
        const char *etag = NULL;
        const char *page = PQgetisnull(res, 0, 2) ? NULL
            : page_cache_get(ctx->conflict_pages, key, strtoll(PQgetvalue(res, 0, 2), NULL, 10),
                             &len, &etag);
        PQclear(res);
        if (page) {
            http_send_json_tagged(req, page, len, etag);
            return;
        }
    }
    if (!(res = db_query(ctx->db, "conflicts_list", list_sql, 6, params))) {
        api_db_failure(ctx, req);
        return;
    }
    if (auth_org_row(req, db_value(res, 0, 0), db_value(res, 0, 1)) == 0)
        send_page(ctx, req, res, cacheable ? key : NULL);
    PQclear(res);
}

static const char *const resolution_values[] = { "use_local", "use_pems", "merge", NULL };

static const struct api_field resolve_fields[] = {
    { "resolution", AF_ENUM, true, 0, 0, resolution_values },
    { "mergedData", AF_OBJECT, false, 0, 0, NULL },
};

struct locked_conflict {
    char org[37];
    char modification_id[37];
    char status[16];
    char operation[8];
    json_t *delta;          /* the modification's delta */
    json_t *mirror;         /* the mirror's current data; NULL when the record is gone */
    char mirror_version[24];
};

static void locked_conflict_clear(struct locked_conflict *lc)
{
    json_decref(lc->delta);
    json_decref(lc->mirror);
}

/* Locks, in the one lock order (sql/functions/locks.sql), the live queue items of the
 * conflict's modification, then the conflict and the modification; reads the mirror record.
 * 0, or -1 (db failure). */
static int lock_conflict(struct api_ctx *ctx, const char *id, struct locked_conflict *lc,
                         bool *found)
{
    const char *params[] = { id };
    if (db_exec(ctx->db, "conflict_lock_items",
                "SELECT count(*) FROM pfa_sync_conflict c,"
                " pems_lock_live_items(c.modification_id) WHERE c.id = $1::uuid",
                1, params) != DB_OK)
        return -1;
    PGresult *res = db_query(
        ctx->db, "conflict_lock",
        "SELECT c.organization_id::text, c.modification_id::text, c.status, m.operation,"
        " m.delta::text, mi.version, CASE WHEN mi.deleted THEN NULL ELSE mi.data::text END"
        " FROM pfa_sync_conflict c JOIN pfa_modification m ON m.id = c.modification_id"
        " LEFT JOIN pfa_mirror mi ON mi.organization_id = m.organization_id"
        " AND mi.pfa_id = m.pfa_id"
        " WHERE c.id = $1::uuid FOR UPDATE OF c, m",
        1, params);
    if (!res)
        return -1;
    *found = PQntuples(res) > 0;
    if (*found) {
        snprintf(lc->org, sizeof lc->org, "%s", PQgetvalue(res, 0, 0));
        snprintf(lc->modification_id, sizeof lc->modification_id, "%s", PQgetvalue(res, 0, 1));
        snprintf(lc->status, sizeof lc->status, "%s", PQgetvalue(res, 0, 2));
        snprintf(lc->operation, sizeof lc->operation, "%s", PQgetvalue(res, 0, 3));
        lc->delta = json_loads(PQgetvalue(res, 0, 4), 0, NULL);
        snprintf(lc->mirror_version, sizeof lc->mirror_version, "%s", PQgetvalue(res, 0, 5));
        if (db_value(res, 0, 6))
            lc->mirror = json_loads(PQgetvalue(res, 0, 6), 0, NULL);
    }
    PQclear(res);
    return 0;
}

/* The request alone (400 validation_failed, sent): resolution and mergedData, which
 * resolutions take it (conflict_resolve_request). An unknown resolution (its own detail)
 * counts as one that is not merge. */
static bool resolve_request_valid(struct api_ctx *ctx, struct http_request *req, json_t *body,
                                  enum conflict_resolution *r)
{
    json_t *details = json_array();
    api_check_body(body, resolve_fields, sizeof resolve_fields / sizeof resolve_fields[0],
                   details);
    const char *resolution = json_string_value(json_object_get(body, "resolution"));
    json_t *merged = json_object_get(body, "mergedData");
    *r = RESOLVE_USE_LOCAL;
    if (resolution) {
        conflict_resolution_parse(resolution, r);
        switch (conflict_resolve_request(*r, merged)) {
        case RESOLVE_ERR_MERGED_DATA_REQUIRED:
            if (!merged || json_is_null(merged))   /* else the body check named its type */
                api_detail_add(details, "mergedData", "is required when resolution is merge");
            break;
        case RESOLVE_ERR_MERGED_DATA_NOT_ALLOWED:
            api_detail_add(details, "mergedData", "is only allowed when resolution is merge");
            break;
        default:
            break;
        }
    }
    if (json_array_size(details) > 0) {
        api_reject(ctx, req, details);
        return false;
    }
    json_decref(details);
    return true;
}

/* The caller may resolve this conflict: a uuid, a user, the route's permission in the
 * conflict's organization. false with 401/403/404 (or 503) sent. */
static bool resolve_allowed(struct api_ctx *ctx, struct http_request *req, const char *id)
{
    if (!util_is_uuid(id)) {
        auth_not_found(ctx, req);
        return false;
    }
    const char *ap[] = { req->user_id, id, auth_need(req) };
    PGresult *res = db_query(ctx->db, "conflict_access",
                             "SELECT EXISTS (SELECT 1 FROM users WHERE id = $1::uuid),"
                             " pems_has_permission(p.permissions, $3)"
                             " FROM (SELECT 1) one LEFT JOIN pfa_sync_conflict c"
                             " ON c.id = $2::uuid"
                             " LEFT JOIN user_organizations p ON p.user_id = $1::uuid"
                             " AND p.organization_id = c.organization_id",
                             3, ap);
    if (!res) {
        api_db_failure(ctx, req);
        return false;
    }
    int gate = auth_row(req, db_value(res, 0, 0), db_value(res, 0, 1));
    PQclear(res);
    return gate == 0;
}

/* The decision on the locked conflict (conflict_resolve): RESOLVE_OK with the plan, or the
 * error answer sent (404, 409, 400). */
static bool resolve_decided(struct http_request *req, enum conflict_resolution r,
                            const json_t *merged, const struct locked_conflict *lc,
                            struct conflict_resolution_plan *plan)
{
    enum pfa_op local_op = PFA_OP_UPDATE;
    pfa_op_parse(lc->operation, &local_op);
    switch (conflict_resolve(strcmp(lc->status, "unresolved") != 0, r, local_op, lc->delta,
                             merged, lc->mirror, plan)) {
    case RESOLVE_OK:
        return true;
    case RESOLVE_ERR_ALREADY_RESOLVED:
        http_send_error(req, 409, "conflict", "This conflict is already resolved", NULL);
        return false;
    case RESOLVE_ERR_RECORD_GONE:
        http_send_error(req, 409, "conflict", "The record no longer exists in PEMS", NULL);
        return false;
    case RESOLVE_ERR_INVALID:
        http_send_error(req, 400, "validation_failed",
                        r == RESOLVE_MERGE ? "mergedData is not a valid modification"
                                           : "The local change is no longer valid on PEMS's record",
                        plan->details);
        plan->details = NULL;
        return false;
    case RESOLVE_ERR_MERGED_DATA_REQUIRED:
    case RESOLVE_ERR_MERGED_DATA_NOT_ALLOWED:
        break;
    }
    api_internal_error(req, "resolution request changed");   /* checked with the request */
    return false;
}

/* The modification as the plan has it: discarded (use_pems), or rebased on PEMS's current
 * version and queued (its queue item's id into queue_item; the queue's trigger wakes the
 * worker). DB_OK or the failure. */
static int resolve_modification(struct api_ctx *ctx, const struct locked_conflict *lc,
                                const struct conflict_resolution_plan *plan,
                                const char *delta_text, char queue_item[37])
{
    if (plan->discard) {
        const char *p[] = { lc->modification_id };
        return db_exec(ctx->db, "conflict_discard",
                       "UPDATE pfa_modification SET status = 'discarded', updated_at = now()"
                       " WHERE id = $1::uuid",
                       1, p);
    }
    const char *p[] = { lc->modification_id, lc->mirror_version, delta_text,
                        pfa_op_name(plan->op) };
    int rc = db_exec(ctx->db, "conflict_rebase",
                     "UPDATE pfa_modification SET base_version = $2::bigint, delta = $3::jsonb,"
                     " operation = $4, status = 'queued', updated_at = now()"
                     " WHERE id = $1::uuid",
                     4, p);
    if (rc != DB_OK)
        return rc;
    const char *qp[] = { lc->org, lc->modification_id };
    PGresult *res = db_query(ctx->db, "conflict_enqueue",
                             "INSERT INTO pfa_write_queue (organization_id, modification_id,"
                             " priority) VALUES ($1::uuid, $2::uuid, coalesce((SELECT priority"
                             " FROM pfa_write_queue WHERE modification_id = $2::uuid"
                             " ORDER BY created_at DESC LIMIT 1), 5))"
                             " ON CONFLICT (modification_id) WHERE status IN ('pending',"
                             " 'processing') DO UPDATE SET scheduled_at = now(), updated_at = now()"
                             " RETURNING id::text",
                             2, qp);
    if (!res)
        return db_last_status(ctx->db);
    snprintf(queue_item, 37, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return DB_OK;
}

/* The outcome, in the caller's transaction: the modification, the conflict resolved (as the
 * plan records it), their audit rows. resolved_at[32] gets the time. DB_OK or the failure. */
static int resolve_outcome(struct api_ctx *ctx, struct http_request *req, const char *id,
                           const struct locked_conflict *lc,
                           const struct conflict_resolution_plan *plan, char resolved_at[32])
{
    const char *resolution = conflict_resolution_name(plan->resolution);
    char queue_item[37] = "";
    char *delta_text = json_dumps(plan->applied, JSON_COMPACT);
    if (!delta_text)
        return DB_ERROR;
    int rc = resolve_modification(ctx, lc, plan, delta_text, queue_item);
    if (rc == DB_OK) {
        const char *rp[] = { id, resolution,
                             plan->resolution == RESOLVE_MERGE ? delta_text : NULL,
                             req->user_id };
        PGresult *res = db_query(ctx->db, "conflict_mark_resolved",
                                 "UPDATE pfa_sync_conflict SET status = 'resolved',"
                                 " resolution = $2, merged_data = $3::jsonb,"
                                 " resolved_by = $4::uuid, resolved_at = now()"
                                 " WHERE id = $1::uuid RETURNING pems_iso(resolved_at)",
                                 4, rp);
        if (res) {
            snprintf(resolved_at, 32, "%s", PQgetvalue(res, 0, 0));
            PQclear(res);
        } else {
            rc = db_last_status(ctx->db);
        }
    }
    free(delta_text);
    if (rc != DB_OK)
        return rc;
    json_t *cb = json_pack("{s:s}", "status", "unresolved");
    json_t *ca = json_pack("{s:s, s:s, s:O}", "status", "resolved", "resolution", resolution,
                           "appliedChanges", plan->applied);
    rc = audit_write(ctx->db, lc->org, req->user_id, req->user_id, "conflict.resolve",
                     "pfa_sync_conflict", id, cb, ca);
    json_decref(cb);
    json_decref(ca);
    if (rc != DB_OK)
        return rc;
    json_t *mb = json_pack("{s:s, s:O?}", "status", "conflict", "delta", lc->delta);
    json_t *ma = plan->discard
        ? json_pack("{s:s}", "status", "discarded")
        : json_pack("{s:s, s:s, s:O, s:s}", "status", "queued", "baseVersion",
                    lc->mirror_version, "delta", plan->applied, "queueItemId", queue_item);
    rc = audit_write(ctx->db, lc->org, req->user_id, req->user_id,
                     plan->discard ? "modification.discard" : "modification.rebase",
                     "pfa_modification", lc->modification_id, mb, ma);
    json_decref(mb);
    json_decref(ma);
    return rc;
}

void api_conflict_resolve(struct api_ctx *ctx, struct http_request *req)
{
    json_t *body = api_body_object(req, false);
    struct locked_conflict lc = { 0 };
    struct conflict_resolution_plan plan = { 0 };
    enum conflict_resolution r;
    const char *id = http_param(req, "conflictId");
    if (!body)
        return;
    if (!resolve_request_valid(ctx, req, body, &r) || !resolve_allowed(ctx, req, id))
        goto cleanup;
    if (db_begin(ctx->db) != DB_OK) {
        api_db_failure(ctx, req);
        goto cleanup;
    }
    bool found = false;
    if (lock_conflict(ctx, id, &lc, &found) < 0)
        goto db_fail;
    if (!found) {
        db_rollback(ctx->db);
        http_send_error(req, 404, "not_found", "No such conflict", NULL);
        goto cleanup;
    }
    if (!resolve_decided(req, r, json_object_get(body, "mergedData"), &lc, &plan)) {
        db_rollback(ctx->db);
        goto cleanup;
    }
    char resolved_at[32] = "";
    if (resolve_outcome(ctx, req, id, &lc, &plan, resolved_at) != DB_OK ||
        db_commit(ctx->db) != DB_OK)
        goto db_fail;
    log_debug("conflict_resolved", "id=%s resolution=%s asked=%s", id,
              conflict_resolution_name(plan.resolution), conflict_resolution_name(r));
    http_send_json(req, 200, json_pack("{s:b, s:s, s:s, s:O}", "success", 1, "conflictId", id,
                                       "resolvedAt", resolved_at, "appliedChanges",
                                       plan.applied));
    goto cleanup;

db_fail:
    api_db_failure(ctx, req);
    db_rollback(ctx->db);
cleanup:
    locked_conflict_clear(&lc);
    json_decref(body);
    conflict_resolution_plan_clear(&plan);
}
