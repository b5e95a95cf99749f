#include "crypto.h"
#include "util.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#define NONCE_LEN 12
#define TAG_LEN 16

int crypto_key_from_hex(const char *hex, unsigned char key[CRYPTO_KEY_LEN])
{
    if (!hex || strlen(hex) != 2 * CRYPTO_KEY_LEN)
        return -1;
    if (!util_hex_decode(hex, key, CRYPTO_KEY_LEN)) {
        OPENSSL_cleanse(key, CRYPTO_KEY_LEN);
        return -1;
    }
    return 0;
}

int crypto_seal(const unsigned char key[CRYPTO_KEY_LEN], const unsigned char *plain,
                size_t plain_len, unsigned char **out, size_t *out_len)
{
    EVP_CIPHER_CTX *ctx = NULL;
    unsigned char *buf = NULL;
    int len, rc = -1;

    *out = NULL;
    *out_len = 0;
    if (plain_len > INT_MAX - NONCE_LEN - TAG_LEN || (plain_len > 0 && !plain))
        return -1;
    buf = malloc(NONCE_LEN + plain_len + TAG_LEN);
    if (!buf)
        return -1;
    if (RAND_bytes(buf, NONCE_LEN) != 1)
        goto cleanup;
    ctx = EVP_CIPHER_CTX_new();
    if (!ctx ||
        EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) != 1 ||
        EVP_EncryptInit_ex(ctx, NULL, NULL, key, buf) != 1)
        goto cleanup;
    if (plain_len > 0 &&
        EVP_EncryptUpdate(ctx, buf + NONCE_LEN, &len, plain, (int)plain_len) != 1)
        goto cleanup;
    if (EVP_EncryptFinal_ex(ctx, buf + NONCE_LEN + plain_len, &len) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN,
                            buf + NONCE_LEN + plain_len) != 1)
        goto cleanup;
    *out = buf;
    *out_len = NONCE_LEN + plain_len + TAG_LEN;
    buf = NULL;
    rc = 0;
cleanup:
    EVP_CIPHER_CTX_free(ctx);
    free(buf);
    return rc;
}

int crypto_open(const unsigned char key[CRYPTO_KEY_LEN], const unsigned char *sealed,
                size_t sealed_len, unsigned char **plain, size_t *plain_len)
{
    EVP_CIPHER_CTX *ctx = NULL;
    unsigned char *buf = NULL;
    unsigned char tag[TAG_LEN];
    size_t ct_len;
    int len, rc = -1;

    *plain = NULL;
    *plain_len = 0;
    if (!sealed || sealed_len < NONCE_LEN + TAG_LEN || sealed_len > INT_MAX)
        return -1;
    ct_len = sealed_len - NONCE_LEN - TAG_LEN;
    /* one spare byte: a NUL after the plaintext, handy for credentials used as strings */
    buf = malloc(ct_len + 1);
    if (!buf)
        return -1;
    memcpy(tag, sealed + NONCE_LEN + ct_len, TAG_LEN);
    ctx = EVP_CIPHER_CTX_new();
    if (!ctx ||
        EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) != 1 ||
        EVP_DecryptInit_ex(ctx, NULL, NULL, key, sealed) != 1)
        goto cleanup;
    if (ct_len > 0 &&
        EVP_DecryptUpdate(ctx, buf, &len, sealed + NONCE_LEN, (int)ct_len) != 1)
        goto cleanup;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) != 1 ||
        EVP_DecryptFinal_ex(ctx, buf + ct_len, &len) != 1)
        goto cleanup;
    buf[ct_len] = '\0';
    *plain = buf;
    *plain_len = ct_len;
    buf = NULL;
    rc = 0;
cleanup:
    EVP_CIPHER_CTX_free(ctx);
    if (buf) {
        OPENSSL_cleanse(buf, ct_len);
        free(buf);
    }
    return rc;
}
