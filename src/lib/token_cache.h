#ifndef PEMS_TOKEN_CACHE_H
#define PEMS_TOKEN_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* Bearer tokens already verified, remembered for their lifetime so that a client's repeated
 * requests skip the signature check and the JSON decoding. Keyed by the token's exact bytes
 * (compared in full, in constant time): only a token that was verified is ever put, and a hit
 * is one byte for byte equal to it. A hit is refused once the token's exp has passed (or
 * before its nbf), so an expired token is never accepted from here. One cache serves one
 * signing secret. Bounded: `slots` entries, tokens up to TOKEN_CACHE_MAX_LEN bytes (longer
 * ones are not kept); a new token takes its slot from the one there. */
#define TOKEN_CACHE_MAX_LEN 1024

struct token_cache;

struct token_cache *token_cache_new(size_t slots);
void token_cache_free(struct token_cache *tc);

/* true, with the token's subject in sub_out, when this exact token is kept and valid at now
 * (nbf <= now < exp); false otherwise (an expired entry is dropped): verify it in full. */
bool token_cache_get(struct token_cache *tc, const char *token, time_t now, char sub_out[37]);

/* Remembers a token that was just verified: its subject and validity window (nbf: -1 when it
 * has none). */
void token_cache_put(struct token_cache *tc, const char *token, double exp, double nbf,
                     const char sub[37]);

#endif
