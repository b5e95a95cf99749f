#include "write_sync.h"
#include "backoff.h"
#include "conflict_store.h"
#include "log.h"
#include "metrics.h"
#include "pems_record.h"
#include "pfa_record.h"
#include "pull.h"
#include "upstream_rejects.h"
#include "write_decision.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define MAX_409_ROUNDS 3
#define RATE_DEFERRAL_CAP 20

/* the organization's code for log lines, beside the item's id */
static const char *org_code(const struct write_ctx *c)
{
    return c->sl && c->sl->srv.org_code ? c->sl->srv.org_code : "";
}

/* The item's result into the batch: STEP_DONE, or STEP_ERROR when out of memory. */
static enum step finish(struct write_ctx *c, const struct item *it, const struct wq_result *r)
{
    if (wq_batch_add(c->batch, it, r) != 0)
        return STEP_ERROR;
    c->stats->processed++;
    switch (r->outcome) {
    case WQ_SYNCED:
        c->stats->successful++;
        metrics_sync_item("synced");
        if (r->merged) {
            c->stats->merged++;
            metrics_sync_item("merged");
        }
        log_debug("item_synced", "item=%s pfa_id=%s version=%" PRId64 " wrote=%d merged=%d", it->id,
                  it->pfa_id, r->new_version, r->wrote, r->merged);
        break;
    case WQ_FAILED:
        c->stats->failed++;
        metrics_sync_item("failed");
        /* PEMS refused the write for good: someone has to look at it */
        log_warn("item_failed", "item=%s org_code=%s pfa_id=%s http_status=%d error=\"%s\"",
                 it->id, org_code(c), it->pfa_id, r->http_status, r->error ? r->error : "");
        break;
    case WQ_RETRY:
    case WQ_DEFER:
        c->stats->skipped++;
        log_info(r->outcome == WQ_RETRY ? "item_retry_scheduled" : "item_deferred",
                 "item=%s org_code=%s pfa_id=%s http_status=%d delay_ms=%ld attempts=%d"
                 " error=\"%s\"", it->id, org_code(c), it->pfa_id, r->http_status, r->delay_ms,
                 it->attempts + r->attempts_inc, r->error ? r->error : "");
        break;
    case WQ_RELEASE:
        break;
    }
    return STEP_DONE;
}

static enum step finish_failed(struct write_ctx *c, const struct item *it, const char *error,
                               int http_status, int attempts_inc)
{
    struct wq_result r = { .outcome = WQ_FAILED, .attempts_inc = attempts_inc,
                           .error = error, .http_status = http_status };
    return finish(c, it, &r);
}

static enum step finish_converged(struct write_ctx *c, const struct item *it, int attempts_inc)
{
    struct wq_result r = { .outcome = WQ_SYNCED, .attempts_inc = attempts_inc, .wrote = false,
                           .old_version = it->mirror_version, .new_version = it->mirror_version };
    return finish(c, it, &r);
}

/* Recorded at once, in its own transaction: STEP_DONE or a DB status < 0. */
static enum step finish_conflict(struct write_ctx *c, const struct item *it, const json_t *fields,
                                 int http_status, int attempts_inc)
{
    enum step rc = c->settle(c->settle_arg);
    if (rc != STEP_OK)
        return rc;
    int recorded = conflict_store_record(c->db, c->worker_id, it, fields, it->mirror_version,
                                         it->mirror_data, http_status, attempts_inc);
    if (recorded < 0)
        return (enum step)recorded;
    c->stats->processed++;
    if (recorded == 0) {
        log_warn("item_fenced", "item=%s claim_seq=%lld", it->id, it->claim_seq);
        return STEP_DONE;
    }
    c->stats->conflicts++;
    metrics_sync_item("conflict");
    char *f = json_dumps(fields, JSON_COMPACT);
    log_info("item_conflict",
             "item=%s org_code=%s pfa_id=%s base_version=%" PRId64 " pems_version=%" PRId64
             " fields=%s",
             it->id, org_code(c), it->pfa_id, it->base_version, it->mirror_version, f ? f : "");
    free(f);
    return STEP_DONE;
}

/* The decision (write_decide, src/lib/write_decision.c), then what it means here: a request
 * planned (STEP_AGAIN) or a result recorded (STEP_DONE), or a DB status < 0. */
static enum step decide(struct write_ctx *c, struct item *it, int http_status, int attempts_inc)
{
    item_plan_clear(it);
    it->plan.version = it->mirror_version;
    struct write_case wc = {
        .op = it->op, .base_version = it->base_version, .delta = it->delta,
        .mirror_version = it->mirror_version, .mirror_deleted = it->mirror_deleted,
        .mirror_data = it->mirror_data, .changed_since_base = it->changed_since_base
    };
    struct write_decision d;
    write_decide(&wc, &d);
    enum step rc = STEP_AGAIN;
    switch (d.verdict) {
    case WRITE_SEND:
        it->plan.merged = d.merged;
        it->plan.changes = d.changes;
        d.changes = NULL;
        break;
    case WRITE_CONVERGED:
        rc = finish_converged(c, it, attempts_inc);
        break;
    case WRITE_CONFLICT:
        rc = finish_conflict(c, it, d.conflict_fields, http_status, attempts_inc);
        break;
    case WRITE_INVALID:
        rc = finish_failed(c, it, d.error, http_status, attempts_inc);
        break;
    }
    write_decision_clear(&d);
    return rc;
}

enum step write_sync_prepare(struct write_ctx *c, struct item *it)
{
    item_plan_clear(it);
    it->plan.round = 0;
    return decide(c, it, 0, 0);
}

enum step write_sync_release(struct write_ctx *c, const struct item *it)
{
    struct wq_result r = { .outcome = WQ_RELEASE };
    return wq_batch_add(c->batch, it, &r) == 0 ? STEP_OK : STEP_ERROR;
}

static void response_error(const struct pems_response *resp, char *out, size_t outlen)
{
    if (resp->http_status)
        snprintf(out, outlen, "HTTP %ld: %s", resp->http_status,
                 resp->error[0] ? resp->error : "error");
    else
        snprintf(out, outlen, "transport: %s", resp->error[0] ? resp->error : "error");
}

/* What a write's 200 leaves out, taken from what was written. */
struct result_defaults {
    int64_t version;    /* -1: none */
    bool deleted;
    json_t *data;       /* borrowed; NULL: none */
};

/* PEMS's record as a write's 200 or a 409 carries it, checked like a pulled one: NULL and
 * noted as a reject when it is not fit for the mirror (README, Security) */
static json_t *checked_record(struct write_ctx *c, const struct item *it, const json_t *body,
                              const struct result_defaults *def)
{
    json_t *rec = json_is_object(body) ? json_copy((json_t *)body) : json_object();
    struct pems_record r;
    char why[200];
    if (!rec)
        return NULL;
    json_object_set_new(rec, "pfaId", json_string(it->pfa_id));
    if (def && def->deleted && !json_object_get(rec, "deleted"))
        json_object_set_new(rec, "deleted", json_true());
    if (def && def->version >= 0 && !json_object_get(rec, "version"))
        json_object_set_new(rec, "version", json_integer((json_int_t)def->version));
    if (def && def->data && !json_object_get(rec, "data"))
        json_object_set(rec, "data", def->data);
    enum pems_reject rj = pems_record_check(rec, 0, 0, &r, why, sizeof why);
    json_t *out = rj == PEMS_REJECT_NONE ? pems_record_json(&r) : NULL;
    if (rj != PEMS_REJECT_NONE)
        upstream_reject_note(c->db, it->org_id, it->pfa_id, rj, why);
    pems_record_clear(&r);
    json_decref(rec);
    return out;
}

static enum step on_success(struct write_ctx *c, struct item *it,
                            const struct pems_response *resp)
{
    /* a write acknowledged without a version is the next one (none after the largest) */
    int64_t next = it->plan.version < PEMS_VERSION_MAX ? it->plan.version + 1 : -1;
    int64_t new_version = next >= 0 ? next : it->plan.version;
    json_t *new_data = NULL;
    json_t *written = it->op == PFA_OP_UPDATE ? pfa_apply_delta(it->mirror_data, it->plan.changes)
                                              : NULL;
    if (json_object_get(resp->body, "version") || json_object_get(resp->body, "data")) {
        /* the write happened; a result unfit for the mirror leaves the mirror as it is, and
         * the next pull brings PEMS's record (checked again) */
        struct result_defaults def = { .version = next,
                                       .deleted = it->op == PFA_OP_DELETE, .data = written };
        json_t *rec = checked_record(c, it, resp->body, &def);
        if (rec) {
            new_version = json_integer_value(json_object_get(rec, "version"));
            if (it->op == PFA_OP_UPDATE)
                new_data = json_incref(json_object_get(rec, "data"));
        } else {
            new_version = it->plan.version;
        }
        json_decref(rec);
    } else if (written) {
        new_data = json_incref(written);
    }
    json_decref(written);
    json_t *changed = new_version > it->plan.version ? pfa_diff_fields(it->mirror_data, new_data)
                                                  : json_array();
    struct wq_result r = {
        .outcome = WQ_SYNCED, .attempts_inc = 1, .http_status = (int)resp->http_status,
        .wrote = true, .old_version = it->plan.version, .new_version = new_version,
        .new_data = new_data, .deleted = it->op == PFA_OP_DELETE, .changed_fields = changed,
        .written = it->plan.changes, .merged = it->plan.merged
    };
    enum step rc = finish(c, it, &r);
    json_decref(new_data);
    json_decref(changed);
    return rc;
}

static enum step on_retryable(struct write_ctx *c, struct item *it, const struct pems_response *resp)
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

static enum step on_rate_limited(struct write_ctx *c, struct item *it,
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

/* 409: the mirror learns PEMS's current record (archiving the version it had). body is the
 * 409's or the GET's; *usable is false when it carries no record fit for the mirror (a body
 * that is no record at all, an error text, is no reject), *refreshed when it was newer. */
static enum step refresh_apply(struct write_ctx *c, struct item *it, const json_t *body,
                               bool *usable, bool *refreshed)
{
    *usable = *refreshed = false;
    bool record_like = json_object_get(body, "version") || json_object_get(body, "data");
    json_t *current = record_like ? checked_record(c, it, body, NULL) : NULL;
    if (!current)
        return STEP_OK;
    *usable = true;
    int64_t version = json_integer_value(json_object_get(current, "version"));
    if (version <= it->mirror_version) {
        json_decref(current);
        return STEP_OK;
    }
    enum step rc = c->settle(c->settle_arg);
    if (rc == STEP_OK) {
        json_t *records = json_pack("[O]", current);
        int applied = records ? pull_apply(c->db, it->org_id, records, NULL) : DB_ERROR;
        json_decref(records);
        if (applied < 0)
            rc = (enum step)applied;
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
    rc = (enum step)conflict_store_changed_since(c->db, it->org_id, it->pfa_id, it->base_version,
                                                 &changed);
    if (rc != STEP_OK)
        return rc;
    json_decref(it->changed_since_base);
    it->changed_since_base = changed;
    *refreshed = true;
    return STEP_OK;
}

struct pems_request *write_sync_request(struct write_ctx *c, struct item *it)
{
    if (it->plan.get)
        return pems_request_get(c->sl->client, it->pfa_id);
    /* the same key for the same write: a re-claimed item is applied by PEMS once */
    char key[96];
    snprintf(key, sizeof key, "%s:%" PRId64, it->id, it->plan.version);
    if (it->op == PFA_OP_DELETE)
        return pems_request_delete(c->sl->client, it->pfa_id, it->plan.version, key);
    return pems_request_update(c->sl->client, it->pfa_id, it->plan.version, it->plan.changes, key);
}

/* After a 409 refreshed the mirror: decide again; a rebased write is another request. */
static enum step after_refresh(struct write_ctx *c, struct item *it)
{
    log_info("item_version_conflict",
             "item=%s org_code=%s pfa_id=%s written_on=%" PRId64 " pems_version=%" PRId64, it->id,
             org_code(c), it->pfa_id, it->plan.version, it->mirror_version);
    it->plan.round++;
    return decide(c, it, 409, 1);
}

/* The 409 could not be resolved (no usable current record, or too many rounds). */
static enum step conflict_unresolved(struct write_ctx *c, struct item *it, const char *error)
{
    struct pems_response resp = { .outcome = PEMS_CONFLICT, .http_status = 409,
                                  .retry_after_s = -1 };
    snprintf(resp.error, sizeof resp.error, "%s", error);
    return on_retryable(c, it, &resp);
}

static enum step answer_get(struct write_ctx *c, struct item *it,
                            const struct pems_response *resp)
{
    it->plan.get = false;
    bool usable = false, refreshed = false;
    if (resp->outcome == PEMS_OK && json_is_object(resp->body)) {
        enum step rc = refresh_apply(c, it, resp->body, &usable, &refreshed);
        if (rc < 0)
            return rc;
    }
    if (!refreshed)
        return conflict_unresolved(c, it, it->plan.conflict_error);
    return after_refresh(c, it);
}

enum step write_sync_answer(struct write_ctx *c, struct item *it,
                            const struct pems_response *resp)
{
    metrics_upstream_inc((int)resp->http_status);
    if (it->plan.get)
        return answer_get(c, it, resp);
    enum step rc = STEP_DONE;
    switch (resp->outcome) {
    case PEMS_OK:
        rc = on_success(c, it, resp);
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
        if (it->plan.round >= MAX_409_ROUNDS) {
            rc = on_retryable(c, it, resp);
            break;
        }
        bool usable = false, refreshed = false;
        rc = refresh_apply(c, it, resp->body, &usable, &refreshed);
        if (rc < 0)
            return rc;
        if (refreshed)
            return after_refresh(c, it);
        if (!usable) {
            /* no current record fit for the mirror in the 409: read it */
            snprintf(it->plan.conflict_error, sizeof it->plan.conflict_error, "%s", resp->error);
            it->plan.get = true;
            return STEP_AGAIN;
        }
        rc = on_retryable(c, it, resp);
        break;
    }
    }
    return rc;
}
