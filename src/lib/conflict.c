#include "conflict.h"
#include "validation.h"

#include <stdlib.h>
#include <string.h>

#include "pfa_record.h"

static bool name_in(const json_t *names, const char *name)
{
    size_t i;
    json_t *v;

    json_array_foreach(names, i, v)
        if (json_is_string(v) && strcmp(json_string_value(v), name) == 0)
            return true;
    return false;
}

static int cmp_json_names(const void *x, const void *y)
{
    return strcmp(json_string_value(*(json_t *const *)x), json_string_value(*(json_t *const *)y));
}

/* Sorts an array of strings in place. */
static int sort_names(json_t *names)
{
    size_t n = json_array_size(names);
    json_t **items;
    int rc = 0;

    if (n < 2)
        return 0;
    items = calloc(n, sizeof *items);
    if (!items)
        return -1;
    for (size_t i = 0; i < n; i++)
        items[i] = json_incref(json_array_get(names, i));
    qsort(items, n, sizeof *items, cmp_json_names);
    for (size_t i = 0; i < n; i++)
        if (json_array_set_new(names, i, items[i]) != 0)
            rc = -1;
    free(items);
    return rc;
}

int conflict_detect(int64_t base_version, int64_t mirror_version, const json_t *pems_changed_fields,
                    const json_t *local_delta, const json_t *pems_current,
                    struct conflict_result *out)
{
    const char *key;
    json_t *value;

    if (!out)
        return -1;
    out->outcome = CONFLICT_NONE;
    out->conflict_fields = json_array();
    out->rebased_delta = json_object();
    if (!out->conflict_fields || !out->rebased_delta)
        goto fail;
    if (local_delta && !json_is_object(local_delta))
        goto fail;

    if (base_version >= mirror_version) {
        json_decref(out->rebased_delta);
        out->rebased_delta = local_delta ? json_deep_copy(local_delta) : json_object();
        if (!out->rebased_delta)
            goto fail;
        return 0;
    }

    json_object_foreach((json_t *)local_delta, key, value) {
        if (name_in(pems_changed_fields, key)) {
            /* both sides changed it: same result is a convergent edit, nothing to write */
            if (pfa_value_equal(value, json_object_get(pems_current, key)))
                continue;
            if (json_array_append_new(out->conflict_fields, json_string(key)) != 0)
                goto fail;
        }
        if (json_object_set_new(out->rebased_delta, key, json_deep_copy(value)) != 0)
            goto fail;
    }
    if (sort_names(out->conflict_fields) != 0)
        goto fail;
    out->outcome = json_array_size(out->conflict_fields) > 0 ? CONFLICT_OVERLAP
                                                             : CONFLICT_AUTO_MERGE;
    return 0;

fail:
    conflict_result_clear(out);
    return -1;
}

void conflict_result_clear(struct conflict_result *res)
{
    if (!res)
        return;
    json_decref(res->conflict_fields);
    json_decref(res->rebased_delta);
    res->conflict_fields = NULL;
    res->rebased_delta = NULL;
    res->outcome = CONFLICT_NONE;
}

int conflict_resolution_parse(const char *s, enum conflict_resolution *out)
{
    if (!s)
        return -1;
    if (strcmp(s, "use_local") == 0)
        *out = RESOLVE_USE_LOCAL;
    else if (strcmp(s, "use_pems") == 0)
        *out = RESOLVE_USE_PEMS;
    else if (strcmp(s, "merge") == 0)
        *out = RESOLVE_MERGE;
    else
        return -1;
    return 0;
}

const char *conflict_resolution_name(enum conflict_resolution r)
{
    switch (r) {
    case RESOLVE_USE_LOCAL: return "use_local";
    case RESOLVE_USE_PEMS: return "use_pems";
    case RESOLVE_MERGE: return "merge";
    }
    return "use_local";
}

/* true when delta has a field and each of its fields holds record's value */
static bool keeps_record(const json_t *delta, const json_t *record)
{
    const char *key;
    const json_t *value;
    if (json_object_size(delta) == 0)
        return false;
    json_object_foreach((json_t *)delta, key, value)
        if (!pfa_value_equal(value, json_object_get(record, key)))
            return false;
    return true;
}

static enum conflict_resolve_error resolve_as_use_pems(enum pfa_op local_op,
                                                       struct conflict_resolution_plan *plan)
{
    json_decref(plan->applied);
    plan->resolution = RESOLVE_USE_PEMS;
    plan->discard = true;
    plan->op = local_op;
    plan->applied = json_object();
    return RESOLVE_OK;
}

enum conflict_resolve_error conflict_resolve_request(enum conflict_resolution r,
                                                     const json_t *merged_data)
{
    bool given = merged_data && !json_is_null(merged_data);
    if (r == RESOLVE_MERGE && (!given || !json_is_object(merged_data)))
        return RESOLVE_ERR_MERGED_DATA_REQUIRED;
    if (r != RESOLVE_MERGE && given)
        return RESOLVE_ERR_MERGED_DATA_NOT_ALLOWED;
    return RESOLVE_OK;
}

enum conflict_resolve_error conflict_resolve(bool already_resolved, enum conflict_resolution r,
                                             enum pfa_op local_op, const json_t *local_delta,
                                             const json_t *merged_data,
                                             const json_t *mirror_data,
                                             struct conflict_resolution_plan *plan)
{
    memset(plan, 0, sizeof *plan);
    enum conflict_resolve_error e = conflict_resolve_request(r, merged_data);
    if (e != RESOLVE_OK)
        return e;
    if (already_resolved)
        return RESOLVE_ERR_ALREADY_RESOLVED;
    plan->resolution = r;
    if (r == RESOLVE_USE_PEMS)
        return resolve_as_use_pems(local_op, plan);
    if (!mirror_data)
        return RESOLVE_ERR_RECORD_GONE;
    if (r == RESOLVE_MERGE && keeps_record(merged_data, mirror_data))
        return resolve_as_use_pems(local_op, plan);
    plan->op = r == RESOLVE_MERGE ? PFA_OP_UPDATE : local_op;
    const json_t *delta = r == RESOLVE_MERGE ? merged_data : local_delta;
    if (pfa_validate_modification(plan->op, delta, mirror_data, &plan->applied,
                                  &plan->details) != 0) {
        json_decref(plan->applied);
        plan->applied = NULL;
        if (!plan->details)
            plan->details = json_array();
        return RESOLVE_ERR_INVALID;
    }
    if (r == RESOLVE_MERGE && keeps_record(plan->applied, mirror_data))
        return resolve_as_use_pems(local_op, plan);
    return RESOLVE_OK;
}

void conflict_resolution_plan_clear(struct conflict_resolution_plan *plan)
{
    json_decref(plan->applied);
    json_decref(plan->details);
    memset(plan, 0, sizeof *plan);
}
