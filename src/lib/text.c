#include "text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char REPLACEMENT[] = "\xef\xbf\xbd";   /* U+FFFD */
#define REPLACEMENT_LEN 3

size_t text_utf8_char_len(const unsigned char *s, size_t len)
{
    if (len == 0)
        return 0;
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t n;
    unsigned char lo = 0x80, hi = 0xbf;   /* the second byte's range (Unicode table 3-7) */
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0)
            lo = 0xa0;          /* no overlong forms */
        else if (c == 0xed)
            hi = 0x9f;          /* no surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;          /* nothing past U+10FFFF */
    } else {
        return 0;
    }
    if (len < n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return n;
}

size_t text_utf8_clip(const char *in, size_t len, char *out, size_t cap)
{
    if (cap == 0)
        return 0;
    const unsigned char *s = (const unsigned char *)in;
    size_t o = 0, i = 0;
    while (i < len) {
        size_t n = text_utf8_char_len(s + i, len - i);
        bool bad = n == 0 || s[i] == '\0';
        size_t w = bad ? REPLACEMENT_LEN : n;
        if (o + w > cap - 1)
            break;
        memcpy(out + o, bad ? (const unsigned char *)REPLACEMENT : s + i, w);
        o += w;
        i += bad ? 1 : n;
    }
    out[o] = '\0';
    return o;
}

bool text_utf8_valid(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        size_t n = text_utf8_char_len(u + i, len - i);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

char *text_escape_controls(const char *s, size_t len, enum text_escape mode)
{
    /* at most 6 bytes out per byte in (\u00XX), 3 per replaced byte */
    char *out = malloc(len * 6 + 1);
    if (!out)
        return NULL;
    const unsigned char *u = (const unsigned char *)s;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        unsigned char c = u[i];
        size_t n = text_utf8_char_len(u + i, len - i);
        unsigned code = n == 1 ? c : n == 2 ? (unsigned)((c & 0x1f) << 6 | (u[i + 1] & 0x3f)) : 0x100;
        const char *named = NULL;
        if (mode == TEXT_ESCAPE_FIELD)
            named = c == '\t' ? "\\t" : c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\\' ? "\\\\" : NULL;
        if (n == 0 || c == '\0') {
            memcpy(out + o, REPLACEMENT, REPLACEMENT_LEN);
            o += REPLACEMENT_LEN;
            i++;
        } else if (named) {
            memcpy(out + o, named, 2);
            o += 2;
            i++;
        } else if ((mode == TEXT_ESCAPE_FIELD && code < 0x20) || code == 0x7f ||
                   (code >= 0x80 && code < 0xa0)) {
            o += (size_t)snprintf(out + o, 7, "\\u%04x", code);
            i += n;
        } else {
            memcpy(out + o, u + i, n);
            o += n;
            i += n;
        }
    }
    out[o] = '\0';
    return out;
}
