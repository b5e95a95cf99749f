#ifndef PEMS_ITEM_H
#define PEMS_ITEM_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "pfa_record.h"

/* One claimed queue item, the one type of its whole trip through the worker
 * (src/worker/README.md): what its claim read (write_queue.c), what was decided to send
 * (write_sync.c), and where it stands in its lane (lane.c). */

enum item_state {
    ITEM_NEW,       /* claimed, not planned */
    ITEM_READY,     /* planned: its request waits for the rate window and the caps */
    ITEM_FLIGHT,    /* its request is in flight */
    ITEM_DONE       /* its result is in the result pipeline */
};

struct item {
    /* claimed: its modification, the mirror record and the fields PEMS changed since the
     * modification's base version */
    char id[37];
    char modification_id[37];
    char org_id[37];
    long long claim_seq;
    int attempts;               /* attempts used before this claim */
    int deferrals;              /* 429 deferrals before this claim */
    int priority;
    char *pfa_id;
    enum pfa_op op;
    int64_t base_version;
    json_t *delta;
    bool has_mirror;
    int64_t mirror_version;
    bool mirror_deleted;
    json_t *mirror_data;        /* {} when no mirror row */
    json_t *changed_since_base; /* sorted array of field names */

    /* planned: what to send, decided before the request */
    struct {
        json_t *changes;        /* update: the sanitized delta on the current version */
        int64_t version;        /* the version written on */
        bool merged;
        bool get;               /* the next request reads the record (a 409 without it) */
        int round;              /* 409 rounds so far */
        char conflict_error[256];   /* the 409 that led to the GET (pems_response.error) */
    } plan;

    /* in its lane */
    enum item_state st;
    bool stale;                 /* its record was written since the claim: read the mirror again */
    int64_t leased_ns;          /* monotonic: when the claim or extension that leased it was sent */
};

/* Frees what the item holds (not the item). */
void item_clear(struct item *it);
/* Forgets the plan, keeping its 409 rounds. */
void item_plan_clear(struct item *it);
/* An array of n items from wq_claim. */
void items_free(struct item *items, int n);

#endif
