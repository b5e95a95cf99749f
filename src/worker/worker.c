/* pemsworker's run loop (README, "The worker").
 *
 * Event driven on libcurl's multi interface: every PEMS request of every server is a transfer
 * on one multi handle, and the loop's one wait is curl_multi_poll, given as extra descriptors
 * the LISTEN connection's socket and the sockets of the result flushes in flight, with a
 * timeout that is the nearest timer (a rate-window slot, a batch to flush, a heartbeat, the
 * next look for due work). Why curl_multi_poll rather than multi_socket + epoll: the
 * descriptors are a few hundred at most (PEMS_WORKER_MAX_IN_FLIGHT transfers, two database
 * connections and LISTEN), which poll(2) walks in microseconds, at rates of a few thousand
 * requests per second; multi_socket would add the socket and timer callbacks and an epoll
 * set to keep in step with them for no measurable gain at that size.
 *
 * A lane is one PEMS server this worker holds the server lock of (server_lock.h). It pulls
 * first when the run pulls (pull.h), then claims items (their item leases, write_queue.h),
 * plans them (write_sync.h) and starts their requests as the server's rate window and its
 * in-flight cap allow; a request the window does not allow yet waits for its slot as a timer.
 * Writes of one record never overlap: an item waits while another item of its record is
 * planned or in flight, and until that one's result is recorded, then reads the mirror again.
 * Results go to the result pipeline (results.h). Nothing in the loop sleeps. */
#include "worker.h"
#include "cron.h"
#include "crypto.h"
#include "db.h"
#include "log.h"
#include "metrics.h"
#include "pull.h"
#include "results.h"
#include "server_lock.h"
#include "step.h"
#include "text.h"
#include "write_queue.h"
#include "write_sync.h"
#include "util.h"

#include <curl/curl.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define HEARTBEAT_S 5
#define DISCOVER_NS 500000000LL        /* look for newly due servers twice a second */
#define LANE_GIVE_UP_NS 2000000000LL   /* a server paused longer than this is left for later */
#define BUSY_RETRY_S 1.0               /* due work on a server another worker holds */
#define ONCE_LOCK_WAIT_NS 60000000000LL
#define WAIT_MAX_MS 200                /* the loop looks at the stop flag this often at least */
#define NS_PER_S 1000000000LL
/* A request starts only within this long of an answer on the connection holding the server
 * locks: a worker cut off the database stops at once, before PostgreSQL can end its session
 * and let another worker take the servers (src/worker/README.md, Leases) */
#define SESSION_FRESH_NS 2000000000LL
#define SESSION_CONFIRM_NS 1000000000LL

enum slot_state {
    SLOT_NEW,       /* claimed, not planned */
    SLOT_READY,     /* planned: its request waits for the rate window and the caps */
    SLOT_FLIGHT,    /* its request is in flight */
    SLOT_DONE       /* its result is in the result pipeline */
};

/* One claimed item of a lane. */
struct slot {
    struct wq_item it;
    struct write_plan plan;
    enum slot_state st;
    bool stale;         /* its record was written since the claim: read the mirror again */
    int64_t leased_ns;  /* monotonic: when the claim or extension that leased it was sent */
};

struct lane {
    char org_id[37];
    struct server_lock sl;
    bool writes;        /* claims items (writes enabled for the server and the worker) */
    bool pulling;       /* its pull has not finished */
    bool pull_begun, pull_flight;
    int64_t pull_started_ns;   /* monotonic: when its pull began (PEMS_PULL_MAX_SECONDS) */
    struct pull_job pull;
    struct slot **slots;
    int nslots, capslots;
    json_t *busy;       /* pfa_id -> slots of that record planned or in flight */
    int n_new, n_ready; /* slots in those states: most passes over a lane look at these only */
    int inflight, cap;
    bool drained;       /* the last claim found nothing due */
    bool closing;       /* starts nothing more; closes once nothing is in flight */
    int64_t extended_ns;
    int64_t next_start_ns;   /* monotonic: the rate window's next slot, 0 = none waited for */
};

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


/* ---- LISTEN pfa_write_queue on its own connection ---- */

static void listen_close(struct worker *w)
{
    if (w->listen)
        PQfinish(w->listen);
    w->listen = NULL;
}

static void listen_open(struct worker *w)
{
    if (w->listen && PQstatus(w->listen) == CONNECTION_OK)
        return;
    listen_close(w);
    PGconn *pg = db_pq_connect(w->cfg->database_url);
    if (!pg || PQstatus(pg) != CONNECTION_OK) {
        if (pg)
            PQfinish(pg);
        return;
    }
    PGresult *r = PQexec(pg, "LISTEN pfa_write_queue");
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok) {
        PQfinish(pg);
        return;
    }
    w->listen = pg;
    /* anything queued while we were not listening is found by the next drain */
    w->woken = true;
    log_debug("listen_ready", NULL);
}

/* Consumes pending notifications; true when there was at least one. */
static bool listen_drain(struct worker *w)
{
    if (!w->listen)
        return false;
    if (!PQconsumeInput(w->listen)) {
        log_warn("listen_lost", "error=\"%s\"", PQerrorMessage(w->listen));
        listen_close(w);
        return false;
    }
    bool any = false;
    PGnotify *n;
    while ((n = PQnotifies(w->listen)) != NULL) {
        any = true;
        PQfreemem(n);
    }
    return any;
}

/* Sleeps up to ns, returning early on a notification or a signal. */
static void wait_for(struct worker *w, int64_t ns)
{
    if (ns <= 0 || *w->stop)
        return;
    int ms = (int)((ns + 999999) / 1000000);
    if (w->listen) {
        struct pollfd pfd = { .fd = PQsocket(w->listen), .events = POLLIN };
        int rc = poll(&pfd, 1, ms);
        if (rc > 0 && listen_drain(w))
            w->woken = true;
        return;
    }
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* ---- heartbeat and batch stats ---- */

/* Rows of workers not seen for three schedule periods are dead workers' (src/README.md,
 * Dead workers). */
static void prune_heartbeats(struct worker *w)
{
    time_t after = cron_next(w->cron, w->next_cron, w->cfg->write_sync_tz);
    char keep[32];
    snprintf(keep, sizeof keep, "%lld",
             (long long)(after == (time_t)-1 ? 0 : 3 * (after - w->next_cron)));
    const char *params[] = { keep };
    PGresult *res = db_query(w->db, "prune_heartbeats",
                             "SELECT pems_prune_heartbeats($1::double precision)", 1, params);
    if (!res)
        return;
    if (atoi(PQgetvalue(res, 0, 0)) > 0)
        log_info("heartbeats_pruned", "rows=%s keep_s=%s", PQgetvalue(res, 0, 0), keep);
    PQclear(res);
}

static void heartbeat(struct worker *w, const char *state, bool starting, bool ran)
{
    char pid[16], next[32];
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    snprintf(next, sizeof next, "%lld", (long long)w->next_cron);
    const char *params[] = { w->worker_id, w->hostname, pid, w->next_cron > 0 ? next : NULL,
                             state, starting ? "t" : "f", ran ? "t" : "f" };
    if (db_exec(w->db, "worker_heartbeat",
                "INSERT INTO worker_heartbeats (worker_id, hostname, pid, started_at, last_seen_at,"
                "  last_run_at, next_sync_at, state)"
                " VALUES ($1, $2, $3::int, now(), now(),"
                "  CASE WHEN $7::boolean THEN now() END, to_timestamp($4::double precision), $5)"
                " ON CONFLICT (worker_id) DO UPDATE SET hostname = EXCLUDED.hostname,"
                "  pid = EXCLUDED.pid, last_seen_at = now(), state = EXCLUDED.state,"
                "  started_at = CASE WHEN $6::boolean THEN now() ELSE worker_heartbeats.started_at END,"
                "  last_run_at = CASE WHEN $7::boolean THEN now() ELSE worker_heartbeats.last_run_at END,"
                "  next_sync_at = coalesce(EXCLUDED.next_sync_at, worker_heartbeats.next_sync_at)",
                7, params) != DB_OK)
        log_debug("heartbeat_not_recorded", "error=\"%s\"", db_errmsg(w->db));
    else if (starting || ran)
        prune_heartbeats(w);
    /* also when it failed: the next try is a heartbeat interval away, not at once */
    w->last_heartbeat_ns = util_mono_ns();
}

static void heartbeat_if_due(struct worker *w, const char *state)
{
    if (util_mono_ns() - w->last_heartbeat_ns >= HEARTBEAT_S * NS_PER_S)
        heartbeat(w, state, false, false);
}

static int batch_row_start(struct worker *w, char id[37])
{
    const char *params[] = { w->worker_id };
    PGresult *res = db_query(w->db, "batch_start",
                             "INSERT INTO sync_batches (worker_id, started_at) VALUES ($1, now())"
                             " RETURNING id", 1, params);
    if (!res)
        return db_last_status(w->db);
    snprintf(id, 37, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return DB_OK;
}

static void batch_row_finish(struct worker *w, const char *id)
{
    const struct sync_stats *s = &w->stats;
    char v[7][16];
    int vals[7] = { s->processed, s->successful, s->failed, s->conflicts, s->skipped, s->merged,
                    s->pulled };
    for (int i = 0; i < 7; i++)
        snprintf(v[i], sizeof v[i], "%d", vals[i]);
    const char *params[] = { id, v[0], v[1], v[2], v[3], v[4], v[5], v[6] };
    if (db_exec(w->db, "batch_finish",
                "UPDATE sync_batches SET completed_at = now(), total_processed = $2::int,"
                " successful = $3::int, failed = $4::int, conflicts = $5::int, skipped = $6::int,"
                " merged = $7::int, pulled = $8::int WHERE id = $1", 8, params) != DB_OK)
        log_warn("batch_not_recorded", "batch=%s error=\"%s\"", id, db_errmsg(w->db));
}

/* ---- lanes: one locked PEMS server each ---- */

static int settle_results(void *w)
{
    return results_settle(((struct worker *)w)->results);
}

static struct write_ctx lane_ctx(struct worker *w, struct lane *ln)
{
    struct write_ctx c = { .db = w->db, .worker_id = w->worker_id,
                           .max_attempts = w->cfg->max_attempts, .sl = &ln->sl,
                           .batch = results_batch(w->results), .settle = settle_results,
                           .settle_arg = w, .stats = &w->stats };
    return c;
}

static void busy_add(struct lane *ln, const char *pfa_id, int d)
{
    json_int_t n = json_integer_value(json_object_get(ln->busy, pfa_id)) + d;
    if (n > 0)
        json_object_set_new(ln->busy, pfa_id, json_integer(n));
    else
        json_object_del(ln->busy, pfa_id);
}

static void slot_set(struct lane *ln, struct slot *s, enum slot_state st)
{
    bool was = s->st == SLOT_READY || s->st == SLOT_FLIGHT;
    bool is = st == SLOT_READY || st == SLOT_FLIGHT;
    if (was != is)
        busy_add(ln, s->it.pfa_id, is ? 1 : -1);
    ln->n_new += (st == SLOT_NEW) - (s->st == SLOT_NEW);
    ln->n_ready += (st == SLOT_READY) - (s->st == SLOT_READY);
    s->st = st;
}

static void slot_free(struct slot *s)
{
    write_plan_clear(&s->plan);
    wq_item_clear(&s->it);
    free(s);
}

/* Hands back every item not started yet (the result pipeline records it). */
static int lane_release_unstarted(struct worker *w, struct lane *ln)
{
    struct write_ctx c = lane_ctx(w, ln);
    int n = 0;
    for (int i = 0; i < ln->nslots; i++) {
        struct slot *s = ln->slots[i];
        if (s->st != SLOT_NEW && s->st != SLOT_READY)
            continue;
        if (write_sync_release(&c, &s->it) != 0)
            return STEP_ERROR;
        slot_set(ln, s, SLOT_DONE);
        n++;
    }
    if (n) {
        results_touch(w->results);
        log_debug("items_released", "org=%s count=%d", ln->org_id, n);
    }
    return STEP_OK;
}

/* No new requests on this lane: it closes once its requests in flight are answered. */
static int lane_quiesce(struct worker *w, struct lane *ln)
{
    ln->closing = true;
    if (ln->pulling && !ln->pull_flight)
        ln->pulling = false;
    return lane_release_unstarted(w, ln);
}

/* A statement was refused for what this lane's server sent (db_refused_data): that lane
 * alone stops, logged, its server's health says why; the run and every other lane go on. */
static int lane_fail(struct worker *w, struct lane *ln, const char *step)
{
    char why[256];
    snprintf(why, sizeof why, "the database refused what this PEMS server sent (%s): ", step);
    size_t k = strlen(why);
    text_utf8_clip(db_errmsg(w->db), strlen(db_errmsg(w->db)), why + k, sizeof why - k);
    log_error("lane_failed", "org=%s org_code=%s step=%s sqlstate=%s error=\"%s\"", ln->org_id,
              ln->sl.srv.org_code ? ln->sl.srv.org_code : "", step, db_sqlstate(w->db),
              db_errmsg(w->db));
    const char *params[] = { ln->sl.srv.id, why };
    if (db_exec(w->db, "lane_failed_health",
                "UPDATE api_servers SET health_ok = false, health_error = $2,"
                " health_checked_at = now() WHERE id = $1", 2, params) != DB_OK &&
        !db_refused_data(w->db))
        return db_last_status(w->db);
    ln->pulling = ln->pulling && ln->pull_flight;
    return lane_quiesce(w, ln);
}

/* rc of one of ln's steps: a refusal of its data fails the lane only (STEP_OK then), any
 * other failure is the run's. */
static int lane_step(struct worker *w, struct lane *ln, int rc, const char *step)
{
    if (rc >= 0 || rc != DB_ERROR || !db_refused_data(w->db))
        return rc;
    return lane_fail(w, ln, step);
}

static void lane_free(struct lane *ln)
{
    for (int i = 0; i < ln->nslots; i++)
        slot_free(ln->slots[i]);
    free(ln->slots);
    json_decref(ln->busy);
    pull_job_clear(&ln->pull);
    free(ln);
}

/* db_ok false: the connection is gone, leave the database alone (leases expire). */
static void lane_close(struct worker *w, int idx, bool db_ok)
{
    struct lane *ln = w->lanes[idx];
    if (db_ok) {
        lane_release_unstarted(w, ln);
        /* released items are pending before another worker can lock the server */
        results_flush(w->results);
    } else {
        ln->sl.held = false;
    }
    server_lock_release(w->db, &ln->sl);
    lane_free(ln);
    w->lanes[idx] = w->lanes[--w->nlanes];
}

static struct lane *lane_of(const struct worker *w, const char *org_id)
{
    for (int i = 0; i < w->nlanes; i++)
        if (strcmp(w->lanes[i]->org_id, org_id) == 0)
            return w->lanes[i];
    return NULL;
}

static bool lane_open_for(const struct worker *w, const char *org_id)
{
    return lane_of(w, org_id) != NULL;
}

/* The schedule fired while the lane writes: it pulls (first), then writes on. */
static void lane_pull_again(struct lane *ln)
{
    pull_job_clear(&ln->pull);
    ln->pulling = true;
    ln->pull_begun = ln->pull_flight = false;
}

static void log_once(struct worker *w, const char *org_id, const char *event, const char *why)
{
    if (json_object_get(w->logged_orgs, org_id))
        return;
    json_object_set_new(w->logged_orgs, org_id, json_true());
    log_warn(event, "org=%s reason=\"%s\"", org_id, why);
}

static bool org_in(const json_t *orgs, const char *org_id)
{
    size_t i;
    json_t *o;
    json_array_foreach(orgs, i, o)
        if (strcmp(json_string_value(o), org_id) == 0)
            return true;
    return false;
}

/* Opens a lane for org_id: STEP_OK, STEP_DECLINED (*busy set when another worker holds its
 * server), or a DB status < 0. */
static int lane_open(struct worker *w, const char *org_id, bool pull, bool *busy)
{
    struct lane *ln = calloc(1, sizeof *ln);
    if (!ln || (w->nlanes == w->caplanes && w->caplanes >= 4096)) {
        free(ln);
        return STEP_DECLINED;
    }
    if (w->nlanes == w->caplanes) {
        int cap = w->caplanes ? 2 * w->caplanes : 16;
        struct lane **l = realloc(w->lanes, sizeof *l * (size_t)cap);
        if (!l) {
            free(ln);
            return STEP_DECLINED;
        }
        w->lanes = l;
        w->caplanes = cap;
    }
    enum server_lock_why why = 0;
    int64_t sent = util_mono_ns();
    int rc = server_lock_acquire(w->db, org_id, w->key, &ln->sl, &why);
    if (rc != STEP_OK) {
        free(ln);
        if (rc < 0)
            return rc;
        if (why == SERVER_LOCK_BUSY)
            *busy = true;
        else if (why == SERVER_LOCK_NONE)
            log_once(w, org_id, "server_missing", "no PEMS server configured");
        else if (why == SERVER_LOCK_BAD_SECRET) {
            log_once(w, org_id, "server_credentials_unreadable",
                     "the PEMS credentials cannot be decrypted with ENCRYPTION_KEY");
            if (!org_in(w->unleasable, org_id))
                json_array_append_new(w->unleasable, json_string(org_id));
        }
        return STEP_DECLINED;
    }
    json_object_del(w->logged_orgs, org_id);
    snprintf(ln->org_id, sizeof ln->org_id, "%s", org_id);
    ln->busy = json_object();
    ln->writes = w->cfg->write_sync_enabled && ln->sl.srv.write_enabled;
    ln->pulling = pull;
    ln->cap = ln->sl.srv.max_in_flight > 0 ? ln->sl.srv.max_in_flight : 2;
    ln->extended_ns = util_mono_ns();
    w->confirmed_ns = sent;
    w->lanes[w->nlanes++] = ln;
    return STEP_OK;
}

/* Opens lanes for the organizations with due items and for those still to pull (removed
 * from pull_todo once pulled or declined for good). */
static int discover(struct worker *w, json_t *pull_todo, bool keep_busy)
{
    json_t *orgs = NULL;
    json_array_clear(w->unleasable);
    int rc = w->cfg->write_sync_enabled ? wq_due_orgs(w->db, &orgs) : DB_OK;
    if (rc != DB_OK)
        return rc;
    if (!orgs)
        orgs = json_array();
    bool busy = false;
    for (size_t i = 0; i < json_array_size(pull_todo) && !*w->stop;) {
        const char *org = json_string_value(json_array_get(pull_todo, i));
        bool b = false;
        struct lane *open = lane_of(w, org);
        if (open && open->closing) {
            i++;   /* its pull opens a lane of its own once this one has closed */
            continue;
        }
        if (open) {
            /* a lane writing: it pulls now; a lane still pulling goes on (it is bounded) */
            if (!open->pulling)
                lane_pull_again(open);
            json_array_remove(pull_todo, i);
            continue;
        }
        rc = lane_open(w, org, true, &b);
        if (rc < 0)
            break;
        busy = busy || b;
        if (b && keep_busy)
            i++;
        else
            json_array_remove(pull_todo, i);
    }
    size_t i;
    json_t *o;
    json_array_foreach(orgs, i, o) {
        if (rc < 0 || *w->stop)
            break;
        const char *org = json_string_value(o);
        if (lane_open_for(w, org))
            continue;
        rc = lane_open(w, org, false, &busy);
    }
    json_decref(orgs);
    w->busy_elsewhere = busy;
    return rc < 0 ? rc : STEP_OK;
}

static int claim_size(const struct worker *w, const struct lane *ln)
{
    /* two seconds of the server's rate, and enough to fill its cap: a claimed item waits in
     * memory with its mirror record, and 200 servers' claims of their whole backlog held
     * tens of MiB; the next claim comes as soon as these have started */
    long rps = ln->sl.srv.rate_limit_rps > 0 ? ln->sl.srv.rate_limit_rps : 10;
    long n = 2 * rps;
    if (n < ln->cap)
        n = ln->cap;
    /* nor should a claim outlive its lease at the server's rate */
    long lease_n = rps * (w->cfg->lease_seconds > 3 ? w->cfg->lease_seconds / 3 : 1);
    if (n > lease_n)
        n = lease_n;
    if (n > w->cfg->batch_size)
        n = w->cfg->batch_size;
    return n < 1 ? 1 : (int)n;
}

/* Drops finished slots and claims more: STEP_OK, STEP_DONE (nothing due), DB status < 0. */
static int lane_claim(struct worker *w, struct lane *ln)
{
    int keep = 0;
    for (int i = 0; i < ln->nslots; i++) {
        if (ln->slots[i]->st == SLOT_DONE)
            slot_free(ln->slots[i]);
        else
            ln->slots[keep++] = ln->slots[i];
    }
    ln->nslots = keep;
    struct wq_item *items = NULL;
    int64_t sent = util_mono_ns();
    int n = wq_claim(w->db, w->worker_id, ln->org_id, claim_size(w, ln), w->cfg->lease_seconds,
                     &items);
    if (n < 0)
        return n;
    w->confirmed_ns = sent;
    if (n == 0)
        return STEP_DONE;
    if (ln->nslots + n > ln->capslots) {
        int cap = ln->nslots + n + 16;
        struct slot **sl = realloc(ln->slots, sizeof *sl * (size_t)cap);
        if (!sl) {
            wq_items_free(items, n);
            return STEP_ERROR;
        }
        ln->slots = sl;
        ln->capslots = cap;
    }
    /* a record whose write is not recorded yet is read here at its old version */
    json_t *written = json_object();
    results_written(w->results, written);
    for (int i = 0; i < n; i++) {
        struct slot *s = calloc(1, sizeof *s);
        if (!s) {
            json_decref(written);
            wq_items_free(items + i, n - i);  /* the rest come back as their lease ends */
            return STEP_ERROR;
        }
        s->it = items[i];
        s->st = SLOT_NEW;
        ln->n_new++;
        s->leased_ns = sent;
        s->stale = json_object_get(ln->busy, s->it.pfa_id) || json_object_get(written, s->it.pfa_id);
        ln->slots[ln->nslots++] = s;
    }
    json_decref(written);
    free(items);
    return STEP_OK;
}

/* Plans the claimed items in claim order, each once its record is free. Returns how many
 * were planned or finished, or a DB status < 0. */
static int lane_plan(struct worker *w, struct lane *ln, json_t **written)
{
    int done = 0;
    for (int i = 0; i < ln->nslots && ln->n_new > 0; i++) {
        struct slot *s = ln->slots[i];
        if (s->st != SLOT_NEW || json_object_get(ln->busy, s->it.pfa_id))
            continue;
        if (s->stale) {
            if (!*written) {
                *written = json_object();
                results_written(w->results, *written);
            }
            if (json_object_get(*written, s->it.pfa_id))
                continue;   /* wait until the write before it is recorded */
            int rc = results_settle(w->results);
            if (rc == STEP_OK)
                rc = wq_item_refresh(w->db, &s->it);
            if (rc != STEP_OK)
                return rc;
            s->stale = false;
        }
        struct write_ctx c = lane_ctx(w, ln);
        int rc = write_sync_prepare(&c, &s->it, &s->plan);
        if (rc < 0)
            return rc;
        slot_set(ln, s, rc == STEP_AGAIN ? SLOT_READY : SLOT_DONE);
        if (rc != STEP_AGAIN)
            results_touch(w->results);
        done++;
    }
    return done;
}

/* What a transfer in flight belongs to: kept beside the request, found by the easy handle. */
struct xfer {
    struct lane *ln;
    struct slot *slot;          /* NULL: the lane's pull */
    struct pems_request *rq;
    int64_t stamp_ns;           /* its start in the server's rate window (wall clock) */
    struct xfer *prev, *next;   /* every transfer in flight (worker.xfers) */
};

static struct xfer *xfer_new(struct worker *w, struct lane *ln, struct slot *s,
                             struct pems_request *rq)
{
    struct xfer *x = calloc(1, sizeof *x);
    if (x) {
        x->ln = ln;
        x->slot = s;
        x->rq = rq;
        x->next = w->xfers;
        if (w->xfers)
            w->xfers->prev = x;
        w->xfers = x;
    }
    return x;
}

static void xfer_free(struct worker *w, struct xfer *x)
{
    if (x->prev)
        x->prev->next = x->next;
    else
        w->xfers = x->next;
    if (x->next)
        x->next->prev = x->prev;
    free(x);
}

/* Takes a slot of the rate window: true when one was free now; else ln->next_start_ns says
 * when it will be. */
static bool take_slot(struct lane *ln, int64_t *stamp_ns)
{
    int64_t wait = server_lock_try_slot(&ln->sl, stamp_ns);
    if (wait <= 0) {
        ln->next_start_ns = 0;
        return true;
    }
    ln->next_start_ns = util_mono_ns() + wait;
    return false;
}

static bool room(const struct worker *w, const struct lane *ln)
{
    return ln->inflight < ln->cap && w->inflight < w->cfg->worker_max_in_flight;
}

/* libcurl is about to send the request (its connection is open): from now on it counts in the
 * server's rate window, however long the loop or the connect took since its slot was taken
 * (curl_easy_setopt(3), CURLOPT_PREREQFUNCTION). */
static int on_prereq(void *arg, char *primary_ip, char *local_ip, int primary_port,
                     int local_port)
{
    struct xfer *x = arg;
    (void)primary_ip;
    (void)local_ip;
    (void)primary_port;
    (void)local_port;
    int64_t was = x->stamp_ns;
    x->stamp_ns = server_lock_sending(&x->ln->sl, was);
    if (x->stamp_ns - was > 5000000)
        log_debug("request_sent_late", "org=%s late_us=%lld", x->ln->org_id,
                  (long long)((x->stamp_ns - was) / 1000));
    return CURL_PREREQFUNC_OK;
}

/* Starts one request (the pull's next one, else the oldest planned item's) if the caps and
 * the rate window allow. true when one was started. */
static bool lane_start_one(struct worker *w, struct lane *ln)
{
    if (ln->closing || !room(w, ln))
        return false;
    struct slot *s = NULL;
    if (ln->pulling) {
        if (ln->pull_flight || !ln->pull_begun)
            return false;
    } else {
        if (ln->n_ready == 0)
            return false;
        for (int i = 0; i < ln->nslots && !s; i++)
            if (ln->slots[i]->st == SLOT_READY)
                s = ln->slots[i];
        if (!s)
            return false;
    }
    /* nothing starts on a lock session not heard from lately, nor for an item whose lease
     * has less than a third left (the extensions, every third, keep more than that) */
    int64_t now = util_mono_ns();
    if (now - w->confirmed_ns > SESSION_FRESH_NS)
        return false;
    if (s && now - s->leased_ns > (int64_t)w->cfg->lease_seconds * NS_PER_S * 2 / 3)
        return false;
    int64_t stamp = 0;
    if (!take_slot(ln, &stamp))
        return false;
    struct write_ctx c = lane_ctx(w, ln);
    struct pems_request *rq = s ? write_sync_request(&c, &s->it, &s->plan)
                                : pull_request(&ln->sl, &ln->pull);
    struct xfer *x = rq ? xfer_new(w, ln, s, rq) : NULL;
    if (!x) {
        pems_request_free(rq);
        log_error("request_not_made", "org=%s reason=\"out of memory\"", ln->org_id);
        return false;
    }
    x->stamp_ns = stamp;
    CURL *e = pems_request_easy(rq);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, on_prereq);
    curl_easy_setopt(e, CURLOPT_PREREQDATA, x);
    if (curl_multi_add_handle(w->multi, e) != CURLM_OK) {
        log_error("request_not_started", "org=%s", ln->org_id);
        pems_request_free(rq);
        xfer_free(w, x);
        return false;
    }
    ln->inflight++;
    w->inflight++;
    log_debug("request_started", "org=%s wall_us=%lld", ln->org_id, (long long)(util_wall_ns() / 1000));
    if (s)
        slot_set(ln, s, SLOT_FLIGHT);
    else
        ln->pull_flight = true;
    return true;
}

/* One pass over a lane: pull, claim, plan. Returns > 0 when it did something, 0 when it
 * waits (for answers, results or the rate window), or a DB status < 0. */
static int lane_work(struct worker *w, struct lane *ln, json_t **written)
{
    if (ln->closing)
        return 0;
    if (!server_lock_valid(w->db, &ln->sl)) {
        /* the connection holding the lock was lost: another worker may hold it now */
        log_warn("server_lock_lost", "org=%s", ln->org_id);
        return lane_quiesce(w, ln) < 0 ? STEP_ERROR : 1;
    }
    if (*w->stop)
        return lane_quiesce(w, ln) < 0 ? STEP_ERROR : 1;
    if (ln->pulling) {
        if (!ln->pull_begun) {
            int rc = pull_begin(w->db, &ln->sl, &ln->pull);
            if (rc < 0)
                return rc;
            ln->pull_begun = true;
            ln->pull_started_ns = util_mono_ns();
            return 1;
        }
        return 0;
    }
    if (!ln->writes) {
        ln->drained = true;
        return 0;
    }
    int live = ln->n_new + ln->n_ready;
    int did = 0;
    if (live == 0 && !ln->drained && ln->inflight < ln->cap) {
        int rc = lane_claim(w, ln);
        if (rc < 0)
            return rc;
        if (rc == STEP_DONE)
            ln->drained = true;
        did = 1;
    }
    int planned = lane_plan(w, ln, written);
    if (planned < 0)
        return planned;
    return did + planned;
}

/* The server paused us (429) for long: hand its items back, look again later. */
static int lane_check_pause(struct worker *w, struct lane *ln)
{
    if (ln->closing || ln->next_start_ns == 0 ||
        ln->next_start_ns - util_mono_ns() <= LANE_GIVE_UP_NS)
        return STEP_OK;
    if (ln->pulling && !ln->pull_flight)
        log_info("pull_deferred", "org=%s reason=rate_window", ln->org_id);
    return lane_quiesce(w, ln);
}

static bool lane_finished(const struct lane *ln)
{
    if (ln->inflight > 0)
        return false;
    if (ln->closing)
        return true;
    if (ln->pulling || ln->n_new + ln->n_ready > 0)
        return false;
    return ln->drained || !ln->writes;
}

static int lane_extend_leases(struct worker *w, struct lane *ln)
{
    if (util_mono_ns() - ln->extended_ns <= (int64_t)w->cfg->lease_seconds * NS_PER_S / 3)
        return STEP_OK;
    bool held = false;
    for (int i = 0; i < ln->nslots && !held; i++)
        held = ln->slots[i]->st != SLOT_DONE;
    ln->extended_ns = util_mono_ns();
    if (!held)
        return STEP_OK;
    /* it updates items a flush in flight updates too, in another order: settle first;
     * results lost there must not have their items' leases extended */
    int rc = results_settle(w->results);
    int64_t sent = util_mono_ns();
    if (rc == STEP_OK)
        rc = wq_item_leases_extend(w->db, w->worker_id, ln->org_id, w->cfg->lease_seconds);
    if (rc == STEP_OK) {
        w->confirmed_ns = sent;
        for (int i = 0; i < ln->nslots; i++)
            if (ln->slots[i]->st != SLOT_DONE)
                ln->slots[i]->leased_ns = sent;
    }
    return rc;
}

/* A transfer ended: its answer goes to the pull or to the item's write. */
static int on_done(struct worker *w, CURL *e, CURLcode cc)
{
    struct xfer *x = NULL;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&x);
    curl_multi_remove_handle(w->multi, e);
    struct lane *ln = x->ln;
    struct slot *s = x->slot;
    struct pems_response resp;
    pems_request_finish(x->rq, cc, &resp);
    pems_request_free(x->rq);
    xfer_free(w, x);
    ln->inflight--;
    w->inflight--;
    int rc;
    if (!s) {
        ln->pull_flight = false;
        rc = lane_step(w, ln, pull_answer(w->db, &ln->sl, &ln->pull, &resp), "pull");
        int64_t ran_ns = util_mono_ns() - ln->pull_started_ns;
        if (rc == STEP_AGAIN && !ln->closing &&
            ran_ns >= (int64_t)w->cfg->pull_max_seconds * NS_PER_S) {
            /* PEMS_PULL_MAX_SECONDS: the next run resumes from the cursor stored with the
             * last page */
            log_warn("pull_time_limit", "org=%s org_code=%s pages=%d applied=%d seconds=%lld"
                     " limit_s=%d", ln->org_id, ln->sl.srv.org_code ? ln->sl.srv.org_code : "",
                     ln->pull.st.pages, ln->pull.st.applied, (long long)(ran_ns / NS_PER_S),
                     w->cfg->pull_max_seconds);
            rc = STEP_DONE;
        }
        if (rc != STEP_AGAIN) {
            w->stats.pulled += ln->pull.st.applied;
            ln->pulling = false;
        } else if (ln->closing) {
            ln->pulling = false;
        }
    } else {
        struct write_ctx c = lane_ctx(w, ln);
        rc = write_sync_answer(&c, &s->it, &s->plan, &resp);
        if (rc < 0) {
            /* its result is not recorded: the item comes back when its lease ends */
            slot_set(ln, s, SLOT_DONE);
            rc = lane_step(w, ln, rc, "write");
        } else if (rc == STEP_AGAIN && ln->closing) {
            /* a follow-up request, but nothing more starts: back to pending */
            rc = write_sync_release(&c, &s->it) == 0 ? STEP_DONE : STEP_ERROR;
        }
        if (rc == STEP_AGAIN) {
            slot_set(ln, s, SLOT_READY);
        } else if (rc >= 0) {
            slot_set(ln, s, SLOT_DONE);
            results_touch(w->results);
            /* the next items of its record read the mirror again once this is recorded */
            for (int i = 0; i < ln->nslots; i++)
                if (ln->slots[i]->st == SLOT_NEW && strcmp(ln->slots[i]->it.pfa_id, s->it.pfa_id) == 0)
                    ln->slots[i]->stale = true;
        }
    }
    pems_response_clear(&resp);
    return rc < 0 ? rc : STEP_OK;
}

/* Gives up the requests still in flight (the shutdown's time is up, or the database is
 * gone): their items stay leased and come back when the lease ends; the Idempotency-Key
 * makes PEMS apply a write that did arrive only once. */
static void abandon_transfers(struct worker *w)
{
    int n = 0;
    for (int i = 0; i < w->nlanes; i++)
        w->lanes[i]->closing = true;
    while (w->xfers) {
        struct xfer *x = w->xfers;
        curl_multi_remove_handle(w->multi, pems_request_easy(x->rq));
        x->ln->inflight--;
        if (x->slot)
            slot_set(x->ln, x->slot, SLOT_DONE);
        else
            x->ln->pull_flight = x->ln->pulling = false;
        pems_request_free(x->rq);
        xfer_free(w, x);
        n++;
    }
    w->inflight = 0;
    if (n)
        log_warn("requests_abandoned", "count=%d", n);
}

static void close_all_lanes(struct worker *w, bool db_ok)
{
    abandon_transfers(w);
    while (w->nlanes > 0)
        lane_close(w, w->nlanes - 1, db_ok);
}

/* Asks the connection holding the server locks for an answer when none came lately (a cut
 * link blocks here, up to its tcp_user_timeout, and nothing starts meanwhile). */
static int session_confirm(struct worker *w)
{
    int64_t sent = util_mono_ns();
    if (w->nlanes == 0 || sent - w->confirmed_ns <= SESSION_CONFIRM_NS)
        return STEP_OK;
    int rc = db_exec(w->db, "worker_session_confirm", "SELECT 1", 0, NULL);
    if (rc == DB_OK)
        w->confirmed_ns = sent;
    return rc;
}

/* The loop's one wait: transfers, LISTEN, result flushes, and the nearest timer. */
static void wait_events(struct worker *w, int64_t timeout_ns)
{
    struct curl_waitfd fds[4];
    int n = 0, listen_at = -1;
    if (w->listen && PQsocket(w->listen) >= 0) {
        listen_at = n;
        fds[n++] = (struct curl_waitfd){ .fd = PQsocket(w->listen), .events = CURL_WAIT_POLLIN };
    }
    n += results_waitfds(w->results, fds + n, 4 - n);
    int ms = timeout_ns <= 0 ? 0 : (int)((timeout_ns + 999999) / 1000000);
    if (ms > WAIT_MAX_MS)
        ms = WAIT_MAX_MS;
    int numfds = 0;
    curl_multi_poll(w->multi, fds, (unsigned int)n, ms, &numfds);
    if (listen_at >= 0 && (fds[listen_at].revents & CURL_WAIT_POLLIN) && listen_drain(w))
        w->woken = true;
}

/* One run: pulls every organization's server when with_pull, and writes every due item this
 * worker can lock a server for, all servers side by side, until nothing is due or in flight
 * (or the stop flag: nothing new starts, what is in flight is answered within
 * PEMS_SHUTDOWN_TIMEOUT and recorded). 0 or a DB status < 0. */
/* Adds every organization with a PEMS server to pull_todo (once). */
static int pull_orgs_add(struct worker *w, json_t *pull_todo)
{
    PGresult *res = db_query(w->db, "worker_pull_orgs",
                             "SELECT organization_id FROM api_servers ORDER BY organization_id",
                             0, NULL);
    if (!res)
        return db_last_status(w->db);
    for (int i = 0; i < PQntuples(res); i++)
        if (!org_in(pull_todo, PQgetvalue(res, i, 0)))
            json_array_append_new(pull_todo, json_string(PQgetvalue(res, i, 0)));
    PQclear(res);
    return STEP_OK;
}

static time_t next_fire(struct worker *w, time_t after);

/* Each server on its own schedule: when the schedule fires during a run (one server's pull
 * or writes still going), every other server's pull starts now, not when that run ends. */
static int schedule_in_run(struct worker *w, json_t *pull_todo)
{
    time_t now_s = (time_t)(util_wall_ns() / NS_PER_S);
    if (w->opt->mode != WORKER_SCHEDULE || *w->stop || now_s < w->next_cron)
        return STEP_DONE;
    w->next_cron = next_fire(w, now_s);
    log_info("scheduled_pull", "lanes=%d next_sync_at=%lld", w->nlanes, (long long)w->next_cron);
    heartbeat(w, "pulling", false, false);
    return pull_orgs_add(w, pull_todo);
}

static int engine_run(struct worker *w, bool with_pull)
{
    json_t *pull_todo = json_array();
    if (with_pull) {
        int rc = pull_orgs_add(w, pull_todo);
        if (rc < 0) {
            json_decref(pull_todo);
            return rc;
        }
    }
    bool once = w->opt->mode != WORKER_SCHEDULE;   /* --once and --until-idle */
    int64_t once_deadline = util_mono_ns() + ONCE_LOCK_WAIT_NS;
    int64_t last_discover = 0, stop_deadline = 0;
    int rc = STEP_OK;
    w->busy_elsewhere = false;
    int running = 0;
    for (;;) {
        int64_t now = util_mono_ns();
        if (*w->stop && stop_deadline == 0) {
            int budget = w->cfg->shutdown_timeout > 2 ? w->cfg->shutdown_timeout - 2 : 1;
            stop_deadline = now + (int64_t)budget * NS_PER_S;
            log_info("worker_stopping", "in_flight=%d budget_s=%d", w->inflight, budget);
        }
        if (*w->stop && (w->inflight == 0 || now >= stop_deadline))
            break;
        bool did = false;
        curl_multi_perform(w->multi, &running);
        rc = schedule_in_run(w, pull_todo);
        if (rc < 0)
            break;
        if (rc == STEP_OK)
            last_discover = 0;   /* open the pulls' lanes now */
        rc = STEP_OK;
        if (!*w->stop && (w->woken || now - last_discover >= DISCOVER_NS || last_discover == 0)) {
            w->woken = false;
            /* --once waits for a server another worker holds, so that when it returns
             * nothing is due and every server was pulled */
            rc = discover(w, pull_todo, once && now < once_deadline);
            if (rc < 0)
                break;
            last_discover = now;
            if (w->nlanes == 0 && w->inflight == 0) {
                if (!(once && w->busy_elsewhere && now < once_deadline))
                    break;
            }
        }
        curl_multi_perform(w->multi, &running);
        CURLMsg *m;
        int left = 0;
        while ((m = curl_multi_info_read(w->multi, &left)) != NULL) {
            if (m->msg != CURLMSG_DONE)
                continue;
            int r = on_done(w, m->easy_handle, m->data.result);
            if (r < 0 && rc >= 0)
                rc = r;
            did = true;
        }
        if (rc >= 0) {
            int r = results_collect(w->results);
            if (r < 0)
                rc = r;
            else if (r > 0)
                did = true;
        }
        if (rc >= 0)
            rc = results_pump(w->results);
        if (rc < 0)
            break;
        rc = session_confirm(w);
        if (rc < 0)
            break;
        json_t *written = NULL;
        for (int i = 0; i < w->nlanes && rc >= 0; i++) {
            int r = lane_step(w, w->lanes[i], lane_work(w, w->lanes[i], &written), "claim");
            if (r < 0)
                rc = r;
            else if (r > 0)
                did = true;
        }
        json_decref(written);
        if (rc < 0)
            break;
        /* starts, round robin over the lanes so one server cannot take every global slot */
        bool started = true;
        while (started && w->inflight < w->cfg->worker_max_in_flight) {
            started = false;
            for (int k = 0; k < w->nlanes; k++) {
                struct lane *ln = w->lanes[(w->next_lane + k) % w->nlanes];
                if (lane_start_one(w, ln))
                    started = did = true;
            }
            if (w->nlanes)
                w->next_lane = (w->next_lane + 1) % w->nlanes;
        }
        /* send what just started at once: the rate window counted it as started now, and
         * PEMS counts it when it arrives */
        curl_multi_perform(w->multi, &running);
        for (int i = 0; i < w->nlanes && rc >= 0; i++) {
            rc = lane_check_pause(w, w->lanes[i]);
            if (rc >= 0)
                rc = lane_step(w, w->lanes[i], lane_extend_leases(w, w->lanes[i]), "lease");
        }
        if (rc < 0)
            break;
        for (int i = 0; i < w->nlanes; i++) {
            if (lane_finished(w->lanes[i])) {
                lane_close(w, i, true);
                i--;
                did = true;
                if (w->nlanes == 0)
                    last_discover = 0;   /* look again now: done, or more work */
            }
        }
        heartbeat_if_due(w, *w->stop ? "stopping" : "running");
        if (did)
            continue;
        int64_t timeout = DISCOVER_NS - (util_mono_ns() - last_discover);
        int64_t due = results_due_in(w->results);
        if (due < timeout)
            timeout = due;
        for (int i = 0; i < w->nlanes; i++) {
            int64_t at = w->lanes[i]->next_start_ns;
            if (at && at - util_mono_ns() < timeout)
                timeout = at - util_mono_ns();
        }
        if (timeout < 0)
            timeout = 0;
        wait_events(w, timeout);
    }
    json_decref(pull_todo);
    if (rc < 0) {
        log_warn("drain_aborted", "error=\"%s\"", db_errmsg(w->db));
        /* results gathered are still recorded where their connection works; what cannot be
         * is dropped, and its items come back when their lease expires */
        abandon_transfers(w);
        results_abandon(w->results);
        /* when only the results' connection failed, this one still holds the servers'
         * locks: hand the items back and release them */
        PGconn *pg = db_pg(w->db);
        close_all_lanes(w, pg && PQstatus(pg) == CONNECTION_OK);
        return rc;
    }
    if (w->inflight > 0)
        log_warn("shutdown_timeout", "in_flight=%d", w->inflight);
    close_all_lanes(w, true);
    rc = results_flush(w->results);
    return rc < 0 ? rc : 0;
}
static void log_blocked(struct worker *w)
{
    json_t *blocked = NULL;
    if (wq_blocked_orgs(w->db, &blocked) != DB_OK)
        return;
    size_t i;
    json_t *b;
    json_array_foreach(blocked, i, b) {
        const char *org = json_string_value(json_object_get(b, "org"));
        char why[160];
        snprintf(why, sizeof why, "%s; %lld item(s) wait",
                 json_string_value(json_object_get(b, "reason")),
                 (long long)json_integer_value(json_object_get(b, "count")));
        log_once(w, org, "items_waiting", why);
    }
    json_decref(blocked);
}

/* One run: optionally pull, then drain. Writes a sync_batches row when it did anything or
 * when it was a scheduled run. */
static int run(struct worker *w, bool with_pull)
{
    char batch_id[37] = "";
    int64_t t0 = util_mono_ns();
    memset(&w->stats, 0, sizeof w->stats);
    if (with_pull) {
        int rc = batch_row_start(w, batch_id);
        if (rc != DB_OK)
            return rc;
        heartbeat(w, "pulling", false, false);
    }
    int rc = 0;
    if (with_pull || (w->cfg->write_sync_enabled && !*w->stop)) {
        rc = engine_run(w, with_pull);
        /* a scan of every organization's due items: once per scheduled run, not on each
         * wake-up by a write-sync */
        if (with_pull && w->cfg->write_sync_enabled && rc >= 0)
            log_blocked(w);
    }
    bool did = w->stats.processed || w->stats.pulled;
    if (!batch_id[0] && did && rc >= 0)
        batch_row_start(w, batch_id);
    if (batch_id[0])
        batch_row_finish(w, batch_id);
    /* a run that found nothing to do is the normal idle minute: debug */
    if (did || with_pull)
        log_event(did ? PEMS_LOG_INFO : PEMS_LOG_DEBUG, "run_done", "batch=%s processed=%d"
                 " successful=%d failed=%d conflicts=%d"
                 " skipped=%d merged=%d pulled=%d ms=%lld", batch_id, w->stats.processed,
                 w->stats.successful, w->stats.failed, w->stats.conflicts, w->stats.skipped,
                 w->stats.merged, w->stats.pulled, (long long)((util_mono_ns() - t0) / 1000000));
    return rc;
}

static time_t next_fire(struct worker *w, time_t after)
{
    time_t t = cron_next(w->cron, after, w->cfg->write_sync_tz);
    if (t == (time_t)-1) {
        log_error("schedule_has_no_next_run", "schedule=\"%s\" tz=%s",
                  w->cfg->write_sync_schedule, w->cfg->write_sync_tz);
        t = after + 60;
    }
    return t;
}

static int run_schedule(struct worker *w)
{
    int failures = 0;
    int64_t retry_at = 0;    /* after a failed run: when the next one is tried */
    bool first = true;
    bool pull_owed = false;  /* a scheduled run failed: its retry pulls too */
    while (!*w->stop) {
        listen_open(w);
        int rc = 0;
        bool ran = false;
        /* one clock for the schedule, here and in the wait below: time() can lag it by a
         * tick, which made the wait <= 0 while the run was not yet due */
        time_t now_s = (time_t)(util_wall_ns() / NS_PER_S);
        bool scheduled = first || now_s >= w->next_cron;
        if (scheduled) {
            w->next_cron = next_fire(w, now_s);
            first = false;
            pull_owed = true;
        }
        if (scheduled || w->woken) {
            w->woken = false;
            bool pull = pull_owed;
            rc = run(w, pull);
            ran = true;
            if (pull && rc >= 0)
                pull_owed = false;
        }
        if (ran && rc >= 0)
            heartbeat(w, "idle", false, true);
        if (ran) {
            failures = rc < 0 ? failures + 1 : 0;
            if (failures)
                retry_at = util_mono_ns() + (int64_t)(failures < 5 ? failures * 2 : 10) * NS_PER_S;
        }
        if (*w->stop || w->woken)
            continue;

        /* The next drain is due at drain_at, an absolute time: waking up earlier for a
         * heartbeat or a signal does not push it back. */
        int64_t now = util_mono_ns();
        int64_t wait = (int64_t)w->next_cron * NS_PER_S - util_wall_ns();
        int64_t drain_at = INT64_MAX;
        if (failures) {
            drain_at = retry_at;
        } else if (w->cfg->write_sync_enabled) {
            double due = 0;
            if (wq_next_due(w->db, w->unleasable, &due) == DB_OK) {
                if (w->busy_elsewhere && due < BUSY_RETRY_S)
                    due = BUSY_RETRY_S;
                if (due < 0)
                    due = 0;
                if (due < 1e6)
                    drain_at = now + (int64_t)(due * 1e9);
            } else {
                drain_at = now + NS_PER_S;   /* cannot tell: look again in a second */
            }
            if (!w->listen && drain_at - now > NS_PER_S)
                drain_at = now + NS_PER_S;   /* no notifications: look at the queue every second */
        }
        if (drain_at - now < wait)
            wait = drain_at - now;
        int64_t hb = w->last_heartbeat_ns + HEARTBEAT_S * NS_PER_S - now;
        if (hb < wait)
            wait = hb;
        wait_for(w, wait);
        if (util_mono_ns() >= drain_at)
            w->woken = true;
        heartbeat_if_due(w, "idle");
    }
    return 0;
}

/* --until-idle: a run, then the retries it scheduled as they fall due, until none is pending
 * (or idle_timeout_s). */
static int run_until_idle(struct worker *w)
{
    int64_t deadline = util_mono_ns() + (int64_t)w->opt->idle_timeout_s * NS_PER_S;
    int rc = run(w, true);
    while (rc >= 0 && !*w->stop && w->cfg->write_sync_enabled && util_mono_ns() < deadline) {
        double due = 0;
        if (wq_next_due(w->db, w->unleasable, &due) != DB_OK)
            return DB_UNAVAILABLE;
        if (due > 1e8)
            break;
        int64_t ns = due > 0 ? (int64_t)(due * 1e9) : 0;
        if (w->busy_elsewhere && ns < NS_PER_S / 5)
            ns = NS_PER_S / 5;
        if (ns > deadline - util_mono_ns())
            break;
        /* between runs nothing is in flight: the wait is the LISTEN connection's */
        int64_t until = util_mono_ns() + ns;
        while (util_mono_ns() < until && !*w->stop) {
            int64_t left = until - util_mono_ns();
            wait_for(w, left < NS_PER_S ? left : NS_PER_S);
            heartbeat_if_due(w, "waiting");
        }
        rc = run(w, false);
    }
    return rc;
}

int worker_main(const struct pems_config *cfg, const struct worker_options *opt,
                volatile sig_atomic_t *stop)
{
    struct worker *w = calloc(1, sizeof *w);
    int status = 1;
    char err[256];
    if (!w)
        return 1;
    w->cfg = cfg;
    w->opt = opt;
    w->stop = stop;
    w->logged_orgs = json_object();
    w->unleasable = json_array();
    if (gethostname(w->hostname, sizeof w->hostname) != 0)
        snprintf(w->hostname, sizeof w->hostname, "localhost");
    w->hostname[sizeof w->hostname - 1] = '\0';
    if (cfg->worker_id && *cfg->worker_id)
        snprintf(w->worker_id, sizeof w->worker_id, "%s", cfg->worker_id);
    else
        snprintf(w->worker_id, sizeof w->worker_id, "%s:%d", w->hostname, (int)getpid());
    if (crypto_key_from_hex(cfg->encryption_key, w->key) != 0) {
        log_error("worker_start_failed", "reason=\"ENCRYPTION_KEY must be 64 hex characters\"");
        goto cleanup;
    }
    w->cron = cron_parse(cfg->write_sync_schedule, err, sizeof err);
    if (!w->cron) {
        log_error("worker_start_failed", "reason=\"PEMS_WRITE_SYNC_SCHEDULE: %s\"", err);
        goto cleanup;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(w->multi = curl_multi_init())) {
        log_error("worker_start_failed", "reason=\"libcurl cannot start\"");
        goto cleanup;
    }
    /* connections stay open for reuse across every server's requests (keep-alive); HTTP/2
     * servers get their requests multiplexed on one connection */
    curl_multi_setopt(w->multi, CURLMOPT_MAXCONNECTS, (long)cfg->worker_max_in_flight + 16);
    curl_multi_setopt(w->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    if (cfg->metrics_file && *cfg->metrics_file)
        metrics_open(cfg->metrics_file);
    w->db = db_new(cfg->database_url);
    if (!w->db || !(w->results = results_new(cfg->database_url, w->worker_id)))
        goto cleanup;
    w->next_cron = next_fire(w, time(NULL));
    log_info("worker_started", "worker=%s mode=%s write_sync=%s schedule=\"%s\" tz=%s batch=%d"
             " max_in_flight=%d", w->worker_id,
             opt->mode == WORKER_SCHEDULE ? "schedule" :
             opt->mode == WORKER_ONCE ? "once" : "until-idle",
             cfg->write_sync_enabled ? "on" : "off", cfg->write_sync_schedule, cfg->write_sync_tz,
             cfg->batch_size, cfg->worker_max_in_flight);
    if (opt->mode == WORKER_SCHEDULE) {
        if (db_connect(w->db) == DB_OK)
            heartbeat(w, "starting", true, false);
        status = run_schedule(w);
    } else {
        if (db_connect(w->db) != DB_OK) {
            log_error("worker_start_failed", "reason=\"database unavailable\"");
            goto cleanup;
        }
        heartbeat(w, "running", true, false);
        int rc = opt->mode == WORKER_ONCE ? run(w, true) : run_until_idle(w);
        status = rc < 0 ? 1 : 0;
    }
    heartbeat(w, "stopped", false, false);
    log_info("worker_stopped", "worker=%s", w->worker_id);
cleanup:
    if (w->multi)
        close_all_lanes(w, w->db && w->results);
    free(w->lanes);
    results_free(w->results);
    if (w->multi)
        curl_multi_cleanup(w->multi);
    json_decref(w->logged_orgs);
    json_decref(w->unleasable);
    listen_close(w);
    if (w->cron)
        cron_free(w->cron);
    db_free(w->db);
    metrics_close();
    free(w);
    return status;
}
