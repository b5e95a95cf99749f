#include "rate_limiter.h"

#include <stdint.h>
#include <stdlib.h>

#include "unit.h"

#define S 1000000000LL
#define MS 1000000LL
/* a realistic wall-clock instant (2026) in ns */
#define T0 (1780000000LL * S)

/* Most starts in any half-open one-second interval, by brute force over the interval starts
 * that matter (each recorded start). */
static int max_in_any_second(const int64_t *t, int n)
{
    int most = 0;

    for (int i = 0; i < n; i++) {
        int c = 0;
        for (int j = 0; j < n; j++)
            c += t[j] >= t[i] && t[j] < t[i] + S;
        if (c > most)
            most = c;
    }
    return most;
}

static void test_burst_then_blocked(void)
{
    struct rate_limiter *rl = rate_limiter_new(10);

    CU_ASSERT_FATAL(rl != NULL);
    for (int i = 0; i < 10; i++)
        CU_ASSERT_EQUAL(rate_limiter_acquire(rl, T0), 0);
    CU_ASSERT_EQUAL(rate_limiter_acquire(rl, T0), S);
    CU_ASSERT_EQUAL(rate_limiter_acquire(rl, T0 + S - 1), 1);
    /* refused attempts are not recorded */
    CU_ASSERT_EQUAL(rate_limiter_acquire(rl, T0 + S), 0);
    CU_ASSERT_EQUAL(rate_limiter_acquire(rl, T0 + S), 0);
    rate_limiter_free(rl);
}

static void test_exact_wait(void)
{
    struct rate_limiter *rl = rate_limiter_new(10);

    CU_ASSERT_FATAL(rl != NULL);
    for (int i = 0; i < 10; i++)
        CU_ASSERT_EQUAL(rate_limiter_acquire(rl, T0 + i * 100 * MS), 0);
    CU_ASSERT_EQUAL(rate_limiter_acquire(rl, T0 + 950 * MS), 50 * MS);
    CU_ASSERT_EQUAL(rate_limiter_acquire(rl, T0 + 999 * MS), 1 * MS);
    CU_ASSERT_EQUAL(rate_limiter_acquire(rl, T0 + S), 0);
    /* the oldest is now the start at 100 ms */
    CU_ASSERT_EQUAL(rate_limiter_acquire(rl, T0 + S), 100 * MS);
    CU_ASSERT_EQUAL(rate_limiter_acquire(rl, T0 + S + 100 * MS), 0);
    CU_ASSERT_EQUAL(rate_limiter_acquire(rl, T0 + S + 150 * MS), 50 * MS);
    rate_limiter_free(rl);
}

/* A greedy caller that starts whenever allowed and otherwise sleeps exactly as told. */
static void test_steady_sixty_seconds(void)
{
    struct rate_limiter *rl = rate_limiter_new(10);
    int64_t *starts = calloc(2000, sizeof *starts);
    int64_t now = T0;
    int n = 0, steps = 0;

    CU_ASSERT_FATAL(rl != NULL && starts != NULL);
    while (now < T0 + 60 * S && n < 2000 && steps++ < 100000) {
        int64_t wait = rate_limiter_acquire(rl, now);
        CU_ASSERT(wait >= 0);
        if (wait == 0)
            starts[n++] = now;
        else
            now += wait;
    }
    CU_ASSERT_EQUAL(n, 600);
    CU_ASSERT_EQUAL(max_in_any_second(starts, n), 10);
    free(starts);
    rate_limiter_free(rl);
}

/* An irregular caller (pseudo-random arrivals, some early retries) never beats the window. */
static void test_irregular_caller(void)
{
    struct rate_limiter *rl = rate_limiter_new(7);
    int64_t *starts = calloc(5000, sizeof *starts);
    int64_t now = T0;
    unsigned seed = 12345;
    int n = 0;

    CU_ASSERT_FATAL(rl != NULL && starts != NULL);
    for (int step = 0; step < 20000 && n < 5000 && now < T0 + 30 * S; step++) {
        int64_t wait = rate_limiter_acquire(rl, now);
        seed = seed * 1103515245u + 12345u;
        if (wait == 0)
            starts[n++] = now;
        /* sometimes retry before the wait is over, sometimes dawdle */
        now += wait == 0 ? (int64_t)(seed >> 8) % (80 * MS) : wait / (1 + (seed >> 30));
        if (wait > 0 && seed % 3 == 0)
            now += 1;
    }
    CU_ASSERT(n > 150);
    CU_ASSERT(max_in_any_second(starts, n) <= 7);
    free(starts);
    rate_limiter_free(rl);
}

static void test_pause(void)
{
    struct rate_limiter *rl = rate_limiter_new(10);

    CU_ASSERT_FATAL(rl != NULL);
    CU_ASSERT_EQUAL(rate_limiter_acquire(rl, T0), 0);
    rate_limiter_pause_until(rl, T0 + 5 * S);
    CU_ASSERT_EQUAL(rate_limiter_acquire(rl, T0 + S), 4 * S);
    /* an earlier deadline does not shorten the pause */
    rate_limiter_pause_until(rl, T0 + 2 * S);
    CU_ASSERT_EQUAL(rate_limiter_acquire(rl, T0 + 3 * S), 2 * S);
    CU_ASSERT_EQUAL(rate_limiter_acquire(rl, T0 + 5 * S - 1), 1);
    CU_ASSERT_EQUAL(rate_limiter_acquire(rl, T0 + 5 * S), 0);
    rate_limiter_free(rl);
    /* a pause also holds an unlimited limiter */
    rl = rate_limiter_new(0);
    CU_ASSERT_FATAL(rl != NULL);
    rate_limiter_pause_until(rl, T0 + 9 * S);
    CU_ASSERT_EQUAL(rate_limiter_acquire(rl, T0 + 8 * S), S);
    CU_ASSERT_EQUAL(rate_limiter_acquire(rl, T0 + 9 * S), 0);
    rate_limiter_free(rl);
}

static void test_seed_recent_round_trip(void)
{
    struct rate_limiter *a = rate_limiter_new(10), *b = rate_limiter_new(10);
    int64_t out[16], few[3];
    int64_t shuffled[12];

    CU_ASSERT_FATAL(a != NULL && b != NULL);
    CU_ASSERT_EQUAL(rate_limiter_recent(a, out, 16), 0);
    for (int i = 0; i < 12; i++)
        CU_ASSERT_EQUAL(rate_limiter_acquire(a, T0 + i * 100 * MS), 0);
    CU_ASSERT_EQUAL(rate_limiter_recent(a, out, 16), 10);
    for (int i = 0; i < 10; i++)
        CU_ASSERT_EQUAL(out[i], T0 + (i + 2) * 100 * MS);
    /* with little room, the newest, oldest first */
    CU_ASSERT_EQUAL(rate_limiter_recent(a, few, 3), 3);
    CU_ASSERT_EQUAL(few[0], T0 + 900 * MS);
    CU_ASSERT_EQUAL(few[2], T0 + 1100 * MS);

    /* b takes over a's window and is exactly as full */
    rate_limiter_seed(b, out, 10);
    CU_ASSERT_EQUAL(rate_limiter_acquire(b, T0 + 1150 * MS), 50 * MS);
    CU_ASSERT_EQUAL(rate_limiter_acquire(a, T0 + 1150 * MS), 50 * MS);
    CU_ASSERT_EQUAL(rate_limiter_acquire(b, T0 + 1200 * MS), 0);
    CU_ASSERT_EQUAL(rate_limiter_acquire(b, T0 + 1200 * MS), 100 * MS);

    /* more starts than the rate, in any order: the newest 10 count */
    for (int i = 0; i < 12; i++)
        shuffled[i] = T0 + ((i * 5) % 12) * 100 * MS;
    rate_limiter_seed(b, shuffled, 12);
    CU_ASSERT_EQUAL(rate_limiter_recent(b, out, 16), 10);
    CU_ASSERT_EQUAL(out[0], T0 + 200 * MS);
    CU_ASSERT_EQUAL(out[9], T0 + 1100 * MS);
    for (int i = 1; i < 10; i++)
        CU_ASSERT(out[i - 1] <= out[i]);
    CU_ASSERT_EQUAL(rate_limiter_acquire(b, T0 + 1150 * MS), 50 * MS);

    /* seeding nothing empties the window */
    rate_limiter_seed(b, NULL, 0);
    CU_ASSERT_EQUAL(rate_limiter_recent(b, out, 16), 0);
    CU_ASSERT_EQUAL(rate_limiter_acquire(b, T0), 0);
    rate_limiter_free(a);
    rate_limiter_free(b);
}

static void test_unlimited(void)
{
    struct rate_limiter *rl = rate_limiter_new(0);

    CU_ASSERT_FATAL(rl != NULL);
    CU_ASSERT_EQUAL(rate_limiter_rate(rl), 0);
    for (int i = 0; i < 1000; i++)
        CU_ASSERT_EQUAL(rate_limiter_acquire(rl, T0), 0);
    int64_t out[4];
    CU_ASSERT_EQUAL(rate_limiter_recent(rl, out, 4), 0);
    rate_limiter_free(rl);
}

static void test_clock_steps_back(void)
{
    struct rate_limiter *rl = rate_limiter_new(2);

    CU_ASSERT_FATAL(rl != NULL);
    CU_ASSERT_EQUAL(rate_limiter_acquire(rl, T0), 0);
    CU_ASSERT_EQUAL(rate_limiter_acquire(rl, T0), 0);
    /* an hour back: the window counts as just used, not as an hour away */
    CU_ASSERT_EQUAL(rate_limiter_acquire(rl, T0 - 3600 * S), S);
    CU_ASSERT_EQUAL(rate_limiter_acquire(rl, T0 - 3599 * S), 0);
    rate_limiter_free(rl);
}

/* A request that leaves later than its start counts from when it left: the window then holds
 * the next start back, and the sends never put 3 into one second (they would at the starts). */
static void test_restamp(void)
{
    struct rate_limiter *rl = rate_limiter_new(2);
    int64_t sent[3];

    CU_ASSERT_FATAL(rl != NULL);
    CU_ASSERT_EQUAL(rate_limiter_acquire(rl, T0), 0);
    CU_ASSERT_EQUAL(rate_limiter_acquire(rl, T0 + 500 * MS), 0);
    /* the first left only 600 ms after its start: now the second is the oldest */
    CU_ASSERT_TRUE(rate_limiter_restamp(rl, T0, T0 + 600 * MS));
    sent[0] = T0 + 600 * MS;
    sent[1] = T0 + 500 * MS;
    int64_t out[2];
    CU_ASSERT_EQUAL(rate_limiter_recent(rl, out, 2), 2);
    CU_ASSERT_EQUAL(out[0], T0 + 500 * MS);
    CU_ASSERT_EQUAL(out[1], T0 + 600 * MS);
    CU_ASSERT_EQUAL(rate_limiter_acquire(rl, T0 + S), 500 * MS);
    CU_ASSERT_EQUAL(rate_limiter_acquire(rl, T0 + S + 500 * MS), 0);
    sent[2] = T0 + S + 500 * MS;
    CU_ASSERT_TRUE(max_in_any_second(sent, 3) <= 2);
    /* a start no longer in the window, or a stamp moved back, changes nothing */
    CU_ASSERT_FALSE(rate_limiter_restamp(rl, T0, T0 + 2 * S));
    CU_ASSERT_FALSE(rate_limiter_restamp(rl, T0 + S + 500 * MS, T0));
    CU_ASSERT_EQUAL(rate_limiter_acquire(rl, T0 + S + 600 * MS), 0);
    rate_limiter_free(rl);
}

int main(void)
{
    static const struct unit_test tests[] = {
        { "burst then blocked", test_burst_then_blocked },
        { "exact wait", test_exact_wait },
        { "steady 10/s for 60 s", test_steady_sixty_seconds },
        { "irregular caller", test_irregular_caller },
        { "pause", test_pause },
        { "seed/recent round trip", test_seed_recent_round_trip },
        { "unlimited", test_unlimited },
        { "clock steps back", test_clock_steps_back },
        { "a late send counts from when it left", test_restamp },
    };
    return UNIT_RUN("rate_limiter", NULL, tests);
}
