/* text_utf8_clip: whatever the bytes and the budget, the output is valid UTF-8 (as jansson,
 * which PostgreSQL agrees with, reads it), fits the budget, and is the longest prefix of the
 * input's characters that fits, each invalid byte (and NUL) read as one U+FFFD. */
#include "text.h"
#include "fuzz.h"

#include <jansson.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    /* the first two bytes are the budget, the rest the text */
    size_t cap = 1 + (((size_t)data[0] << 8 | data[1]) % 2048);
    const char *in = (const char *)data + 2;
    size_t len = size - 2;
    char *out = malloc(cap + 4);
    if (!out)
        abort();
    memset(out + cap, 0x5a, 4);   /* a canary past the budget */
    size_t n = text_utf8_clip(in, len, out, cap);
    if (n >= cap || out[n] != '\0' || strlen(out) != n || memcmp(out + cap, "ZZZZ", 4) != 0)
        abort();
    json_t *s = json_stringn(out, n);
    if (!s || !text_utf8_valid(out, n))
        abort();
    json_decref(s);
    /* the reference reading: unit by unit, the output is their concatenation as far as fits */
    size_t i = 0, o = 0;
    while (i < len) {
        size_t c = text_utf8_char_len((const uint8_t *)in + i, len - i);
        bool bad = c == 0 || in[i] == '\0';
        const char *unit = bad ? "\xef\xbf\xbd" : in + i;
        size_t w = bad ? 3 : c;
        if (o + w > cap - 1)
            break;   /* the first unit that does not fit: nothing after it is output */
        if (memcmp(out + o, unit, w) != 0)
            abort();
        o += w;
        i += bad ? 1 : c;
    }
    if (o != n)
        abort();
    free(out);
    return 0;
}
