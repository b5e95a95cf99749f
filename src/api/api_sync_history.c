#include "api_sync_history.h"
#include "api_params.h"
#include "auth.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

static const char *const bucket_values[] = { "minute", "hour", "day", NULL };

static const struct api_field fields[] = {
    { "organizationId", AF_UUID, true, 0, 0, NULL },
    { "from", AF_DATETIME, false, 0, 0, NULL },
    { "to", AF_DATETIME, false, 0, 0, NULL },
    { "bucket", AF_ENUM, false, 0, 0, bucket_values },
};

#define DAY_MS 86400000LL

static long long bucket_ms(const char *bucket)
{
    if (strcmp(bucket, "minute") == 0)
        return 60000;
    if (strcmp(bucket, "hour") == 0)
        return 3600000;
    return DAY_MS;
}

/* start of the UTC bucket holding t (floor, also before 1970) */
static long long bucket_floor(long long t, long long size)
{
    long long q = t / size;
    if (t % size < 0)
        q--;
    return q * size;
}

bool sync_history_window(const char *from, const char *to, const char *bucket,
                         long long now_ms, struct sync_history_window *w, json_t *details)
{
    w->bucket = bucket ? bucket : "hour";
    bool date_only = false;
    if (to) {
        if (!api_iso_datetime_parse(to, &date_only, &w->to_ms)) {
            api_detail_add(details, "to", "must be an ISO 8601 date (YYYY-MM-DD) or date-time");
            return false;
        }
        if (date_only)
            w->to_ms += DAY_MS;
    } else {
        w->to_ms = now_ms;
    }
    if (from) {
        if (!api_iso_datetime_parse(from, NULL, &w->from_ms)) {
            api_detail_add(details, "from", "must be an ISO 8601 date (YYYY-MM-DD) or date-time");
            return false;
        }
    } else {
        w->from_ms = w->to_ms - DAY_MS;
    }
    if (w->from_ms >= w->to_ms) {
        api_detail_add(details, "from", "must be before to");
        return false;
    }
    long long size = bucket_ms(w->bucket);
    long long n = (bucket_floor(w->to_ms - 1, size) - bucket_floor(w->from_ms, size)) / size + 1;
    if (n > SYNC_HISTORY_MAX_BUCKETS) {
        char msg[128];
        snprintf(msg, sizeof msg, "from..to spans %lld buckets of a %s; at most %d are allowed",
                 n, w->bucket, SYNC_HISTORY_MAX_BUCKETS);
        api_detail_add(details, "bucket", msg);
        return false;
    }
    w->buckets = (long)n;
    return true;
}

/* The membership and, when allowed, the whole answer (pems_sync_history,
 * sql/functions/sync_history.sql). */
static const char history_sql[] =
    "SELECT EXISTS (SELECT 1 FROM users WHERE id = $1::uuid),"
    " pems_has_permission(p.permissions, $3),"
    " CASE WHEN pems_has_permission(p.permissions, $3) THEN pems_sync_history($2::uuid,"
    "  to_timestamp($4::bigint / 1000.0), to_timestamp($5::bigint / 1000.0), $6)::text END"
    " FROM (SELECT 1) one LEFT JOIN user_organizations p"
    " ON p.user_id = $1::uuid AND p.organization_id = $2::uuid";

void api_sync_history(struct api_ctx *ctx, struct http_request *req)
{
    struct query_params q;
    struct sync_history_window w;
    if (!api_query_accept(ctx, req, &q, fields, sizeof fields / sizeof fields[0]))
        return;
    json_t *details = json_array();
    if (!sync_history_window(api_query_get(&q, "from"), api_query_get(&q, "to"),
                             api_query_get(&q, "bucket"), util_wall_ms(), &w, details)) {
        api_reject(ctx, req, details);
        return;
    }
    json_decref(details);
    char from[24], to[24];
    snprintf(from, sizeof from, "%lld", w.from_ms);
    snprintf(to, sizeof to, "%lld", w.to_ms);
    const char *params[] = { req->user_id, api_query_get(&q, "organizationId"), auth_need(req),
                             from, to, w.bucket };
    PGresult *res = db_query(ctx->db, "sync_history", history_sql, 6, params);
    if (!res) {
        api_db_failure(ctx, req);
        return;
    }
    if (auth_org_row(req, db_value(res, 0, 0), db_value(res, 0, 1)) == 0)
        http_send_json_text(req, 200, PQgetvalue(res, 0, 2));
    PQclear(res);
}
