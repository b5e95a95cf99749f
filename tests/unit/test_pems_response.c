/* pems_response_parse: what an HTTP answer from PEMS means to the worker (src/worker/README.md). */
#include "pems_client.h"
#include "text.h"

#include <string.h>
#include <time.h>

#include "unit.h"

static struct pems_response parse(long status, const char *retry_after, const char *body)
{
    struct pems_response r;
    memset(&r, 0, sizeof r);
    r.retry_after_s = -1;
    pems_response_parse(status, retry_after, body, body ? strlen(body) : 0,
                        unit_utc("2015-10-21T07:27:00Z"), &r);
    return r;
}

static void test_success(void)
{
    struct pems_response r = parse(200, NULL, "{\"pfaId\":\"P1\",\"version\":2,\"data\":{}}");
    CU_ASSERT_EQUAL(r.outcome, PEMS_OK);
    CU_ASSERT_EQUAL(r.http_status, 200);
    CU_ASSERT_TRUE(json_is_object(r.body));
    CU_ASSERT_EQUAL(r.retry_after_s, -1);
    pems_response_clear(&r);
    /* a write acknowledged without a body is applied all the same */
    r = parse(204, NULL, NULL);
    CU_ASSERT_EQUAL(r.outcome, PEMS_OK);
    CU_ASSERT_PTR_NULL(r.body);
    /* a 2xx whose body is not a JSON object is not trusted as a success */
    r = parse(200, NULL, "<html>ok</html>");
    CU_ASSERT_EQUAL(r.outcome, PEMS_RETRYABLE);
    CU_ASSERT_PTR_NULL(r.body);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.error, "not a JSON object"));
    r = parse(200, NULL, "[1,2]");
    CU_ASSERT_EQUAL(r.outcome, PEMS_RETRYABLE);
    pems_response_clear(&r);
}

static void test_statuses(void)
{
    static const struct { long status; enum pems_outcome outcome; } cases[] = {
        { 409, PEMS_CONFLICT }, { 429, PEMS_RATE_LIMITED }, { 500, PEMS_RETRYABLE },
        { 503, PEMS_RETRYABLE }, { 408, PEMS_RETRYABLE }, { 400, PEMS_PERMANENT },
        { 401, PEMS_PERMANENT }, { 404, PEMS_PERMANENT }, { 302, PEMS_PERMANENT },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct pems_response r = parse(cases[i].status, NULL, "{\"error\":\"nope\"}");
        CU_ASSERT_EQUAL(r.outcome, cases[i].outcome);
        CU_ASSERT_EQUAL(r.http_status, cases[i].status);
        pems_response_clear(&r);
    }
}

static void test_error_text(void)
{
    struct pems_response r = parse(400, NULL, "{\"error\":\"bad version\"}");
    CU_ASSERT_STRING_EQUAL(r.error, "PEMS 400: bad version");
    pems_response_clear(&r);
    r = parse(422, NULL, "{\"error\":{\"message\":\"nested\"}}");
    CU_ASSERT_STRING_EQUAL(r.error, "PEMS 422: nested");
    pems_response_clear(&r);
    /* a raw body, kept to one line */
    r = parse(502, NULL, "bad\ngateway");
    CU_ASSERT_STRING_EQUAL(r.error, "PEMS 502: bad gateway");
    CU_ASSERT_PTR_NULL(r.body);
    r = parse(500, NULL, NULL);
    CU_ASSERT_STRING_EQUAL(r.error, "PEMS 500");
}

/* PEMS's text in any bytes: valid UTF-8, cut at a character boundary, never dropped */
static void test_error_text_any_bytes(void)
{
    char body[512] = "{\"error\":{\"message\":\"a";
    for (int i = 0; i < 150; i++)
        strcat(body, "\xc3\xa9");
    strcat(body, "\"}}");
    struct pems_response r = parse(503, NULL, body);
    CU_ASSERT_TRUE(text_utf8_valid(r.error, strlen(r.error)));
    CU_ASSERT_EQUAL(strncmp(r.error, "PEMS 503: a\xc3\xa9\xc3\xa9", 15), 0);
    CU_ASSERT_TRUE(strlen(r.error) > 200);   /* the text is kept, up to the budget */
    pems_response_clear(&r);
    /* a raw proxy page that is not UTF-8, NUL inside */
    static const char raw[] = "\xff\xfeP\0R\xc3";
    memset(&r, 0, sizeof r);
    pems_response_parse(502, NULL, raw, sizeof raw - 1, 0, &r);
    CU_ASSERT_STRING_EQUAL(r.error, "PEMS 502: \xef\xbf\xbd\xef\xbf\xbdP\xef\xbf\xbdR\xef\xbf\xbd");
    pems_response_clear(&r);
    /* a long raw body fills the budget, cut at a character */
    char big[1200];
    for (int i = 0; i < 400; i++)
        memcpy(big + 3 * i, "\xe2\x82\xac", 3);
    memset(&r, 0, sizeof r);
    pems_response_parse(500, NULL, big, sizeof big, 0, &r);
    CU_ASSERT_TRUE(text_utf8_valid(r.error, strlen(r.error)));
    CU_ASSERT_EQUAL(strlen(r.error), strlen("PEMS 500: ") + 3 * ((sizeof r.error - 11) / 3));
    pems_response_clear(&r);
}

static void test_retry_after(void)
{
    struct pems_response r = parse(429, "7", "{}");
    CU_ASSERT_EQUAL(r.outcome, PEMS_RATE_LIMITED);
    CU_ASSERT_EQUAL(r.retry_after_s, 7);
    pems_response_clear(&r);
    /* the HTTP-date form, read against the clock it is given */
    r = parse(503, "Wed, 21 Oct 2015 07:28:00 GMT", NULL);
    CU_ASSERT_EQUAL(r.outcome, PEMS_RETRYABLE);
    CU_ASSERT_EQUAL(r.retry_after_s, 60);
    r = parse(429, "soon", NULL);
    CU_ASSERT_EQUAL(r.retry_after_s, -1);
    r = parse(429, "", NULL);
    CU_ASSERT_EQUAL(r.retry_after_s, -1);
}

int main(void)
{
    static const struct unit_test tests[] = {
        { "2xx", test_success },
        { "status to outcome", test_statuses },
        { "error text", test_error_text },
        { "error text in any bytes", test_error_text_any_bytes },
        { "Retry-After, both forms", test_retry_after },
    };
    return UNIT_RUN("pems_response", NULL, tests);
}
