#include "pems_record.h"
#include "text.h"
#include "util.h"
#include "validation.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CURSOR_MAX 1024

const char *pems_reject_name(enum pems_reject r)
{
    switch (r) {
    case PEMS_REJECT_NONE: return "none";
    case PEMS_REJECT_INVALID: return "invalid";
    case PEMS_REJECT_TOO_LARGE: return "record_too_large";
    }
    return "invalid";
}

int pems_version_parse(const json_t *v, int64_t *out)
{
    _Static_assert(sizeof(json_int_t) >= sizeof(int64_t), "json_int_t holds a version");
    if (!json_is_integer(v))
        return -1;
    json_int_t n = json_integer_value(v);
    if (n < 0 || n > PEMS_VERSION_MAX)
        return -1;
    *out = (int64_t)n;
    return 0;
}

/* Does the integer token s[0..n) (optional '-', digits) fit json_int_t? */
static bool int_token_fits(const char *s, size_t n)
{
    static const char max[] = "9223372036854775807";
    bool neg = n > 0 && s[0] == '-';
    if (neg) {
        s++;
        n--;
    }
    while (n > 1 && s[0] == '0') {
        s++;
        n--;
    }
    if (n != sizeof max - 1)
        return n < sizeof max - 1;
    int c = memcmp(s, max, n);
    /* -9223372036854775808 fits too */
    return c <= 0 || (neg && memcmp(s, "9223372036854775808", n) == 0);
}

static size_t digits(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++;
    return i;
}

json_t *pems_json_loadb(const char *buf, size_t len)
{
    json_error_t err;
    json_t *j = json_loadb(buf, len, 0, &err);
    if (j || json_error_code(&err) != json_error_numeric_overflow)
        return j;
    /* every integer token outside strings that does not fit gets a ".0": the same JSON
     * number, now a real (jansson reads reals up to DBL_MAX) */
    char *copy = malloc(len + len / 2 + 1);
    if (!copy)
        return NULL;
    size_t o = 0;
    bool in_str = false;
    for (size_t i = 0; i < len;) {
        char ch = buf[i];
        if (in_str) {
            copy[o++] = buf[i++];
            if (ch == '\\' && i < len)
                copy[o++] = buf[i++];
            else if (ch == '"')
                in_str = false;
            continue;
        }
        if (ch == '"') {
            in_str = true;
            copy[o++] = buf[i++];
            continue;
        }
        if (ch != '-' && (ch < '0' || ch > '9')) {
            copy[o++] = buf[i++];
            continue;
        }
        size_t start = i;
        bool integer = true;
        if (buf[i] == '-')
            i++;
        i += digits(buf + i, len - i);
        if (i < len && buf[i] == '.') {
            integer = false;
            i++;
            i += digits(buf + i, len - i);
        }
        if (i < len && (buf[i] == 'e' || buf[i] == 'E')) {
            integer = false;
            i++;
            if (i < len && (buf[i] == '+' || buf[i] == '-'))
                i++;
            i += digits(buf + i, len - i);
        }
        memcpy(copy + o, buf + start, i - start);
        o += i - start;
        if (integer && !int_token_fits(buf + start, i - start)) {
            memcpy(copy + o, ".0", 2);
            o += 2;
        }
    }
    j = json_loadb(copy, o, 0, NULL);
    free(copy);
    return j;
}

int pems_timestamp_parse(const char *s, size_t len, int64_t *ms)
{
    int y, mo, d, h, mi, sec = 0, frac_ms = 0, oh = 0, om = 0;
    size_t i;

    if (!s || len < 16 || !util_digits(s, 4, &y) || s[4] != '-' || !util_digits(s + 5, 2, &mo) ||
        s[7] != '-' || !util_digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') ||
        !util_digits(s + 11, 2, &h) || s[13] != ':' || !util_digits(s + 14, 2, &mi))
        return -1;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > util_days_in_month(y, mo) || h > 23 ||
        mi > 59)
        return -1;
    i = 16;
    if (i < len && s[i] == ':') {
        if (len < i + 3 || !util_digits(s + i + 1, 2, &sec) || sec > 60)
            return -1;
        i += 3;
        if (i < len && s[i] == '.') {
            size_t n = 0;
            i++;
            while (i < len && s[i] >= '0' && s[i] <= '9') {
                if (n < 3)
                    frac_ms = frac_ms * 10 + (s[i] - '0');
                n++;
                i++;
            }
            if (n == 0 || n > 9)
                return -1;
            for (; n < 3; n++)
                frac_ms *= 10;
        }
    }
    if (i == len)
        return -1;   /* no zone: not an instant */
    if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == len) {
        /* UTC */
    } else if (s[i] == '+' || s[i] == '-') {
        int sign = s[i] == '-' ? -1 : 1;
        i++;
        if (len < i + 2 || !util_digits(s + i, 2, &oh) || oh > 23)
            return -1;
        i += 2;
        if (i < len && s[i] == ':')
            i++;
        if (len != i + 2 || !util_digits(s + i, 2, &om) || om > 59)
            return -1;
        oh *= sign;
        om *= sign;
    } else {
        return -1;
    }
    int64_t days = util_days_from_civil(y, mo, d);
    int64_t secs = days * 86400 + (int64_t)h * 3600 + (int64_t)mi * 60 + sec -
                   (int64_t)oh * 3600 - (int64_t)om * 60;
    if (secs < 0)
        return -1;
    *ms = secs * 1000 + frac_ms;
    return 0;
}

void pems_timestamp_format(int64_t ms, char *out, size_t outlen)
{
    char iso[UTIL_ISO_SIZE];
    util_iso_time(iso, ms < 0 ? 0 : ms);
    snprintf(out, outlen, "%s", iso);
}

void pems_record_clear(struct pems_record *r)
{
    json_decref(r->data);
    memset(r, 0, sizeof *r);
    r->updated_at_ms = r->untrusted_updated_at_ms = -1;
}

/* field names and messages may quote what PEMS sent: valid UTF-8, cut at a character */
static enum pems_reject reject(char *why, size_t whylen, const char *msg, const char *field)
{
    char text[1024];
    int k = field ? snprintf(text, sizeof text, "%s: %s", field, msg ? msg : "invalid")
                  : snprintf(text, sizeof text, "%s", msg ? msg : "invalid");
    if (whylen)
        text_utf8_clip(text, k > 0 ? strnlen(text, sizeof text) : 0, why, whylen);
    return PEMS_REJECT_INVALID;
}

enum pems_reject pems_record_check(const json_t *rec, unsigned flags, int64_t trust_until_ms,
                                   struct pems_record *out, char *why, size_t whylen)
{
    memset(out, 0, sizeof *out);
    out->updated_at_ms = out->untrusted_updated_at_ms = -1;
    if (whylen)
        why[0] = '\0';
    if (!json_is_object(rec))
        return reject(why, whylen, "not a JSON object", "record");
    const json_t *id = json_object_get(rec, "pfaId");
    if (!json_is_string(id) || json_string_length(id) == 0 ||
        json_string_length(id) > PEMS_PFA_ID_MAX)
        return reject(why, whylen, "must be a string of 1..200 characters", "pfaId");
    const char *idv = json_string_value(id);
    for (const char *p = idv; p < idv + json_string_length(id); p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return reject(why, whylen, "holds a control character", "pfaId");
    out->pfa_id = json_string_value(id);
    if (pems_version_parse(json_object_get(rec, "version"), &out->version) != 0)
        return reject(why, whylen, "must be an integer 0..9223372036854775807", "version");
    const json_t *del = json_object_get(rec, "deleted");
    if (del && !json_is_boolean(del))
        return reject(why, whylen, "must be true or false", "deleted");
    out->deleted = json_is_true(del);

    const json_t *u = json_object_get(rec, "updatedAt");
    if (u || (flags & PEMS_NEED_UPDATED_AT)) {
        int64_t ms;
        if (!json_is_string(u) ||
            pems_timestamp_parse(json_string_value(u), json_string_length(u), &ms) != 0)
            return reject(why, whylen, "must be an ISO 8601 timestamp with a zone", "updatedAt");
        out->updated_at_ms = ms;
    }

    if (!out->deleted) {
        /* measured before it is read field by field: 50,000 fields are not validated */
        size_t size = json_dumpb(json_object_get(rec, "data"), NULL, 0, JSON_COMPACT);
        if (size > PEMS_RECORD_DATA_MAX) {
            if (whylen)
                snprintf(why, whylen, "data: %zu bytes as JSON, more than %d", size,
                         PEMS_RECORD_DATA_MAX);
            return PEMS_REJECT_TOO_LARGE;
        }
        json_t *details = NULL;
        if (pfa_validate_pems_data(json_object_get(rec, "data"), &out->data, &details) != 0) {
            const json_t *d0 = json_array_get(details, 0);
            reject(why, whylen, json_string_value(json_object_get(d0, "message")),
                   json_string_value(json_object_get(d0, "field")));
            json_decref(details);
            return PEMS_REJECT_INVALID;
        }
    }
    if (trust_until_ms > 0 && out->updated_at_ms > trust_until_ms) {
        out->untrusted_updated_at_ms = out->updated_at_ms;
        out->updated_at_ms = -1;
    }
    return PEMS_REJECT_NONE;
}

json_t *pems_record_json(const struct pems_record *r)
{
    json_t *o = json_pack("{s:s, s:I}", "pfaId", r->pfa_id, "version", (json_int_t)r->version);
    if (!o)
        return NULL;
    if (r->updated_at_ms >= 0) {
        char ts[32];
        pems_timestamp_format(r->updated_at_ms, ts, sizeof ts);
        json_object_set_new(o, "updatedAt", json_string(ts));
    }
    if (r->deleted)
        json_object_set_new(o, "deleted", json_true());
    else
        json_object_set(o, "data", r->data);
    return o;
}

void pems_page_clear(struct pems_page *page)
{
    json_decref(page->records);
    json_decref(page->rejects);
    json_decref(page->untrusted);
    free(page->next_cursor);
    memset(page, 0, sizeof *page);
    page->newest_ms = -1;
}

static int page_fail(char *why, size_t whylen, const char *msg)
{
    snprintf(why, whylen, "%s", msg);
    return -1;
}

int pems_page_parse(const json_t *body, int64_t trust_until_ms, struct pems_page *page,
                    char *why, size_t whylen)
{
    memset(page, 0, sizeof *page);
    page->newest_ms = -1;
    const json_t *records = json_object_get(body, "records");
    if (!json_is_array(records))
        return page_fail(why, whylen, "no records array");
    const json_t *next = json_object_get(body, "nextCursor");
    char buf[32];
    if (json_is_string(next)) {
        size_t n = json_string_length(next);
        if (n > CURSOR_MAX || strlen(json_string_value(next)) != n)
            return page_fail(why, whylen, "nextCursor longer than 1024 or holding NUL");
        if (n > 0 && !(page->next_cursor = strdup(json_string_value(next))))
            return page_fail(why, whylen, "out of memory");
    } else if (json_is_integer(next)) {
        snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(next));
        if (!(page->next_cursor = strdup(buf)))
            return page_fail(why, whylen, "out of memory");
    } else if (next && !json_is_null(next)) {
        return page_fail(why, whylen, "nextCursor must be a string, an integer or null");
    }
    page->records = json_array();
    page->rejects = json_array();
    page->untrusted = json_array();
    if (!page->records || !page->rejects || !page->untrusted) {
        pems_page_clear(page);
        return page_fail(why, whylen, "out of memory");
    }
    size_t i;
    const json_t *rec;
    json_array_foreach(records, i, rec) {
        struct pems_record r;
        char rwhy[200];
        enum pems_reject rj = pems_record_check(rec, PEMS_NEED_UPDATED_AT, trust_until_ms, &r,
                                                rwhy, sizeof rwhy);
        page->received++;
        /* a record refused still moves the cursor past it when its updatedAt is
         * trustworthy: it comes again when PEMS changes it; an updatedAt beyond the trust
         * never moves it (the record is taken all the same) */
        int64_t at = r.updated_at_ms;
        if (at >= 0 && at > page->newest_ms && (trust_until_ms <= 0 || at <= trust_until_ms))
            page->newest_ms = at;
        if (rj == PEMS_REJECT_NONE) {
            json_array_append_new(page->records, pems_record_json(&r));
            if (r.untrusted_updated_at_ms >= 0) {
                char ts[32];
                pems_timestamp_format(r.untrusted_updated_at_ms, ts, sizeof ts);
                json_array_append_new(page->untrusted, json_pack("{s:s, s:s}", "pfaId", r.pfa_id,
                                                                 "updatedAt", ts));
            }
        } else {
            json_t *id = r.pfa_id ? json_string(r.pfa_id) : json_null();
            json_array_append_new(page->rejects,
                                  json_pack("{s:o, s:s, s:s}", "pfaId", id ? id : json_null(),
                                            "reason", pems_reject_name(rj), "detail", rwhy));
        }
        pems_record_clear(&r);
    }
    return 0;
}
