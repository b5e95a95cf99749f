#include "log.h"
#include "text.h"
#include "util.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *log_prog = "pems";
static enum pems_log_level log_min = PEMS_LOG_INFO;
static const char *const level_names[] = { "debug", "info", "warn", "error" };
/* syslog priorities (sd-daemon(3)): LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR */
static const char *const level_prefix[] = { "<7>", "<6>", "<4>", "<3>" };
static bool log_journal;

bool log_stderr_is_journal(void)
{
    /* JOURNAL_STREAM is "DEVICE:INODE" of the stream systemd connected stderr to; a child
     * that inherited the variable but writes elsewhere (a pipe, a file) gets no prefix */
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) < 0)
        return false;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_init(const char *prog, enum pems_log_level level)
{
    log_prog = prog;
    log_min = level;
    log_journal = log_stderr_is_journal();
}

int log_level_parse(const char *s, enum pems_log_level *out)
{
    for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (enum pems_log_level)i;
            return 0;
        }
    }
    return -1;
}

int log_enabled(enum pems_log_level level)
{
    return level >= log_min;
}

/* The line being built; one per process (the programs log from one thread). */
struct line {
    char buf[8192];
    size_t len;
    size_t mark;   /* the end of the last whole pair: a line too long is cut back to it */
    bool full;
};

#define LINE_TRUNCATED " truncated=true"

static void put(struct line *l, const char *s, size_t n)
{
    size_t room = sizeof l->buf - sizeof LINE_TRUNCATED - 1 - l->len;   /* and the newline */
    if (n > room) {
        n = room;
        l->full = true;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void putc_(struct line *l, char c)
{
    put(l, &c, 1);
}

static bool needs_quotes(const char *s, size_t n)
{
    if (n == 0)
        return true;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c >= 0x7f)
            return true;
    }
    return false;
}

/* A logfmt value: bare when it can be, else in double quotes with \" \\ \n \r \t and \u00XX
 * for the other control characters (what logfmt parsers and Go's strconv.Unquote read). */
static void put_value(struct line *l, const char *s, size_t n)
{
    if (!needs_quotes(s, n)) {
        put(l, s, n);
        if (!l->full)
            l->mark = l->len;
        return;
    }
    putc_(l, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        switch (c) {
        case '"': put(l, "\\\"", 2); break;
        case '\\': put(l, "\\\\", 2); break;
        case '\n': put(l, "\\n", 2); break;
        case '\r': put(l, "\\r", 2); break;
        case '\t': put(l, "\\t", 2); break;
        default:
            if (c < ' ' || c == 0x7f) {
                snprintf(esc, sizeof esc, "\\u%04x", c);
                put(l, esc, 6);
            } else if (c < 0x80) {
                putc_(l, (char)c);
            } else {
                /* valid UTF-8 only, and no C1 control either (a terminal obeys those too):
                 * an invalid byte is U+FFFD, U+0080..U+009F \u0080..\u009f */
                size_t k = text_utf8_char_len((const unsigned char *)s + i, n - i);
                if (k == 0) {
                    put(l, "\xef\xbf\xbd", 3);
                } else if (k == 2 && c == 0xc2 && (unsigned char)s[i + 1] < 0xa0) {
                    snprintf(esc, sizeof esc, "\\u%04x", (unsigned char)s[i + 1]);
                    put(l, esc, 6);
                    i++;
                } else {
                    put(l, s + i, k);
                    i += k - 1;
                }
            }
        }
    }
    putc_(l, '"');
    if (!l->full)
        l->mark = l->len;
}

/* Formats the one conversion spec[0..n) (e.g. "%5.2f", "%.*s", "%lld") with its arguments
 * into out; returns the length it needed (more than outlen - 1: cut), or -1 for a spec it does
 * not know. */
static int format_one(const char *spec, size_t n, va_list *ap, char *out, size_t outlen)
{
    char f[32];
    if (n >= sizeof f)
        return -1;
    memcpy(f, spec, n);
    f[n] = '\0';
    int stars[2], nstars = 0;
    for (size_t i = 1; i + 1 < n; i++)
        if (f[i] == '*' && nstars < 2)
            stars[nstars++] = va_arg(*ap, int);
    char conv = f[n - 1];
    int lmod = 0;   /* 'h' 'l' 'L' 'q'(ll) 'j' 'z' 't' */
    if (n >= 3 && f[n - 2] == 'l' && f[n - 3] == 'l')
        lmod = 'q';
    else if (n >= 2 && strchr("hlLjzt", f[n - 2]))
        lmod = f[n - 2];
    int r;
#define FMT1(v) (nstars == 2 ? snprintf(out, outlen, f, stars[0], stars[1], v) \
                 : nstars == 1 ? snprintf(out, outlen, f, stars[0], v) : snprintf(out, outlen, f, v))
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    switch (conv) {
    case 'd': case 'i':
        if (lmod == 'q') r = FMT1(va_arg(*ap, long long));
        else if (lmod == 'l') r = FMT1(va_arg(*ap, long));
        else if (lmod == 'j') r = FMT1(va_arg(*ap, intmax_t));
        else if (lmod == 'z') r = FMT1(va_arg(*ap, ptrdiff_t));
        else if (lmod == 't') r = FMT1(va_arg(*ap, ptrdiff_t));
        else r = FMT1(va_arg(*ap, int));
        break;
    case 'u': case 'x': case 'X': case 'o':
        if (lmod == 'q') r = FMT1(va_arg(*ap, unsigned long long));
        else if (lmod == 'l') r = FMT1(va_arg(*ap, unsigned long));
        else if (lmod == 'j') r = FMT1(va_arg(*ap, uintmax_t));
        else if (lmod == 'z') r = FMT1(va_arg(*ap, size_t));
        else if (lmod == 't') r = FMT1(va_arg(*ap, size_t));
        else r = FMT1(va_arg(*ap, unsigned int));
        break;
    case 'f': case 'F': case 'g': case 'G': case 'e': case 'E': case 'a': case 'A':
        r = lmod == 'L' ? FMT1(va_arg(*ap, long double)) : FMT1(va_arg(*ap, double));
        break;
    case 'c': r = FMT1(va_arg(*ap, int)); break;
    case 's': {
        const char *s = va_arg(*ap, const char *);
        r = FMT1(s ? s : "(null)");
        break;
    }
    case 'p': r = FMT1(va_arg(*ap, void *)); break;
    default: r = -1;
    }
#pragma GCC diagnostic pop
#undef FMT1
    return r < 0 ? -1 : r;
}

/* Appends the caller's pairs. The format is printf's, read as logfmt: a conversion right
 * after "key=" is that key's value and is quoted and escaped as the value needs; a literal
 * "..." after "key=" is one value with the conversions inside it (error=\"%s\" and
 * reason=\"schedule: %s\" both work); a conversion that starts a token is a fragment of
 * pairs the program built itself (exit_describe()) and is copied as it is. */
static void put_pairs(struct line *l, const char *fmt, va_list *ap)
{
    char val[sizeof l->buf], one[sizeof l->buf];
    size_t vlen = 0;
    bool in_value = false, quoted = false;
    const char *p = fmt;
    while (*p && !l->full) {
        if (*p == '%' && p[1] == '%') {
            if (in_value) {
                if (vlen < sizeof val) val[vlen++] = '%';
            } else {
                putc_(l, '%');
            }
            p += 2;
            continue;
        }
        if (*p == '%') {
            size_t n = 1 + strspn(p + 1, "-+ #0123456789.*hlLjzt");
            if (!p[n])
                break;
            n++;
            int m = format_one(p, n, ap, one, sizeof one);
            p += n;
            if (m < 0)
                break;   /* an unknown conversion: the rest of the arguments cannot be read */
            if ((size_t)m >= sizeof one) {   /* longer than a line: cut back to a whole pair */
                l->full = true;
                break;
            }
            if (in_value) {
                size_t room = sizeof val - vlen;
                size_t k = (size_t)m < room ? (size_t)m : room;
                memcpy(val + vlen, one, k);
                vlen += k;
                if (!quoted && (*p == ' ' || !*p)) {
                    put_value(l, val, vlen);
                    in_value = false;
                }
            } else {
                put(l, one, (size_t)m);   /* a fragment of pairs */
                if (!l->full)
                    l->mark = l->len;
            }
            continue;
        }
        if (in_value) {
            if (quoted && *p == '"') {   /* the closing quote of a literal "..." value */
                put_value(l, val, vlen);
                in_value = quoted = false;
            } else if (!quoted && *p == ' ') {
                put_value(l, val, vlen);
                in_value = false;
                putc_(l, ' ');
            } else if (vlen < sizeof val) {
                val[vlen++] = *p;
            }
            p++;
            continue;
        }
        putc_(l, *p);
        if (*p == '=') {
            in_value = true;
            vlen = 0;
            if (p[1] == '"') {
                quoted = true;
                p++;
            }
        }
        p++;
    }
    if (in_value)
        put_value(l, val, vlen);
}

void log_event(enum pems_log_level level, const char *event, const char *fmt, ...)
{
    if (level < log_min)
        return;
    struct line l = { .len = 0 };
    char ts[UTIL_ISO_SIZE];
    util_iso_time(ts, util_wall_ms());
    int n = snprintf(l.buf, sizeof l.buf, "%sts=%s level=%s prog=%s pid=%d event=",
                     log_journal ? level_prefix[level] : "", ts, level_names[level], log_prog,
                     (int)getpid());
    if (n < 0)
        return;
    l.len = (size_t)n;
    put_value(&l, event, strlen(event));
    if (fmt && *fmt) {
        putc_(&l, ' ');
        va_list ap;
        va_start(ap, fmt);
        put_pairs(&l, fmt, &ap);
        va_end(ap);
    }
    if (l.full) {
        l.len = l.mark;
        memcpy(l.buf + l.len, LINE_TRUNCATED, sizeof LINE_TRUNCATED - 1);
        l.len += sizeof LINE_TRUNCATED - 1;
    }
    l.buf[l.len++] = '\n';
    /* one write() per line so concurrent processes do not interleave */
    ssize_t w = write(STDERR_FILENO, l.buf, l.len);
    (void)w;
}
