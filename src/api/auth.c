#include "auth.h"
#include "api_params.h"
#include "jwt_auth.h"
#include "log.h"
#include "token_cache.h"

#include <string.h>
#include <strings.h>
#include <time.h>

const char *auth_need(const struct http_request *req)
{
    switch (req->perm) {
    case PERM_READ: return "Read";
    case PERM_WRITE: return "Write";
    case PERM_SYNC: return "Sync";
    case PERM_ADMIN: return "Admin";
    default: return NULL;
    }
}

static void unauthorized(struct http_request *req, const char *message)
{
    http_send_error(req, 401, "unauthorized", message, NULL);
}

/* verified tokens each process remembers (token_cache.h): a few clients' tokens at a time */
#define TOKEN_CACHE_SLOTS 64

int auth_token(struct api_ctx *ctx, struct http_request *req)
{
    const char *h = req->authorization;
    if (!h) {
        unauthorized(req, "A Bearer token is required");
        return -1;
    }
    if (strncasecmp(h, "Bearer ", 7) != 0) {
        unauthorized(req, "The Authorization scheme must be Bearer");
        return -1;
    }
    const char *token = h + 7;
    while (*token == ' ')
        token++;
    time_t now = time(NULL);
    if (!ctx->tokens)
        ctx->tokens = token_cache_new(TOKEN_CACHE_SLOTS);
    if (token_cache_get(ctx->tokens, token, now, req->user_id))
        return 0;
    double exp, nbf;
    enum jwt_verdict v = jwt_verify_hs256_window(token, ctx->cfg->jwt_secret, now, req->user_id,
                                                 &exp, &nbf);
    if (v == JWT_VALID)
        token_cache_put(ctx->tokens, token, exp, nbf, req->user_id);
    if (v != JWT_VALID) {
        log_debug("auth_rejected", "reason=\"%s\"", jwt_verdict_message(v));
        req->user_id[0] = '\0';
        unauthorized(req, "The token is invalid or expired");
        return -1;
    }
    return 0;
}

int auth_user_exists(struct api_ctx *ctx, struct http_request *req)
{
    const char *params[] = { req->user_id };
    PGresult *res = db_query(ctx->db, "auth_user",
                             "SELECT 1 FROM users WHERE id = $1::uuid", 1, params);
    if (!res) {
        api_db_failure(ctx, req);
        return -1;
    }
    int n = PQntuples(res);
    PQclear(res);
    if (n == 0) {
        unauthorized(req, "The token's user does not exist");
        return -1;
    }
    return 0;
}

int auth_org(struct api_ctx *ctx, struct http_request *req, const char *org_id)
{
    const char *params[] = { req->user_id, org_id, auth_need(req) };
    PGresult *res = db_query(ctx->db, "auth_org",
                             "SELECT 't', pems_has_permission(uo.permissions, $3) FROM users u"
                             " LEFT JOIN user_organizations uo ON uo.user_id = u.id"
                             " AND uo.organization_id = $2::uuid WHERE u.id = $1::uuid",
                             3, params);
    if (!res) {
        api_db_failure(ctx, req);
        return -1;
    }
    int rc = PQntuples(res) == 0 ? auth_org_row(req, "f", NULL)
                                 : auth_org_row(req, db_value(res, 0, 0), db_value(res, 0, 1));
    PQclear(res);
    return rc;
}

/* 0 with the permission checked, or -1 after sending the answer */
static int verdict(struct http_request *req, const char *user_ok, const char *allowed,
                   int not_member_status)
{
    if (!user_ok || strcmp(user_ok, "t") != 0) {
        unauthorized(req, "The token's user does not exist");
        return -1;
    }
    if (!allowed) {
        if (not_member_status == 404)
            http_send_error(req, 404, "not_found", "No such resource", NULL);
        else
            http_send_error(req, 403, "forbidden", "You are not a member of this organization",
                            NULL);
        return -1;
    }
    if (strcmp(allowed, "t") != 0) {
        http_send_error(req, 403, "forbidden", "You lack the permission this route needs", NULL);
        return -1;
    }
    req->perm_checked = true;
    return 0;
}

int auth_row(struct http_request *req, const char *user_ok, const char *allowed)
{
    return verdict(req, user_ok, allowed, 404);
}

int auth_org_row(struct http_request *req, const char *user_ok, const char *allowed)
{
    return verdict(req, user_ok, allowed, 403);
}

void auth_org_answer(struct api_ctx *ctx, struct http_request *req, PGresult *res)
{
    if (!res) {
        api_db_failure(ctx, req);
        return;
    }
    if (auth_org_row(req, db_value(res, 0, 0), db_value(res, 0, 1)) == 0)
        http_send_json_etag(req, PQgetvalue(res, 0, 2), (size_t)PQgetlength(res, 0, 2));
    PQclear(res);
}

void auth_not_found(struct api_ctx *ctx, struct http_request *req)
{
    if (auth_user_exists(ctx, req) == 0)
        http_send_error(req, 404, "not_found", "No such resource", NULL);
}

void api_reject(struct api_ctx *ctx, struct http_request *req, json_t *details)
{
    if (auth_user_exists(ctx, req) < 0) {
        json_decref(details);
        return;
    }
    http_send_error(req, 400, "validation_failed", "The request is not valid", details);
}

bool api_query_accept(struct api_ctx *ctx, struct http_request *req, struct query_params *q,
                      const struct api_field *fields, size_t n)
{
    json_t *details = json_array();
    if (api_query_parse(req->query, q) < 0)
        api_detail_add(details, "query", "malformed query string");
    else
        api_check_query(q, fields, n, details);
    if (json_array_size(details) > 0) {
        api_reject(ctx, req, details);
        return false;
    }
    json_decref(details);
    return true;
}
