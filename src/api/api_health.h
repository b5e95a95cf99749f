#ifndef PEMS_API_HEALTH_H
#define PEMS_API_HEALTH_H

#include "api_common.h"

void api_health(struct api_ctx *ctx, struct http_request *req);

#endif
