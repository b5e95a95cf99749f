#ifndef PEMS_CONFLICT_H
#define PEMS_CONFLICT_H

#include <jansson.h>

/* Three-way conflict detection of SPEC §6 (steps 1-5). */

enum conflict_outcome {
    CONFLICT_NONE,        /* base_version >= mirror version: write as is */
    CONFLICT_AUTO_MERGE,  /* PEMS moved on but touched none of our fields (or converged) */
    CONFLICT_OVERLAP      /* a person must decide */
};

struct conflict_result {
    enum conflict_outcome outcome;
    json_t *conflict_fields;  /* sorted array of names; empty unless OVERLAP */
    json_t *rebased_delta;    /* the delta to write on the current version (convergent fields dropped) */
};

/* pems_changed_fields: names PEMS changed since base_version (union of the history rows'
 * changed_fields for versions >= base_version); pems_current: the mirror's data now. */
int conflict_detect(int base_version, int mirror_version, const json_t *pems_changed_fields,
                    const json_t *local_delta, const json_t *pems_current,
                    struct conflict_result *out);
void conflict_result_clear(struct conflict_result *res);

enum conflict_resolution { RESOLVE_USE_LOCAL, RESOLVE_USE_PEMS, RESOLVE_MERGE };
int conflict_resolution_parse(const char *s, enum conflict_resolution *out);

#endif
