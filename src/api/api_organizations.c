#include "api_organizations.h"
#include "api_params.h"
#include "auth.h"

/* One statement: whether the token's user exists, who it is (so a page can name the signed-in
 * person), and its memberships (pems_user_organizations, sql/functions/permissions.sql). */
void api_organizations(struct api_ctx *ctx, struct http_request *req)
{
    struct query_params q;
    if (!api_query_accept(ctx, req, &q, NULL, 0))
        return;
    const char *params[] = { req->user_id };
    PGresult *res = db_query(ctx->db, "organizations",
                             "SELECT pems_user_organizations(u.id)::text FROM users u"
                             " WHERE u.id = $1::uuid",
                             1, params);
    if (!res) {
        api_db_failure(ctx, req);
        return;
    }
    if (PQntuples(res) == 0)
        http_send_error(req, 401, "unauthorized", "The token's user does not exist", NULL);
    else
        http_send_json_text(req, 200, PQgetvalue(res, 0, 0));
    PQclear(res);
}
