#ifndef PEMS_IDEMPOTENCY_H
#define PEMS_IDEMPOTENCY_H

#include "api_common.h"
#include "router.h"

/* Runs the route's handler for req once, as its attempt number `attempt` (0 first): the
 * dispatcher's step, the same with and without a key. */
void api_handler_attempt(struct api_ctx *ctx, struct http_request *req, const struct route *rt,
                         int attempt);

/* A POST with an Idempotency-Key (README, "Idempotent POSTs"): the handler runs inside a
 * transaction held for it (db_hold_begin) that first claims the key; a successful answer is
 * kept in that transaction, before it commits, and sent once it has. A kept answer is sent
 * again with Idempotent-Replayed: true; another request's key is 422, a key in use 409, a
 * malformed one 400. */
void api_idempotent_run(struct api_ctx *ctx, struct http_request *req, const struct route *rt);

#endif
