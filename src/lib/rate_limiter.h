#ifndef PEMS_RATE_LIMITER_H
#define PEMS_RATE_LIMITER_H

#include <stdbool.h>
#include <stdint.h>

/* At most `rps` request starts in any one-second interval (a sliding window, not a bucket
 * that may burst 2x at a refill edge). Times are wall-clock nanoseconds (util_wall_ns) so a window can be
 * handed from one worker process to another through the database. */
struct rate_limiter;

/* rps <= 0 means no limit (a pause still applies). */
struct rate_limiter *rate_limiter_new(int rps);
void rate_limiter_free(struct rate_limiter *rl);
int rate_limiter_rate(const struct rate_limiter *rl);

/* 0 when a request may start at now_ns (and records that start), else ns to wait. */
int64_t rate_limiter_acquire(struct rate_limiter *rl, int64_t now_ns);
/* Nothing starts before until_ns (PEMS answered 429); a later pause extends an earlier one. */
void rate_limiter_pause_until(struct rate_limiter *rl, int64_t until_ns);

/* The request recorded as starting at from_ns actually left at to_ns (> from_ns): the window
 * counts it from then. false when from_ns is no longer in the window. */
bool rate_limiter_restamp(struct rate_limiter *rl, int64_t from_ns, int64_t to_ns);

/* Recent starts (oldest first) for a hand-over; returns the count written (<= max). */
int rate_limiter_recent(const struct rate_limiter *rl, int64_t *out, int max);
/* Replaces the window with the newest `rps` of `starts` (any order). */
void rate_limiter_seed(struct rate_limiter *rl, const int64_t *starts, int n);

#endif
