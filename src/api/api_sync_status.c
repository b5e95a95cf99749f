#include "api_sync_status.h"
#include "api_params.h"
#include "auth.h"
#include "util.h"

#include <stdio.h>
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
static const char status_sql[] =
    "SELECT EXISTS (SELECT 1 FROM users WHERE id = $1::uuid),"
    " pems_has_permission(p.permissions, $3),"
    " CASE WHEN pems_has_permission(p.permissions, $3) THEN (SELECT s.doc::text"
    "  FROM pems_sync_status($2::uuid, $4, $5::timestamptz, $6::timestamptz, $7::int,"
    "   $8::timestamptz) s) END"
    " FROM (SELECT 1) one LEFT JOIN user_organizations p"
    " ON p.user_id = $1::uuid AND p.organization_id = $2::uuid";

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
    auth_org_answer(ctx, req, db_query(ctx->db, "sync_status", status_sql, 8, params));
}
