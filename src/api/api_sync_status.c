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

/* One statement: the caller's membership and, when allowed, the whole answer as JSON. The
 * figures `s` come from STATUS_FIGURES_COUNTED (the trigger-kept counters, without filters) or
 * STATUS_FIGURES_SCANNED (the queue itself, when a filter narrows it). */
#define STATUS_SQL(figures)                                                                    \
    "SELECT EXISTS (SELECT 1 FROM users WHERE id = $1::uuid),"                                 \
    " pems_has_permission(p.permissions, $3),"                                                 \
    " CASE WHEN pems_has_permission(p.permissions, $3) THEN ("                              \
    "  SELECT json_build_object("                                                              \
    "   'totalQueued', s.pending, 'processing', s.processing, 'completed', s.completed,"       \
    "   'failed', s.failed, 'avgSyncTime', s.avg_ms, 'lastSyncAt', pems_iso(s.last_sync),"     \
    "   'nextSyncAt', coalesce(pems_iso(hb.next_sync), $8),"                                   \
    "   'health', CASE WHEN hb.last_seen IS NULL"                                              \
    "      OR hb.last_seen < now() - make_interval(secs => $7::int)"                           \
    "      OR srv.health_ok IS FALSE THEN 'unhealthy'"                                         \
    "     WHEN s.rate < 95 OR s.overdue > 0 THEN 'degraded' ELSE 'healthy' END,"               \
    "   'successRate', s.rate)::text"                                                          \
    "  FROM (" figures ") s,"                                                                  \
    "   (SELECT max(last_seen_at) AS last_seen,"                                               \
    "     min(next_sync_at) FILTER (WHERE next_sync_at >= now() - interval '5 seconds'"        \
    "      AND last_seen_at >= now() - make_interval(secs => $7::int)) AS next_sync"           \
    "    FROM worker_heartbeats) hb,"                                                          \
    "   (SELECT bool_and(health_ok) AS health_ok FROM api_servers"                             \
    "    WHERE organization_id = $2::uuid) srv"                                                \
    " ) END"                                                                                   \
    " FROM (SELECT 1) one LEFT JOIN user_organizations p"                                      \
    " ON p.user_id = $1::uuid AND p.organization_id = $2::uuid"

#define SUCCESS_RATE(completed, failed)                                                        \
    "CASE WHEN " completed " + " failed " = 0 THEN 100"                                        \
    " ELSE round(100.0 * " completed " / (" completed " + " failed "))::int END"

#define STATUS_FIGURES_SCANNED                                                                 \
    "SELECT count(*) FILTER (WHERE status = 'pending') AS pending,"                            \
    " count(*) FILTER (WHERE status = 'processing') AS processing,"                            \
    " count(*) FILTER (WHERE status = 'completed') AS completed,"                              \
    " count(*) FILTER (WHERE status = 'failed') AS failed,"                                    \
    " coalesce(round(avg(duration_ms) FILTER (WHERE status = 'completed')), 0)::bigint"       \
    "  AS avg_ms,"                                                                             \
    " max(completed_at) FILTER (WHERE status = 'completed') AS last_sync,"                     \
    " count(*) FILTER (WHERE status = 'pending'"                                               \
    "  AND scheduled_at < now() - interval '1 minute') AS overdue, "                           \
    SUCCESS_RATE("count(*) FILTER (WHERE status = 'completed')",                               \
                 "count(*) FILTER (WHERE status = 'failed')") " AS rate"                       \
    " FROM pfa_write_queue WHERE organization_id = $2::uuid"                                   \
    "  AND ($4::text IS NULL OR status = $4)"                                                  \
    "  AND ($5::timestamptz IS NULL OR created_at >= $5::timestamptz)"                         \
    "  AND ($6::timestamptz IS NULL OR created_at <= $6::timestamptz)"

/* $4..$6 are NULL here; the casts keep both statements' parameter lists alike */
#define STATUS_FIGURES_COUNTED                                                                 \
    "SELECT coalesce(c.pending, 0) AS pending, coalesce(c.processing, 0) AS processing,"       \
    " coalesce(c.completed, 0) AS completed, coalesce(c.failed, 0) AS failed,"                 \
    " CASE WHEN c.completed_timed > 0"                                                         \
    "  THEN round(c.completed_duration_ms::numeric / c.completed_timed)::bigint ELSE 0 END"    \
    "  AS avg_ms,"                                                                             \
    " c.last_completed_at AS last_sync,"                                                       \
    " (SELECT count(*) FROM pfa_write_queue WHERE organization_id = $2::uuid"                  \
    "   AND status = 'pending' AND scheduled_at < now() - interval '1 minute') AS overdue, "   \
    SUCCESS_RATE("coalesce(c.completed, 0)", "coalesce(c.failed, 0)") " AS rate"              \
    " FROM (SELECT $4::text, $5::timestamptz, $6::timestamptz) unused"                         \
    " LEFT JOIN pfa_queue_stats c ON c.organization_id = $2::uuid"

static const char status_sql_counted[] = STATUS_SQL(STATUS_FIGURES_COUNTED);
static const char status_sql_scanned[] = STATUS_SQL(STATUS_FIGURES_SCANNED);

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
    char stale[24], next[UTIL_ISO_SIZE];
    snprintf(stale, sizeof stale, "%ld", api_stale_seconds(ctx, now));
    util_iso_time(next, (int64_t)api_next_run(ctx, now) * 1000);
    const char *params[] = { req->user_id, api_query_get(&q, "organizationId"), auth_need(req),
                             api_query_get(&q, "status"), api_query_get(&q, "startDate"),
                             end_param, stale, next };
    bool filtered = params[3] || params[4] || params[5];
    PGresult *res = filtered
        ? db_query(ctx->db, "sync_status_scanned", status_sql_scanned, 8, params)
        : db_query(ctx->db, "sync_status_counted", status_sql_counted, 8, params);
    if (!res) {
        api_db_failure(ctx, req);
        return;
    }
    if (auth_org_row(req, db_value(res, 0, 0), db_value(res, 0, 1)) == 0)
        http_send_json_etag(req, PQgetvalue(res, 0, 2), (size_t)PQgetlength(res, 0, 2));
    PQclear(res);
}
