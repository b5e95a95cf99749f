#include "backoff.h"
#include "util.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#define RETRY_AFTER_CAP 86400L

int backoff_delay(int attempt, long retry_after_s)
{
    int delay = attempt <= 1 ? 5 : attempt == 2 ? 10 : 20;

    if (retry_after_s > RETRY_AFTER_CAP)
        retry_after_s = RETRY_AFTER_CAP;
    return retry_after_s > delay ? (int)retry_after_s : delay;
}

static const char *const wkday_short[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
static const char *const wkday_long[] = {
    "Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"
};
static const char *const month_short[] = {
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
};

/* Matches one of `names` exactly (case-sensitive, as RFC 9110 requires); advances *p. */
static int match_name(const char **p, const char *const *names, int n)
{
    for (int i = 0; i < n; i++) {
        size_t len = strlen(names[i]);
        if (strncmp(*p, names[i], len) == 0 && !isalpha((unsigned char)(*p)[len])) {
            *p += len;
            return i;
        }
    }
    return -1;
}

/* Exactly `width` digits (or 1..width when `exact` is false); advances *p. */
static int match_num(const char **p, int width, bool exact)
{
    int v = 0, n = 0;

    while (n < width && isdigit((unsigned char)(*p)[n])) {
        v = v * 10 + ((*p)[n] - '0');
        n++;
    }
    if (n == 0 || (exact && n != width))
        return -1;
    *p += n;
    return v;
}

static bool match_lit(const char **p, const char *lit)
{
    size_t len = strlen(lit);

    if (strncmp(*p, lit, len) != 0)
        return false;
    *p += len;
    return true;
}

/* hh:mm:ss */
static bool match_time(const char **p, int *h, int *mi, int *s)
{
    return (*h = match_num(p, 2, true)) >= 0 && match_lit(p, ":") &&
           (*mi = match_num(p, 2, true)) >= 0 && match_lit(p, ":") &&
           (*s = match_num(p, 2, true)) >= 0;
}

/* HTTP-date (RFC 9110 5.6.7): IMF-fixdate, obsolete RFC 850 and asctime forms; -1 if none. */
static int parse_http_date(const char *s, time_t now, time_t *out)
{
    int day, mon, year, h, mi, sec;
    const char *p = s;

    if (match_name(&p, wkday_short, 7) >= 0) {
        if (match_lit(&p, ", ")) {
            /* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
            if ((day = match_num(&p, 2, true)) < 0 || !match_lit(&p, " ") ||
                (mon = match_name(&p, month_short, 12)) < 0 || !match_lit(&p, " ") ||
                (year = match_num(&p, 4, true)) < 0 || !match_lit(&p, " ") ||
                !match_time(&p, &h, &mi, &sec) || !match_lit(&p, " GMT"))
                return -1;
        } else if (match_lit(&p, " ")) {
            /* asctime: Sun Nov  6 08:49:37 1994 */
            if ((mon = match_name(&p, month_short, 12)) < 0 || !match_lit(&p, " "))
                return -1;
            if (*p == ' ')
                p++;
            if ((day = match_num(&p, 2, false)) < 0 || !match_lit(&p, " ") ||
                !match_time(&p, &h, &mi, &sec) || !match_lit(&p, " ") ||
                (year = match_num(&p, 4, true)) < 0)
                return -1;
        } else {
            return -1;
        }
    } else if (match_name(&p, wkday_long, 7) >= 0) {
        /* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT; a two-digit year more than 50 years
         * ahead means the previous century */
        struct tm now_tm;
        long cur_year;
        if (!match_lit(&p, ", ") || (day = match_num(&p, 2, true)) < 0 || !match_lit(&p, "-") ||
            (mon = match_name(&p, month_short, 12)) < 0 || !match_lit(&p, "-") ||
            (year = match_num(&p, 2, true)) < 0 || !match_lit(&p, " ") ||
            !match_time(&p, &h, &mi, &sec) || !match_lit(&p, " GMT"))
            return -1;
        if (!gmtime_r(&now, &now_tm))
            return -1;
        cur_year = now_tm.tm_year + 1900L;
        year += (int)(cur_year - cur_year % 100);
        if (year > cur_year + 50)
            year -= 100;
    } else {
        return -1;
    }
    if (*p != '\0' || day < 1 || day > util_days_in_month(year, mon + 1) || h > 23 || mi > 59 ||
        sec > 60)
        return -1;
    *out = (time_t)(util_days_from_civil(year, mon + 1, day) * 86400L + h * 3600L + mi * 60L + sec);
    return 0;
}

long retry_after_parse(const char *value, time_t now)
{
    const char *start, *end;
    char buf[64];
    size_t len;
    time_t when;

    if (!value)
        return -1;
    start = value;
    while (*start == ' ' || *start == '\t')
        start++;
    end = start + strlen(start);
    while (end > start && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
        end--;
    len = (size_t)(end - start);
    if (len == 0 || len >= sizeof buf)
        return -1;
    memcpy(buf, start, len);
    buf[len] = '\0';

    if (isdigit((unsigned char)buf[0])) {
        long v = 0;
        for (const char *p = buf; *p; p++) {
            if (!isdigit((unsigned char)*p))
                return -1;
            if (v <= RETRY_AFTER_CAP)
                v = v * 10 + (*p - '0');
        }
        return v > RETRY_AFTER_CAP ? RETRY_AFTER_CAP : v;
    }
    if (parse_http_date(buf, now, &when) < 0)
        return -1;
    if (when <= now)
        return 0;
    return when - now > RETRY_AFTER_CAP ? RETRY_AFTER_CAP : (long)(when - now);
}
