/* Retry-After: delta-seconds and the three HTTP-date forms. */
#include "backoff.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_str(data, size);
    long v = retry_after_parse(s, 1700000000);
    if (v < -1)
        abort();
    backoff_delay((int)(size % 8), v);
    free(s);
    return 0;
}
