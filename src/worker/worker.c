#include "worker.h"
#include "cron.h"
#include "crypto.h"
#include "db.h"
#include "log.h"
#include "metrics.h"
#include "pull.h"
#include "server_lease.h"
#include "write_queue.h"
#include "write_sync.h"
#include "util.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_LANES 32
#define HEARTBEAT_S 5
#define DISCOVER_NS 500000000LL        /* look for newly due servers twice a second */
#define FLUSH_AGE_NS 50000000LL        /* results wait at most 50 ms to be recorded */
#define FLUSH_COUNT 50             /* results sent to the database while requests go on */
#define FLUSH_MAX 100              /* results gathered while a flush is in flight, at most */
#define RESULT_CONNS 2             /* flushes in flight at once, each on its own connection */
#define LANE_GIVE_UP_NS 2000000000LL   /* a server paused longer than this is left for later */
#define BUSY_RETRY_S 1.0               /* due work on a server another worker holds */
#define ONCE_LOCK_WAIT_NS 60000000000LL
#define NS_PER_S 1000000000LL

struct lane {
    char org_id[37];
    struct server_lease sl;
    struct wq_item *items;
    int n;
    int next;
    bool planned;
    struct write_plan plan;
    json_t *written;          /* pfa ids written since the last claim, or whose results were
                                 not recorded yet when it was made */
    int64_t extended_ns;
};

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
    bool busy_elsewhere;       /* the last drain left due work held by another worker */
    json_t *unleasable;        /* orgs the last discovery could not lock a server for (its
                                  credentials cannot be read): their due items are not due */
    struct lane lanes[MAX_LANES];
    int nlanes;
    /* Results are recorded on connections of their own, by other backends, while this one
     * claims and plans: the batch of results[gathering] gathers, and goes out on its
     * connection while the next one gathers. */
    struct {
        db_t *db;
        struct wq_batch batch;
    } results[RESULT_CONNS];
    int gathering;
    int64_t batch_since_ns;
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

/* ---- lanes: one held PEMS server each ---- */

static struct wq_batch *gathering(struct worker *w)
{
    return &w->results[w->gathering].batch;
}

/* Waits for every flush sent by flush_async, if any. */
static int collect_sent(struct worker *w)
{
    int rc = 0;
    for (int i = 0; i < RESULT_CONNS; i++) {
        int r = wq_batch_settle(w->results[i].db, &w->results[i].batch);
        if (r < 0 && rc == 0)
            rc = r;
    }
    return rc;
}

static int settle_results(void *w)
{
    return collect_sent(w);
}

/* Hands the gathered results to the database without waiting for them; the next connection's
 * batch gathers from now on. Its connection must have nothing in flight. */
static int send_results(struct worker *w)
{
    struct wq_batch *b = gathering(w);
    db_t *db = w->results[w->gathering].db;
    int n = wq_batch_count(b);
    if (n == 0)
        return 0;
    int rc = wq_batch_send(db, w->worker_id, b);
    if (rc < 0) {
        log_warn("results_not_recorded", "count=%d error=\"%s\"", n, db_errmsg(db));
        return rc;
    }
    w->gathering = (w->gathering + 1) % RESULT_CONNS;
    w->batch_since_ns = 0;
    return 0;
}

/* Sends the results gathered so far without waiting, so that the database records them
 * while the next requests go out. While the previous flush of the gathering batch's
 * connection is still being executed the results keep gathering, up to FLUSH_MAX: then the
 * worker waits for it (memory stays bounded, and requests do not run ahead of their
 * recording). */
static int flush_async(struct worker *w)
{
    db_t *db = w->results[w->gathering].db;
    if (db_sent(db)) {
        if (!db_send_done(db) && wq_batch_count(gathering(w)) < FLUSH_MAX)
            return 0;
        int rc = wq_batch_settle(db, gathering(w));
        if (rc < 0)
            return rc;
    }
    return send_results(w);
}

/* Records every result gathered or sent so far, and waits until it is. */
static int flush_results(struct worker *w)
{
    int rc = collect_sent(w);
    if (rc == 0)
        rc = send_results(w);
    if (rc == 0)
        rc = collect_sent(w);
    return rc;
}

static struct write_ctx lane_ctx(struct worker *w, struct lane *ln)
{
    struct write_ctx c = { .db = w->db, .worker_id = w->worker_id,
                           .max_attempts = w->cfg->max_attempts, .sl = &ln->sl,
                           .batch = gathering(w), .settle = settle_results, .settle_arg = w,
                           .stats = &w->stats };
    return c;
}

static void lane_drop_items(struct lane *ln)
{
    write_plan_clear(&ln->plan);
    ln->planned = false;
    wq_items_free(ln->items, ln->n);
    ln->items = NULL;
    ln->n = ln->next = 0;
}

/* Hands back every claimed item not yet started (they go out with the next flush). */
static int lane_release_items(struct worker *w, struct lane *ln)
{
    struct write_ctx c = lane_ctx(w, ln);
    for (int i = ln->next; i < ln->n; i++)
        if (write_sync_release(&c, &ln->items[i]) != 0)
            return DB_ERROR;
    if (ln->n > ln->next) {
        log_debug("items_released", "org=%s count=%d", ln->org_id, ln->n - ln->next);
        if (w->batch_since_ns == 0)
            w->batch_since_ns = util_mono_ns();
    }
    lane_drop_items(ln);
    return 0;
}

/* db_ok false: the connection is gone, leave the database alone (leases expire). */
static void lane_close(struct worker *w, int idx, bool db_ok)
{
    struct lane *ln = &w->lanes[idx];
    if (db_ok) {
        lane_release_items(w, ln);
        flush_results(w);
        server_lease_release(w->db, &ln->sl);
    } else {
        ln->sl.held = false;
        server_lease_release(w->db, &ln->sl);
    }
    lane_drop_items(ln);
    json_decref(ln->written);
    w->lanes[idx] = w->lanes[--w->nlanes];
    memset(&w->lanes[w->nlanes], 0, sizeof w->lanes[w->nlanes]);
}

static void close_all_lanes(struct worker *w, bool db_ok)
{
    while (w->nlanes > 0)
        lane_close(w, w->nlanes - 1, db_ok);
}

static bool lane_open_for(const struct worker *w, const char *org_id)
{
    for (int i = 0; i < w->nlanes; i++)
        if (strcmp(w->lanes[i].org_id, org_id) == 0)
            return true;
    return false;
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

/* Locks one organization's server. 1 acquired, 0 not (busy: *busy set), DB status < 0. */
static int lease_org(struct worker *w, const char *org_id, struct server_lease *sl, bool *busy)
{
    int rc = server_lease_acquire(w->db, org_id, w->key, sl);
    if (rc == SERVER_LEASE_OK) {
        json_object_del(w->logged_orgs, org_id);
        return 1;
    }
    if (rc == SERVER_LEASE_BUSY)
        *busy = true;
    else if (rc == SERVER_LEASE_NONE)
        log_once(w, org_id, "server_missing", "no PEMS server configured");
    else if (rc == SERVER_LEASE_BAD_SECRET) {
        log_once(w, org_id, "server_credentials_unreadable",
                 "the PEMS credentials cannot be decrypted with ENCRYPTION_KEY");
        if (!org_in(w->unleasable, org_id))   /* pull_all leases too, every scheduled run */
            json_array_append_new(w->unleasable, json_string(org_id));
    }
    return rc < 0 ? rc : 0;
}

static int discover(struct worker *w, bool *busy)
{
    json_t *orgs = NULL;
    json_array_clear(w->unleasable);
    int rc = wq_due_orgs(w->db, &orgs);
    if (rc != DB_OK)
        return rc;
    size_t i;
    json_t *o;
    json_array_foreach(orgs, i, o) {
        const char *org = json_string_value(o);
        if (w->nlanes >= MAX_LANES || *w->stop)
            break;
        if (lane_open_for(w, org))
            continue;
        struct lane *ln = &w->lanes[w->nlanes];
        memset(ln, 0, sizeof *ln);
        rc = lease_org(w, org, &ln->sl, busy);
        if (rc < 0) {
            json_decref(orgs);
            return rc;
        }
        if (rc == 1) {
            snprintf(ln->org_id, sizeof ln->org_id, "%s", org);
            ln->written = json_object();
            ln->extended_ns = util_mono_ns();
            w->nlanes++;
        }
    }
    json_decref(orgs);
    return DB_OK;
}

static int claim_size(const struct worker *w, const struct lane *ln)
{
    /* a claim should not outlive its lease at the server's rate */
    long rps = ln->sl.srv.rate_limit_rps > 0 ? ln->sl.srv.rate_limit_rps : 10;
    long n = rps * (w->cfg->lease_seconds > 3 ? w->cfg->lease_seconds / 3 : 1);
    if (n > w->cfg->batch_size)
        n = w->cfg->batch_size;
    return n < 1 ? 1 : (int)n;
}

/* One step of a lane. Returns 1 progress, 0 waiting (*wait_ns set), 2 lane finished,
 * DB status < 0. */
static int lane_step(struct worker *w, struct lane *ln, int64_t *wait_ns)
{
    if (ln->next >= ln->n) {
        lane_drop_items(ln);
        /* The claim does not wait for results in flight on the other connection. A record
         * written by a result not recorded yet is read here at its old version, so this
         * claim's items of that record are handed back (below) and taken again once it is;
         * items handed back in flight are still processing and not claimed meanwhile. */
        int rc = wq_claim(w->db, w->worker_id, ln->org_id, claim_size(w, ln),
                          w->cfg->lease_seconds, &ln->items);
        if (rc < 0)
            return rc;
        if (rc == 0)
            return 2;
        ln->n = rc;
        ln->next = 0;
        json_object_clear(ln->written);
        for (int i = 0; i < RESULT_CONNS; i++)
            wq_batch_written(&w->results[i].batch, ln->written);
        ln->extended_ns = util_mono_ns();
        rc = flush_async(w);
        return rc < 0 ? rc : 1;
    }
    struct write_ctx c = lane_ctx(w, ln);
    struct wq_item *it = &ln->items[ln->next];
    if (!ln->planned) {
        int rc;
        if (json_object_get(ln->written, it->pfa_id)) {
            /* its mirror changes with the write before it: take it in the next claim */
            rc = write_sync_release(&c, it);
        } else {
            rc = write_sync_prepare(&c, it, &ln->plan);
            if (rc == WRITE_NEEDS_REQUEST) {
                ln->planned = true;
                return 1;
            }
        }
        if (rc < 0)
            return rc;
        ln->next++;
        if (w->batch_since_ns == 0)
            w->batch_since_ns = util_mono_ns();
        return 1;
    }
    if (!server_lease_valid(w->db, &ln->sl))
        return 2;
    /* before the slot: the start the limiter records is the request's start, not a
     * database round trip earlier */
    if (util_mono_ns() - ln->extended_ns > (int64_t)w->cfg->lease_seconds * NS_PER_S / 3) {
        /* it updates items a flush in flight updates too, in another order: settle first;
         * results lost there must not have their items' leases extended */
        int rc = collect_sent(w);
        if (rc < 0)
            return rc;
        rc = wq_extend_leases(w->db, w->worker_id, ln->org_id, w->cfg->lease_seconds);
        if (rc != DB_OK)
            return rc;
        ln->extended_ns = util_mono_ns();
    }
    int64_t wait = server_lease_try_slot(&ln->sl);
    if (wait > 0) {
        *wait_ns = wait;
        return 0;
    }
    json_object_set_new(ln->written, it->pfa_id, json_true());
    int rc = write_sync_execute(&c, it, &ln->plan);
    write_plan_clear(&ln->plan);
    ln->planned = false;
    ln->next++;
    if (w->batch_since_ns == 0)
        w->batch_since_ns = util_mono_ns();
    return rc < 0 ? rc : 1;
}

/* Drains every due item this worker can lock a server for. 0 or a DB status < 0. */
static int drain(struct worker *w)
{
    int64_t last_discover = 0;
    int64_t once_deadline = util_mono_ns() + ONCE_LOCK_WAIT_NS;
    int rc = 0;
    w->busy_elsewhere = false;
    for (;;) {
        if (*w->stop)
            break;
        int64_t now = util_mono_ns();
        if (w->woken || now - last_discover >= DISCOVER_NS || w->nlanes == 0) {
            w->woken = false;
            bool busy = false;
            rc = discover(w, &busy);
            if (rc < 0)
                break;
            last_discover = now;
            w->busy_elsewhere = busy;
            if (w->nlanes == 0) {
                /* --once waits for a server another worker is draining, so that when it
                 * returns nothing is due */
                if (busy && w->opt->mode != WORKER_SCHEDULE && now < once_deadline) {
                    wait_for(w, DISCOVER_NS / 5);
                    continue;
                }
                break;
            }
        }
        bool progress = false;
        int64_t min_wait = DISCOVER_NS;
        for (int i = 0; i < w->nlanes && !*w->stop; i++) {
            int64_t wait = 0;
            rc = lane_step(w, &w->lanes[i], &wait);
            if (rc < 0)
                break;
            if (rc == 2) {
                lane_close(w, i, true);
                i--;
                progress = true;
            } else if (rc == 1) {
                progress = true;
            } else {
                if (wait > LANE_GIVE_UP_NS) {
                    /* paused by a 429: hand its items back; discovery skips it until then */
                    lane_close(w, i, true);
                    i--;
                    continue;
                }
                if (wait < min_wait)
                    min_wait = wait;
            }
        }
        if (rc < 0)
            break;
        if (wq_batch_count(gathering(w)) >= FLUSH_COUNT ||
            (w->batch_since_ns && util_mono_ns() - w->batch_since_ns >= FLUSH_AGE_NS)) {
            rc = flush_async(w);
            if (rc < 0)
                break;
        }
        heartbeat_if_due(w, "running");
        if (!progress) {
            rc = flush_results(w);
            if (rc < 0)
                break;
            wait_for(w, min_wait);
        }
    }
    if (rc < 0) {
        log_warn("drain_aborted", "error=\"%s\"", db_errmsg(w->db));
        /* results gathered are still recorded where their connection works (each is fenced
         * by its claim, so a late one changes nothing); what cannot be is dropped, and its
         * items come back when their lease expires */
        flush_results(w);   /* leaves nothing in flight, whatever failed */
        for (int i = 0; i < RESULT_CONNS; i++)
            json_array_clear(w->results[i].batch.rows);
        /* when only the results' connection failed, this one still holds the servers' locks:
         * hand the items back and release them */
        PGconn *pg = db_pg(w->db);
        close_all_lanes(w, pg && PQstatus(pg) == CONNECTION_OK);
        return rc;
    }
    close_all_lanes(w, true);
    rc = flush_results(w);
    return rc < 0 ? rc : 0;
}

/* ---- pull + health for every organization with a server ---- */

static int pull_all(struct worker *w)
{
    PGresult *res = db_query(w->db, "worker_pull_orgs",
                             "SELECT organization_id FROM api_servers ORDER BY organization_id",
                             0, NULL);
    if (!res)
        return db_last_status(w->db);
    int n = PQntuples(res);
    json_t *orgs = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(orgs, json_string(PQgetvalue(res, i, 0)));
    PQclear(res);
    int rc = DB_OK;
    size_t i;
    json_t *o;
    json_array_foreach(orgs, i, o) {
        if (*w->stop)
            break;
        const char *org = json_string_value(o);
        struct server_lease sl;
        int64_t deadline = util_mono_ns() + ONCE_LOCK_WAIT_NS;
        int got;
        for (;;) {
            bool busy = false;
            got = lease_org(w, org, &sl, &busy);
            if (got != 0 || !busy || w->opt->mode == WORKER_SCHEDULE || util_mono_ns() > deadline ||
                *w->stop)
                break;
            wait_for(w, DISCOVER_NS / 5);
        }
        if (got < 0) {
            rc = got;
            break;
        }
        if (got == 0)
            continue;
        int hrc = pull_health_check(w->db, &sl);
        struct pull_stats ps = { 0, 0 };
        int prc = hrc < 0 ? hrc : pull_server(w->db, &sl, w->stop, &ps);
        w->stats.pulled += ps.applied;
        if (hrc < 0 || prc < 0) {
            rc = hrc < 0 ? hrc : prc;
            sl.held = false;
            server_lease_release(w->db, &sl);
            break;
        }
        server_lease_release(w->db, &sl);
        heartbeat_if_due(w, "pulling");
    }
    json_decref(orgs);
    return rc;
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
        rc = pull_all(w);
        if (rc < 0) {
            batch_row_finish(w, batch_id);
            return rc;
        }
    }
    int rc = 0;
    if (w->cfg->write_sync_enabled && !*w->stop) {
        rc = drain(w);
        /* a scan of every organization's due items: once per scheduled run, not on each
         * wake-up by a write-sync */
        if (with_pull)
            log_blocked(w);
    }
    bool did = w->stats.processed || w->stats.pulled;
    if (!batch_id[0] && did && rc >= 0)
        batch_row_start(w, batch_id);
    if (batch_id[0])
        batch_row_finish(w, batch_id);
    /* a run that found nothing to do is the normal idle minute: debug */
    if (did || with_pull)
        log_event(did ? PEMS_LOG_INFO : PEMS_LOG_DEBUG, "run_done", "batch=%s processed=%d successful=%d failed=%d conflicts=%d"
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
        int64_t left = deadline - util_mono_ns();
        int64_t ns = due > 0 ? (int64_t)(due * 1e9) : 0;
        if (w->busy_elsewhere && ns < 200000000LL)
            ns = 200000000LL;
        if (ns > left)
            break;
        while (ns > 0 && !*w->stop) {
            int64_t step = ns < NS_PER_S ? ns : NS_PER_S;
            wait_for(w, step);
            ns -= step;
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
    bool dbs;
    char err[256];
    if (!w)
        return 1;
    w->cfg = cfg;
    w->opt = opt;
    w->stop = stop;
    for (int i = 0; i < RESULT_CONNS; i++)
        wq_batch_init(&w->results[i].batch);
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
    if (cfg->metrics_file && *cfg->metrics_file)
        metrics_open(cfg->metrics_file);
    w->db = db_new(cfg->database_url);
    if (!w->db)
        goto cleanup;
    for (int i = 0; i < RESULT_CONNS; i++)
        if (!(w->results[i].db = db_new(cfg->database_url)))
            goto cleanup;
    w->next_cron = next_fire(w, time(NULL));
    log_info("worker_started", "worker=%s mode=%s write_sync=%s schedule=\"%s\" tz=%s batch=%d",
             w->worker_id, opt->mode == WORKER_SCHEDULE ? "schedule" :
             opt->mode == WORKER_ONCE ? "once" : "until-idle",
             cfg->write_sync_enabled ? "on" : "off", cfg->write_sync_schedule, cfg->write_sync_tz,
             cfg->batch_size);
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
    dbs = w->db != NULL;
    for (int i = 0; i < RESULT_CONNS; i++)
        dbs = dbs && w->results[i].db;
    close_all_lanes(w, dbs);
    for (int i = 0; i < RESULT_CONNS; i++) {
        wq_batch_clear(&w->results[i].batch);
        db_free(w->results[i].db);
    }
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
