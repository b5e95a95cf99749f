#ifndef PEMS_API_RECORDS_H
#define PEMS_API_RECORDS_H

#include "api_common.h"

/* GET /records, /records/:pfaId and /records/:pfaId/history (openapi.yaml Record). */
void api_records_list(struct api_ctx *ctx, struct http_request *req);
void api_record_get(struct api_ctx *ctx, struct http_request *req);
void api_record_history(struct api_ctx *ctx, struct http_request *req);

#endif
