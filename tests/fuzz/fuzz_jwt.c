/* HS256 verification of an arbitrary token; a valid verdict must come with a uuid subject. */
#include "fuzz.h"
#include "jwt_auth.h"

#define SECRET "0123456789abcdef0123456789abcdef"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_str(data, size);
    char sub[37] = "";
    if (jwt_verify_hs256(s, SECRET, 1700000000, sub) == JWT_VALID && strlen(sub) != 36)
        abort();
    jwt_verdict_message(jwt_verify_hs256(s, "another secret of enough length", 1700000000, sub));
    free(s);
    return 0;
}
