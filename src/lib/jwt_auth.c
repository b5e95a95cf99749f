#include "jwt_auth.h"
#include "util.h"

#include <ctype.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <jwt.h>

#define JWT_MAX_LEN 8192

static int b64url_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/* Unpadded base64url (RFC 7515 section 2) to a malloc'd buffer; NULL when not canonical. */
static unsigned char *b64url_decode(const char *s, size_t len, size_t *out_len)
{
    unsigned char *out;
    size_t n = 0;
    unsigned acc = 0;
    int bits = 0;

    if (len % 4 == 1)
        return NULL;
    out = malloc(len * 3 / 4 + 1);
    if (!out)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        int v = b64url_val((unsigned char)s[i]);
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0) {   /* leftover bits must be zero */
        free(out);
        return NULL;
    }
    out[n] = '\0';
    *out_len = n;
    return out;
}

static json_t *decode_json_object(const char *s, size_t len)
{
    size_t n;
    unsigned char *raw = b64url_decode(s, len, &n);
    json_t *obj;

    if (!raw)
        return NULL;
    obj = json_loadb((const char *)raw, n, JSON_REJECT_DUPLICATES, NULL);
    free(raw);
    if (obj && !json_is_object(obj)) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

/* The header must say HS256 and nothing we would have to understand to verify safely. */
static enum jwt_verdict check_header(json_t *hdr)
{
    json_t *alg = json_object_get(hdr, "alg");
    json_t *typ = json_object_get(hdr, "typ");

    if (!json_is_string(alg) || strcmp(json_string_value(alg), "HS256") != 0)
        return JWT_BAD_ALGORITHM;
    if (typ && (!json_is_string(typ) || strcasecmp(json_string_value(typ), "JWT") != 0))
        return JWT_MALFORMED;
    if (json_object_get(hdr, "crit"))
        return JWT_MALFORMED;
    return JWT_VALID;
}

/* A NumericDate: integer or real seconds; false when absent or of another type. */
static bool numeric_date(json_t *payload, const char *claim, double *out)
{
    json_t *v = json_object_get(payload, claim);

    if (!json_is_number(v))
        return false;
    *out = json_number_value(v);
    return isfinite(*out);
}

static enum jwt_verdict check_claims(json_t *payload, time_t now, char sub_out[37],
                                     double *exp_out, double *nbf_out)
{
    json_t *sub;
    double exp, nbf = -1;

    if (!json_object_get(payload, "exp"))
        return JWT_MISSING_EXP;
    if (!numeric_date(payload, "exp", &exp))
        return JWT_MALFORMED;
    if (exp <= (double)now)
        return JWT_EXPIRED;
    /* a token not valid yet is refused like an expired one */
    if (json_object_get(payload, "nbf") &&
        (!numeric_date(payload, "nbf", &nbf) || nbf > (double)now))
        return JWT_EXPIRED;
    sub = json_object_get(payload, "sub");
    if (!json_is_string(sub) || !util_is_uuid(json_string_value(sub)))
        return JWT_BAD_SUBJECT;
    if (sub_out)
        memcpy(sub_out, json_string_value(sub), 37);
    if (exp_out)
        *exp_out = exp;
    if (nbf_out)
        *nbf_out = nbf;
    return JWT_VALID;
}

/*
 * The header is checked here, before libjwt sees the token, so that no algorithm but HS256
 * (and no alg-confusion trick such as "none" or a public key used as an HMAC secret) can ever
 * reach signature verification; libjwt then checks the HMAC.
 */
enum jwt_verdict jwt_verify_hs256(const char *token, const char *secret, time_t now,
                                  char sub_out[37])
{
    return jwt_verify_hs256_window(token, secret, now, sub_out, NULL, NULL);
}

enum jwt_verdict jwt_verify_hs256_window(const char *token, const char *secret, time_t now,
                                         char sub_out[37], double *exp_out, double *nbf_out)
{
    const char *dot1, *dot2;
    size_t len;
    json_t *hdr = NULL, *payload = NULL;
    jwt_t *jwt = NULL;
    enum jwt_verdict v;

    if (sub_out)
        sub_out[0] = '\0';
    if (!token || !secret || !*secret)
        return JWT_MALFORMED;
    len = strlen(token);
    if (len == 0 || len > JWT_MAX_LEN)
        return JWT_MALFORMED;
    dot1 = strchr(token, '.');
    dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    if (!dot2 || strchr(dot2 + 1, '.') || dot1 == token || dot2 == dot1 + 1)
        return JWT_MALFORMED;

    hdr = decode_json_object(token, (size_t)(dot1 - token));
    if (!hdr) {
        v = JWT_MALFORMED;
        goto cleanup;
    }
    v = check_header(hdr);
    if (v != JWT_VALID)
        goto cleanup;
    payload = decode_json_object(dot1 + 1, (size_t)(dot2 - dot1 - 1));
    if (!payload) {
        v = JWT_MALFORMED;
        goto cleanup;
    }
    if (dot2[1] == '\0' ||
        jwt_decode(&jwt, token, (const unsigned char *)secret, (int)strlen(secret)) != 0 ||
        jwt_get_alg(jwt) != JWT_ALG_HS256) {
        v = JWT_BAD_SIGNATURE;
        goto cleanup;
    }
    v = check_claims(payload, now, sub_out, exp_out, nbf_out);
cleanup:
    jwt_free(jwt);
    json_decref(payload);
    json_decref(hdr);
    return v;
}

const char *jwt_verdict_message(enum jwt_verdict v)
{
    switch (v) {
    case JWT_VALID:
        return "valid token";
    case JWT_MALFORMED:
        return "malformed token";
    case JWT_BAD_ALGORITHM:
        return "token algorithm must be HS256";
    case JWT_BAD_SIGNATURE:
        return "invalid token signature";
    case JWT_EXPIRED:
        return "token expired or not yet valid";
    case JWT_MISSING_EXP:
        return "token has no exp claim";
    case JWT_BAD_SUBJECT:
        return "token subject must be a user id (uuid)";
    }
    return "invalid token";
}

char *jwt_mint_hs256(const char *secret, const char *sub, long ttl_seconds, time_t now)
{
    jwt_t *jwt = NULL;
    char *token = NULL;

    if (!secret || !*secret || !sub || !*sub)
        return NULL;
    if (jwt_new(&jwt) != 0)
        return NULL;
    if (jwt_add_grant(jwt, "sub", sub) != 0 ||
        jwt_add_grant_int(jwt, "iat", (long)now) != 0 ||
        jwt_add_grant_int(jwt, "exp", (long)now + ttl_seconds) != 0 ||
        jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)secret, (int)strlen(secret)) != 0)
        goto cleanup;
    token = jwt_encode_str(jwt);   /* plain malloc: libjwt 1.10 allocates with malloc */
cleanup:
    jwt_free(jwt);
    return token;
}
