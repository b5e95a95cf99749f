#ifndef PEMS_API_MODIFICATIONS_H
#define PEMS_API_MODIFICATIONS_H

#include "api_common.h"

void api_modification_create(struct api_ctx *ctx, struct http_request *req);
void api_modification_get(struct api_ctx *ctx, struct http_request *req);
void api_modifications_list(struct api_ctx *ctx, struct http_request *req);
/* POST /modifications/batch: 1 to 500 modifications, all or nothing. */
void api_modifications_batch(struct api_ctx *ctx, struct http_request *req);

/* Sends the modification (openapi.yaml Modification) for id (200/201); 404 when it is gone. */
void api_modification_send(struct api_ctx *ctx, struct http_request *req, const char *id,
                           int status);

#endif
