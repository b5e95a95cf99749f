#ifndef PEMS_TEXT_H
#define PEMS_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* Text from outside (PEMS's error and health answers, its field names and messages) made fit
 * to store, log and quote (README, Security): valid UTF-8 within a byte budget. Pure. */

/* The bytes in[0..len) as valid UTF-8 in out (cap bytes, NUL included; cap >= 1): each
 * well-formed character (RFC 3629: shortest form, no surrogates, at most U+10FFFF) is copied,
 * each other byte and each NUL (which no C string nor PostgreSQL text can hold) becomes one
 * U+FFFD, never dropped; the text is cut before the first character that does not fit, so out
 * is always a prefix of the input's characters. Returns the bytes written, NUL excluded.
 * in may be NULL when len is 0. */
size_t text_utf8_clip(const char *in, size_t len, char *out, size_t cap);

/* The length of the well-formed character at s[0..len) (1..4), or 0 when s does not start one
 * (NUL counts as one here). */
size_t text_utf8_char_len(const unsigned char *s, size_t len);

/* True when s[0..len) is well-formed UTF-8. */
bool text_utf8_valid(const char *s, size_t len);

#endif
