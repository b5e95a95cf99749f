#include "write_queue.h"
#include "log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int wq_due_orgs(db_t *db, json_t **org_ids)
{
    *org_ids = NULL;
    PGresult *res = db_query(db, "wq_due_orgs",
        "SELECT s.organization_id FROM api_servers s"
        " WHERE s.write_enabled AND (s.paused_until IS NULL OR s.paused_until <= now())"
        "   AND (EXISTS (SELECT 1 FROM pfa_write_queue q WHERE q.organization_id = s.organization_id"
        "                  AND q.status = 'pending' AND q.scheduled_at <= now())"
        "     OR EXISTS (SELECT 1 FROM pfa_write_queue q WHERE q.organization_id = s.organization_id"
        "                  AND q.status = 'processing' AND q.locked_until < now()))"
        " ORDER BY s.organization_id", 0, NULL);
    if (!res)
        return db_last_status(db);
    json_t *arr = json_array();
    for (int i = 0; i < PQntuples(res); i++)
        json_array_append_new(arr, json_string(PQgetvalue(res, i, 0)));
    PQclear(res);
    *org_ids = arr;
    return DB_OK;
}

int wq_blocked_orgs(db_t *db, json_t **out)
{
    *out = NULL;
    PGresult *res = db_query(db, "wq_blocked_orgs",
        "SELECT q.organization_id, count(*),"
        "       CASE WHEN s.id IS NULL THEN 'no PEMS server configured'"
        "            ELSE 'PEMS server has writes disabled' END"
        " FROM pfa_write_queue q LEFT JOIN api_servers s ON s.organization_id = q.organization_id"
        " WHERE q.status = 'pending' AND q.scheduled_at <= now()"
        "   AND (s.id IS NULL OR NOT s.write_enabled)"
        " GROUP BY q.organization_id, s.id", 0, NULL);
    if (!res)
        return db_last_status(db);
    json_t *arr = json_array();
    for (int i = 0; i < PQntuples(res); i++)
        json_array_append_new(arr, json_pack("{s:s, s:I, s:s}", "org", PQgetvalue(res, i, 0),
                                             "count", (json_int_t)atoll(PQgetvalue(res, i, 1)),
                                             "reason", PQgetvalue(res, i, 2)));
    PQclear(res);
    *out = arr;
    return DB_OK;
}

static json_t *parse_json_col(const PGresult *res, int row, int col, json_t *fallback)
{
    const char *v = db_value(res, row, col);
    json_t *j = v ? json_loads(v, JSON_DECODE_ANY, NULL) : NULL;
    if (!j)
        return fallback;
    json_decref(fallback);
    return j;
}

int wq_claim(db_t *db, const char *worker_id, const char *org_id, int max, int lease_seconds,
             struct item **items)
{
    *items = NULL;
    char smax[16], slease[16];
    snprintf(smax, sizeof smax, "%d", max);
    snprintf(slease, sizeof slease, "%d", lease_seconds);
    const char *params[] = { org_id, worker_id, smax, slease };
    PGresult *res = db_query(db, "wq_claim",
        "WITH c AS (SELECT id FROM pfa_write_queue_claimable($1::uuid, $3::int)"
        "), u AS ("
        "  UPDATE pfa_write_queue q SET status = 'processing', locked_by = $2,"
        "         locked_until = now() + make_interval(secs => $4::int),"
        "         claim_seq = q.claim_seq + 1, started_at = now(), updated_at = now()"
        "  FROM c WHERE q.id = c.id"
        "  RETURNING q.id, q.modification_id, q.organization_id, q.claim_seq, q.attempts,"
        "            q.deferrals, q.priority, q.scheduled_at"
        ")"
        " SELECT u.id, u.modification_id, u.organization_id, u.claim_seq, u.attempts, u.deferrals,"
        "        u.priority, m.pfa_id, m.operation, m.base_version, m.delta::text,"
        "        mm.version, mm.deleted, mm.data::text,"
        /* fields PEMS changed since the edit's base version; none when the mirror is
         * still at that version, the common case, which then skips the history lookup */
        "        CASE WHEN mm.version IS NULL OR mm.version > m.base_version THEN"
        "        (SELECT coalesce(jsonb_agg(DISTINCT f ORDER BY f), '[]'::jsonb)"
        "           FROM pfa_mirror_history h, unnest(h.changed_fields) f"
        "          WHERE h.organization_id = m.organization_id AND h.pfa_id = m.pfa_id"
        "            AND h.version >= m.base_version)::text ELSE '[]' END"
        " FROM u JOIN pfa_modification m ON m.id = u.modification_id"
        " LEFT JOIN pfa_mirror mm ON mm.organization_id = m.organization_id AND mm.pfa_id = m.pfa_id"
        " ORDER BY u.priority DESC, u.scheduled_at, u.id", 4, params);
    if (!res)
        return db_last_status(db);
    int n = PQntuples(res);
    struct item *arr = n ? calloc((size_t)n, sizeof *arr) : NULL;
    if (n && !arr) {
        PQclear(res);
        return DB_ERROR;
    }
    for (int i = 0; i < n; i++) {
        struct item *it = &arr[i];
        snprintf(it->id, sizeof it->id, "%s", PQgetvalue(res, i, 0));
        snprintf(it->modification_id, sizeof it->modification_id, "%s", PQgetvalue(res, i, 1));
        snprintf(it->org_id, sizeof it->org_id, "%s", PQgetvalue(res, i, 2));
        it->claim_seq = atoll(PQgetvalue(res, i, 3));
        it->attempts = atoi(PQgetvalue(res, i, 4));
        it->deferrals = atoi(PQgetvalue(res, i, 5));
        it->priority = atoi(PQgetvalue(res, i, 6));
        it->pfa_id = strdup(PQgetvalue(res, i, 7));
        if (pfa_op_parse(PQgetvalue(res, i, 8), &it->op) != 0)
            it->op = PFA_OP_UPDATE;
        it->base_version = atoll(PQgetvalue(res, i, 9));
        it->delta = parse_json_col(res, i, 10, json_object());
        it->has_mirror = !PQgetisnull(res, i, 11);
        it->mirror_version = it->has_mirror ? atoll(PQgetvalue(res, i, 11)) : 0;
        it->mirror_deleted = it->has_mirror && PQgetvalue(res, i, 12)[0] == 't';
        it->mirror_data = parse_json_col(res, i, 13, json_object());
        it->changed_since_base = parse_json_col(res, i, 14, json_array());
    }
    PQclear(res);
    *items = arr;
    return n;
}

int wq_item_refresh(db_t *db, struct item *it)
{
    char sbase[24];
    snprintf(sbase, sizeof sbase, "%" PRId64, it->base_version);
    const char *params[] = { it->org_id, it->pfa_id, sbase };
    PGresult *res = db_query(db, "wq_item_refresh",
        "SELECT mm.version, mm.deleted, mm.data::text,"
        "  (SELECT coalesce(jsonb_agg(DISTINCT f ORDER BY f), '[]'::jsonb)"
        "     FROM pfa_mirror_history h, unnest(h.changed_fields) f"
        "    WHERE h.organization_id = $1 AND h.pfa_id = $2 AND h.version >= $3::bigint)::text"
        " FROM (SELECT 1) one LEFT JOIN pfa_mirror mm"
        "   ON mm.organization_id = $1 AND mm.pfa_id = $2", 3, params);
    if (!res)
        return db_last_status(db);
    it->has_mirror = !PQgetisnull(res, 0, 0);
    it->mirror_version = it->has_mirror ? atoll(PQgetvalue(res, 0, 0)) : 0;
    it->mirror_deleted = it->has_mirror && PQgetvalue(res, 0, 1)[0] == 't';
    json_decref(it->mirror_data);
    it->mirror_data = parse_json_col(res, 0, 2, json_object());
    json_decref(it->changed_since_base);
    it->changed_since_base = parse_json_col(res, 0, 3, json_array());
    PQclear(res);
    return DB_OK;
}

int wq_item_leases_extend(db_t *db, const char *worker_id, const char *org_id, int lease_seconds)
{
    char slease[16];
    snprintf(slease, sizeof slease, "%d", lease_seconds);
    const char *params[] = { worker_id, org_id, slease };
    return db_exec(db, "wq_item_leases_extend",
        "UPDATE pfa_write_queue SET locked_until = now() + make_interval(secs => $3::int)"
        " WHERE status = 'processing' AND locked_by = $1 AND organization_id = $2", 3, params);
}

int wq_next_due(db_t *db, const json_t *skip_orgs, double *seconds)
{
    *seconds = 1e9;
    char *skip = skip_orgs ? json_dumps(skip_orgs, JSON_COMPACT) : strdup("[]");
    if (!skip)
        return DB_ERROR;
    const char *params[] = { skip };
    PGresult *res = db_query(db, "wq_next_due",
        /* only what a claim could take: an expired lease of an organization without a
         * server is as stuck as its pending items, and counting it kept the worker spinning */
        "WITH s AS (SELECT organization_id, paused_until FROM api_servers"
        "            WHERE write_enabled AND organization_id::text NOT IN"
        "                  (SELECT jsonb_array_elements_text($1::jsonb)))"
        " SELECT extract(epoch FROM least("
        "  (SELECT min(greatest(q.scheduled_at, coalesce(s.paused_until, q.scheduled_at)))"
        "     FROM pfa_write_queue q JOIN s ON s.organization_id = q.organization_id"
        "    WHERE q.status = 'pending'),"
        "  (SELECT min(greatest(q.locked_until, coalesce(s.paused_until, q.locked_until)))"
        "     FROM pfa_write_queue q JOIN s ON s.organization_id = q.organization_id"
        "    WHERE q.status = 'processing')) - now())",
        1, params);
    free(skip);
    if (!res)
        return db_last_status(db);
    if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
        *seconds = atof(PQgetvalue(res, 0, 0));
    PQclear(res);
    return DB_OK;
}

void wq_batch_init(struct wq_batch *b)
{
    b->rows = json_array();
    b->sent_rows = json_array();
}

void wq_batch_clear(struct wq_batch *b)
{
    json_decref(b->rows);
    json_decref(b->sent_rows);
    b->rows = b->sent_rows = NULL;
}

int wq_batch_count(const struct wq_batch *b)
{
    return b->rows ? (int)json_array_size(b->rows) : 0;
}

static const char *outcome_name(enum wq_outcome o)
{
    switch (o) {
    case WQ_SYNCED: return "synced";
    case WQ_FAILED: return "failed";
    case WQ_RETRY: return "retry";
    case WQ_DEFER: return "defer";
    case WQ_RELEASE: return "release";
    }
    return "release";
}

int wq_batch_add(struct wq_batch *b, const struct item *it, const struct wq_result *r)
{
    json_t *row = json_pack("{s:s, s:I, s:s, s:i, s:i, s:I, s:s}",
                            "item", it->id, "seq", (json_int_t)it->claim_seq,
                            "outcome", outcome_name(r->outcome),
                            "att", r->attempts_inc, "dfr", r->deferrals_inc,
                            "delay_ms", (json_int_t)r->delay_ms, "pfa_id", it->pfa_id);
    if (!row)
        return -1;
    json_object_set_new(row, "err", r->error ? json_string(r->error) : json_null());
    json_object_set_new(row, "http", r->http_status ? json_integer(r->http_status) : json_null());
    if (r->outcome == WQ_SYNCED) {
        json_object_set_new(row, "wrote", json_boolean(r->wrote));
        json_object_set_new(row, "old_version", json_integer((json_int_t)r->old_version));
        json_object_set_new(row, "new_version", json_integer((json_int_t)r->new_version));
        json_object_set_new(row, "new_data", r->new_data ? json_deep_copy(r->new_data) : json_null());
        json_object_set_new(row, "deleted", json_boolean(r->deleted));
        json_object_set_new(row, "changed",
                            r->changed_fields ? json_deep_copy(r->changed_fields) : json_array());
        json_object_set_new(row, "written", r->written ? json_deep_copy(r->written) : json_null());
        json_object_set_new(row, "merged", json_boolean(r->merged));
    }
    return json_array_append_new(b->rows, row);
}

static int flush_result(db_t *db, PGresult *res, int n)
{
    if (!res)
        return db_last_status(db);
    int done = PQntuples(res);
    PQclear(res);
    if (done < n)
        log_warn("write_queue_fenced", "results=%d recorded=%d", n, done);
    return done;
}

int wq_batch_send(db_t *db, const char *worker_id, struct wq_batch *b)
{
    int n = wq_batch_count(b);
    if (n == 0)
        return 0;
    json_t *next = json_array();
    char *json = next ? json_dumps(b->rows, JSON_COMPACT) : NULL;
    if (!json) {
        json_decref(next);
        return DB_ERROR;
    }
    const char *params[] = { worker_id, json };
    /* one transaction, fenced by each item's claim (sql/functions/worker_results.sql) */
    int rc = db_send(db, "wq_flush", "SELECT pfa_write_queue_record($1, $2::jsonb)", 2, params);
    free(json);
    if (rc != DB_OK) {
        json_decref(next);
        return rc;
    }
    json_decref(b->sent_rows);
    b->sent_rows = b->rows;
    b->rows = next;
    b->worker_id = worker_id;
    return n;
}

/* A batch refused for one result's data: each result alone, so only the refused one is
 * lost (logged; its item comes back when its lease ends) and every other organization's
 * results are recorded. */
static int record_one_by_one(db_t *db, const char *worker_id, const json_t *rows)
{
    int done = 0;
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row) {
        json_t *one = json_pack("[O]", row);
        char *json = one ? json_dumps(one, JSON_COMPACT) : NULL;
        json_decref(one);
        if (!json)
            return DB_ERROR;
        const char *params[] = { worker_id, json };
        PGresult *res = db_query(db, "wq_flush", "SELECT pfa_write_queue_record($1, $2::jsonb)",
                                 2, params);
        free(json);
        if (res) {
            done += PQntuples(res);
            PQclear(res);
        } else if (db_refused_data(db)) {
            log_error("result_refused", "item=%s pfa_id=\"%s\" sqlstate=%s error=\"%s\"",
                      json_string_value(json_object_get(row, "item")),
                      json_string_value(json_object_get(row, "pfa_id")), db_sqlstate(db),
                      db_errmsg(db));
        } else {
            return db_last_status(db);
        }
    }
    return done;
}

int wq_batch_collect(db_t *db, struct wq_batch *b)
{
    int n = (int)json_array_size(b->sent_rows);
    PGresult *res = db_collect(db);
    int rc = !res && n > 0 && db_refused_data(db) ? record_one_by_one(db, b->worker_id, b->sent_rows)
                                                  : flush_result(db, res, n);
    json_array_clear(b->sent_rows);
    return rc;
}

int wq_batch_settle(db_t *db, struct wq_batch *b)
{
    if (!db_sent(db))
        return 0;
    int n = (int)json_array_size(b->sent_rows);
    int rc = wq_batch_collect(db, b);
    if (rc < 0)
        log_warn("results_not_recorded", "count=%d error=\"%s\"", n, db_errmsg(db));
    return rc < 0 ? rc : 0;
}

static void add_written(const json_t *rows, json_t *set)
{
    size_t i;
    const json_t *row;
    json_array_foreach(rows, i, row) {
        /* only a write moves the mirror: a handed-back item marking its record would hand
         * back the next item of that record, and so on, forever */
        const char *pfa = json_string_value(json_object_get(row, "pfa_id"));
        if (pfa && json_is_true(json_object_get(row, "wrote")))
            json_object_set_new(set, pfa, json_true());
    }
}

void wq_batch_written(const struct wq_batch *b, json_t *set)
{
    add_written(b->rows, set);
    add_written(b->sent_rows, set);
}
