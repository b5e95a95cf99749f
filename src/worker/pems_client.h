#ifndef PEMS_PEMS_CLIENT_H
#define PEMS_PEMS_CLIENT_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <jansson.h>

#include "pems_server.h"

/* PEMS's wire protocol (its routes: tests/pems-sim/README.md) over libcurl. Rate limiting is
 * the caller's job. */

enum pems_outcome {
    PEMS_OK,            /* 2xx */
    PEMS_CONFLICT,      /* 409: body carries the current {pfaId, version, data} */
    PEMS_PERMANENT,     /* 400, 401, 404 (and other 4xx) */
    PEMS_RATE_LIMITED,  /* 429: retry_after_s says how long to pause */
    PEMS_RETRYABLE      /* 5xx, timeouts, refused connections */
};

struct pems_response {
    enum pems_outcome outcome;
    long http_status;     /* 0 for a transport error */
    json_t *body;         /* parsed JSON body or NULL */
    long retry_after_s;   /* -1 when absent */
    char error[256];      /* short human text for last_error */
};
void pems_response_clear(struct pems_response *resp);

/* Parses an HTTP answer (status, Retry-After value or NULL, body bytes) into out: pure, no
 * libcurl, so it can be tested and fuzzed alone. now is the clock Retry-After's HTTP-date
 * form is read against. */
void pems_response_parse(long status, const char *retry_after, const char *body, size_t len,
                         time_t now, struct pems_response *out);

struct pems_client;

/* Copies what it needs from srv. Idle curl handles are kept for reuse, so a connection
 * stays open between requests (keep-alive) whether they are performed here or on a multi. */
struct pems_client *pems_client_new(const struct pems_server *srv);
void pems_client_free(struct pems_client *pc);

/* One request, made but not performed: the caller adds pems_request_easy(rq) to its curl
 * multi handle and, once that transfer is done, calls pems_request_finish with its result.
 * NULL when out of memory. The client must outlive its requests. */
struct pems_request;
struct pems_request *pems_request_update(struct pems_client *pc, const char *pfa_id,
                                         int64_t version, const json_t *changes,
                                         const char *idempotency_key);
struct pems_request *pems_request_delete(struct pems_client *pc, const char *pfa_id,
                                         int64_t version, const char *idempotency_key);
struct pems_request *pems_request_get(struct pems_client *pc, const char *pfa_id);
/* updated_since and cursor may be NULL; limit 1..500 */
struct pems_request *pems_request_pull(struct pems_client *pc, const char *updated_since,
                                       const char *cursor, int limit);
struct pems_request *pems_request_health(struct pems_client *pc);
CURL *pems_request_easy(struct pems_request *rq);
/* The transfer ended with cc: out gets the outcome (always initialised). */
void pems_request_finish(struct pems_request *rq, CURLcode cc, struct pems_response *out);
/* Frees the request and gives its curl handle back to the client (remove it from the multi
 * first). */
void pems_request_free(struct pems_request *rq);

/* The same, performed at once (curl_easy_perform). Each returns 0 when a response (of any
 * outcome) was obtained and -1 only on local failure (out of memory); out is always
 * initialised. */
int pems_client_update(struct pems_client *pc, const char *pfa_id, int64_t version,
                       const json_t *changes, const char *idempotency_key,
                       struct pems_response *out);
int pems_client_delete(struct pems_client *pc, const char *pfa_id, int64_t version,
                       const char *idempotency_key, struct pems_response *out);
int pems_client_get(struct pems_client *pc, const char *pfa_id, struct pems_response *out);
int pems_client_pull(struct pems_client *pc, const char *updated_since, const char *cursor,
                     int limit, struct pems_response *out);
int pems_client_health(struct pems_client *pc, struct pems_response *out);

/* "ok", "conflict", "permanent", "rate_limited", "retryable" (for logs and JSON). */
const char *pems_outcome_name(enum pems_outcome outcome);
/* New TCP connections the client has opened so far (1 while keep-alive holds). */
long pems_client_connects(const struct pems_client *pc);

#endif
