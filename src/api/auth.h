#ifndef PEMS_AUTH_H
#define PEMS_AUTH_H

#include <stdbool.h>
#include "api_common.h"

/* Permissions of user_organizations.permissions. Each route's permission is declared once,
 * in the route table (src/api/router.c); the dispatcher hands it to the handler as req->perm,
 * and the checks below compare against it. "Admin implies every other" lives in SQL alone:
 * pems_has_permission (sql/functions/permissions.sql), whose answer each membership query
 * returns as `allowed` ("t", "f", or NULL for no membership). */
#define PERM_NONE  0u
#define PERM_READ  0x1u
#define PERM_WRITE 0x2u
#define PERM_SYNC  0x4u
#define PERM_ADMIN 0x8u

/* The route's permission as SQL names it ("Read", ...), for pems_has_permission. */
const char *auth_need(const struct http_request *req);

/* Bearer token -> req->user_id. 0, or -1 after sending 401. No database access. */
int auth_token(struct api_ctx *ctx, struct http_request *req);
/* 0 when the token's user exists, else -1 after sending 401 (or 503). */
int auth_user_exists(struct api_ctx *ctx, struct http_request *req);
/* The route's permission in org_id: 0, or -1 after sending 401/403 (or 503). */
int auth_org(struct api_ctx *ctx, struct http_request *req, const char *org_id);
/* For a row addressed by id, given what one query found: user_ok ("t"/"f"), and whether the
 * caller has the route's permission in the row's organization (NULL: no row or no
 * membership). 0, or -1 after sending 401, 404 or 403. */
int auth_row(struct http_request *req, const char *user_ok, const char *allowed);
/* For an organization-addressed route, given what one query found: user_ok ("t"/"f") and
 * whether the caller has the route's permission there (NULL: not a member).
 * 0, or -1 after sending 401 or 403. */
int auth_org_row(struct http_request *req, const char *user_ok, const char *allowed);
/* An organization-addressed GET answered by one statement whose row is (user_ok, allowed,
 * the body): the body with its ETag, or 401/403; res NULL: the database failure. Clears res. */
void auth_org_answer(struct api_ctx *ctx, struct http_request *req, PGresult *res);
/* 404 for an id that cannot exist (not a uuid) — but 401 first when the user is gone. */
void auth_not_found(struct api_ctx *ctx, struct http_request *req);

/* 400 validation_failed with details (stolen) — but 401 first when the token's user is gone
 * (so it lives with the other checks of the caller). */
void api_reject(struct api_ctx *ctx, struct http_request *req, json_t *details);
/* Reads the request's query into q and checks it against the route's n fields: false, with
 * the answer sent (api_reject), when it is malformed or refused. */
struct query_params;
struct api_field;
bool api_query_accept(struct api_ctx *ctx, struct http_request *req, struct query_params *q,
                      const struct api_field *fields, size_t n);

#endif
