#include "cron.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "unit.h"

#define NY "America/New_York"

/* ISO-8601 UTC of a fire time, "none" for (time_t)-1; rotating static buffers. */
static const char *iso(time_t t)
{
    static char bufs[8][32];
    static int next;
    char *b = bufs[next++ % 8];
    struct tm tm;

    if (t == (time_t)-1)
        return "none";
    gmtime_r(&t, &tm);
    strftime(b, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return b;
}

/* Next fire time of `expr` after `after` in `tz`, as ISO UTC; "parse-error" if it does not parse. */
static const char *next(const char *expr, const char *after, const char *tz)
{
    char err[128];
    struct cron_expr *ce = cron_parse(expr, err, sizeof err);
    const char *r;

    if (!ce)
        return "parse-error";
    r = iso(cron_next(ce, unit_utc(after), tz));
    cron_free(ce);
    return r;
}

static void test_every_minute(void)
{
    CU_ASSERT_STRING_EQUAL(next("* * * * *", "2026-01-15T10:20:30Z", "UTC"), "2026-01-15T10:21:00Z");
    /* strictly after */
    CU_ASSERT_STRING_EQUAL(next("* * * * *", "2026-01-15T10:21:00Z", "UTC"), "2026-01-15T10:22:00Z");
    CU_ASSERT_STRING_EQUAL(next("* * * * *", "2026-12-31T23:59:00Z", "UTC"), "2027-01-01T00:00:00Z");
    CU_ASSERT_STRING_EQUAL(next("* * * * *", "2026-01-15T10:20:30Z", NY), "2026-01-15T10:21:00Z");
    /* extra blanks between fields are fine */
    CU_ASSERT_STRING_EQUAL(next("  *\t* *  * * ", "2026-01-15T10:20:30Z", "UTC"), "2026-01-15T10:21:00Z");
}

static void test_steps(void)
{
    CU_ASSERT_STRING_EQUAL(next("*/5 * * * *", "2026-01-15T10:21:00Z", "UTC"), "2026-01-15T10:25:00Z");
    CU_ASSERT_STRING_EQUAL(next("*/5 * * * *", "2026-01-15T10:55:00Z", "UTC"), "2026-01-15T11:00:00Z");
    CU_ASSERT_STRING_EQUAL(next("1-10/2 * * * *", "2026-01-15T10:05:00Z", "UTC"), "2026-01-15T10:07:00Z");
    CU_ASSERT_STRING_EQUAL(next("1-10/2 * * * *", "2026-01-15T10:09:00Z", "UTC"), "2026-01-15T11:01:00Z");
    CU_ASSERT_STRING_EQUAL(next("0 */6 * * *", "2026-01-15T07:00:00Z", "UTC"), "2026-01-15T12:00:00Z");
    /* N/STEP means N through the field's maximum */
    CU_ASSERT_STRING_EQUAL(next("50/5 * * * *", "2026-01-15T10:56:00Z", "UTC"), "2026-01-15T11:50:00Z");
    CU_ASSERT_STRING_EQUAL(next("0 0 */10 * *", "2026-01-21T00:00:00Z", "UTC"), "2026-01-31T00:00:00Z");
}

static void test_lists_ranges(void)
{
    CU_ASSERT_STRING_EQUAL(next("0,30 9,17 * * *", "2026-01-15T09:10:00Z", "UTC"), "2026-01-15T09:30:00Z");
    CU_ASSERT_STRING_EQUAL(next("0,30 9,17 * * *", "2026-01-15T09:30:00Z", "UTC"), "2026-01-15T17:00:00Z");
    CU_ASSERT_STRING_EQUAL(next("0,30 9,17 * * *", "2026-01-15T17:30:00Z", "UTC"), "2026-01-16T09:00:00Z");
    /* 2026-01-16 is a Friday */
    CU_ASSERT_STRING_EQUAL(next("0 9-17 * * 1-5", "2026-01-16T17:00:00Z", "UTC"), "2026-01-19T09:00:00Z");
    CU_ASSERT_STRING_EQUAL(next("0 9-17 * * 1-5", "2026-01-16T12:00:00Z", "UTC"), "2026-01-16T13:00:00Z");
    CU_ASSERT_STRING_EQUAL(next("15 1-3,22 * * *", "2026-01-16T03:15:00Z", "UTC"), "2026-01-16T22:15:00Z");
    CU_ASSERT_STRING_EQUAL(next("0 0 1 4-6 *", "2026-01-16T00:00:00Z", "UTC"), "2026-04-01T00:00:00Z");
}

static void test_names(void)
{
    CU_ASSERT_STRING_EQUAL(next("0 0 1 jan,Jul *", "2026-02-01T00:00:00Z", "UTC"), "2026-07-01T00:00:00Z");
    CU_ASSERT_STRING_EQUAL(next("0 0 1 JAN,jul *", "2026-07-01T00:00:00Z", "UTC"), "2027-01-01T00:00:00Z");
    CU_ASSERT_STRING_EQUAL(next("0 9 * * MON-FRI", "2026-01-16T10:00:00Z", "UTC"), "2026-01-19T09:00:00Z");
    CU_ASSERT_STRING_EQUAL(next("0 9 * * mon-fri", "2026-01-16T10:00:00Z", "UTC"), "2026-01-19T09:00:00Z");
    /* Sunday is 0, 7 and SUN; 2026-01-18 is a Sunday */
    CU_ASSERT_STRING_EQUAL(next("0 12 * * SUN", "2026-01-15T00:00:00Z", "UTC"), "2026-01-18T12:00:00Z");
    CU_ASSERT_STRING_EQUAL(next("0 12 * * 0", "2026-01-15T00:00:00Z", "UTC"), "2026-01-18T12:00:00Z");
    CU_ASSERT_STRING_EQUAL(next("0 12 * * 7", "2026-01-15T00:00:00Z", "UTC"), "2026-01-18T12:00:00Z");
    CU_ASSERT_STRING_EQUAL(next("0 12 * * 6-7", "2026-01-17T13:00:00Z", "UTC"), "2026-01-18T12:00:00Z");
    CU_ASSERT_STRING_EQUAL(next("0 0 * Feb-Mar sat", "2026-01-01T00:00:00Z", "UTC"), "2026-02-07T00:00:00Z");
}

static void test_dom_dow(void)
{
    /* both restricted: either matches (2026-01-02 is a Friday, the 13th a Tuesday) */
    CU_ASSERT_STRING_EQUAL(next("0 0 13 * FRI", "2026-01-01T00:00:00Z", "UTC"), "2026-01-02T00:00:00Z");
    CU_ASSERT_STRING_EQUAL(next("0 0 13 * FRI", "2026-01-09T00:00:00Z", "UTC"), "2026-01-13T00:00:00Z");
    CU_ASSERT_STRING_EQUAL(next("0 0 13 * FRI", "2026-01-13T00:00:00Z", "UTC"), "2026-01-16T00:00:00Z");
    /* one of them '*': only the other counts */
    CU_ASSERT_STRING_EQUAL(next("0 0 13 * *", "2026-01-01T00:00:00Z", "UTC"), "2026-01-13T00:00:00Z");
    CU_ASSERT_STRING_EQUAL(next("0 0 * * FRI", "2026-01-02T00:00:00Z", "UTC"), "2026-01-09T00:00:00Z");
    /* a field starting with '*' counts as unrestricted (Vixie): both must match */
    CU_ASSERT_STRING_EQUAL(next("0 0 */10 * MON", "2026-01-01T00:00:00Z", "UTC"), "2026-05-11T00:00:00Z");
}

static void test_feb_29(void)
{
    CU_ASSERT_STRING_EQUAL(next("0 0 29 2 *", "2026-03-01T00:00:00Z", "UTC"), "2028-02-29T00:00:00Z");
    CU_ASSERT_STRING_EQUAL(next("0 0 29 2 *", "2028-02-29T00:00:00Z", "UTC"), "2032-02-29T00:00:00Z");
    /* midnight New York time is 05:00Z */
    CU_ASSERT_STRING_EQUAL(next("0 0 29 FEB *", "2026-03-01T00:00:00Z", NY), "2028-02-29T05:00:00Z");
    /* never: no fire time within the search horizon */
    CU_ASSERT_STRING_EQUAL(next("0 0 30 2 *", "2026-03-01T00:00:00Z", NY), "none");
    CU_ASSERT_STRING_EQUAL(next("0 0 31 4,6,9,11 *", "2026-03-01T00:00:00Z", "UTC"), "none");
}

static void test_fast(void)
{
    struct cron_expr *rare = cron_parse("0 0 29 2 *", NULL, 0);
    struct cron_expr *never = cron_parse("0 0 31 2 *", NULL, 0);
    struct cron_expr *often = cron_parse("* * * * *", NULL, 0);
    struct timespec a, b;
    time_t start = unit_utc("2026-03-01T00:00:00Z");
    double elapsed;

    CU_ASSERT_FATAL(rare && never && often);
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < 200; i++) {
        CU_ASSERT(cron_next(rare, start + i * 3600, NY) != (time_t)-1);
        CU_ASSERT(cron_next(never, start + i * 3600, NY) == (time_t)-1);
        CU_ASSERT(cron_next(often, start + i * 3600, NY) == start + i * 3600 + 60);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    elapsed = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    /* a minute-by-minute scan would need millions of steps per call */
    CU_ASSERT(elapsed < 5.0);
    cron_free(rare);
    cron_free(never);
    cron_free(often);
}

static void expect_error(const char *expr, const char *needle)
{
    char err[160] = "";
    struct cron_expr *ce = cron_parse(expr, err, sizeof err);

    CU_ASSERT_PTR_NULL(ce);
    CU_ASSERT(err[0] != '\0');
    if (needle && !strstr(err, needle)) {
        fprintf(stderr, "cron_parse(\"%s\"): error \"%s\" lacks \"%s\"\n", expr ? expr : "(null)",
                err, needle);
        CU_FAIL("error message");
    }
    cron_free(ce);
}

static void test_errors(void)
{
    expect_error("* * * * * *", "6");
    expect_error("* * * *", "4");
    expect_error("60 * * * *", "minute");
    expect_error("* 24 * * *", "hour");
    expect_error("* * 0 * *", "day-of-month");
    expect_error("* * 32 * *", "day-of-month");
    expect_error("* * * 13 *", "month");
    expect_error("* * * * 8", "day-of-week");
    expect_error("*/0 * * * *", "step");
    expect_error("*/x * * * *", "step");
    expect_error("*/ * * * *", "step");
    expect_error("*/60 * * * *", "step");
    expect_error("1-10/2/3 * * * *", "step");
    expect_error("", "empty");
    expect_error("   ", "empty");
    expect_error(NULL, "empty");
    expect_error("5-1 * * * *", "minute");
    expect_error("1,,2 * * * *", "minute");
    expect_error("1, * * * *", "minute");
    expect_error("* * * FOO *", "month");
    expect_error("* * * * MONDAY", "day-of-week");
    expect_error("* * * * JAN", "day-of-week");
    expect_error("* * JAN * *", "day-of-month");
    expect_error("a * * * *", "minute");
    expect_error("-1 * * * *", "minute");
    expect_error("*5 * * * *", "minute");
    expect_error("99999999999 * * * *", "minute");
    /* a NULL err buffer is allowed */
    CU_ASSERT_PTR_NULL(cron_parse("61 * * * *", NULL, 0));
}

/* 2026-03-08, New York: at 02:00 EST (07:00Z) clocks jump to 03:00 EDT. */
static void test_new_york_spring_forward(void)
{
    /* fixed time inside the gap fires at the first minute after the jump */
    CU_ASSERT_STRING_EQUAL(next("30 2 * * *", "2026-03-08T05:00:00Z", NY), "2026-03-08T07:00:00Z");
    CU_ASSERT_STRING_EQUAL(next("30 2 * * *", "2026-03-08T07:00:00Z", NY), "2026-03-09T06:30:00Z");
    CU_ASSERT_STRING_EQUAL(next("30 2 * * *", "2026-03-07T08:00:00Z", NY), "2026-03-08T07:00:00Z");
    CU_ASSERT_STRING_EQUAL(next("0 2 * * *", "2026-03-08T05:00:00Z", NY), "2026-03-08T07:00:00Z");
    /* times on either side of the gap are unaffected */
    CU_ASSERT_STRING_EQUAL(next("0 3 * * *", "2026-03-08T05:00:00Z", NY), "2026-03-08T07:00:00Z");
    CU_ASSERT_STRING_EQUAL(next("59 1 * * *", "2026-03-08T05:00:00Z", NY), "2026-03-08T06:59:00Z");
    CU_ASSERT_STRING_EQUAL(next("30 3 * * *", "2026-03-08T05:00:00Z", NY), "2026-03-08T07:30:00Z");
    /* wildcard jobs skip the missing hour */
    CU_ASSERT_STRING_EQUAL(next("*/15 * * * *", "2026-03-08T06:45:00Z", NY), "2026-03-08T07:00:00Z");
    CU_ASSERT_STRING_EQUAL(next("*/15 * * * *", "2026-03-08T07:00:00Z", NY), "2026-03-08T07:15:00Z");
    CU_ASSERT_STRING_EQUAL(next("30 * * * *", "2026-03-08T06:30:00Z", NY), "2026-03-08T07:30:00Z");
    CU_ASSERT_STRING_EQUAL(next("* * * * *", "2026-03-08T06:59:00Z", NY), "2026-03-08T07:00:00Z");
    /* a whole day of an every-minute job: 23 real hours */
    {
        struct cron_expr *ce = cron_parse("* * * * *", NULL, 0);
        time_t t = unit_utc("2026-03-08T05:00:00Z"), end = unit_utc("2026-03-09T04:00:00Z");
        int fires = 0;
        CU_ASSERT_FATAL(ce != NULL);
        while ((t = cron_next(ce, t, NY)) != (time_t)-1 && t <= end && fires < 5000)
            fires++;
        CU_ASSERT_EQUAL(fires, 23 * 60);
        cron_free(ce);
    }
}

/* 2026-11-01, New York: at 02:00 EDT (06:00Z) clocks go back to 01:00 EST. */
static void test_new_york_fall_back(void)
{
    static const char *const quarter[] = {
        "2026-11-01T05:00:00Z", "2026-11-01T05:15:00Z", "2026-11-01T05:30:00Z",
        "2026-11-01T05:45:00Z", "2026-11-01T06:00:00Z", "2026-11-01T06:15:00Z",
        "2026-11-01T06:30:00Z", "2026-11-01T06:45:00Z", "2026-11-01T07:00:00Z",
    };
    struct cron_expr *ce = cron_parse("*/15 * * * *", NULL, 0);
    time_t t = unit_utc("2026-11-01T04:50:00Z");

    /* fixed time: once, at the first occurrence (01:30 EDT) */
    CU_ASSERT_STRING_EQUAL(next("30 1 * * *", "2026-11-01T04:00:00Z", NY), "2026-11-01T05:30:00Z");
    CU_ASSERT_STRING_EQUAL(next("30 1 * * *", "2026-11-01T05:30:00Z", NY), "2026-11-02T06:30:00Z");
    CU_ASSERT_STRING_EQUAL(next("30 1 * * *", "2026-11-01T06:10:00Z", NY), "2026-11-02T06:30:00Z");
    CU_ASSERT_STRING_EQUAL(next("0 1 * * *", "2026-11-01T04:00:00Z", NY), "2026-11-01T05:00:00Z");
    CU_ASSERT_STRING_EQUAL(next("0 1 * * *", "2026-11-01T05:00:00Z", NY), "2026-11-02T06:00:00Z");
    CU_ASSERT_STRING_EQUAL(next("0 2 * * *", "2026-11-01T05:00:00Z", NY), "2026-11-01T07:00:00Z");
    /* wildcard hour: both 01:00 EDT and 01:00 EST */
    CU_ASSERT_STRING_EQUAL(next("0 * * * *", "2026-11-01T04:30:00Z", NY), "2026-11-01T05:00:00Z");
    CU_ASSERT_STRING_EQUAL(next("0 * * * *", "2026-11-01T05:00:00Z", NY), "2026-11-01T06:00:00Z");
    CU_ASSERT_STRING_EQUAL(next("0 * * * *", "2026-11-01T06:00:00Z", NY), "2026-11-01T07:00:00Z");
    /* every real quarter hour, through both 01:xx hours */
    CU_ASSERT_FATAL(ce != NULL);
    for (size_t i = 0; i < sizeof quarter / sizeof quarter[0]; i++) {
        t = cron_next(ce, t, NY);
        CU_ASSERT_STRING_EQUAL(iso(t), quarter[i]);
    }
    cron_free(ce);
}

static void test_other_zones(void)
{
    CU_ASSERT_STRING_EQUAL(next("0 9 * * *", "2026-06-01T00:00:00Z", "Asia/Kolkata"), "2026-06-01T03:30:00Z");
    CU_ASSERT_STRING_EQUAL(next("0 9 * * *", "2026-06-01T04:00:00Z", "Asia/Kolkata"), "2026-06-02T03:30:00Z");
    CU_ASSERT_STRING_EQUAL(next("0 9 * * *", "2026-07-01T00:00:00Z", "Europe/London"), "2026-07-01T08:00:00Z");
    CU_ASSERT_STRING_EQUAL(next("0 9 * * *", "2026-01-10T00:00:00Z", "Europe/London"), "2026-01-10T09:00:00Z");
    /* London, 2026-03-29: 01:00 GMT jumps to 02:00 BST */
    CU_ASSERT_STRING_EQUAL(next("30 1 * * *", "2026-03-29T00:00:00Z", "Europe/London"), "2026-03-29T01:00:00Z");
    /* the local date decides the day: 23:30 Monday in New York is Tuesday in UTC */
    CU_ASSERT_STRING_EQUAL(next("30 23 * * MON", "2026-01-12T00:00:00Z", NY), "2026-01-13T04:30:00Z");
    CU_ASSERT_STRING_EQUAL(next("0 0 * * *", "2026-01-12T00:00:00Z", "Pacific/Auckland"), "2026-01-12T11:00:00Z");
}

static void test_unknown_zone(void)
{
    struct cron_expr *ce = cron_parse("* * * * *", NULL, 0);
    time_t t = unit_utc("2026-01-15T10:20:30Z");

    CU_ASSERT_FATAL(ce != NULL);
    CU_ASSERT_EQUAL(cron_next(ce, t, "Mars/Olympus_Mons"), (time_t)-1);
    CU_ASSERT_EQUAL(cron_next(ce, t, "America/New_Yrok"), (time_t)-1);
    CU_ASSERT_EQUAL(cron_next(ce, t, "../../../etc/passwd"), (time_t)-1);
    CU_ASSERT_EQUAL(cron_next(ce, t, "America/../UTC"), (time_t)-1);
    CU_ASSERT_EQUAL(cron_next(ce, t, "/usr/share/zoneinfo/UTC"), (time_t)-1);
    CU_ASSERT_EQUAL(cron_next(ce, t, "America"), (time_t)-1);
    CU_ASSERT_EQUAL(cron_next(ce, t, "zone.tab"), (time_t)-1);
    CU_ASSERT_EQUAL(cron_next(ce, t, ""), (time_t)-1);
    CU_ASSERT_EQUAL(cron_next(ce, t, NULL), (time_t)-1);
    CU_ASSERT_EQUAL(cron_next(NULL, t, NY), (time_t)-1);
    CU_ASSERT_EQUAL(cron_next(ce, t, "UTC"), t + 30);
    cron_free(ce);
}

static void test_tz_restored(void)
{
    struct cron_expr *ce = cron_parse("0 9 * * *", NULL, 0);
    time_t t = unit_utc("2026-06-01T00:00:00Z");
    struct tm tm;

    CU_ASSERT_FATAL(ce != NULL);
    setenv("TZ", "Asia/Tokyo", 1);
    tzset();
    CU_ASSERT_STRING_EQUAL(iso(cron_next(ce, t, NY)), "2026-06-01T13:00:00Z");
    CU_ASSERT_STRING_EQUAL(getenv("TZ"), "Asia/Tokyo");
    localtime_r(&t, &tm);
    CU_ASSERT_EQUAL(tm.tm_gmtoff, 9 * 3600);
    unsetenv("TZ");
    tzset();
    CU_ASSERT(cron_next(ce, t, NY) != (time_t)-1);
    CU_ASSERT_PTR_NULL(getenv("TZ"));
    cron_free(ce);
}

static void test_period(void)
{
    time_t t = unit_utc("2026-01-15T10:20:30Z");
    struct cron_expr *every5 = cron_parse("*/5 * * * *", NULL, 0);
    struct cron_expr *daily = cron_parse("0 9 * * *", NULL, 0);
    struct cron_expr *never = cron_parse("0 0 30 FEB *", NULL, 0);

    CU_ASSERT_FATAL(every5 && daily && never);
    CU_ASSERT_EQUAL(cron_period(every5, t, "UTC"), 300);
    CU_ASSERT_EQUAL(cron_period(daily, t, NY), 86400);
    /* no schedule, one that never fires, an unknown zone: a minute */
    CU_ASSERT_EQUAL(cron_period(NULL, t, "UTC"), 60);
    CU_ASSERT_EQUAL(cron_period(never, t, "UTC"), 60);
    CU_ASSERT_EQUAL(cron_period(every5, t, "Nowhere/Else"), 60);
    /* the next run: the fire time, else the next whole minute */
    CU_ASSERT_STRING_EQUAL(iso(cron_next_run(every5, t, "UTC")), "2026-01-15T10:25:00Z");
    CU_ASSERT_STRING_EQUAL(iso(cron_next_run(never, t, "UTC")), "2026-01-15T10:21:00Z");
    CU_ASSERT_STRING_EQUAL(iso(cron_next_run(NULL, t, "UTC")), "2026-01-15T10:21:00Z");
    cron_free(every5);
    cron_free(daily);
    cron_free(never);
}

int main(void)
{
    static const struct unit_test tests[] = {
        { "every minute", test_every_minute },
        { "steps", test_steps },
        { "lists and ranges", test_lists_ranges },
        { "names", test_names },
        { "dom/dow either rule", test_dom_dow },
        { "Feb 29 and impossible dates", test_feb_29 },
        { "no minute-by-minute scan", test_fast },
        { "parse errors", test_errors },
        { "New York spring forward", test_new_york_spring_forward },
        { "New York fall back", test_new_york_fall_back },
        { "other zones", test_other_zones },
        { "unknown zone", test_unknown_zone },
        { "TZ restored", test_tz_restored },
        { "period and next run", test_period },
    };
    return UNIT_RUN("cron", NULL, tests);
}
