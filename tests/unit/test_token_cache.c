#include "token_cache.h"

#include <string.h>

#include "unit.h"

static const char sub_a[] = "11111111-2222-3333-4444-555555555555";
static const char tok_a[] = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl";

static void test_hit_within_lifetime(void)
{
    struct token_cache *tc = token_cache_new(8);
    char sub[37] = "";

    CU_ASSERT_FALSE(token_cache_get(tc, tok_a, 1000, sub));
    token_cache_put(tc, tok_a, 2000, -1, sub_a);
    CU_ASSERT_TRUE(token_cache_get(tc, tok_a, 1000, sub));
    CU_ASSERT_STRING_EQUAL(sub, sub_a);
    CU_ASSERT_TRUE(token_cache_get(tc, tok_a, 1999, sub));
    token_cache_free(tc);
}

static void test_expired_refused(void)
{
    struct token_cache *tc = token_cache_new(8);
    char sub[37] = "";

    token_cache_put(tc, tok_a, 2000, -1, sub_a);
    /* exp is the first second it is no longer valid, as the verifier has it */
    CU_ASSERT_FALSE(token_cache_get(tc, tok_a, 2000, sub));
    CU_ASSERT_FALSE(token_cache_get(tc, tok_a, 5000, sub));
    /* dropped: not valid again when the clock steps back */
    CU_ASSERT_FALSE(token_cache_get(tc, tok_a, 1000, sub));
    CU_ASSERT_STRING_EQUAL(sub, "");
    token_cache_free(tc);
}

static void test_not_before(void)
{
    struct token_cache *tc = token_cache_new(8);
    char sub[37] = "";

    token_cache_put(tc, tok_a, 2000, 1500, sub_a);
    CU_ASSERT_FALSE(token_cache_get(tc, tok_a, 1499, sub));
    CU_ASSERT_TRUE(token_cache_get(tc, tok_a, 1500, sub));
    token_cache_free(tc);
}

static void test_only_the_exact_bytes(void)
{
    struct token_cache *tc = token_cache_new(1);   /* one slot: every token maps to it */
    char sub[37] = "";
    char other[sizeof tok_a];

    token_cache_put(tc, tok_a, 2000, -1, sub_a);
    /* the same length, one byte of the signature changed */
    memcpy(other, tok_a, sizeof tok_a);
    other[sizeof tok_a - 2] ^= 1;
    CU_ASSERT_FALSE(token_cache_get(tc, other, 1000, sub));
    /* a prefix, a longer token */
    CU_ASSERT_FALSE(token_cache_get(tc, "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJ", 1000, sub));
    CU_ASSERT_FALSE(token_cache_get(tc, "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJlX", 1000, sub));
    CU_ASSERT_FALSE(token_cache_get(tc, "", 1000, sub));
    CU_ASSERT_FALSE(token_cache_get(tc, NULL, 1000, sub));
    CU_ASSERT_STRING_EQUAL(sub, "");
    /* still there for its own bytes */
    CU_ASSERT_TRUE(token_cache_get(tc, tok_a, 1000, sub));
    token_cache_free(tc);
}

static void test_bounded(void)
{
    struct token_cache *tc = token_cache_new(1);
    char sub[37] = "";
    static const char sub_b[] = "66666666-7777-8888-9999-000000000000";
    char big[TOKEN_CACHE_MAX_LEN + 2];

    token_cache_put(tc, tok_a, 2000, -1, sub_a);
    token_cache_put(tc, "another.token.value", 2000, -1, sub_b);   /* takes the one slot */
    CU_ASSERT_FALSE(token_cache_get(tc, tok_a, 1000, sub));
    CU_ASSERT_TRUE(token_cache_get(tc, "another.token.value", 1000, sub));
    CU_ASSERT_STRING_EQUAL(sub, sub_b);
    /* a token longer than the bound is not kept */
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    token_cache_put(tc, big, 2000, -1, sub_a);
    CU_ASSERT_FALSE(token_cache_get(tc, big, 1000, sub));
    /* nor one whose subject is not a uuid's length */
    char short_sub[37] = "short";
    token_cache_put(tc, tok_a, 2000, -1, short_sub);
    CU_ASSERT_FALSE(token_cache_get(tc, tok_a, 1000, sub));
    token_cache_free(tc);
}

int main(void)
{
    static const struct unit_test tests[] = {
        { "a verified token is a hit until its exp", test_hit_within_lifetime },
        { "an expired token is refused, and dropped", test_expired_refused },
        { "a token is refused before its nbf", test_not_before },
        { "only the exact bytes of a kept token hit", test_only_the_exact_bytes },
        { "bounded in entries and token length", test_bounded },
    };
    return UNIT_RUN("token_cache", NULL, tests);
}
