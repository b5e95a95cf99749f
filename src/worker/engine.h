#ifndef PEMS_ENGINE_H
#define PEMS_ENGINE_H

/* The event loop: every PEMS request of every lane a transfer on one libcurl multi handle,
 * one wait (curl_multi_poll) for transfers, LISTEN, result flushes and the nearest timer. */
#include <stdbool.h>

#include "step.h"

struct worker;

/* One run: pulls every organization's server when with_pull (and again whenever the schedule
 * fires during it), and writes every due item this worker can lock a server for, all servers
 * side by side, until nothing is due or in flight (or the stop flag). STEP_OK or a DB status
 * < 0. */
enum step engine_run(struct worker *w, bool with_pull);
/* Drops the transfers in flight and closes every lane. */
void engine_close_all(struct worker *w, bool db_ok);

#endif
