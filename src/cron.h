#ifndef PEMS_CRON_H
#define PEMS_CRON_H

#include <stddef.h>
#include <time.h>

/* 5-field cron expressions (minute hour day-of-month month day-of-week) with lists, ranges,
 * steps and month/day names, evaluated in a named IANA time zone from the system tz database. */
struct cron_expr;

struct cron_expr *cron_parse(const char *expr, char *err, size_t errlen);
void cron_free(struct cron_expr *ce);

/* First fire time strictly after `after`, or (time_t)-1 when none in the next 5 years or
 * the zone is unknown. */
time_t cron_next(const struct cron_expr *ce, time_t after, const char *tz);

#endif
