#ifndef PEMS_API_SYNC_HISTORY_H
#define PEMS_API_SYNC_HISTORY_H

#include <stdbool.h>
#include <jansson.h>
#include "api_common.h"

/* GET /api/pems/sync-history: finished writes per minute, hour or day (src/api/openapi.yaml). */
void api_sync_history(struct api_ctx *ctx, struct http_request *req);

#define SYNC_HISTORY_MAX_BUCKETS 2000

struct sync_history_window {
    long long from_ms, to_ms;   /* [from, to) */
    const char *bucket;         /* "minute" | "hour" | "day" */
    long buckets;               /* how many the window spans */
};

/* Pure: the window of a request's from/to/bucket values (each may be NULL: the last 24 h,
 * by hour, ending now_ms). A date alone as `to` includes that day. false with details added
 * when the values do not make a window of at most SYNC_HISTORY_MAX_BUCKETS buckets. */
bool sync_history_window(const char *from, const char *to, const char *bucket,
                         long long now_ms, struct sync_history_window *w, json_t *details);

#endif
