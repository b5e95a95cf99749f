#ifndef PEMS_API_CHANGES_H
#define PEMS_API_CHANGES_H

#include "api_common.h"

/* GET /changes: the records changed after a position (openapi.yaml ChangeFeed). */
void api_changes(struct api_ctx *ctx, struct http_request *req);

#endif
