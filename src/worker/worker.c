/* pemsworker's run control (src/worker/README.md): the schedule, heartbeats and batch rows,
 * LISTEN on its own connection, the runs of --once, --until-idle and the schedule. A run is
 * engine_run (engine.c); the lanes it drives are lane.c's. */
#include "worker.h"
#include "cron.h"
#include "crypto.h"
#include "db.h"
#include "engine.h"
#include "lane.h"
#include "log.h"
#include "metrics.h"
#include "results.h"
#include "step.h"
#include "worker_state.h"
#include "write_queue.h"
#include "util.h"

#include <curl/curl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define HEARTBEAT_S 5
#define BUSY_RETRY_S 1.0               /* due work on a server another worker holds */

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
bool worker_listen_drain(struct worker *w)
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
        if (rc > 0 && worker_listen_drain(w))
            w->woken = true;
        return;
    }
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

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

void worker_heartbeat(struct worker *w, const char *state, bool starting, bool ran)
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
    /* also when it failed: the next try is a worker_heartbeat interval away, not at once */
    w->last_heartbeat_ns = util_mono_ns();
}

void worker_heartbeat_if_due(struct worker *w, const char *state)
{
    if (util_mono_ns() - w->last_heartbeat_ns >= HEARTBEAT_S * NS_PER_S)
        worker_heartbeat(w, state, false, false);
}

static enum step batch_row_start(struct worker *w, char id[37])
{
    const char *params[] = { w->worker_id };
    PGresult *res = db_query(w->db, "batch_start",
                             "INSERT INTO sync_batches (worker_id, started_at) VALUES ($1, now())"
                             " RETURNING id", 1, params);
    if (!res)
        return db_last_status(w->db);
    snprintf(id, 37, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return STEP_OK;
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

void worker_log_once(struct worker *w, const char *org_id, const char *event, const char *why)
{
    if (json_object_get(w->logged_orgs, org_id))
        return;
    json_object_set_new(w->logged_orgs, org_id, json_true());
    log_warn(event, "org=%s reason=\"%s\"", org_id, why);
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
        worker_log_once(w, org, "items_waiting", why);
    }
    json_decref(blocked);
}

/* One run: optionally pull, then drain. Writes a sync_batches row when it did anything or
 * when it was a scheduled run. */
static enum step run(struct worker *w, bool with_pull)
{
    char batch_id[37] = "";
    int64_t t0 = util_mono_ns();
    memset(&w->stats, 0, sizeof w->stats);
    if (with_pull) {
        enum step rc = batch_row_start(w, batch_id);
        if (rc != STEP_OK)
            return rc;
        worker_heartbeat(w, "pulling", false, false);
    }
    enum step rc = STEP_OK;
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

time_t worker_next_fire(struct worker *w, time_t after)
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
        enum step rc = STEP_OK;
        bool ran = false;
        /* one clock for the schedule, here and in the wait below: time() can lag it by a
         * tick, which made the wait <= 0 while the run was not yet due */
        time_t now_s = (time_t)(util_wall_ns() / NS_PER_S);
        bool scheduled = first || now_s >= w->next_cron;
        if (scheduled) {
            w->next_cron = worker_next_fire(w, now_s);
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
            worker_heartbeat(w, "idle", false, true);
        if (ran) {
            failures = rc < 0 ? failures + 1 : 0;
            if (failures)
                retry_at = util_mono_ns() + (int64_t)(failures < 5 ? failures * 2 : 10) * NS_PER_S;
        }
        if (*w->stop || w->woken)
            continue;

        /* The next drain is due at drain_at, an absolute time: waking up earlier for a
         * worker_heartbeat or a signal does not push it back. */
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
        worker_heartbeat_if_due(w, "idle");
    }
    return 0;
}

/* --until-idle: a run, then the retries it scheduled as they fall due, until none is pending
 * (or idle_timeout_s). */
static enum step run_until_idle(struct worker *w)
{
    int64_t deadline = util_mono_ns() + (int64_t)w->opt->idle_timeout_s * NS_PER_S;
    enum step rc = run(w, true);
    while (rc >= 0 && !*w->stop && w->cfg->write_sync_enabled && util_mono_ns() < deadline) {
        double due = 0;
        if (wq_next_due(w->db, w->unleasable, &due) != DB_OK)
            return STEP_UNAVAILABLE;
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
            worker_heartbeat_if_due(w, "waiting");
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
    w->next_cron = worker_next_fire(w, time(NULL));
    log_info("worker_started", "worker=%s mode=%s write_sync=%s schedule=\"%s\" tz=%s batch=%d"
             " max_in_flight=%d", w->worker_id,
             opt->mode == WORKER_SCHEDULE ? "schedule" :
             opt->mode == WORKER_ONCE ? "once" : "until-idle",
             cfg->write_sync_enabled ? "on" : "off", cfg->write_sync_schedule, cfg->write_sync_tz,
             cfg->batch_size, cfg->worker_max_in_flight);
    if (opt->mode == WORKER_SCHEDULE) {
        if (db_connect(w->db) == DB_OK)
            worker_heartbeat(w, "starting", true, false);
        status = run_schedule(w);
    } else {
        if (db_connect(w->db) != DB_OK) {
            log_error("worker_start_failed", "reason=\"database unavailable\"");
            goto cleanup;
        }
        worker_heartbeat(w, "running", true, false);
        enum step rc = opt->mode == WORKER_ONCE ? run(w, true) : run_until_idle(w);
        status = rc < 0 ? 1 : 0;
    }
    worker_heartbeat(w, "stopped", false, false);
    log_info("worker_stopped", "worker=%s", w->worker_id);
cleanup:
    if (w->multi)
        engine_close_all(w, w->db && w->results);
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
