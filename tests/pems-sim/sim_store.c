#include "sim_store.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_TENANT_NAME 128
#define MAX_STATUS 600
#define PULL_DEFAULT_LIMIT 100
#define PULL_MAX_LIMIT 500
#define NS_PER_S 1000000000LL

/* ---- string-keyed hash map (chained, FNV-1a) ---- */

struct map_ent {
    char *key;
    void *val;
    struct map_ent *next;
};

struct map {
    struct map_ent **b;
    size_t nb, n;
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

static void *map_get(const struct map *m, const char *key)
{
    if (m->nb == 0)
        return NULL;
    for (struct map_ent *e = m->b[hash_str(key) % m->nb]; e; e = e->next)
        if (strcmp(e->key, key) == 0)
            return e->val;
    return NULL;
}

static void map_grow(struct map *m)
{
    size_t nb = m->nb ? m->nb * 2 : 64;
    struct map_ent **b = calloc(nb, sizeof(*b));
    if (!b)
        abort();
    for (size_t i = 0; i < m->nb; i++) {
        struct map_ent *e = m->b[i];
        while (e) {
            struct map_ent *next = e->next;
            size_t k = hash_str(e->key) % nb;
            e->next = b[k];
            b[k] = e;
            e = next;
        }
    }
    free(m->b);
    m->b = b;
    m->nb = nb;
}

/* The key is copied; the caller guarantees it is not present yet. */
static void map_put(struct map *m, const char *key, void *val)
{
    if (m->n + 1 > m->nb * 3 / 4)
        map_grow(m);
    struct map_ent *e = malloc(sizeof(*e));
    if (!e || !(e->key = strdup(key)))
        abort();
    e->val = val;
    size_t k = hash_str(key) % m->nb;
    e->next = m->b[k];
    m->b[k] = e;
    m->n++;
}

static void map_clear(struct map *m, void (*free_val)(void *))
{
    for (size_t i = 0; i < m->nb; i++) {
        struct map_ent *e = m->b[i];
        while (e) {
            struct map_ent *next = e->next;
            if (free_val)
                free_val(e->val);
            free(e->key);
            free(e);
            e = next;
        }
    }
    free(m->b);
    memset(m, 0, sizeof(*m));
}

/* ---- ring of monotonic timestamps for sliding one-second windows ---- */

struct ring {
    int64_t *v;
    size_t cap, head, len;
};

static void ring_push(struct ring *r, int64_t t)
{
    if (r->len == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 256;
        int64_t *v = malloc(cap * sizeof(*v));
        if (!v)
            abort();
        for (size_t i = 0; i < r->len; i++)
            v[i] = r->v[(r->head + i) % r->cap];
        free(r->v);
        r->v = v;
        r->cap = cap;
        r->head = 0;
    }
    r->v[(r->head + r->len) % r->cap] = t;
    r->len++;
}

/* Drops entries outside the window (now - 1 s, now]. */
static void ring_trim(struct ring *r, int64_t now)
{
    while (r->len > 0 && r->v[r->head] <= now - NS_PER_S) {
        r->head = (r->head + 1) % r->cap;
        r->len--;
    }
}

static int64_t *ring_at(struct ring *r, size_t i)
{
    return &r->v[(r->head + i) % r->cap];
}

/* Adds an arrival, in order (one stamped from the kernel's receive time may come after a later
 * one was counted), and returns the most arrivals any one-second window holds among those
 * that end at it or after it. */
static long ring_insert_count(struct ring *r, int64_t t)
{
    int64_t newest = r->len ? *ring_at(r, r->len - 1) : t;
    ring_trim(r, newest > t ? newest : t);
    if (newest - t >= NS_PER_S)
        return 0;   /* older than every window still counted */
    ring_push(r, t);
    size_t k = r->len - 1;
    for (; k > 0 && *ring_at(r, k - 1) > t; k--) {
        *ring_at(r, k) = *ring_at(r, k - 1);
        *ring_at(r, k - 1) = t;
    }
    /* the window ending at the newest holds every entry the trim kept */
    long best = (long)r->len;
    for (size_t j = k; j + 1 < r->len; j++) {
        int64_t end = *ring_at(r, j);
        long n = 0;
        for (size_t i = 0; i <= j; i++)
            n += *ring_at(r, i) > end - NS_PER_S;
        if (n > best)
            best = n;
    }
    return best;
}

static void ring_clear(struct ring *r)
{
    free(r->v);
    memset(r, 0, sizeof(*r));
}

/* ---- tenant state ---- */

enum route { R_PUT, R_DELETE, R_GET, R_PULL, R_HEALTH, R_OTHER, R_COUNT };
static const char *const route_names[R_COUNT] = {
    "PUT /pfa/{id}", "DELETE /pfa/{id}", "GET /pfa/{id}", "GET /pfa", "GET /health", "other"};

struct rec {
    char *pfa_id;
    long version;
    int64_t updated_ms;
    bool deleted;
    json_t *data;
};

/* Change log ordered by (ts, pfaId); an entry is stale once its record changed again. */
struct log_ent {
    int64_t ts;
    struct rec *r;
};

struct remembered {
    int status;
    char *body;
};

enum fault_match { FM_WRITES, FM_READS, FM_RECORD, FM_PULL, FM_HEALTH, FM_ANY };

struct fault {
    char *pfa_id;               /* NULL: any record */
    enum fault_match match;
    int status;                 /* -1: delay only */
    long count;                 /* -1: unlimited */
    char retry_after[64];
    int delay_ms;
    char *body;                 /* raw response body instead of the JSON error */
    size_t body_len;            /* its length (bodyHex and bodyBase64 may hold any bytes) */
    json_t *endless;            /* a pull page of one new record with this data, each time */
    long endless_n;             /* pages answered so far */
    struct fault *next;
};

struct tenant {
    char *name;
    pthread_mutex_t mu;
    struct map records;
    struct log_ent *log;
    size_t log_len, log_cap;
    int64_t clock_ms;
    struct map idem;
    struct fault *faults;
    int rate_rps;
    int latency_ms, jitter_ms;  /* added to every tenant request, +/- jitter uniformly */
    uint64_t rng;               /* xorshift state for the jitter */
    char *username, *password, *api_key;
    long counts[R_COUNT][MAX_STATUS];
    long total, writes_applied, duplicates, rate_limited, max_in_second;
    long in_flight, max_in_flight;  /* from arrival until the answer is queued */
    struct ring arrivals, accepted;
};

struct sim {
    pthread_rwlock_t lock;
    struct map tenants;
};

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The tenant's clock: wall time, but strictly increasing per tenant. */
static int64_t tenant_tick(struct tenant *t)
{
    int64_t now = wall_ms();
    t->clock_ms = now > t->clock_ms ? now : t->clock_ms + 1;
    return t->clock_ms;
}

static void iso_ms(int64_t ms, char out[96])
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    snprintf(out, 96, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++, (*p)++) {
        if (!isdigit((unsigned char)**p))
            return -1;
        v = v * 10 + (**p - '0');
    }
    *out = v;
    return 0;
}

static bool leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

/* ISO 8601 date or date-time (fraction optional, Z or ±HH:MM, none = UTC) to epoch ms,
 * rounding a sub-millisecond fraction up so an inclusive bound stays exact. */
static int parse_iso(const char *s, int64_t *out)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h = 0, mi = 0, sec = 0, off = 0;
    int64_t frac_ms = 0;
    const char *p = s;
    if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' ||
        digits(&p, 2, &d))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] + (mo == 2 && leap(y)))
        return -1;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi))
            return -1;
        if (*p == ':') {
            p++;
            if (digits(&p, 2, &sec))
                return -1;
            if (*p == '.' || *p == ',') {
                p++;
                if (!isdigit((unsigned char)*p))
                    return -1;
                int n = 0;
                bool rest = false;
                for (; isdigit((unsigned char)*p); p++, n++) {
                    if (n < 3)
                        frac_ms = frac_ms * 10 + (*p - '0');
                    else if (*p != '0')
                        rest = true;
                }
                for (; n < 3; n++)
                    frac_ms *= 10;
                if (rest)
                    frac_ms++;
            }
        }
        if (h > 23 || mi > 59 || sec > 60)
            return -1;
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p++ == '-' ? -1 : 1, oh, om;
            if (digits(&p, 2, &oh))
                return -1;
            if (*p == ':')
                p++;
            if (digits(&p, 2, &om) || oh > 23 || om > 59)
                return -1;
            off = sign * (oh * 60 + om);
        }
    }
    if (*p != '\0')
        return -1;
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
                    .tm_hour = h, .tm_min = mi, .tm_sec = sec};
    time_t t = timegm(&tm);
    *out = ((int64_t)t - (int64_t)off * 60) * 1000 + frac_ms;
    return 0;
}

static void rec_free(void *p)
{
    struct rec *r = p;
    json_decref(r->data);
    free(r->pfa_id);
    free(r);
}

static void remembered_free(void *p)
{
    struct remembered *m = p;
    free(m->body);
    free(m);
}

static void faults_free(struct fault *f)
{
    while (f) {
        struct fault *next = f->next;
        free(f->pfa_id);
        free(f->body);
        json_decref(f->endless);
        free(f);
        f = next;
    }
}

static void tenant_clear_stats(struct tenant *t)
{
    memset(t->counts, 0, sizeof(t->counts));
    t->total = t->writes_applied = t->duplicates = t->rate_limited = t->max_in_second = 0;
    t->max_in_flight = t->in_flight;  /* requests still running keep counting */
    ring_clear(&t->arrivals);
}

/* Back to a fresh tenant; the clock stays monotonic. */
static void tenant_reset(struct tenant *t)
{
    map_clear(&t->records, rec_free);
    free(t->log);
    t->log = NULL;
    t->log_len = t->log_cap = 0;
    map_clear(&t->idem, remembered_free);
    faults_free(t->faults);
    t->faults = NULL;
    t->rate_rps = 0;
    t->latency_ms = t->jitter_ms = 0;
    free(t->username);
    free(t->password);
    free(t->api_key);
    t->username = t->password = t->api_key = NULL;
    tenant_clear_stats(t);
    ring_clear(&t->accepted);
}

static void tenant_free(void *p)
{
    struct tenant *t = p;
    tenant_reset(t);
    pthread_mutex_destroy(&t->mu);
    free(t->name);
    free(t);
}

struct sim *sim_new(void)
{
    struct sim *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    pthread_rwlock_init(&s->lock, NULL);
    return s;
}

void sim_free(struct sim *s)
{
    if (!s)
        return;
    map_clear(&s->tenants, tenant_free);
    pthread_rwlock_destroy(&s->lock);
    free(s);
}

/* Tenants live until sim_free, so a pointer stays valid without the table lock. */
static struct tenant *tenant_get(struct sim *s, const char *name)
{
    pthread_rwlock_rdlock(&s->lock);
    struct tenant *t = map_get(&s->tenants, name);
    pthread_rwlock_unlock(&s->lock);
    if (t)
        return t;
    pthread_rwlock_wrlock(&s->lock);
    t = map_get(&s->tenants, name);
    if (!t) {
        t = calloc(1, sizeof(*t));
        if (!t || !(t->name = strdup(name)))
            abort();
        t->rng = 0x9E3779B97F4A7C15ULL ^ (uint64_t)mono_ns();
        pthread_mutex_init(&t->mu, NULL);
        map_put(&s->tenants, name, t);
    }
    pthread_rwlock_unlock(&s->lock);
    return t;
}

void sim_reply_clear(struct sim_reply *rep)
{
    free(rep->body);
    memset(rep, 0, sizeof(*rep));
}

static void reply_json(struct sim_reply *rep, int status, json_t *body)
{
    rep->status = status;
    free(rep->body);
    rep->body = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!rep->body)
        abort();
}

static void reply_error(struct sim_reply *rep, int status, const char *msg)
{
    reply_json(rep, status, json_pack("{s:s, s:i}", "error", msg, "status", status));
}

static json_t *rec_json(const struct rec *r, bool full)
{
    json_t *o = json_pack("{s:s, s:I}", "pfaId", r->pfa_id, "version", (json_int_t)r->version);
    if (full) {
        char iso[96];
        iso_ms(r->updated_ms, iso);
        json_object_set_new(o, "updatedAt", json_string(iso));
        json_object_set_new(o, "deleted", json_boolean(r->deleted));
    }
    json_object_set(o, "data", r->data);
    return o;
}

/* A pull entry: deleted records carry no data. */
static json_t *pull_json(const struct rec *r)
{
    char iso[96];
    iso_ms(r->updated_ms, iso);
    if (r->deleted)
        return json_pack("{s:s, s:I, s:s, s:b}", "pfaId", r->pfa_id, "version",
                         (json_int_t)r->version, "updatedAt", iso, "deleted", 1);
    return json_pack("{s:s, s:I, s:s, s:O}", "pfaId", r->pfa_id, "version",
                     (json_int_t)r->version, "updatedAt", iso, "data", r->data);
}

static int log_cmp(int64_t ts_a, const char *id_a, int64_t ts_b, const char *id_b)
{
    if (ts_a != ts_b)
        return ts_a < ts_b ? -1 : 1;
    return strcmp(id_a, id_b);
}

static void log_compact(struct tenant *t)
{
    size_t n = 0;
    for (size_t i = 0; i < t->log_len; i++)
        if (t->log[i].r->updated_ms == t->log[i].ts)
            t->log[n++] = t->log[i];
    t->log_len = n;
}

/* Appends a change; callers append in (ts, pfaId) order, which the tenant clock ensures. */
static void log_append(struct tenant *t, struct rec *r)
{
    if (t->log_len == t->log_cap) {
        if (t->log_len > 2 * t->records.n + 1024) {
            log_compact(t);
        }
        if (t->log_len == t->log_cap) {
            size_t cap = t->log_cap ? t->log_cap * 2 : 1024;
            struct log_ent *l = realloc(t->log, cap * sizeof(*l));
            if (!l)
                abort();
            t->log = l;
            t->log_cap = cap;
        }
    }
    t->log[t->log_len].ts = r->updated_ms;
    t->log[t->log_len].r = r;
    t->log_len++;
}

/* A record changed now (write, delete, upstream edit). */
static void rec_touch(struct tenant *t, struct rec *r)
{
    r->updated_ms = tenant_tick(t);
    log_append(t, r);
}

static bool basic_matches(const char *authz, const char *user, const char *pass);
static bool has_basic(const char *authz);

static bool auth_ok(const struct tenant *t, const struct sim_req *rq)
{
    bool basic = has_basic(rq->authorization);
    bool key = rq->api_key && *rq->api_key;
    if (!basic && !key)
        return false;
    if (!t->username && !t->api_key)
        return true;
    if (t->username && basic &&
        basic_matches(rq->authorization, t->username, t->password ? t->password : ""))
        return true;
    if (t->api_key && key && strcmp(rq->api_key, t->api_key) == 0)
        return true;
    return false;
}

static enum route classify(const struct sim_req *rq, const char **pfa_id)
{
    *pfa_id = NULL;
    const char *p = rq->path;
    if (strcmp(p, "/health") == 0)
        return strcmp(rq->method, "GET") == 0 ? R_HEALTH : R_OTHER;
    if (strcmp(p, "/pfa") == 0 || strcmp(p, "/pfa/") == 0)
        return strcmp(rq->method, "GET") == 0 ? R_PULL : R_OTHER;
    if (strncmp(p, "/pfa/", 5) == 0 && p[5] != '\0') {
        *pfa_id = p + 5;
        if (strcmp(rq->method, "PUT") == 0)
            return R_PUT;
        if (strcmp(rq->method, "DELETE") == 0)
            return R_DELETE;
        if (strcmp(rq->method, "GET") == 0)
            return R_GET;
    }
    return R_OTHER;
}

static bool fault_matches(const struct fault *f, enum route rt, const char *pfa_id)
{
    if (f->pfa_id && (!pfa_id || strcmp(f->pfa_id, pfa_id) != 0))
        return false;
    switch (f->match) {
    case FM_WRITES: return rt == R_PUT || rt == R_DELETE;
    case FM_READS: return rt == R_GET;
    case FM_RECORD: return rt == R_PUT || rt == R_DELETE || rt == R_GET;
    case FM_PULL: return rt == R_PULL;
    case FM_HEALTH: return rt == R_HEALTH;
    case FM_ANY: return rt != R_OTHER;
    }
    return false;
}

static void count_status(struct tenant *t, enum route rt, int status)
{
    if (status >= 0 && status < MAX_STATUS)
        t->counts[rt][status]++;
}

static json_t *parse_body(const char *body, size_t len)
{
    if (!body || len == 0)
        return NULL;
    return json_loadb(body, len, 0, NULL);
}

static int parse_long(const char *s, long *out)
{
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

static void apply_changes(json_t *data, json_t *changes)
{
    const char *k;
    json_t *v;
    json_object_foreach(changes, k, v) {
        if (json_is_null(v))
            json_object_del(data, k);
        else
            json_object_set(data, k, v);
    }
}

static void remember(struct tenant *t, const char *key, const struct sim_reply *rep)
{
    if (!key || !*key || map_get(&t->idem, key))
        return;
    struct remembered *m = malloc(sizeof(*m));
    if (!m || !(m->body = strdup(rep->body)))
        abort();
    m->status = rep->status;
    map_put(&t->idem, key, m);
}

static void do_put(struct tenant *t, const struct sim_req *rq, const char *pfa_id,
                   struct sim_reply *rep)
{
    if (rq->body_too_large) {
        reply_error(rep, 413, "body too large");
        return;
    }
    json_t *body = parse_body(rq->body, rq->body_len);
    json_t *version = json_object_get(body, "version");
    json_t *changes = json_object_get(body, "changes");
    if (!json_is_object(body)) {
        reply_error(rep, 400, "body must be a JSON object");
    } else if (!json_is_integer(version)) {
        reply_error(rep, 400, "version must be an integer");
    } else if (!json_is_object(changes)) {
        reply_error(rep, 400, "changes must be an object");
    } else {
        struct rec *r = map_get(&t->records, pfa_id);
        if (!r || r->deleted) {
            reply_error(rep, 404, "record not found");
        } else if (json_integer_value(version) != r->version) {
            reply_json(rep, 409, rec_json(r, false));
        } else {
            apply_changes(r->data, changes);
            r->version++;
            rec_touch(t, r);
            t->writes_applied++;
            reply_json(rep, 200, rec_json(r, false));
            remember(t, rq->idem_key, rep);
        }
    }
    json_decref(body);
}

static void do_delete(struct tenant *t, const struct sim_req *rq, const char *pfa_id,
                      struct sim_reply *rep)
{
    long version;
    if (parse_long(rq->q_version, &version) != 0) {
        reply_error(rep, 400, "version query parameter must be an integer");
        return;
    }
    struct rec *r = map_get(&t->records, pfa_id);
    if (!r || r->deleted) {
        reply_error(rep, 404, "record not found");
    } else if (version != r->version) {
        reply_json(rep, 409, rec_json(r, false));
    } else {
        r->deleted = true;
        r->version++;
        rec_touch(t, r);
        t->writes_applied++;
        reply_json(rep, 200, json_pack("{s:s, s:b, s:I}", "pfaId", r->pfa_id, "deleted", 1,
                                       "version", (json_int_t)r->version));
        remember(t, rq->idem_key, rep);
    }
}

/* Cursor: "<ts>-<hex pfaId>", the key of the last record of the previous page. */
static char *cursor_make(const struct rec *r)
{
    size_t n = strlen(r->pfa_id);
    char *c = malloc(32 + 2 * n);
    if (!c)
        abort();
    int off = snprintf(c, 32, "%" PRId64 "-", r->updated_ms);
    for (size_t i = 0; i < n; i++)
        snprintf(c + off + 2 * i, 3, "%02x", (unsigned char)r->pfa_id[i]);
    return c;
}

static int cursor_parse(const char *c, int64_t *ts, char **id)
{
    char *end;
    errno = 0;
    long long v = strtoll(c, &end, 10);
    if (errno || end == c || *end != '-')
        return -1;
    const char *h = end + 1;
    size_t n = strlen(h);
    if (n % 2)
        return -1;
    char *s = malloc(n / 2 + 1);
    if (!s)
        abort();
    for (size_t i = 0; i < n / 2; i++) {
        unsigned int b;
        if (!isxdigit((unsigned char)h[2 * i]) || !isxdigit((unsigned char)h[2 * i + 1]) ||
            sscanf(h + 2 * i, "%2x", &b) != 1 || b == 0) {
            free(s);
            return -1;
        }
        s[i] = (char)b;
    }
    s[n / 2] = '\0';
    *ts = v;
    *id = s;
    return 0;
}

static void do_pull(struct tenant *t, const struct sim_req *rq, struct sim_reply *rep)
{
    long limit = PULL_DEFAULT_LIMIT;
    int64_t since = INT64_MIN, cur_ts = INT64_MIN;
    char *cur_id = NULL;
    if (rq->q_limit && (parse_long(rq->q_limit, &limit) != 0 || limit < 1 ||
                        limit > PULL_MAX_LIMIT)) {
        reply_error(rep, 400, "limit must be an integer from 1 to 500");
        return;
    }
    if (rq->q_updated_since && *rq->q_updated_since &&
        parse_iso(rq->q_updated_since, &since) != 0) {
        reply_error(rep, 400, "updatedSince must be an ISO-8601 timestamp");
        return;
    }
    if (rq->q_cursor && *rq->q_cursor && cursor_parse(rq->q_cursor, &cur_ts, &cur_id) != 0) {
        reply_error(rep, 400, "invalid cursor");
        return;
    }
    /* first entry past the cursor (or at updatedSince): binary search on the sorted log */
    size_t lo = 0, hi = t->log_len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct log_ent *e = &t->log[mid];
        bool before = e->ts < since ||
                      (cur_id && log_cmp(e->ts, e->r->pfa_id, cur_ts, cur_id) <= 0);
        if (before)
            lo = mid + 1;
        else
            hi = mid;
    }
    free(cur_id);
    json_t *records = json_array();
    const struct rec *last = NULL;
    bool more = false;
    for (size_t i = lo; i < t->log_len; i++) {
        const struct log_ent *e = &t->log[i];
        if (e->r->updated_ms != e->ts)
            continue;
        if ((long)json_array_size(records) == limit) {
            more = true;
            break;
        }
        json_array_append_new(records, pull_json(e->r));
        last = e->r;
    }
    json_t *out = json_pack("{s:o}", "records", records);
    if (more) {
        char *c = cursor_make(last);
        json_object_set_new(out, "nextCursor", json_string(c));
        free(c);
    } else {
        json_object_set_new(out, "nextCursor", json_null());
    }
    reply_json(rep, 200, out);
}

/* The operation itself, tenant locked; counts the final status. */
static void execute_locked(struct tenant *t, const struct sim_req *rq, enum route rt,
                           const char *pfa_id, struct sim_reply *rep)
{
    if ((rt == R_PUT || rt == R_DELETE) && rq->idem_key && *rq->idem_key) {
        struct remembered *m = map_get(&t->idem, rq->idem_key);
        if (m) {
            t->duplicates++;
            rep->status = m->status;
            free(rep->body);
            if (!(rep->body = strdup(m->body)))
                abort();
            count_status(t, rt, rep->status);
            return;
        }
    }
    switch (rt) {
    case R_PUT: do_put(t, rq, pfa_id, rep); break;
    case R_DELETE: do_delete(t, rq, pfa_id, rep); break;
    case R_GET: {
        struct rec *r = map_get(&t->records, pfa_id);
        if (!r || r->deleted)
            reply_error(rep, 404, "record not found");
        else
            reply_json(rep, 200, rec_json(r, false));
        break;
    }
    case R_PULL: do_pull(t, rq, rep); break;
    case R_HEALTH: reply_json(rep, 200, json_pack("{s:s}", "status", "ok")); break;
    default: reply_error(rep, 404, "no such route"); break;
    }
    count_status(t, rt, rep->status);
}

/* latencyMs +/- jitterMs, uniform, never below 0. Called with t->mu held. */
static int tenant_latency(struct tenant *t)
{
    if (t->jitter_ms == 0)
        return t->latency_ms;
    t->rng ^= t->rng << 13;
    t->rng ^= t->rng >> 7;
    t->rng ^= t->rng << 17;
    long span = 2L * t->jitter_ms + 1;
    long ms = (long)t->latency_ms - t->jitter_ms + (long)(t->rng % (uint64_t)span);
    return ms > 0 ? (int)ms : 0;
}

void sim_request(struct sim *s, const char *tenant, const struct sim_req *rq,
                 struct sim_reply *rep)
{
    memset(rep, 0, sizeof(*rep));
    struct tenant *t = tenant_get(s, tenant);
    const char *pfa_id;
    enum route rt = classify(rq, &pfa_id);

    pthread_mutex_lock(&t->mu);
    /* read under the lock: a thread preempted between its clock read and the lock would push
     * an older arrival behind a newer one, and the windows would count it wrong */
    int64_t now = mono_ns();
    int64_t waited = rq->waited_ns;
    if (rq->arrived_ns > 0) {   /* the kernel's stamp: both clocks read here, under the lock */
        struct timespec real;
        clock_gettime(CLOCK_REALTIME, &real);
        waited = (int64_t)real.tv_sec * NS_PER_S + real.tv_nsec - rq->arrived_ns;
        if (waited < 0)
            waited = 0;
    }
    t->total++;
    if (++t->in_flight > t->max_in_flight)
        t->max_in_flight = t->in_flight;
    int latency = tenant_latency(t);
    /* counted when it reached the socket, not when this thread got to it (on a loaded machine
     * tens of ms later) */
    long in_second = ring_insert_count(&t->arrivals, now - waited);
    if (in_second > t->max_in_second)
        t->max_in_second = in_second;

    if (!auth_ok(t, rq)) {
        reply_error(rep, 401, "unauthorized");
        count_status(t, rt, 401);
        goto out;
    }
    if (t->rate_rps > 0) {
        ring_trim(&t->accepted, now);
        if ((long)t->accepted.len >= t->rate_rps) {
            t->rate_limited++;
            reply_error(rep, 429, "rate limit exceeded");
            snprintf(rep->retry_after, sizeof(rep->retry_after), "1");
            count_status(t, rt, 429);
            goto out;
        }
        ring_push(&t->accepted, now);
    }
    for (struct fault **pf = &t->faults; *pf; pf = &(*pf)->next) {
        struct fault *f = *pf;
        if (!fault_matches(f, rt, pfa_id))
            continue;
        rep->delay_ms = f->delay_ms + latency;
        snprintf(rep->retry_after, sizeof(rep->retry_after), "%s", f->retry_after);
        if (f->status < 0) {
            rep->deferred = true;
        } else if (f->status == 0) {
            rep->status = 0;
            count_status(t, rt, 0);
        } else {
            struct rec *r = pfa_id ? map_get(&t->records, pfa_id) : NULL;
            if (f->endless) {
                /* a pull that never ends: each page one new record and a fresh cursor */
                char id[64], iso[96];
                snprintf(id, sizeof id, "endless-%ld", ++f->endless_n);
                iso_ms(tenant_tick(t), iso);
                reply_json(rep, f->status, json_pack("{s:[{s:s, s:i, s:s, s:O}], s:s}",
                                                     "records", "pfaId", id, "version", 1,
                                                     "updatedAt", iso, "data", f->endless,
                                                     "nextCursor", id));
            } else if (f->body) {
                rep->status = f->status;
                if (!(rep->body = malloc(f->body_len + 1)))
                    abort();
                memcpy(rep->body, f->body, f->body_len);
                rep->body[f->body_len] = '\0';
                rep->body_len = f->body_len;
            } else if (f->status == 409 && r && !r->deleted)
                reply_json(rep, 409, rec_json(r, false));
            else
                reply_error(rep, f->status, "simulated fault");
            count_status(t, rt, f->status);
        }
        if (f->count > 0 && --f->count == 0) {
            *pf = f->next;
            f->next = NULL;
            faults_free(f);
        }
        goto out;
    }
    if (latency > 0) {
        /* the request reaches PEMS after the latency: execute it then, in arrival order
         * of the wake-ups, as a WAN would */
        rep->delay_ms = latency;
        rep->deferred = true;
        pthread_mutex_unlock(&t->mu);
        return;
    }
    execute_locked(t, rq, rt, pfa_id, rep);
    pthread_mutex_unlock(&t->mu);
    return;
out:
    rep->delay_ms = rep->delay_ms > latency ? rep->delay_ms : latency;
    pthread_mutex_unlock(&t->mu);
}

void sim_request_done(struct sim *s, const char *tenant)
{
    struct tenant *t = tenant_get(s, tenant);
    pthread_mutex_lock(&t->mu);
    t->in_flight--;
    pthread_mutex_unlock(&t->mu);
}

void sim_execute(struct sim *s, const char *tenant, const struct sim_req *rq,
                 struct sim_reply *rep)
{
    char retry_after[64];
    snprintf(retry_after, sizeof(retry_after), "%s", rep->retry_after);
    sim_reply_clear(rep);
    snprintf(rep->retry_after, sizeof(rep->retry_after), "%s", retry_after);
    struct tenant *t = tenant_get(s, tenant);
    const char *pfa_id;
    enum route rt = classify(rq, &pfa_id);
    pthread_mutex_lock(&t->mu);
    execute_locked(t, rq, rt, pfa_id, rep);
    pthread_mutex_unlock(&t->mu);
}

/* ---- Basic auth ---- */

static int b64val(int c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Decodes standard base64 (padding optional); NULL when malformed. */
static char *b64_decode(const char *in)
{
    size_t n = strlen(in);
    char *out = malloc(n * 3 / 4 + 4);
    if (!out)
        abort();
    size_t o = 0;
    unsigned int acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        if (in[i] == '=')
            break;
        int v = b64val((unsigned char)in[i]);
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = (acc << 6) | (unsigned int)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    out[o] = '\0';
    return out;
}

static const char *basic_token(const char *authz)
{
    if (!authz || strncasecmp(authz, "Basic ", 6) != 0)
        return NULL;
    authz += 6;
    while (*authz == ' ')
        authz++;
    return *authz ? authz : NULL;
}

static bool has_basic(const char *authz)
{
    return basic_token(authz) != NULL;
}

static bool basic_matches(const char *authz, const char *user, const char *pass)
{
    const char *tok = basic_token(authz);
    if (!tok)
        return false;
    char *dec = b64_decode(tok);
    if (!dec)
        return false;
    char *colon = strchr(dec, ':');
    bool ok = false;
    if (colon) {
        *colon = '\0';
        ok = strcmp(dec, user) == 0 && strcmp(colon + 1, pass) == 0;
    }
    free(dec);
    return ok;
}

/* ---- control API ---- */

static int rec_id_cmp(const void *a, const void *b)
{
    return strcmp((*(struct rec *const *)a)->pfa_id, (*(struct rec *const *)b)->pfa_id);
}

static void ctl_records(struct tenant *t, json_t *body, struct sim_reply *rep)
{
    json_t *list = json_object_get(body, "records");
    size_t i;
    json_t *it;
    if (!json_is_array(list)) {
        reply_error(rep, 400, "records must be an array");
        return;
    }
    json_array_foreach(list, i, it) {
        json_t *id = json_object_get(it, "pfaId"), *v = json_object_get(it, "version");
        json_t *data = json_object_get(it, "data"), *del = json_object_get(it, "deleted");
        if (!json_is_string(id) || json_string_length(id) == 0 ||
            strlen(json_string_value(id)) != json_string_length(id) ||
            (v && !json_is_integer(v)) || (data && !json_is_object(data)) ||
            (del && !json_is_boolean(del))) {
            char msg[96];
            snprintf(msg, sizeof(msg), "records[%zu]: pfaId string, version integer, data object",
                     i);
            reply_error(rep, 400, msg);
            return;
        }
    }
    /* one change event for the whole batch, appended in pfaId order */
    size_t n = json_array_size(list);
    struct rec **batch = calloc(n ? n : 1, sizeof(*batch));
    if (!batch)
        abort();
    int64_t ts = tenant_tick(t);
    size_t nb = 0;
    json_array_foreach(list, i, it) {
        const char *id = json_string_value(json_object_get(it, "pfaId"));
        json_t *v = json_object_get(it, "version"), *data = json_object_get(it, "data");
        struct rec *r = map_get(&t->records, id);
        if (!r) {
            r = calloc(1, sizeof(*r));
            if (!r || !(r->pfa_id = strdup(id)))
                abort();
            map_put(&t->records, id, r);
        }
        json_decref(r->data);
        r->data = data ? json_deep_copy(data) : json_object();
        r->version = v ? (long)json_integer_value(v) : 1;
        r->deleted = json_is_true(json_object_get(it, "deleted"));
        if (r->updated_ms != ts) {
            r->updated_ms = ts;
            batch[nb++] = r;
        }
    }
    qsort(batch, nb, sizeof(*batch), rec_id_cmp);
    for (size_t a = 0; a < nb; a++)
        log_append(t, batch[a]);
    free(batch);
    char iso[96];
    iso_ms(ts, iso);
    reply_json(rep, 200, json_pack("{s:I, s:s}", "upserted", (json_int_t)n, "updatedAt", iso));
}

static void ctl_edit(struct tenant *t, const char *pfa_id, json_t *body, struct sim_reply *rep)
{
    json_t *changes = json_object_get(body, "changes"), *del = json_object_get(body, "deleted");
    if (!json_is_object(body) || (changes && !json_is_object(changes)) ||
        (del && !json_is_boolean(del)) || (!changes && !json_is_true(del))) {
        reply_error(rep, 400, "body: {\"changes\": {...}} or {\"deleted\": true}");
        return;
    }
    struct rec *r = map_get(&t->records, pfa_id);
    if (!r || r->deleted) {
        reply_error(rep, 404, "record not found");
        return;
    }
    if (changes)
        apply_changes(r->data, changes);
    if (json_is_true(del))
        r->deleted = true;
    r->version++;
    rec_touch(t, r);
    reply_json(rep, 200, rec_json(r, true));
}

/* Decoders of a fault's bodyHex / bodyBase64: 0 with *out (malloc'd, NUL after *n bytes). */
static int hex_decode(const char *s, char **out, size_t *n)
{
    size_t len = strlen(s);
    if (len % 2)
        return -1;
    char *b = malloc(len / 2 + 1);
    if (!b)
        abort();
    for (size_t i = 0; i < len; i += 2) {
        int v = 0;
        for (int k = 0; k < 2; k++) {
            char c = s[i + (size_t)k];
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                  : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
            if (d < 0) {
                free(b);
                return -1;
            }
            v = v * 16 + d;
        }
        b[i / 2] = (char)v;
    }
    b[len / 2] = '\0';
    *out = b;
    *n = len / 2;
    return 0;
}

static int base64_decode(const char *s, char **out, size_t *n)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t len = strlen(s);
    char *b = malloc(len / 4 * 3 + 4);
    if (!b)
        abort();
    size_t o = 0;
    unsigned int acc = 0;
    int bits = 0;
    bool pad = false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '=') {
            pad = true;
            continue;
        }
        const char *p = s[i] ? strchr(tbl, s[i]) : NULL;
        if (!p || pad) {
            free(b);
            return -1;
        }
        acc = (acc << 6) | (unsigned int)(p - tbl);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            b[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    b[o] = '\0';
    *out = b;
    *n = o;
    return 0;
}

static void ctl_faults(struct tenant *t, json_t *body, struct sim_reply *rep)
{
    static const char *const names[] = {"writes", "reads", "record", "pull", "health", "any"};
    json_t *id = json_object_get(body, "pfaId"), *st = json_object_get(body, "status");
    json_t *cnt = json_object_get(body, "count"), *ra = json_object_get(body, "retryAfter");
    json_t *dl = json_object_get(body, "delayMs"), *mt = json_object_get(body, "match");
    json_t *raw = json_object_get(body, "body"), *hex = json_object_get(body, "bodyHex");
    json_t *b64 = json_object_get(body, "bodyBase64"), *endless = json_object_get(body, "endless");
    if (!json_is_object(body) || (id && !json_is_string(id) && !json_is_null(id)) ||
        (st && !json_is_integer(st)) || (cnt && !json_is_integer(cnt)) ||
        (ra && !json_is_integer(ra) && !json_is_string(ra) && !json_is_null(ra)) ||
        (dl && !json_is_integer(dl)) || (mt && !json_is_string(mt)) || (!st && !dl) ||
        (raw && !json_is_string(raw)) || (hex && !json_is_string(hex)) ||
        (b64 && !json_is_string(b64)) || (endless && !json_is_object(endless)) ||
        (!!raw + !!hex + !!b64 + !!endless) > 1) {
        reply_error(rep, 400,
                    "fault: {pfaId?, status, count, retryAfter?, delayMs?, match?,"
                    " body? | bodyHex? | bodyBase64? | endless?}");
        return;
    }
    char *bytes = NULL;
    size_t nbytes = 0;
    if (hex || b64) {
        const char *text = json_string_value(hex ? hex : b64);
        if ((hex ? hex_decode(text, &bytes, &nbytes) : base64_decode(text, &bytes, &nbytes)) != 0) {
            reply_error(rep, 400, hex ? "bodyHex: an even number of hex digits"
                                      : "bodyBase64: base64 (RFC 4648)");
            return;
        }
    } else if (raw) {
        nbytes = json_string_length(raw);
        if (!(bytes = malloc(nbytes + 1)))
            abort();
        memcpy(bytes, json_string_value(raw), nbytes + 1);
    }
    long status = st ? (long)json_integer_value(st) : -1;
    long count = cnt ? (long)json_integer_value(cnt) : 1;
    long delay = dl ? (long)json_integer_value(dl) : 0;
    if ((st && status != 0 && (status < 100 || status > 599)) || count == 0 || count < -1 ||
        delay < 0 || delay > 600000) {
        free(bytes);
        reply_error(rep, 400, "status 0 or 100..599, count >= 1 or -1, delayMs 0..600000");
        return;
    }
    struct fault *f = calloc(1, sizeof(*f));
    if (!f)
        abort();
    f->status = (int)status;
    f->count = count;
    f->delay_ms = (int)delay;
    if (json_is_string(id) && !(f->pfa_id = strdup(json_string_value(id))))
        abort();
    f->body = bytes;
    f->body_len = nbytes;
    f->endless = json_incref(endless);
    f->match = f->pfa_id ? FM_RECORD : FM_WRITES;
    if (mt) {
        size_t k;
        for (k = 0; k < sizeof(names) / sizeof(names[0]); k++)
            if (strcmp(json_string_value(mt), names[k]) == 0)
                break;
        if (k == sizeof(names) / sizeof(names[0])) {
            faults_free(f);
            reply_error(rep, 400, "match: writes|reads|record|pull|health|any");
            return;
        }
        f->match = (enum fault_match)k;
    }
    if (json_is_integer(ra))
        snprintf(f->retry_after, sizeof(f->retry_after), "%" JSON_INTEGER_FORMAT,
                 json_integer_value(ra));
    else if (json_is_string(ra))
        snprintf(f->retry_after, sizeof(f->retry_after), "%s", json_string_value(ra));
    struct fault **pf = &t->faults;
    size_t n = 1;
    for (; *pf; pf = &(*pf)->next)
        n++;
    *pf = f;
    reply_json(rep, 200, json_pack("{s:I}", "faults", (json_int_t)n));
}

static int set_opt_str(char **dst, json_t *v)
{
    if (!v)
        return 0;
    if (!json_is_string(v) && !json_is_null(v))
        return -1;
    free(*dst);
    *dst = NULL;
    if (json_is_string(v) && !(*dst = strdup(json_string_value(v))))
        abort();
    return 0;
}

static json_t *config_json(const struct tenant *t)
{
    return json_pack("{s:s, s:i, s:i, s:i, s:o, s:b}", "tenant", t->name, "rateLimitRps",
                     t->rate_rps, "latencyMs", t->latency_ms, "jitterMs", t->jitter_ms,
                     "username", t->username ? json_string(t->username) : json_null(),
                     "apiKey", t->api_key != NULL);
}

#define MAX_LATENCY_MS 600000

static bool bad_int(json_t *v, json_int_t max)
{
    return v && (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max);
}

static void ctl_config(struct tenant *t, json_t *body, struct sim_reply *rep)
{
    json_t *rps = json_object_get(body, "rateLimitRps");
    json_t *lat = json_object_get(body, "latencyMs"), *jit = json_object_get(body, "jitterMs");
    if (!json_is_object(body) || bad_int(rps, INT32_MAX) || bad_int(lat, MAX_LATENCY_MS) ||
        bad_int(jit, MAX_LATENCY_MS)) {
        reply_error(rep, 400,
                    "config: {rateLimitRps?, latencyMs? (0-600000), jitterMs? (0-600000), "
                    "username?, password?, apiKey?}");
        return;
    }
    json_t *u = json_object_get(body, "username"), *p = json_object_get(body, "password");
    json_t *k = json_object_get(body, "apiKey");
    if ((u && !json_is_string(u) && !json_is_null(u)) ||
        (p && !json_is_string(p) && !json_is_null(p)) ||
        (k && !json_is_string(k) && !json_is_null(k))) {
        reply_error(rep, 400, "username, password, apiKey: string or null");
        return;
    }
    if (rps) {
        t->rate_rps = (int)json_integer_value(rps);
        ring_clear(&t->accepted);
    }
    if (lat)
        t->latency_ms = (int)json_integer_value(lat);
    if (jit)
        t->jitter_ms = (int)json_integer_value(jit);
    set_opt_str(&t->username, u);
    set_opt_str(&t->password, p);
    set_opt_str(&t->api_key, k);
    reply_json(rep, 200, config_json(t));
}

static json_t *stats_json(struct tenant *t)
{
    json_t *req = json_object();
    for (int r = 0; r < R_COUNT; r++) {
        json_t *by = json_object();
        for (int st = 0; st < MAX_STATUS; st++) {
            if (t->counts[r][st]) {
                char k[8];
                snprintf(k, sizeof(k), "%d", st);
                json_object_set_new(by, k, json_integer(t->counts[r][st]));
            }
        }
        if (r == R_OTHER && json_object_size(by) == 0)
            json_decref(by);
        else
            json_object_set_new(req, route_names[r], by);
    }
    long live = 0;
    for (size_t i = 0; i < t->records.nb; i++)
        for (struct map_ent *e = t->records.b[i]; e; e = e->next)
            live += !((struct rec *)e->val)->deleted;
    return json_pack("{s:s, s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:i, s:I, s:I}", "tenant",
                     t->name, "requests", req, "totalRequests", (json_int_t)t->total,
                     "writesApplied", (json_int_t)t->writes_applied, "duplicateWrites",
                     (json_int_t)t->duplicates, "maxRequestsInAnySecond",
                     (json_int_t)t->max_in_second, "rateLimited", (json_int_t)t->rate_limited,
                     "records", (json_int_t)live, "rateLimitRps", t->rate_rps, "inFlight",
                     (json_int_t)t->in_flight, "maxInFlight", (json_int_t)t->max_in_flight);
}

static bool is(const struct sim_ctl *rq, const char *method, const char *path)
{
    return strcmp(rq->method, method) == 0 && strcmp(rq->path, path) == 0;
}

void sim_control(struct sim *s, const struct sim_ctl *rq, struct sim_reply *rep)
{
    memset(rep, 0, sizeof(*rep));
    if (is(rq, "GET", "/health")) {
        reply_json(rep, 200, json_pack("{s:s}", "status", "ok"));
        return;
    }
    if (is(rq, "POST", "/reset") && rq->all) {
        pthread_rwlock_rdlock(&s->lock);
        for (size_t i = 0; i < s->tenants.nb; i++) {
            for (struct map_ent *e = s->tenants.b[i]; e; e = e->next) {
                struct tenant *t = e->val;
                pthread_mutex_lock(&t->mu);
                tenant_reset(t);
                pthread_mutex_unlock(&t->mu);
            }
        }
        pthread_rwlock_unlock(&s->lock);
        reply_json(rep, 200, json_pack("{s:s}", "reset", "all"));
        return;
    }
    if (rq->body_too_large) {
        reply_error(rep, 413, "body too large");
        return;
    }
    if (!*rq->tenant || strlen(rq->tenant) > MAX_TENANT_NAME || strchr(rq->tenant, '/')) {
        reply_error(rep, 400, "invalid tenant");
        return;
    }
    struct tenant *t = tenant_get(s, rq->tenant);
    json_t *body = parse_body(rq->body, rq->body_len);
    bool needs_body = strcmp(rq->method, "GET") != 0 && strcmp(rq->path, "/reset") != 0 &&
                      strcmp(rq->path, "/stats/reset") != 0 && strcmp(rq->method, "DELETE") != 0;
    pthread_mutex_lock(&t->mu);
    if (needs_body && !json_is_object(body)) {
        reply_error(rep, 400, "body must be a JSON object");
    } else if (is(rq, "POST", "/reset")) {
        tenant_reset(t);
        reply_json(rep, 200, json_pack("{s:s}", "reset", t->name));
    } else if (is(rq, "PUT", "/records") || is(rq, "POST", "/records")) {
        ctl_records(t, body, rep);
    } else if (strncmp(rq->path, "/records/", 9) == 0 && rq->path[9]) {
        const char *id = rq->path + 9;
        size_t n = strlen(id);
        if (strcmp(rq->method, "POST") == 0 && n > 5 && strcmp(id + n - 5, "/edit") == 0) {
            char *pid = strndup(id, n - 5);
            if (!pid)
                abort();
            ctl_edit(t, pid, body, rep);
            free(pid);
        } else if (strcmp(rq->method, "GET") == 0) {
            struct rec *r = map_get(&t->records, id);
            if (r)
                reply_json(rep, 200, rec_json(r, true));
            else
                reply_error(rep, 404, "record not found");
        } else {
            reply_error(rep, 405, "method not allowed");
        }
    } else if (is(rq, "POST", "/faults")) {
        ctl_faults(t, body, rep);
    } else if (is(rq, "DELETE", "/faults")) {
        faults_free(t->faults);
        t->faults = NULL;
        reply_json(rep, 200, json_pack("{s:i}", "faults", 0));
    } else if (is(rq, "POST", "/config")) {
        ctl_config(t, body, rep);
    } else if (is(rq, "GET", "/config")) {
        reply_json(rep, 200, config_json(t));
    } else if (is(rq, "GET", "/stats")) {
        reply_json(rep, 200, stats_json(t));
    } else if (is(rq, "POST", "/stats/reset")) {
        tenant_clear_stats(t);
        reply_json(rep, 200, stats_json(t));
    } else {
        reply_error(rep, 404, "no such control route");
    }
    pthread_mutex_unlock(&t->mu);
    json_decref(body);
}
