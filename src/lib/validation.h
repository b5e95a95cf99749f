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

/* Validates a complete record (the seed's validateNewPfa). 0 ok, -1 with *details. */
int pfa_validate_record(const json_t *record, json_t **details);

#endif
