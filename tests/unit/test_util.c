#include "util.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "unit.h"

static void test_is_uuid(void)
{
    CU_ASSERT_TRUE(util_is_uuid("0b7e3f3a-1c2d-4e5f-8a9b-0c1d2e3f4a5b"));
    CU_ASSERT_TRUE(util_is_uuid("0B7E3F3A-1C2D-4E5F-8A9B-0C1D2E3F4A5B"));
    CU_ASSERT_FALSE(util_is_uuid(NULL));
    CU_ASSERT_FALSE(util_is_uuid(""));
    CU_ASSERT_FALSE(util_is_uuid("0b7e3f3a-1c2d-4e5f-8a9b-0c1d2e3f4a5"));    /* 35 */
    CU_ASSERT_FALSE(util_is_uuid("0b7e3f3a-1c2d-4e5f-8a9b-0c1d2e3f4a5b0"));  /* 37 */
    CU_ASSERT_FALSE(util_is_uuid("0b7e3f3a11c2d-4e5f-8a9b-0c1d2e3f4a5b"));   /* dash moved */
    CU_ASSERT_FALSE(util_is_uuid("0b7e3f3a-1c2d-4e5f-8a9b-0c1d2e3f4a5g"));   /* not hex */
    CU_ASSERT_FALSE(util_is_uuid("0b7e3f3a-1c2d-4e5f-8a9b-0c1d2e3f4a-b"));
    CU_ASSERT_FALSE(util_is_uuid("0b6f3f0e8a554a0c9d556f8d2f1c3b7a1234"));   /* no dashes */
    CU_ASSERT_FALSE(util_is_uuid("' OR 1=1 --"));
}

static void test_hex_digit(void)
{
    const char *digits = "0123456789abcdef", *upper = "ABCDEF";
    for (int i = 0; i < 16; i++)
        CU_ASSERT_EQUAL(util_hex_digit(digits[i]), i);
    for (int i = 0; i < 6; i++)
        CU_ASSERT_EQUAL(util_hex_digit(upper[i]), 10 + i);
    CU_ASSERT_EQUAL(util_hex_digit('g'), -1);
    CU_ASSERT_EQUAL(util_hex_digit('G'), -1);
    CU_ASSERT_EQUAL(util_hex_digit('/'), -1);
    CU_ASSERT_EQUAL(util_hex_digit(':'), -1);
    CU_ASSERT_EQUAL(util_hex_digit('\0'), -1);
}

static void test_digits(void)
{
    int v = -1;
    CU_ASSERT_TRUE(util_digits("2024-", 4, &v));
    CU_ASSERT_EQUAL(v, 2024);
    CU_ASSERT_TRUE(util_digits("07", 2, &v));
    CU_ASSERT_EQUAL(v, 7);
    v = -1;
    CU_ASSERT_FALSE(util_digits("2O24", 4, &v));
    CU_ASSERT_FALSE(util_digits("-1", 2, &v));
    CU_ASSERT_FALSE(util_digits("1", 2, &v));   /* the NUL is no digit */
    CU_ASSERT_EQUAL(v, -1);
}

static void test_hex_codec(void)
{
    const unsigned char bytes[] = { 0x00, 0x7f, 0x80, 0xff, 0x1a };
    char hex[11];
    util_hex_encode(bytes, sizeof bytes, hex);
    CU_ASSERT_STRING_EQUAL(hex, "007f80ff1a");
    unsigned char back[5] = { 0 };
    CU_ASSERT_TRUE(util_hex_decode("007F80fF1a", back, sizeof back));
    CU_ASSERT_EQUAL(memcmp(back, bytes, sizeof bytes), 0);
    CU_ASSERT_FALSE(util_hex_decode("007f80ff1", back, sizeof back));     /* short */
    CU_ASSERT_FALSE(util_hex_decode("007f80ff1a00", back, sizeof back));  /* long */
    CU_ASSERT_FALSE(util_hex_decode("007f80ff1g", back, sizeof back));    /* not hex */
    CU_ASSERT_TRUE(util_hex_decode("", back, 0));
}

static void test_parse_long(void)
{
    long v = 7;
    CU_ASSERT_TRUE(util_parse_long("500", 1, 500, &v));
    CU_ASSERT_EQUAL(v, 500);
    CU_ASSERT_TRUE(util_parse_long("-3", -5, 5, &v));
    CU_ASSERT_EQUAL(v, -3);
    CU_ASSERT_TRUE(util_parse_long("+4", -5, 5, &v));
    CU_ASSERT_EQUAL(v, 4);
    v = 7;
    CU_ASSERT_FALSE(util_parse_long("501", 1, 500, &v));
    CU_ASSERT_FALSE(util_parse_long("0", 1, 500, &v));
    CU_ASSERT_FALSE(util_parse_long("", 0, 9, &v));
    CU_ASSERT_FALSE(util_parse_long(NULL, 0, 9, &v));
    CU_ASSERT_FALSE(util_parse_long("-", 0, 9, &v));
    CU_ASSERT_FALSE(util_parse_long(" 5", 0, 9, &v));
    CU_ASSERT_FALSE(util_parse_long("5 ", 0, 9, &v));
    CU_ASSERT_FALSE(util_parse_long("5x", 0, 9, &v));
    CU_ASSERT_FALSE(util_parse_long("0x5", 0, 9, &v));
    CU_ASSERT_FALSE(util_parse_long("1.5", 0, 9, &v));
    CU_ASSERT_FALSE(util_parse_long("-1", 0, 9, &v));
    CU_ASSERT_FALSE(util_parse_long("99999999999999999999999", 0, 9, &v));
    CU_ASSERT_EQUAL(v, 7);   /* untouched on failure */
}

static void test_days_from_civil(void)
{
    CU_ASSERT_EQUAL(util_days_from_civil(1970, 1, 1), 0);
    CU_ASSERT_EQUAL(util_days_from_civil(1969, 12, 31), -1);
    CU_ASSERT_EQUAL(util_days_from_civil(2000, 3, 1), 11017);
    CU_ASSERT_EQUAL(util_days_from_civil(2000, 2, 29), 11016);
    /* every day of 1900..2100 against timegm */
    for (int y = 1900; y <= 2100; y++)
        for (int m = 1; m <= 12; m++) {
            struct tm tm = { .tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = 28 };
            time_t t = timegm(&tm);
            if (util_days_from_civil(y, m, 28) * 86400L != (long)t) {
                CU_FAIL("days_from_civil disagrees with timegm");
                return;
            }
        }
    CU_PASS("1900..2100 agree with timegm");
}

static void test_days_in_month(void)
{
    CU_ASSERT_EQUAL(util_days_in_month(2023, 1), 31);
    CU_ASSERT_EQUAL(util_days_in_month(2023, 2), 28);
    CU_ASSERT_EQUAL(util_days_in_month(2024, 2), 29);
    CU_ASSERT_EQUAL(util_days_in_month(1900, 2), 28);
    CU_ASSERT_EQUAL(util_days_in_month(2000, 2), 29);
    CU_ASSERT_EQUAL(util_days_in_month(2023, 4), 30);
    CU_ASSERT_EQUAL(util_days_in_month(2023, 12), 31);
}

static void test_clocks(void)
{
    int64_t m0 = util_mono_ns(), w0 = util_wall_ns();
    struct timespec pause = { 0, 20 * 1000 * 1000 };
    nanosleep(&pause, NULL);
    int64_t m1 = util_mono_ns(), w1 = util_wall_ns();
    CU_ASSERT_TRUE(m1 - m0 >= 20 * 1000 * 1000);
    /* the wall clock is the epoch's: within a second of time() */
    CU_ASSERT_TRUE(llabs(w1 / UTIL_NS_PER_S - (int64_t)time(NULL)) <= 1);
    CU_ASSERT_TRUE(w1 >= w0);
    CU_ASSERT_TRUE(llabs(util_wall_ms() - w1 / 1000000) < 1000);
    CU_ASSERT_TRUE(util_mono_ms() >= m1 / 1000000);
}

static void test_iso_time(void)
{
    char out[UTIL_ISO_SIZE];
    util_iso_time(out, 0);
    CU_ASSERT_STRING_EQUAL(out, "1970-01-01T00:00:00.000Z");
    util_iso_time(out, 1769846709042LL);
    CU_ASSERT_STRING_EQUAL(out, "2026-01-31T08:05:09.042Z");
    util_iso_time(out, 951782400999LL);   /* a leap day */
    CU_ASSERT_STRING_EQUAL(out, "2000-02-29T00:00:00.999Z");
}

static void test_label_write(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    util_label_write(out, "a\"b\\c\nd/");
    fclose(out);
    CU_ASSERT_STRING_EQUAL(buf, "a\\\"b\\\\c\\nd/");
    free(buf);
}

int main(void)
{
    static const struct unit_test tests[] = {
        { "is_uuid", test_is_uuid },
        { "hex_digit", test_hex_digit },
        { "digits", test_digits },
        { "hex_codec", test_hex_codec },
        { "parse_long", test_parse_long },
        { "days_from_civil", test_days_from_civil },
        { "days_in_month", test_days_in_month },
        { "clocks", test_clocks },
        { "iso_time", test_iso_time },
        { "label_write", test_label_write },
    };
    return UNIT_RUN("util", NULL, tests);
}
