#include "metrics.h"
#include "metrics_render.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Fixed layout shared by every process through a MAP_SHARED file; counters are updated with
 * atomic adds, so no locks are held on the request path. Bump the magic when it changes. */
#define METRICS_MAGIC 0x504d5303u
#define M_ROUTES 32
#define M_ROUTE_LEN 72
#define M_STATUS_MIN 100
#define M_STATUS_MAX 599
#define M_UPSTREAM 600    /* index = HTTP status, 0 = transport error */

static const double bucket_bounds[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                        0.1, 0.25, 0.5, 1, 2.5, 5, 10 };
#define M_BUCKETS (sizeof bucket_bounds / sizeof bucket_bounds[0])

static const char *const sync_results[] = { "synced", "failed", "conflict", "merged" };
#define M_SYNC (sizeof sync_results / sizeof sync_results[0])

/* pems_record.h's reject names, an updatedAt not trusted (its record stored), and a pull
 * ended by a cursor that did not advance */
static const char *const upstream_rejects[] = { "invalid", "record_too_large", "future_updated_at",
                                                "stuck_cursor" };
#define M_REJECTS (sizeof upstream_rejects / sizeof upstream_rejects[0])

enum { SLOT_FREE, SLOT_CLAIMING, SLOT_READY };

struct m_route {
    uint32_t state;
    char pattern[M_ROUTE_LEN];
    uint64_t status[M_STATUS_MAX - M_STATUS_MIN + 1];
    uint64_t bucket[M_BUCKETS];    /* not cumulative: observations <= bound, > previous */
    uint64_t count;
    uint64_t sum_ns;
};

struct m_file {
    uint32_t magic;
    uint32_t size;
    struct m_route routes[M_ROUTES];
    uint64_t sync_items[M_SYNC];
    uint64_t upstream[M_UPSTREAM];
    uint64_t rejects[M_REJECTS];
};

static struct m_file *mf;

int metrics_open(const char *path)
{
    if (mf)
        return 0;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        log_error("metrics_open_failed", "path=%s error=\"%s\"", path, strerror(errno));
        return -1;
    }
    int rc = -1;
    struct stat st;
    if (flock(fd, LOCK_EX) < 0 || fstat(fd, &st) < 0)
        goto out;
    if ((size_t)st.st_size < sizeof *mf && ftruncate(fd, (off_t)sizeof *mf) < 0)
        goto out;
    void *p = mmap(NULL, sizeof *mf, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        goto out;
    struct m_file *m = p;
    if (m->magic != METRICS_MAGIC || m->size != sizeof *mf) {
        /* new file, or one left by another layout: start from zero */
        memset(m, 0, sizeof *m);
        m->size = sizeof *mf;
        __atomic_store_n(&m->magic, METRICS_MAGIC, __ATOMIC_RELEASE);
    }
    mf = m;
    rc = 0;
out:
    if (rc < 0)
        log_error("metrics_open_failed", "path=%s error=\"%s\"", path, strerror(errno));
    flock(fd, LOCK_UN);
    close(fd);
    return rc;
}

void metrics_close(void)
{
    if (mf)
        munmap(mf, sizeof *mf);
    mf = NULL;
}

static void add(uint64_t *c, uint64_t v)
{
    __atomic_fetch_add(c, v, __ATOMIC_RELAXED);
}

static uint64_t load(const uint64_t *c)
{
    return __atomic_load_n(c, __ATOMIC_RELAXED);
}

/* The slot of a route pattern, claimed on first use by whichever process sees it first. */
static struct m_route *route_slot(const char *route)
{
    for (int i = 0; i < M_ROUTES; i++) {
        struct m_route *r = &mf->routes[i];
        uint32_t st = __atomic_load_n(&r->state, __ATOMIC_ACQUIRE);
        if (st == SLOT_READY) {
            if (strncmp(r->pattern, route, M_ROUTE_LEN - 1) == 0)
                return r;
            continue;
        }
        if (st == SLOT_CLAIMING)
            continue;   /* another process is naming it; duplicates are merged on output */
        uint32_t expected = SLOT_FREE;
        if (__atomic_compare_exchange_n(&r->state, &expected, SLOT_CLAIMING, false,
                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
            strncpy(r->pattern, route, M_ROUTE_LEN - 1);
            r->pattern[M_ROUTE_LEN - 1] = '\0';
            __atomic_store_n(&r->state, SLOT_READY, __ATOMIC_RELEASE);
            return r;
        }
        if (expected == SLOT_READY && strncmp(r->pattern, route, M_ROUTE_LEN - 1) == 0)
            return r;
    }
    return NULL;
}

void metrics_http_observe(const char *route, int status, double seconds)
{
    if (!mf || !route)
        return;
    struct m_route *r = route_slot(route);
    if (!r)
        return;
    if (status >= M_STATUS_MIN && status <= M_STATUS_MAX)
        add(&r->status[status - M_STATUS_MIN], 1);
    if (seconds < 0)
        seconds = 0;
    for (size_t i = 0; i < M_BUCKETS; i++) {
        if (seconds <= bucket_bounds[i]) {
            add(&r->bucket[i], 1);
            break;
        }
    }
    add(&r->count, 1);
    add(&r->sum_ns, (uint64_t)(seconds * 1e9));
}

void metrics_upstream_inc(int http_status)
{
    if (!mf)
        return;
    if (http_status < 0 || http_status >= M_UPSTREAM)
        http_status = 0;
    add(&mf->upstream[http_status], 1);
}

void metrics_sync_item(const char *result)
{
    if (!mf || !result)
        return;
    for (size_t i = 0; i < M_SYNC; i++)
        if (strcmp(sync_results[i], result) == 0)
            add(&mf->sync_items[i], 1);
}

void metrics_upstream_rejected(const char *reason)
{
    if (!mf || !reason)
        return;
    for (size_t i = 0; i < M_REJECTS; i++)
        if (strcmp(upstream_rejects[i], reason) == 0)
            add(&mf->rejects[i], 1);
}

/* Slots that name the same route (a claiming race) are merged: the first one prints all. */
static bool first_slot_of(int idx)
{
    for (int i = 0; i < idx; i++)
        if (__atomic_load_n(&mf->routes[i].state, __ATOMIC_ACQUIRE) == SLOT_READY &&
            strcmp(mf->routes[i].pattern, mf->routes[idx].pattern) == 0)
            return false;
    return true;
}

static void render_http(FILE *out)
{
    fputs("# HELP pems_http_requests_total HTTP requests answered, by route pattern and status.\n"
          "# TYPE pems_http_requests_total counter\n", out);
    for (int i = 0; mf && i < M_ROUTES; i++) {
        struct m_route *r = &mf->routes[i];
        if (__atomic_load_n(&r->state, __ATOMIC_ACQUIRE) != SLOT_READY || !first_slot_of(i))
            continue;
        for (int s = 0; s <= M_STATUS_MAX - M_STATUS_MIN; s++) {
            uint64_t n = 0;
            for (int k = i; k < M_ROUTES; k++)
                if (__atomic_load_n(&mf->routes[k].state, __ATOMIC_ACQUIRE) == SLOT_READY &&
                    strcmp(mf->routes[k].pattern, r->pattern) == 0)
                    n += load(&mf->routes[k].status[s]);
            if (!n)
                continue;
            fputs("pems_http_requests_total{route=\"", out);
            util_label_write(out, r->pattern);
            fprintf(out, "\",status=\"%d\"} %llu\n", s + M_STATUS_MIN, (unsigned long long)n);
        }
    }
    fputs("# HELP pems_http_request_duration_seconds Time to answer an HTTP request, by route.\n"
          "# TYPE pems_http_request_duration_seconds histogram\n", out);
    for (int i = 0; mf && i < M_ROUTES; i++) {
        struct m_route *r = &mf->routes[i];
        if (__atomic_load_n(&r->state, __ATOMIC_ACQUIRE) != SLOT_READY || !first_slot_of(i))
            continue;
        uint64_t buckets[M_BUCKETS] = { 0 }, count = 0, sum_ns = 0;
        for (int k = i; k < M_ROUTES; k++) {
            struct m_route *o = &mf->routes[k];
            if (__atomic_load_n(&o->state, __ATOMIC_ACQUIRE) != SLOT_READY ||
                strcmp(o->pattern, r->pattern) != 0)
                continue;
            for (size_t b = 0; b < M_BUCKETS; b++)
                buckets[b] += load(&o->bucket[b]);
            count += load(&o->count);
            sum_ns += load(&o->sum_ns);
        }
        uint64_t cum = 0;
        for (size_t b = 0; b < M_BUCKETS; b++) {
            cum += buckets[b];
            fputs("pems_http_request_duration_seconds_bucket{route=\"", out);
            util_label_write(out, r->pattern);
            fprintf(out, "\",le=\"%g\"} %llu\n", bucket_bounds[b], (unsigned long long)cum);
        }
        /* count is read after the buckets, so +Inf never falls below the last bucket */
        if (count < cum)
            count = cum;
        fputs("pems_http_request_duration_seconds_bucket{route=\"", out);
        util_label_write(out, r->pattern);
        fprintf(out, "\",le=\"+Inf\"} %llu\n", (unsigned long long)count);
        fputs("pems_http_request_duration_seconds_sum{route=\"", out);
        util_label_write(out, r->pattern);
        fprintf(out, "\"} %.9f\n", (double)sum_ns / 1e9);
        fputs("pems_http_request_duration_seconds_count{route=\"", out);
        util_label_write(out, r->pattern);
        fprintf(out, "\"} %llu\n", (unsigned long long)count);
    }
}

void metrics_render(FILE *out)
{
    render_http(out);
    fputs("# HELP pems_sync_items_total Queue items the workers finished, by result.\n"
          "# TYPE pems_sync_items_total counter\n", out);
    for (size_t i = 0; i < M_SYNC; i++)
        fprintf(out, "pems_sync_items_total{result=\"%s\"} %llu\n", sync_results[i],
                (unsigned long long)(mf ? load(&mf->sync_items[i]) : 0));
    fputs("# HELP pems_upstream_requests_total Requests to PEMS servers, by HTTP status "
          "(0 = transport error).\n"
          "# TYPE pems_upstream_requests_total counter\n", out);
    for (int s = 0; mf && s < M_UPSTREAM; s++) {
        uint64_t n = load(&mf->upstream[s]);
        if (n)
            fprintf(out, "pems_upstream_requests_total{status=\"%d\"} %llu\n", s,
                    (unsigned long long)n);
    }
    fputs("# HELP pems_upstream_rejected_total What PEMS sent and the worker did not take, by "
          "reason (README, Security).\n"
          "# TYPE pems_upstream_rejected_total counter\n", out);
    for (size_t i = 0; i < M_REJECTS; i++)
        fprintf(out, "pems_upstream_rejected_total{reason=\"%s\"} %llu\n", upstream_rejects[i],
                (unsigned long long)(mf ? load(&mf->rejects[i]) : 0));
}
