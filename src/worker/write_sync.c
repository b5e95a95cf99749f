#include "write_sync.h"
#include "backoff.h"
#include "conflict.h"
#include "conflict_store.h"
#include "log.h"
#include "metrics.h"
#include "pfa_record.h"
#include "pull.h"
#include "validation.h"

#include <stdio.h>
#include <string.h>

#define MAX_409_ROUNDS 3
#define RATE_DEFERRAL_CAP 20

void write_plan_clear(struct write_plan *p)
{
    json_decref(p->changes);
    memset(p, 0, sizeof *p);
}

static int finish(struct write_ctx *c, const struct wq_item *it, const struct wq_result *r)
{
    if (wq_batch_add(c->batch, it, r) != 0)
        return DB_ERROR;
    c->stats->processed++;
    switch (r->outcome) {
    case WQ_SYNCED:
        c->stats->successful++;
        metrics_sync_item("synced");
        if (r->merged) {
            c->stats->merged++;
            metrics_sync_item("merged");
        }
        log_debug("item_synced", "item=%s pfa_id=%s version=%d wrote=%d merged=%d", it->id,
                  it->pfa_id, r->new_version, r->wrote, r->merged);
        break;
    case WQ_FAILED:
        c->stats->failed++;
        metrics_sync_item("failed");
        log_info("item_failed", "item=%s pfa_id=%s http_status=%d error=\"%s\"", it->id,
                 it->pfa_id, r->http_status, r->error ? r->error : "");
        break;
    case WQ_RETRY:
    case WQ_DEFER:
        c->stats->skipped++;
        log_info(r->outcome == WQ_RETRY ? "item_retry_scheduled" : "item_deferred",
                 "item=%s pfa_id=%s http_status=%d delay_ms=%ld attempts=%d error=\"%s\"",
                 it->id, it->pfa_id, r->http_status, r->delay_ms,
                 it->attempts + r->attempts_inc, r->error ? r->error : "");
        break;
    case WQ_RELEASE:
        break;
    }
    return 0;
}

static int finish_failed(struct write_ctx *c, const struct wq_item *it, const char *error,
                         int http_status, int attempts_inc)
{
    struct wq_result r = { .outcome = WQ_FAILED, .attempts_inc = attempts_inc,
                           .error = error, .http_status = http_status };
    return finish(c, it, &r);
}

static int finish_converged(struct write_ctx *c, const struct wq_item *it, int attempts_inc)
{
    struct wq_result r = { .outcome = WQ_SYNCED, .attempts_inc = attempts_inc, .wrote = false,
                           .old_version = it->mirror_version, .new_version = it->mirror_version };
    return finish(c, it, &r);
}

static int finish_conflict(struct write_ctx *c, const struct wq_item *it, const json_t *fields,
                           int http_status, int attempts_inc)
{
    int rc = c->settle(c->settle_arg);
    if (rc == 0)
        rc = conflict_store_record(c->db, c->worker_id, it, fields, it->mirror_version,
                                   it->mirror_data, http_status, attempts_inc);
    if (rc < 0)
        return rc;
    c->stats->processed++;
    if (rc == 0) {
        log_warn("item_fenced", "item=%s claim_seq=%lld", it->id, it->claim_seq);
        return 0;
    }
    c->stats->conflicts++;
    metrics_sync_item("conflict");
    char *f = json_dumps(fields, JSON_COMPACT);
    log_info("item_conflict", "item=%s pfa_id=%s base_version=%d pems_version=%d fields=%s",
             it->id, it->pfa_id, it->base_version, it->mirror_version, f ? f : "");
    free(f);
    return 0;
}

static void details_text(const json_t *details, char *out, size_t outlen)
{
    size_t len = 0;
    size_t i;
    json_t *d;
    out[0] = '\0';
    len += (size_t)snprintf(out, outlen, "validation_failed");
    json_array_foreach(details, i, d) {
        if (len >= outlen)
            break;
        const char *field = json_string_value(json_object_get(d, "field"));
        const char *msg = json_string_value(json_object_get(d, "message"));
        len += (size_t)snprintf(out + len, outlen - len, "%s %s: %s", i ? ";" : ":",
                                field ? field : "?", msg ? msg : "invalid");
    }
}

/* Conflict check then validation against the mirror as the item knows it. */
static int decide(struct write_ctx *c, struct wq_item *it, struct write_plan *plan,
                  int http_status, int attempts_inc)
{
    int round = plan->round;
    write_plan_clear(plan);
    plan->round = round;
    plan->version = it->mirror_version;
    json_t *sanitized = NULL, *details = NULL;
    int rc;
    if (it->op == PFA_OP_DELETE) {
        if (it->mirror_deleted)
            return finish_converged(c, it, attempts_inc);
        if (it->base_version < it->mirror_version && json_array_size(it->changed_since_base) > 0)
            return finish_conflict(c, it, it->changed_since_base, http_status, attempts_inc);
        if (pfa_validate_modification(PFA_OP_DELETE, NULL, it->mirror_data, &sanitized,
                                      &details) != 0) {
            char err[1024];
            details_text(details, err, sizeof err);
            json_decref(details);
            return finish_failed(c, it, err, http_status, attempts_inc);
        }
        json_decref(sanitized);
        plan->merged = it->base_version < it->mirror_version;
        return STEP_AGAIN;
    }

    struct conflict_result cr;
    memset(&cr, 0, sizeof cr);
    if (conflict_detect(it->base_version, it->mirror_version, it->changed_since_base, it->delta,
                        it->mirror_data, &cr) != 0) {
        conflict_result_clear(&cr);
        return finish_failed(c, it, "conflict detection failed", http_status, attempts_inc);
    }
    if (cr.outcome == CONFLICT_OVERLAP) {
        rc = finish_conflict(c, it, cr.conflict_fields, http_status, attempts_inc);
        conflict_result_clear(&cr);
        return rc;
    }
    const json_t *to_write = cr.rebased_delta ? cr.rebased_delta : it->delta;
    if (json_object_size(to_write) == 0) {
        /* PEMS already has every value we want (a convergent edit) */
        conflict_result_clear(&cr);
        return finish_converged(c, it, attempts_inc);
    }
    if (pfa_validate_modification(PFA_OP_UPDATE, to_write, it->mirror_data, &sanitized,
                                  &details) != 0) {
        char err[1024];
        details_text(details, err, sizeof err);
        json_decref(details);
        conflict_result_clear(&cr);
        return finish_failed(c, it, err, http_status, attempts_inc);
    }
    plan->merged = cr.outcome == CONFLICT_AUTO_MERGE;
    conflict_result_clear(&cr);
    if (json_object_size(sanitized) == 0) {
        /* every field already has the value we want: nothing left to write */
        json_decref(sanitized);
        return finish_converged(c, it, attempts_inc);
    }
    plan->changes = sanitized;
    return STEP_AGAIN;
}

/* decide's 0 (a result added) is STEP_DONE to the caller */
static int decided(int rc)
{
    return rc == 0 ? STEP_DONE : rc;
}

int write_sync_prepare(struct write_ctx *c, struct wq_item *it, struct write_plan *plan)
{
    memset(plan, 0, sizeof *plan);
    return decided(decide(c, it, plan, 0, 0));
}

int write_sync_release(struct write_ctx *c, const struct wq_item *it)
{
    struct wq_result r = { .outcome = WQ_RELEASE };
    return wq_batch_add(c->batch, it, &r) == 0 ? 0 : DB_ERROR;
}

static void response_error(const struct pems_response *resp, char *out, size_t outlen)
{
    if (resp->http_status)
        snprintf(out, outlen, "HTTP %ld: %s", resp->http_status,
                 resp->error[0] ? resp->error : "error");
    else
        snprintf(out, outlen, "transport: %s", resp->error[0] ? resp->error : "error");
}

static int on_success(struct write_ctx *c, struct wq_item *it, struct write_plan *plan,
                      const struct pems_response *resp)
{
    json_t *v = json_object_get(resp->body, "version");
    int new_version = json_is_integer(v) ? (int)json_integer_value(v) : plan->version + 1;
    json_t *new_data = NULL;
    if (it->op == PFA_OP_UPDATE) {
        json_t *d = json_object_get(resp->body, "data");
        new_data = json_is_object(d) ? json_incref(d) : pfa_apply_delta(it->mirror_data, plan->changes);
    }
    json_t *changed = pfa_diff_fields(it->mirror_data, new_data);
    struct wq_result r = {
        .outcome = WQ_SYNCED, .attempts_inc = 1, .http_status = (int)resp->http_status,
        .wrote = true, .old_version = plan->version, .new_version = new_version,
        .new_data = new_data, .deleted = it->op == PFA_OP_DELETE, .changed_fields = changed,
        .written = plan->changes, .merged = plan->merged
    };
    int rc = finish(c, it, &r);
    json_decref(new_data);
    json_decref(changed);
    return rc;
}

static int on_retryable(struct write_ctx *c, struct wq_item *it, const struct pems_response *resp)
{
    char err[400];
    response_error(resp, err, sizeof err);
    int used = it->attempts + 1;
    if (used >= c->max_attempts)
        return finish_failed(c, it, err, (int)resp->http_status, 1);
    struct wq_result r = { .outcome = WQ_RETRY, .attempts_inc = 1,
                           .delay_ms = (long)backoff_delay(used, resp->retry_after_s) * 1000L,
                           .error = err, .http_status = (int)resp->http_status };
    return finish(c, it, &r);
}

static int on_rate_limited(struct write_ctx *c, struct wq_item *it,
                           const struct pems_response *resp)
{
    long wait_s = resp->retry_after_s > 0 ? resp->retry_after_s : 1;
    server_lock_pause(c->db, c->sl, wait_s);
    if (it->deferrals >= RATE_DEFERRAL_CAP) {
        char err[400];
        response_error(resp, err, sizeof err);
        int used = it->attempts + 1;
        if (used >= c->max_attempts)
            return finish_failed(c, it, err, (int)resp->http_status, 1);
        long delay = backoff_delay(used, wait_s);
        struct wq_result r = { .outcome = WQ_RETRY, .attempts_inc = 1, .deferrals_inc = 1,
                               .delay_ms = delay * 1000L, .error = err,
                               .http_status = (int)resp->http_status };
        return finish(c, it, &r);
    }
    struct wq_result r = { .outcome = WQ_DEFER, .deferrals_inc = 1, .delay_ms = wait_s * 1000L,
                           .error = "rate limited by PEMS", .http_status = (int)resp->http_status };
    return finish(c, it, &r);
}

/* 409: the mirror learns PEMS's current record (archiving the version it had). current is
 * the 409's body or the GET's answer; *refreshed is false when it is unusable or not newer. */
static bool record_usable(const json_t *body)
{
    return json_is_object(body) && json_is_integer(json_object_get(body, "version")) &&
           (json_is_object(json_object_get(body, "data")) ||
            json_is_true(json_object_get(body, "deleted")));
}

static int refresh_apply(struct write_ctx *c, struct wq_item *it, const json_t *body,
                         bool *refreshed)
{
    *refreshed = false;
    if (!record_usable(body))
        return 0;
    int version = (int)json_integer_value(json_object_get(body, "version"));
    if (version <= it->mirror_version)
        return 0;
    json_t *current = json_deep_copy(body);
    if (!current)
        return DB_ERROR;
    json_object_set_new(current, "pfaId", json_string(it->pfa_id));
    int rc = c->settle(c->settle_arg);
    if (rc == 0) {
        json_t *records = json_pack("[O]", current);
        rc = records ? pull_apply(c->db, it->org_id, records, NULL) : DB_ERROR;
        json_decref(records);
    }
    if (rc < 0) {
        json_decref(current);
        return rc;
    }
    it->mirror_version = version;
    if (json_is_true(json_object_get(current, "deleted"))) {
        it->mirror_deleted = true;
    } else {
        json_decref(it->mirror_data);
        it->mirror_data = json_incref(json_object_get(current, "data"));
        it->mirror_deleted = false;
    }
    json_decref(current);
    json_t *changed = NULL;
    rc = conflict_store_changed_since(c->db, it->org_id, it->pfa_id, it->base_version, &changed);
    if (rc != DB_OK)
        return rc;
    json_decref(it->changed_since_base);
    it->changed_since_base = changed;
    *refreshed = true;
    return 0;
}

struct pems_request *write_sync_request(struct write_ctx *c, struct wq_item *it,
                                        const struct write_plan *plan)
{
    if (plan->get)
        return pems_request_get(c->sl->client, it->pfa_id);
    /* the same key for the same write: a re-claimed item is applied by PEMS once */
    char key[96];
    snprintf(key, sizeof key, "%s:%d", it->id, plan->version);
    if (it->op == PFA_OP_DELETE)
        return pems_request_delete(c->sl->client, it->pfa_id, plan->version, key);
    return pems_request_update(c->sl->client, it->pfa_id, plan->version, plan->changes, key);
}

/* After a 409 refreshed the mirror: decide again; a rebased write is another request. */
static int after_refresh(struct write_ctx *c, struct wq_item *it, struct write_plan *plan)
{
    log_info("item_version_conflict", "item=%s pfa_id=%s written_on=%d pems_version=%d",
             it->id, it->pfa_id, plan->version, it->mirror_version);
    plan->round++;
    return decided(decide(c, it, plan, 409, 1));
}

/* The 409 could not be resolved (no usable current record, or too many rounds). */
static int conflict_unresolved(struct write_ctx *c, struct wq_item *it, const char *error)
{
    struct pems_response resp = { .outcome = PEMS_CONFLICT, .http_status = 409,
                                  .retry_after_s = -1 };
    snprintf(resp.error, sizeof resp.error, "%s", error);
    return decided(on_retryable(c, it, &resp));
}

static int answer_get(struct write_ctx *c, struct wq_item *it, struct write_plan *plan,
                      const struct pems_response *resp)
{
    plan->get = false;
    bool refreshed = false;
    if (resp->outcome == PEMS_OK) {
        int rc = refresh_apply(c, it, resp->body, &refreshed);
        if (rc < 0)
            return rc;
    }
    if (!refreshed)
        return conflict_unresolved(c, it, plan->conflict_error);
    return after_refresh(c, it, plan);
}

int write_sync_answer(struct write_ctx *c, struct wq_item *it, struct write_plan *plan,
                      const struct pems_response *resp)
{
    metrics_upstream_inc((int)resp->http_status);
    if (plan->get)
        return answer_get(c, it, plan, resp);
    int rc = 0;
    switch (resp->outcome) {
    case PEMS_OK:
        rc = on_success(c, it, plan, resp);
        break;
    case PEMS_PERMANENT: {
        char err[400];
        response_error(resp, err, sizeof err);
        rc = finish_failed(c, it, err, (int)resp->http_status, 1);
        break;
    }
    case PEMS_RATE_LIMITED:
        rc = on_rate_limited(c, it, resp);
        break;
    case PEMS_RETRYABLE:
        rc = on_retryable(c, it, resp);
        break;
    case PEMS_CONFLICT: {
        if (plan->round >= MAX_409_ROUNDS) {
            rc = on_retryable(c, it, resp);
            break;
        }
        bool refreshed = false;
        if (!record_usable(resp->body)) {
            /* no current record in the 409: read it */
            snprintf(plan->conflict_error, sizeof plan->conflict_error, "%s", resp->error);
            plan->get = true;
            return STEP_AGAIN;
        }
        rc = refresh_apply(c, it, resp->body, &refreshed);
        if (rc < 0)
            return rc;
        if (refreshed)
            return after_refresh(c, it, plan);
        rc = on_retryable(c, it, resp);
        break;
    }
    }
    return decided(rc);
}
