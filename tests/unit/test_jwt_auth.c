#include "jwt_auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define SECRET "unit-test-secret-0123456789abcdef"
#define SUB "3f1e2d4c-5b6a-4789-9abc-def012345678"
#define NOW ((time_t)1780000000)

static void b64url(const unsigned char *in, size_t len, char *out)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;

    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < len)
            v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
        if (i + 1 < len)
            out[o++] = alphabet[(v >> 6) & 63];
        if (i + 2 < len)
            out[o++] = alphabet[v & 63];
    }
    out[o] = '\0';
}

/* header.payload.signature built by hand; sig: "hs256" signs with `key`, "" leaves it empty,
 * anything else is used as the signature text. */
static char *build(const char *header, const char *payload, const char *key, const char *sig)
{
    char *tok = malloc(4096);
    char h[1024], p[2048], s[128];
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned mac_len = 0;

    b64url((const unsigned char *)header, strlen(header), h);
    b64url((const unsigned char *)payload, strlen(payload), p);
    snprintf(tok, 4096, "%s.%s", h, p);
    if (strcmp(sig, "hs256") == 0) {
        HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)tok, strlen(tok), mac,
             &mac_len);
        b64url(mac, mac_len, s);
    } else {
        snprintf(s, sizeof s, "%s", sig);
    }
    strcat(tok, ".");
    strcat(tok, s);
    return tok;
}

static char *payload_with(const char *sub, long exp)
{
    static char buf[256];
    snprintf(buf, sizeof buf, "{\"sub\":\"%s\",\"iat\":%ld,\"exp\":%ld}", sub, (long)NOW, exp);
    return buf;
}

static enum jwt_verdict verify(const char *token)
{
    char sub[37];
    return jwt_verify_hs256(token, SECRET, NOW, sub);
}

/* A token signed by libjwt itself with any algorithm and grants. */
static char *libjwt_token(jwt_alg_t alg, const char *key, const char *sub, long exp)
{
    jwt_t *jwt = NULL;
    char *out = NULL;

    if (jwt_new(&jwt) != 0)
        return NULL;
    if (sub)
        jwt_add_grant(jwt, "sub", sub);
    if (exp)
        jwt_add_grant_int(jwt, "exp", exp);
    if (jwt_set_alg(jwt, alg, (const unsigned char *)key, (int)strlen(key)) == 0)
        out = jwt_encode_str(jwt);
    jwt_free(jwt);
    return out;
}

static void test_good_token(void)
{
    char *tok = jwt_mint_hs256(SECRET, SUB, 3600, NOW);
    char sub[37] = "x";

    CU_ASSERT_FATAL(tok != NULL);
    CU_ASSERT_EQUAL(jwt_verify_hs256(tok, SECRET, NOW, sub), JWT_VALID);
    CU_ASSERT_STRING_EQUAL(sub, SUB);
    CU_ASSERT_EQUAL(jwt_verify_hs256(tok, SECRET, NOW + 3599, sub), JWT_VALID);
    CU_ASSERT_EQUAL(jwt_verify_hs256(tok, SECRET, NOW, NULL), JWT_VALID);
    free(tok);

    /* a token from another HS256 implementation (no typ, other claims) */
    tok = build("{\"alg\":\"HS256\"}",
                "{\"sub\":\"" SUB "\",\"exp\":1780003600,\"iss\":\"x\",\"roles\":[1,2]}", SECRET,
                "hs256");
    CU_ASSERT_EQUAL(verify(tok), JWT_VALID);
    free(tok);
    tok = build("{\"typ\":\"JWT\",\"alg\":\"HS256\",\"kid\":\"k1\"}", payload_with(SUB, NOW + 60),
                SECRET, "hs256");
    CU_ASSERT_EQUAL(verify(tok), JWT_VALID);
    free(tok);
    /* a libjwt token is accepted too */
    tok = libjwt_token(JWT_ALG_HS256, SECRET, SUB, NOW + 60);
    CU_ASSERT_FATAL(tok != NULL);
    CU_ASSERT_EQUAL(verify(tok), JWT_VALID);
    free(tok);
}

/* the window a cache may keep a token for is the one verification checked */
static void test_window(void)
{
    char *tok = jwt_mint_hs256(SECRET, SUB, 3600, NOW);
    char sub[37] = "x";
    double exp = 0, nbf = 0;

    CU_ASSERT_FATAL(tok != NULL);
    CU_ASSERT_EQUAL(jwt_verify_hs256_window(tok, SECRET, NOW, sub, &exp, &nbf), JWT_VALID);
    CU_ASSERT_DOUBLE_EQUAL(exp, (double)NOW + 3600, 0.001);
    CU_ASSERT_DOUBLE_EQUAL(nbf, -1, 0.001);
    free(tok);
    tok = build("{\"alg\":\"HS256\"}",
                "{\"sub\":\"" SUB "\",\"exp\":1780003600.5,\"nbf\":1779999000}", SECRET, "hs256");
    CU_ASSERT_EQUAL(jwt_verify_hs256_window(tok, SECRET, NOW, sub, &exp, &nbf), JWT_VALID);
    CU_ASSERT_DOUBLE_EQUAL(exp, 1780003600.5, 0.001);
    CU_ASSERT_DOUBLE_EQUAL(nbf, 1779999000, 0.001);
    free(tok);
}

static void test_expired(void)
{
    char *tok = jwt_mint_hs256(SECRET, SUB, 3600, NOW);
    char sub[37] = "x";

    CU_ASSERT_FATAL(tok != NULL);
    CU_ASSERT_EQUAL(jwt_verify_hs256(tok, SECRET, NOW + 3600, sub), JWT_EXPIRED);
    CU_ASSERT_EQUAL(jwt_verify_hs256(tok, SECRET, NOW + 86400, sub), JWT_EXPIRED);
    CU_ASSERT_STRING_EQUAL(sub, "");
    free(tok);
    tok = jwt_mint_hs256(SECRET, SUB, -1, NOW);
    CU_ASSERT_EQUAL(verify(tok), JWT_EXPIRED);
    free(tok);
    /* not valid before a future nbf */
    tok = build("{\"alg\":\"HS256\"}",
                "{\"sub\":\"" SUB "\",\"exp\":1780003600,\"nbf\":1780000100}", SECRET, "hs256");
    CU_ASSERT_EQUAL(verify(tok), JWT_EXPIRED);
    free(tok);
}

static void test_missing_exp(void)
{
    char *tok = libjwt_token(JWT_ALG_HS256, SECRET, SUB, 0);

    CU_ASSERT_FATAL(tok != NULL);
    CU_ASSERT_EQUAL(verify(tok), JWT_MISSING_EXP);
    free(tok);
    /* exp that is not a number */
    tok = build("{\"alg\":\"HS256\"}", "{\"sub\":\"" SUB "\",\"exp\":\"1780003600\"}", SECRET, "hs256");
    CU_ASSERT_NOT_EQUAL(verify(tok), JWT_VALID);
    free(tok);
}

static void test_other_algorithms(void)
{
    const char *payload = payload_with(SUB, NOW + 3600);
    char *tok;

    /* alg none, empty signature */
    tok = build("{\"alg\":\"none\",\"typ\":\"JWT\"}", payload, SECRET, "");
    CU_ASSERT_EQUAL(verify(tok), JWT_BAD_ALGORITHM);
    free(tok);
    tok = build("{\"alg\":\"none\"}", payload, SECRET, "");
    CU_ASSERT_EQUAL(verify(tok), JWT_BAD_ALGORITHM);
    free(tok);
    /* alg none carrying a valid HMAC */
    tok = build("{\"alg\":\"none\"}", payload, SECRET, "hs256");
    CU_ASSERT_EQUAL(verify(tok), JWT_BAD_ALGORITHM);
    free(tok);
    /* HS512 signed with the very same key */
    tok = libjwt_token(JWT_ALG_HS512, SECRET, SUB, NOW + 3600);
    CU_ASSERT_FATAL(tok != NULL);
    CU_ASSERT_EQUAL(verify(tok), JWT_BAD_ALGORITHM);
    free(tok);
    tok = libjwt_token(JWT_ALG_HS384, SECRET, SUB, NOW + 3600);
    CU_ASSERT_FATAL(tok != NULL);
    CU_ASSERT_EQUAL(verify(tok), JWT_BAD_ALGORITHM);
    free(tok);
    /* RS256 label over an HMAC made with the secret (key confusion) */
    tok = build("{\"alg\":\"RS256\"}", payload, SECRET, "hs256");
    CU_ASSERT_EQUAL(verify(tok), JWT_BAD_ALGORITHM);
    free(tok);
    tok = build("{\"alg\":\"hs256\"}", payload, SECRET, "hs256");
    CU_ASSERT_EQUAL(verify(tok), JWT_BAD_ALGORITHM);
    free(tok);
    tok = build("{\"typ\":\"JWT\"}", payload, SECRET, "hs256");
    CU_ASSERT_EQUAL(verify(tok), JWT_BAD_ALGORITHM);
    free(tok);
    tok = build("{\"alg\":[\"HS256\"]}", payload, SECRET, "hs256");
    CU_ASSERT_EQUAL(verify(tok), JWT_BAD_ALGORITHM);
    free(tok);
    /* two alg keys: never let parsers disagree about which one counts */
    tok = build("{\"alg\":\"HS256\",\"alg\":\"none\"}", payload, SECRET, "hs256");
    CU_ASSERT_NOT_EQUAL(verify(tok), JWT_VALID);
    free(tok);
    tok = build("{\"alg\":\"none\",\"alg\":\"HS256\"}", payload, SECRET, "");
    CU_ASSERT_NOT_EQUAL(verify(tok), JWT_VALID);
    free(tok);
    /* a critical extension we do not understand */
    tok = build("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", payload, SECRET, "hs256");
    CU_ASSERT_NOT_EQUAL(verify(tok), JWT_VALID);
    free(tok);
}

static void test_bad_signature(void)
{
    char *tok = jwt_mint_hs256(SECRET, SUB, 3600, NOW);
    char *copy, *dot1, *dot2, *forged;
    char other_payload[512];
    size_t len;

    CU_ASSERT_FATAL(tok != NULL);
    /* wrong key */
    CU_ASSERT_EQUAL(jwt_verify_hs256(tok, "another-secret", NOW, NULL), JWT_BAD_SIGNATURE);
    CU_ASSERT_EQUAL(jwt_verify_hs256(tok, SECRET "x", NOW, NULL), JWT_BAD_SIGNATURE);
    /* flipped last signature character */
    copy = strdup(tok);
    len = strlen(copy);
    copy[len - 2] = copy[len - 2] == 'A' ? 'B' : 'A';
    CU_ASSERT_EQUAL(verify(copy), JWT_BAD_SIGNATURE);
    free(copy);
    /* empty signature */
    copy = strdup(tok);
    strrchr(copy, '.')[1] = '\0';
    CU_ASSERT_EQUAL(verify(copy), JWT_BAD_SIGNATURE);
    free(copy);
    /* tampered payload: another subject and a later exp under the original signature */
    dot1 = strchr(tok, '.');
    dot2 = strrchr(tok, '.');
    {
        char hdr[256];
        const char *p = "{\"sub\":\"00000000-0000-4000-8000-000000000001\",\"iat\":1780000000,\"exp\":1790000000}";
        snprintf(hdr, sizeof hdr, "%.*s", (int)(dot1 - tok), tok);
        b64url((const unsigned char *)p, strlen(p), other_payload);
        forged = malloc(strlen(tok) + 512);
        sprintf(forged, "%s.%s%s", hdr, other_payload, dot2);
        CU_ASSERT_EQUAL(verify(forged), JWT_BAD_SIGNATURE);
        free(forged);
    }
    free(tok);
    /* a hand-built token signed with the wrong key */
    tok = build("{\"alg\":\"HS256\"}", payload_with(SUB, NOW + 60), "not-the-secret", "hs256");
    CU_ASSERT_EQUAL(verify(tok), JWT_BAD_SIGNATURE);
    free(tok);
}

static void test_malformed(void)
{
    char *big;
    char *tok = jwt_mint_hs256(SECRET, SUB, 3600, NOW);
    char *two;

    CU_ASSERT_FATAL(tok != NULL);
    CU_ASSERT_EQUAL(verify(NULL), JWT_MALFORMED);
    CU_ASSERT_EQUAL(verify(""), JWT_MALFORMED);
    CU_ASSERT_EQUAL(verify("abc"), JWT_MALFORMED);
    CU_ASSERT_EQUAL(verify("a.b.c"), JWT_MALFORMED);
    CU_ASSERT_EQUAL(verify(".."), JWT_MALFORMED);
    CU_ASSERT_EQUAL(verify("...."), JWT_MALFORMED);
    CU_ASSERT_EQUAL(verify("Bearer x.y.z"), JWT_MALFORMED);
    CU_ASSERT_EQUAL(verify("eyJhbGciOiJIUzI1NiJ9.!!!.sig"), JWT_MALFORMED);
    /* header not JSON, payload not an object */
    CU_ASSERT_EQUAL(verify("bm90IGpzb24.eyJhIjoxfQ.c2ln"), JWT_MALFORMED);
    {
        char *t = build("{\"alg\":\"HS256\"}", "[1,2]", SECRET, "hs256");
        CU_ASSERT_EQUAL(verify(t), JWT_MALFORMED);
        free(t);
    }
    /* two parts, four parts */
    two = strdup(tok);
    *strrchr(two, '.') = '\0';
    CU_ASSERT_EQUAL(verify(two), JWT_MALFORMED);
    free(two);
    two = malloc(strlen(tok) + 8);
    sprintf(two, "%s.abc", tok);
    CU_ASSERT_EQUAL(verify(two), JWT_MALFORMED);
    free(two);
    /* over 8 KiB */
    big = malloc(9000);
    memset(big, 'A', 8999);
    big[8999] = '\0';
    memcpy(big, tok, strlen(tok));
    CU_ASSERT_EQUAL(verify(big), JWT_MALFORMED);
    free(big);
    /* an empty secret verifies nothing */
    CU_ASSERT_NOT_EQUAL(jwt_verify_hs256(tok, "", NOW, NULL), JWT_VALID);
    CU_ASSERT_NOT_EQUAL(jwt_verify_hs256(tok, NULL, NOW, NULL), JWT_VALID);
    free(tok);
}

static void test_bad_subject(void)
{
    char *tok = jwt_mint_hs256(SECRET, "alice", 3600, NOW);

    CU_ASSERT_FATAL(tok != NULL);
    CU_ASSERT_EQUAL(verify(tok), JWT_BAD_SUBJECT);
    free(tok);
    tok = jwt_mint_hs256(SECRET, SUB "0", 3600, NOW);
    CU_ASSERT_EQUAL(verify(tok), JWT_BAD_SUBJECT);
    free(tok);
    tok = jwt_mint_hs256(SECRET, "3f1e2d4c-5b6a-4789-9abc-def01234567g", 3600, NOW);
    CU_ASSERT_EQUAL(verify(tok), JWT_BAD_SUBJECT);
    free(tok);
    tok = libjwt_token(JWT_ALG_HS256, SECRET, NULL, NOW + 3600);
    CU_ASSERT_EQUAL(verify(tok), JWT_BAD_SUBJECT);
    free(tok);
    tok = build("{\"alg\":\"HS256\"}", "{\"sub\":12345,\"exp\":1780003600}", SECRET, "hs256");
    CU_ASSERT_EQUAL(verify(tok), JWT_BAD_SUBJECT);
    free(tok);
}

static void test_messages(void)
{
    for (int a = JWT_VALID; a <= JWT_BAD_SUBJECT; a++) {
        CU_ASSERT_PTR_NOT_NULL_FATAL(jwt_verdict_message((enum jwt_verdict)a));
        for (int b = a + 1; b <= JWT_BAD_SUBJECT; b++)
            CU_ASSERT_STRING_NOT_EQUAL(jwt_verdict_message((enum jwt_verdict)a),
                                       jwt_verdict_message((enum jwt_verdict)b));
    }
    CU_ASSERT_PTR_NULL(jwt_mint_hs256("", SUB, 60, NOW));
    CU_ASSERT_PTR_NULL(jwt_mint_hs256(SECRET, NULL, 60, NOW));
}

int main(void)
{
    static const struct unit_test tests[] = {
        { "the validity window of a valid token", test_window },
        { "good token", test_good_token },
        { "expired", test_expired },
        { "missing exp", test_missing_exp },
        { "none/HS512/RS256 rejected", test_other_algorithms },
        { "wrong key, tampered", test_bad_signature },
        { "malformed", test_malformed },
        { "subject not a uuid", test_bad_subject },
        { "messages", test_messages },
    };
    return UNIT_RUN("jwt_auth", NULL, tests);
}
