#include "api_write_sync.h"
#include "api_params.h"
#include "auth.h"
#include "log.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct api_field fields[] = {
    { "organizationId", AF_UUID, true, 0, 0, NULL },
    { "modificationIds", AF_UUID_ARRAY, false, 1, 1000, NULL },
    { "priority", AF_INT, false, 0, 10, NULL },
};

/* One statement queues what is eligible (pems_modification_queueable, the one rule:
 * sql/functions/write_sync.sql): it locks its candidates in the one lock order and the UPDATE
 * re-checks each row's status after any concurrent writer commits, so two calls neither deadlock nor queue the same modification twice.
 * The status before is 'pending_sync' for the organization-wide form; for named ones a
 * subquery in RETURNING reads the statement's snapshot, i.e. the row before this update (a
 * self-join for it hashed the whole table).
 * QUEUE_SQL's two forms differ in how each audit row learns its queue item id. */
#define QUEUE_SQL(queue_id, audit_from)                                                        \
    "WITH locked AS (SELECT id FROM pems_lock_modifications($1::uuid, $3::uuid[])),"           \
    " picked AS ("                                                                             \
    "  UPDATE pfa_modification m SET status = 'queued', updated_at = now()"                    \
    "  WHERE m.id = ANY (ARRAY(SELECT id FROM locked)) AND m.organization_id = $1::uuid"       \
    "   AND pems_modification_queueable(m.status, $3::uuid[] IS NOT NULL)"                     \
    "  RETURNING m.id, m.organization_id,"                                                     \
    "   CASE WHEN $3::uuid[] IS NULL THEN 'pending_sync'"                                      \
    "   ELSE (SELECT b.status FROM pfa_modification b WHERE b.id = m.id) END AS old_status,"   \
    "   gen_random_uuid() AS queue_id),"                                                       \
    " q AS (INSERT INTO pfa_write_queue (id, organization_id, modification_id, priority)"     \
    "  SELECT queue_id, organization_id, id, $2::smallint FROM picked"                         \
    "  ON CONFLICT (modification_id) WHERE status IN ('pending', 'processing') DO NOTHING"     \
    "  RETURNING id, modification_id),"                                                        \
    " a AS (INSERT INTO audit_log (organization_id, user_id, actor, action, entity_type,"      \
    "  entity_id, before, after)"                                                              \
    "  SELECT $1::uuid, $4::uuid, $4, 'modification.queue', 'pfa_modification', p.id::text,"   \
    "   jsonb_build_object('status', p.old_status),"                                           \
    "   jsonb_build_object('status', 'queued', 'queueItemId', " queue_id ", 'priority', $2::int)" \
    "  FROM " audit_from ")"                                                                   \
    " SELECT (SELECT count(*) FROM picked), (SELECT count(*) FROM q),"                         \
    "  coalesce((SELECT rate_limit_rps FROM api_servers WHERE organization_id = $1::uuid), 10)"

/* Every picked modification gets the queue item id it was given: no join between the two
 * lists, which the planner, misled by statistics taken before a large batch, would run as
 * a nested loop (a 20,000-item write-sync on a fresh database took over 30 s). */
static const char queue_sql[] = QUEUE_SQL("p.queue_id", "picked p");
/* When a modification already had a live queue item (an inconsistency the insert skips),
 * the ids are matched: correct in that rare case, and only then paid for. */
static const char queue_sql_matched[] =
    QUEUE_SQL("q.id", "picked p LEFT JOIN q ON q.modification_id = p.id");

/* 404 for named ids not in the organization, 409 for ids in a state that cannot be queued
 * (pems_modification_unqueueable_reason). Read without a lock (a queued modification belongs
 * to the worker, sql/functions/write_sync.sql):
 * one queued meanwhile by another call is not queued again (queuedCount counts it out).
 * Returns 0 when all are eligible, -1 after sending the error. */
static int check_explicit(struct api_ctx *ctx, struct http_request *req, const char *org,
                          const char *ids_literal, const json_t *ids)
{
    const char *params[] = { org, ids_literal };
    PGresult *res = db_query(ctx->db, "write_sync_named",
                             "SELECT id::text, pems_modification_unqueueable_reason(status)"
                             " FROM pfa_modification"
                             " WHERE organization_id = $1::uuid AND id = ANY($2::uuid[])",
                             2, params);
    if (!res) {
        api_db_failure(ctx, req);
        return -1;
    }
    json_t *missing = json_array(), *wrong = json_array();
    size_t i;
    const json_t *e;
    json_array_foreach(ids, i, e) {
        const char *id = json_string_value(e);
        int row = -1;
        for (int r = 0; r < PQntuples(res); r++)
            if (strcasecmp(PQgetvalue(res, r, 0), id) == 0)
                row = r;
        if (row < 0) {
            api_detail_add(missing, id, "no such modification in this organization");
            continue;
        }
        if (!PQgetisnull(res, row, 1))
            api_detail_add(wrong, id, PQgetvalue(res, row, 1));
    }
    PQclear(res);
    int rc = -1;
    if (json_array_size(missing) > 0) {
        http_send_error(req, 404, "not_found", "Some modifications do not exist", missing);
        missing = NULL;
    } else if (json_array_size(wrong) > 0) {
        http_send_error(req, 409, "conflict", "Some modifications cannot be queued", wrong);
        wrong = NULL;
    } else {
        rc = 0;
    }
    json_decref(missing);
    json_decref(wrong);
    return rc;
}

void api_write_sync(struct api_ctx *ctx, struct http_request *req)
{
    json_t *body = api_body_object(req, false);
    char *ids_literal = NULL;
    PGresult *res = NULL;
    if (!body)
        return;
    json_t *details = json_array();
    api_check_body(body, fields, sizeof fields / sizeof fields[0], details);
    if (json_array_size(details) > 0) {
        api_reject(ctx, req, details);
        goto cleanup;
    }
    json_decref(details);
    const char *org = json_string_value(json_object_get(body, "organizationId"));
    json_t *ids = json_object_get(body, "modificationIds");
    json_t *prio = json_object_get(body, "priority");
    char priority[8];
    snprintf(priority, sizeof priority, "%d", json_is_integer(prio) ? (int)json_integer_value(prio) : 5);
    if (auth_org(ctx, req, org) < 0)
        goto cleanup;

    if (json_is_array(ids)) {
        size_t n = json_array_size(ids);
        ids_literal = malloc(n * 37 + 3);
        if (!ids_literal) {
            api_internal_error(req, "out of memory");
            goto cleanup;
        }
        size_t o = 0;
        ids_literal[o++] = '{';
        for (size_t i = 0; i < n; i++) {
            if (i)
                ids_literal[o++] = ',';
            memcpy(ids_literal + o, json_string_value(json_array_get(ids, i)), 36);
            o += 36;
        }
        ids_literal[o++] = '}';
        ids_literal[o] = '\0';
    }
    if (db_begin(ctx->db) != DB_OK) {
        api_db_failure(ctx, req);
        goto cleanup;
    }
    if (ids_literal && check_explicit(ctx, req, org, ids_literal, ids) < 0) {
        db_rollback(ctx->db);
        goto cleanup;
    }
    const char *params[] = { org, priority, ids_literal, req->user_id };
    /* unnamed, so planned for its values: with pems-fcgi's forced generic plans this call
     * measured several times slower (scripts/bench, 1 connection: 9 vs 31 req/s) */
    res = db_query(ctx->db, NULL, queue_sql, 4, params);
    if (res && strcmp(PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1)) != 0) {
        PQclear(res);
        res = NULL;
        db_rollback(ctx->db);
        if (db_begin(ctx->db) != DB_OK ||
            (ids_literal && check_explicit(ctx, req, org, ids_literal, ids) < 0)) {
            if (!req->status)
                api_db_failure(ctx, req);
            db_rollback(ctx->db);
            goto cleanup;
        }
        res = db_query(ctx->db, NULL, queue_sql_matched, 4, params);
    }
    if (!res)
        goto db_fail;
    long queued = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    long rps = strtol(PQgetvalue(res, 0, 2), NULL, 10);
    if (rps <= 0)
        rps = 10;
    /* the worker is woken by the queue's trigger (sql/functions/queue_wake.sql) */
    if (db_commit(ctx->db) != DB_OK)
        goto db_fail;

    long long now = util_wall_ms();
    char eta[UTIL_ISO_SIZE], job[96];
    util_iso_time(eta, now + (int64_t)queued * 1000 / rps);
    snprintf(job, sizeof job, "write-sync-%lld-%s", now, org);
    log_debug("write_sync", "org=%s queued=%ld", org, queued);
    http_send_json(req, 202, json_pack("{s:b, s:s, s:i, s:s}", "success", 1, "jobId", job,
                                       "queuedCount", (int)queued,
                                       "estimatedCompletionTime", eta));
    goto cleanup;

db_fail:
    api_db_failure(ctx, req);
    db_rollback(ctx->db);
cleanup:
    if (res)
        PQclear(res);
    free(ids_literal);
    json_decref(body);
}
