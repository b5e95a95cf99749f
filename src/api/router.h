#ifndef PEMS_ROUTER_H
#define PEMS_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include "api_common.h"
#include "http.h"

/* Who may call a route; the dispatcher enforces it before the handler runs. */
enum route_access {
    ROUTE_PUBLIC,     /* anyone */
    ROUTE_METRICS,    /* only a REMOTE_ADDR in PEMS_METRICS_ALLOW (loopback by default),
                         whatever nginx lets through; the path exactly as written */
    ROUTE_TOKEN       /* a valid Bearer token of an existing user */
};

/* The route table of /api/pems (src/api/openapi.yaml): method + pattern with :params. */
struct route {
    const char *method;
    const char *pattern;
    api_handler handler;
    enum route_access access;
    unsigned perm;        /* PERM_* the route needs; PERM_NONE with ROUTE_TOKEN = any user */
};

enum route_match { ROUTE_FOUND, ROUTE_NOT_FOUND, ROUTE_BAD_METHOD };

const struct route *router_routes(size_t *count);

/* Matches method and path; on ROUTE_FOUND fills req's route params and *out; on
 * ROUTE_BAD_METHOD writes the allowed methods ("GET, POST") into allow. */
enum route_match router_match(const char *method, const char *path, struct http_request *req,
                              const struct route **out, char *allow, size_t allowlen);

#endif
