#include "idempotency.h"
#include "api_params.h"
#include "auth.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void api_handler_attempt(struct api_ctx *ctx, struct http_request *req, const struct route *rt,
                         int attempt)
{
    req->perm = rt->perm;
    req->perm_checked = false;
    req->retry = false;
    req->retry_allowed = attempt < DB_RETRY_ATTEMPTS;
    rt->handler(ctx, req);
}

/* The answer kept for the key, sent again: it was checked for its permission when made. */
static void send_replay(struct http_request *req, const char *status, const char *body)
{
    req->perm_checked = true;
    http_send_raw(req, atoi(status), "application/json; charset=utf-8",
                  "Idempotent-Replayed: true\r\n", body, strlen(body));
}

/* Claims the key inside the held transaction. true: the handler is to run; false: the
 * answer is sent (a replay, 409, 422, or the database's failure). */
static bool claim(struct api_ctx *ctx, struct http_request *req, const char *hash)
{
    const char *p[] = { req->user_id, req->idempotency_key, hash };
    PGresult *res = db_query(ctx->db, "idempotency_claim",
                             "SELECT state, status, body FROM pems_idempotency_claim($1::uuid,"
                             " $2, $3)",
                             3, p);
    if (!res) {
        req->retry_allowed = false;
        api_db_failure(ctx, req);
        return false;
    }
    const char *state = PQgetvalue(res, 0, 0);
    bool run = false;
    if (strcmp(state, "new") == 0)
        run = true;
    else if (strcmp(state, "replay") == 0)
        send_replay(req, PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2));
    else if (strcmp(state, "reused") == 0)
        http_send_error(req, 422, "idempotency_key_reused",
                        "This Idempotency-Key was used for another request (method, path or "
                        "body); use a new key", NULL);
    else
        http_send_error(req, 409, "conflict",
                        "A request with this Idempotency-Key is still being processed", NULL);
    PQclear(res);
    return run;
}

/* Keeps the captured answer with the key. true when kept. */
static bool keep(struct api_ctx *ctx, struct http_request *req, const char *hash)
{
    char status[8];
    snprintf(status, sizeof status, "%d", req->captured.status);
    const char *p[] = { req->user_id, req->idempotency_key, hash, status, req->captured.body };
    PGresult *res = db_query(ctx->db, "idempotency_keep",
                             "SELECT pems_idempotency_keep($1::uuid, $2, $3, $4::int, $5)", 5, p);
    if (!res)
        return false;
    bool kept = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (!kept)
        log_warn("idempotency_key_taken", "user=%s", req->user_id);
    return kept;
}

void api_idempotent_run(struct api_ctx *ctx, struct http_request *req, const struct route *rt)
{
    if (!api_idempotency_key_valid(req->idempotency_key)) {
        json_t *details = json_array();
        api_detail_add(details, "Idempotency-Key", "must be 1 to 255 visible ASCII characters");
        api_reject(ctx, req, details);
        return;
    }
    http_read_body(req, API_MAX_BODY);
    char hash[API_REQUEST_HASH_SIZE];
    if (req->body_state == BODY_TOO_LARGE || req->body_state == BODY_ERROR ||
        !api_request_hash(req->method, req->path, req->body, req->body_len, hash)) {
        /* the handler refuses such a body; an error answer spends no key */
        api_handler_attempt(ctx, req, rt, 0);
        return;
    }
    for (int attempt = 0;; attempt++) {
        if (db_hold_begin(ctx->db) != DB_OK) {
            req->retry_allowed = false;
            api_db_failure(ctx, req);
            return;
        }
        if (!claim(ctx, req, hash)) {
            db_hold_end(ctx->db, false);
            return;
        }
        req->capture = true;
        api_handler_attempt(ctx, req, rt, attempt);
        bool ok = !req->retry && req->captured.body && req->captured.status >= 200 &&
                  req->captured.status < 300;
        int rc = DB_OK;
        if (ok && !keep(ctx, req, hash))
            rc = db_last_status(ctx->db) == DB_OK ? DB_ERROR : db_last_status(ctx->db);
        else if (ok)
            rc = db_hold_end(ctx->db, true);
        if (!ok || rc != DB_OK)
            db_hold_end(ctx->db, false);
        if (ok && rc == DB_OK) {
            http_send_captured(req, NULL);
            return;
        }
        if (!ok && !req->retry) {   /* an error answer: sent, nothing kept */
            http_send_captured(req, NULL);
            return;
        }
        /* a transient failure of the work, the keeping or the commit: all of it again */
        http_drop_captured(req);
        req->capture = false;
        if (!db_retry_due(ctx->db, attempt)) {
            if (req->retry || db_failed_transiently(ctx->db))
                http_send_error(req, 503, "service_unavailable",
                                "The database is busy with the same rows; try again shortly",
                                NULL);
            else if (rc == DB_ERROR && db_last_status(ctx->db) == DB_OK)
                http_send_error(req, 409, "conflict",
                                "A request with this Idempotency-Key was answered meanwhile; "
                                "send it again to get that answer", NULL);
            else {
                req->retry_allowed = false;
                api_db_failure(ctx, req);
            }
            return;
        }
        req->retry = false;
    }
}
