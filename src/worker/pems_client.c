#include "build_config.h"
#include "pems_client.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "backoff.h"
#include "pems_record.h"
#include "text.h"

#define DEFAULT_TIMEOUT_MS 30000L
#define MAX_BODY (8u * 1024 * 1024)

#define IDLE_MAX 1

struct pems_client {
    char *base;                 /* without trailing slashes */
    char *auth_header;          /* "Authorization: Basic ..." or "x-api-key: ..." */
    long timeout_ms;
    long connects;              /* new connections opened so far */
    CURL *idle[IDLE_MAX];       /* handles between requests: each keeps its connections */
    int nidle;
};

struct pems_request {
    struct pems_client *pc;
    CURL *curl;
    struct curl_slist *hdrs;
    char *url;
    char *body;                 /* PUT body, NULL for GET/DELETE */
    char errbuf[CURL_ERROR_SIZE];
    char *buf;
    size_t len, cap;
    bool too_large;
    char retry_after[128];
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;

static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

void pems_response_clear(struct pems_response *resp)
{
    if (!resp)
        return;
    json_decref(resp->body);
    resp->body = NULL;
}

static void response_init(struct pems_response *out)
{
    memset(out, 0, sizeof(*out));
    out->outcome = PEMS_RETRYABLE;
    out->retry_after_s = -1;
}

static int oom(struct pems_response *out)
{
    response_init(out);
    snprintf(out->error, sizeof(out->error), "out of memory");
    return -1;
}

static char *b64_encode(const unsigned char *in, size_t n)
{
    static const char tbl[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned int v = (unsigned int)in[i] << 16;
        if (i + 1 < n)
            v |= (unsigned int)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = tbl[(v >> 18) & 63];
        out[o++] = tbl[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? tbl[v & 63] : '=';
    }
    out[o] = '\0';
    return out;
}

static char *make_auth_header(const struct pems_server *srv)
{
    const char *secret = srv->secret ? srv->secret : "";
    char *h = NULL;
    if (srv->auth == PEMS_AUTH_API_KEY) {
        if (asprintf(&h, "x-api-key: %s", secret) < 0)
            return NULL;
        return h;
    }
    const char *user = srv->username ? srv->username : "";
    char *plain = NULL;
    int n = asprintf(&plain, "%s:%s", user, secret);
    if (n < 0)
        return NULL;
    char *enc = b64_encode((const unsigned char *)plain, (size_t)n);
    memset(plain, 0, (size_t)n);
    free(plain);
    if (enc && asprintf(&h, "Authorization: Basic %s", enc) < 0)
        h = NULL;
    free(enc);
    return h;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
    struct pems_request *pc = userp;
    size_t n = size * nmemb;
    if (pc->len + n > MAX_BODY) {
        pc->too_large = true;
        return 0;   /* aborts the transfer */
    }
    if (pc->len + n + 1 > pc->cap) {
        size_t cap = pc->cap ? pc->cap : 4096;
        while (cap < pc->len + n + 1)
            cap *= 2;
        char *b = realloc(pc->buf, cap);
        if (!b)
            return 0;
        pc->buf = b;
        pc->cap = cap;
    }
    memcpy(pc->buf + pc->len, data, n);
    pc->len += n;
    pc->buf[pc->len] = '\0';
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userp)
{
    struct pems_request *pc = userp;
    size_t n = size * nmemb;
    if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        pc->retry_after[0] = '\0';   /* a new response (e.g. after 100 Continue) */
    } else if (n > 12 && strncasecmp(data, "Retry-After:", 12) == 0) {
        const char *v = data + 12;
        size_t len = n - 12;
        while (len > 0 && (*v == ' ' || *v == '\t')) {
            v++;
            len--;
        }
        while (len > 0 && (v[len - 1] == '\r' || v[len - 1] == '\n' || v[len - 1] == ' '))
            len--;
        if (len >= sizeof(pc->retry_after))
            len = sizeof(pc->retry_after) - 1;
        memcpy(pc->retry_after, v, len);
        pc->retry_after[len] = '\0';
    }
    return n;
}

struct pems_client *pems_client_new(const struct pems_server *srv)
{
    if (!srv || !srv->base_url)
        return NULL;
    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK)
        return NULL;
    struct pems_client *pc = calloc(1, sizeof(*pc));
    if (!pc)
        return NULL;
    size_t n = strlen(srv->base_url);
    while (n > 0 && srv->base_url[n - 1] == '/')
        n--;
    pc->base = strndup(srv->base_url, n);
    pc->auth_header = make_auth_header(srv);
    pc->timeout_ms = srv->timeout_ms > 0 ? srv->timeout_ms : DEFAULT_TIMEOUT_MS;
    if (!pc->base || !pc->auth_header) {
        pems_client_free(pc);
        return NULL;
    }
    return pc;
}

void pems_client_free(struct pems_client *pc)
{
    if (!pc)
        return;
    for (int i = 0; i < pc->nidle; i++)
        curl_easy_cleanup(pc->idle[i]);
    if (pc->auth_header) {
        memset(pc->auth_header, 0, strlen(pc->auth_header));
        free(pc->auth_header);
    }
    free(pc->base);
    free(pc);
}

const char *pems_outcome_name(enum pems_outcome outcome)
{
    switch (outcome) {
    case PEMS_OK: return "ok";
    case PEMS_CONFLICT: return "conflict";
    case PEMS_PERMANENT: return "permanent";
    case PEMS_RATE_LIMITED: return "rate_limited";
    case PEMS_RETRYABLE: return "retryable";
    }
    return "unknown";
}

long pems_client_connects(const struct pems_client *pc)
{
    return pc ? pc->connects : 0;
}

/* Short human text from an error body: {"error": "..."}, {"error": {"message": ...}},
 * {"message": ...}, or the start of a non-JSON body. Any bytes PEMS sends come out valid
 * UTF-8, cut at a character boundary (text_utf8_clip), on one line. */
static void describe(char *dst, size_t n, long status, const json_t *body, const char *raw,
                     size_t rawlen)
{
    const char *msg = NULL;
    size_t msglen = 0;
    const json_t *err = json_object_get(body, "error");
    const json_t *m = json_is_string(err) ? err
                    : json_is_string(json_object_get(err, "message")) ? json_object_get(err, "message")
                    : json_object_get(body, "message");
    if (json_is_string(m)) {
        msg = json_string_value(m);
        msglen = json_string_length(m);
    } else if (raw && rawlen > 0) {
        msg = raw;
        msglen = rawlen;
    }
    int k = snprintf(dst, n, msg ? "PEMS %ld: " : "PEMS %ld", status);
    if (msg && k > 0 && (size_t)k < n)
        text_utf8_clip(msg, msglen, dst + k, n - (size_t)k);
    /* keep it one line for logs */
    for (char *p = dst; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
}

void pems_response_parse(long status, const char *retry_after, const char *body, size_t len,
                         time_t now, struct pems_response *out)
{
    out->http_status = status;
    if (retry_after && *retry_after)
        out->retry_after_s = retry_after_parse(retry_after, now);
    if (len > 0 && body)
        out->body = pems_json_loadb(body, len);
    if (status >= 200 && status < 300) {
        if (len == 0) {
            /* a 204, or a write acknowledged without a body: applied all the same */
            out->outcome = PEMS_OK;
        } else if (!json_is_object(out->body)) {
            json_decref(out->body);
            out->body = NULL;
            out->outcome = PEMS_RETRYABLE;
            snprintf(out->error, sizeof(out->error),
                     "PEMS %ld: response body is not a JSON object", status);
        } else {
            out->outcome = PEMS_OK;
        }
        return;
    }
    describe(out->error, sizeof(out->error), status, out->body, body, len);
    if (status == 409)
        out->outcome = PEMS_CONFLICT;
    else if (status == 429)
        out->outcome = PEMS_RATE_LIMITED;
    else if (status >= 500 || status == 408)
        out->outcome = PEMS_RETRYABLE;
    else
        out->outcome = PEMS_PERMANENT;   /* 4xx, and redirects we do not follow */
}

enum method { M_GET, M_PUT, M_DELETE };

static CURL *client_handle(struct pems_client *pc)
{
    if (pc->nidle > 0)
        return pc->idle[--pc->nidle];
    return curl_easy_init();
}

void pems_request_free(struct pems_request *rq)
{
    if (!rq)
        return;
    struct pems_client *pc = rq->pc;
    if (rq->curl) {
        /* keeps its connections, loses its options and the pointers into rq */
        curl_easy_reset(rq->curl);
        if (pc->nidle < IDLE_MAX)
            pc->idle[pc->nidle++] = rq->curl;
        else
            curl_easy_cleanup(rq->curl);
    }
    curl_slist_free_all(rq->hdrs);
    free(rq->url);
    free(rq->body);
    free(rq->buf);
    free(rq);
}

/* Takes url and body (malloc'd) whatever happens. */
static struct pems_request *request_new(struct pems_client *pc, enum method m, char *url,
                                        char *body, const char *idempotency_key)
{
    struct pems_request *rq = calloc(1, sizeof(*rq));
    if (!rq || !url) {
        free(rq);
        free(url);
        free(body);
        return NULL;
    }
    rq->pc = pc;
    rq->url = url;
    rq->body = body;
    rq->curl = client_handle(pc);
    if (!rq->curl) {
        pems_request_free(rq);
        return NULL;
    }
    struct curl_slist *tmp;
#define ADD(h)                                       \
    do {                                             \
        if (!(tmp = curl_slist_append(rq->hdrs, h))) \
            goto fail;                               \
        rq->hdrs = tmp;                              \
    } while (0)
    ADD(pc->auth_header);
    ADD("Content-Type: application/json");
    ADD("Accept: application/json");
    ADD("Expect:");
    if (idempotency_key && *idempotency_key) {
        char idem[300];
        snprintf(idem, sizeof idem, "Idempotency-Key: %.250s", idempotency_key);
        ADD(idem);
    }
#undef ADD
    CURL *c = rq->curl;
    curl_easy_setopt(c, CURLOPT_PRIVATE, rq);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, pc->timeout_ms);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
    /* no CURLOPT_PIPEWAIT: a transfer waiting for a connection to say whether it multiplexes
     * is sent later than the rate window counted it; an HTTP/2 connection, once open, carries
     * the next requests all the same (CURLPIPE_MULTIPLEX on the worker's multi handle) */
    /* small buffers: hundreds of handles and connections may be open at once, and PEMS's
     * answers are small JSON (a pull page arrives in more pieces, no slower) */
    curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 8192L);
    curl_easy_setopt(c, CURLOPT_UPLOAD_BUFFERSIZE, 16384L);
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(c, CURLOPT_USERAGENT, "pems-sync/" PACKAGE_VERSION);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, rq->errbuf);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, rq);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, rq);
    curl_easy_setopt(c, CURLOPT_URL, rq->url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, rq->hdrs);
    if (m == M_PUT) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, rq->body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(rq->body));
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PUT");
    } else {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
        if (m == M_DELETE)
            curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "DELETE");
    }
    return rq;
fail:
    pems_request_free(rq);
    return NULL;
}

CURL *pems_request_easy(struct pems_request *rq)
{
    return rq->curl;
}

void pems_request_finish(struct pems_request *rq, CURLcode cc, struct pems_response *out)
{
    response_init(out);
    long connects = 0;
    if (curl_easy_getinfo(rq->curl, CURLINFO_NUM_CONNECTS, &connects) == CURLE_OK)
        rq->pc->connects += connects;
    if (cc != CURLE_OK) {
        out->outcome = PEMS_RETRYABLE;
        out->http_status = 0;
        if (rq->too_large)
            snprintf(out->error, sizeof(out->error),
                     "PEMS response larger than %u bytes", MAX_BODY);
        else {
            char text[sizeof out->error + CURL_ERROR_SIZE];
            int k = snprintf(text, sizeof text, "PEMS transport error: %s%s%s",
                             curl_easy_strerror(cc), rq->errbuf[0] ? ": " : "", rq->errbuf);
            text_utf8_clip(text, k > 0 ? strnlen(text, sizeof text) : 0, out->error,
                           sizeof out->error);
        }
        return;
    }
    long status = 0;
    curl_easy_getinfo(rq->curl, CURLINFO_RESPONSE_CODE, &status);
    pems_response_parse(status, rq->retry_after, rq->buf, rq->len, time(NULL), out);
}

/* Performs rq at once and frees it. */
static int perform(struct pems_request *rq, struct pems_response *out)
{
    if (!rq)
        return oom(out);
    CURLcode cc = curl_easy_perform(rq->curl);
    pems_request_finish(rq, cc, out);
    pems_request_free(rq);
    return 0;
}

/* {base}/pfa/{escaped id}[suffix] */
static char *record_url(struct pems_client *pc, const char *pfa_id, const char *suffix)
{
    /* "." and ".." stay unescaped by curl_easy_escape and would be dot segments of the path */
    bool dots = strcmp(pfa_id, ".") == 0 || strcmp(pfa_id, "..") == 0;
    char *esc = dots ? NULL : curl_easy_escape(NULL, pfa_id, 0);
    char *url = NULL;
    if (!dots && !esc)
        return NULL;
    if (asprintf(&url, "%s/pfa/%s%s", pc->base, dots ? (pfa_id[1] ? "%2E%2E" : "%2E") : esc,
                 suffix ? suffix : "") < 0)
        url = NULL;
    curl_free(esc);
    return url;
}

struct pems_request *pems_request_update(struct pems_client *pc, const char *pfa_id,
                                         int64_t version, const json_t *changes,
                                         const char *idempotency_key)
{
    json_t *body = json_pack("{s:I, s:O}", "version", (json_int_t)version, "changes", changes);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text)
        return NULL;
    return request_new(pc, M_PUT, record_url(pc, pfa_id, NULL), text, idempotency_key);
}

struct pems_request *pems_request_delete(struct pems_client *pc, const char *pfa_id,
                                         int64_t version, const char *idempotency_key)
{
    char suffix[32];
    snprintf(suffix, sizeof(suffix), "?version=%" PRId64, version);
    return request_new(pc, M_DELETE, record_url(pc, pfa_id, suffix), NULL, idempotency_key);
}

struct pems_request *pems_request_get(struct pems_client *pc, const char *pfa_id)
{
    return request_new(pc, M_GET, record_url(pc, pfa_id, NULL), NULL, NULL);
}

struct pems_request *pems_request_pull(struct pems_client *pc, const char *updated_since,
                                       const char *cursor, int limit)
{
    char *since = NULL, *cur = NULL, *url = NULL;
    if (updated_since && *updated_since && !(since = curl_easy_escape(NULL, updated_since, 0)))
        goto cleanup;
    if (cursor && *cursor && !(cur = curl_easy_escape(NULL, cursor, 0)))
        goto cleanup;
    size_t n = strlen(pc->base) + (since ? strlen(since) : 0) + (cur ? strlen(cur) : 0) + 64;
    if (!(url = malloc(n)))
        goto cleanup;
    int off = snprintf(url, n, "%s/pfa", pc->base);
    char sep = '?';
    if (since) {
        off += snprintf(url + off, n - (size_t)off, "%cupdatedSince=%s", sep, since);
        sep = '&';
    }
    if (cur) {
        off += snprintf(url + off, n - (size_t)off, "%ccursor=%s", sep, cur);
        sep = '&';
    }
    if (limit > 0)
        snprintf(url + off, n - (size_t)off, "%climit=%d", sep, limit);
cleanup:
    curl_free(since);
    curl_free(cur);
    return url ? request_new(pc, M_GET, url, NULL, NULL) : NULL;
}

struct pems_request *pems_request_health(struct pems_client *pc)
{
    char *url = NULL;
    if (asprintf(&url, "%s/health", pc->base) < 0)
        url = NULL;
    return request_new(pc, M_GET, url, NULL, NULL);
}

int pems_client_update(struct pems_client *pc, const char *pfa_id, int64_t version,
                       const json_t *changes, const char *idempotency_key,
                       struct pems_response *out)
{
    return perform(pems_request_update(pc, pfa_id, version, changes, idempotency_key), out);
}

int pems_client_delete(struct pems_client *pc, const char *pfa_id, int64_t version,
                       const char *idempotency_key, struct pems_response *out)
{
    return perform(pems_request_delete(pc, pfa_id, version, idempotency_key), out);
}

int pems_client_get(struct pems_client *pc, const char *pfa_id, struct pems_response *out)
{
    return perform(pems_request_get(pc, pfa_id), out);
}

int pems_client_pull(struct pems_client *pc, const char *updated_since, const char *cursor,
                     int limit, struct pems_response *out)
{
    return perform(pems_request_pull(pc, updated_since, cursor, limit), out);
}

int pems_client_health(struct pems_client *pc, struct pems_response *out)
{
    return perform(pems_request_health(pc), out);
}
