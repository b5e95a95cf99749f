#include "pfa_record.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

static const char *const source_values[] = { "Rental", "Purchase", NULL };
static const char *const dor_values[] = { "BEO", "PROJECT", NULL };

/* The fields of a PFA record (openapi.yaml PfaDelta), sorted by name so that pfa_field_find
 * can bisect.
 * - category, source and dor are required on a record, so a delta cannot clear them (null).
 * - Strings are trimmed; category and class identify the equipment (the API shows them as a
 *   record's pfaDetails), so they must not be empty after trimming. The other strings may be
 *   "" (a blank that PEMS also keeps); null clears them. */
static const struct pfa_field fields[] = {
    /* name                  type        enum_values    nullable allow_empty */
    { "actualEnd",           PFA_DATE,   NULL,          true,  false },
    { "actualStart",         PFA_DATE,   NULL,          true,  false },
    { "areaSilo",            PFA_STRING, NULL,          true,  true  },
    { "category",            PFA_STRING, NULL,          false, false },
    { "class",               PFA_STRING, NULL,          true,  false },
    { "contract",            PFA_STRING, NULL,          true,  true  },
    { "dor",                 PFA_ENUM,   dor_values,    false, false },
    { "equipment",           PFA_STRING, NULL,          true,  true  },
    { "forecastCategory",    PFA_STRING, NULL,          true,  true  },
    { "forecastEnd",         PFA_DATE,   NULL,          true,  false },
    { "forecastStart",       PFA_DATE,   NULL,          true,  false },
    { "hasActuals",          PFA_BOOL,   NULL,          true,  false },
    { "hasPlan",             PFA_BOOL,   NULL,          true,  false },
    { "isActualized",        PFA_BOOL,   NULL,          true,  false },
    { "isDiscontinued",      PFA_BOOL,   NULL,          true,  false },
    { "isFundsTransferable", PFA_BOOL,   NULL,          true,  false },
    { "manufacturer",        PFA_STRING, NULL,          true,  true  },
    { "model",               PFA_STRING, NULL,          true,  true  },
    { "monthlyRate",         PFA_NUMBER, NULL,          true,  false },
    { "originalEnd",         PFA_DATE,   NULL,          true,  false },
    { "originalStart",       PFA_DATE,   NULL,          true,  false },
    { "purchasePrice",       PFA_NUMBER, NULL,          true,  false },
    { "source",              PFA_ENUM,   source_values, false, false },
};

#define FIELD_COUNT (sizeof fields / sizeof fields[0])

const struct pfa_field *pfa_field_find(const char *name)
{
    size_t lo = 0, hi = FIELD_COUNT;

    if (!name)
        return NULL;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, fields[mid].name);
        if (c == 0)
            return &fields[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

int pfa_op_parse(const char *s, enum pfa_op *out)
{
    if (!s)
        return -1;
    if (strcmp(s, "update") == 0)
        *out = PFA_OP_UPDATE;
    else if (strcmp(s, "delete") == 0)
        *out = PFA_OP_DELETE;
    else
        return -1;
    return 0;
}

const char *pfa_op_name(enum pfa_op op)
{
    return op == PFA_OP_DELETE ? "delete" : "update";
}

json_t *pfa_apply_delta(const json_t *record, const json_t *delta)
{
    json_t *out;
    const char *key;
    json_t *value;

    out = json_is_object(record) ? json_deep_copy(record) : json_object();
    if (!out || !json_is_object(delta))
        return out;
    /* json_object_foreach wants a non-const object; the loop only reads it */
    json_object_foreach((json_t *)delta, key, value) {
        if (json_is_null(value)) {
            json_object_del(out, key);
        } else if (json_object_set_new(out, key, json_deep_copy(value)) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

bool pfa_value_equal(const json_t *a, const json_t *b)
{
    if (json_is_null(a))
        a = NULL;
    if (json_is_null(b))
        b = NULL;
    if (!a || !b)
        return a == b;
    if (json_is_number(a) && json_is_number(b)) {
        if (json_is_integer(a) && json_is_integer(b))
            return json_integer_value(a) == json_integer_value(b);
        return json_number_value(a) == json_number_value(b);
    }
    if (json_is_array(a) && json_is_array(b)) {
        size_t n = json_array_size(a);
        if (n != json_array_size(b))
            return false;
        for (size_t i = 0; i < n; i++)
            if (!pfa_value_equal(json_array_get(a, i), json_array_get(b, i)))
                return false;
        return true;
    }
    if (json_is_object(a) && json_is_object(b)) {
        const char *key;
        json_t *va;
        json_t *vb;
        json_object_foreach((json_t *)a, key, va)
            if (!pfa_value_equal(va, json_object_get(b, key)))
                return false;
        json_object_foreach((json_t *)b, key, vb)
            if (!json_object_get(a, key) && !json_is_null(vb))
                return false;
        return true;
    }
    return json_equal((json_t *)a, (json_t *)b) != 0;
}

static int cmp_names(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

json_t *pfa_diff_fields(const json_t *a, const json_t *b)
{
    const json_t *sides[2] = { json_is_object(a) ? a : NULL, json_is_object(b) ? b : NULL };
    size_t cap = json_object_size(sides[0]) + json_object_size(sides[1]);
    const char **names = NULL;
    size_t n = 0;
    json_t *out = json_array();

    if (!out)
        return NULL;
    if (cap == 0)
        return out;
    names = calloc(cap, sizeof *names);
    if (!names)
        goto fail;
    for (int s = 0; s < 2; s++) {
        const char *key;
        json_t *value;
        if (!sides[s])
            continue;
        json_object_foreach((json_t *)sides[s], key, value) {
            /* a key both sides hold is collected once, from the first */
            if (s == 1 && sides[0] && json_object_get(sides[0], key))
                continue;
            if (!pfa_value_equal(value, json_object_get(sides[1 - s], key)))
                names[n++] = key;
        }
    }
    qsort(names, n, sizeof *names, cmp_names);
    for (size_t i = 0; i < n; i++)
        if (json_array_append_new(out, json_string(names[i])) != 0)
            goto fail;
    free(names);
    return out;
fail:
    free(names);
    json_decref(out);
    return NULL;
}

bool pfa_date_parse(const char *s, long *days)
{
    int y, m, d;

    if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return false;
    if (!util_digits(s, 4, &y) || !util_digits(s + 5, 2, &m) || !util_digits(s + 8, 2, &d))
        return false;
    if (y < 1 || m < 1 || m > 12 || d < 1 || d > util_days_in_month(y, m))
        return false;
    if (days)
        *days = util_days_from_civil(y, m, d);
    return true;
}
