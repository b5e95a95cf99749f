#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include <jansson.h>

#include "pfa_record.h"

static json_t *parse(const char *text)
{
    json_error_t err;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &err);
    if (!v)
        fprintf(stderr, "bad test JSON: %s: %s\n", text, err.text);
    return v;
}

/* The diff of a and b as compact JSON text, for comparing against an expected list. */
static void assert_diff(const char *a_text, const char *b_text, const char *expected)
{
    json_t *a = a_text ? parse(a_text) : NULL;
    json_t *b = b_text ? parse(b_text) : NULL;
    json_t *diff = pfa_diff_fields(a, b);
    char *got = diff ? json_dumps(diff, JSON_COMPACT) : NULL;

    CU_ASSERT_PTR_NOT_NULL(got);
    if (got) {
        ASSERT_STR_EQ(got, expected);
        if (strcmp(got, expected) != 0)
            fprintf(stderr, "diff(%s, %s) = %s, want %s\n", a_text, b_text, got, expected);
    }
    free(got);
    json_decref(diff);
    json_decref(a);
    json_decref(b);
}

static void test_field_table(void)
{
    /* the record's 23 fields (src/api/openapi.yaml PfaDelta), each found by bisection, so
     * the table is sorted; distinct entries */
    static const char *const names[] = {
        "actualEnd", "actualStart", "areaSilo", "category", "class", "contract", "dor",
        "equipment", "forecastCategory", "forecastEnd", "forecastStart", "hasActuals", "hasPlan",
        "isActualized", "isDiscontinued", "isFundsTransferable", "manufacturer", "model",
        "monthlyRate", "originalEnd", "originalStart", "purchasePrice", "source",
    };
    const struct pfa_field *seen[23] = { NULL };
    const struct pfa_field *f;

    CU_ASSERT_EQUAL(sizeof names / sizeof names[0], 23);
    for (size_t i = 0; i < 23; i++) {
        f = pfa_field_find(names[i]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        ASSERT_STR_EQ(f->name, names[i]);
        for (size_t j = 0; j < i; j++)
            CU_ASSERT_PTR_NOT_EQUAL(seen[j], f);
        seen[i] = f;
        CU_ASSERT_EQUAL(f->type == PFA_ENUM, f->enum_values != NULL);
        CU_ASSERT_EQUAL(f->nullable, strcmp(f->name, "category") != 0 &&
                                     strcmp(f->name, "source") != 0 && strcmp(f->name, "dor") != 0);
    }
    f = pfa_field_find("source");
    CU_ASSERT_FATAL(f != NULL);
    CU_ASSERT_EQUAL(f->type, PFA_ENUM);
    ASSERT_STR_EQ(f->enum_values[0], "Rental");
    ASSERT_STR_EQ(f->enum_values[1], "Purchase");
    CU_ASSERT_PTR_NULL(f->enum_values[2]);
    CU_ASSERT_EQUAL(pfa_field_find("monthlyRate")->type, PFA_NUMBER);
    CU_ASSERT_EQUAL(pfa_field_find("actualEnd")->type, PFA_DATE);
    CU_ASSERT_EQUAL(pfa_field_find("hasPlan")->type, PFA_BOOL);
    CU_ASSERT_EQUAL(pfa_field_find("areaSilo")->type, PFA_STRING);
    CU_ASSERT_PTR_NULL(pfa_field_find("pfaId"));
    CU_ASSERT_PTR_NULL(pfa_field_find("Source"));
    CU_ASSERT_PTR_NULL(pfa_field_find(""));
    CU_ASSERT_PTR_NULL(pfa_field_find(NULL));
}

static void test_op_parse(void)
{
    enum pfa_op op = PFA_OP_UPDATE;

    CU_ASSERT_EQUAL(pfa_op_parse("delete", &op), 0);
    CU_ASSERT_EQUAL(op, PFA_OP_DELETE);
    CU_ASSERT_EQUAL(pfa_op_parse("update", &op), 0);
    CU_ASSERT_EQUAL(op, PFA_OP_UPDATE);
    CU_ASSERT_EQUAL(pfa_op_parse("create", &op), -1);
    CU_ASSERT_EQUAL(pfa_op_parse("UPDATE", &op), -1);
    CU_ASSERT_EQUAL(pfa_op_parse(NULL, &op), -1);
    ASSERT_STR_EQ(pfa_op_name(PFA_OP_DELETE), "delete");
    ASSERT_STR_EQ(pfa_op_name(PFA_OP_UPDATE), "update");
}

static void test_apply_delta(void)
{
    json_t *record = parse("{\"category\":\"Cranes\",\"model\":\"A\",\"monthlyRate\":100}");
    json_t *delta = parse("{\"model\":\"B\",\"monthlyRate\":null,\"hasPlan\":true,\"dor\":\"BEO\"}");
    json_t *record_copy = json_deep_copy(record);
    json_t *delta_copy = json_deep_copy(delta);
    json_t *expected = parse("{\"category\":\"Cranes\",\"model\":\"B\",\"hasPlan\":true,\"dor\":\"BEO\"}");
    json_t *after;

    CU_ASSERT_FATAL(record && delta && record_copy && delta_copy && expected);
    after = pfa_apply_delta(record, delta);
    CU_ASSERT_FATAL(after != NULL);
    CU_ASSERT_TRUE(json_equal(after, expected));
    /* the inputs are not modified, and the result shares nothing with them */
    CU_ASSERT_TRUE(json_equal(record, record_copy));
    CU_ASSERT_TRUE(json_equal(delta, delta_copy));
    CU_ASSERT_PTR_NOT_EQUAL(after, record);
    CU_ASSERT_EQUAL(record->refcount, 1);
    json_object_set_new(after, "model", json_string("C"));
    ASSERT_STR_EQ(json_string_value(json_object_get(delta, "model")), "B");
    json_decref(after);

    /* NULL record is {}; NULL delta copies the record */
    after = pfa_apply_delta(NULL, delta);
    CU_ASSERT_EQUAL(json_object_size(after), 3);
    CU_ASSERT_PTR_NULL(json_object_get(after, "monthlyRate"));
    json_decref(after);
    after = pfa_apply_delta(record, NULL);
    CU_ASSERT_TRUE(json_equal(after, record));
    json_decref(after);

    json_decref(record);
    json_decref(delta);
    json_decref(record_copy);
    json_decref(delta_copy);
    json_decref(expected);
}

static void test_value_equal(void)
{
    json_t *i100 = json_integer(100);
    json_t *r100 = json_real(100.0);
    json_t *r1005 = json_real(100.5);
    json_t *null = json_null();
    json_t *s100 = json_string("100");
    json_t *t = json_true();
    json_t *f = json_false();

    CU_ASSERT_TRUE(pfa_value_equal(i100, r100));
    CU_ASSERT_TRUE(pfa_value_equal(r100, i100));
    CU_ASSERT_FALSE(pfa_value_equal(i100, r1005));
    CU_ASSERT_FALSE(pfa_value_equal(i100, s100));
    CU_ASSERT_TRUE(pfa_value_equal(NULL, null));
    CU_ASSERT_TRUE(pfa_value_equal(NULL, NULL));
    CU_ASSERT_FALSE(pfa_value_equal(NULL, f));
    CU_ASSERT_FALSE(pfa_value_equal(t, f));
    CU_ASSERT_TRUE(pfa_value_equal(t, t));
    json_decref(i100);
    json_decref(r100);
    json_decref(r1005);
    json_decref(null);
    json_decref(s100);
    json_decref(t);
    json_decref(f);
}

static void test_diff_fields(void)
{
    assert_diff("{\"a\":1}", "{\"a\":1}", "[]");
    assert_diff(NULL, NULL, "[]");
    /* numbers compare numerically */
    assert_diff("{\"monthlyRate\":100}", "{\"monthlyRate\":100.0}", "[]");
    assert_diff("{\"monthlyRate\":100}", "{\"monthlyRate\":100.01}", "[\"monthlyRate\"]");
    /* missing and null are the same */
    assert_diff("{\"model\":null}", "{}", "[]");
    assert_diff(NULL, "{\"model\":null}", "[]");
    /* sorted, keys from either side, each once */
    assert_diff("{\"source\":\"Rental\",\"model\":\"A\",\"dor\":\"BEO\",\"same\":true}",
                "{\"same\":true,\"class\":\"X\",\"dor\":\"PROJECT\",\"source\":\"Purchase\"}",
                "[\"class\",\"dor\",\"model\",\"source\"]");
    assert_diff("{\"hasPlan\":true}", NULL, "[\"hasPlan\"]");
    assert_diff("{\"hasPlan\":false}", "{\"hasPlan\":\"false\"}", "[\"hasPlan\"]");
}

static void test_date_parse(void)
{
    long days = -1;

    CU_ASSERT_TRUE(pfa_date_parse("1970-01-01", &days));
    CU_ASSERT_EQUAL(days, 0);
    CU_ASSERT_TRUE(pfa_date_parse("1970-01-02", &days));
    CU_ASSERT_EQUAL(days, 1);
    CU_ASSERT_TRUE(pfa_date_parse("1969-12-31", &days));
    CU_ASSERT_EQUAL(days, -1);
    CU_ASSERT_TRUE(pfa_date_parse("2000-03-01", &days));
    CU_ASSERT_EQUAL(days, 11017);
    CU_ASSERT_TRUE(pfa_date_parse("2024-02-29", &days));
    CU_ASSERT_EQUAL(days, 19782);
    CU_ASSERT_TRUE(pfa_date_parse("2024-12-31", NULL));
    CU_ASSERT_TRUE(pfa_date_parse("2000-02-29", NULL));
    CU_ASSERT_FALSE(pfa_date_parse("2023-02-29", NULL));
    CU_ASSERT_FALSE(pfa_date_parse("2100-02-29", NULL));
    CU_ASSERT_FALSE(pfa_date_parse("2025-06-31", NULL));
    CU_ASSERT_FALSE(pfa_date_parse("2025-13-01", NULL));
    CU_ASSERT_FALSE(pfa_date_parse("2025-01-00", NULL));
    CU_ASSERT_FALSE(pfa_date_parse("0000-01-01", NULL));
    CU_ASSERT_FALSE(pfa_date_parse("2025-1-01", NULL));
    CU_ASSERT_FALSE(pfa_date_parse("2025-01-01T00:00:00Z", NULL));
    CU_ASSERT_FALSE(pfa_date_parse("2025/01/01", NULL));
    CU_ASSERT_FALSE(pfa_date_parse("+025-01-01", NULL));
    CU_ASSERT_FALSE(pfa_date_parse("", NULL));
    CU_ASSERT_FALSE(pfa_date_parse(NULL, NULL));
    /* consecutive days across a month and a leap day */
    {
        long a, b;
        CU_ASSERT_TRUE(pfa_date_parse("2024-02-29", &a) && pfa_date_parse("2024-03-01", &b));
        CU_ASSERT_EQUAL(b - a, 1);
        CU_ASSERT_TRUE(pfa_date_parse("2023-02-28", &a) && pfa_date_parse("2023-03-01", &b));
        CU_ASSERT_EQUAL(b - a, 1);
    }
}

int main(void)
{
    static const struct unit_test tests[] = {
        { "field table", test_field_table },
        { "operation names", test_op_parse },
        { "apply delta", test_apply_delta },
        { "value equality", test_value_equal },
        { "diff fields", test_diff_fields },
        { "date parse", test_date_parse },
    };
    return UNIT_RUN("pfa_record", NULL, tests);
}
