#include "api_metrics.h"
#include "build_config.h"
#include "metrics_render.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const queue_statuses[] = { "pending", "processing", "completed", "failed",
                                              "cancelled" };

/* Gauges that live in the database: queue depth by status and worker heartbeats; while the
 * database cannot be read they are left out and pems_database_up says 0. */
static void render_db(struct api_ctx *ctx, FILE *out)
{
    PGresult *res = db_query(ctx->db, "metrics_queue",
                             "SELECT status, count(*) FROM pfa_write_queue GROUP BY status", 0,
                             NULL);
    fprintf(out, "# HELP pems_database_up Whether this process could read the database "
            "for this scrape (1) or not (0).\n"
            "# TYPE pems_database_up gauge\n"
            "pems_database_up %d\n", res ? 1 : 0);
    if (!res)
        return;
    fputs("# HELP pems_queue_items Write queue items, by status.\n"
          "# TYPE pems_queue_items gauge\n", out);
    for (size_t i = 0; i < sizeof queue_statuses / sizeof queue_statuses[0]; i++) {
        const char *n = "0";
        for (int r = 0; res && r < PQntuples(res); r++)
            if (strcmp(PQgetvalue(res, r, 0), queue_statuses[i]) == 0)
                n = PQgetvalue(res, r, 1);
        if (res)
            fprintf(out, "pems_queue_items{status=\"%s\"} %s\n", queue_statuses[i], n);
    }
    if (res)
        PQclear(res);
    res = db_query(ctx->db, "metrics_heartbeats",
                   "SELECT worker_id, extract(epoch FROM last_seen_at)::numeric(20,3)"
                   " FROM worker_heartbeats ORDER BY worker_id",
                   0, NULL);
    fputs("# HELP pems_worker_heartbeat_timestamp_seconds Last heartbeat of each worker "
          "(Unix time).\n"
          "# TYPE pems_worker_heartbeat_timestamp_seconds gauge\n", out);
    for (int r = 0; res && r < PQntuples(res); r++) {
        fputs("pems_worker_heartbeat_timestamp_seconds{worker=\"", out);
        util_label_write(out, PQgetvalue(res, r, 0));
        fprintf(out, "\"} %s\n", PQgetvalue(res, r, 1));
    }
    if (res)
        PQclear(res);
}

void api_metrics(struct api_ctx *ctx, struct http_request *req)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out) {
        api_internal_error(req, "open_memstream failed");
        return;
    }
    fputs("# HELP pems_build_info The running version of pems-sync (always 1).\n"
          "# TYPE pems_build_info gauge\n"
          "pems_build_info{version=\"" PACKAGE_VERSION "\"} 1\n", out);
    metrics_render(out);
    render_db(ctx, out);
    fclose(out);
    http_send_raw(req, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, text, len);
    free(text);
}
