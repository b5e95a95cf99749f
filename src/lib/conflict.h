#ifndef PEMS_CONFLICT_H
#define PEMS_CONFLICT_H

#include <stdbool.h>
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
int conflict_resolution_parse(const char *s, enum conflict_resolution *out);   /* 0 ok, -1 */

enum conflict_resolve_error {
    RESOLVE_OK,
    RESOLVE_ERR_MERGED_DATA_REQUIRED,  /* merge without a non-empty mergedData object: 400 */
    RESOLVE_ERR_ALREADY_RESOLVED       /* 409 */
};

/* What resolving a conflict applies. The request is checked before the conflict's state (a
 * malformed request is a 400 whatever the state). On RESOLVE_OK *applied_delta is a new
 * reference to the delta to rebase on the current mirror version and queue (the local delta
 * for use_local, mergedData for merge), or NULL for use_pems (the modification is discarded).
 * mergedData must still be validated by the caller like any modification. */
enum conflict_resolve_error conflict_resolve(bool already_resolved, enum conflict_resolution r,
                                             const json_t *local_delta,
                                             const json_t *merged_data, json_t **applied_delta);

#endif
