#ifndef PEMS_CRON_H
#define PEMS_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* 5-field cron expressions (minute hour day-of-month month day-of-week) with lists, ranges,
 * steps and month/day names, evaluated in a named IANA time zone from the system tz database. */
struct cron_expr;

/* NULL on a syntax error, with a message naming the field in err (err may be NULL).
 * Vixie rules: day-of-week 0 and 7 are Sunday; when both day-of-month and day-of-week are
 * restricted (neither starts with '*'), a day matching either one fires. */
struct cron_expr *cron_parse(const char *expr, char *err, size_t errlen);
void cron_free(struct cron_expr *ce);

/* First fire time strictly after `after`, or (time_t)-1 when none in the next 5 years or
 * the zone is unknown. DST as Vixie cron: a fixed time skipped by spring-forward fires at the
 * first minute after the jump; in a repeated hour fixed times fire once, wildcard-hour/minute
 * jobs on every real minute (see cron.c). Swaps TZ under a lock: not for threads that call
 * localtime concurrently. */
/* true when tz names a zone of the system tz database (a TZif file under /usr/share/zoneinfo,
 * no absolute or parent paths) */
bool cron_zone_valid(const char *tz);

time_t cron_next(const struct cron_expr *ce, time_t after, const char *tz);

/* The schedule's period: seconds between its next two fire times after now; 60 when ce is
 * NULL or it fires fewer than twice in the next 5 years. */
long cron_period(const struct cron_expr *ce, time_t now, const char *tz);

/* The next scheduled run after now: cron_next, or the next whole minute when ce is NULL or
 * has no fire time. */
time_t cron_next_run(const struct cron_expr *ce, time_t now, const char *tz);

#endif
