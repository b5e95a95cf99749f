#ifndef PEMS_HTTP_H
#define PEMS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <fcgiapp.h>
#include <jansson.h>

/* One FastCGI request: the CGI parameters the API uses and the response writer. */

#define HTTP_MAX_PATH 1024
#define HTTP_MAX_ROUTE_PARAMS 4
/* a route parameter, decoded: a pfaId is up to 200 characters of UTF-8 */
#define HTTP_MAX_PARAM_VALUE 801

enum http_body_state { BODY_NONE, BODY_OK, BODY_TOO_LARGE, BODY_ERROR };

struct http_request {
    FCGX_Request *fcgx;
    const char *method;
    const char *query;          /* never NULL */
    const char *content_type;   /* may be NULL */
    const char *authorization;  /* may be NULL */
    const char *if_none_match;  /* may be NULL */
    const char *remote_addr;    /* the client's address as nginx saw it; may be NULL */
    const char *idempotency_key;   /* the Idempotency-Key header as sent (maybe ""); NULL: none */
    char path[HTTP_MAX_PATH];   /* without query string */
    /* the path as the client wrote it (percent-encoded, from REQUEST_URI), so a parameter
     * may hold an encoded '/'; "" when nginx did not pass it */
    char raw_path[HTTP_MAX_PATH];

    enum http_body_state body_state;
    char *body;                 /* NUL-terminated, malloc'd */
    size_t body_len;

    size_t nparams;             /* route :params */
    const char *param_name[HTTP_MAX_ROUTE_PARAMS];
    char param_value[HTTP_MAX_ROUTE_PARAMS][HTTP_MAX_PARAM_VALUE];

    char user_id[37];           /* the token's sub once authenticated */
    int status;                 /* status sent, 0 before the response */
    unsigned perm;              /* the route's permission (PERM_*, src/api/auth.h) */
    bool perm_checked;          /* the caller was found to have it; a success needs this */
    bool body_read;             /* http_read_body ran: a re-run handler gets the same body */
    bool retry_allowed;         /* the dispatcher runs the handler again on a transient failure */
    bool retry;                 /* the handler failed transiently and sent nothing */
    bool verbose_errors;        /* PEMS_ENV=development */

    /* capture: the response is kept here instead of being sent, until http_send_captured
     * (an Idempotency-Key request's answer is sent once its transaction has committed) */
    bool capture;
    struct {
        int status;
        const char *content_type;   /* static */
        char *extra_headers;
        char *body;
        size_t len;
    } captured;
};

/* Reads the CGI parameters of fcgx into req (no body yet). */
void http_request_init(struct http_request *req, FCGX_Request *fcgx, bool verbose_errors);
/* Reads the body (CONTENT_LENGTH, at most max bytes); sets body_state. */
void http_read_body(struct http_request *req, size_t max);
void http_request_clear(struct http_request *req);

const char *http_param(const struct http_request *req, const char *name);

/* The most details an error answer lists; the message says how many more failed. */
#define HTTP_DETAILS_MAX 100

/* Responses: JSON with Content-Type application/json; charset=utf-8, Cache-Control no-store. */
void http_send_raw(struct http_request *req, int status, const char *content_type,
                   const char *extra_headers, const char *body, size_t len);
void http_send_json_text(struct http_request *req, int status, const char *json);
/* A 200 JSON body a client may poll for: sent with its ETag and Cache-Control private,
 * no-cache; 304 without the body when If-None-Match names that tag. */
void http_send_json_etag(struct http_request *req, const char *json, size_t len);
/* 304 with that tag (the caller found it in If-None-Match). */
void http_send_not_modified(struct http_request *req, const char *etag);
/* Sends what capture kept, with extra_headers added (may be NULL); clears capture. */
void http_send_captured(struct http_request *req, const char *extra_headers);
/* Forgets what capture kept (req->status back to 0) so another answer can be sent. */
void http_drop_captured(struct http_request *req);
/* The same with the body's entity tag already known: api_etag_of of exactly these bytes,
 * kept with a cached page, or a tag made from what the body is rendered from (so a poll can
 * be answered without rendering it). */
void http_send_json_tagged(struct http_request *req, const char *json, size_t len,
                           const char *etag);
/* steals body */
void http_send_json(struct http_request *req, int status, json_t *body);
/* steals details (may be NULL = []) */
void http_send_error(struct http_request *req, int status, const char *code,
                     const char *message, json_t *details);
void http_send_method_not_allowed(struct http_request *req, const char *allow);

#endif
