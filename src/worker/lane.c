/* The lanes (src/worker/README.md): one locked PEMS server each, its pull, its claimed items
 * planned in claim order once their record is free. Writes of one record never overlap: an
 * item waits while another item of its record is planned or in flight, and until that one's
 * result is recorded, then reads the mirror again. */
#include "lane.h"
#include "log.h"
#include "results.h"
#include "text.h"
#include "util.h"
#include "worker_state.h"
#include "write_queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LANE_GIVE_UP_NS 2000000000LL   /* a server paused longer than this is left for later */

static enum step settle_results(void *w)
{
    return results_settle(((struct worker *)w)->results);
}

struct write_ctx lane_ctx(struct worker *w, struct lane *ln)
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

void lane_item_set(struct lane *ln, struct item *s, enum item_state st)
{
    bool was = s->st == ITEM_READY || s->st == ITEM_FLIGHT;
    bool is = st == ITEM_READY || st == ITEM_FLIGHT;
    if (was != is)
        busy_add(ln, s->pfa_id, is ? 1 : -1);
    ln->n_new += (st == ITEM_NEW) - (s->st == ITEM_NEW);
    ln->n_ready += (st == ITEM_READY) - (s->st == ITEM_READY);
    s->st = st;
}

static void lane_item_free(struct item *s)
{
    item_clear(s);
    free(s);
}

/* Hands back every item not started yet (the result pipeline records it). */
static enum step lane_release_unstarted(struct worker *w, struct lane *ln)
{
    struct write_ctx c = lane_ctx(w, ln);
    int n = 0;
    for (int i = 0; i < ln->nitems; i++) {
        struct item *s = ln->items[i];
        if (s->st != ITEM_NEW && s->st != ITEM_READY)
            continue;
        if (write_sync_release(&c, s) != 0)
            return STEP_ERROR;
        lane_item_set(ln, s, ITEM_DONE);
        n++;
    }
    if (n) {
        results_touch(w->results);
        log_debug("items_released", "org=%s count=%d", ln->org_id, n);
    }
    return STEP_OK;
}

/* No new requests on this lane: it closes once its requests in flight are answered. */
static enum step lane_quiesce(struct worker *w, struct lane *ln)
{
    ln->closing = true;
    if (ln->pulling && !ln->pull_flight)
        ln->pulling = false;
    return lane_release_unstarted(w, ln);
}

/* A statement was refused for what this lane's server sent (db_refused_data): that lane
 * alone stops, logged, its server's health says why; the run and every other lane go on. */
static enum step lane_fail(struct worker *w, struct lane *ln, const char *step)
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
enum step lane_step(struct worker *w, struct lane *ln, enum step rc, const char *step)
{
    if (rc >= 0 || rc != STEP_ERROR || !db_refused_data(w->db))
        return rc;
    return lane_fail(w, ln, step);
}

static void lane_free(struct lane *ln)
{
    for (int i = 0; i < ln->nitems; i++)
        lane_item_free(ln->items[i]);
    free(ln->items);
    json_decref(ln->busy);
    pull_job_clear(&ln->pull);
    free(ln);
}

/* db_ok false: the connection is gone, leave the database alone (leases expire). */
void lane_close(struct worker *w, int idx, bool db_ok)
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

bool org_listed(const json_t *orgs, const char *org_id)
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
static enum step lane_open(struct worker *w, const char *org_id, bool pull, bool *busy)
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
    enum step rc = server_lock_acquire(w->db, org_id, w->key, &ln->sl, &why);
    if (rc != STEP_OK) {
        free(ln);
        if (rc < 0)
            return rc;
        if (why == SERVER_LOCK_BUSY)
            *busy = true;
        else if (why == SERVER_LOCK_NONE)
            worker_log_once(w, org_id, "server_missing", "no PEMS server configured");
        else if (why == SERVER_LOCK_BAD_SECRET) {
            worker_log_once(w, org_id, "server_credentials_unreadable",
                     "the PEMS credentials cannot be decrypted with ENCRYPTION_KEY");
            if (!org_listed(w->unleasable, org_id))
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
enum step lanes_discover(struct worker *w, json_t *pull_todo, bool keep_busy)
{
    json_t *orgs = NULL;
    json_array_clear(w->unleasable);
    enum step rc = w->cfg->write_sync_enabled ? wq_due_orgs(w->db, &orgs) : STEP_OK;
    if (rc != STEP_OK)
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

/* Drops finished items and claims more: STEP_OK, STEP_DONE (nothing due), DB status < 0. */
static enum step lane_claim(struct worker *w, struct lane *ln)
{
    int keep = 0;
    for (int i = 0; i < ln->nitems; i++) {
        if (ln->items[i]->st == ITEM_DONE)
            lane_item_free(ln->items[i]);
        else
            ln->items[keep++] = ln->items[i];
    }
    ln->nitems = keep;
    struct item *items = NULL;
    int64_t sent = util_mono_ns();
    int n = wq_claim(w->db, w->worker_id, ln->org_id, claim_size(w, ln), w->cfg->lease_seconds,
                     &items);
    if (n < 0)
        return n;
    w->confirmed_ns = sent;
    if (n == 0)
        return STEP_DONE;
    if (ln->nitems + n > ln->capitems) {
        int cap = ln->nitems + n + 16;
        struct item **sl = realloc(ln->items, sizeof *sl * (size_t)cap);
        if (!sl) {
            items_free(items, n);
            return STEP_ERROR;
        }
        ln->items = sl;
        ln->capitems = cap;
    }
    /* a record whose write is not recorded yet is read here at its old version */
    json_t *written = json_object();
    results_written(w->results, written);
    for (int i = 0; i < n; i++) {
        struct item *s = malloc(sizeof *s);
        if (!s) {
            json_decref(written);
            items_free(items + i, n - i);  /* the rest come back as their lease ends */
            return STEP_ERROR;
        }
        *s = items[i];
        s->st = ITEM_NEW;
        ln->n_new++;
        s->leased_ns = sent;
        s->stale = json_object_get(ln->busy, s->pfa_id) || json_object_get(written, s->pfa_id);
        ln->items[ln->nitems++] = s;
    }
    json_decref(written);
    free(items);
    return STEP_OK;
}

/* Plans the claimed items in claim order, each once its record is free (*did: one was
 * planned or finished): STEP_OK or a DB status < 0. */
static enum step lane_plan(struct worker *w, struct lane *ln, json_t **written, bool *did)
{
    for (int i = 0; i < ln->nitems && ln->n_new > 0; i++) {
        struct item *s = ln->items[i];
        if (s->st != ITEM_NEW || json_object_get(ln->busy, s->pfa_id))
            continue;
        if (s->stale) {
            if (!*written) {
                *written = json_object();
                results_written(w->results, *written);
            }
            if (json_object_get(*written, s->pfa_id))
                continue;   /* wait until the write before it is recorded */
            enum step rc = results_settle(w->results);
            if (rc == STEP_OK)
                rc = (enum step)wq_item_refresh(w->db, s);
            if (rc != STEP_OK)
                return rc;
            s->stale = false;
        }
        struct write_ctx c = lane_ctx(w, ln);
        enum step rc = write_sync_prepare(&c, s);
        if (rc < 0)
            return rc;
        lane_item_set(ln, s, rc == STEP_AGAIN ? ITEM_READY : ITEM_DONE);
        if (rc != STEP_AGAIN)
            results_touch(w->results);
        *did = true;
    }
    return STEP_OK;
}

enum step lane_work(struct worker *w, struct lane *ln, json_t **written, bool *did)
{
    if (ln->closing)
        return STEP_OK;
    if (!server_lock_valid(w->db, &ln->sl)) {
        /* the connection holding the lock was lost: another worker may hold it now */
        log_warn("server_lock_lost", "org=%s", ln->org_id);
        *did = true;
        return lane_quiesce(w, ln);
    }
    if (*w->stop) {
        *did = true;
        return lane_quiesce(w, ln);
    }
    if (ln->pulling) {
        if (!ln->pull_begun) {
            enum step rc = pull_begin(w->db, &ln->sl, &ln->pull);
            if (rc < 0)
                return rc;
            ln->pull_begun = true;
            ln->pull_started_ns = util_mono_ns();
            *did = true;
        }
        return STEP_OK;
    }
    if (!ln->writes) {
        ln->drained = true;
        return STEP_OK;
    }
    int live = ln->n_new + ln->n_ready;
    if (live == 0 && !ln->drained && ln->inflight < ln->cap) {
        enum step rc = lane_claim(w, ln);
        if (rc < 0)
            return rc;
        if (rc == STEP_DONE)
            ln->drained = true;
        *did = true;
    }
    return lane_plan(w, ln, written, did);
}

/* The server paused us (429) for long: hand its items back, look again later. */
enum step lane_check_pause(struct worker *w, struct lane *ln)
{
    if (ln->closing || ln->next_start_ns == 0 ||
        ln->next_start_ns - util_mono_ns() <= LANE_GIVE_UP_NS)
        return STEP_OK;
    if (ln->pulling && !ln->pull_flight)
        log_info("pull_deferred", "org=%s reason=rate_window", ln->org_id);
    return lane_quiesce(w, ln);
}

bool lane_finished(const struct lane *ln)
{
    if (ln->inflight > 0)
        return false;
    if (ln->closing)
        return true;
    if (ln->pulling || ln->n_new + ln->n_ready > 0)
        return false;
    return ln->drained || !ln->writes;
}

enum step lane_extend_leases(struct worker *w, struct lane *ln)
{
    if (util_mono_ns() - ln->extended_ns <= (int64_t)w->cfg->lease_seconds * NS_PER_S / 3)
        return STEP_OK;
    bool held = false;
    for (int i = 0; i < ln->nitems && !held; i++)
        held = ln->items[i]->st != ITEM_DONE;
    ln->extended_ns = util_mono_ns();
    if (!held)
        return STEP_OK;
    /* it updates items a flush in flight updates too, in another order: settle first;
     * results lost there must not have their items' leases extended */
    enum step rc = results_settle(w->results);
    int64_t sent = util_mono_ns();
    if (rc == STEP_OK)
        rc = wq_item_leases_extend(w->db, w->worker_id, ln->org_id, w->cfg->lease_seconds);
    if (rc == STEP_OK) {
        w->confirmed_ns = sent;
        for (int i = 0; i < ln->nitems; i++)
            if (ln->items[i]->st != ITEM_DONE)
                ln->items[i]->leased_ns = sent;
    }
    return rc;
}
