#ifndef PEMS_API_QUEUE_H
#define PEMS_API_QUEUE_H

#include "api_common.h"

void api_queue_retry(struct api_ctx *ctx, struct http_request *req);
void api_queue_cancel(struct api_ctx *ctx, struct http_request *req);

#endif
