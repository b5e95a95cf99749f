#include "api_common.h"
#include "api_params.h"
#include "cron.h"
#include "log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

void api_internal_error(struct http_request *req, const char *detail)
{
    log_error("internal_error", "path=%s error=\"%s\"", req->path, detail ? detail : "");
    http_send_error(req, 500, "internal_error",
                    req->verbose_errors && detail ? detail : "Internal server error", NULL);
}

void api_db_failure(struct api_ctx *ctx, struct http_request *req)
{
    if (db_failed_transiently(ctx->db)) {
        if (req->retry_allowed) {
            req->retry = true;   /* the dispatcher rolls back and runs the handler again */
            return;
        }
        http_send_error(req, 503, "service_unavailable",
                        "The database is busy with the same rows; try again shortly", NULL);
        return;
    }
    if (db_last_status(ctx->db) == DB_UNAVAILABLE) {
        http_send_error(req, 503, "service_unavailable",
                        "The database is unavailable; try again shortly", NULL);
        return;
    }
    char msg[600];
    snprintf(msg, sizeof msg, "database error %s: %s", db_sqlstate(ctx->db), db_errmsg(ctx->db));
    api_internal_error(req, msg);
}

json_t *api_body_object(struct http_request *req, bool allow_empty)
{
    http_read_body(req, API_MAX_BODY);
    switch (req->body_state) {
    case BODY_TOO_LARGE:
        http_send_error(req, 413, "payload_too_large", "Request bodies are limited to 1 MiB",
                        NULL);
        return NULL;
    case BODY_ERROR:
        http_send_error(req, 400, "invalid_json", "The request body could not be read", NULL);
        return NULL;
    case BODY_NONE:
        if (allow_empty)
            return json_object();
        if (!api_content_type_is_json(req->content_type)) {
            http_send_error(req, 415, "unsupported_media_type",
                            "Content-Type must be application/json", NULL);
            return NULL;
        }
        http_send_error(req, 400, "invalid_json", "A JSON object body is required", NULL);
        return NULL;
    case BODY_OK:
        break;
    }
    if (!api_content_type_is_json(req->content_type)) {
        http_send_error(req, 415, "unsupported_media_type",
                        "Content-Type must be application/json", NULL);
        return NULL;
    }
    if (!api_utf8_valid(req->body, req->body_len)) {
        http_send_error(req, 400, "invalid_json", "The request body is not valid UTF-8", NULL);
        return NULL;
    }
    if (api_json_depth(req->body, req->body_len) > API_MAX_JSON_DEPTH) {
        http_send_error(req, 400, "invalid_json", "JSON is nested deeper than 32 levels", NULL);
        return NULL;
    }
    json_error_t err;
    json_t *root = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &err);
    if (!root) {
        char msg[256];
        snprintf(msg, sizeof msg, "Malformed JSON at line %d, column %d: %s", err.line,
                 err.column, err.text);
        http_send_error(req, 400, "invalid_json", msg, NULL);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        http_send_error(req, 400, "invalid_json", "The request body must be a JSON object", NULL);
        return NULL;
    }
    return root;
}

/* The next fire time after now is the same for every now before it, so it is computed (a
 * time zone switch, with file reads) once per fire time rather than once per request. */
time_t api_next_run(struct api_ctx *ctx, time_t now)
{
    if (ctx->next_run && now >= ctx->next_run_from && now < ctx->next_run)
        return ctx->next_run;
    time_t t = cron_next_run(ctx->schedule, now, ctx->cfg->write_sync_tz);
    if (!ctx->schedule)
        return t;
    ctx->next_run_from = now;
    ctx->next_run = t;
    return t;
}

long api_schedule_period(struct api_ctx *ctx, time_t now)
{
    static time_t cached_at;
    static long cached = 60;
    if (!cached_at || now - cached_at >= 60) {
        cached = cron_period(ctx->schedule, now, ctx->cfg->write_sync_tz);
        cached_at = now;
    }
    return cached;
}
