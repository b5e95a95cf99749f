#include "api_queue.h"
#include "api_modifications.h"
#include "api_params.h"
#include "auth.h"
#include "queue_actions.h"
#include "util.h"

#include <stdbool.h>
#include <string.h>

static void queue_action(struct api_ctx *ctx, struct http_request *req, bool retry)
{
    json_t *body = api_body_object(req, true);
    if (!body)
        return;
    /* the actions take no parameters: any key is unknown */
    if (json_object_size(body) > 0) {
        json_t *details = json_array();
        const char *key;
        json_t *v;
        json_object_foreach(body, key, v)
            api_detail_add(details, key, "unknown field");
        json_decref(body);
        api_reject(ctx, req, details);
        return;
    }
    json_decref(body);
    const char *id = http_param(req, "itemId");
    if (!util_is_uuid(id)) {
        auth_not_found(ctx, req);
        return;
    }
    const char *params[] = { req->user_id, id, auth_need(req) };
    PGresult *res = db_query(ctx->db, "queue_access",
                             "SELECT EXISTS (SELECT 1 FROM users WHERE id = $1::uuid),"
                             " pems_has_permission(p.permissions, $3), q.organization_id::text"
                             " FROM (SELECT 1) one LEFT JOIN pfa_write_queue q ON q.id = $2::uuid"
                             " LEFT JOIN user_organizations p ON p.user_id = $1::uuid"
                             " AND p.organization_id = q.organization_id",
                             3, params);
    if (!res) {
        api_db_failure(ctx, req);
        return;
    }
    char org[37] = "";
    int gate = auth_row(req, db_value(res, 0, 0), db_value(res, 0, 1));
    if (gate == 0)
        snprintf(org, sizeof org, "%s", PQgetvalue(res, 0, 2));
    PQclear(res);
    if (gate < 0)
        return;

    char modification_id[37] = "";
    enum queue_action_result r =
        retry ? queue_item_retry(ctx->db, id, org, req->user_id, modification_id)
              : queue_item_cancel(ctx->db, id, org, req->user_id, modification_id);
    switch (r) {
    case QUEUE_ACTION_OK:
        api_modification_send(ctx, req, modification_id, 200);
        break;
    case QUEUE_ACTION_NOT_FOUND:
        http_send_error(req, 404, "not_found", "No such queue item", NULL);
        break;
    case QUEUE_ACTION_WRONG_STATE:
        http_send_error(req, 409, "conflict",
                        retry ? "Only a failed queue item can be retried"
                              : "Only a pending queue item can be cancelled",
                        NULL);
        break;
    case QUEUE_ACTION_DB_UNAVAILABLE:
        http_send_error(req, 503, "service_unavailable",
                        "The database is unavailable; try again shortly", NULL);
        break;
    case QUEUE_ACTION_DB_ERROR:
    default:
        api_db_failure(ctx, req);
        break;
    }
}

void api_queue_retry(struct api_ctx *ctx, struct http_request *req)
{
    queue_action(ctx, req, true);
}

void api_queue_cancel(struct api_ctx *ctx, struct http_request *req)
{
    queue_action(ctx, req, false);
}
