#include "api_changes.h"
#include "api_params.h"
#include "auth.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct api_field fields[] = {
    { "organizationId", AF_UUID, true, 0, 0, NULL },
    { "since", AF_INT, false, 0, INT64_MAX, NULL },
    { "limit", AF_INT, false, 1, 500, NULL },
};

/* Positions are drawn as transactions commit (sql/functions/records.sql), so the highest one read
 * has every change below it committed: a client that asks again from `next` misses nothing.
 * The membership, the organization's highest position and the page after since (one row more
 * than the limit: then upToDate is false) in one snapshot; a poll with nothing new reads the
 * position's index alone. */
static const char changes_sql[] =
    "SELECT a.user_ok, a.allowed, a.head, c.seq, c.doc FROM ("
    "  SELECT EXISTS (SELECT 1 FROM users WHERE id = $1::uuid) AS user_ok,"
    "   pems_has_permission(p.permissions, $3) AS allowed,"
    "   pems_record_head($2::uuid) AS head"
    "  FROM (SELECT 1) one LEFT JOIN user_organizations p"
    "   ON p.user_id = $1::uuid AND p.organization_id = $2::uuid"
    "  OFFSET 0) a"
    " LEFT JOIN LATERAL pems_changes_page($2::uuid, $4::bigint, $5::int) c"
    "  ON a.allowed AND $4::bigint < a.head"
    " ORDER BY c.seq";

void api_changes(struct api_ctx *ctx, struct http_request *req)
{
    struct query_params q;
    if (!api_query_accept(ctx, req, &q, fields, sizeof fields / sizeof fields[0]))
        return;
    const char *since_s = api_query_get(&q, "since");
    const char *limit_s = api_query_get(&q, "limit");
    long long since = since_s ? strtoll(since_s, NULL, 10) : 0;
    long limit = limit_s ? strtol(limit_s, NULL, 10) : 100;
    char since_text[24], limit_text[16];
    snprintf(since_text, sizeof since_text, "%lld", since);
    snprintf(limit_text, sizeof limit_text, "%ld", limit);
    const char *params[] = { req->user_id, api_query_get(&q, "organizationId"), auth_need(req),
                             since_text, limit_text };
    PGresult *res = db_query(ctx->db, "changes", changes_sql, 5, params);
    if (!res) {
        api_db_failure(ctx, req);
        return;
    }
    if (auth_org_row(req, db_value(res, 0, 0), db_value(res, 0, 1)) < 0)
        goto out;
    long long head = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
    if (since > head) {
        char msg[160];
        snprintf(msg, sizeof msg,
                 "since is beyond every position this feed has handed out (%lld): start again "
                 "from 0", head);
        http_send_error(req, 409, "conflict", msg, NULL);
        goto out;
    }
    int rows = PQntuples(res);
    bool empty = rows == 1 && PQgetisnull(res, 0, 4);
    int shown = empty ? 0 : rows > limit ? (int)limit : rows;
    size_t len = 96;
    for (int i = 0; i < shown; i++)
        len += (size_t)PQgetlength(res, i, 4) + 1;
    char *body = malloc(len), *at = body;
    if (!body) {
        api_internal_error(req, "out of memory");
        goto out;
    }
    at = stpcpy(at, "{\"changes\":[");
    for (int i = 0; i < shown; i++) {
        if (i > 0)
            *at++ = ',';
        memcpy(at, PQgetvalue(res, i, 4), (size_t)PQgetlength(res, i, 4));
        at += PQgetlength(res, i, 4);
    }
    at += sprintf(at, "],\"next\":%s,\"upToDate\":%s}",
                  shown ? PQgetvalue(res, shown - 1, 3) : since_text,
                  rows > limit && !empty ? "false" : "true");
    http_send_raw(req, 200, "application/json; charset=utf-8", NULL, body, (size_t)(at - body));
    free(body);
out:
    PQclear(res);
}
