#ifndef PEMS_ROUTER_H
#define PEMS_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include "api_common.h"
#include "http.h"

/* The route table of /api/pems (SPEC §4): method + pattern with :params. */
struct route {
    const char *method;
    const char *pattern;
    api_handler handler;
    unsigned perm;        /* PERM_* the route needs; PERM_NONE with auth = any member */
    bool auth;            /* Bearer token required */
};

enum route_match { ROUTE_FOUND, ROUTE_NOT_FOUND, ROUTE_BAD_METHOD };

const struct route *router_routes(size_t *count);

/* Matches method and path; on ROUTE_FOUND fills req's route params and *out; on
 * ROUTE_BAD_METHOD writes the allowed methods ("GET, POST") into allow. */
enum route_match router_match(const char *method, const char *path, struct http_request *req,
                              const struct route **out, char *allow, size_t allowlen);

#endif
