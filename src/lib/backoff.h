#ifndef PEMS_BACKOFF_H
#define PEMS_BACKOFF_H

#include <time.h>

/* Seconds to wait after failed attempt `attempt` (1-based): 5, 10, 20, 20...;
 * retry_after_s (or -1 when PEMS sent none) wins when longer. */
int backoff_delay(int attempt, long retry_after_s);

/* Retry-After header value, delta-seconds or HTTP-date; seconds from now (>= 0), or -1. */
long retry_after_parse(const char *value, time_t now);

#endif
