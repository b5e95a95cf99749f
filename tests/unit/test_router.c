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
    CU_ASSERT_TRUE(rt->auth);
    CU_ASSERT_EQUAL(router_match("POST", "/api/pems/write-sync", &req, &rt, allow, sizeof allow),
                    ROUTE_FOUND);
    CU_ASSERT_EQUAL(rt->perm, PERM_SYNC);
    CU_ASSERT_EQUAL(router_match("GET", "/api/pems/health", &req, &rt, allow, sizeof allow),
                    ROUTE_FOUND);
    CU_ASSERT_FALSE(rt->auth);
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

static void test_permissions(void)
{
    CU_ASSERT_EQUAL(auth_perm_parse("{Read,Sync}"), PERM_READ | PERM_SYNC);
    CU_ASSERT_EQUAL(auth_perm_parse("{}"), PERM_NONE);
    CU_ASSERT_EQUAL(auth_perm_parse(NULL), PERM_NONE);
    CU_ASSERT_EQUAL(auth_perm_parse("{Reader,Writes}"), PERM_NONE);
    CU_ASSERT_TRUE(auth_perm_allows(PERM_READ | PERM_SYNC, PERM_SYNC));
    CU_ASSERT_FALSE(auth_perm_allows(PERM_READ, PERM_WRITE));
    CU_ASSERT_TRUE(auth_perm_allows(PERM_ADMIN, PERM_WRITE));
    CU_ASSERT_TRUE(auth_perm_allows(auth_perm_parse("{Admin}"), PERM_SYNC));
    CU_ASSERT_FALSE(auth_perm_allows(PERM_NONE, PERM_READ));
}

int main(void)
{
    static const struct unit_test tests[] = {
        { "HEAD", test_head },
        { "static routes", test_static_routes },
        { "route params", test_params },
        { "404 and 405", test_not_found_and_method },
        { "permissions", test_permissions },
    };
    return UNIT_RUN("router", NULL, tests);
}
