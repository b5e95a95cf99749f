/* The conflict diff and three-way merge, and conflict resolution. Input: two versions, then
 * JSON [changedFields, localDelta, pemsCurrent, mergedData]. */
#include "conflict.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    int base = data[0] % 8, mirror = data[1] % 8;
    char *s = fuzz_str(data + 2, size - 2);
    json_t *in = json_loads(s, 0, NULL);
    free(s);
    if (!json_is_array(in)) {
        json_decref(in);
        return 0;
    }
    json_t *changed = json_array_get(in, 0), *delta = json_array_get(in, 1);
    json_t *current = json_array_get(in, 2), *merged = json_array_get(in, 3);
    struct conflict_result res;
    if (conflict_detect(base, mirror, changed, delta, current, &res) == 0) {
        /* nothing to merge when PEMS did not move on; an overlap names fields of the delta */
        if (base >= mirror && res.outcome != CONFLICT_NONE)
            abort();
        if (res.outcome == CONFLICT_OVERLAP && json_array_size(res.conflict_fields) == 0)
            abort();
        size_t i;
        json_t *f;
        json_array_foreach(res.conflict_fields, i, f)
            if (!json_object_get(delta, json_string_value(f)))
                abort();
        conflict_result_clear(&res);
    }
    json_t *diff = pfa_diff_fields(json_is_object(delta) ? delta : NULL,
                                   json_is_object(current) ? current : NULL);
    json_decref(diff);
    json_t *after = pfa_apply_delta(json_is_object(current) ? current : NULL,
                                    json_is_object(delta) ? delta : NULL);
    json_decref(after);
    pfa_value_equal(delta, current);
    for (int r = RESOLVE_USE_LOCAL; r <= RESOLVE_MERGE; r++) {
        struct conflict_resolution_plan plan;
        memset(&plan, 0, sizeof plan);
        conflict_resolve(base & 1, (enum conflict_resolution)r,
                         mirror & 1 ? PFA_OP_DELETE : PFA_OP_UPDATE, delta, merged,
                         json_is_object(current) ? current : NULL, &plan);
        conflict_resolution_plan_clear(&plan);
    }
    json_decref(in);
    return 0;
}
