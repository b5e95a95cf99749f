#include "addr_allow.h"

#include <string.h>

#include "unit.h"

static bool allowed(const char *list, const char *addr)
{
    struct addr_allow a;
    char err[128];
    CU_ASSERT_EQUAL_FATAL(addr_allow_parse(&a, list, err, sizeof err), 0);
    bool r = addr_allow_match(&a, addr);
    addr_allow_free(&a);
    return r;
}

static void test_loopback_default(void)
{
    CU_ASSERT_TRUE(allowed(ADDR_ALLOW_LOOPBACK, "127.0.0.1"));
    CU_ASSERT_TRUE(allowed(ADDR_ALLOW_LOOPBACK, "127.255.3.4"));
    CU_ASSERT_TRUE(allowed(ADDR_ALLOW_LOOPBACK, "::1"));
    CU_ASSERT_TRUE(allowed(ADDR_ALLOW_LOOPBACK, "::ffff:127.0.0.1"));
    CU_ASSERT_FALSE(allowed(ADDR_ALLOW_LOOPBACK, "10.1.2.3"));
    CU_ASSERT_FALSE(allowed(ADDR_ALLOW_LOOPBACK, "128.0.0.1"));
    CU_ASSERT_FALSE(allowed(ADDR_ALLOW_LOOPBACK, "::2"));
    CU_ASSERT_FALSE(allowed(ADDR_ALLOW_LOOPBACK, "::ffff:10.0.0.1"));
    CU_ASSERT_FALSE(allowed(ADDR_ALLOW_LOOPBACK, "127.0.0.1.5"));
    CU_ASSERT_FALSE(allowed(ADDR_ALLOW_LOOPBACK, "127.0.0"));
    CU_ASSERT_FALSE(allowed(ADDR_ALLOW_LOOPBACK, "127.0.0.256"));
    CU_ASSERT_FALSE(allowed(ADDR_ALLOW_LOOPBACK, ""));
    CU_ASSERT_FALSE(allowed(ADDR_ALLOW_LOOPBACK, "unix:"));
}

static void test_ranges(void)
{
    const char *list = "10.1.0.0/16, 192.0.2.7  2001:db8::/32,198.51.100.128/25";
    CU_ASSERT_TRUE(allowed(list, "10.1.255.255"));
    CU_ASSERT_FALSE(allowed(list, "10.2.0.1"));
    CU_ASSERT_TRUE(allowed(list, "192.0.2.7"));
    CU_ASSERT_FALSE(allowed(list, "192.0.2.8"));
    CU_ASSERT_TRUE(allowed(list, "2001:db8:ffff::1"));
    CU_ASSERT_FALSE(allowed(list, "2001:db9::1"));
    CU_ASSERT_TRUE(allowed(list, "198.51.100.200"));
    CU_ASSERT_FALSE(allowed(list, "198.51.100.127"));   /* the /25's other half */
    CU_ASSERT_TRUE(allowed(list, "::ffff:10.1.2.3"));   /* mapped: matched as IPv4 */
    CU_ASSERT_FALSE(allowed(list, "127.0.0.1"));        /* loopback only when listed */
    CU_ASSERT_TRUE(allowed("0.0.0.0/0", "203.0.113.9"));
    CU_ASSERT_FALSE(allowed("0.0.0.0/0", "2001:db8::1"));
    CU_ASSERT_TRUE(allowed("::/0", "2001:db8::1"));
    CU_ASSERT_FALSE(allowed("", "127.0.0.1"));           /* empty: nobody */
    CU_ASSERT_TRUE(allowed("10.0.0.0/7", "11.255.0.1"));
    CU_ASSERT_FALSE(allowed("10.0.0.0/7", "12.0.0.1"));
}

static void test_rejects(void)
{
    static const char *const bad[] = { "10.0.0.0/33", "::1/129", "10.0.0.0/", "10.0.0.0/x",
                                       "10.0.0/8", "localhost", "/8", "1.2.3.4/8/8",
                                       "::ffff:10.0.0.0/104", "10.0.0.0/-1", "10.0.0.0/0008" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct addr_allow a;
        char err[128] = "";
        CU_ASSERT_EQUAL(addr_allow_parse(&a, bad[i], err, sizeof err), -1);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "CIDR"));
        CU_ASSERT_PTR_NULL(a.ranges);
    }
    struct addr_allow a;
    char err[128] = "";
    CU_ASSERT_EQUAL(addr_allow_parse(&a, "127.0.0.1, nope", err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "'nope'"));
}

int main(void)
{
    static const struct unit_test tests[] = {
        { "loopback_default", test_loopback_default },
        { "ranges", test_ranges },
        { "rejects", test_rejects },
    };
    return UNIT_RUN("addr_allow", NULL, tests);
}
