#ifndef PEMS_API_METRICS_H
#define PEMS_API_METRICS_H

#include "api_common.h"

void api_metrics(struct api_ctx *ctx, struct http_request *req);

#endif
