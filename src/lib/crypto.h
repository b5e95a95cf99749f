#ifndef PEMS_CRYPTO_H
#define PEMS_CRYPTO_H

#include <stddef.h>

/* AES-256-GCM sealing of credentials at rest: nonce(12) || ciphertext || tag(16). */
#define CRYPTO_KEY_LEN 32

int crypto_key_from_hex(const char *hex, unsigned char key[CRYPTO_KEY_LEN]);  /* 0 / -1 */

/* 0 on success with a malloc'd *out; -1 on failure (for open: tampered or wrong key).
 * open leaves a NUL after the plaintext (not counted in plain_len). */
int crypto_seal(const unsigned char key[CRYPTO_KEY_LEN], const unsigned char *plain,
                size_t plain_len, unsigned char **out, size_t *out_len);
int crypto_open(const unsigned char key[CRYPTO_KEY_LEN], const unsigned char *sealed,
                size_t sealed_len, unsigned char **plain, size_t *plain_len);

#endif
