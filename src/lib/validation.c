#include "validation.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_STRING_CHARS 500
/* integral numbers up to 2^53 are exact in a double, so they are kept as JSON integers */
#define MAX_EXACT_INTEGER 9007199254740992.0

/* Collects one detail per field: the first failure of a field wins. */
struct checker {
    json_t *details;
    json_t *failed;   /* object used as a set of field names */
    bool oom;
};

static void fail(struct checker *c, const char *field, const char *message)
{
    json_t *detail;

    if (json_object_get(c->failed, field))
        return;
    detail = json_pack("{s:s, s:s}", "field", field, "message", message);
    if (!detail || json_object_set_new(c->failed, field, json_true()) != 0 ||
        json_array_append_new(c->details, detail) != 0)
        c->oom = true;
}

static bool failed(const struct checker *c, const char *field)
{
    return json_object_get(c->failed, field) != NULL;
}

static bool checker_init(struct checker *c)
{
    c->details = json_array();
    c->failed = json_object();
    c->oom = false;
    return c->details && c->failed;
}

/* 0 with *details = NULL when nothing failed, else -1 with *details handed over. */
static int checker_finish(struct checker *c, json_t **details)
{
    int rc = 0;

    if (c->oom || !c->details || !c->failed) {
        json_decref(c->details);
        c->details = json_pack("[{s:s, s:s}]", "field", "delta", "message", "out of memory");
        rc = -1;
    } else if (json_array_size(c->details) > 0) {
        rc = -1;
    }
    json_decref(c->failed);
    if (rc == 0) {
        json_decref(c->details);
        *details = NULL;
    } else {
        *details = c->details;
    }
    return rc;
}

static bool is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v';
}

/* Trimmed view of a JSON string: *start and *len; false if it holds a NUL byte. */
static bool trimmed(const json_t *value, const char **start, size_t *len)
{
    const char *s = json_string_value(value);
    size_t n = json_string_length(value);

    if (memchr(s, '\0', n))
        return false;
    while (n > 0 && is_space(*s)) {
        s++;
        n--;
    }
    while (n > 0 && is_space(s[n - 1]))
        n--;
    *start = s;
    *len = n;
    return true;
}

static size_t utf8_chars(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            n++;
    return n;
}

static json_t *sanitize_string(const struct pfa_field *f, const json_t *value, const char **err)
{
    const char *s;
    size_t len;

    if (!json_is_string(value)) {
        *err = "must be a string";
        return NULL;
    }
    if (!trimmed(value, &s, &len)) {
        *err = "must not contain NUL characters";
        return NULL;
    }
    if (len == 0 && !f->allow_empty) {
        *err = "must not be empty";
        return NULL;
    }
    if (utf8_chars(s, len) > MAX_STRING_CHARS) {
        *err = "must be at most 500 characters";
        return NULL;
    }
    return json_stringn(s, len);
}

static json_t *sanitize_enum(const struct pfa_field *f, const json_t *value, char *errbuf,
                             size_t errlen, const char **err)
{
    const char *s;
    size_t len;
    int off;

    if (json_is_string(value) && trimmed(value, &s, &len)) {
        for (const char *const *v = f->enum_values; *v; v++)
            if (strlen(*v) == len && memcmp(*v, s, len) == 0)
                return json_string(*v);
    }
    off = snprintf(errbuf, errlen, "must be one of:");
    for (const char *const *v = f->enum_values; *v && off > 0 && (size_t)off < errlen; v++)
        off += snprintf(errbuf + off, errlen - (size_t)off, "%s %s",
                        v == f->enum_values ? "" : ",", *v);
    *err = errbuf;
    return NULL;
}

/* A plain decimal number: [+-]digits[.digits][e[+-]digits] (no hex, inf, nan, separators). */
static bool decimal_syntax(const char *s, size_t len)
{
    size_t i = 0, int_digits = 0, frac_digits = 0;

    if (i < len && (s[i] == '+' || s[i] == '-'))
        i++;
    while (i < len && s[i] >= '0' && s[i] <= '9') {
        i++;
        int_digits++;
    }
    if (i < len && s[i] == '.') {
        i++;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            i++;
            frac_digits++;
        }
    }
    if (int_digits + frac_digits == 0)
        return false;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        size_t exp_digits = 0;
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            i++;
            exp_digits++;
        }
        if (exp_digits == 0)
            return false;
    }
    return i == len;
}

static json_t *canonical_number(double v, const char **err)
{
    if (!isfinite(v)) {
        *err = "must be a finite number";
        return NULL;
    }
    if (v < 0) {
        *err = "must not be negative";
        return NULL;
    }
    /* -0 becomes the integer 0 here */
    if (v <= MAX_EXACT_INTEGER && floor(v) == v)
        return json_integer((json_int_t)v);
    return json_real(v);
}

static json_t *sanitize_number(const json_t *value, const char **err)
{
    if (json_is_integer(value)) {
        if (json_integer_value(value) < 0) {
            *err = "must not be negative";
            return NULL;
        }
        return json_integer(json_integer_value(value));
    }
    if (json_is_real(value))
        return canonical_number(json_real_value(value), err);
    if (json_is_string(value)) {
        const char *s;
        size_t len;
        char buf[64];

        if (!trimmed(value, &s, &len) || len == 0 || len >= sizeof buf ||
            !decimal_syntax(s, len)) {
            *err = "must be a number";
            return NULL;
        }
        memcpy(buf, s, len);
        buf[len] = '\0';
        return canonical_number(strtod(buf, NULL), err);
    }
    *err = "must be a number";
    return NULL;
}

static bool two_digits(const char *s, int max)
{
    if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
        return false;
    return (s[0] - '0') * 10 + (s[1] - '0') <= max;
}

/* Accepts YYYY-MM-DD, or an ISO 8601 date-time (THH:MM[:SS[.frac]] then Z or an offset);
 * the canonical form is the date part as written. */
static bool date_text(const char *s, size_t len, char out[11], long *days)
{
    size_t i = 10;

    if (len < 10)
        return false;
    memcpy(out, s, 10);
    out[10] = '\0';
    if (!pfa_date_parse(out, days))
        return false;
    if (len == 10)
        return true;
    if (s[i] != 'T' && s[i] != 't' && s[i] != ' ')
        return false;
    i++;
    if (len < i + 5 || !two_digits(s + i, 23) || s[i + 2] != ':' || !two_digits(s + i + 3, 59))
        return false;
    i += 5;
    if (i < len && s[i] == ':') {
        if (len < i + 3 || !two_digits(s + i + 1, 60))
            return false;
        i += 3;
        if (i < len && (s[i] == '.' || s[i] == ',')) {
            size_t frac = 0;
            i++;
            while (i < len && s[i] >= '0' && s[i] <= '9') {
                i++;
                frac++;
            }
            if (frac == 0)
                return false;
        }
    }
    if (i == len)
        return true;
    if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == len)
        return true;
    if (s[i] != '+' && s[i] != '-')
        return false;
    i++;
    if (len < i + 2 || !two_digits(s + i, 23))
        return false;
    i += 2;
    if (i == len)
        return true;
    if (s[i] == ':')
        i++;
    return len == i + 2 && two_digits(s + i, 59);
}

static json_t *sanitize_date(const json_t *value, const char **err)
{
    const char *s;
    size_t len;
    char out[11];

    if (!json_is_string(value) || !trimmed(value, &s, &len) || !date_text(s, len, out, NULL)) {
        *err = "must be a valid date (YYYY-MM-DD)";
        return NULL;
    }
    return json_string(out);
}

/* A new reference to the canonical value of a non-null field value, or NULL with *err. */
static json_t *sanitize_value(const struct pfa_field *f, const json_t *value, char *errbuf,
                              size_t errlen, const char **err)
{
    switch (f->type) {
    case PFA_STRING:
        return sanitize_string(f, value, err);
    case PFA_ENUM:
        return sanitize_enum(f, value, errbuf, errlen, err);
    case PFA_BOOL:
        if (!json_is_boolean(value)) {
            *err = "must be true or false";
            return NULL;
        }
        return json_boolean(json_is_true(value));
    case PFA_NUMBER:
        return sanitize_number(value, err);
    case PFA_DATE:
        return sanitize_date(value, err);
    }
    *err = "unsupported field";
    return NULL;
}

/* What is being sanitized: a client's delta, a client's whole record, or a record as PEMS
 * sends it (its fields unknown to us are PEMS's own: kept as they are) */
enum sanitize_mode { SANITIZE_DELTA, SANITIZE_PEMS };

/* Sanitizes every key of obj into out; nulls are kept (a delta clears with them). */
static void sanitize_fields(struct checker *c, const json_t *obj, json_t *out,
                            enum sanitize_mode mode)
{
    const char *key;
    json_t *value;

    json_object_foreach((json_t *)obj, key, value) {
        const struct pfa_field *f = pfa_field_find(key);
        char errbuf[128];
        const char *err = NULL;
        json_t *clean;

        if (!f && mode == SANITIZE_PEMS) {
            if (json_object_set(out, key, value) != 0)
                c->oom = true;
            continue;
        }
        if (!f) {
            fail(c, key, "unknown field");
            continue;
        }
        if (json_is_null(value)) {
            if (!f->nullable)
                fail(c, key, mode == SANITIZE_DELTA ? "is required and cannot be cleared"
                                                    : "is required");
            else if (json_object_set_new(out, key, json_null()) != 0)
                c->oom = true;
            continue;
        }
        clean = sanitize_value(f, value, errbuf, sizeof errbuf, &err);
        if (!clean) {
            fail(c, key, err ? err : "is invalid");
            continue;
        }
        if (json_object_set_new(out, key, clean) != 0)
            c->oom = true;
    }
}

/* The day number of a record's date field, whatever its form (mirror data included). */
static bool field_days(const json_t *record, const char *field, long *days)
{
    const json_t *v = json_object_get(record, field);
    const char *s;
    size_t len;
    char out[11];

    return json_is_string(v) && trimmed(v, &s, &len) && date_text(s, len, out, days);
}

static bool touches(const json_t *delta, const char *a, const char *b)
{
    if (!delta)
        return true;
    return json_object_get(delta, a) || (b && json_object_get(delta, b));
}

static const struct {
    const char *start;
    const char *end;
    const char *message;
} date_pairs[] = {
    { "originalStart", "originalEnd", "must not be before originalStart" },
    { "forecastStart", "forecastEnd", "must not be before forecastStart" },
    { "actualStart",   "actualEnd",   "must not be before actualStart" },
};

/* PEMS's records may carry explicit nulls: a null is no value. */
static bool has_value(const json_t *record, const char *key)
{
    const json_t *v = json_object_get(record, key);
    return v && !json_is_null(v);
}

/* Rules spanning fields, on the record after the change. With a delta, only the rules that
 * involve a field the delta sets are checked, so a flaw already in PEMS's data does not block
 * an unrelated edit. */
static void check_cross_fields(struct checker *c, const json_t *after, const json_t *delta)
{
    const char *source;

    for (size_t i = 0; i < sizeof date_pairs / sizeof date_pairs[0]; i++) {
        long start, end;
        if (!touches(delta, date_pairs[i].start, date_pairs[i].end) ||
            failed(c, date_pairs[i].start) || failed(c, date_pairs[i].end))
            continue;
        if (field_days(after, date_pairs[i].start, &start) &&
            field_days(after, date_pairs[i].end, &end) && end < start)
            fail(c, date_pairs[i].end, date_pairs[i].message);
    }

    if (failed(c, "source"))
        return;
    source = json_string_value(json_object_get(after, "source"));
    if (!source)
        return;
    if (strcmp(source, "Rental") == 0 && touches(delta, "source", "monthlyRate") &&
        !failed(c, "monthlyRate") && !has_value(after, "monthlyRate"))
        fail(c, "monthlyRate", "is required when source is Rental");
    if (strcmp(source, "Purchase") == 0 && touches(delta, "source", "purchasePrice") &&
        !failed(c, "purchasePrice") && !has_value(after, "purchasePrice"))
        fail(c, "purchasePrice", "is required when source is Purchase");
}

/* Business rules of the seed against PEMS's current state of the record. */
static void check_business(struct checker *c, enum pfa_op op, const json_t *delta,
                           const json_t *current)
{
    bool actualized = json_is_true(json_object_get(current, "isActualized"));
    bool discontinued = json_is_true(json_object_get(current, "isDiscontinued"));
    json_t *v;

    if (op == PFA_OP_DELETE) {
        if (actualized)
            fail(c, "operation", "an actualized record cannot be deleted");
        return;
    }
    if (actualized) {
        v = json_object_get(delta, "actualStart");
        if (v && !failed(c, "actualStart")) {
            long now, next;
            if (json_is_null(v))
                fail(c, "actualStart", "cannot be cleared on an actualized record");
            else if (field_days(current, "actualStart", &now) &&
                     field_days(delta, "actualStart", &next) && next > now)
                fail(c, "actualStart", "cannot be moved later on an actualized record");
        }
        v = json_object_get(delta, "source");
        if (v && !failed(c, "source") && !pfa_value_equal(v, json_object_get(current, "source")))
            fail(c, "source", "cannot be changed on an actualized record");
    }
    /* clearing isDiscontinued would un-discontinue the record just the same */
    v = json_object_get(delta, "isDiscontinued");
    if (discontinued && v && !json_is_true(v) && !failed(c, "isDiscontinued"))
        fail(c, "isDiscontinued", "a discontinued record cannot be un-discontinued");
}

int pfa_validate_modification(enum pfa_op op, const json_t *delta, const json_t *current,
                              json_t **sanitized, json_t **details)
{
    struct checker c;
    json_t *clean = NULL;
    json_t *after = NULL;
    int rc;

    *sanitized = NULL;
    *details = NULL;
    if (!json_is_object(current))
        current = NULL;
    if (json_is_null(delta))
        delta = NULL;
    if (!checker_init(&c))
        return checker_finish(&c, details);

    clean = json_object();
    if (!clean) {
        c.oom = true;
        goto done;
    }
    if (op == PFA_OP_DELETE) {
        if (delta && (!json_is_object(delta) || json_object_size(delta) > 0))
            fail(&c, "delta", "must be empty for a delete");
        check_business(&c, op, clean, current);
        goto done;
    }

    if (!delta) {
        fail(&c, "delta", "is required");
        goto done;
    }
    if (!json_is_object(delta)) {
        fail(&c, "delta", "must be a JSON object");
        goto done;
    }
    if (json_object_size(delta) == 0) {
        fail(&c, "delta", "must change at least one field");
        goto done;
    }
    sanitize_fields(&c, delta, clean, SANITIZE_DELTA);
    check_business(&c, op, clean, current);
    after = pfa_apply_delta(current, clean);
    if (!after)
        c.oom = true;
    else
        check_cross_fields(&c, after, clean);

done:
    json_decref(after);
    rc = checker_finish(&c, details);
    if (rc == 0)
        *sanitized = clean;
    else
        json_decref(clean);
    return rc;
}

int pfa_validate_pems_data(const json_t *data, json_t **sanitized, json_t **details)
{
    static const char *const required[] = { "category", "source", "dor" };
    struct checker c;
    json_t *clean = NULL;

    *sanitized = NULL;
    *details = NULL;
    if (!checker_init(&c))
        return checker_finish(&c, details);
    if (!json_is_object(data)) {
        fail(&c, "data", "must be a JSON object");
        return checker_finish(&c, details);
    }
    clean = json_object();
    if (!clean) {
        c.oom = true;
        return checker_finish(&c, details);
    }
    sanitize_fields(&c, data, clean, SANITIZE_PEMS);
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
        if (!json_object_get(data, required[i]))
            fail(&c, required[i], "is required");
    if (checker_finish(&c, details) != 0) {
        json_decref(clean);
        return -1;
    }
    *sanitized = clean;
    return 0;
}
