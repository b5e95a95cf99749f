/* The request parameter parser: query strings, ISO dates, UTF-8, JSON depth, content types,
 * ETags, address lists (addr_allow), and the declared query checks of a route. */
#include "addr_allow.h"
#include "api_params.h"
#include "fuzz.h"

static const char *const statuses[] = { "pending_sync", "queued", "synced", NULL };
static const struct api_field fields[] = {
    { "organizationId", AF_UUID, true, 0, 0, NULL },
    { "status", AF_ENUM, false, 0, 0, statuses },
    { "pfaId", AF_STRING, false, 1, 200, NULL },
    { "limit", AF_INT, false, 1, 500, NULL },
    { "from", AF_DATETIME, false, 0, 0, NULL },
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_str(data, size);
    struct query_params q;
    if (api_query_parse(s, &q) == 0) {
        /* what the parser lets through is UTF-8, names and values alike */
        for (size_t i = 0; i < q.n; i++)
            if (!api_utf8_valid(q.name[i], strlen(q.name[i])) ||
                !api_utf8_valid(q.value[i], strlen(q.value[i])))
                abort();
        json_t *details = json_array();
        api_check_query(&q, fields, sizeof fields / sizeof fields[0], details);
        api_query_get(&q, "limit");
        json_decref(details);
    }
    bool date_only;
    long long ms;
    api_iso_datetime_parse(s, &date_only, &ms);
    api_utf8_valid((const char *)data, size);
    api_json_depth((const char *)data, size);
    api_content_type_is_json(s);
    struct addr_allow loopback, list;
    if (addr_allow_parse(&loopback, ADDR_ALLOW_LOOPBACK, NULL, 0) == 0) {
        addr_allow_match(&loopback, s);
        addr_allow_free(&loopback);
    }
    if (addr_allow_parse(&list, s, NULL, 0) == 0) {
        addr_allow_match(&list, "127.0.0.1");
        addr_allow_match(&list, "::ffff:10.1.2.3");
        addr_allow_free(&list);
    }
    char etag[API_ETAG_SIZE];
    api_etag_of((const char *)data, size, etag);
    api_etag_matches(s, etag);
    free(s);
    return 0;
}
