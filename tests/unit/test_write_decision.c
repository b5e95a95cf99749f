/* write_decide: the worker's decision before a write, on the seed's conflict cases (no
 * conflict when baseVersion >= mirrorVersion, auto-merge of non-overlapping changes, a
 * conflict for overlapping ones) and on what the decision adds (convergence, deletes,
 * validation on the record as it would be after the write). */
#include "write_decision.h"

#include "unit.h"

/* PEMS's record now, after it changed forecastEnd and monthlyRate since version 3 */
#define NOW "{\"category\":\"Cranes\",\"source\":\"Rental\",\"dor\":\"BEO\",\"monthlyRate\":15000," \
            "\"forecastStart\":\"2025-03-01\",\"forecastEnd\":\"2025-12-31\",\"model\":\"LTM 1100\"}"
#define CHANGED "[\"forecastEnd\",\"monthlyRate\"]"

static json_t *J(const char *text)
{
    return text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
}

static bool same(const json_t *v, const char *text)
{
    json_t *want = J(text);
    bool eq = v && want && json_equal((json_t *)v, want);
    if (!eq) {
        char *got = v ? json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        fprintf(stderr, "got %s, want %s\n", got ? got : "(null)", text);
        free(got);
    }
    json_decref(want);
    return eq;
}

/* decides an update (delta) or a delete (delta NULL) made on base against mirror */
static enum write_verdict decide(int64_t base, int64_t mirror, const char *changed,
                                 const char *delta, const char *now, bool deleted,
                                 struct write_decision *out)
{
    json_t *c = J(changed), *d = J(delta), *n = J(now);
    struct write_case wc = { .op = delta ? PFA_OP_UPDATE : PFA_OP_DELETE, .base_version = base,
                             .delta = d, .mirror_version = mirror, .mirror_deleted = deleted,
                             .mirror_data = n, .changed_since_base = c };
    write_decide(&wc, out);
    json_decref(c);
    json_decref(d);
    json_decref(n);
    return out->verdict;
}

static void test_no_conflict_when_base_current(void)
{
    struct write_decision d;
    CU_ASSERT_EQUAL(decide(3, 3, "[]", "{\"monthlyRate\":99}", NOW, false, &d), WRITE_SEND);
    CU_ASSERT_TRUE(same(d.changes, "{\"monthlyRate\":99}"));
    CU_ASSERT_FALSE(d.merged);
    write_decision_clear(&d);
    /* a base newer than the mirror (the mirror has not caught up) is no conflict either */
    CU_ASSERT_EQUAL(decide(5, 4, CHANGED, "{\"monthlyRate\":99}", NOW, false, &d), WRITE_SEND);
    CU_ASSERT_FALSE(d.merged);
    write_decision_clear(&d);
}

static void test_auto_merge_non_overlapping(void)
{
    struct write_decision d;
    /* PEMS changed forecastEnd and monthlyRate; the local edit changes model only */
    CU_ASSERT_EQUAL(decide(3, 5, CHANGED, "{\"model\":\"LTM 1200\"}", NOW, false, &d), WRITE_SEND);
    CU_ASSERT_TRUE(same(d.changes, "{\"model\":\"LTM 1200\"}"));
    CU_ASSERT_TRUE(d.merged);
    CU_ASSERT_PTR_NULL(d.conflict_fields);
    write_decision_clear(&d);
}

static void test_conflict_for_overlapping(void)
{
    struct write_decision d;
    CU_ASSERT_EQUAL(decide(3, 5, CHANGED, "{\"monthlyRate\":12000,\"model\":\"X\"}", NOW, false, &d),
                    WRITE_CONFLICT);
    CU_ASSERT_TRUE(same(d.conflict_fields, "[\"monthlyRate\"]"));
    CU_ASSERT_PTR_NULL(d.changes);
    write_decision_clear(&d);
    CU_ASSERT_EQUAL(decide(3, 5, CHANGED, "{\"forecastEnd\":\"2026-01-31\",\"monthlyRate\":1}", NOW,
                           false, &d), WRITE_CONFLICT);
    CU_ASSERT_TRUE(same(d.conflict_fields, "[\"forecastEnd\",\"monthlyRate\"]"));
    write_decision_clear(&d);
}

static void test_convergent_edit_is_no_conflict(void)
{
    struct write_decision d;
    /* both sides reached 15000: nothing to write, synced */
    CU_ASSERT_EQUAL(decide(3, 5, CHANGED, "{\"monthlyRate\":15000}", NOW, false, &d),
                    WRITE_CONVERGED);
    write_decision_clear(&d);
    /* the converged field dropped, the rest written on the new version */
    CU_ASSERT_EQUAL(decide(3, 5, CHANGED, "{\"monthlyRate\":15000,\"model\":\"Y\"}", NOW, false, &d),
                    WRITE_SEND);
    CU_ASSERT_TRUE(same(d.changes, "{\"model\":\"Y\"}"));
    CU_ASSERT_TRUE(d.merged);
    write_decision_clear(&d);
    /* on the current version nothing is compared: the edit is written as it is */
    CU_ASSERT_EQUAL(decide(5, 5, "[]", "{\"model\":\"LTM 1100\"}", NOW, false, &d), WRITE_SEND);
    write_decision_clear(&d);
}

static void test_validated_on_the_record_after_the_write(void)
{
    struct write_decision d;
    /* forecastEnd before PEMS's forecastStart: invalid, named by the end field */
    CU_ASSERT_EQUAL(decide(5, 5, "[]", "{\"forecastEnd\":\"2025-01-01\"}", NOW, false, &d),
                    WRITE_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.error, "validation_failed: forecastEnd"));
    CU_ASSERT_PTR_NULL(d.changes);
    write_decision_clear(&d);
    CU_ASSERT_EQUAL(decide(5, 5, "[]", "{\"monthlyRate\":-1}", NOW, false, &d), WRITE_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.error, "monthlyRate"));
    write_decision_clear(&d);
    /* sanitized: a numeric string written as a number */
    CU_ASSERT_EQUAL(decide(5, 5, "[]", "{\"monthlyRate\":\"16000\"}", NOW, false, &d), WRITE_SEND);
    CU_ASSERT_TRUE(same(d.changes, "{\"monthlyRate\":16000}"));
    write_decision_clear(&d);
}

static void test_deletes(void)
{
    struct write_decision d;
    CU_ASSERT_EQUAL(decide(5, 5, "[]", NULL, NOW, false, &d), WRITE_SEND);
    CU_ASSERT_FALSE(d.merged);
    write_decision_clear(&d);
    /* PEMS deleted it already */
    CU_ASSERT_EQUAL(decide(3, 5, CHANGED, NULL, NOW, true, &d), WRITE_CONVERGED);
    write_decision_clear(&d);
    /* PEMS changed fields since: every one of them is in conflict with a delete */
    CU_ASSERT_EQUAL(decide(3, 5, CHANGED, NULL, NOW, false, &d), WRITE_CONFLICT);
    CU_ASSERT_TRUE(same(d.conflict_fields, CHANGED));
    write_decision_clear(&d);
    /* a newer version that changed nothing we know: delete on it */
    CU_ASSERT_EQUAL(decide(3, 5, "[]", NULL, NOW, false, &d), WRITE_SEND);
    CU_ASSERT_TRUE(d.merged);
    write_decision_clear(&d);
    /* an actualized record cannot be deleted */
    CU_ASSERT_EQUAL(decide(5, 5, "[]", NULL,
                           "{\"category\":\"C\",\"source\":\"Rental\",\"dor\":\"BEO\","
                           "\"monthlyRate\":1,\"isActualized\":true}", false, &d), WRITE_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.error, "validation_failed"));
    write_decision_clear(&d);
}

int main(void)
{
    static const struct unit_test tests[] = {
        { "no conflict when baseVersion >= mirrorVersion", test_no_conflict_when_base_current },
        { "auto-merge for non-overlapping changes", test_auto_merge_non_overlapping },
        { "conflict for overlapping changes", test_conflict_for_overlapping },
        { "a convergent edit is no conflict", test_convergent_edit_is_no_conflict },
        { "validated on the record after the write", test_validated_on_the_record_after_the_write },
        { "deletes", test_deletes },
    };
    return UNIT_RUN("write_decision", NULL, tests);
}
