#ifndef PEMS_PFA_RECORD_H
#define PEMS_PFA_RECORD_H

#include <stdbool.h>
#include <jansson.h>

/* A PFA record (its fields: openapi.yaml PfaDelta) as a Jansson object; pfaId is the key,
 * not a field. */

enum pfa_field_type { PFA_STRING, PFA_ENUM, PFA_BOOL, PFA_NUMBER, PFA_DATE };

struct pfa_field {
    const char *name;
    enum pfa_field_type type;
    const char *const *enum_values;  /* NULL-terminated, PFA_ENUM only */
    bool nullable;                   /* may a delta clear it with null; the others are
                                        required on a record */
    bool allow_empty;                /* PFA_STRING only: may be "" after trimming */
};

const struct pfa_field *pfa_field_find(const char *name);

enum pfa_op { PFA_OP_UPDATE, PFA_OP_DELETE };
int pfa_op_parse(const char *s, enum pfa_op *out);   /* 0 ok, -1 unknown */
const char *pfa_op_name(enum pfa_op op);

/* New record: record overlaid with delta (a null in delta removes the field). */
json_t *pfa_apply_delta(const json_t *record, const json_t *delta);

/* Equality of two field values: a missing value (NULL) equals JSON null, numbers compare by
 * value (100 == 100.0), containers compare element by element. */
bool pfa_value_equal(const json_t *a, const json_t *b);

/* Sorted array of field names whose values differ between a and b (either may be NULL = {}). */
json_t *pfa_diff_fields(const json_t *a, const json_t *b);

/* Parses YYYY-MM-DD as a real calendar date; days since 1970-01-01 in *days. */
bool pfa_date_parse(const char *s, long *days);

#endif
