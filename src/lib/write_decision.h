#ifndef PEMS_WRITE_DECISION_H
#define PEMS_WRITE_DECISION_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "pfa_record.h"

/* What to do with a queued modification before it is written to PEMS (src/README.md, How a
 * modification flows): the conflict check against the mirror, then validation on the record
 * as it would be after the write. Pure: the worker (write_sync.c) records what it decides. */

/* A modification and the mirror as the worker read them (all borrowed). */
struct write_case {
    enum pfa_op op;
    int64_t base_version;           /* the mirror version the modification was made on */
    const json_t *delta;            /* update: the local change */
    int64_t mirror_version;
    bool mirror_deleted;
    const json_t *mirror_data;      /* {} when the mirror has no row */
    const json_t *changed_since_base;   /* fields PEMS changed since base_version */
};

enum write_verdict {
    WRITE_SEND,         /* send it on mirror_version: the changes (update) or the delete */
    WRITE_CONVERGED,    /* PEMS already has every value (or the record is gone): synced, unsent */
    WRITE_CONFLICT,     /* PEMS changed a field the modification changes: a conflict */
    WRITE_INVALID       /* not valid on the record as it is now: failed, with error */
};

struct write_decision {
    enum write_verdict verdict;
    json_t *changes;            /* SEND, update: the sanitized delta on mirror_version */
    bool merged;                /* SEND: rebased on the version PEMS moved to */
    json_t *conflict_fields;    /* CONFLICT: sorted field names */
    char error[1024];           /* INVALID: "validation_failed: field: message; ..." */
};

void write_decide(const struct write_case *c, struct write_decision *out);
void write_decision_clear(struct write_decision *d);

#endif
