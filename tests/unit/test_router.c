#include "unit.h"
#include <string.h>

#include "auth.h"
#include "router.h"

static void test_static_routes(void)
{
    struct http_request req;
    const struct route *rt = NULL;
    char allow[64];
    memset(&req, 0, sizeof req);
    CU_ASSERT_EQUAL(router_match("GET", "/api/pems/sync-status", &req, &rt, allow, sizeof allow),
                    ROUTE_FOUND);
    CU_ASSERT_STRING_EQUAL(rt->pattern, "/api/pems/sync-status");
    CU_ASSERT_EQUAL(rt->perm, PERM_READ);
    CU_ASSERT_EQUAL(rt->access, ROUTE_TOKEN);
    CU_ASSERT_EQUAL(router_match("POST", "/api/pems/write-sync", &req, &rt, allow, sizeof allow),
                    ROUTE_FOUND);
    CU_ASSERT_EQUAL(rt->perm, PERM_SYNC);
    CU_ASSERT_EQUAL(router_match("GET", "/api/pems/health", &req, &rt, allow, sizeof allow),
                    ROUTE_FOUND);
    CU_ASSERT_EQUAL(rt->access, ROUTE_PUBLIC);
    /* one trailing slash names the same resource */
    CU_ASSERT_EQUAL(router_match("GET", "/api/pems/conflicts/", &req, &rt, allow, sizeof allow),
                    ROUTE_FOUND);
    CU_ASSERT_STRING_EQUAL(rt->pattern, "/api/pems/conflicts");
}

static void test_params(void)
{
    struct http_request req;
    const struct route *rt = NULL;
    char allow[64];
    memset(&req, 0, sizeof req);
    const char *id = "0b6f3f0e-8a55-4a0c-9d55-6f8d2f1c3b7a";
    char path[128];
    snprintf(path, sizeof path, "/api/pems/conflicts/%s/resolve", id);
    CU_ASSERT_EQUAL(router_match("POST", path, &req, &rt, allow, sizeof allow), ROUTE_FOUND);
    CU_ASSERT_STRING_EQUAL(rt->pattern, "/api/pems/conflicts/:conflictId/resolve");
    CU_ASSERT_EQUAL(req.nparams, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(http_param(&req, "conflictId"));
    CU_ASSERT_STRING_EQUAL(http_param(&req, "conflictId"), id);
    CU_ASSERT_PTR_NULL(http_param(&req, "conflict"));
    CU_ASSERT_PTR_NULL(http_param(&req, "id"));

    memset(&req, 0, sizeof req);
    CU_ASSERT_EQUAL(router_match("GET", "/api/pems/modifications/abc", &req, &rt, allow,
                                 sizeof allow), ROUTE_FOUND);
    CU_ASSERT_STRING_EQUAL(rt->pattern, "/api/pems/modifications/:id");
    CU_ASSERT_STRING_EQUAL(http_param(&req, "id"), "abc");

    memset(&req, 0, sizeof req);
    CU_ASSERT_EQUAL(router_match("POST", "/api/pems/queue/x1/cancel", &req, &rt, allow,
                                 sizeof allow), ROUTE_FOUND);
    CU_ASSERT_STRING_EQUAL(rt->pattern, "/api/pems/queue/:itemId/cancel");
    CU_ASSERT_STRING_EQUAL(http_param(&req, "itemId"), "x1");
}

static void test_loopback_exact(void)
{
    struct http_request req;
    const struct route *rt = NULL;
    char allow[64];
    memset(&req, 0, sizeof req);
    CU_ASSERT_EQUAL(router_match("GET", "/api/pems/metrics", &req, &rt, allow, sizeof allow),
                    ROUTE_FOUND);
    CU_ASSERT_EQUAL(rt->access, ROUTE_METRICS);
    /* the trailing-slash rule does not reach a loopback-only route */
    CU_ASSERT_EQUAL(router_match("GET", "/api/pems/metrics/", &req, &rt, allow, sizeof allow),
                    ROUTE_NOT_FOUND);
    CU_ASSERT_EQUAL(router_match("GET", "/api/pems/health/", &req, &rt, allow, sizeof allow),
                    ROUTE_FOUND);
}

static void test_head(void)
{
    struct http_request req;
    const struct route *rt = NULL;
    char allow[64];
    memset(&req, 0, sizeof req);
    /* every GET route answers HEAD; no other route does */
    CU_ASSERT_EQUAL(router_match("HEAD", "/api/pems/health", &req, &rt, allow, sizeof allow),
                    ROUTE_FOUND);
    CU_ASSERT_STRING_EQUAL(rt->pattern, "/api/pems/health");
    CU_ASSERT_EQUAL(router_match("HEAD", "/api/pems/modifications/abc", &req, &rt, allow,
                                 sizeof allow), ROUTE_FOUND);
    CU_ASSERT_STRING_EQUAL(rt->pattern, "/api/pems/modifications/:id");
    CU_ASSERT_EQUAL(router_match("HEAD", "/api/pems/write-sync", &req, &rt, allow, sizeof allow),
                    ROUTE_BAD_METHOD);
    CU_ASSERT_STRING_EQUAL(allow, "POST");
}

static void test_not_found_and_method(void)
{
    struct http_request req;
    const struct route *rt = NULL;
    char allow[64];
    memset(&req, 0, sizeof req);
    CU_ASSERT_EQUAL(router_match("GET", "/api/pems/nope", &req, &rt, allow, sizeof allow),
                    ROUTE_NOT_FOUND);
    CU_ASSERT_EQUAL(router_match("GET", "/api/pems/conflicts/a/b/resolve", &req, &rt, allow,
                                 sizeof allow), ROUTE_NOT_FOUND);
    CU_ASSERT_EQUAL(router_match("POST", "/api/pems/queue//retry", &req, &rt, allow,
                                 sizeof allow), ROUTE_NOT_FOUND);
    CU_ASSERT_EQUAL(router_match("GET", "/", &req, &rt, allow, sizeof allow), ROUTE_NOT_FOUND);
    CU_ASSERT_EQUAL(router_match("DELETE", "/api/pems/sync-status", &req, &rt, allow,
                                 sizeof allow), ROUTE_BAD_METHOD);
    CU_ASSERT_STRING_EQUAL(allow, "GET, HEAD");
    CU_ASSERT_EQUAL(router_match("PUT", "/api/pems/modifications", &req, &rt, allow,
                                 sizeof allow), ROUTE_BAD_METHOD);
    CU_ASSERT_STRING_EQUAL(allow, "POST, GET, HEAD");
    CU_ASSERT_EQUAL(router_match("GET", "/api/pems/write-sync", &req, &rt, allow, sizeof allow),
                    ROUTE_BAD_METHOD);
    CU_ASSERT_STRING_EQUAL(allow, "POST");
}

/* The route table is the one registration of each route's permission: every route behind a
 * token names one SQL knows (only /organizations, any user, needs none); the others none. */
static void test_permissions(void)
{
    size_t n;
    const struct route *routes = router_routes(&n);
    struct http_request req;
    memset(&req, 0, sizeof req);
    for (size_t i = 0; i < n; i++) {
        req.perm = routes[i].perm;
        if (routes[i].access != ROUTE_TOKEN) {
            CU_ASSERT_EQUAL(routes[i].perm, PERM_NONE);
        } else if (strcmp(routes[i].pattern, "/api/pems/organizations") == 0) {
            CU_ASSERT_EQUAL(routes[i].perm, PERM_NONE);
        } else {
            CU_ASSERT_PTR_NOT_NULL(auth_need(&req));
        }
    }
    req.perm = PERM_READ;
    CU_ASSERT_STRING_EQUAL(auth_need(&req), "Read");
    req.perm = PERM_WRITE;
    CU_ASSERT_STRING_EQUAL(auth_need(&req), "Write");
    req.perm = PERM_SYNC;
    CU_ASSERT_STRING_EQUAL(auth_need(&req), "Sync");
    req.perm = PERM_NONE;
    CU_ASSERT_PTR_NULL(auth_need(&req));
}

/* found by fuzz_router (tests/fuzz/corpus/fuzz_router/crash-param-longer-than-127): a param
 * too long to keep matched without being filled in */
static void test_long_param(void)
{
    struct http_request req;
    const struct route *rt = NULL;
    char allow[128], path[HTTP_MAX_PARAM_VALUE + 64];
    memset(&req, 0, sizeof req);
    snprintf(path, sizeof path, "/api/pems/conflicts/%0*d/resolve", HTTP_MAX_PARAM_VALUE, 7);
    CU_ASSERT_EQUAL(router_match("POST", path, &req, &rt, allow, sizeof allow), ROUTE_NOT_FOUND);
    CU_ASSERT_EQUAL(req.nparams, 0);
    snprintf(path, sizeof path, "/api/pems/conflicts/%0*d/resolve", HTTP_MAX_PARAM_VALUE - 1, 7);
    CU_ASSERT_EQUAL(router_match("POST", path, &req, &rt, allow, sizeof allow), ROUTE_FOUND);
    CU_ASSERT_EQUAL(req.nparams, 1);
    CU_ASSERT_EQUAL(strlen(http_param(&req, "conflictId")), HTTP_MAX_PARAM_VALUE - 1);
}

/* routes with parameters match the path as the client wrote it: an encoded '/' stays inside
 * its segment, each segment is decoded */
static void test_raw_path(void)
{
    struct http_request req;
    const struct route *rt = NULL;
    char allow[128];
    memset(&req, 0, sizeof req);
    strcpy(req.raw_path, "/api/pems/records/A%2Fhistory");
    CU_ASSERT_EQUAL(router_match("GET", "/api/pems/records/A/history", &req, &rt, allow,
                                 sizeof allow), ROUTE_FOUND);
    CU_ASSERT_STRING_EQUAL(rt->pattern, "/api/pems/records/:pfaId");
    CU_ASSERT_STRING_EQUAL(http_param(&req, "pfaId"), "A/history");

    memset(&req, 0, sizeof req);
    strcpy(req.raw_path, "/api/pems/records/A%20B/%68istory/");
    CU_ASSERT_EQUAL(router_match("GET", "/api/pems/records/A B/history/", &req, &rt, allow,
                                 sizeof allow), ROUTE_FOUND);
    CU_ASSERT_STRING_EQUAL(rt->pattern, "/api/pems/records/:pfaId/history");
    CU_ASSERT_STRING_EQUAL(http_param(&req, "pfaId"), "A B");

    memset(&req, 0, sizeof req);
    strcpy(req.raw_path, "/api/pems/records/A%00B");
    CU_ASSERT_EQUAL(router_match("GET", "/api/pems/records/A", &req, &rt, allow, sizeof allow),
                    ROUTE_NOT_FOUND);
    memset(&req, 0, sizeof req);
    strcpy(req.raw_path, "/api/pems/records/A%2");
    CU_ASSERT_EQUAL(router_match("GET", "/api/pems/records/A", &req, &rt, allow, sizeof allow),
                    ROUTE_NOT_FOUND);
    /* without a raw path, the decoded one */
    memset(&req, 0, sizeof req);
    CU_ASSERT_EQUAL(router_match("GET", "/api/pems/records/X-1", &req, &rt, allow, sizeof allow),
                    ROUTE_FOUND);
    CU_ASSERT_STRING_EQUAL(http_param(&req, "pfaId"), "X-1");
    /* a route without parameters keeps nginx's normalized path */
    memset(&req, 0, sizeof req);
    strcpy(req.raw_path, "/api/pems//records");
    CU_ASSERT_EQUAL(router_match("GET", "/api/pems/records", &req, &rt, allow, sizeof allow),
                    ROUTE_FOUND);
    CU_ASSERT_STRING_EQUAL(rt->pattern, "/api/pems/records");
}

int main(void)
{
    static const struct unit_test tests[] = {
        { "HEAD", test_head },
        { "loopback routes are exact", test_loopback_exact },
        { "static routes", test_static_routes },
        { "route params", test_params },
        { "404 and 405", test_not_found_and_method },
        { "permissions", test_permissions },
        { "a param longer than its buffer matches nothing", test_long_param },
        { "params from the path as written", test_raw_path },
    };
    return UNIT_RUN("router", NULL, tests);
}
