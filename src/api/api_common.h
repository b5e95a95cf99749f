#ifndef PEMS_API_COMMON_H
#define PEMS_API_COMMON_H

#include <stdbool.h>
#include <time.h>
#include <jansson.h>

#include "addr_allow.h"
#include "pems_config.h"
#include "db.h"
#include "http.h"

/* What every handler shares: the process's configuration and its one database connection. */
struct api_ctx {
    const struct pems_config *cfg;
    db_t *db;
    struct cron_expr *schedule;   /* may be NULL when the schedule does not parse */
    time_t next_run_from;         /* api_next_run's answer for [next_run_from, next_run) */
    time_t next_run;
    struct page_cache *conflict_pages;   /* GET /conflicts pages by query; NULL until first */
    struct page_cache *record_pages;     /* GET /records pages by query; NULL until first */
    struct token_cache *tokens;          /* bearer tokens verified; NULL until first */
    struct page_cache *status_pages;     /* GET /sync-status answers by organization */
    char status_stamp[96];               /* the stamp they were last read at */
    struct addr_allow metrics_allow;     /* PEMS_METRICS_ALLOW, parsed */
};

typedef void (*api_handler)(struct api_ctx *ctx, struct http_request *req);

/* 503 service_unavailable when the database cannot be reached, else 500 internal_error; a
 * deadlock or serialization failure sends nothing while the dispatcher may run the handler
 * again (req->retry), and 503 once it may not. */
void api_db_failure(struct api_ctx *ctx, struct http_request *req);
void api_internal_error(struct http_request *req, const char *detail);

/* Parses the request body as a JSON object: 413/415/400 sent (and NULL returned) when it is
 * too large, not JSON, not UTF-8, nested too deep or not an object. allow_empty: an absent
 * body gives {} (no Content-Type needed). */
json_t *api_body_object(struct http_request *req, bool allow_empty);

/* The schedule's period in seconds (cron_period, recomputed once a minute), which the SQL
 * rules of a live worker take (sql/functions/sync_status.sql), and the next scheduled run
 * after now. */
long api_schedule_period(struct api_ctx *ctx, time_t now);
time_t api_next_run(struct api_ctx *ctx, time_t now);


#endif
