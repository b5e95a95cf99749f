#ifndef PEMS_AUTH_H
#define PEMS_AUTH_H

#include <stdbool.h>
#include "api_common.h"

/* Permissions of user_organizations.permissions; Admin implies every other. */
#define PERM_NONE  0u
#define PERM_READ  0x1u
#define PERM_WRITE 0x2u
#define PERM_SYNC  0x4u
#define PERM_ADMIN 0x8u

const char *auth_perm_name(unsigned perm);
/* a PostgreSQL text[] literal like {Read,Sync} */
unsigned auth_perm_parse(const char *pg_array);
bool auth_perm_allows(unsigned have, unsigned need);

/* Bearer token -> req->user_id. 0, or -1 after sending 401. No database access. */
int auth_token(struct api_ctx *ctx, struct http_request *req);
/* 0 when the token's user exists, else -1 after sending 401 (or 503). */
int auth_user_exists(struct api_ctx *ctx, struct http_request *req);
/* The user's permission `need` in org_id: 0, or -1 after sending 401/403 (or 503). */
int auth_org(struct api_ctx *ctx, struct http_request *req, const char *org_id, unsigned need);
/* For a row addressed by id, given what one query found: user_ok ("t"/"f"), and the
 * caller's permissions in the row's organization (NULL: no row or no membership).
 * 0, or -1 after sending 401, 404 or 403. */
int auth_row(struct http_request *req, const char *user_ok, const char *perms, unsigned need);
/* For an organization-addressed route, given what one query found: user_ok ("t"/"f") and
 * the caller's permissions in that organization (NULL: not a member).
 * 0, or -1 after sending 401 or 403. */
int auth_org_row(struct http_request *req, const char *user_ok, const char *perms, unsigned need);
/* 404 for an id that cannot exist (not a uuid) — but 401 first when the user is gone. */
void auth_not_found(struct api_ctx *ctx, struct http_request *req);

#endif
