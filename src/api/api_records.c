#include "api_records.h"
#include "api_params.h"
#include "auth.h"
#include "page_cache.h"
#include "util.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every change to a record's mirror row or its modifications gives the record a new position
 * (sql/functions/records.sql), drawn in commit order: an organization's highest position is a
 * version of all its records, a record's position a version of that record. The tags below
 * are made of them, so a poll is answered 304 from one index probe, without rendering. */

static const char *const sync_state_values[] = { "in_sync", "pending", "conflict", "error",
                                                 NULL };

static const struct api_field list_fields[] = {
    { "organizationId", AF_UUID, true, 0, 0, NULL },
    { "q", AF_STRING, false, 1, 200, NULL },
    { "category", AF_STRING, false, 1, 200, NULL },
    { "syncState", AF_ENUM, false, 0, 0, sync_state_values },
    { "limit", AF_INT, false, 1, 500, NULL },
    { "cursor", AF_STRING, false, 1, API_CURSOR_MAX, NULL },
};

/* The membership, the organization's version and the page after the cursor (one more row
 * than the limit: when it comes, there is a next page), read in one snapshot; one row with a
 * NULL doc when the page is empty. */
static const char list_sql[] =
    "SELECT a.user_ok, a.allowed, a.head, r.total, r.pfa_id, r.doc FROM ("
    "  SELECT EXISTS (SELECT 1 FROM users WHERE id = $1::uuid) AS user_ok,"
    "   pems_has_permission(p.permissions, $3) AS allowed,"
    "   pems_record_head($2::uuid) AS head"
    "  FROM (SELECT 1) one LEFT JOIN user_organizations p"
    "   ON p.user_id = $1::uuid AND p.organization_id = $2::uuid"
    "  OFFSET 0) a"
    " LEFT JOIN LATERAL pems_records_page($2::uuid, $4, $5, $6, $7, $8::int) r ON a.allowed"
    " ORDER BY r.pfa_id COLLATE \"C\"";

/* The membership and the organization's version alone. */
static const char version_sql[] =
    "SELECT EXISTS (SELECT 1 FROM users WHERE id = $1::uuid),"
    " (SELECT pems_has_permission(permissions, $3) FROM user_organizations"
    "  WHERE user_id = $1::uuid AND organization_id = $2::uuid),"
    " pems_record_head($2::uuid)";

#define PAGE_CACHE_SLOTS 8
#define PAGE_CACHE_BYTES (512 * 1024)
#define RECORDS_TAG_SIZE 36

static unsigned long long fnv1a(const char *s)
{
    unsigned long long h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

/* The page's tag: which query, at which version of the organization's records. */
static void list_tag(const char *key, long long version, char out[RECORDS_TAG_SIZE])
{
    snprintf(out, RECORDS_TAG_SIZE, "\"%016llx%016llx\"", fnv1a(key), (unsigned long long)version);
}

/* Assembles {records, total, nextCursor} from list_sql's rows, sends it, and caches it. */
static void send_list(struct api_ctx *ctx, struct http_request *req, PGresult *res,
                      const char *key, long limit)
{
    int rows = PQntuples(res);
    bool empty = rows == 1 && PQgetisnull(res, 0, 5);
    int shown = empty ? 0 : rows > limit ? (int)limit : rows;
    char cursor[API_CURSOR_MAX + 3] = "null";
    if (!empty && rows > limit) {
        cursor[0] = '"';
        if (!api_cursor_encode(PQgetvalue(res, shown - 1, 4), cursor + 1, sizeof cursor - 2)) {
            api_internal_error(req, "cursor does not fit");
            return;
        }
        strcat(cursor, "\"");
    }
    const char *total = empty ? "0" : PQgetvalue(res, 0, 3);
    size_t len = 64 + strlen(total) + strlen(cursor) + (size_t)shown;
    for (int i = 0; i < shown; i++)
        len += (size_t)PQgetlength(res, i, 5);
    char *page = malloc(len), *at = page;
    if (!page) {
        api_internal_error(req, "out of memory");
        return;
    }
    at = stpcpy(at, "{\"records\":[");
    for (int i = 0; i < shown; i++) {
        if (i > 0)
            *at++ = ',';
        memcpy(at, PQgetvalue(res, i, 5), (size_t)PQgetlength(res, i, 5));
        at += PQgetlength(res, i, 5);
    }
    at += sprintf(at, "],\"total\":%s,\"nextCursor\":%s}", total, cursor);
    long long version = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
    char tag[RECORDS_TAG_SIZE];
    list_tag(key, version, tag);
    http_send_json_tagged(req, page, (size_t)(at - page), tag);
    if (!ctx->record_pages)
        ctx->record_pages = page_cache_new(PAGE_CACHE_SLOTS, PAGE_CACHE_BYTES);
    if (ctx->record_pages)
        page_cache_put(ctx->record_pages, key, version, page, (size_t)(at - page), tag);
    free(page);
}

void api_records_list(struct api_ctx *ctx, struct http_request *req)
{
    struct query_params q;
    if (!api_query_accept(ctx, req, &q, list_fields, sizeof list_fields / sizeof list_fields[0]))
        return;
    const char *org = api_query_get(&q, "organizationId");
    const char *text = api_query_get(&q, "q");
    const char *category = api_query_get(&q, "category");
    const char *state = api_query_get(&q, "syncState");
    const char *limit_s = api_query_get(&q, "limit");
    const char *cursor = api_query_get(&q, "cursor");
    long limit = limit_s ? strtol(limit_s, NULL, 10) : 50;
    char after[HTTP_MAX_PARAM_VALUE];
    if (cursor && !api_cursor_decode(cursor, after, sizeof after)) {
        json_t *details = json_array();
        api_detail_add(details, "cursor", "is not a cursor this API gave (nextCursor)");
        api_reject(ctx, req, details);
        return;
    }
    /* the query as it reads the records: its values are checked, the limit as parsed */
    char *key = NULL;
    if (asprintf(&key, "%s|%s|%s|%s|%ld|%s", org, text ? text : "", category ? category : "",
                 state ? state : "", limit, cursor ? after : "") < 0) {
        api_internal_error(req, "out of memory");
        return;
    }
    char limit_text[16];
    snprintf(limit_text, sizeof limit_text, "%ld", limit);
    const char *params[] = { req->user_id, org, auth_need(req), text, category, state,
                             cursor ? after : NULL, limit_text };
    PGresult *res = NULL;
    bool have = ctx->record_pages && page_cache_version(ctx->record_pages, key) >= 0;
    if (have || req->if_none_match) {
        if (!(res = db_query(ctx->db, "records_version", version_sql, 3, params))) {
            api_db_failure(ctx, req);
            goto out;
        }
        if (auth_org_row(req, db_value(res, 0, 0), db_value(res, 0, 1)) < 0)
            goto out;
        long long version = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
        char tag[RECORDS_TAG_SIZE];
        list_tag(key, version, tag);
        if (api_etag_matches(req->if_none_match, tag)) {
            http_send_not_modified(req, tag);
            goto out;
        }
        size_t len;
        const char *page = have ? page_cache_get(ctx->record_pages, key, version, &len, NULL) : NULL;
        if (page) {
            http_send_json_tagged(req, page, len, tag);
            goto out;
        }
        PQclear(res);
    }
    if (!(res = db_query(ctx->db, "records_list", list_sql, 8, params))) {
        api_db_failure(ctx, req);
        goto out;
    }
    if (auth_org_row(req, db_value(res, 0, 0), db_value(res, 0, 1)) == 0)
        send_list(ctx, req, res, key, limit);
out:
    PQclear(res);
    free(key);
}

static const struct api_field record_fields[] = {
    { "organizationId", AF_UUID, true, 0, 0, NULL },
};

/* The first entity tag of If-None-Match when it is a record's (a position), else -1. */
static long long record_tag_position(const char *inm)
{
    if (!inm)
        return -1;
    while (*inm == ' ')
        inm++;
    if (inm[0] == 'W' && inm[1] == '/')
        inm += 2;
    long long v = -1;
    int used = 0;
    if (sscanf(inm, "\"%16llx\"%n", (unsigned long long *)&v, &used) != 1 || used != 18)
        return -1;
    return v;
}

/* Characters of a valid UTF-8 string. */
static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

/* A record's pfaId from the path: 404 (after the user check) when it cannot be one, which
 * also keeps bytes PostgreSQL would refuse out of the query. */
static const char *record_pfa_id(struct api_ctx *ctx, struct http_request *req)
{
    const char *pfa_id = http_param(req, "pfaId");
    if (!pfa_id || !api_utf8_valid(pfa_id, strlen(pfa_id)) || utf8_chars(pfa_id) > 200) {
        auth_not_found(ctx, req);
        return NULL;
    }
    return pfa_id;
}

void api_record_get(struct api_ctx *ctx, struct http_request *req)
{
    struct query_params q;
    if (!api_query_accept(ctx, req, &q, record_fields,
                          sizeof record_fields / sizeof record_fields[0]))
        return;
    const char *pfa_id = record_pfa_id(ctx, req);
    if (!pfa_id)
        return;
    char known[24] = "";
    long long have = record_tag_position(req->if_none_match);
    if (have >= 0)
        snprintf(known, sizeof known, "%lld", have);
    const char *params[] = { req->user_id, api_query_get(&q, "organizationId"), auth_need(req),
                             pfa_id, known[0] ? known : NULL };
    /* the record is rendered only when the client's tag is not its current one */
    PGresult *res = db_query(
        ctx->db, "record_get",
        "SELECT a.user_ok, a.allowed, pos.seq, m.id IS NOT NULL,"
        " CASE WHEN pos.seq IS DISTINCT FROM $5::bigint THEN pems_record_json(m) END"
        " FROM (SELECT EXISTS (SELECT 1 FROM users WHERE id = $1::uuid) AS user_ok,"
        "   pems_has_permission(p.permissions, $3) AS allowed"
        "  FROM (SELECT 1) one LEFT JOIN user_organizations p"
        "   ON p.user_id = $1::uuid AND p.organization_id = $2::uuid) a"
        " LEFT JOIN pfa_mirror m ON a.allowed AND m.organization_id = $2::uuid"
        "  AND m.pfa_id = $4 AND NOT m.deleted"
        " LEFT JOIN pfa_record_position pos ON m.id IS NOT NULL"
        "  AND pos.organization_id = $2::uuid AND pos.pfa_id = $4",
        5, params);
    if (!res) {
        api_db_failure(ctx, req);
        return;
    }
    if (auth_org_row(req, db_value(res, 0, 0), db_value(res, 0, 1)) < 0)
        goto out;
    if (strcmp(PQgetvalue(res, 0, 3), "t") != 0) {
        http_send_error(req, 404, "not_found", "No such PFA record in this organization", NULL);
        goto out;
    }
    if (PQgetisnull(res, 0, 2)) {   /* no position (cannot happen after the migration) */
        http_send_json_etag(req, PQgetvalue(res, 0, 4), (size_t)PQgetlength(res, 0, 4));
        goto out;
    }
    char tag[RECORDS_TAG_SIZE];
    snprintf(tag, sizeof tag, "\"%016llx\"",
             (unsigned long long)strtoll(PQgetvalue(res, 0, 2), NULL, 10));
    if (PQgetisnull(res, 0, 4))   /* the client's tag is current */
        http_send_not_modified(req, tag);
    else
        http_send_json_tagged(req, PQgetvalue(res, 0, 4), (size_t)PQgetlength(res, 0, 4), tag);
out:
    PQclear(res);
}

static const struct api_field history_fields[] = {
    { "organizationId", AF_UUID, true, 0, 0, NULL },
    { "limit", AF_INT, false, 1, 500, NULL },
};

void api_record_history(struct api_ctx *ctx, struct http_request *req)
{
    struct query_params q;
    if (!api_query_accept(ctx, req, &q, history_fields,
                          sizeof history_fields / sizeof history_fields[0]))
        return;
    const char *pfa_id = record_pfa_id(ctx, req);
    if (!pfa_id)
        return;
    const char *limit = api_query_get(&q, "limit");
    const char *params[] = { req->user_id, api_query_get(&q, "organizationId"), auth_need(req),
                             pfa_id, limit ? limit : "100" };
    PGresult *res = db_query(
        ctx->db, "record_history",
        "SELECT EXISTS (SELECT 1 FROM users WHERE id = $1::uuid),"
        " pems_has_permission(p.permissions, $3),"
        " CASE WHEN pems_has_permission(p.permissions, $3)"
        "  THEN pems_record_history($2::uuid, $4, $5::int) END"
        " FROM (SELECT 1) one LEFT JOIN user_organizations p"
        "  ON p.user_id = $1::uuid AND p.organization_id = $2::uuid",
        5, params);
    if (!res) {
        api_db_failure(ctx, req);
        return;
    }
    if (auth_org_row(req, db_value(res, 0, 0), db_value(res, 0, 1)) == 0) {
        if (PQgetisnull(res, 0, 2))
            http_send_error(req, 404, "not_found", "No such PFA record in this organization",
                            NULL);
        else
            http_send_json_text(req, 200, PQgetvalue(res, 0, 2));
    }
    PQclear(res);
}
