/* Body validation and sanitizing: a delta (update and delete) against a mirror record, and a
 * record's data as PEMS sends it. Input: JSON delta 0xff JSON record. */
#include "fuzz.h"
#include "validation.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *a, *b;
    fuzz_split(data, size, &a, &b);
    json_t *delta = json_loads(a, JSON_DECODE_ANY, NULL);
    json_t *current = json_loads(b, JSON_DECODE_ANY, NULL);
    json_t *clean = NULL, *details = NULL;
    for (int op = PFA_OP_UPDATE; op <= PFA_OP_DELETE; op++) {
        if (pfa_validate_modification((enum pfa_op)op, delta, current, &clean, &details) == 0) {
            /* a sanitized delta is valid as it is, and stays what it is */
            json_t *again = NULL, *d2 = NULL;
            if (pfa_validate_modification((enum pfa_op)op, op == PFA_OP_DELETE ? NULL : clean,
                                          current, &again, &d2) != 0 ||
                !json_equal(clean, again))
                abort();
            json_decref(again);
            json_decref(d2);
        }
        json_decref(clean);
        json_decref(details);
    }
    if (pfa_validate_pems_data(delta, &clean, &details) == 0) {
        /* the canonical form is a fixed point */
        json_t *again = NULL;
        if (pfa_validate_pems_data(clean, &again, &details) != 0 || !json_equal(clean, again))
            abort();
        json_decref(again);
    }
    json_decref(clean);
    json_decref(details);
    json_decref(delta);
    json_decref(current);
    free(a);
    free(b);
    return 0;
}
