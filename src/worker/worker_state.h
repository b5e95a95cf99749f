#ifndef PEMS_WORKER_STATE_H
#define PEMS_WORKER_STATE_H

/* What pemsworker's three rooms share (src/worker/README.md): run control (worker.c: the
 * schedule, heartbeats, LISTEN), the lanes (lane.c: one locked PEMS server each, its pull and
 * its items) and the event loop (engine.c: libcurl multi, the waits, the starts). */
#include <curl/curl.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "crypto.h"
#include "db.h"
#include "pems_config.h"
#include "results.h"
#include "worker.h"
#include "write_sync.h"

#define NS_PER_S 1000000000LL

struct lane;
struct xfer;

struct worker {
    const struct pems_config *cfg;
    const struct worker_options *opt;
    volatile sig_atomic_t *stop;
    db_t *db;
    PGconn *listen;
    struct cron_expr *cron;
    unsigned char key[CRYPTO_KEY_LEN];
    char worker_id[256];
    char hostname[128];
    json_t *logged_orgs;       /* orgs whose blocked items were already logged */
    int64_t last_heartbeat_ns;
    time_t next_cron;
    bool woken;
    bool busy_elsewhere;       /* the last run left due work held by another worker */
    json_t *unleasable;        /* orgs the last discovery could not lock a server for (its
                                  credentials cannot be read): their due items are not due */
    CURLM *multi;
    struct xfer *xfers;        /* the transfers in flight */
    struct lane **lanes;
    int nlanes, caplanes;
    int next_lane;             /* where the next round of starts begins (fairness) */
    int inflight;
    int64_t confirmed_ns;      /* monotonic: when the last statement answered on db was sent */
    struct results *results;
    struct sync_stats stats;
};

/* run control (worker.c), for the loop */
void worker_heartbeat(struct worker *w, const char *state, bool starting, bool ran);
void worker_heartbeat_if_due(struct worker *w, const char *state);
time_t worker_next_fire(struct worker *w, time_t after);
/* Consumes pending notifications; true when there was at least one. */
bool worker_listen_drain(struct worker *w);
/* Logs event for org_id once, until its server is locked again. */
void worker_log_once(struct worker *w, const char *org_id, const char *event, const char *why);

#endif
