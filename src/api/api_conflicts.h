#ifndef PEMS_API_CONFLICTS_H
#define PEMS_API_CONFLICTS_H

#include "api_common.h"

void api_conflicts_list(struct api_ctx *ctx, struct http_request *req);
void api_conflict_resolve(struct api_ctx *ctx, struct http_request *req);

#endif
