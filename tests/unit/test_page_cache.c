#include "page_cache.h"

#include <string.h>

#include "unit.h"

static void test_get_by_version(void)
{
    struct page_cache *pc = page_cache_new(4, 1024);
    size_t len = 0;
    const char *p;

    CU_ASSERT_EQUAL(page_cache_version(pc, "org-a"), -1);
    CU_ASSERT_PTR_NULL(page_cache_get(pc, "org-a", 1, &len, NULL));
    CU_ASSERT_EQUAL(page_cache_put(pc, "org-a", 7, "{\"a\":1}", 7, NULL), 0);
    CU_ASSERT_EQUAL(page_cache_version(pc, "org-a"), 7);
    p = page_cache_get(pc, "org-a", 7, &len, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_EQUAL(len, 7);
    CU_ASSERT_NSTRING_EQUAL(p, "{\"a\":1}", 7);
    /* another version of the same key is a miss, another key too */
    CU_ASSERT_PTR_NULL(page_cache_get(pc, "org-a", 8, &len, NULL));
    CU_ASSERT_PTR_NULL(page_cache_get(pc, "org-b", 7, &len, NULL));
    page_cache_free(pc);
}

static void test_put_replaces(void)
{
    struct page_cache *pc = page_cache_new(4, 1024);
    size_t len = 0;
    const char *p;

    page_cache_put(pc, "k", 1, "old", 3, NULL);
    page_cache_put(pc, "k", 2, "newer", 5, NULL);
    CU_ASSERT_PTR_NULL(page_cache_get(pc, "k", 1, &len, NULL));
    p = page_cache_get(pc, "k", 2, &len, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_EQUAL(len, 5);
    CU_ASSERT_NSTRING_EQUAL(p, "newer", 5);
    page_cache_free(pc);
}

static void test_evicts_least_recent_slot(void)
{
    struct page_cache *pc = page_cache_new(2, 1024);
    size_t len;

    page_cache_put(pc, "a", 1, "A", 1, NULL);
    page_cache_put(pc, "b", 1, "B", 1, NULL);
    CU_ASSERT_PTR_NOT_NULL(page_cache_get(pc, "a", 1, &len, NULL));   /* b is now the oldest */
    page_cache_put(pc, "c", 1, "C", 1, NULL);
    CU_ASSERT_EQUAL(page_cache_version(pc, "b"), -1);
    CU_ASSERT_EQUAL(page_cache_version(pc, "a"), 1);
    CU_ASSERT_EQUAL(page_cache_version(pc, "c"), 1);
    page_cache_free(pc);
}

static void test_byte_budget(void)
{
    struct page_cache *pc = page_cache_new(8, 10);
    char big[11];
    size_t len;

    memset(big, 'x', sizeof big);
    page_cache_put(pc, "a", 1, "aaaa", 4, NULL);
    page_cache_put(pc, "b", 1, "bbbb", 4, NULL);
    /* 4 more bytes exceed 10: the oldest goes, the newer stays */
    page_cache_put(pc, "c", 1, "cccc", 4, NULL);
    CU_ASSERT_EQUAL(page_cache_version(pc, "a"), -1);
    CU_ASSERT_EQUAL(page_cache_version(pc, "b"), 1);
    CU_ASSERT_EQUAL(page_cache_version(pc, "c"), 1);
    /* larger than the whole budget: refused, and the key's older page is gone too */
    CU_ASSERT_EQUAL(page_cache_put(pc, "c", 2, big, sizeof big, NULL), -1);
    CU_ASSERT_EQUAL(page_cache_version(pc, "c"), -1);
    CU_ASSERT_PTR_NOT_NULL(page_cache_get(pc, "b", 1, &len, NULL));
    /* exactly the budget fits, alone */
    CU_ASSERT_EQUAL(page_cache_put(pc, "d", 1, big, 10, NULL), 0);
    CU_ASSERT_EQUAL(page_cache_version(pc, "b"), -1);
    CU_ASSERT_EQUAL(page_cache_version(pc, "d"), 1);
    page_cache_free(pc);
}

static void test_empty_page(void)
{
    struct page_cache *pc = page_cache_new(1, 16);
    size_t len = 99;

    CU_ASSERT_EQUAL(page_cache_put(pc, "e", 3, "", 0, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(page_cache_get(pc, "e", 3, &len, NULL));
    CU_ASSERT_EQUAL(len, 0);
    page_cache_free(pc);
}

static void test_tag_kept_with_page(void)
{
    struct page_cache *pc = page_cache_new(2, 64);
    size_t len = 0;
    const char *tag = NULL;

    CU_ASSERT_EQUAL(page_cache_put(pc, "t", 1, "page", 4, "\"abc\""), 0);
    CU_ASSERT_PTR_NOT_NULL(page_cache_get(pc, "t", 1, &len, &tag));
    CU_ASSERT_STRING_EQUAL(tag, "\"abc\"");
    /* the next version's page brings its own tag */
    CU_ASSERT_EQUAL(page_cache_put(pc, "t", 2, "page2", 5, "\"def\""), 0);
    CU_ASSERT_PTR_NOT_NULL(page_cache_get(pc, "t", 2, &len, &tag));
    CU_ASSERT_STRING_EQUAL(tag, "\"def\"");
    /* no tag given: the empty string */
    CU_ASSERT_EQUAL(page_cache_put(pc, "u", 1, "x", 1, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(page_cache_get(pc, "u", 1, &len, &tag));
    CU_ASSERT_STRING_EQUAL(tag, "");
    page_cache_free(pc);
}

static void test_valid_until(void)
{
    struct page_cache *pc = page_cache_new(2, 64);
    size_t len = 0;
    const char *tag = NULL;

    CU_ASSERT_EQUAL(page_cache_put_until(pc, "s", 4, "now", 3, "\"t\"", 1000.5), 0);
    CU_ASSERT_PTR_NOT_NULL(page_cache_get_at(pc, "s", 4, 1000.4, &len, &tag));
    CU_ASSERT_STRING_EQUAL(tag, "\"t\"");
    /* from its time on, and for another version, a miss */
    CU_ASSERT_PTR_NULL(page_cache_get_at(pc, "s", 4, 1000.5, &len, &tag));
    CU_ASSERT_PTR_NULL(page_cache_get_at(pc, "s", 4, 2000, &len, &tag));
    CU_ASSERT_PTR_NULL(page_cache_get_at(pc, "s", 5, 1000, &len, &tag));
    /* a page put without a time holds at any time */
    CU_ASSERT_EQUAL(page_cache_put(pc, "f", 1, "x", 1, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(page_cache_get_at(pc, "f", 1, 1e12, &len, &tag));
    page_cache_free(pc);
}

int main(void)
{
    static const struct unit_test tests[] = {
        { "a page is valid for its version only", test_get_by_version },
        { "put replaces the key's page", test_put_replaces },
        { "full slots: least recently used goes", test_evicts_least_recent_slot },
        { "byte budget", test_byte_budget },
        { "empty page", test_empty_page },
        { "a page's tag is kept with it", test_tag_kept_with_page },
        { "a page valid until a time", test_valid_until },
    };
    return UNIT_RUN("page_cache", NULL, tests);
}
