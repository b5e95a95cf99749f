#include "api_health.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

void api_health(struct api_ctx *ctx, struct http_request *req)
{
    char period[24];
    snprintf(period, sizeof period, "%ld", api_schedule_period(ctx, time(NULL)));
    const char *params[] = { period };
    PGresult *res = db_query(ctx->db, "health",
                             "SELECT count(*),"
                             " count(*) FILTER (WHERE pems_worker_live(last_seen_at, $1::int)),"
                             " EXISTS (SELECT 1 FROM pems_rejected_records)"
                             " FROM worker_heartbeats",
                             1, params);
    if (!res) {
        http_send_json_text(req, 503,
                            "{\"status\":\"down\",\"database\":\"down\",\"worker\":\"unknown\","
                            "\"pemsData\":\"unknown\"}");
        return;
    }
    long total = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    long fresh = strtol(PQgetvalue(res, 0, 1), NULL, 10);
    /* records a PEMS server sent that were not taken (README, Security) */
    bool rejected = PQgetvalue(res, 0, 2)[0] == 't';
    PQclear(res);
    const char *worker = fresh > 0 ? "ok" : total > 0 ? "stale" : "none";
    char body[128];
    snprintf(body, sizeof body,
             "{\"status\":\"%s\",\"database\":\"ok\",\"worker\":\"%s\",\"pemsData\":\"%s\"}",
             fresh > 0 && !rejected ? "ok" : "degraded", worker, rejected ? "rejected" : "ok");
    http_send_json_text(req, 200, body);
}
