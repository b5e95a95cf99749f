#include "rate_limiter.h"

#include <stdlib.h>
#include <string.h>

#define NS_PER_S 1000000000LL

/* The last `rps` start times in a ring: a new start is allowed once the oldest of them is at
 * least one second old, so no half-open one-second interval ever holds more than rps starts. */
struct rate_limiter {
    int rps;             /* <= 0: unlimited */
    int count;           /* starts held, <= rps */
    int head;            /* index of the oldest start */
    int64_t *starts;
    int64_t paused_until;
};

struct rate_limiter *rate_limiter_new(int rps)
{
    struct rate_limiter *rl = calloc(1, sizeof *rl);

    if (!rl)
        return NULL;
    if (rps > 0) {
        rl->starts = calloc((size_t)rps, sizeof *rl->starts);
        if (!rl->starts) {
            free(rl);
            return NULL;
        }
    }
    rl->rps = rps > 0 ? rps : 0;
    return rl;
}

void rate_limiter_free(struct rate_limiter *rl)
{
    if (!rl)
        return;
    free(rl->starts);
    free(rl);
}

int rate_limiter_rate(const struct rate_limiter *rl)
{
    return rl->rps;
}

int rate_limiter_recent(const struct rate_limiter *rl, int64_t *out, int max)
{
    int n = rl->count < max ? rl->count : max;
    int skip = rl->count - n;   /* keep the newest n */

    for (int i = 0; i < n; i++)
        out[i] = rl->starts[(rl->head + skip + i) % rl->rps];
    return n < 0 ? 0 : n;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Replaces the window with the newest `rps` of `starts` (any order). */
static void load_window(struct rate_limiter *rl, int64_t *sorted, int n)
{
    int skip;

    qsort(sorted, (size_t)n, sizeof *sorted, cmp_i64);
    skip = n > rl->rps ? n - rl->rps : 0;
    rl->count = n - skip;
    rl->head = 0;
    if (rl->count > 0)
        memcpy(rl->starts, sorted + skip, (size_t)rl->count * sizeof *sorted);
}

/* After the wall clock stepped back, starts "in the future" would hold the window shut for
 * as long as the step; they count as starting now instead. */
static void clamp_future(struct rate_limiter *rl, int64_t now_ns)
{
    if (rl->count == 0 || rl->starts[(rl->head + rl->count - 1) % rl->rps] <= now_ns)
        return;
    for (int i = 0; i < rl->count; i++) {
        int64_t *s = &rl->starts[(rl->head + i) % rl->rps];
        if (*s > now_ns)
            *s = now_ns;
    }
}

int64_t rate_limiter_acquire(struct rate_limiter *rl, int64_t now_ns)
{
    if (now_ns < rl->paused_until)
        return rl->paused_until - now_ns;
    if (rl->rps <= 0)
        return 0;
    clamp_future(rl, now_ns);
    if (rl->count < rl->rps) {
        rl->starts[(rl->head + rl->count) % rl->rps] = now_ns;
        rl->count++;
        return 0;
    }
    if (now_ns - rl->starts[rl->head] < NS_PER_S)
        return rl->starts[rl->head] + NS_PER_S - now_ns;
    rl->starts[rl->head] = now_ns;
    rl->head = (rl->head + 1) % rl->rps;
    return 0;
}

bool rate_limiter_restamp(struct rate_limiter *rl, int64_t from_ns, int64_t to_ns)
{
    if (rl->rps <= 0 || to_ns <= from_ns)
        return false;
    /* the newest first: a request leaves soon after its start */
    int k = rl->count - 1;
    while (k >= 0 && rl->starts[(rl->head + k) % rl->rps] != from_ns)
        k--;
    if (k < 0)
        return false;
    rl->starts[(rl->head + k) % rl->rps] = to_ns;
    /* keep the window oldest first */
    for (; k + 1 < rl->count; k++) {
        int64_t *a = &rl->starts[(rl->head + k) % rl->rps];
        int64_t *b = &rl->starts[(rl->head + k + 1) % rl->rps];
        if (*a <= *b)
            break;
        int64_t t = *a;
        *a = *b;
        *b = t;
    }
    return true;
}

void rate_limiter_pause_until(struct rate_limiter *rl, int64_t until_ns)
{
    if (until_ns > rl->paused_until)
        rl->paused_until = until_ns;
}

void rate_limiter_seed(struct rate_limiter *rl, const int64_t *starts, int n)
{
    int64_t *copy;

    if (rl->rps <= 0)
        return;
    if (n <= 0) {
        rl->count = 0;
        rl->head = 0;
        return;
    }
    copy = malloc((size_t)n * sizeof *copy);
    if (!copy)
        return;
    memcpy(copy, starts, (size_t)n * sizeof *copy);
    load_window(rl, copy, n);
    free(copy);
}
