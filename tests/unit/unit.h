#ifndef PEMS_UNIT_H
#define PEMS_UNIT_H

#include <stddef.h>

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

#define UNIT_RUN(suite, init, tests) unit_run(suite, init, tests, sizeof tests / sizeof tests[0])

#endif
