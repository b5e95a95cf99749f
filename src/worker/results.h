#ifndef PEMS_RESULTS_H
#define PEMS_RESULTS_H

#include <curl/curl.h>
#include <stdint.h>
#include <jansson.h>

#include "step.h"
#include "write_queue.h"

/* The result pipeline: finished items' results gather in a batch and are recorded together
 * (wq_batch_send: one transaction per batch, fenced by each item's claim) on connections of
 * their own, so the database records one batch while requests go on and the next gathers.
 *
 *   results_batch   where a result goes (write_sync adds to it)
 *   results_pump    sends the gathered batch when it is full or old enough; never waits
 *                   unless FLUSH_MAX results pile up behind a flush still running
 *   results_collect takes in the flushes that finished, without waiting
 *   results_settle  waits for the flushes in flight (before a statement that touches the
 *                   same rows in another order: a conflict, a lease extension, a refresh)
 *   results_flush   records everything gathered and waits for it
 */
struct results;

struct results *results_new(const char *conninfo, const char *worker_id);
void results_free(struct results *r);

struct wq_batch *results_batch(struct results *r);
/* A result was added: starts the age clock of the batch. */
void results_touch(struct results *r);
/* STEP_OK or a DB status < 0 (the flush failed: its items come back as their leases end). */
enum step results_pump(struct results *r);
/* Collects the flushes that have finished, without waiting (*collected: how many): STEP_OK or
 * a DB status < 0. */
enum step results_collect(struct results *r, int *collected);
enum step results_settle(struct results *r);
enum step results_flush(struct results *r);
/* After a failure: records what still can be, drops the rest (their leases expire). */
void results_abandon(struct results *r);
/* Nanoseconds until results_pump wants to send (INT64_MAX: nothing gathered). */
int64_t results_due_in(const struct results *r);
/* Sockets of connections with a flush in flight, for the event loop's wait. */
int results_waitfds(struct results *r, struct curl_waitfd *fds, int max);
/* Adds to set each record whose write has a result not recorded yet (its mirror row is
 * about to change). */
void results_written(const struct results *r, json_t *set);
/* Results gathered or in flight. */
int results_pending(const struct results *r);

#endif
