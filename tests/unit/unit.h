#ifndef PEMS_UNIT_H
#define PEMS_UNIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <CUnit/Basic.h>

/* One CUnit suite per test program. */
struct unit_test {
    const char *name;
    CU_TestFunc fn;
};

/* Runs the suite verbosely: 0 when every test passed, 1 after a failure, 2 when CUnit could
 * not be set up. */
static inline int unit_run(const char *suite, CU_InitializeFunc init,
                           const struct unit_test *tests, size_t n)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite s = CU_add_suite(suite, init, NULL);
    for (size_t i = 0; s && i < n; i++)
        if (!CU_add_test(s, tests[i].name, tests[i].fn))
            s = NULL;
    if (!s) {
        CU_cleanup_registry();
        return 2;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failures = CU_get_number_of_failures();
    CU_cleanup_registry();
    return failures ? 1 : 0;
}

/* CUnit's string assertion dereferences NULL; this one fails instead. */
#define ASSERT_STR_EQ(actual, expected) CU_ASSERT_TRUE(unit_str_eq((actual), (expected)))

static inline bool unit_str_eq(const char *actual, const char *expected)
{
    if (actual && strcmp(actual, expected) == 0)
        return true;
    fprintf(stderr, "got \"%s\", want \"%s\"\n", actual ? actual : "(null)", expected);
    return false;
}

/* "YYYY-MM-DDTHH:MM:SSZ" as a time_t; aborts on anything else (a typo in a test). */
static inline time_t unit_utc(const char *iso)
{
    struct tm tm = { 0 };

    if (sscanf(iso, "%d-%d-%dT%d:%d:%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec) != 6)
        abort();
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return timegm(&tm);
}

#define UNIT_RUN(suite, init, tests) unit_run(suite, init, tests, sizeof tests / sizeof tests[0])

#endif
