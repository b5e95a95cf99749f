/* pemsworker's event loop (src/worker/README.md, The event loop).
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
#include "engine.h"
#include "lane.h"
#include "log.h"
#include "pems_client.h"
#include "pull.h"
#include "results.h"
#include "server_lock.h"
#include "step.h"
#include "util.h"
#include "worker_state.h"
#include "write_queue.h"
#include "write_sync.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DISCOVER_NS 500000000LL        /* look for newly due servers twice a second */
#define ONCE_LOCK_WAIT_NS 60000000000LL
#define WAIT_MAX_MS 200                /* the loop looks at the stop flag this often at least */
/* A request starts only within this long of an answer on the connection holding the server
 * locks: a worker cut off the database stops at once, before PostgreSQL can end its session
 * and let another worker take the servers (src/worker/README.md, Leases) */
#define SESSION_FRESH_NS 2000000000LL
#define SESSION_CONFIRM_NS 1000000000LL

/* What a transfer in flight belongs to: kept beside the request, found by the easy handle. */
struct xfer {
    struct lane *ln;
    struct item *item;          /* NULL: the lane's pull */
    struct pems_request *rq;
    int64_t stamp_ns;           /* its start in the server's rate window (wall clock) */
    struct xfer *prev, *next;   /* every transfer in flight (worker.xfers) */
};

static struct xfer *xfer_new(struct worker *w, struct lane *ln, struct item *s,
                             struct pems_request *rq)
{
    struct xfer *x = calloc(1, sizeof *x);
    if (x) {
        x->ln = ln;
        x->item = s;
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
    struct item *s = NULL;
    if (ln->pulling) {
        if (ln->pull_flight || !ln->pull_begun)
            return false;
    } else {
        if (ln->n_ready == 0)
            return false;
        for (int i = 0; i < ln->nitems && !s; i++)
            if (ln->items[i]->st == ITEM_READY)
                s = ln->items[i];
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
    struct pems_request *rq = s ? write_sync_request(&c, s)
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
        lane_item_set(ln, s, ITEM_FLIGHT);
    else
        ln->pull_flight = true;
    return true;
}

/* A transfer ended: its answer goes to the pull or to the item's write. */
static enum step on_done(struct worker *w, CURL *e, CURLcode cc)
{
    struct xfer *x = NULL;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&x);
    curl_multi_remove_handle(w->multi, e);
    struct lane *ln = x->ln;
    struct item *s = x->item;
    struct pems_response resp;
    pems_request_finish(x->rq, cc, &resp);
    pems_request_free(x->rq);
    xfer_free(w, x);
    ln->inflight--;
    w->inflight--;
    enum step rc;
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
        rc = write_sync_answer(&c, s, &resp);
        if (rc < 0) {
            /* its result is not recorded: the item comes back when its lease ends */
            lane_item_set(ln, s, ITEM_DONE);
            rc = lane_step(w, ln, rc, "write");
        } else if (rc == STEP_AGAIN && ln->closing) {
            /* a follow-up request, but nothing more starts: back to pending */
            rc = write_sync_release(&c, s) == 0 ? STEP_DONE : STEP_ERROR;
        }
        if (rc == STEP_AGAIN) {
            lane_item_set(ln, s, ITEM_READY);
        } else if (rc >= 0) {
            lane_item_set(ln, s, ITEM_DONE);
            results_touch(w->results);
            /* the next items of its record read the mirror again once this is recorded */
            for (int i = 0; i < ln->nitems; i++)
                if (ln->items[i]->st == ITEM_NEW && strcmp(ln->items[i]->pfa_id, s->pfa_id) == 0)
                    ln->items[i]->stale = true;
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
        if (x->item)
            lane_item_set(x->ln, x->item, ITEM_DONE);
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

void engine_close_all(struct worker *w, bool db_ok)
{
    abandon_transfers(w);
    while (w->nlanes > 0)
        lane_close(w, w->nlanes - 1, db_ok);
}

/* Asks the connection holding the server locks for an answer when none came lately (a cut
 * link blocks here, up to its tcp_user_timeout, and nothing starts meanwhile). */
static enum step session_confirm(struct worker *w)
{
    int64_t sent = util_mono_ns();
    if (w->nlanes == 0 || sent - w->confirmed_ns <= SESSION_CONFIRM_NS)
        return STEP_OK;
    enum step rc = db_exec(w->db, "worker_session_confirm", "SELECT 1", 0, NULL);
    if (rc == STEP_OK)
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
    if (listen_at >= 0 && (fds[listen_at].revents & CURL_WAIT_POLLIN) && worker_listen_drain(w))
        w->woken = true;
}

/* Adds every organization with a PEMS server to pull_todo (once). */
static enum step pull_orgs_add(struct worker *w, json_t *pull_todo)
{
    PGresult *res = db_query(w->db, "worker_pull_orgs",
                             "SELECT organization_id FROM api_servers ORDER BY organization_id",
                             0, NULL);
    if (!res)
        return db_last_status(w->db);
    for (int i = 0; i < PQntuples(res); i++)
        if (!org_listed(pull_todo, PQgetvalue(res, i, 0)))
            json_array_append_new(pull_todo, json_string(PQgetvalue(res, i, 0)));
    PQclear(res);
    return STEP_OK;
}

/* Each server on its own schedule: when the schedule fires during a run (one server's pull
 * or writes still going), every other server's pull starts now, not when that run ends.
 * STEP_OK (pulls added), STEP_DONE (not due), or a DB status < 0. */
static enum step schedule_in_run(struct worker *w, json_t *pull_todo)
{
    time_t now_s = (time_t)(util_wall_ns() / NS_PER_S);
    if (w->opt->mode != WORKER_SCHEDULE || *w->stop || now_s < w->next_cron)
        return STEP_DONE;
    w->next_cron = worker_next_fire(w, now_s);
    log_info("scheduled_pull", "lanes=%d next_sync_at=%lld", w->nlanes, (long long)w->next_cron);
    worker_heartbeat(w, "pulling", false, false);
    return pull_orgs_add(w, pull_todo);
}

enum step engine_run(struct worker *w, bool with_pull)
{
    json_t *pull_todo = json_array();
    if (with_pull) {
        enum step rc = pull_orgs_add(w, pull_todo);
        if (rc < 0) {
            json_decref(pull_todo);
            return rc;
        }
    }
    bool once = w->opt->mode != WORKER_SCHEDULE;   /* --once and --until-idle */
    int64_t once_deadline = util_mono_ns() + ONCE_LOCK_WAIT_NS;
    int64_t last_discover = 0, stop_deadline = 0;
    enum step rc = STEP_OK;
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
            rc = lanes_discover(w, pull_todo, once && now < once_deadline);
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
            enum step r = on_done(w, m->easy_handle, m->data.result);
            if (r < 0 && rc >= 0)
                rc = r;
            did = true;
        }
        if (rc >= 0) {
            int collected = 0;
            rc = results_collect(w->results, &collected);
            did = did || collected > 0;
        }
        if (rc >= 0)
            rc = results_pump(w->results);
        if (rc < 0)
            break;
        rc = session_confirm(w);
        if (rc < 0)
            break;
        json_t *written = NULL;
        for (int i = 0; i < w->nlanes && rc >= 0; i++)
            rc = lane_step(w, w->lanes[i], lane_work(w, w->lanes[i], &written, &did), "claim");
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
        worker_heartbeat_if_due(w, *w->stop ? "stopping" : "running");
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
        engine_close_all(w, pg && PQstatus(pg) == CONNECTION_OK);
        return rc;
    }
    if (w->inflight > 0)
        log_warn("shutdown_timeout", "in_flight=%d", w->inflight);
    engine_close_all(w, true);
    return results_flush(w->results);
}
