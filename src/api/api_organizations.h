#ifndef PEMS_API_ORGANIZATIONS_H
#define PEMS_API_ORGANIZATIONS_H

#include "api_common.h"

/* GET /api/pems/organizations: the caller's memberships (src/api/openapi.yaml). */
void api_organizations(struct api_ctx *ctx, struct http_request *req);

#endif
