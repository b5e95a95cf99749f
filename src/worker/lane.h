#ifndef PEMS_LANE_H
#define PEMS_LANE_H

/* A lane is one PEMS server this worker holds the server lock of (server_lock.h): its pull
 * (pull.h), then its claimed items (item.h), each planned once its record is free
 * (write_sync.h). Every step returns enum step: a refusal of the lane's data fails the lane
 * only (lane_step), any other database failure is the run's. */
#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "item.h"
#include "pull.h"
#include "server_lock.h"
#include "step.h"
#include "write_sync.h"

struct worker;

struct lane {
    char org_id[37];
    struct server_lock sl;
    bool writes;        /* claims items (writes enabled for the server and the worker) */
    bool pulling;       /* its pull has not finished */
    bool pull_begun, pull_flight;
    int64_t pull_started_ns;   /* monotonic: when its pull began (PEMS_PULL_MAX_SECONDS) */
    struct pull_job pull;
    struct item **items;
    int nitems, capitems;
    json_t *busy;       /* pfa_id -> items of that record planned or in flight */
    int n_new, n_ready; /* items in those states: most passes over a lane look at these only */
    int inflight, cap;
    bool drained;       /* the last claim found nothing due */
    bool closing;       /* starts nothing more; closes once nothing is in flight */
    int64_t extended_ns;
    int64_t next_start_ns;   /* monotonic: the rate window's next slot, 0 = none waited for */
};

/* The context write_sync's steps run in for this lane. */
struct write_ctx lane_ctx(struct worker *w, struct lane *ln);
/* Moves an item to st, keeping the lane's counts and its busy records. */
void lane_item_set(struct lane *ln, struct item *it, enum item_state st);
/* rc of one of ln's steps: a refusal of its data fails the lane only (STEP_OK then). */
enum step lane_step(struct worker *w, struct lane *ln, enum step rc, const char *step);
/* Closes lane idx (db_ok false: the connection is gone, the database is left alone). */
void lane_close(struct worker *w, int idx, bool db_ok);
/* Opens lanes for the organizations with due items and for those still to pull. */
enum step lanes_discover(struct worker *w, json_t *pull_todo, bool keep_busy);
/* One pass over a lane: pull, claim, plan (*did set when it did something; else it waits for
 * answers, results or the rate window): STEP_OK or a DB status < 0. */
enum step lane_work(struct worker *w, struct lane *ln, json_t **written, bool *did);
/* A server paused (429) for long hands its items back. */
enum step lane_check_pause(struct worker *w, struct lane *ln);
enum step lane_extend_leases(struct worker *w, struct lane *ln);
bool lane_finished(const struct lane *ln);
/* Is org_id in the JSON array of ids orgs? */
bool org_listed(const json_t *orgs, const char *org_id);

#endif
