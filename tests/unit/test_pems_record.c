#include "pems_record.h"

#include <string.h>

#include "unit.h"

static json_t *J(const char *text)
{
    json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    return j;
}

static int64_t ts(const char *s)
{
    int64_t ms = -2;
    CU_ASSERT_EQUAL(pems_timestamp_parse(s, strlen(s), &ms), 0);
    return ms;
}

static void test_timestamps(void)
{
    int64_t ms;
    CU_ASSERT_EQUAL(ts("1970-01-01T00:00:00Z"), 0);
    CU_ASSERT_EQUAL(ts("2026-03-01T12:30:05.123Z"), 1772368205123LL);
    CU_ASSERT_EQUAL(ts("2026-03-01T12:30:05.123456789Z"), 1772368205123LL);
    CU_ASSERT_EQUAL(ts("2026-03-01T14:30:05+02:00"), 1772368205000LL);
    CU_ASSERT_EQUAL(ts("2026-03-01T07:30:05-0500"), 1772368205000LL);
    CU_ASSERT_EQUAL(ts("2026-03-01T12:30Z"), 1772368200000LL);
    static const char *const bad[] = {
        "", "garbage", "2026-03-01", "2026-03-01T12:30:05", "2026-02-30T00:00:00Z",
        "2026-13-01T00:00:00Z", "2026-03-01T24:00:00Z", "2026-03-01T12:60:00Z",
        "1969-12-31T23:59:59Z", "2026-03-01T12:30:05.Z", "2026-03-01T12:30:05Zjunk",
        "2026-03-01T12:30:05+2:00", "+2026-03-01T12:30:05Z", "2026-03-01T12:30:05.1234567890Z",
        "1970-01-01T00:00:00+01:00",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CU_ASSERT_EQUAL(pems_timestamp_parse(bad[i], strlen(bad[i]), &ms), -1);
    char out[32];
    pems_timestamp_format(1772368205123LL, out, sizeof out);
    CU_ASSERT_STRING_EQUAL(out, "2026-03-01T12:30:05.123Z");
    pems_timestamp_format(ts("2000-02-29T23:59:59.999Z"), out, sizeof out);
    CU_ASSERT_STRING_EQUAL(out, "2000-02-29T23:59:59.999Z");
    pems_timestamp_format(ts("9999-12-31T23:59:59Z"), out, sizeof out);
    CU_ASSERT_STRING_EQUAL(out, "9999-12-31T23:59:59.000Z");
}

static void test_versions(void)
{
    int64_t v = -1;
    static const struct { const char *text; int64_t want; } good[] = {
        { "0", 0 }, { "2147483647", 2147483647LL }, { "2147483648", 2147483648LL },
        { "4294967298", 4294967298LL }, { "9007199254740993", 9007199254740993LL },
        { "9223372036854775807", INT64_MAX },
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        json_t *j = J(good[i].text);
        CU_ASSERT_EQUAL(pems_version_parse(j, &v), 0);
        CU_ASSERT_EQUAL(v, good[i].want);
        json_decref(j);
    }
    static const char *const bad[] = { "-1", "-9223372036854775808", "1.0", "1.5", "4294967298.0",
                                       "1e3", "\"3\"", "null", "true", "[1]" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *j = J(bad[i]);
        v = 77;
        CU_ASSERT_EQUAL(pems_version_parse(j, &v), -1);
        CU_ASSERT_EQUAL(v, 77);
        json_decref(j);
    }
    CU_ASSERT_EQUAL(pems_version_parse(NULL, &v), -1);
}

/* A response body: an integer beyond 64 bits makes its record a reject, not the body garbage. */
static void test_response_decode(void)
{
    static const char body[] = "{\"records\":["
        "{\"pfaId\":\"A\",\"version\":9223372036854775808,\"n\":\"9223372036854775808 \\\" 1\"},"
        "{\"pfaId\":\"B\",\"version\":9223372036854775807,\"r\":1.5e3,\"x\":-99999999999999999999}]}";
    json_t *j = pems_json_loadb(body, strlen(body));
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    json_t *recs = json_object_get(j, "records");
    json_t *a = json_array_get(recs, 0), *b = json_array_get(recs, 1);
    CU_ASSERT_TRUE(json_is_real(json_object_get(a, "version")));
    CU_ASSERT_DOUBLE_EQUAL(json_real_value(json_object_get(a, "version")), 9223372036854775808.0, 1);
    /* strings are left as they are */
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(a, "n")), "9223372036854775808 \" 1");
    CU_ASSERT_TRUE(json_is_integer(json_object_get(b, "version")));
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(b, "version")), INT64_MAX);
    CU_ASSERT_DOUBLE_EQUAL(json_real_value(json_object_get(b, "r")), 1500.0, 0);
    CU_ASSERT_TRUE(json_is_real(json_object_get(b, "x")));
    int64_t v;
    CU_ASSERT_EQUAL(pems_version_parse(json_object_get(a, "version"), &v), -1);
    json_decref(j);
    /* what json_loadb takes is taken the same; what is no JSON stays no JSON */
    static const char plain[] = "{\"version\":4294967298,\"v\":[1,2.5,-3]}";
    j = pems_json_loadb(plain, strlen(plain));
    json_t *k = json_loads(plain, 0, NULL);
    CU_ASSERT_TRUE(json_equal(j, k));
    json_decref(j);
    json_decref(k);
    static const char *const garbage[] = { "{\"a\":1", "{\"a\":99999999999999999999", "nope",
                                           "{\"a\":1.99999999999999999999e99999}",
                                           "{\"a\":1e99999}" };
    for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++)
        CU_ASSERT_PTR_NULL(pems_json_loadb(garbage[i], strlen(garbage[i])));
}

static enum pems_reject check(const char *text, int64_t trust_until, char *why)
{
    json_t *j = J(text);
    struct pems_record r;
    enum pems_reject rj = pems_record_check(j, PEMS_NEED_UPDATED_AT, trust_until, &r, why, 200);
    pems_record_clear(&r);
    json_decref(j);
    return rj;
}

#define GOOD_DATA "{\"category\":\"Cranes\",\"source\":\"Rental\",\"dor\":\"BEO\",\"monthlyRate\":5}"

static void test_records(void)
{
    char why[200];
    int64_t until = ts("2026-03-01T12:00:00Z");
    CU_ASSERT_EQUAL(check("{\"pfaId\":\"A\",\"version\":1,\"updatedAt\":\"2026-03-01T11:00:00Z\","
                          "\"data\":" GOOD_DATA "}", until, why), PEMS_REJECT_NONE);
    static const char *const invalid[] = {
        "{\"pfaId\":\"A\",\"version\":1,\"updatedAt\":\"2026-03-01T11:00:00Z\",\"data\":"
        "{\"category\":5,\"source\":\"Rental\",\"dor\":\"BEO\"}}",
        "{\"pfaId\":\"A\",\"version\":1,\"updatedAt\":\"2026-03-01T11:00:00Z\",\"data\":"
        "{\"category\":\"C\",\"source\":[\"Rental\"],\"dor\":\"BEO\"}}",
        "{\"pfaId\":\"A\",\"version\":1,\"updatedAt\":\"2026-03-01T11:00:00Z\",\"data\":"
        "{\"category\":\"C\",\"source\":\"Rental\",\"dor\":\"BEO\",\"purchasePrice\":-5}}",
        "{\"pfaId\":\"A\",\"version\":1,\"updatedAt\":\"2026-03-01T11:00:00Z\",\"data\":"
        "{\"category\":\"C\",\"source\":\"Rental\",\"dor\":\"BEO\",\"monthlyRate\":\"abc\"}}",
        "{\"pfaId\":\"A\",\"version\":1,\"updatedAt\":\"2026-03-01T11:00:00Z\",\"data\":"
        "{\"model\":\"only\"}}",
        "{\"pfaId\":\"A\",\"version\":-1,\"updatedAt\":\"2026-03-01T11:00:00Z\",\"data\":"
        GOOD_DATA "}",
        "{\"pfaId\":\"A\",\"version\":4294967298.0,\"updatedAt\":\"2026-03-01T11:00:00Z\",\"data\":"
        GOOD_DATA "}",
        "{\"pfaId\":\"A\",\"version\":9223372036854775808.0,\"updatedAt\":\"2026-03-01T11:00:00Z\","
        "\"data\":" GOOD_DATA "}",
        "{\"pfaId\":\"A\",\"version\":1,\"updatedAt\":\"yesterday\",\"data\":" GOOD_DATA "}",
        "{\"pfaId\":\"A\",\"version\":1,\"data\":" GOOD_DATA "}",
        "{\"pfaId\":\"A\\u0001\",\"version\":1,\"updatedAt\":\"2026-03-01T11:00:00Z\",\"data\":"
        GOOD_DATA "}",
        "{\"pfaId\":\"\",\"version\":1,\"updatedAt\":\"2026-03-01T11:00:00Z\",\"data\":" GOOD_DATA "}",
        "{\"pfaId\":\"A\",\"version\":1,\"updatedAt\":\"2026-03-01T11:00:00Z\",\"deleted\":\"yes\"}",
        "[1,2]",
    };
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        CU_ASSERT_EQUAL(check(invalid[i], until, why), PEMS_REJECT_INVALID);
        CU_ASSERT_NOT_EQUAL(why[0], '\0');
    }
    /* versions beyond 32 bits are PEMS's to use */
    CU_ASSERT_EQUAL(check("{\"pfaId\":\"A\",\"version\":4294967298,\"updatedAt\":\"2026-03-01T11:00:00Z\","
                          "\"data\":" GOOD_DATA "}", until, why), PEMS_REJECT_NONE);
    /* an updatedAt from the future: the record is PEMS's and taken, its time is not */
    CU_ASSERT_EQUAL(check("{\"pfaId\":\"A\",\"version\":1,\"updatedAt\":\"2999-01-01T00:00:00Z\","
                          "\"data\":" GOOD_DATA "}", until, why), PEMS_REJECT_NONE);
    {
        json_t *f = J("{\"pfaId\":\"A\",\"version\":1,\"updatedAt\":\"2999-01-01T00:00:00Z\","
                      "\"data\":" GOOD_DATA "}");
        struct pems_record fr;
        CU_ASSERT_EQUAL(pems_record_check(f, PEMS_NEED_UPDATED_AT, until, &fr, why, sizeof why),
                        PEMS_REJECT_NONE);
        CU_ASSERT_EQUAL(fr.updated_at_ms, -1);
        CU_ASSERT_EQUAL(fr.untrusted_updated_at_ms, ts("2999-01-01T00:00:00Z"));
        json_t *fj = pems_record_json(&fr);
        CU_ASSERT_PTR_NULL(json_object_get(fj, "updatedAt"));   /* never stored as PEMS's time */
        CU_ASSERT_PTR_NOT_NULL(json_object_get(fj, "data"));
        json_decref(fj);
        pems_record_clear(&fr);
        json_decref(f);
    }
    /* deleted records need no data; unknown fields are PEMS's own and kept */
    CU_ASSERT_EQUAL(check("{\"pfaId\":\"A\",\"version\":2,\"updatedAt\":\"2026-03-01T11:00:00Z\","
                          "\"deleted\":true}", until, why), PEMS_REJECT_NONE);
    json_t *j = J("{\"pfaId\":\"A\",\"version\":9007199254740993,\"updatedAt\":\"2026-03-01T11:00:00+01:00\","
                  "\"data\":{\"category\":\" Cranes \",\"source\":\"Rental\",\"dor\":\"BEO\","
                  "\"monthlyRate\":\"12000\",\"pemsOwn\":[1]}}");
    struct pems_record r;
    CU_ASSERT_EQUAL(pems_record_check(j, PEMS_NEED_UPDATED_AT, until, &r, why, sizeof why),
                    PEMS_REJECT_NONE);
    json_t *out = pems_record_json(&r);
    char *s = json_dumps(out, JSON_SORT_KEYS | JSON_COMPACT);
    CU_ASSERT_STRING_EQUAL(s, "{\"data\":{\"category\":\"Cranes\",\"dor\":\"BEO\","
                              "\"monthlyRate\":12000,\"pemsOwn\":[1],\"source\":\"Rental\"},"
                              "\"pfaId\":\"A\",\"updatedAt\":\"2026-03-01T10:00:00.000Z\","
                              "\"version\":9007199254740993}");
    free(s);
    json_decref(out);
    pems_record_clear(&r);
    json_decref(j);
}

/* data over 64 KiB as JSON is refused as record_too_large, whatever its fields */
static void test_record_too_large(void)
{
    char why[200];
    json_t *data = json_pack("{s:s, s:s, s:s, s:i}", "category", "Cranes", "source", "Rental",
                             "dor", "BEO", "monthlyRate", 5);
    json_t *rec = json_pack("{s:s, s:i, s:s, s:O}", "pfaId", "A", "version", 1, "updatedAt",
                            "2026-03-01T11:00:00Z", "data", data);
    struct pems_record r;
    /* many small unknown fields, just over the limit */
    for (int i = 0; json_dumpb(data, NULL, 0, JSON_COMPACT) <= PEMS_RECORD_DATA_MAX; i++) {
        char k[16];
        snprintf(k, sizeof k, "f%d", i);
        json_object_set_new(data, k, json_integer(i));
    }
    json_object_set(rec, "data", data);
    CU_ASSERT_EQUAL(pems_record_check(rec, PEMS_NEED_UPDATED_AT, 0, &r, why, sizeof why),
                    PEMS_REJECT_TOO_LARGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "more than 65536"));
    CU_ASSERT_STRING_EQUAL(r.pfa_id, "A");
    pems_record_clear(&r);
    /* one field fewer: at or under the limit, taken */
    json_object_del(data, "f0");
    if (json_dumpb(data, NULL, 0, JSON_COMPACT) <= PEMS_RECORD_DATA_MAX) {
        CU_ASSERT_EQUAL(pems_record_check(rec, PEMS_NEED_UPDATED_AT, 0, &r, why, sizeof why),
                        PEMS_REJECT_NONE);
        pems_record_clear(&r);
    }
    /* one huge string */
    char *big = malloc(70000);
    memset(big, 'x', 69999);
    big[69999] = '\0';
    json_object_set_new(rec, "data", json_pack("{s:s, s:s, s:s, s:i, s:s}", "category", "C",
                                               "source", "Rental", "dor", "BEO", "monthlyRate", 5,
                                               "model", big));
    CU_ASSERT_EQUAL(pems_record_check(rec, PEMS_NEED_UPDATED_AT, 0, &r, why, sizeof why),
                    PEMS_REJECT_TOO_LARGE);
    CU_ASSERT_STRING_EQUAL(pems_reject_name(PEMS_REJECT_TOO_LARGE), "record_too_large");
    pems_record_clear(&r);
    free(big);
    json_decref(data);
    json_decref(rec);
}

static void test_pages(void)
{
    char why[200];
    struct pems_page pg;
    int64_t until = ts("2026-03-01T12:00:00Z");
    json_t *body = J("{\"records\":["
        "{\"pfaId\":\"A\",\"version\":1,\"updatedAt\":\"2026-03-01T10:00:00Z\",\"data\":" GOOD_DATA "},"
        "{\"pfaId\":\"B\",\"version\":1,\"updatedAt\":\"2026-03-01T11:00:00Z\",\"data\":{\"category\":5}},"
        "{\"pfaId\":\"C\",\"version\":1,\"updatedAt\":\"2999-01-01T00:00:00Z\",\"data\":" GOOD_DATA "},"
        "{\"pfaId\":\"D\",\"version\":1,\"updatedAt\":\"garbage\",\"data\":" GOOD_DATA "}"
        "],\"nextCursor\":7}");
    CU_ASSERT_EQUAL_FATAL(pems_page_parse(body, until, &pg, why, sizeof why), 0);
    CU_ASSERT_EQUAL(pg.received, 4);
    CU_ASSERT_EQUAL(json_array_size(pg.records), 2);   /* A, and C with its time untrusted */
    CU_ASSERT_EQUAL(json_array_size(pg.rejects), 2);
    /* B's data is wrong but its time is sound: the cursor moves past it, never to C's */
    CU_ASSERT_EQUAL(pg.newest_ms, ts("2026-03-01T11:00:00Z"));
    CU_ASSERT_STRING_EQUAL(pg.next_cursor, "7");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json_array_get(pg.records, 1), "pfaId")),
                           "C");
    CU_ASSERT_EQUAL(json_array_size(pg.untrusted), 1);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json_array_get(pg.untrusted, 0), "pfaId")),
                           "C");
    pems_page_clear(&pg);
    json_decref(body);
    static const char *const bad[] = { "{}", "{\"records\":{}}", "[]",
                                       "{\"records\":[],\"nextCursor\":[1]}" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        body = J(bad[i]);
        CU_ASSERT_EQUAL(pems_page_parse(body, until, &pg, why, sizeof why), -1);
        json_decref(body);
    }
    body = J("{\"records\":[],\"nextCursor\":null}");
    CU_ASSERT_EQUAL(pems_page_parse(body, until, &pg, why, sizeof why), 0);
    CU_ASSERT_PTR_NULL(pg.next_cursor);
    CU_ASSERT_EQUAL(pg.newest_ms, -1);
    pems_page_clear(&pg);
    json_decref(body);
}

int main(void)
{
    static const struct unit_test tests[] = {
        { "timestamps", test_timestamps },
        { "versions", test_versions },
        { "response decode", test_response_decode },
        { "records", test_records },
        { "pages", test_pages },
        { "record too large", test_record_too_large },
    };
    return UNIT_RUN("pems_record", NULL, tests);
}
