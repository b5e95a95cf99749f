#include "crypto.h"

#include <stdlib.h>
#include <string.h>

#include "unit.h"

#define KEY_HEX "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define OVERHEAD (12 + 16)

static unsigned char key[CRYPTO_KEY_LEN];

static int setup(void)
{
    return crypto_key_from_hex(KEY_HEX, key) == 0 ? 0 : -1;
}

static void test_key_from_hex(void)
{
    unsigned char k[CRYPTO_KEY_LEN];

    CU_ASSERT_EQUAL(crypto_key_from_hex(KEY_HEX, k), 0);
    for (int i = 0; i < CRYPTO_KEY_LEN; i++)
        CU_ASSERT_EQUAL(k[i], i);
    CU_ASSERT_EQUAL(crypto_key_from_hex("FFEEDDCCBBAA99887766554433221100ffeeddccbbaa99887766554433221100", k), 0);
    CU_ASSERT_EQUAL(k[0], 0xff);
    CU_ASSERT_EQUAL(k[31], 0x00);
    CU_ASSERT_EQUAL(crypto_key_from_hex(NULL, k), -1);
    CU_ASSERT_EQUAL(crypto_key_from_hex("", k), -1);
    CU_ASSERT_EQUAL(crypto_key_from_hex("00", k), -1);
    /* 63, 65 and 64 non-hex characters */
    CU_ASSERT_EQUAL(crypto_key_from_hex(KEY_HEX + 1, k), -1);
    CU_ASSERT_EQUAL(crypto_key_from_hex(KEY_HEX "0", k), -1);
    CU_ASSERT_EQUAL(crypto_key_from_hex("g00102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1", k), -1);
    CU_ASSERT_EQUAL(crypto_key_from_hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1 ", k), -1);
    CU_ASSERT_EQUAL(crypto_key_from_hex("0x0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", k), -1);
}

static void test_round_trip(void)
{
    const char *secret = "pems-password: s3cret!";
    unsigned char *sealed = NULL, *plain = NULL;
    size_t sealed_len = 0, plain_len = 0;

    CU_ASSERT_EQUAL_FATAL(crypto_seal(key, (const unsigned char *)secret, strlen(secret), &sealed,
                                      &sealed_len), 0);
    CU_ASSERT_EQUAL(sealed_len, strlen(secret) + OVERHEAD);
    /* the plaintext does not appear in the output */
    CU_ASSERT_PTR_NULL(memmem(sealed, sealed_len, "s3cret", 6));
    CU_ASSERT_EQUAL_FATAL(crypto_open(key, sealed, sealed_len, &plain, &plain_len), 0);
    CU_ASSERT_EQUAL(plain_len, strlen(secret));
    CU_ASSERT_EQUAL(memcmp(plain, secret, plain_len), 0);
    CU_ASSERT_EQUAL(plain[plain_len], '\0');
    free(sealed);
    free(plain);
}

static void test_large(void)
{
    size_t n = 200000;
    unsigned char *data = malloc(n), *sealed = NULL, *plain = NULL;
    size_t sealed_len = 0, plain_len = 0;

    CU_ASSERT_FATAL(data != NULL);
    for (size_t i = 0; i < n; i++)
        data[i] = (unsigned char)(i * 31 + 7);
    CU_ASSERT_EQUAL_FATAL(crypto_seal(key, data, n, &sealed, &sealed_len), 0);
    CU_ASSERT_EQUAL(sealed_len, n + OVERHEAD);
    CU_ASSERT_EQUAL_FATAL(crypto_open(key, sealed, sealed_len, &plain, &plain_len), 0);
    CU_ASSERT_EQUAL(plain_len, n);
    CU_ASSERT_EQUAL(memcmp(plain, data, n), 0);
    free(data);
    free(sealed);
    free(plain);
}

static void test_empty(void)
{
    unsigned char *sealed = NULL, *plain = NULL;
    size_t sealed_len = 0, plain_len = 99;

    CU_ASSERT_EQUAL_FATAL(crypto_seal(key, (const unsigned char *)"", 0, &sealed, &sealed_len), 0);
    CU_ASSERT_EQUAL(sealed_len, OVERHEAD);
    CU_ASSERT_EQUAL_FATAL(crypto_open(key, sealed, sealed_len, &plain, &plain_len), 0);
    CU_ASSERT_EQUAL(plain_len, 0);
    CU_ASSERT_PTR_NOT_NULL(plain);
    free(plain);
    /* even an empty plaintext is authenticated */
    sealed[sealed_len - 1] ^= 1;
    plain = NULL;
    CU_ASSERT_EQUAL(crypto_open(key, sealed, sealed_len, &plain, &plain_len), -1);
    CU_ASSERT_PTR_NULL(plain);
    free(sealed);
    sealed = NULL;
    CU_ASSERT_EQUAL_FATAL(crypto_seal(key, NULL, 0, &sealed, &sealed_len), 0);
    CU_ASSERT_EQUAL(sealed_len, OVERHEAD);
    free(sealed);
}

static void test_tamper_every_byte(void)
{
    const char *secret = "user:password";
    unsigned char *sealed = NULL, *copy, *plain = NULL;
    size_t sealed_len = 0, plain_len = 0;
    int opened = 0;

    CU_ASSERT_EQUAL_FATAL(crypto_seal(key, (const unsigned char *)secret, strlen(secret), &sealed,
                                      &sealed_len), 0);
    copy = malloc(sealed_len);
    CU_ASSERT_FATAL(copy != NULL);
    /* nonce (0..11), ciphertext, tag (last 16): every byte, two different bit flips */
    for (size_t i = 0; i < sealed_len; i++) {
        for (int bit = 0; bit < 8; bit += 7) {
            memcpy(copy, sealed, sealed_len);
            copy[i] ^= (unsigned char)(1u << bit);
            plain = NULL;
            if (crypto_open(key, copy, sealed_len, &plain, &plain_len) == 0) {
                opened++;
                free(plain);
            }
            CU_ASSERT_PTR_NULL(plain);
        }
    }
    CU_ASSERT_EQUAL(opened, 0);
    /* the untouched copy still opens */
    CU_ASSERT_EQUAL(crypto_open(key, sealed, sealed_len, &plain, &plain_len), 0);
    free(plain);
    free(copy);
    free(sealed);
}

static void test_wrong_key(void)
{
    unsigned char other[CRYPTO_KEY_LEN];
    unsigned char *sealed = NULL, *plain = NULL;
    size_t sealed_len = 0, plain_len = 0;

    memcpy(other, key, sizeof other);
    other[31] ^= 0x80;
    CU_ASSERT_EQUAL_FATAL(crypto_seal(key, (const unsigned char *)"abc", 3, &sealed, &sealed_len), 0);
    CU_ASSERT_EQUAL(crypto_open(other, sealed, sealed_len, &plain, &plain_len), -1);
    CU_ASSERT_PTR_NULL(plain);
    free(sealed);
}

static void test_truncated(void)
{
    unsigned char *sealed = NULL, *plain = NULL;
    size_t sealed_len = 0, plain_len = 0;

    CU_ASSERT_EQUAL_FATAL(crypto_seal(key, (const unsigned char *)"abcdef", 6, &sealed, &sealed_len), 0);
    for (size_t n = 0; n < sealed_len; n++) {
        CU_ASSERT_EQUAL(crypto_open(key, sealed, n, &plain, &plain_len), -1);
        CU_ASSERT_PTR_NULL(plain);
    }
    CU_ASSERT_EQUAL(crypto_open(key, NULL, 40, &plain, &plain_len), -1);
    free(sealed);
}

static void test_seals_differ(void)
{
    unsigned char *a = NULL, *b = NULL;
    size_t alen = 0, blen = 0;

    CU_ASSERT_EQUAL_FATAL(crypto_seal(key, (const unsigned char *)"same", 4, &a, &alen), 0);
    CU_ASSERT_EQUAL_FATAL(crypto_seal(key, (const unsigned char *)"same", 4, &b, &blen), 0);
    CU_ASSERT_EQUAL(alen, blen);
    CU_ASSERT_NOT_EQUAL(memcmp(a, b, 12), 0);   /* fresh nonce */
    CU_ASSERT_NOT_EQUAL(memcmp(a + 12, b + 12, alen - 12), 0);
    free(a);
    free(b);
}

int main(void)
{
    static const struct unit_test tests[] = {
        { "key from hex", test_key_from_hex },
        { "round trip", test_round_trip },
        { "large round trip", test_large },
        { "empty plaintext", test_empty },
        { "tamper any byte", test_tamper_every_byte },
        { "wrong key", test_wrong_key },
        { "truncated", test_truncated },
        { "two seals differ", test_seals_differ },
    };
    return UNIT_RUN("crypto", setup, tests);
}
