#include "token_cache.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct token_slot {
    char *token;    /* NULL: empty */
    size_t len;
    uint64_t hash;
    double exp, nbf;
    char sub[37];
};

struct token_cache {
    struct token_slot *slots;
    size_t n;
};

struct token_cache *token_cache_new(size_t slots)
{
    struct token_cache *tc = calloc(1, sizeof *tc);
    if (!tc)
        return NULL;
    tc->n = slots ? slots : 1;
    tc->slots = calloc(tc->n, sizeof *tc->slots);
    if (!tc->slots) {
        free(tc);
        return NULL;
    }
    return tc;
}

static void slot_clear(struct token_slot *s)
{
    free(s->token);
    memset(s, 0, sizeof *s);
}

void token_cache_free(struct token_cache *tc)
{
    if (!tc)
        return;
    for (size_t i = 0; i < tc->n; i++)
        slot_clear(&tc->slots[i]);
    free(tc->slots);
    free(tc);
}

/* FNV-1a: picks the slot; the full comparison decides */
static uint64_t hash_of(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

/* equal lengths: every byte is looked at, whatever differs */
static bool same_bytes(const char *a, const char *b, size_t len)
{
    unsigned char d = 0;
    for (size_t i = 0; i < len; i++)
        d |= (unsigned char)(a[i] ^ b[i]);
    return d == 0;
}

bool token_cache_get(struct token_cache *tc, const char *token, time_t now, char sub_out[37])
{
    if (!tc || !token)
        return false;
    size_t len = strlen(token);
    if (len == 0 || len > TOKEN_CACHE_MAX_LEN)
        return false;
    uint64_t h = hash_of(token, len);
    struct token_slot *s = &tc->slots[h % tc->n];
    if (!s->token || s->len != len || s->hash != h || !same_bytes(s->token, token, len))
        return false;
    if (s->exp <= (double)now) {   /* as the verifier: exp must be in the future */
        slot_clear(s);
        return false;
    }
    if (s->nbf > (double)now)
        return false;
    memcpy(sub_out, s->sub, 37);
    return true;
}

void token_cache_put(struct token_cache *tc, const char *token, double exp, double nbf,
                     const char sub[37])
{
    if (!tc || !token || !sub)
        return;
    size_t len = strlen(token);
    if (len == 0 || len > TOKEN_CACHE_MAX_LEN || strnlen(sub, 37) != 36)
        return;
    uint64_t h = hash_of(token, len);
    struct token_slot *s = &tc->slots[h % tc->n];
    slot_clear(s);
    s->token = malloc(len + 1);
    if (!s->token)
        return;
    memcpy(s->token, token, len + 1);
    s->len = len;
    s->hash = h;
    s->exp = exp;
    s->nbf = nbf;
    memcpy(s->sub, sub, 37);
}
