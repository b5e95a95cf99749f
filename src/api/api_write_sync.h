#ifndef PEMS_API_WRITE_SYNC_H
#define PEMS_API_WRITE_SYNC_H

#include "api_common.h"

void api_write_sync(struct api_ctx *ctx, struct http_request *req);

#endif
