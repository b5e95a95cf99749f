#ifndef PEMS_API_SYNC_STATUS_H
#define PEMS_API_SYNC_STATUS_H

#include "api_common.h"

void api_sync_status(struct api_ctx *ctx, struct http_request *req);

#endif
