#ifndef PEMS_VALIDATION_H
#define PEMS_VALIDATION_H

#include <jansson.h>
#include "pfa_record.h"

/* Sanitizes and validates a modification (openapi.yaml PfaDelta) against the mirror's current record.
 * delta may be NULL for a delete. On success returns 0 and *sanitized is a new reference to
 * the canonical delta ({} for a delete). On failure returns -1 and *details is a new array of
 * {"field": ..., "message": ...}, one entry per failing field. */
int pfa_validate_modification(enum pfa_op op, const json_t *delta, const json_t *current,
                              json_t **sanitized, json_t **details);

/* Validates the data of a record as PEMS sends it (pulled, written back, or in a 409 body)
 * with the same field rules as a client's delta: every known field has its type and limits,
 * category, source and dor are present. Fields unknown to us are PEMS's own and are kept as
 * they are; rules spanning fields are not checked (a flaw already at PEMS is PEMS's record).
 * On success *sanitized is a new reference to the data in canonical form; on failure -1 and
 * *details as pfa_validate_modification's. */
int pfa_validate_pems_data(const json_t *data, json_t **sanitized, json_t **details);

#endif
