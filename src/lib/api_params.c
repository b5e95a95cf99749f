#include "api_params.h"
#include "util.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

int api_json_depth(const char *buf, size_t len)
{
    int depth = 0, max = 0;
    bool in_string = false, escaped = false;
    for (size_t i = 0; i < len; i++) {
        char c = buf[i];
        if (in_string) {
            if (escaped)
                escaped = false;
            else if (c == '\\')
                escaped = true;
            else if (c == '"')
                in_string = false;
            continue;
        }
        if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max)
                max = depth;
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return max;
}

bool api_utf8_valid(const char *buf, size_t len)
{
    const unsigned char *s = (const unsigned char *)buf;
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t n;
        unsigned int cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + n >= len)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += n + 1;
    }
    return true;
}

bool api_content_type_is_json(const char *ct)
{
    if (!ct)
        return false;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    static const char mime[] = "application/json";
    if (strncasecmp(ct, mime, sizeof mime - 1) != 0)
        return false;
    const char *rest = ct + sizeof mime - 1;
    while (*rest == ' ' || *rest == '\t')
        rest++;
    if (*rest == '\0')
        return true;
    if (*rest != ';')
        return false;
    /* only a utf-8 charset (or no charset) is acceptable for a JSON body */
    const char *cs = strcasestr(rest, "charset=");
    if (!cs)
        return true;
    cs += 8;
    if (*cs == '"')
        cs++;
    return strncasecmp(cs, "utf-8", 5) == 0 || strncasecmp(cs, "utf8", 4) == 0;
}

static bool real_date(int y, int m, int d)
{
    return y >= 1 && m >= 1 && m <= 12 && d >= 1 && d <= util_days_in_month(y, m);
}

bool api_iso_datetime_parse(const char *s, bool *date_only, long long *epoch_ms)
{
    int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0, off_min = 0;
    if (!s || strlen(s) < 10 || !util_digits(s, 4, &y) || s[4] != '-' || !util_digits(s + 5, 2, &mo) ||
        s[7] != '-' || !util_digits(s + 8, 2, &d) || !real_date(y, mo, d))
        return false;
    if (date_only)
        *date_only = s[10] == '\0';
    const char *p = s + 10;
    if (*p != '\0') {
        if (*p != 'T' && *p != 't' && *p != ' ')
            return false;
        p++;
        if (!util_digits(p, 2, &h) || p[2] != ':' || !util_digits(p + 3, 2, &mi) || h > 23 || mi > 59)
            return false;
        p += 5;
        if (*p == ':') {
            if (!util_digits(p + 1, 2, &sec) || sec > 59)
                return false;
            p += 3;
            if (*p == '.') {
                p++;
                int nd = 0, scale = 100;
                while (isdigit((unsigned char)*p) && nd < 9) {
                    if (nd < 3) {
                        ms += (*p - '0') * scale;
                        scale /= 10;
                    }
                    p++;
                    nd++;
                }
                if (nd == 0)
                    return false;
            }
        }
        /* no zone: UTC (every database session runs in UTC) */
        if (*p == 'Z' || *p == 'z') {
            if (p[1] != '\0')
                return false;
        } else if (*p == '+' || *p == '-') {
            int oh, om;
            if (!util_digits(p + 1, 2, &oh) || p[3] != ':' || !util_digits(p + 4, 2, &om) || oh > 14 ||
                om > 59 || p[6] != '\0')
                return false;
            off_min = (*p == '+' ? 1 : -1) * (oh * 60 + om);
        } else if (*p != '\0') {
            return false;
        }
    }
    if (epoch_ms) {
        struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
                         .tm_hour = h, .tm_min = mi, .tm_sec = sec };
        *epoch_ms = ((long long)timegm(&tm) - off_min * 60LL) * 1000 + ms;
    }
    return true;
}

bool api_iso_datetime_valid(const char *s, bool *date_only)
{
    return api_iso_datetime_parse(s, date_only, NULL);
}

/* decodes src[0..len) into dst (NUL-terminated); returns bytes written or -1 */
static int url_decode(const char *src, size_t len, char *dst, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = src[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            if (i + 2 >= len)
                return -1;
            int a = util_hex_digit(src[i + 1]), b = util_hex_digit(src[i + 2]);
            if (a < 0 || b < 0)
                return -1;
            c = (char)(a * 16 + b);
            if (c == '\0')
                return -1;
            i += 2;
        }
        if (o + 1 >= cap)
            return -1;
        dst[o++] = c;
    }
    dst[o] = '\0';
    return (int)o;
}

int api_query_parse(const char *qs, struct query_params *q)
{
    q->n = 0;
    if (!qs)
        return 0;
    size_t used = 0;
    const char *p = qs;
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t seglen = amp ? (size_t)(amp - p) : strlen(p);
        if (seglen > 0) {
            if (q->n >= API_MAX_QUERY_PARAMS)
                return -1;
            const char *eq = memchr(p, '=', seglen);
            size_t nlen = eq ? (size_t)(eq - p) : seglen;
            int w = url_decode(p, nlen, q->buf + used, sizeof q->buf - used);
            if (w < 0 || !api_utf8_valid(q->buf + used, (size_t)w))
                return -1;
            q->name[q->n] = q->buf + used;
            used += (size_t)w + 1;
            const char *v = eq ? eq + 1 : p + seglen;
            size_t vlen = eq ? seglen - nlen - 1 : 0;
            w = url_decode(v, vlen, q->buf + used, sizeof q->buf - used);
            if (w < 0 || !api_utf8_valid(q->buf + used, (size_t)w))
                return -1;
            q->value[q->n] = q->buf + used;
            used += (size_t)w + 1;
            q->n++;
        }
        if (!amp)
            break;
        p = amp + 1;
    }
    return 0;
}

const char *api_query_get(const struct query_params *q, const char *name)
{
    for (size_t i = 0; i < q->n; i++)
        if (strcmp(q->name[i], name) == 0)
            return q->value[i];
    return NULL;
}

void api_detail_add(json_t *details, const char *field, const char *message)
{
    json_array_append_new(details, json_pack("{s:s, s:s}", "field", field, "message", message));
}

static bool enum_has(const char *const *enums, const char *v)
{
    for (size_t i = 0; enums && enums[i]; i++)
        if (strcmp(enums[i], v) == 0)
            return true;
    return false;
}

static void enum_message(char *buf, size_t len, const char *const *enums)
{
    int n = snprintf(buf, len, "must be one of:");
    for (size_t i = 0; enums && enums[i] && n > 0 && (size_t)n < len; i++)
        n += snprintf(buf + n, len - (size_t)n, "%s %s", i ? "," : "", enums[i]);
}

static const struct api_field *field_find(const struct api_field *fields, size_t n,
                                          const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(fields[i].name, name) == 0)
            return &fields[i];
    return NULL;
}

/* checks one string value of a query parameter; returns false with msg set */
static bool query_value_ok(const struct api_field *f, const char *v, char *msg, size_t len)
{
    long l;
    switch (f->type) {
    case AF_UUID:
        snprintf(msg, len, "must be a uuid");
        return util_is_uuid(v);
    case AF_STRING:
        snprintf(msg, len, "must be a non-empty string of at most %ld characters", f->max);
        return *v && (long)strlen(v) <= f->max;
    case AF_INT:
        snprintf(msg, len, "must be an integer between %ld and %ld", f->min, f->max);
        return util_parse_long(v, f->min, f->max, &l);
    case AF_ENUM:
        enum_message(msg, len, f->enums);
        return enum_has(f->enums, v);
    case AF_DATETIME:
        snprintf(msg, len, "must be an ISO 8601 date (YYYY-MM-DD) or date-time");
        return api_iso_datetime_valid(v, NULL);
    default:
        snprintf(msg, len, "is not supported here");
        return false;
    }
}

int api_check_query(const struct query_params *q, const struct api_field *fields, size_t n,
                    json_t *details)
{
    int added = 0;
    char msg[160];
    for (size_t i = 0; i < q->n; i++) {
        const char *name = q->name[i];
        bool repeated = false, first = true;
        for (size_t k = 0; k < q->n; k++) {
            if (k != i && strcmp(q->name[k], name) == 0) {
                repeated = true;
                if (k < i)
                    first = false;
            }
        }
        if (!first)
            continue;
        const struct api_field *f = field_find(fields, n, name);
        if (!f) {
            api_detail_add(details, name, "unknown query parameter");
            added++;
        } else if (repeated) {
            api_detail_add(details, name, "must be given at most once");
            added++;
        } else if (!query_value_ok(f, q->value[i], msg, sizeof msg)) {
            api_detail_add(details, name, msg);
            added++;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (fields[i].required && !api_query_get(q, fields[i].name)) {
            api_detail_add(details, fields[i].name, "is required");
            added++;
        }
    }
    return added;
}

static bool body_value_ok(const struct api_field *f, const json_t *v, char *msg, size_t len)
{
    switch (f->type) {
    case AF_UUID:
        snprintf(msg, len, "must be a uuid string");
        return json_is_string(v) && util_is_uuid(json_string_value(v));
    case AF_STRING: {
        snprintf(msg, len, "must be a non-empty string of at most %ld characters", f->max);
        if (!json_is_string(v))
            return false;
        size_t l = json_string_length(v);
        return l > 0 && (long)l <= f->max;
    }
    case AF_INT:
        snprintf(msg, len, "must be an integer between %ld and %ld", f->min, f->max);
        return json_is_integer(v) && json_integer_value(v) >= f->min &&
               json_integer_value(v) <= f->max;
    case AF_ENUM:
        enum_message(msg, len, f->enums);
        return json_is_string(v) && enum_has(f->enums, json_string_value(v));
    case AF_OBJECT:
        snprintf(msg, len, "must be an object");
        return json_is_object(v);
    case AF_UUID_ARRAY: {
        snprintf(msg, len, "must be a non-empty array of at most %ld uuid strings", f->max);
        if (!json_is_array(v) || json_array_size(v) == 0 || (long)json_array_size(v) > f->max)
            return false;
        size_t i;
        const json_t *e;
        json_array_foreach(v, i, e) {
            if (!json_is_string(e) || !util_is_uuid(json_string_value(e))) {
                snprintf(msg, len, "element %zu must be a uuid string", i);
                return false;
            }
        }
        return true;
    }
    default:
        snprintf(msg, len, "is not supported here");
        return false;
    }
}

int api_check_body(const json_t *body, const struct api_field *fields, size_t n,
                   json_t *details)
{
    int added = 0;
    char msg[160];
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)body, key, v) {
        const struct api_field *f = field_find(fields, n, key);
        if (!f) {
            api_detail_add(details, key, "unknown field");
            added++;
        } else if (json_is_null(v) && (f->required || f->type == AF_OBJECT)) {
            /* a required null is reported as missing below; a null object is an absent one */
            continue;
        } else if (!body_value_ok(f, v, msg, sizeof msg)) {
            api_detail_add(details, key, msg);
            added++;
        }
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *val = json_object_get(body, fields[i].name);
        if (fields[i].required && (!val || json_is_null(val))) {
            api_detail_add(details, fields[i].name, "is required");
            added++;
        }
    }
    return added;
}

/* RFC 9110 If-None-Match: "*" or a list of entity tags, compared weakly (nginx may send a
 * compressed body's tag as W/"..."). */
bool api_etag_matches(const char *if_none_match, const char *etag)
{
    if (!if_none_match || !etag)
        return false;
    if (etag[0] == 'W' && etag[1] == '/')
        etag += 2;
    size_t elen = strlen(etag);
    const char *p = if_none_match;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p)
            return false;
        if (*p == '*')
            return true;
        if (p[0] == 'W' && p[1] == '/')
            p += 2;
        if (*p != '"')
            return false;
        const char *end = strchr(p + 1, '"');
        if (!end)
            return false;
        if ((size_t)(end + 1 - p) == elen && memcmp(p, etag, elen) == 0)
            return true;
        p = end + 1;
    }
}

void api_etag_of(const char *body, size_t len, char out[API_ETAG_SIZE])
{
    /* FNV-1a, 64 bits: a page's tag only has to change when its bytes do */
    unsigned long long h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)body[i];
        h *= 1099511628211ULL;
    }
    snprintf(out, API_ETAG_SIZE, "\"%016llx%08zx\"", h, len & 0xffffffffu);
}

static const char b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

bool api_cursor_encode(const char *pfa_id, char *out, size_t cap)
{
    size_t n = strlen(pfa_id), o = 0;
    if ((n + 2) / 3 * 4 + 1 > cap)
        return false;
    const unsigned char *s = (const unsigned char *)pfa_id;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)s[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)s[i + 1] << 8;
        if (i + 2 < n)
            v |= s[i + 2];
        out[o++] = b64url[v >> 18 & 63];
        out[o++] = b64url[v >> 12 & 63];
        if (i + 1 < n)
            out[o++] = b64url[v >> 6 & 63];
        if (i + 2 < n)
            out[o++] = b64url[v & 63];
    }
    out[o] = '\0';
    return true;
}

static int b64url_value(char c)
{
    const char *p = c ? strchr(b64url, c) : NULL;
    return p ? (int)(p - b64url) : -1;
}

bool api_cursor_decode(const char *cursor, char *out, size_t cap)
{
    size_t n = strlen(cursor), o = 0;
    if (n == 0 || n % 4 == 1)
        return false;
    unsigned v = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int d = b64url_value(cursor[i]);
        if (d < 0)
            return false;
        v = (v << 6 | (unsigned)d) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            unsigned char c = (unsigned char)(v >> bits & 0xff);
            if (c == 0 || o + 1 >= cap)
                return false;
            out[o++] = (char)c;
        }
    }
    /* the bits left over are padding: zero in a cursor this API made */
    if (v & ((1u << bits) - 1))
        return false;
    out[o] = '\0';
    return api_utf8_valid(out, o);
}

bool api_idempotency_key_valid(const char *key)
{
    if (!key)
        return false;
    size_t n = 0;
    for (; key[n]; n++)
        if ((unsigned char)key[n] < 0x21 || (unsigned char)key[n] > 0x7e)
            return false;
    return n >= 1 && n <= 255;
}

bool api_request_hash(const char *method, const char *path, const char *body, size_t len,
                      char out[API_REQUEST_HASH_SIZE])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    bool ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) &&
              EVP_DigestUpdate(c, method, strlen(method)) && EVP_DigestUpdate(c, "\n", 1) &&
              EVP_DigestUpdate(c, path, strlen(path)) && EVP_DigestUpdate(c, "\n", 1) &&
              (len == 0 || EVP_DigestUpdate(c, body, len)) &&
              EVP_DigestFinal_ex(c, md, &mdlen) && mdlen == 32;
    EVP_MD_CTX_free(c);
    if (ok)
        util_hex_encode(md, 32, out);
    return ok;
}
