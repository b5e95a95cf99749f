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

/* Text for an operator's terminal (pemsctl): no control character reaches it. */
enum text_escape {
    /* a field (TSV, status): tab, newline, carriage return and backslash as \t \n \r \\
     * (PostgreSQL's COPY text format), every other C0, DEL and C1 control as \u00XX */
    TEXT_ESCAPE_FIELD,
    /* JSON text (C0 in its strings is escaped already): DEL and C1 as \u00XX, the rest
     * (its newlines, its escapes) as it is */
    TEXT_ESCAPE_JSON,
};
/* s[0..len) escaped by mode into a new string (malloc'd; NULL when out of memory); an
 * invalid UTF-8 byte becomes U+FFFD. */
char *text_escape_controls(const char *s, size_t len, enum text_escape mode);

#endif
