#ifndef PEMS_CONFLICT_H
#define PEMS_CONFLICT_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "pfa_record.h"

/* Three-way conflict detection (src/README.md, How a modification flows). */

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
int conflict_detect(int64_t base_version, int64_t mirror_version, const json_t *pems_changed_fields,
                    const json_t *local_delta, const json_t *pems_current,
                    struct conflict_result *out);
void conflict_result_clear(struct conflict_result *res);

enum conflict_resolution { RESOLVE_USE_LOCAL, RESOLVE_USE_PEMS, RESOLVE_MERGE };
int conflict_resolution_parse(const char *s, enum conflict_resolution *out);   /* 0 ok, -1 */
const char *conflict_resolution_name(enum conflict_resolution r);   /* "use_local", ... */

enum conflict_resolve_error {
    RESOLVE_OK,
    RESOLVE_ERR_MERGED_DATA_REQUIRED,     /* merge without a mergedData object: 400 */
    RESOLVE_ERR_MERGED_DATA_NOT_ALLOWED,  /* mergedData with use_local or use_pems: 400 */
    RESOLVE_ERR_ALREADY_RESOLVED,         /* 409 */
    RESOLVE_ERR_RECORD_GONE,              /* use_local or merge on a record PEMS deleted: 409 */
    RESOLVE_ERR_INVALID                   /* the delta to write is not valid on PEMS's record
                                             now: 400 with the plan's details */
};

/* The request alone: which resolutions take mergedData. conflict_resolve checks it first; the
 * API also asks before it looks the conflict up, so a malformed request is a 400 whatever the
 * conflict's state or the caller's access to it. */
enum conflict_resolve_error conflict_resolve_request(enum conflict_resolution r,
                                                     const json_t *merged_data);

struct conflict_resolution_plan {
    json_t *applied;   /* appliedChanges: the sanitized delta rebased on PEMS's current record
                          and queued, or {} for use_pems */
    bool discard;      /* use_pems: the modification is discarded, nothing is queued */
    enum conflict_resolution resolution;   /* the one recorded: use_pems for a merge that
                                              keeps PEMS's value in every field */
    enum pfa_op op;    /* the operation queued: the local one, an update for merge */
    json_t *details;   /* RESOLVE_ERR_INVALID: the validation details */
};

/* What resolving a conflict does (src/api/openapi.yaml, POST /conflicts/{id}/resolve): the
 * request first, then the conflict's state, then the delta validated like any modification
 * against mirror_data, PEMS's record now (NULL when PEMS deleted it). merged_data NULL or
 * JSON null is absent. A merge whose every field (one at least) holds PEMS's value now, as
 * sent or once sanitized, is use_pems: nothing would change at PEMS, so nothing is written. On RESOLVE_OK the plan holds new references; clear it in every case. */
enum conflict_resolve_error conflict_resolve(bool already_resolved, enum conflict_resolution r,
                                             enum pfa_op local_op, const json_t *local_delta,
                                             const json_t *merged_data,
                                             const json_t *mirror_data,
                                             struct conflict_resolution_plan *plan);
void conflict_resolution_plan_clear(struct conflict_resolution_plan *plan);

#endif
