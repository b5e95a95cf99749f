#ifndef PEMS_JWT_AUTH_H
#define PEMS_JWT_AUTH_H

#include <stddef.h>
#include <time.h>

enum jwt_verdict {
    JWT_VALID = 0,
    JWT_MALFORMED,
    JWT_BAD_ALGORITHM,    /* anything but HS256, including none */
    JWT_BAD_SIGNATURE,
    JWT_EXPIRED,
    JWT_MISSING_EXP,
    JWT_BAD_SUBJECT       /* sub missing or not a uuid */
};

/* Verifies an HS256 token; on JWT_VALID copies sub (a uuid, 36 chars) into sub_out[37]. */
enum jwt_verdict jwt_verify_hs256(const char *token, const char *secret, time_t now,
                                  char sub_out[37]);
/* The same, and on JWT_VALID the token's validity window: exp, and nbf (-1 when absent). */
enum jwt_verdict jwt_verify_hs256_window(const char *token, const char *secret, time_t now,
                                         char sub_out[37], double *exp_out, double *nbf_out);
const char *jwt_verdict_message(enum jwt_verdict v);

/* A new HS256 token (malloc'd, free()) with sub, iat=now, exp=now+ttl; NULL on failure. */
char *jwt_mint_hs256(const char *secret, const char *sub, long ttl_seconds, time_t now);

#endif
