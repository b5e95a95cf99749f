#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "unit.h"
#include <jansson.h>

#include "validation.h"

static const char *rental_record =
    "{\"category\":\"Cranes\",\"class\":\"Mobile Crane\",\"source\":\"Rental\",\"dor\":\"PROJECT\","
    "\"monthlyRate\":12000,\"forecastStart\":\"2025-03-01\",\"forecastEnd\":\"2025-09-30\","
    "\"originalStart\":\"2025-03-01\",\"originalEnd\":\"2025-08-31\",\"isActualized\":false,"
    "\"isDiscontinued\":false,\"hasPlan\":true,\"hasActuals\":false,\"manufacturer\":\"Liebherr\"}";

static const char *actualized_record =
    "{\"category\":\"Cranes\",\"class\":\"Mobile Crane\",\"source\":\"Rental\",\"dor\":\"BEO\","
    "\"monthlyRate\":12000,\"isActualized\":true,\"actualStart\":\"2025-03-10\","
    "\"actualEnd\":\"2025-06-30\",\"forecastStart\":\"2025-03-01\",\"forecastEnd\":\"2025-09-30\"}";

static json_t *parse(const char *text)
{
    json_error_t err;
    json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (!v)
        fprintf(stderr, "bad test JSON: %s: %s\n", text, err.text);
    return v;
}

/* Runs an update of delta against current; returns pfa_validate_modification's result. */
static int check(enum pfa_op op, const char *delta_text, const char *current_text,
                 json_t **sanitized, json_t **details)
{
    json_t *delta = delta_text ? parse(delta_text) : NULL;
    json_t *current = current_text ? parse(current_text) : NULL;
    int rc;

    *sanitized = NULL;
    *details = NULL;
    if ((delta_text && !delta) || (current_text && !current)) {
        json_decref(delta);
        json_decref(current);
        CU_FAIL("test JSON does not parse");
        return -2;
    }
    rc = pfa_validate_modification(op, delta, current, sanitized, details);
    if (rc == 0) {
        CU_ASSERT_PTR_NOT_NULL(*sanitized);
        CU_ASSERT_PTR_NULL(*details);
    } else {
        CU_ASSERT_PTR_NULL(*sanitized);
        CU_ASSERT_TRUE(json_is_array(*details));
    }
    json_decref(delta);
    json_decref(current);
    return rc;
}

/* The message of the detail naming field, NULL if none; fails if it is named twice. */
static const char *detail_for(const json_t *details, const char *field)
{
    const char *found = NULL;
    size_t i;
    json_t *d;

    json_array_foreach(details, i, d) {
        const char *f = json_string_value(json_object_get(d, "field"));
        CU_ASSERT_PTR_NOT_NULL(f);
        CU_ASSERT_PTR_NOT_NULL(json_string_value(json_object_get(d, "message")));
        if (f && strcmp(f, field) == 0) {
            CU_ASSERT_PTR_NULL(found);
            found = json_string_value(json_object_get(d, "message"));
        }
    }
    return found;
}

static void release(json_t *a, json_t *b)
{
    json_decref(a);
    json_decref(b);
}

static void test_valid_rental_data(void)
{
    json_t *s;
    json_t *d;

    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"monthlyRate\":13500,\"forecastEnd\":\"2025-10-31\"}",
                          rental_record, &s, &d), 0);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(s, "monthlyRate")), 13500);
    ASSERT_STR_EQ(json_string_value(json_object_get(s, "forecastEnd")), "2025-10-31");
    CU_ASSERT_EQUAL(json_object_size(s), 2);
    release(s, d);
}

static void test_valid_purchase_data(void)
{
    json_t *s;
    json_t *d;

    /* switching a record to Purchase with its price in the same delta */
    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"source\":\"Purchase\",\"purchasePrice\":85000.75}",
                          rental_record, &s, &d), 0);
    CU_ASSERT_DOUBLE_EQUAL(json_number_value(json_object_get(s, "purchasePrice")), 85000.75, 1e-9);
    release(s, d);
}

static void test_invalid_date_ordering(void)
{
    json_t *s;
    json_t *d;
    const char *msg;

    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE,
                          "{\"forecastStart\":\"2025-06-01\",\"forecastEnd\":\"2025-05-31\"}",
                          rental_record, &s, &d), -1);
    msg = detail_for(d, "forecastEnd");
    CU_ASSERT_PTR_NOT_NULL(msg);
    CU_ASSERT_PTR_NULL(detail_for(d, "forecastStart"));
    CU_ASSERT_EQUAL(json_array_size(d), 1);
    release(s, d);

    /* the same for the other two pairs, each naming its end field */
    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"originalEnd\":\"2025-02-28\"}", rental_record, &s, &d), -1);
    CU_ASSERT_PTR_NOT_NULL(detail_for(d, "originalEnd"));
    release(s, d);
    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"actualStart\":\"2025-05-02\",\"actualEnd\":\"2025-05-01\"}",
                          rental_record, &s, &d), -1);
    CU_ASSERT_PTR_NOT_NULL(detail_for(d, "actualEnd"));
    release(s, d);
}

static void test_missing_monthly_rate_for_rental(void)
{
    json_t *s;
    json_t *d;

    /* clearing the rate of a Rental record */
    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"monthlyRate\":null}", rental_record, &s, &d), -1);
    ASSERT_STR_EQ(detail_for(d, "monthlyRate"), "is required when source is Rental");
    release(s, d);
}

static void test_missing_purchase_price_for_purchase(void)
{
    json_t *s;
    json_t *d;

    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"source\":\"Purchase\"}", rental_record, &s, &d), -1);
    CU_ASSERT_PTR_NOT_NULL(detail_for(d, "purchasePrice"));
    CU_ASSERT_PTR_NULL(detail_for(d, "source"));
    CU_ASSERT_EQUAL(json_array_size(d), 1);
    release(s, d);

    /* PEMS sends an explicit null for the price: still no price */
    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"source\":\"Purchase\"}",
                          "{\"category\":\"Cranes\",\"source\":\"Rental\",\"monthlyRate\":100,"
                          "\"purchasePrice\":null}", &s, &d), -1);
    ASSERT_STR_EQ(detail_for(d, "purchasePrice"), "is required when source is Purchase");
    release(s, d);
}

static void test_negative_monthly_rate(void)
{
    json_t *s;
    json_t *d;

    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"monthlyRate\":-100}", rental_record, &s, &d), -1);
    ASSERT_STR_EQ(detail_for(d, "monthlyRate"), "must not be negative");
    CU_ASSERT_EQUAL(json_array_size(d), 1);
    release(s, d);
    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"purchasePrice\":-0.01}", rental_record, &s, &d), -1);
    CU_ASSERT_PTR_NOT_NULL(detail_for(d, "purchasePrice"));
    release(s, d);
    /* zero is a valid rate, and -0 is zero */
    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"monthlyRate\":-0.0}", rental_record, &s, &d), 0);
    CU_ASSERT_TRUE(json_is_integer(json_object_get(s, "monthlyRate")));
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(s, "monthlyRate")), 0);
    release(s, d);
}

static void test_invalid_dor_enum(void)
{
    json_t *s;
    json_t *d;

    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"dor\":\"INVALID\"}", rental_record, &s, &d), -1);
    ASSERT_STR_EQ(detail_for(d, "dor"), "must be one of: BEO, PROJECT");
    release(s, d);
    /* enums are case-sensitive */
    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"dor\":\"beo\"}", rental_record, &s, &d), -1);
    ASSERT_STR_EQ(detail_for(d, "dor"), "must be one of: BEO, PROJECT");
    release(s, d);
    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"dor\":1}", rental_record, &s, &d), -1);
    CU_ASSERT_PTR_NOT_NULL(detail_for(d, "dor"));
    release(s, d);
    /* but trimmed */
    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"dor\":\" BEO \"}", rental_record, &s, &d), 0);
    ASSERT_STR_EQ(json_string_value(json_object_get(s, "dor")), "BEO");
    release(s, d);
}

static void test_invalid_source_enum(void)
{
    json_t *s;
    json_t *d;

    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"source\":\"Lease\"}", rental_record, &s, &d), -1);
    ASSERT_STR_EQ(detail_for(d, "source"), "must be one of: Rental, Purchase");
    CU_ASSERT_EQUAL(json_array_size(d), 1);
    release(s, d);
    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"source\":\"rental\"}", rental_record, &s, &d), -1);
    CU_ASSERT_PTR_NOT_NULL(detail_for(d, "source"));
    release(s, d);
}

static void test_invalid_boolean_field(void)
{
    json_t *s;
    json_t *d;

    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"isActualized\":\"true\"}", rental_record, &s, &d), -1);
    ASSERT_STR_EQ(detail_for(d, "isActualized"), "must be true or false");
    release(s, d);
    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"hasPlan\":1}", rental_record, &s, &d), -1);
    CU_ASSERT_PTR_NOT_NULL(detail_for(d, "hasPlan"));
    release(s, d);
    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"hasPlan\":false,\"isFundsTransferable\":true}",
                          rental_record, &s, &d), 0);
    CU_ASSERT_TRUE(json_is_false(json_object_get(s, "hasPlan")));
    CU_ASSERT_TRUE(json_is_true(json_object_get(s, "isFundsTransferable")));
    release(s, d);
}

static void test_multiple_validation_errors(void)
{
    json_t *s;
    json_t *d;

    /* five failing fields, forecastEnd failing twice over (type, then it is before start):
     * exactly one detail per field */
    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE,
                          "{\"monthlyRate\":-5,\"dor\":\"X\",\"hasPlan\":\"yes\","
                          "\"forecastEnd\":\"2025-02-30\",\"bogus\":1,\"model\":\" ok \"}",
                          rental_record, &s, &d), -1);
    CU_ASSERT_EQUAL(json_array_size(d), 5);
    CU_ASSERT_PTR_NOT_NULL(detail_for(d, "monthlyRate"));
    CU_ASSERT_PTR_NOT_NULL(detail_for(d, "dor"));
    CU_ASSERT_PTR_NOT_NULL(detail_for(d, "hasPlan"));
    CU_ASSERT_PTR_NOT_NULL(detail_for(d, "forecastEnd"));
    ASSERT_STR_EQ(detail_for(d, "bogus"), "unknown field");
    CU_ASSERT_PTR_NULL(detail_for(d, "model"));
    release(s, d);

    /* a field failing its type and a business rule is reported once */
    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"actualStart\":\"2025-13-01\",\"source\":\"Buy\"}",
                          actualized_record, &s, &d), -1);
    CU_ASSERT_EQUAL(json_array_size(d), 2);
    ASSERT_STR_EQ(detail_for(d, "actualStart"), "must be a valid date (YYYY-MM-DD)");
    ASSERT_STR_EQ(detail_for(d, "source"), "must be one of: Rental, Purchase");
    release(s, d);
}

static void test_business_actual_start_forward(void)
{
    json_t *s;
    json_t *d;

    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"actualStart\":\"2025-03-11\"}", actualized_record, &s, &d), -1);
    ASSERT_STR_EQ(detail_for(d, "actualStart"),
                           "cannot be moved later on an actualized record");
    release(s, d);
    /* clearing it is refused too */
    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"actualStart\":null}", actualized_record, &s, &d), -1);
    CU_ASSERT_PTR_NOT_NULL(detail_for(d, "actualStart"));
    release(s, d);
    /* earlier or the same is allowed */
    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"actualStart\":\"2025-03-01\"}", actualized_record, &s, &d), 0);
    release(s, d);
    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"actualStart\":\"2025-03-10T23:59:59Z\"}",
                          actualized_record, &s, &d), 0);
    release(s, d);
    /* a record that is not actualized may move it */
    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"actualStart\":\"2025-04-01\"}",
                          "{\"isActualized\":false,\"actualStart\":\"2025-03-10\"}", &s, &d), 0);
    release(s, d);
}

static void test_business_source_change_actualized(void)
{
    json_t *s;
    json_t *d;

    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"source\":\"Purchase\",\"purchasePrice\":1000}",
                          actualized_record, &s, &d), -1);
    ASSERT_STR_EQ(detail_for(d, "source"), "cannot be changed on an actualized record");
    CU_ASSERT_EQUAL(json_array_size(d), 1);
    release(s, d);
    /* restating the same source is no change */
    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"source\":\" Rental\"}", actualized_record, &s, &d), 0);
    release(s, d);
}

static void test_business_undiscontinue(void)
{
    const char *discontinued = "{\"category\":\"Cranes\",\"source\":\"Rental\",\"dor\":\"BEO\","
                               "\"monthlyRate\":1,\"isDiscontinued\":true}";
    json_t *s;
    json_t *d;

    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"isDiscontinued\":false}", discontinued, &s, &d), -1);
    ASSERT_STR_EQ(detail_for(d, "isDiscontinued"),
                           "a discontinued record cannot be un-discontinued");
    release(s, d);
    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"isDiscontinued\":null}", discontinued, &s, &d), -1);
    CU_ASSERT_PTR_NOT_NULL(detail_for(d, "isDiscontinued"));
    release(s, d);
    /* discontinuing is fine, and so is editing a discontinued record otherwise */
    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"isDiscontinued\":true}", rental_record, &s, &d), 0);
    release(s, d);
    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"model\":\"X\"}", discontinued, &s, &d), 0);
    release(s, d);
}

static void test_business_delete_actualized(void)
{
    json_t *s;
    json_t *d;

    CU_ASSERT_EQUAL(check(PFA_OP_DELETE, NULL, actualized_record, &s, &d), -1);
    ASSERT_STR_EQ(detail_for(d, "operation"), "an actualized record cannot be deleted");
    CU_ASSERT_EQUAL(json_array_size(d), 1);
    release(s, d);
    /* a record that is not actualized can be deleted; the sanitized delta is {} */
    CU_ASSERT_EQUAL(check(PFA_OP_DELETE, NULL, rental_record, &s, &d), 0);
    CU_ASSERT_TRUE(json_is_object(s) && json_object_size(s) == 0);
    release(s, d);
    CU_ASSERT_EQUAL(check(PFA_OP_DELETE, "{}", NULL, &s, &d), 0);
    release(s, d);
    CU_ASSERT_EQUAL(check(PFA_OP_DELETE, "null", rental_record, &s, &d), 0);
    release(s, d);
}

static void test_sanitize_delta(void)
{
    json_t *s;
    json_t *d;

    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE,
                          "{\"manufacturer\":\"  Caterpillar \\t\",\"monthlyRate\":\" 1200.50 \","
                          "\"forecastStart\":\"2025-03-01T00:00:00Z\","
                          "\"forecastEnd\":\" 2025-11-30 \",\"purchasePrice\":\"2500\"}",
                          rental_record, &s, &d), 0);
    ASSERT_STR_EQ(json_string_value(json_object_get(s, "manufacturer")), "Caterpillar");
    CU_ASSERT_TRUE(json_is_real(json_object_get(s, "monthlyRate")));
    CU_ASSERT_DOUBLE_EQUAL(json_real_value(json_object_get(s, "monthlyRate")), 1200.5, 1e-9);
    ASSERT_STR_EQ(json_string_value(json_object_get(s, "forecastStart")), "2025-03-01");
    ASSERT_STR_EQ(json_string_value(json_object_get(s, "forecastEnd")), "2025-11-30");
    CU_ASSERT_TRUE(json_is_integer(json_object_get(s, "purchasePrice")));
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(s, "purchasePrice")), 2500);
    CU_ASSERT_EQUAL(json_object_size(s), 5);
    release(s, d);
}

static void test_valid_update_on_empty_mirror(void)
{
    json_t *s;
    json_t *d;

    /* no current state: only the delta's own rules apply */
    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"category\":\"Trucks\",\"class\":\"Dump\"}", NULL, &s, &d), 0);
    CU_ASSERT_EQUAL(json_object_size(s), 2);
    release(s, d);
}

static void test_null_clears_field(void)
{
    json_t *s;
    json_t *d;

    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE,
                          "{\"manufacturer\":null,\"class\":null,\"forecastEnd\":null,\"hasPlan\":null,"
                          "\"purchasePrice\":null}", rental_record, &s, &d), 0);
    CU_ASSERT_EQUAL(json_object_size(s), 5);
    CU_ASSERT_TRUE(json_is_null(json_object_get(s, "manufacturer")));
    CU_ASSERT_TRUE(json_is_null(json_object_get(s, "forecastEnd")));
    release(s, d);
}

static void test_null_on_required_refused(void)
{
    json_t *s;
    json_t *d;

    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"category\":null,\"source\":null,\"dor\":null}",
                          rental_record, &s, &d), -1);
    CU_ASSERT_EQUAL(json_array_size(d), 3);
    CU_ASSERT_PTR_NOT_NULL(detail_for(d, "category"));
    CU_ASSERT_PTR_NOT_NULL(detail_for(d, "source"));
    CU_ASSERT_PTR_NOT_NULL(detail_for(d, "dor"));
    release(s, d);
}

static void test_unknown_field(void)
{
    json_t *s;
    json_t *d;

    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"pfaId\":\"P1\",\"Category\":\"x\",\"model\":\"M\"}",
                          rental_record, &s, &d), -1);
    CU_ASSERT_EQUAL(json_array_size(d), 2);
    ASSERT_STR_EQ(detail_for(d, "pfaId"), "unknown field");
    ASSERT_STR_EQ(detail_for(d, "Category"), "unknown field");
    release(s, d);
}

static void test_leap_day_dates(void)
{
    json_t *s;
    json_t *d;

    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"originalEnd\":\"2024-02-29\"}",
                          "{\"originalStart\":\"2024-01-01\"}", &s, &d), 0);
    release(s, d);
    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"originalEnd\":\"2000-02-29\"}", NULL, &s, &d), 0);
    release(s, d);
    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"originalEnd\":\"2023-02-29\"}", NULL, &s, &d), -1);
    CU_ASSERT_PTR_NOT_NULL(detail_for(d, "originalEnd"));
    release(s, d);
    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"originalEnd\":\"1900-02-29\"}", NULL, &s, &d), -1);
    release(s, d);
    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"originalEnd\":\"2025-04-31\"}", NULL, &s, &d), -1);
    release(s, d);
    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"originalEnd\":\"2025-00-10\"}", NULL, &s, &d), -1);
    release(s, d);
}

static void test_date_forms(void)
{
    static const struct {
        const char *in;
        const char *out;  /* NULL: must be refused */
    } cases[] = {
        { "2025-03-01", "2025-03-01" },
        { "2025-03-01T00:00:00Z", "2025-03-01" },
        { "2025-03-01T23:30:00+05:30", "2025-03-01" },
        { "2025-03-01T10:00:00.123-0800", "2025-03-01" },
        { "2025-03-01T10:00", "2025-03-01" },
        { "2025-03-01 10:00:00Z", "2025-03-01" },
        { "2025-3-1", NULL },
        { "03/01/2025", NULL },
        { "2025-03-01T25:00:00Z", NULL },
        { "2025-03-01T10:00:00ZZ", NULL },
        { "2025-03-01junk", NULL },
        { "", NULL },
        { "20250301", NULL },
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *delta = json_pack("{s:s}", "forecastStart", cases[i].in);
        json_t *s = NULL;
        json_t *d = NULL;
        int rc = pfa_validate_modification(PFA_OP_UPDATE, delta, NULL, &s, &d);
        if (cases[i].out) {
            CU_ASSERT_EQUAL(rc, 0);
            if (rc == 0)
                ASSERT_STR_EQ(json_string_value(json_object_get(s, "forecastStart")),
                                       cases[i].out);
        } else {
            CU_ASSERT_EQUAL(rc, -1);
            CU_ASSERT_PTR_NOT_NULL(detail_for(d, "forecastStart"));
        }
        if ((rc == 0) != (cases[i].out != NULL))
            fprintf(stderr, "date case %s: rc %d\n", cases[i].in, rc);
        json_decref(delta);
        release(s, d);
    }
    /* a date must be a string */
    {
        json_t *s;
        json_t *d;
        CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"forecastStart\":20250301}", NULL, &s, &d), -1);
        release(s, d);
    }
}

static void test_numeric_strings(void)
{
    static const struct {
        const char *in;
        double out;
        int ok;
    } cases[] = {
        { " 1200.50 ", 1200.5, 1 },
        { "1200", 1200, 1 },
        { "1e3", 1000, 1 },
        { "+7.25", 7.25, 1 },
        { "0.5", 0.5, 1 },
        { "NaN", 0, 0 },
        { "Infinity", 0, 0 },
        { "inf", 0, 0 },
        { "0x10", 0, 0 },
        { "1,200", 0, 0 },
        { "12abc", 0, 0 },
        { "", 0, 0 },
        { "  ", 0, 0 },
        { "-5", 0, 0 },
        { "1e400", 0, 0 },
        { "1e", 0, 0 },
        { ".", 0, 0 },
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *delta = json_pack("{s:s}", "monthlyRate", cases[i].in);
        json_t *s = NULL;
        json_t *d = NULL;
        int rc = pfa_validate_modification(PFA_OP_UPDATE, delta, NULL, &s, &d);
        if (cases[i].ok) {
            CU_ASSERT_EQUAL(rc, 0);
            CU_ASSERT_TRUE(json_is_number(json_object_get(s, "monthlyRate")));
            CU_ASSERT_DOUBLE_EQUAL(json_number_value(json_object_get(s, "monthlyRate")),
                                   cases[i].out, 1e-9);
        } else {
            CU_ASSERT_EQUAL(rc, -1);
            CU_ASSERT_PTR_NOT_NULL(detail_for(d, "monthlyRate"));
        }
        if ((rc == 0) != cases[i].ok)
            fprintf(stderr, "number case '%s': rc %d\n", cases[i].in, rc);
        json_decref(delta);
        release(s, d);
    }
}

static void test_negative_and_huge_numbers(void)
{
    json_t *s;
    json_t *d;

    /* the largest doubles are finite and accepted; a string beyond them is not */
    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"purchasePrice\":1.5e308}", NULL, &s, &d), 0);
    CU_ASSERT_TRUE(json_is_real(json_object_get(s, "purchasePrice")));
    release(s, d);
    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"purchasePrice\":\"1e309\"}", NULL, &s, &d), -1);
    ASSERT_STR_EQ(detail_for(d, "purchasePrice"), "must be a finite number");
    release(s, d);
    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"purchasePrice\":-1e308}", NULL, &s, &d), -1);
    ASSERT_STR_EQ(detail_for(d, "purchasePrice"), "must not be negative");
    release(s, d);
    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"purchasePrice\":-9223372036854775807}", NULL, &s, &d), -1);
    release(s, d);
    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"purchasePrice\":9223372036854775807}", NULL, &s, &d), 0);
    release(s, d);
    /* integral reals are stored as integers, others as reals */
    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"purchasePrice\":100.0,\"monthlyRate\":99.99}", NULL, &s, &d), 0);
    CU_ASSERT_TRUE(json_is_integer(json_object_get(s, "purchasePrice")));
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(s, "purchasePrice")), 100);
    CU_ASSERT_TRUE(json_is_real(json_object_get(s, "monthlyRate")));
    release(s, d);
    /* a boolean is not a number */
    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"purchasePrice\":true}", NULL, &s, &d), -1);
    ASSERT_STR_EQ(detail_for(d, "purchasePrice"), "must be a number");
    release(s, d);
}

static void test_strings_rules(void)
{
    char long_text[600];
    json_t *delta;
    json_t *s = NULL;
    json_t *d = NULL;

    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"category\":\"   \",\"class\":\"\",\"areaSilo\":\"  \"}",
                          rental_record, &s, &d), -1);
    CU_ASSERT_EQUAL(json_array_size(d), 2);
    ASSERT_STR_EQ(detail_for(d, "category"), "must not be empty");
    ASSERT_STR_EQ(detail_for(d, "class"), "must not be empty");
    release(s, d);

    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"areaSilo\":\"  \"}", rental_record, &s, &d), 0);
    ASSERT_STR_EQ(json_string_value(json_object_get(s, "areaSilo")), "");
    release(s, d);

    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"model\":42}", rental_record, &s, &d), -1);
    ASSERT_STR_EQ(detail_for(d, "model"), "must be a string");
    release(s, d);

    /* 500 characters (multi-byte ones count once) pass, 501 do not */
    memset(long_text, 'a', 500);
    long_text[500] = '\0';
    delta = json_pack("{s:s}", "equipment", long_text);
    CU_ASSERT_EQUAL(pfa_validate_modification(PFA_OP_UPDATE, delta, NULL, &s, &d), 0);
    json_decref(delta);
    release(s, d);
    long_text[500] = 'a';
    long_text[501] = '\0';
    delta = json_pack("{s:s}", "equipment", long_text);
    CU_ASSERT_EQUAL(pfa_validate_modification(PFA_OP_UPDATE, delta, NULL, &s, &d), -1);
    ASSERT_STR_EQ(detail_for(d, "equipment"), "must be at most 500 characters");
    json_decref(delta);
    release(s, d);
    for (int i = 0; i < 250; i++)
        memcpy(long_text + 2 * i, "\xc3\xa9", 2);
    long_text[500] = '\0';
    delta = json_pack("{s:s}", "equipment", long_text);
    CU_ASSERT_EQUAL(pfa_validate_modification(PFA_OP_UPDATE, delta, NULL, &s, &d), 0);
    json_decref(delta);
    release(s, d);

    /* an embedded NUL is refused */
    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"model\":\"a\\u0000b\"}", NULL, &s, &d), -1);
    CU_ASSERT_PTR_NOT_NULL(detail_for(d, "model"));
    release(s, d);
}

static void test_cross_field_on_overlaid_record(void)
{
    json_t *s;
    json_t *d;

    /* only forecastEnd in the delta, earlier than the mirror's forecastStart */
    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"forecastEnd\":\"2025-02-28\"}", rental_record, &s, &d), -1);
    ASSERT_STR_EQ(detail_for(d, "forecastEnd"), "must not be before forecastStart");
    CU_ASSERT_EQUAL(json_array_size(d), 1);
    release(s, d);
    /* moving the start past the mirror's end names the end field */
    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"forecastStart\":\"2025-10-01\"}", rental_record, &s, &d), -1);
    CU_ASSERT_PTR_NOT_NULL(detail_for(d, "forecastEnd"));
    CU_ASSERT_PTR_NULL(detail_for(d, "forecastStart"));
    release(s, d);
    /* the same end date as start is fine; clearing the start removes the rule */
    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"forecastEnd\":\"2025-03-01\"}", rental_record, &s, &d), 0);
    release(s, d);
    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"forecastStart\":null,\"forecastEnd\":\"2020-01-01\"}",
                          rental_record, &s, &d), 0);
    release(s, d);
    /* an invalid start is reported on its own, not as an ordering error on the end */
    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"forecastStart\":\"2025-02-30\",\"forecastEnd\":\"2020-01-01\"}",
                          rental_record, &s, &d), -1);
    CU_ASSERT_EQUAL(json_array_size(d), 1);
    CU_ASSERT_PTR_NOT_NULL(detail_for(d, "forecastStart"));
    release(s, d);
    /* a flaw already in the mirror does not block an unrelated edit */
    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{\"model\":\"X\"}",
                          "{\"source\":\"Rental\",\"forecastStart\":\"2025-05-01\","
                          "\"forecastEnd\":\"2025-01-01\"}", &s, &d), 0);
    release(s, d);
}

static void test_delete_with_delta(void)
{
    json_t *s;
    json_t *d;

    CU_ASSERT_EQUAL(check(PFA_OP_DELETE, "{\"model\":\"X\"}", rental_record, &s, &d), -1);
    ASSERT_STR_EQ(detail_for(d, "delta"), "must be empty for a delete");
    CU_ASSERT_EQUAL(json_array_size(d), 1);
    release(s, d);
    CU_ASSERT_EQUAL(check(PFA_OP_DELETE, "[1]", rental_record, &s, &d), -1);
    CU_ASSERT_PTR_NOT_NULL(detail_for(d, "delta"));
    release(s, d);
}

static void test_update_delta_shape(void)
{
    json_t *s;
    json_t *d;

    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "{}", rental_record, &s, &d), -1);
    ASSERT_STR_EQ(detail_for(d, "delta"), "must change at least one field");
    release(s, d);
    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, NULL, rental_record, &s, &d), -1);
    CU_ASSERT_PTR_NOT_NULL(detail_for(d, "delta"));
    release(s, d);
    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "\"monthlyRate\"", rental_record, &s, &d), -1);
    ASSERT_STR_EQ(detail_for(d, "delta"), "must be a JSON object");
    release(s, d);
    CU_ASSERT_EQUAL(check(PFA_OP_UPDATE, "[{\"model\":\"x\"}]", rental_record, &s, &d), -1);
    CU_ASSERT_PTR_NOT_NULL(detail_for(d, "delta"));
    release(s, d);
}

static void test_inputs_untouched(void)
{
    json_t *delta = parse("{\"model\":\"  M1 \",\"monthlyRate\":\"5\"}");
    json_t *current = parse(rental_record);
    json_t *delta_copy = json_deep_copy(delta);
    json_t *current_copy = json_deep_copy(current);
    json_t *s = NULL;
    json_t *d = NULL;

    CU_ASSERT_FATAL(delta && current && delta_copy && current_copy);
    CU_ASSERT_EQUAL(pfa_validate_modification(PFA_OP_UPDATE, delta, current, &s, &d), 0);
    CU_ASSERT_TRUE(json_equal(delta, delta_copy));
    CU_ASSERT_TRUE(json_equal(current, current_copy));
    CU_ASSERT_PTR_NOT_EQUAL(s, delta);
    CU_ASSERT_EQUAL(s ? s->refcount : 0, 1);
    release(s, d);
    json_decref(delta);
    json_decref(current);
    json_decref(delta_copy);
    json_decref(current_copy);
}

int main(void)
{
    static const struct unit_test tests[] = {
        { "valid rental data", test_valid_rental_data },
        { "valid purchase data", test_valid_purchase_data },
        { "invalid date ordering", test_invalid_date_ordering },
        { "missing monthlyRate for rental", test_missing_monthly_rate_for_rental },
        { "missing purchasePrice for purchase", test_missing_purchase_price_for_purchase },
        { "negative monthlyRate", test_negative_monthly_rate },
        { "invalid DOR enum", test_invalid_dor_enum },
        { "invalid source enum", test_invalid_source_enum },
        { "invalid boolean field", test_invalid_boolean_field },
        { "multiple validation errors", test_multiple_validation_errors },
        { "business: no moving actual start forward when actualized", test_business_actual_start_forward },
        { "business: no source change when actualized", test_business_source_change_actualized },
        { "business: no un-discontinuing", test_business_undiscontinue },
        { "business: no deleting actualized", test_business_delete_actualized },
        { "sanitize delta", test_sanitize_delta },
        { "valid update on empty mirror", test_valid_update_on_empty_mirror },
        { "null clears a field", test_null_clears_field },
        { "null on category/source/dor refused", test_null_on_required_refused },
        { "unknown field", test_unknown_field },
        { "leap-day dates", test_leap_day_dates },
        { "date-only and date-time forms", test_date_forms },
        { "numeric strings", test_numeric_strings },
        { "negative and huge numbers", test_negative_and_huge_numbers },
        { "string rules", test_strings_rules },
        { "cross-field on the overlaid record", test_cross_field_on_overlaid_record },
        { "delete with a non-empty delta", test_delete_with_delta },
        { "update delta shape", test_update_delta_shape },
        { "inputs untouched", test_inputs_untouched },
    };
    return UNIT_RUN("validation", NULL, tests);
}
