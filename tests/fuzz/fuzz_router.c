/* The route table: any method and path. Input: method 0xff path. */
#include "fuzz.h"
#include "router.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *method, *path;
    fuzz_split(data, size, &method, &path);
    struct http_request req;
    memset(&req, 0, sizeof req);
    req.method = method;
    req.query = "";
    snprintf(req.path, sizeof req.path, "%s", path);
    const struct route *rt = NULL;
    char allow[128];
    enum route_match m = router_match(method, req.path, &req, &rt, allow, sizeof allow);
    if (m == ROUTE_FOUND) {
        /* a route found has every :param of its pattern, each non-empty and one segment */
        size_t want = 0;
        if (!rt)
            abort();
        for (const char *c = strchr(rt->pattern, ':'); c; c = strchr(c + 1, ':'))
            want++;
        if (req.nparams != want)
            abort();
        for (size_t i = 0; i < req.nparams; i++)
            if (!req.param_name[i] || !req.param_value[i][0] || strchr(req.param_value[i], '/'))
                abort();
    }
    free(method);
    free(path);
    return 0;
}
