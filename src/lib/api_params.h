#ifndef PEMS_API_PARAMS_H
#define PEMS_API_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

/* Pure request-parsing helpers of the API: no FastCGI, no libpq. */

#define API_MAX_BODY (1024 * 1024)
#define API_MAX_JSON_DEPTH 32
#define API_MAX_QUERY_PARAMS 16

/* Nesting depth of a JSON text, counting brackets outside strings. */
int api_json_depth(const char *buf, size_t len);

bool api_utf8_valid(const char *buf, size_t len);

/* "application/json" with optional parameters (e.g. "; charset=utf-8"), case-insensitive. */
bool api_content_type_is_json(const char *ct);

/* YYYY-MM-DD, or YYYY-MM-DDTHH:MM[:SS[.fff]][Z|+HH:MM|-HH:MM] (no zone: UTC); real calendar
 * values only. */
bool api_iso_datetime_valid(const char *s, bool *date_only);
/* The same, giving the instant as milliseconds since the epoch (a date alone: its midnight UTC). */
bool api_iso_datetime_parse(const char *s, bool *date_only, long long *epoch_ms);

/* A decoded query string. Names and values point into buf. */
struct query_params {
    size_t n;
    const char *name[API_MAX_QUERY_PARAMS];
    const char *value[API_MAX_QUERY_PARAMS];
    char buf[2048];
};
/* 0 ok; -1 malformed (bad %-escape, a name or value that is not UTF-8, too long, too many
 * params). */
int api_query_parse(const char *qs, struct query_params *q);

/* Conditional GET: an entity tag of a body, and whether an If-None-Match header names it. */
#define API_ETAG_SIZE 28
void api_etag_of(const char *body, size_t len, char out[API_ETAG_SIZE]);
bool api_etag_matches(const char *if_none_match, const char *etag);

/* GET /records' opaque cursor: the last pfaId of a page, base64url without padding.
 * api_cursor_encode writes it into out (cap bytes); false when it does not fit.
 * api_cursor_decode gives the pfaId back into out (cap bytes): false when cursor is not one
 * (not base64url, empty, not UTF-8, holds a NUL, does not fit). */
#define API_CURSOR_MAX 1100
bool api_cursor_encode(const char *pfa_id, char *out, size_t cap);
bool api_cursor_decode(const char *cursor, char *out, size_t cap);

/* Idempotency-Key: 1 to 255 visible ASCII characters. */
bool api_idempotency_key_valid(const char *key);
/* What a kept answer is matched on: the request's method, path and body (sha256, hex);
 * false when OpenSSL failed. */
#define API_REQUEST_HASH_SIZE 65
bool api_request_hash(const char *method, const char *path, const char *body, size_t len,
                      char out[API_REQUEST_HASH_SIZE]);

/* Declarative checks for query parameters and JSON bodies; failures append
 * {"field","message"} objects to details. */
enum api_field_type {
    AF_UUID,        /* string uuid */
    AF_STRING,      /* non-empty string up to max chars */
    AF_INT,         /* integer in [min, max] */
    AF_ENUM,        /* string in enums */
    AF_DATETIME,    /* api_iso_datetime_valid (query only) */
    AF_OBJECT,      /* JSON object (body only) */
    AF_UUID_ARRAY   /* non-empty array of uuid strings (body only) */
};

struct api_field {
    const char *name;
    enum api_field_type type;
    bool required;
    long min, max;
    const char *const *enums;   /* NULL-terminated, AF_ENUM */
};

/* Query: unknown or repeated names, missing required ones and bad values are details.
 * Returns the number of details added. */
int api_check_query(const struct query_params *q, const struct api_field *fields, size_t n,
                    json_t *details);
const char *api_query_get(const struct query_params *q, const char *name);

/* Body object: unknown keys, missing required keys (null counts as missing), wrong types and
 * values out of range are details; null for an optional key is a wrong type, except for an
 * AF_OBJECT, where it means absent. Returns the number of details added. */
int api_check_body(const json_t *body, const struct api_field *fields, size_t n,
                   json_t *details);

void api_detail_add(json_t *details, const char *field, const char *message);

#endif
