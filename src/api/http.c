#include "http.h"
#include "api_params.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Status";
    }
}

static const char *param_or(FCGX_Request *f, const char *name)
{
    const char *v = FCGX_GetParam(name, f->envp);
    return v && *v ? v : NULL;
}

void http_request_init(struct http_request *req, FCGX_Request *fcgx, bool verbose_errors)
{
    memset(req, 0, sizeof *req);
    req->fcgx = fcgx;
    req->verbose_errors = verbose_errors;
    req->method = param_or(fcgx, "REQUEST_METHOD");
    if (!req->method)
        req->method = "GET";
    const char *q = param_or(fcgx, "QUERY_STRING");
    req->query = q ? q : "";
    req->content_type = param_or(fcgx, "CONTENT_TYPE");
    req->authorization = param_or(fcgx, "HTTP_AUTHORIZATION");
    req->if_none_match = param_or(fcgx, "HTTP_IF_NONE_MATCH");
    req->remote_addr = param_or(fcgx, "REMOTE_ADDR");
    /* present but empty is a key too (an invalid one) */
    req->idempotency_key = FCGX_GetParam("HTTP_IDEMPOTENCY_KEY", fcgx->envp);

    /* nginx: DOCUMENT_URI is the normalized path; REQUEST_URI the raw one with the query */
    const char *p = param_or(fcgx, "DOCUMENT_URI");
    if (!p)
        p = param_or(fcgx, "SCRIPT_NAME");
    if (!p)
        p = param_or(fcgx, "REQUEST_URI");
    if (!p)
        p = "/";
    size_t n = strcspn(p, "?");
    if (n >= sizeof req->path)
        n = sizeof req->path - 1;
    memcpy(req->path, p, n);
    req->path[n] = '\0';
    const char *raw = param_or(fcgx, "REQUEST_URI");
    if (raw) {
        size_t rn = strcspn(raw, "?");
        if (rn < sizeof req->raw_path) {
            memcpy(req->raw_path, raw, rn);
            req->raw_path[rn] = '\0';
        }
    }
    if (!q) {
        const char *ru = param_or(fcgx, "REQUEST_URI");
        const char *qm = ru ? strchr(ru, '?') : NULL;
        if (qm)
            req->query = qm + 1;
    }
}

void http_read_body(struct http_request *req, size_t max)
{
    if (req->body_read)
        return;
    req->body_read = true;
    const char *cl = FCGX_GetParam("CONTENT_LENGTH", req->fcgx->envp);
    long len = -1;
    if (cl && *cl) {
        if (!util_parse_long(cl, 0, 1L << 40, &len)) {
            req->body_state = BODY_ERROR;
            return;
        }
        if ((size_t)len > max) {
            req->body_state = BODY_TOO_LARGE;
            return;
        }
    }
    size_t cap = len >= 0 ? (size_t)len : 4096;
    char *buf = malloc(cap + 1);
    if (!buf) {
        req->body_state = BODY_ERROR;
        return;
    }
    size_t got = 0;
    for (;;) {
        if (len >= 0 && got >= (size_t)len)
            break;
        if (got == cap) {
            if (cap > max) {
                free(buf);
                req->body_state = BODY_TOO_LARGE;
                return;
            }
            size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
            char *nb = realloc(buf, ncap + 1);
            if (!nb) {
                free(buf);
                req->body_state = BODY_ERROR;
                return;
            }
            buf = nb;
            cap = ncap;
        }
        int r = FCGX_GetStr(buf + got, (int)(cap - got), req->fcgx->in);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    if (got > max) {
        free(buf);
        req->body_state = BODY_TOO_LARGE;
        return;
    }
    buf[got] = '\0';
    req->body = buf;
    req->body_len = got;
    req->body_state = got ? BODY_OK : BODY_NONE;
}

void http_request_clear(struct http_request *req)
{
    http_drop_captured(req);
    free(req->body);
    req->body = NULL;
    req->body_len = 0;
}

const char *http_param(const struct http_request *req, const char *name)
{
    size_t n = strlen(name);
    /* param_name points into the route pattern: the name runs to the next '/' */
    for (size_t i = 0; i < req->nparams; i++)
        if (req->param_name[i] && strncmp(req->param_name[i], name, n) == 0 &&
            (req->param_name[i][n] == '/' || req->param_name[i][n] == '\0'))
            return req->param_value[i];
    return NULL;
}

static void send_response(struct http_request *req, int status, const char *content_type,
                          const char *cache_control, const char *extra_headers,
                          const char *body, size_t len)
{
    if (req->status)
        return;
    if (status < 300 && req->perm && !req->perm_checked) {
        /* a handler that forgot its route's permission answers nothing but this */
        static const char refused[] = "{\"error\":{\"code\":\"internal_error\",\"message\":"
                                      "\"Internal server error\",\"details\":[]}}";
        log_error("permission_unchecked", "path=%s status=%d", req->path, status);
        status = 500;
        content_type = "application/json; charset=utf-8";
        extra_headers = NULL;
        body = refused;
        len = sizeof refused - 1;
    }
    req->status = status;
    if (req->capture) {
        req->captured.status = status;
        req->captured.content_type = content_type;
        req->captured.extra_headers = strdup(extra_headers ? extra_headers : "");
        req->captured.body = malloc(len + 1);
        if (req->captured.body) {
            memcpy(req->captured.body, body, len);
            req->captured.body[len] = '\0';
        }
        req->captured.len = len;
        if (!req->captured.extra_headers || !req->captured.body) {
            log_error("out_of_memory", "path=%s what=captured_response", req->path);
            http_drop_captured(req);
            req->capture = false;
            http_send_json_text(req, 500, "{\"error\":{\"code\":\"internal_error\","
                                          "\"message\":\"Internal server error\",\"details\":[]}}");
        }
        return;
    }
    /* libfcgi's own printf lacks %zu: format the header block here */
    char head[512];
    int n = snprintf(head, sizeof head,
                     "Status: %d %s\r\nContent-Type: %s\r\nCache-Control: %s\r\n"
                     "Content-Length: %zu\r\n%s\r\n",
                     status, reason(status), content_type, cache_control, len,
                     extra_headers ? extra_headers : "");
    if (n < 0 || (size_t)n >= sizeof head)
        return;
    FCGX_PutStr(head, n, req->fcgx->out);
    if (len && strcmp(req->method, "HEAD") != 0)
        FCGX_PutStr(body, (int)len, req->fcgx->out);
}

void http_send_raw(struct http_request *req, int status, const char *content_type,
                   const char *extra_headers, const char *body, size_t len)
{
    send_response(req, status, content_type, "no-store", extra_headers, body, len);
}

void http_send_json_etag(struct http_request *req, const char *json, size_t len)
{
    if (req->status)
        return;
    char etag[API_ETAG_SIZE];
    api_etag_of(json, len, etag);
    http_send_json_tagged(req, json, len, etag);
}

void http_send_json_tagged(struct http_request *req, const char *json, size_t len,
                           const char *etag)
{
    if (req->status)
        return;
    char head[256];
    if (api_etag_matches(req->if_none_match, etag) && (!req->perm || req->perm_checked)) {
        req->status = 304;
        int n = snprintf(head, sizeof head,
                         "Status: 304 Not Modified\r\nETag: %s\r\n"
                         "Cache-Control: private, no-cache\r\n\r\n", etag);
        if (n > 0 && (size_t)n < sizeof head)
            FCGX_PutStr(head, n, req->fcgx->out);
        return;
    }
    snprintf(head, sizeof head, "ETag: %s\r\n", etag);
    send_response(req, 200, "application/json; charset=utf-8", "private, no-cache", head, json,
                  len);
}

void http_send_not_modified(struct http_request *req, const char *etag)
{
    if (req->status)
        return;
    char head[256];
    req->status = 304;
    int n = snprintf(head, sizeof head,
                     "Status: 304 Not Modified\r\nETag: %s\r\n"
                     "Cache-Control: private, no-cache\r\n\r\n", etag);
    if (n > 0 && (size_t)n < sizeof head)
        FCGX_PutStr(head, n, req->fcgx->out);
}

void http_send_captured(struct http_request *req, const char *extra_headers)
{
    if (!req->capture)
        return;
    req->capture = false;
    if (!req->captured.body) {
        req->status = 0;
        return;
    }
    char *headers = NULL;
    if (extra_headers && asprintf(&headers, "%s%s", req->captured.extra_headers,
                                  extra_headers) < 0)
        headers = NULL;
    req->status = 0;
    send_response(req, req->captured.status, req->captured.content_type, "no-store",
                  headers ? headers : req->captured.extra_headers, req->captured.body,
                  req->captured.len);
    free(headers);
    http_drop_captured(req);
}

void http_drop_captured(struct http_request *req)
{
    free(req->captured.extra_headers);
    free(req->captured.body);
    memset(&req->captured, 0, sizeof req->captured);
    if (req->capture)
        req->status = 0;
}

void http_send_json_text(struct http_request *req, int status, const char *json)
{
    http_send_raw(req, status, "application/json; charset=utf-8", NULL, json, strlen(json));
}

void http_send_json(struct http_request *req, int status, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text) {
        http_send_json_text(req, 500,
                            "{\"error\":{\"code\":\"internal_error\",\"message\":"
                            "\"Internal server error\",\"details\":[]}}");
        return;
    }
    http_send_json_text(req, status, text);
    free(text);
}

/* The error envelope (src/api/openapi.yaml, Error): at most HTTP_DETAILS_MAX details, the
 * message saying how many more failed, so a body with 80,000 unknown keys gets a short answer. */
static json_t *error_body(const char *code, const char *message, json_t *details)
{
    size_t n = json_array_size(details);
    char more[512];
    if (n > HTTP_DETAILS_MAX) {
        snprintf(more, sizeof more, "%s (%zu more failed, not listed)", message,
                 n - HTTP_DETAILS_MAX);
        message = more;
        while (json_array_size(details) > HTTP_DETAILS_MAX)
            json_array_remove(details, json_array_size(details) - 1);
    }
    return json_pack("{s:{s:s, s:s, s:o}}", "error", "code", code, "message", message,
                     "details", details ? details : json_array());
}

void http_send_error(struct http_request *req, int status, const char *code,
                     const char *message, json_t *details)
{
    http_send_json(req, status, error_body(code, message, details));
}

void http_send_method_not_allowed(struct http_request *req, const char *allow)
{
    char hdr[128];
    snprintf(hdr, sizeof hdr, "Allow: %s\r\n", allow);
    json_t *body = error_body("method_not_allowed", "This method is not allowed on this path",
                              NULL);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text)
        return;
    http_send_raw(req, 405, "application/json; charset=utf-8", hdr, text, strlen(text));
    free(text);
}
