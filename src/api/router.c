#include "router.h"
#include "auth.h"
#include "api_conflicts.h"
#include "api_health.h"
#include "api_metrics.h"
#include "api_modifications.h"
#include "api_queue.h"
#include "api_sync_status.h"
#include "api_write_sync.h"
#include "api_organizations.h"
#include "api_sync_history.h"

#include <stdio.h>
#include <string.h>

static const struct route routes[] = {
    { "POST", "/api/pems/write-sync", api_write_sync, ROUTE_TOKEN, PERM_SYNC },
    { "GET", "/api/pems/sync-status", api_sync_status, ROUTE_TOKEN, PERM_READ },
    { "GET", "/api/pems/conflicts", api_conflicts_list, ROUTE_TOKEN, PERM_READ },
    { "POST", "/api/pems/conflicts/:conflictId/resolve", api_conflict_resolve, ROUTE_TOKEN,
      PERM_SYNC },
    { "POST", "/api/pems/modifications", api_modification_create, ROUTE_TOKEN, PERM_WRITE },
    { "GET", "/api/pems/modifications", api_modifications_list, ROUTE_TOKEN, PERM_READ },
    { "GET", "/api/pems/modifications/:id", api_modification_get, ROUTE_TOKEN, PERM_READ },
    { "POST", "/api/pems/queue/:itemId/retry", api_queue_retry, ROUTE_TOKEN, PERM_SYNC },
    { "POST", "/api/pems/queue/:itemId/cancel", api_queue_cancel, ROUTE_TOKEN, PERM_SYNC },
    { "GET", "/api/pems/organizations", api_organizations, ROUTE_TOKEN, PERM_NONE },
    { "GET", "/api/pems/sync-history", api_sync_history, ROUTE_TOKEN, PERM_READ },
    { "GET", "/api/pems/health", api_health, ROUTE_PUBLIC, PERM_NONE },
    { "GET", "/api/pems/metrics", api_metrics, ROUTE_METRICS, PERM_NONE },
};

#define NROUTES (sizeof routes / sizeof routes[0])

const struct route *router_routes(size_t *count)
{
    *count = NROUTES;
    return routes;
}

/* Matches path against pattern segment by segment; :name segments capture. */
static bool pattern_match(const char *pattern, const char *path, struct http_request *req)
{
    size_t np = 0;
    const char *p = pattern, *s = path;
    while (*p && *s) {
        if (*p != '/' || *s != '/')
            return false;
        p++;
        s++;
        size_t plen = strcspn(p, "/"), slen = strcspn(s, "/");
        if (*p == ':') {
            /* the same limits with and without req: a path that matches must also fill it */
            if (slen == 0 || slen >= sizeof req->param_value[0] || np >= HTTP_MAX_ROUTE_PARAMS)
                return false;
            if (req) {
                req->param_name[np] = NULL;
                memcpy(req->param_value[np], s, slen);
                req->param_value[np][slen] = '\0';
            }
            np++;
        } else if (plen != slen || strncmp(p, s, plen) != 0) {
            return false;
        }
        p += plen;
        s += slen;
    }
    if (*p || *s)
        return false;
    if (req) {
        /* names last, once the whole path matched */
        size_t k = 0;
        for (const char *c = strchr(pattern, ':'); c && k < np; c = strchr(c + 1, ':'))
            req->param_name[k++] = c + 1;
        req->nparams = np;
    }
    return true;
}

enum route_match router_match(const char *method, const char *path, struct http_request *req,
                              const struct route **out, char *allow, size_t allowlen)
{
    char norm[HTTP_MAX_PATH];
    size_t n = strlen(path);
    if (n >= sizeof norm)
        return ROUTE_NOT_FOUND;
    memcpy(norm, path, n + 1);
    if (n > 1 && norm[n - 1] == '/')
        norm[n - 1] = '\0';   /* one trailing slash is the same resource */

    /* every GET route answers HEAD (the response writer sends no body) */
    const char *want = strcmp(method, "HEAD") == 0 ? "GET" : method;
    bool path_known = false;
    size_t used = 0;
    if (allowlen)
        allow[0] = '\0';
    for (size_t i = 0; i < NROUTES; i++) {
        /* the metrics route answers its exact path alone */
        const char *p = routes[i].access == ROUTE_METRICS ? path : norm;
        if (!pattern_match(routes[i].pattern, p, NULL))
            continue;
        if (strcmp(routes[i].method, want) == 0) {
            pattern_match(routes[i].pattern, p, req);
            *out = &routes[i];
            return ROUTE_FOUND;
        }
        path_known = true;
        if (used < allowlen) {
            bool get = strcmp(routes[i].method, "GET") == 0;
            int w = snprintf(allow + used, allowlen - used, "%s%s%s", used ? ", " : "",
                             routes[i].method, get ? ", HEAD" : "");
            if (w > 0)
                used += (size_t)w;
        }
    }
    return path_known ? ROUTE_BAD_METHOD : ROUTE_NOT_FOUND;
}
