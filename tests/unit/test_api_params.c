#include "unit.h"
#include <string.h>

#include "api_params.h"

static void test_depth(void)
{
    char deep[80];
    memset(deep, '[', 33);
    memset(deep + 33, ']', 33);
    deep[66] = '\0';
    CU_ASSERT_EQUAL(api_json_depth(deep, strlen(deep)), 33);
    CU_ASSERT_EQUAL(api_json_depth(deep + 1, strlen(deep + 1) - 1), 32);
    const char *s = "{\"a\":\"[[[[{{{{\",\"b\":[1,{\"c\":\"\\\"[\"}]}";
    CU_ASSERT_EQUAL(api_json_depth(s, strlen(s)), 3);
    CU_ASSERT_EQUAL(api_json_depth("1", 1), 0);
}

static void test_utf8(void)
{
    CU_ASSERT_TRUE(api_utf8_valid("plain", 5));
    CU_ASSERT_TRUE(api_utf8_valid("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14));
    CU_ASSERT_FALSE(api_utf8_valid("\xc3", 1));
    CU_ASSERT_FALSE(api_utf8_valid("\xff\xfe", 2));
    CU_ASSERT_FALSE(api_utf8_valid("\xc0\xaf", 2));            /* overlong */
    CU_ASSERT_FALSE(api_utf8_valid("\xed\xa0\x80", 3));        /* surrogate */
    CU_ASSERT_FALSE(api_utf8_valid("\xe2\x82", 2));            /* truncated */
}

static void test_content_type(void)
{
    CU_ASSERT_TRUE(api_content_type_is_json("application/json"));
    CU_ASSERT_TRUE(api_content_type_is_json("application/json; charset=utf-8"));
    CU_ASSERT_TRUE(api_content_type_is_json("Application/JSON;charset=UTF-8"));
    CU_ASSERT_FALSE(api_content_type_is_json("application/json; charset=latin1"));
    CU_ASSERT_FALSE(api_content_type_is_json("text/plain"));
    CU_ASSERT_FALSE(api_content_type_is_json("application/jsonx"));
    CU_ASSERT_FALSE(api_content_type_is_json(NULL));
}

static void test_dates(void)
{
    bool date_only = false;
    CU_ASSERT_TRUE(api_iso_datetime_valid("2024-02-29", &date_only));
    CU_ASSERT_TRUE(date_only);
    CU_ASSERT_FALSE(api_iso_datetime_valid("2023-02-29", NULL));
    CU_ASSERT_FALSE(api_iso_datetime_valid("2024-13-01", NULL));
    CU_ASSERT_FALSE(api_iso_datetime_valid("yesterday", NULL));
    CU_ASSERT_TRUE(api_iso_datetime_valid("2024-05-01T10:20:30Z", &date_only));
    CU_ASSERT_FALSE(date_only);
    CU_ASSERT_TRUE(api_iso_datetime_valid("2024-05-01T10:20:30.123+02:00", NULL));
    CU_ASSERT_TRUE(api_iso_datetime_valid("2024-05-01T10:20Z", NULL));
    CU_ASSERT_FALSE(api_iso_datetime_valid("2024-05-01T25:00:00Z", NULL));
    CU_ASSERT_TRUE(api_iso_datetime_valid("2024-05-01T10:20:30", NULL));  /* no zone: UTC */
    CU_ASSERT_FALSE(api_iso_datetime_valid("2024-05-01T10:20:30 ", NULL));
    CU_ASSERT_FALSE(api_iso_datetime_valid("2024-05-01X", NULL));
}

static void test_query(void)
{
    struct query_params q;
    CU_ASSERT_EQUAL(api_query_parse("a=1&b=hello%20world&c=x+y&&d", &q), 0);
    CU_ASSERT_EQUAL(q.n, 4);
    CU_ASSERT_STRING_EQUAL(api_query_get(&q, "a"), "1");
    CU_ASSERT_STRING_EQUAL(api_query_get(&q, "b"), "hello world");
    CU_ASSERT_STRING_EQUAL(api_query_get(&q, "c"), "x y");
    CU_ASSERT_STRING_EQUAL(api_query_get(&q, "d"), "");
    CU_ASSERT_PTR_NULL(api_query_get(&q, "e"));
    CU_ASSERT_EQUAL(api_query_parse("a=%zz", &q), -1);
    CU_ASSERT_EQUAL(api_query_parse("a=%4", &q), -1);
    CU_ASSERT_EQUAL(api_query_parse("a=%00", &q), -1);
    CU_ASSERT_EQUAL(api_query_parse("", &q), 0);
    CU_ASSERT_EQUAL(q.n, 0);
}

static const char *const statuses[] = { "unresolved", "resolved", NULL };
static const struct api_field qfields[] = {
    { "organizationId", AF_UUID, true, 0, 0, NULL },
    { "status", AF_ENUM, false, 0, 0, statuses },
    { "limit", AF_INT, false, 1, 500, NULL },
    { "offset", AF_INT, false, 0, 1000000, NULL },
    { "startDate", AF_DATETIME, false, 0, 0, NULL },
};

static int check(const char *qs, json_t **details_out)
{
    struct query_params q;
    CU_ASSERT_EQUAL_FATAL(api_query_parse(qs, &q), 0);
    json_t *details = json_array();
    int n = api_check_query(&q, qfields, sizeof qfields / sizeof qfields[0], details);
    CU_ASSERT_EQUAL(n, (int)json_array_size(details));
    if (details_out)
        *details_out = details;
    else
        json_decref(details);
    return n;
}

static void test_check_query(void)
{
    const char *org = "organizationId=0b6f3f0e-8a55-4a0c-9d55-6f8d2f1c3b7a";
    char qs[256];
    CU_ASSERT_EQUAL(check(org, NULL), 0);
    snprintf(qs, sizeof qs, "%s&limit=500&offset=0&status=resolved&startDate=2024-01-31", org);
    CU_ASSERT_EQUAL(check(qs, NULL), 0);
    json_t *d = NULL;
    CU_ASSERT_EQUAL(check("limit=5", &d), 1);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json_array_get(d, 0), "field")),
                           "organizationId");
    json_decref(d);
    snprintf(qs, sizeof qs, "%s&limit=501", org);
    CU_ASSERT_EQUAL(check(qs, NULL), 1);
    snprintf(qs, sizeof qs, "%s&offset=-1", org);
    CU_ASSERT_EQUAL(check(qs, NULL), 1);
    snprintf(qs, sizeof qs, "%s&status=open", org);
    CU_ASSERT_EQUAL(check(qs, NULL), 1);
    snprintf(qs, sizeof qs, "%s&startDate=2024-02-30", org);
    CU_ASSERT_EQUAL(check(qs, NULL), 1);
    snprintf(qs, sizeof qs, "%s&bogus=1", org);
    CU_ASSERT_EQUAL(check(qs, &d), 1);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json_array_get(d, 0), "field")),
                           "bogus");
    json_decref(d);
    snprintf(qs, sizeof qs, "%s&limit=5&limit=6", org);
    CU_ASSERT_EQUAL(check(qs, NULL), 1);
    CU_ASSERT_EQUAL(check("organizationId=nope&limit=0", NULL), 2);
}

static const char *const ops[] = { "update", "delete", NULL };
static const struct api_field bfields[] = {
    { "organizationId", AF_UUID, true, 0, 0, NULL },
    { "operation", AF_ENUM, true, 0, 0, ops },
    { "priority", AF_INT, false, 0, 10, NULL },
    { "delta", AF_OBJECT, false, 0, 0, NULL },
    { "ids", AF_UUID_ARRAY, false, 1, 3, NULL },
};

static int check_body(const char *text)
{
    json_t *body = json_loads(text, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(body);
    json_t *details = json_array();
    int n = api_check_body(body, bfields, sizeof bfields / sizeof bfields[0], details);
    CU_ASSERT_EQUAL(n, (int)json_array_size(details));
    json_decref(details);
    json_decref(body);
    return n;
}

static void test_check_body(void)
{
    const char *ok = "{\"organizationId\":\"0b6f3f0e-8a55-4a0c-9d55-6f8d2f1c3b7a\","
                     "\"operation\":\"update\",\"priority\":10,\"delta\":{},"
                     "\"ids\":[\"0b6f3f0e-8a55-4a0c-9d55-6f8d2f1c3b7a\"]}";
    CU_ASSERT_EQUAL(check_body(ok), 0);
    CU_ASSERT_EQUAL(check_body("{}"), 2);
    CU_ASSERT_EQUAL(check_body("{\"organizationId\":null,\"operation\":\"update\"}"), 1);
    CU_ASSERT_EQUAL(check_body("{\"organizationId\":\"0b6f3f0e-8a55-4a0c-9d55-6f8d2f1c3b7a\","
                               "\"operation\":\"upsert\",\"priority\":11,\"delta\":[],"
                               "\"ids\":[],\"extra\":1}"),
                    5);
    CU_ASSERT_EQUAL(check_body("{\"organizationId\":\"0b6f3f0e-8a55-4a0c-9d55-6f8d2f1c3b7a\","
                               "\"operation\":\"delete\",\"priority\":\"5\",\"ids\":[\"x\"]}"),
                    2);
    CU_ASSERT_EQUAL(check_body("{\"organizationId\":\"0b6f3f0e-8a55-4a0c-9d55-6f8d2f1c3b7a\","
                               "\"operation\":\"delete\",\"priority\":5.0}"),
                    1);
    /* null: wrong type for an optional int, absent for an optional object */
    CU_ASSERT_EQUAL(check_body("{\"organizationId\":\"0b6f3f0e-8a55-4a0c-9d55-6f8d2f1c3b7a\","
                               "\"operation\":\"delete\",\"priority\":null,\"delta\":null}"),
                    1);
}

static void test_datetime_parse(void)
{
    long long ms = 0;
    bool date_only = false;
    CU_ASSERT_TRUE(api_iso_datetime_parse("1970-01-01", &date_only, &ms));
    CU_ASSERT_TRUE(date_only);
    CU_ASSERT_EQUAL(ms, 0);
    CU_ASSERT_TRUE(api_iso_datetime_parse("2026-01-01T10:00:00.250Z", &date_only, &ms));
    CU_ASSERT_FALSE(date_only);
    CU_ASSERT_EQUAL(ms, 1767261600250LL);
    CU_ASSERT_TRUE(api_iso_datetime_parse("2026-01-01T12:00:00+02:00", NULL, &ms));
    CU_ASSERT_EQUAL(ms, 1767261600000LL);
    CU_ASSERT_TRUE(api_iso_datetime_parse("2026-01-01T08:30-01:30", NULL, &ms));
    CU_ASSERT_EQUAL(ms, 1767261600000LL);
    CU_ASSERT_TRUE(api_iso_datetime_parse("1969-12-31T23:59:59Z", NULL, &ms));
    CU_ASSERT_EQUAL(ms, -1000);
    CU_ASSERT_FALSE(api_iso_datetime_parse("2026-01-01T10:00:00Zjunk", NULL, &ms));
    CU_ASSERT_FALSE(api_iso_datetime_parse("2026-01-01T", NULL, &ms));
}

static void test_etag(void)
{
    char a[API_ETAG_SIZE], b[API_ETAG_SIZE];
    api_etag_of("{\"a\":1}", 7, a);
    api_etag_of("{\"a\":2}", 7, b);
    CU_ASSERT_EQUAL(a[0], '"');
    CU_ASSERT_EQUAL(a[strlen(a) - 1], '"');
    CU_ASSERT_STRING_NOT_EQUAL(a, b);
    CU_ASSERT_TRUE(api_etag_matches(a, a));
    char list[96], weak[40];
    snprintf(list, sizeof list, "\"x\", W/%s , \"y\"", a);
    snprintf(weak, sizeof weak, "W/%s", a);
    CU_ASSERT_TRUE(api_etag_matches(list, a));
    CU_ASSERT_TRUE(api_etag_matches(weak, a));
    CU_ASSERT_TRUE(api_etag_matches("*", a));
    CU_ASSERT_FALSE(api_etag_matches(b, a));
    CU_ASSERT_FALSE(api_etag_matches(NULL, a));
    CU_ASSERT_FALSE(api_etag_matches("", a));
    CU_ASSERT_FALSE(api_etag_matches("\"unterminated", a));
    CU_ASSERT_FALSE(api_etag_matches("bare", a));
}

static void test_query_utf8(void)
{
    struct query_params q;
    CU_ASSERT_EQUAL(api_query_parse("pfaId=%ff", &q), -1);
    CU_ASSERT_EQUAL(api_query_parse("pfaId=%c3%28", &q), -1);
    CU_ASSERT_EQUAL(api_query_parse("pfaId=%ed%a0%80", &q), -1);
    CU_ASSERT_EQUAL(api_query_parse("%ff=1", &q), -1);
    CU_ASSERT_EQUAL(api_query_parse("pfaId=caf%c3%a9", &q), 0);
    CU_ASSERT_STRING_EQUAL(api_query_get(&q, "pfaId"), "caf\xc3\xa9");
}

static void test_cursor(void)
{
    char c[64], back[64];
    CU_ASSERT_TRUE(api_cursor_encode("PFA-001", c, sizeof c));
    CU_ASSERT_STRING_EQUAL(c, "UEZBLTAwMQ");
    CU_ASSERT_TRUE(api_cursor_decode(c, back, sizeof back));
    CU_ASSERT_STRING_EQUAL(back, "PFA-001");
    const char *ids[] = { "a", "ab", "abc", "A/B ?+", "\xc3\xa9t\xc3\xa9", NULL };
    for (int i = 0; ids[i]; i++) {
        CU_ASSERT_TRUE(api_cursor_encode(ids[i], c, sizeof c));
        CU_ASSERT_PTR_NULL(strpbrk(c, "+/="));
        CU_ASSERT_TRUE(api_cursor_decode(c, back, sizeof back));
        CU_ASSERT_STRING_EQUAL(back, ids[i]);
    }
    CU_ASSERT_FALSE(api_cursor_encode("abcdef", c, 8));
    CU_ASSERT_FALSE(api_cursor_decode("", back, sizeof back));
    CU_ASSERT_FALSE(api_cursor_decode("QQ==", back, sizeof back));   /* padding is not ours */
    CU_ASSERT_FALSE(api_cursor_decode("Q", back, sizeof back));      /* not whole bytes */
    CU_ASSERT_FALSE(api_cursor_decode("QR", back, sizeof back));     /* stray bits */
    CU_ASSERT_FALSE(api_cursor_decode("AA", back, sizeof back));     /* a NUL */
    CU_ASSERT_FALSE(api_cursor_decode("_w", back, sizeof back));     /* 0xff: not UTF-8 */
    CU_ASSERT_FALSE(api_cursor_decode("UEZBLTAwMQ", back, 4));       /* does not fit */
}

static void test_idempotency(void)
{
    CU_ASSERT_TRUE(api_idempotency_key_valid("a"));
    CU_ASSERT_TRUE(api_idempotency_key_valid("save-2026:~!{}"));
    char long_key[257];
    memset(long_key, 'k', 256);
    long_key[256] = '\0';
    CU_ASSERT_FALSE(api_idempotency_key_valid(long_key));
    long_key[255] = '\0';
    CU_ASSERT_TRUE(api_idempotency_key_valid(long_key));
    CU_ASSERT_FALSE(api_idempotency_key_valid(NULL));
    CU_ASSERT_FALSE(api_idempotency_key_valid(""));
    CU_ASSERT_FALSE(api_idempotency_key_valid("a b"));
    CU_ASSERT_FALSE(api_idempotency_key_valid("tab\t"));
    CU_ASSERT_FALSE(api_idempotency_key_valid("caf\xc3\xa9"));
    char a[API_REQUEST_HASH_SIZE], b[API_REQUEST_HASH_SIZE];
    CU_ASSERT_TRUE(api_request_hash("POST", "/p", "{}", 2, a));
    CU_ASSERT_EQUAL(strlen(a), 64);
    CU_ASSERT_TRUE(api_request_hash("POST", "/p", "{}", 2, b));
    CU_ASSERT_STRING_EQUAL(a, b);
    CU_ASSERT_TRUE(api_request_hash("POST", "/q", "{}", 2, b));
    CU_ASSERT_STRING_NOT_EQUAL(a, b);
    CU_ASSERT_TRUE(api_request_hash("POST", "/p", "{ }", 3, b));
    CU_ASSERT_STRING_NOT_EQUAL(a, b);
    /* the parts are delimited: "/p\n" + "x" is not "/p" + "\nx" */
    CU_ASSERT_TRUE(api_request_hash("POST", "/p", NULL, 0, a));
    CU_ASSERT_TRUE(api_request_hash("POSTX", "/p", NULL, 0, b));
    CU_ASSERT_STRING_NOT_EQUAL(a, b);
}

int main(void)
{
    static const struct unit_test tests[] = {
        { "json depth pre-scan", test_depth },
        { "utf-8", test_utf8 },
        { "content type", test_content_type },
        { "iso dates", test_dates },
        { "query parsing", test_query },
        { "query checks", test_check_query },
        { "body checks", test_check_body },
        { "iso date-times to instants", test_datetime_parse },
        { "entity tags", test_etag },
        { "query names and values are UTF-8", test_query_utf8 },
        { "record cursors", test_cursor },
        { "idempotency keys and request hashes", test_idempotency },
    };
    return UNIT_RUN("api_params", NULL, tests);
}
