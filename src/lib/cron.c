#include "cron.h"
#include "util.h"

#include <ctype.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ZONEINFO_DIR "/usr/share/zoneinfo"
#define SEARCH_YEARS 5

struct cron_expr {
    uint64_t minute;   /* bit n = minute n */
    uint32_t hour;
    uint32_t dom;      /* bits 1..31 */
    uint32_t month;    /* bits 1..12 */
    uint32_t dow;      /* bits 0..6, Sunday = 0 */
    /* Vixie's *_STAR flags: the field text starts with '*' */
    bool minute_star, hour_star, dom_star, dow_star;
};

struct field_spec {
    const char *name;
    int min, max;
    const char *const *names;   /* names[i] stands for value min + i */
    int n_names;
};

static const char *const month_names[] = {
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"
};
static const char *const dow_names[] = { "SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT" };

static const struct field_spec fields[5] = {
    { "minute", 0, 59, NULL, 0 },
    { "hour", 0, 23, NULL, 0 },
    { "day-of-month", 1, 31, NULL, 0 },
    { "month", 1, 12, month_names, 12 },
    { "day-of-week", 0, 7, dow_names, 7 },
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!err || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* A number or (where the field has them) a three-letter name; advances *p. */
static int parse_value(const char **p, const struct field_spec *fs, int *out,
                       char *err, size_t errlen)
{
    const char *s = *p;

    if (isdigit((unsigned char)*s)) {
        long v = 0;
        while (isdigit((unsigned char)*s)) {
            v = v * 10 + (*s - '0');
            if (v > 1000) {
                set_err(err, errlen, "%s: number too large", fs->name);
                return -1;
            }
            s++;
        }
        if (v < fs->min || v > fs->max) {
            set_err(err, errlen, "%s: %ld out of range %d-%d", fs->name, v, fs->min, fs->max);
            return -1;
        }
        *out = (int)v;
        *p = s;
        return 0;
    }
    if (isalpha((unsigned char)*s) && fs->names) {
        size_t len = 0;
        while (isalpha((unsigned char)s[len]))
            len++;
        for (int i = 0; len == 3 && i < fs->n_names; i++) {
            if (strncasecmp(s, fs->names[i], 3) == 0) {
                *out = fs->min + i;
                *p = s + len;
                return 0;
            }
        }
        set_err(err, errlen, "%s: unknown name '%.*s'", fs->name, (int)len, s);
        return -1;
    }
    if (*s == '\0' || *s == ',' || *s == '-' || *s == '/')
        set_err(err, errlen, "%s: missing value", fs->name);
    else
        set_err(err, errlen, "%s: unexpected character '%c'", fs->name, *s);
    return -1;
}

/* One item of a list: *, N, N-M, each optionally /STEP ("N/STEP" means N-max/STEP). */
static int parse_item(const char *s, const char *end, const struct field_spec *fs,
                      uint64_t *bits, char *err, size_t errlen)
{
    int lo, hi, step = 1;
    bool single = false;

    if (s == end) {
        set_err(err, errlen, "%s: empty list item", fs->name);
        return -1;
    }
    if (*s == '*') {
        lo = fs->min;
        hi = fs->max;
        s++;
    } else {
        if (parse_value(&s, fs, &lo, err, errlen) < 0)
            return -1;
        if (s < end && *s == '-') {
            s++;
            if (parse_value(&s, fs, &hi, err, errlen) < 0)
                return -1;
            if (hi < lo) {
                set_err(err, errlen, "%s: range %d-%d is backwards", fs->name, lo, hi);
                return -1;
            }
        } else {
            hi = lo;
            single = true;
        }
    }
    if (s < end && *s == '/') {
        long v = 0;
        const char *digits = ++s;
        while (s < end && isdigit((unsigned char)*s) && v <= 1000)
            v = v * 10 + (*s++ - '0');
        if (s == digits || s != end || v < 1 || v > fs->max) {
            set_err(err, errlen, "%s: bad step '%.*s'", fs->name, (int)(end - digits), digits);
            return -1;
        }
        step = (int)v;
        if (single)
            hi = fs->max;
    }
    if (s != end) {
        set_err(err, errlen, "%s: unexpected '%.*s'", fs->name, (int)(end - s), s);
        return -1;
    }
    for (int v = lo; v <= hi; v += step)
        *bits |= (uint64_t)1 << (fs == &fields[4] && v == 7 ? 0 : v);
    return 0;
}

static int parse_field(const char *text, const struct field_spec *fs, uint64_t *bits,
                       bool *star, char *err, size_t errlen)
{
    const char *s = text;

    *bits = 0;
    *star = text[0] == '*';
    for (;;) {
        const char *comma = strchr(s, ',');
        const char *end = comma ? comma : s + strlen(s);
        if (parse_item(s, end, fs, bits, err, errlen) < 0)
            return -1;
        if (!comma)
            break;
        s = comma + 1;
    }
    return 0;
}

struct cron_expr *cron_parse(const char *expr, char *err, size_t errlen)
{
    struct cron_expr *ce = NULL;
    char *copy = NULL, *save = NULL, *tok;
    char *parts[5];
    uint64_t bits[5];
    bool stars[5];
    int n = 0;

    set_err(err, errlen, "%s", "");
    if (!expr) {
        set_err(err, errlen, "empty expression");
        return NULL;
    }
    copy = strdup(expr);
    if (!copy) {
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    for (tok = strtok_r(copy, " \t\r\n", &save); tok; tok = strtok_r(NULL, " \t\r\n", &save)) {
        if (n < 5)
            parts[n] = tok;
        n++;
    }
    if (n == 0) {
        set_err(err, errlen, "empty expression");
        goto cleanup;
    }
    if (n != 5) {
        set_err(err, errlen, "expected 5 fields (minute hour day-of-month month day-of-week), got %d", n);
        goto cleanup;
    }
    for (int i = 0; i < 5; i++)
        if (parse_field(parts[i], &fields[i], &bits[i], &stars[i], err, errlen) < 0)
            goto cleanup;

    ce = calloc(1, sizeof *ce);
    if (!ce) {
        set_err(err, errlen, "out of memory");
        goto cleanup;
    }
    ce->minute = bits[0];
    ce->hour = (uint32_t)bits[1];
    ce->dom = (uint32_t)bits[2];
    ce->month = (uint32_t)bits[3];
    ce->dow = (uint32_t)bits[4];
    ce->minute_star = stars[0];
    ce->hour_star = stars[1];
    ce->dom_star = stars[2];
    ce->dow_star = stars[4];
cleanup:
    free(copy);
    return ce;
}

void cron_free(struct cron_expr *ce)
{
    free(ce);
}

static bool day_matches(const struct cron_expr *ce, long y, int m, int d)
{
    long days = util_days_from_civil(y, m, d);
    int dow = (int)(((days % 7) + 7 + 4) % 7);   /* 1970-01-01 was a Thursday */
    bool dom_ok = ce->dom & (1u << d);
    bool dow_ok = ce->dow & (1u << dow);

    /* Vixie: when both fields are restricted, either one matching is enough */
    if (ce->dom_star || ce->dow_star)
        return dom_ok && dow_ok;
    return dom_ok || dow_ok;
}

/* UTC offset (seconds east) of the zone currently in TZ at instant t. */
static long gmtoff(time_t t)
{
    struct tm tm;

    if (!localtime_r(&t, &tm))
        return 0;
    return tm.tm_gmtoff;
}

/* The instants (0, 1 or 2, ascending) at which local wall-clock time `wall` (seconds since the
 * epoch as if the zone were UTC) occurs. With none (a spring-forward gap), *jump is the first
 * instant after the clocks jumped. */
static int resolve_wall(time_t wall, time_t out[2], time_t *jump)
{
    long offs[3] = { gmtoff(wall - 86400), gmtoff(wall), gmtoff(wall + 86400) };
    long max_off = offs[0], min_off = offs[0];
    int n = 0;

    *jump = (time_t)-1;
    for (int i = 0; i < 3; i++) {
        time_t t = wall - offs[i];
        bool seen = false;
        if (offs[i] > max_off)
            max_off = offs[i];
        if (offs[i] < min_off)
            min_off = offs[i];
        for (int j = 0; j < n; j++)
            seen = seen || out[j] == t;
        if (!seen && n < 2 && gmtoff(t) == offs[i])
            out[n++] = t;
    }
    if (n == 2 && out[1] < out[0]) {
        time_t tmp = out[0];
        out[0] = out[1];
        out[1] = tmp;
    }
    if (n == 0 && max_off != min_off) {
        time_t lo = wall - max_off, hi = wall - min_off;
        long off_lo = gmtoff(lo);
        if (gmtoff(hi) != off_lo) {
            while (hi - lo > 1) {
                time_t mid = lo + (hi - lo) / 2;
                if (gmtoff(mid) == off_lo)
                    lo = mid;
                else
                    hi = mid;
            }
            *jump = hi % 60 == 0 ? hi : hi + (60 - hi % 60);
        }
    }
    return n;
}

static void consider(time_t t, time_t after, time_t *best)
{
    if (t > after && (*best == (time_t)-1 || t < *best))
        *best = t;
}

/* The first fire time after `after` on local date y-m-d (already known to match), or -1. */
static time_t next_in_day(const struct cron_expr *ce, long y, int m, int d, time_t after)
{
    time_t w0 = (time_t)util_days_from_civil(y, m, d) * 86400;
    long off = gmtoff(w0 - 86400);
    bool fixed = !ce->minute_star && !ce->hour_star;
    time_t best = (time_t)-1;

    if (off == gmtoff(w0 + 2 * 86400)) {
        /* no transition near this day: wall time maps 1:1 and in order onto instants */
        for (int h = 0; h < 24; h++) {
            if (!(ce->hour & (1u << h)))
                continue;
            time_t hour_start = w0 + h * 3600 - off;
            if (hour_start + 59 * 60 <= after)
                continue;
            for (int mi = 0; mi < 60; mi++)
                if ((ce->minute & ((uint64_t)1 << mi)) && hour_start + mi * 60 > after)
                    return hour_start + mi * 60;
        }
        return (time_t)-1;
    }

    for (int h = 0; h < 24; h++) {
        if (!(ce->hour & (1u << h)))
            continue;
        for (int mi = 0; mi < 60; mi++) {
            time_t inst[2], jump;
            int n;
            if (!(ce->minute & ((uint64_t)1 << mi)))
                continue;
            n = resolve_wall(w0 + h * 3600 + mi * 60, inst, &jump);
            if (n == 0) {
                if (fixed && jump != (time_t)-1)
                    consider(jump, after, &best);
                continue;
            }
            consider(inst[0], after, &best);
            if (n == 2 && !fixed)
                consider(inst[1], after, &best);
        }
    }
    return best;
}

static time_t next_in_zone(const struct cron_expr *ce, time_t after)
{
    struct tm lt;
    long y, end_year;
    int m, d;

    if (!localtime_r(&after, &lt))
        return (time_t)-1;
    y = lt.tm_year + 1900L;
    m = lt.tm_mon + 1;
    d = lt.tm_mday;
    end_year = y + SEARCH_YEARS;
    while (y <= end_year) {
        if (!(ce->month & (1u << m)) || d > util_days_in_month(y, m)) {
            d = 1;
            if (++m > 12) {
                m = 1;
                y++;
            }
            continue;
        }
        if (day_matches(ce, y, m, d)) {
            time_t t = next_in_day(ce, y, m, d, after);
            if (t != (time_t)-1)
                return t;
        }
        d++;
    }
    return (time_t)-1;
}

/* A zone name from the system tz database: no absolute or parent paths, and a TZif file. */
bool cron_zone_valid(const char *tz)
{
    char path[512], magic[4];
    struct stat st;
    int fd;
    bool ok;

    if (!tz || !*tz || tz[0] == '/' || strstr(tz, "..") || strlen(tz) > 200)
        return false;
    for (const char *p = tz; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("/_+-", *p))
            return false;
    snprintf(path, sizeof path, "%s/%s", ZONEINFO_DIR, tz);
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return false;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ok = read(fd, magic, 4) == 4 && memcmp(magic, "TZif", 4) == 0;
    close(fd);
    return ok;
}

static pthread_mutex_t tz_lock = PTHREAD_MUTEX_INITIALIZER;

/*
 * Fire times are computed in the IANA zone `tz` (switched in through TZ + tzset under a lock,
 * then restored; other threads calling localtime meanwhile would see `tz`). Around daylight
 * saving transitions this follows Vixie cron, where a job is "fixed-time" when neither its
 * minute nor its hour field starts with '*', and "wildcard" otherwise:
 *  - spring forward (a wall-clock time that does not exist that day): a fixed-time job whose
 *    time falls in the gap fires once, at the first minute after the jump ("30 2 * * *" in
 *    America/New_York on 2026-03-08 fires at 03:00 EDT); wildcard jobs just skip the
 *    missing minutes;
 *  - fall back (a wall-clock hour that occurs twice): a fixed-time job fires once, at the
 *    first occurrence; a wildcard job fires on every real minute that matches, in both
 *    occurrences (both 01:00 EDT and 01:00 EST for "0,15,30,45 * * * *").
 * Non-matching months and days are skipped whole, so a search over years stays cheap.
 */
time_t cron_next(const struct cron_expr *ce, time_t after, const char *tz)
{
    char *saved = NULL, *tzval = NULL;
    const char *old;
    time_t t = (time_t)-1;

    if (!ce || !cron_zone_valid(tz))
        return (time_t)-1;
    if (asprintf(&tzval, ":%s", tz) < 0)
        return (time_t)-1;

    pthread_mutex_lock(&tz_lock);
    old = getenv("TZ");
    if (old && !(saved = strdup(old)))
        goto unlock;
    if (setenv("TZ", tzval, 1) != 0)
        goto unlock;
    tzset();
    t = next_in_zone(ce, after);
    if (saved)
        setenv("TZ", saved, 1);
    else
        unsetenv("TZ");
    tzset();
unlock:
    pthread_mutex_unlock(&tz_lock);
    free(saved);
    free(tzval);
    return t;
}

long cron_period(const struct cron_expr *ce, time_t now, const char *tz)
{
    time_t a = ce ? cron_next(ce, now, tz) : (time_t)-1;
    time_t b = a == (time_t)-1 ? a : cron_next(ce, a, tz);
    return a != (time_t)-1 && b != (time_t)-1 && b > a ? (long)(b - a) : 60;
}

time_t cron_next_run(const struct cron_expr *ce, time_t now, const char *tz)
{
    time_t t = ce ? cron_next(ce, now, tz) : (time_t)-1;
    return t == (time_t)-1 || t <= now ? now - now % 60 + 60 : t;
}
