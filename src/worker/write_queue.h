#ifndef PEMS_WRITE_QUEUE_H
#define PEMS_WRITE_QUEUE_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "db.h"
#include "item.h"
#include "pfa_record.h"

/* pfa_write_queue for pemsworker: claims with a fenced lease, and the results of a batch
 * recorded in one transaction. Every result UPDATE matches locked_by AND claim_seq. */

/* Servers (one per organization) with due work: pending and due, or a lease expired; writes
 * enabled and not paused by a 429. *org_ids is a new array of strings. */
int wq_due_orgs(db_t *db, json_t **org_ids);

/* Items of org_id due but not workable (no PEMS server or writes disabled): new array of
 * {"org": id, "count": n, "reason": "..."}. */
int wq_blocked_orgs(db_t *db, json_t **out);

/* Claims up to max due items of org_id (priority DESC, scheduled_at), FOR UPDATE SKIP
 * LOCKED. Returns the count (0..max) with *items a malloc'd array, or a DB status < 0. */
int wq_claim(db_t *db, const char *worker_id, const char *org_id, int max, int lease_seconds,
             struct item **items);

/* Re-reads the item's mirror record and the fields PEMS changed since its base version (its
 * record was written since the claim). DB_OK or a failure status. */
int wq_item_refresh(db_t *db, struct item *it);

/* The item lease: pushes locked_until to now + lease_seconds for every item of org_id this
 * worker holds. */
int wq_item_leases_extend(db_t *db, const char *worker_id, const char *org_id, int lease_seconds);

/* Seconds until the next item becomes due (may be <= 0), or a large value when none; the
 * organizations in skip_orgs (a JSON array of ids, may be NULL) are left out. Returns DB_OK
 * or a failure status. */
int wq_next_due(db_t *db, const json_t *skip_orgs, double *seconds);

enum wq_outcome {
    WQ_SYNCED,   /* written to PEMS (or nothing left to write): item completed, mod synced */
    WQ_FAILED,   /* permanent: item failed, modification sync_error */
    WQ_RETRY,    /* retryable failure: back to pending at now + delay, an attempt used */
    WQ_DEFER,    /* 429: back to pending at Retry-After, a deferral used */
    WQ_RELEASE   /* never started: back to pending as it was */
};

struct wq_result {
    enum wq_outcome outcome;
    int attempts_inc;
    int deferrals_inc;
    long delay_ms;              /* RETRY / DEFER */
    const char *error;          /* last_error (NULL keeps NULL) */
    int http_status;            /* 0 = none */
    /* SYNCED only */
    bool wrote;                 /* false: converged, nothing was sent */
    int64_t old_version;
    int64_t new_version;
    const json_t *new_data;     /* NULL keeps the mirror's data */
    bool deleted;
    const json_t *changed_fields;
    const json_t *written;      /* the delta written */
    bool merged;
};

/* Results waiting to be recorded together. */
struct wq_batch {
    json_t *rows;       /* gathered, not sent yet */
    json_t *sent_rows;  /* in the flush sent by wq_batch_send and not collected yet */
    const char *worker_id;   /* who sent them (wq_batch_send) */
};
void wq_batch_init(struct wq_batch *b);
void wq_batch_clear(struct wq_batch *b);
int wq_batch_count(const struct wq_batch *b);
int wq_batch_add(struct wq_batch *b, const struct item *it, const struct wq_result *r);
/* Records every result in one transaction (queue items, modifications, mirror + history,
 * audit rows). wq_batch_send hands the results to the connection without waiting (the batch
 * is empty again; returns their number or a DB status < 0); other statements may run before
 * wq_batch_collect, which waits for the outcome: the number of results that passed the fence
 * (the others belonged to a newer claim and changed nothing) or a DB status < 0, when the
 * results are lost and their items come back as their lease expires. A batch refused for
 * the data of one result (db_refused_data) is recorded result by result: only the refused
 * ones are lost, logged. */
int wq_batch_send(db_t *db, const char *worker_id, struct wq_batch *b);
int wq_batch_collect(db_t *db, struct wq_batch *b);
/* Collects the flush in flight on db, if any (a loss is logged): 0 or a DB status < 0. */
int wq_batch_settle(db_t *db, struct wq_batch *b);
/* Adds to set (an object used as a set) each record written by a result not recorded yet,
 * gathered or in flight: its mirror row is about to change. */
void wq_batch_written(const struct wq_batch *b, json_t *set);

#endif
