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
#include "api_records.h"
#include "api_changes.h"

#include "util.h"

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
    { "POST", "/api/pems/modifications/batch", api_modifications_batch, ROUTE_TOKEN,
      PERM_WRITE },
    { "POST", "/api/pems/queue/:itemId/retry", api_queue_retry, ROUTE_TOKEN, PERM_SYNC },
    { "POST", "/api/pems/queue/:itemId/cancel", api_queue_cancel, ROUTE_TOKEN, PERM_SYNC },
    { "GET", "/api/pems/organizations", api_organizations, ROUTE_TOKEN, PERM_NONE },
    { "GET", "/api/pems/sync-history", api_sync_history, ROUTE_TOKEN, PERM_READ },
    { "GET", "/api/pems/records", api_records_list, ROUTE_TOKEN, PERM_READ },
    { "GET", "/api/pems/records/:pfaId", api_record_get, ROUTE_TOKEN, PERM_READ },
    { "GET", "/api/pems/records/:pfaId/history", api_record_history, ROUTE_TOKEN, PERM_READ },
    { "GET", "/api/pems/changes", api_changes, ROUTE_TOKEN, PERM_READ },
    { "GET", "/api/pems/health", api_health, ROUTE_PUBLIC, PERM_NONE },
    { "GET", "/api/pems/metrics", api_metrics, ROUTE_METRICS, PERM_NONE },
};

#define NROUTES (sizeof routes / sizeof routes[0])

const struct route *router_routes(size_t *count)
{
    *count = NROUTES;
    return routes;
}

/* Percent-decodes a path segment of n bytes into out (cap bytes with the NUL): false when
 * an escape is malformed, it decodes to a NUL or it does not fit. */
static bool segment_decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return false;
            int hi = util_hex_digit(s[i + 1]), lo = util_hex_digit(s[i + 2]);
            if (hi < 0 || lo < 0)
                return false;
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
        }
        if (c == '\0' || o + 1 >= cap)
            return false;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return true;
}

/* Matches path against pattern segment by segment; :name segments capture. With decode, path
 * is the raw (percent-encoded) one: each segment is decoded before it is compared or
 * captured, so a parameter may hold an encoded '/'. */
static bool pattern_match(const char *pattern, const char *path, bool decode,
                          struct http_request *req)
{
    size_t np = 0;
    const char *p = pattern, *s = path;
    while (*p && *s) {
        if (*p != '/' || *s != '/')
            return false;
        p++;
        s++;
        size_t plen = strcspn(p, "/"), slen = strcspn(s, "/");
        char seg[HTTP_MAX_PARAM_VALUE];
        const char *sv = s;
        size_t svlen = slen;
        if (decode) {
            if (!segment_decode(s, slen, seg, sizeof seg))
                return false;
            sv = seg;
            svlen = strlen(seg);
        }
        if (*p == ':') {
            /* the same limits with and without req: a path that matches must also fill it */
            if (svlen == 0 || svlen >= sizeof req->param_value[0] ||
                np >= HTTP_MAX_ROUTE_PARAMS)
                return false;
            if (req) {
                req->param_name[np] = NULL;
                memcpy(req->param_value[np], sv, svlen);
                req->param_value[np][svlen] = '\0';
            }
            np++;
        } else if (plen != svlen || strncmp(p, sv, plen) != 0) {
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
    char norm[HTTP_MAX_PATH], raw[HTTP_MAX_PATH];
    size_t n = strlen(path);
    if (n >= sizeof norm)
        return ROUTE_NOT_FOUND;
    memcpy(norm, path, n + 1);
    if (n > 1 && norm[n - 1] == '/')
        norm[n - 1] = '\0';   /* one trailing slash is the same resource */
    /* routes with parameters match the path as written, where an encoded '/' is still one
     * character of a segment (nginx's DOCUMENT_URI has it decoded) */
    const char *raw_path = req && req->raw_path[0] == '/' ? req->raw_path : NULL;
    if (raw_path) {
        size_t rn = strlen(raw_path);
        memcpy(raw, raw_path, rn + 1);
        if (rn > 1 && raw[rn - 1] == '/')
            raw[rn - 1] = '\0';
    }

    /* every GET route answers HEAD (the response writer sends no body) */
    const char *want = strcmp(method, "HEAD") == 0 ? "GET" : method;
    bool path_known = false;
    size_t used = 0;
    if (allowlen)
        allow[0] = '\0';
    for (size_t i = 0; i < NROUTES; i++) {
        /* the metrics route answers its exact path alone */
        const char *p = routes[i].access == ROUTE_METRICS ? path : norm;
        bool decode = raw_path && strchr(routes[i].pattern, ':');
        if (decode)
            p = raw;
        if (!pattern_match(routes[i].pattern, p, decode, NULL))
            continue;
        if (strcmp(routes[i].method, want) == 0) {
            pattern_match(routes[i].pattern, p, decode, req);
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
