#include "auth.h"
#include "jwt_auth.h"
#include "log.h"

#include <string.h>
#include <strings.h>
#include <time.h>

static const struct {
    const char *name;
    unsigned bit;
} perm_names[] = {
    { "Read", PERM_READ }, { "Write", PERM_WRITE }, { "Sync", PERM_SYNC }, { "Admin", PERM_ADMIN },
};

const char *auth_perm_name(unsigned perm)
{
    for (size_t i = 0; i < sizeof perm_names / sizeof perm_names[0]; i++)
        if (perm_names[i].bit == perm)
            return perm_names[i].name;
    return "";
}

unsigned auth_perm_parse(const char *pg_array)
{
    unsigned mask = PERM_NONE;
    if (!pg_array)
        return mask;
    const char *p = pg_array;
    while (*p) {
        while (*p == '{' || *p == ',' || *p == '}' || *p == '"' || *p == ' ')
            p++;
        size_t n = strcspn(p, ",}\"");
        for (size_t i = 0; n && i < sizeof perm_names / sizeof perm_names[0]; i++)
            if (strlen(perm_names[i].name) == n && strncmp(p, perm_names[i].name, n) == 0)
                mask |= perm_names[i].bit;
        p += n;
    }
    return mask;
}

bool auth_perm_allows(unsigned have, unsigned need)
{
    if (have & PERM_ADMIN)
        return true;
    return (have & need) == need;
}

static void unauthorized(struct http_request *req, const char *message)
{
    http_send_error(req, 401, "unauthorized", message, NULL);
}

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
    enum jwt_verdict v = jwt_verify_hs256(token, ctx->cfg->jwt_secret, time(NULL), req->user_id);
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

int auth_org(struct api_ctx *ctx, struct http_request *req, const char *org_id, unsigned need)
{
    const char *params[] = { req->user_id, org_id };
    PGresult *res = db_query(ctx->db, "auth_org",
                             "SELECT uo.permissions::text FROM users u"
                             " LEFT JOIN user_organizations uo ON uo.user_id = u.id"
                             " AND uo.organization_id = $2::uuid WHERE u.id = $1::uuid",
                             2, params);
    if (!res) {
        api_db_failure(ctx, req);
        return -1;
    }
    int rc = 0;
    if (PQntuples(res) == 0) {
        unauthorized(req, "The token's user does not exist");
        rc = -1;
    } else if (!auth_perm_allows(auth_perm_parse(db_value(res, 0, 0)), need)) {
        http_send_error(req, 403, "forbidden",
                        db_value(res, 0, 0) ? "You lack the permission this route needs"
                                            : "You are not a member of this organization",
                        NULL);
        rc = -1;
    }
    PQclear(res);
    return rc;
}

int auth_row(struct http_request *req, const char *user_ok, const char *perms, unsigned need)
{
    if (!user_ok || strcmp(user_ok, "t") != 0) {
        unauthorized(req, "The token's user does not exist");
        return -1;
    }
    if (!perms) {
        http_send_error(req, 404, "not_found", "No such resource", NULL);
        return -1;
    }
    if (!auth_perm_allows(auth_perm_parse(perms), need)) {
        http_send_error(req, 403, "forbidden", "You lack the permission this route needs", NULL);
        return -1;
    }
    return 0;
}

int auth_org_row(struct http_request *req, const char *user_ok, const char *perms, unsigned need)
{
    if (!user_ok || strcmp(user_ok, "t") != 0) {
        unauthorized(req, "The token's user does not exist");
        return -1;
    }
    if (!perms) {
        http_send_error(req, 403, "forbidden", "You are not a member of this organization", NULL);
        return -1;
    }
    if (!auth_perm_allows(auth_perm_parse(perms), need)) {
        http_send_error(req, 403, "forbidden", "You lack the permission this route needs", NULL);
        return -1;
    }
    return 0;
}

void auth_not_found(struct api_ctx *ctx, struct http_request *req)
{
    if (auth_user_exists(ctx, req) == 0)
        http_send_error(req, 404, "not_found", "No such resource", NULL);
}
