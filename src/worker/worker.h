#ifndef PEMS_WORKER_H
#define PEMS_WORKER_H

#include <signal.h>
#include <stdbool.h>

#include "pems_config.h"

/* pemsworker's run loop: pulls and drains on PEMS_WRITE_SYNC_SCHEDULE, woken at once by
 * NOTIFY pfa_write_queue (whatever makes an item due: sql/functions/queue_wake.sql) and when
 * a rescheduled item falls due; heartbeats every few seconds.
 * Stops when *stop becomes non-zero: nothing new starts, the requests in flight are answered
 * (within PEMS_SHUTDOWN_TIMEOUT) and their results recorded, the other items handed back. */

enum worker_mode {
    WORKER_SCHEDULE,    /* the daemon */
    WORKER_ONCE,        /* pull, drain what is due now, return */
    WORKER_UNTIL_IDLE   /* pull, drain, and keep draining retries until none is pending
                           (bounded by idle_timeout_s) */
};

struct worker_options {
    enum worker_mode mode;
    int idle_timeout_s;
};

/* 0 on a clean stop or a finished --once, 1 on a startup failure or (--once) when the
 * database could not be reached. */
int worker_main(const struct pems_config *cfg, const struct worker_options *opt,
                volatile sig_atomic_t *stop);

#endif
