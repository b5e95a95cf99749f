#include "api_sync_status.h"
#include "api_params.h"
#include "auth.h"
#include "page_cache.h"
#include "util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const status_values[] = { "pending", "processing", "completed", "failed",
                                             "cancelled", NULL };

static const struct api_field fields[] = {
    { "organizationId", AF_UUID, true, 0, 0, NULL },
    { "status", AF_ENUM, false, 0, 0, status_values },
    { "startDate", AF_DATETIME, false, 0, 0, NULL },
    { "endDate", AF_DATETIME, false, 0, 0, NULL },
};

/* One statement: the caller's membership and, when allowed, the answer as JSON
 * (pems_sync_status, sql/functions/sync_status.sql). */
#define STATUS_SQL(tail)                                                                       \
    "SELECT EXISTS (SELECT 1 FROM users WHERE id = $1::uuid),"                                 \
    " pems_has_permission(p.permissions, $3),"                                                 \
    " CASE WHEN pems_has_permission(p.permissions, $3) THEN (SELECT s.doc::text"               \
    "  FROM pems_sync_status($2::uuid, $4, $5::timestamptz, $6::timestamptz, $7::int,"         \
    "   $8::timestamptz) s) END" tail                                                          \
    " FROM (SELECT 1) one LEFT JOIN user_organizations p"                                      \
    " ON p.user_id = $1::uuid AND p.organization_id = $2::uuid"

/* The unfiltered answer also carries, read in its snapshot, what it is exact for
 * (sql/functions/sync_status.sql): the organization's status version, the stamp of the rest
 * (the heartbeat version, its conflicts version, its edits not queued), and the time it holds
 * until without a write: columns 3 to 5. */
#define STATUS_STAMP                                                                           \
    " (SELECT status_version FROM pfa_queue_stats WHERE organization_id = $2::uuid),"          \
    " concat_ws('|', coalesce((SELECT version FROM worker_heartbeat_version), 0),"            \
    "  coalesce((SELECT version FROM pfa_sync_conflict_version"                               \
    "   WHERE organization_id = $2::uuid), 0),"                                               \
    "  (SELECT count(*) FROM pfa_modification WHERE organization_id = $2::uuid"                \
    "   AND status = 'pending_sync')),"
#define STATUS_VERSIONS                                                                        \
    "," STATUS_STAMP " extract(epoch FROM pems_sync_status_valid_until($2::uuid, $7::int))"

static const char status_sql[] = STATUS_SQL("");
static const char status_sql_kept[] = STATUS_SQL(STATUS_VERSIONS);

_Static_assert(API_ETAG_SIZE <= PAGE_CACHE_TAG_SIZE, "an answer's entity tag fits its cache slot");

/* When this process holds the organization's answer: the membership, the version and stamp,
 * and the database's clock only; the answer is sent again while they are the ones it was
 * rendered at and its time has not come. */
static const char status_version_sql[] =
    "SELECT EXISTS (SELECT 1 FROM users WHERE id = $1::uuid),"
    " (SELECT pems_has_permission(permissions, $3) FROM user_organizations"
    "  WHERE user_id = $1::uuid AND organization_id = $2::uuid),"
    STATUS_STAMP " extract(epoch FROM now())";

#define STATUS_CACHE_SLOTS 16
#define STATUS_CACHE_BYTES (16 * 1024)

/* the key of an organization's answer: it also depends on the stamp and on the two values
 * this process passes (the schedule's period and next run); false when it does
 * not fit */
static bool status_key(char *key, size_t size, const char *org, const char *stamp,
                       const char *period, const char *next)
{
    int n = snprintf(key, size, "%s|%s|%s|%s", org, stamp, period, next);
    return n > 0 && (size_t)n < size;
}

/* true when the request is answered from the kept answer (or refused, or the lookup failed:
 * answered too); false when none holds and nothing was sent */
static bool send_kept(struct api_ctx *ctx, struct http_request *req, const char *const *params)
{
    char key[256];
    if (!ctx->status_pages || !ctx->status_stamp[0] ||
        !status_key(key, sizeof key, params[1], ctx->status_stamp, params[6], params[7]) ||
        page_cache_version(ctx->status_pages, key) < 0)
        return false;
    PGresult *res = db_query(ctx->db, "sync_status_version", status_version_sql, 3, params);
    if (!res) {
        api_db_failure(ctx, req);
        return true;
    }
    if (auth_org_row(req, db_value(res, 0, 0), db_value(res, 0, 1)) < 0) {
        PQclear(res);
        return true;
    }
    const char *page = NULL, *etag = NULL;
    size_t len = 0;
    if (!PQgetisnull(res, 0, 2) && !PQgetisnull(res, 0, 3) &&
        strcmp(PQgetvalue(res, 0, 3), ctx->status_stamp) == 0)
        page = page_cache_get_at(ctx->status_pages, key, strtoll(PQgetvalue(res, 0, 2), NULL, 10),
                                 strtod(PQgetvalue(res, 0, 4), NULL), &len, &etag);
    PQclear(res);
    if (!page)
        return false;
    http_send_json_tagged(req, page, len, etag);
    return true;
}

/* keeps the answer of res (status_sql_kept) when it carries its versions */
static void keep_answer(struct api_ctx *ctx, PGresult *res, const char *const *params,
                        const char *etag)
{
    if (PQgetisnull(res, 0, 3) || PQgetisnull(res, 0, 4))
        return;
    snprintf(ctx->status_stamp, sizeof ctx->status_stamp, "%s", PQgetvalue(res, 0, 4));
    char key[256];
    if (!status_key(key, sizeof key, params[1], ctx->status_stamp, params[6], params[7]))
        return;
    if (!ctx->status_pages)
        ctx->status_pages = page_cache_new(STATUS_CACHE_SLOTS, STATUS_CACHE_BYTES);
    if (!ctx->status_pages)
        return;
    double until = PQgetisnull(res, 0, 5) ? INFINITY : strtod(PQgetvalue(res, 0, 5), NULL);
    page_cache_put_until(ctx->status_pages, key, strtoll(PQgetvalue(res, 0, 3), NULL, 10),
                         PQgetvalue(res, 0, 2), (size_t)PQgetlength(res, 0, 2), etag, until);
}

void api_sync_status(struct api_ctx *ctx, struct http_request *req)
{
    struct query_params q;
    if (!api_query_accept(ctx, req, &q, fields, sizeof fields / sizeof fields[0]))
        return;

    /* a date-only endDate includes that whole day */
    char end[40];
    const char *end_param = api_query_get(&q, "endDate");
    bool date_only = false;
    if (end_param && api_iso_datetime_valid(end_param, &date_only) && date_only) {
        snprintf(end, sizeof end, "%.10sT23:59:59.999999Z", end_param);
        end_param = end;
    }
    time_t now = time(NULL);
    char period[24], next[UTIL_ISO_SIZE];
    snprintf(period, sizeof period, "%ld", api_schedule_period(ctx, now));
    util_iso_time(next, (int64_t)api_next_run(ctx, now) * 1000);
    const char *params[] = { req->user_id, api_query_get(&q, "organizationId"), auth_need(req),
                             api_query_get(&q, "status"), api_query_get(&q, "startDate"),
                             end_param, period, next };
    bool filtered = params[3] || params[4] || params[5];
    if (!filtered && send_kept(ctx, req, params))
        return;
    PGresult *res = filtered ? db_query(ctx->db, "sync_status", status_sql, 8, params)
                             : db_query(ctx->db, "sync_status_kept", status_sql_kept, 8, params);
    if (!res) {
        api_db_failure(ctx, req);
        return;
    }
    if (auth_org_row(req, db_value(res, 0, 0), db_value(res, 0, 1)) == 0) {
        char etag[API_ETAG_SIZE];
        api_etag_of(PQgetvalue(res, 0, 2), (size_t)PQgetlength(res, 0, 2), etag);
        http_send_json_tagged(req, PQgetvalue(res, 0, 2), (size_t)PQgetlength(res, 0, 2), etag);
        if (!filtered)
            keep_answer(ctx, res, params, etag);
    }
    PQclear(res);
}
