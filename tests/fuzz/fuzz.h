#ifndef PEMS_FUZZ_H
#define PEMS_FUZZ_H

/* libFuzzer harnesses of the pure parsers (tests/fuzz/README.md): each takes arbitrary bytes
 * and must neither crash, leak, nor hang. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* data as a NUL-terminated string (malloc'd) */
static inline char *fuzz_str(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* splits data at the first byte 0xff: two strings (either may be empty) */
static inline void fuzz_split(const uint8_t *data, size_t size, char **a, char **b)
{
    const uint8_t *cut = memchr(data, 0xff, size);
    size_t n = cut ? (size_t)(cut - data) : size;
    *a = fuzz_str(data, n);
    *b = cut ? fuzz_str(cut + 1, size - n - 1) : fuzz_str(data, 0);
}

#endif
