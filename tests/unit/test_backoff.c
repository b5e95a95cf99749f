#include "backoff.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "unit.h"

static void test_delay_schedule(void)
{
    CU_ASSERT_EQUAL(backoff_delay(1, -1), 5);
    CU_ASSERT_EQUAL(backoff_delay(2, -1), 10);
    CU_ASSERT_EQUAL(backoff_delay(3, -1), 20);
    CU_ASSERT_EQUAL(backoff_delay(4, -1), 20);
    CU_ASSERT_EQUAL(backoff_delay(50, -1), 20);
    CU_ASSERT_EQUAL(backoff_delay(0, -1), 5);
}

static void test_delay_retry_after(void)
{
    /* Retry-After wins only when longer */
    CU_ASSERT_EQUAL(backoff_delay(1, 30), 30);
    CU_ASSERT_EQUAL(backoff_delay(1, 3), 5);
    CU_ASSERT_EQUAL(backoff_delay(2, 10), 10);
    CU_ASSERT_EQUAL(backoff_delay(2, 11), 11);
    CU_ASSERT_EQUAL(backoff_delay(3, 7), 20);
    CU_ASSERT_EQUAL(backoff_delay(3, 0), 20);
    CU_ASSERT_EQUAL(backoff_delay(1, 100000000000L), 86400);
}

static void test_parse_seconds(void)
{
    time_t now = unit_utc("2026-01-15T10:00:00Z");

    CU_ASSERT_EQUAL(retry_after_parse("120", now), 120);
    CU_ASSERT_EQUAL(retry_after_parse("0", now), 0);
    CU_ASSERT_EQUAL(retry_after_parse(" 7 ", now), 7);
    CU_ASSERT_EQUAL(retry_after_parse("007", now), 7);
    CU_ASSERT_EQUAL(retry_after_parse("86400", now), 86400);
    CU_ASSERT_EQUAL(retry_after_parse("86401", now), 86400);
    CU_ASSERT_EQUAL(retry_after_parse("99999999999999999999999999", now), 86400);
}

static void test_parse_garbage(void)
{
    time_t now = unit_utc("2026-01-15T10:00:00Z");

    CU_ASSERT_EQUAL(retry_after_parse(NULL, now), -1);
    CU_ASSERT_EQUAL(retry_after_parse("", now), -1);
    CU_ASSERT_EQUAL(retry_after_parse("   ", now), -1);
    CU_ASSERT_EQUAL(retry_after_parse("-5", now), -1);
    CU_ASSERT_EQUAL(retry_after_parse("+5", now), -1);
    CU_ASSERT_EQUAL(retry_after_parse("1.5", now), -1);
    CU_ASSERT_EQUAL(retry_after_parse("12a", now), -1);
    CU_ASSERT_EQUAL(retry_after_parse("soon", now), -1);
    CU_ASSERT_EQUAL(retry_after_parse("1 2", now), -1);
    CU_ASSERT_EQUAL(retry_after_parse("Wed, 32 Oct 2015 07:28:00 GMT", now), -1);
    CU_ASSERT_EQUAL(retry_after_parse("Wed, 29 Feb 2015 07:28:00 GMT", now), -1);
    CU_ASSERT_EQUAL(retry_after_parse("Wed, 21 Oct 2015 24:28:00 GMT", now), -1);
    CU_ASSERT_EQUAL(retry_after_parse("Wed, 21 Oct 2015 07:28:00 PST", now), -1);
    CU_ASSERT_EQUAL(retry_after_parse("Wed, 21 Foo 2015 07:28:00 GMT", now), -1);
    CU_ASSERT_EQUAL(retry_after_parse("Xyz, 21 Oct 2015 07:28:00 GMT", now), -1);
    CU_ASSERT_EQUAL(retry_after_parse("Wed, 21 Oct 2015 07:28 GMT", now), -1);
    CU_ASSERT_EQUAL(retry_after_parse("Wed, 21 Oct 2015 07:28:00 GMT trailing", now), -1);
    CU_ASSERT_EQUAL(retry_after_parse("2015-10-21T07:28:00Z", now), -1);
}

static void test_parse_http_date(void)
{
    time_t now = unit_utc("2015-10-21T07:27:00Z");

    CU_ASSERT_EQUAL(retry_after_parse("Wed, 21 Oct 2015 07:28:00 GMT", now), 60);
    CU_ASSERT_EQUAL(retry_after_parse("Wed, 21 Oct 2015 07:27:00 GMT", now), 0);
    CU_ASSERT_EQUAL(retry_after_parse("Thu, 22 Oct 2015 07:27:00 GMT", now), 86400);
    /* past dates clamp to 0, far ones to a day */
    CU_ASSERT_EQUAL(retry_after_parse("Tue, 20 Oct 2015 07:28:00 GMT", now), 0);
    CU_ASSERT_EQUAL(retry_after_parse("Fri, 01 Jan 2016 00:00:00 GMT", now), 86400);
    /* obsolete forms */
    CU_ASSERT_EQUAL(retry_after_parse("Wednesday, 21-Oct-15 07:29:30 GMT", now), 150);
    CU_ASSERT_EQUAL(retry_after_parse("Wed Oct 21 07:28:05 2015", now), 65);
    CU_ASSERT_EQUAL(retry_after_parse("Sun Nov  6 08:49:37 1994", now), 0);
    CU_ASSERT_EQUAL(retry_after_parse("Wed Oct 21 7:28:05 2015", now), -1);
    CU_ASSERT_EQUAL(retry_after_parse("Sunday, 06-Nov-94 08:49:37 GMT", unit_utc("1994-11-06T08:49:00Z")), 37);
    CU_ASSERT_EQUAL(retry_after_parse("Tue, 29 Feb 2028 00:00:10 GMT", unit_utc("2028-02-29T00:00:00Z")), 10);
}

int main(void)
{
    static const struct unit_test tests[] = {
        { "delay schedule", test_delay_schedule },
        { "Retry-After wins when longer", test_delay_retry_after },
        { "delta-seconds", test_parse_seconds },
        { "garbage", test_parse_garbage },
        { "HTTP-date", test_parse_http_date },
    };
    return UNIT_RUN("backoff", NULL, tests);
}
