#include "pull.h"
#include "log.h"
#include "metrics.h"
#include "pems_record.h"
#include "pfa_record.h"
#include "text.h"
#include "upstream_rejects.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PULL_PAGE 500
#define PULL_MAX_PAGES 100000

static int64_t record_version(const json_t *rec)
{
    json_t *v = json_object_get(rec, "version");
    return json_is_integer(v) ? json_integer_value(v) : -1;
}

/* pfaId -> the newest record of the page; invalid records are skipped with a log line */
static json_t *newest_per_record(const json_t *records)
{
    json_t *by_id = json_object();
    size_t i;
    json_t *rec;
    json_array_foreach(records, i, rec) {
        const char *id = json_string_value(json_object_get(rec, "pfaId"));
        int64_t version = record_version(rec);
        bool deleted = json_is_true(json_object_get(rec, "deleted"));
        json_t *data = json_object_get(rec, "data");
        if (!id || !*id || strlen(id) > 200 || version < 0 || (!deleted && !json_is_object(data))) {
            log_warn("pull_record_invalid", "pfa_id=\"%s\"", id ? id : "");
            continue;
        }
        json_t *seen = json_object_get(by_id, id);
        if (!seen || record_version(seen) < version)
            json_object_set(by_id, id, rec);
    }
    return by_id;
}

int pull_apply(db_t *db, const char *org_id, const json_t *records, const char *pull_since)
{
    json_t *by_id = newest_per_record(records);
    json_t *ids = json_array();
    json_t *rows = json_array();
    char *ids_s = NULL, *rows_s = NULL;
    PGresult *res = NULL;
    int rc = DB_ERROR;
    const char *key;
    json_t *rec;
    json_object_foreach(by_id, key, rec)
        json_array_append_new(ids, json_string(key));
    ids_s = json_dumps(ids, JSON_COMPACT);
    if (!ids_s)
        goto cleanup;
    const char *lp[] = { org_id, ids_s };
    res = db_query(db, "pull_load",
        "SELECT pfa_id, version, data::text FROM pfa_mirror WHERE organization_id = $1"
        " AND pfa_id IN (SELECT jsonb_array_elements_text($2::jsonb))", 2, lp);
    if (!res) {
        rc = db_last_status(db);
        goto cleanup;
    }
    json_t *old = json_object();
    for (int r = 0; r < PQntuples(res); r++) {
        json_t *data = json_loads(PQgetvalue(res, r, 2), 0, NULL);
        json_object_set_new(old, PQgetvalue(res, r, 0),
                            json_pack("{s:I, s:o}", "version", (json_int_t)atoll(PQgetvalue(res, r, 1)),
                                      "data", data ? data : json_object()));
    }
    PQclear(res);
    res = NULL;
    json_object_foreach(by_id, key, rec) {
        json_t *prev = json_object_get(old, key);
        int64_t version = record_version(rec);
        if (prev && record_version(prev) >= version)
            continue;
        bool deleted = json_is_true(json_object_get(rec, "deleted"));
        json_t *prev_data = prev ? json_object_get(prev, "data") : NULL;
        json_t *data = deleted ? (prev_data ? prev_data : NULL) : json_object_get(rec, "data");
        json_t *changed = pfa_diff_fields(prev_data, deleted ? NULL : data);
        json_t *updated_at = json_object_get(rec, "updatedAt");
        json_array_append_new(rows, json_pack("{s:s, s:s, s:I, s:O, s:b, s:O, s:o}",
            "organization_id", org_id, "pfa_id", key, "version", (json_int_t)version,
            "data", data ? data : json_object(),
            "deleted", deleted, "updated_at", json_is_string(updated_at) ? updated_at : json_null(),
            "changed", changed ? changed : json_array()));
    }
    json_decref(old);
    if (json_array_size(rows) == 0 && !pull_since) {
        rc = 0;
        goto cleanup;
    }
    rows_s = json_dumps(rows, JSON_COMPACT);
    if (!rows_s)
        goto cleanup;
    const char *ap[] = { org_id, rows_s, pull_since };
    /* the mirror advances (sql/functions/worker_results.sql) and the cursor is stored in the
     * same transaction */
    res = db_query(db, "pull_apply",
        "WITH a AS (SELECT pfa_mirror_advance($2::jsonb) AS n),"
        " s AS (UPDATE api_servers SET pull_since = $3::text, last_pull_at = now()"
        "       WHERE organization_id = $1 AND $3::text IS NOT NULL RETURNING 1)"
        " SELECT n FROM a", 3, ap);
    if (!res) {
        rc = db_last_status(db);
        goto cleanup;
    }
    rc = atoi(PQgetvalue(res, 0, 0));
cleanup:
    if (res)
        PQclear(res);
    free(ids_s);
    free(rows_s);
    json_decref(ids);
    json_decref(rows);
    json_decref(by_id);
    return rc;
}

static char *load_pull_since(db_t *db, const char *server_id, int *rc)
{
    const char *params[] = { server_id };
    PGresult *res = db_query(db, "pull_since_load",
                             "SELECT pull_since FROM api_servers WHERE id = $1", 1, params);
    *rc = res ? DB_OK : db_last_status(db);
    char *since = NULL;
    if (res && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
        since = strdup(PQgetvalue(res, 0, 0));
    if (res)
        PQclear(res);
    return since;
}

#define PULL_EPOCH "1970-01-01T00:00:00Z"

/* The stored cursor, when it is an instant we can trust: one from before the timestamps were
 * checked may be garbage (every pull would fail on PEMS's 400) or far ahead (every later edit
 * hidden); then the pull starts over, which stores nothing twice. */
static int64_t since_trusted(const char *org_id, const char *since, int64_t trust_until_ms)
{
    int64_t ms;
    if (!since)
        return -1;
    if (pems_timestamp_parse(since, strlen(since), &ms) == 0 && ms <= trust_until_ms)
        return ms;
    log_warn("pull_since_reset", "org=%s reason=\"stored updatedSince is not a trusted timestamp\"",
             org_id);
    return -1;
}

enum step pull_begin(db_t *db, const struct server_lock *sl, struct pull_job *job)
{
    memset(job, 0, sizeof *job);
    int rc = DB_OK;
    char *stored = load_pull_since(db, sl->srv.id, &rc);
    if (rc != DB_OK) {
        free(stored);
        return rc;
    }
    /* PEMS's updatedAt beyond this is not trusted as a cursor (README, Security) */
    job->trust_until_ms = util_wall_ms() + PEMS_CLOCK_SKEW_MS;
    job->since_ms = since_trusted(sl->srv.org_id, stored, job->trust_until_ms);
    free(stored);
    job->newest_ms = job->since_ms;
    pems_timestamp_format(job->since_ms, job->since, sizeof job->since);
    snprintf(job->newest, sizeof job->newest, "%s", job->since);
    job->cursors = json_object();
    job->state = PULL_HEALTH;
    return job->cursors ? STEP_OK : STEP_ERROR;
}

void pull_job_clear(struct pull_job *job)
{
    json_decref(job->cursors);
    free(job->cursor);
    memset(job, 0, sizeof *job);
}

struct pems_request *pull_request(const struct server_lock *sl, struct pull_job *job)
{
    if (job->state == PULL_HEALTH)
        return pems_request_health(sl->client);
    /* the first pull asks for everything, still naming updatedSince, which PEMS requires */
    return pems_request_pull(sl->client, job->since_ms >= 0 ? job->since : PULL_EPOCH,
                             job->cursor, PULL_PAGE);
}

/* What the server's health is now, as sync-status and pemsctl server list show it: ok, or
 * failing with PEMS's text (valid UTF-8 already, pems_response.error). */
static enum step health_note(db_t *db, const struct server_lock *sl, bool ok,
                             const char *prefix, const char *text)
{
    char err[300];
    snprintf(err, sizeof err, "%s%s", prefix, text && *text ? text : "health check failed");
    const char *params[] = { sl->srv.id, ok ? "true" : "false", ok ? NULL : err };
    return db_exec(db, "pull_health",
                   "UPDATE api_servers SET health_ok = $2::boolean, health_error = $3,"
                   " health_checked_at = now() WHERE id = $1", 3, params);
}

static enum step health_answer(db_t *db, struct server_lock *sl, struct pull_job *job,
                               const struct pems_response *resp)
{
    bool ok = resp->outcome == PEMS_OK;
    if (resp->outcome == PEMS_RATE_LIMITED)
        server_lock_pause(db, sl, resp->retry_after_s > 0 ? resp->retry_after_s : 1);
    enum step rc = health_note(db, sl, ok, resp->http_status ? "HTTP error: " : "", resp->error);
    if (rc != STEP_OK)
        return rc;
    job->state = PULL_PAGES;
    return STEP_AGAIN;
}

static enum step finished(struct server_lock *sl, struct pull_job *job)
{
    if (job->st.applied)
        log_info("pull_done", "org=%s org_code=%s pages=%d applied=%d since=\"%s\"",
                 sl->srv.org_id, sl->srv.org_code, job->st.pages, job->st.applied,
                 job->newest_ms >= 0 ? job->newest : "");
    job->state = PULL_FINISHED;
    return STEP_DONE;
}

enum step pull_answer(db_t *db, struct server_lock *sl, struct pull_job *job,
                      const struct pems_response *resp)
{
    metrics_upstream_inc((int)resp->http_status);
    if (job->state == PULL_HEALTH)
        return health_answer(db, sl, job, resp);
    if (resp->outcome != PEMS_OK) {
        log_warn("pull_failed", "org=%s org_code=%s http_status=%ld error=\"%s\"",
                 sl->srv.org_id, sl->srv.org_code, resp->http_status, resp->error);
        if (resp->outcome == PEMS_RATE_LIMITED) {
            server_lock_pause(db, sl, resp->retry_after_s > 0 ? resp->retry_after_s : 1);
            return finished(sl, job);   /* PEMS asks us to slow down: not failing */
        }
        enum step rc = health_note(db, sl, false, "pull: ", resp->error);
        return rc != STEP_OK ? rc : finished(sl, job);
    }
    struct pems_page pg;
    char why[200];
    if (pems_page_parse(resp->body, job->trust_until_ms, &pg, why, sizeof why) != 0) {
        log_warn("pull_failed", "org=%s org_code=%s error=\"%s\"", sl->srv.org_id,
                 sl->srv.org_code, why);
        enum step rc = health_note(db, sl, false, "pull: ", why);
        return rc != STEP_OK ? rc : finished(sl, job);
    }
    /* where a pulled record is accepted: pems_page_parse took it, the rejects are noted */
    int noted = upstream_rejects_note(db, sl->srv.org_id, pg.rejects);
    size_t i;
    const json_t *u;
    json_array_foreach(pg.untrusted, i, u) {
        log_warn("pems_updated_at_untrusted", "org=%s org_code=%s pfa_id=\"%s\" updated_at=%s"
                 " reason=\"later than this pull's start: the record is stored, the cursor stays\"",
                 sl->srv.org_id, sl->srv.org_code, json_string_value(json_object_get(u, "pfaId")),
                 json_string_value(json_object_get(u, "updatedAt")));
        metrics_upstream_rejected("future_updated_at");
    }
    if (pg.newest_ms > job->newest_ms) {
        job->newest_ms = pg.newest_ms;
        pems_timestamp_format(job->newest_ms, job->newest, sizeof job->newest);
    }
    int applied = noted == DB_OK ? pull_apply(db, sl->srv.org_id, pg.records,
                                              job->newest_ms >= 0 ? job->newest : NULL)
                                 : noted;
    if (applied < 0) {
        pems_page_clear(&pg);
        return applied;
    }
    job->st.pages++;
    job->st.applied += applied;
    if (job->cursor)
        json_object_set_new(job->cursors, job->cursor, json_true());
    free(job->cursor);
    job->cursor = pg.next_cursor;
    pg.next_cursor = NULL;
    /* a cursor sent before, or a page that brought nothing but a cursor, would never end */
    bool stuck = job->cursor && (pg.received == 0 || json_object_get(job->cursors, job->cursor));
    pems_page_clear(&pg);
    if (stuck) {
        char safe[64];
        text_utf8_clip(job->cursor, strlen(job->cursor), safe, sizeof safe);
        log_error("pull_cursor_stuck", "org=%s org_code=%s pages=%d cursor=\"%s\"",
                  sl->srv.org_id, sl->srv.org_code, job->st.pages, safe);
        metrics_upstream_rejected("stuck_cursor");
        return finished(sl, job);
    }
    if (!job->cursor || job->st.pages >= PULL_MAX_PAGES)
        return finished(sl, job);
    return STEP_AGAIN;
}
