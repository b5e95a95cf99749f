#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include <jansson.h>

#include "conflict.h"

/* PEMS's record now, after it changed forecastEnd and monthlyRate since our base version */
static const char *pems_now =
    "{\"category\":\"Cranes\",\"source\":\"Rental\",\"dor\":\"BEO\",\"monthlyRate\":15000,"
    "\"forecastStart\":\"2025-03-01\",\"forecastEnd\":\"2025-12-31\",\"model\":\"LTM 1100\"}";
static const char *pems_changed = "[\"forecastEnd\",\"monthlyRate\"]";

static json_t *parse(const char *text)
{
    json_error_t err;
    json_t *v = text ? json_loads(text, JSON_DECODE_ANY, &err) : NULL;
    if (text && !v)
        fprintf(stderr, "bad test JSON: %s: %s\n", text, err.text);
    return v;
}

static bool json_text_equal(const json_t *v, const char *text)
{
    json_t *want = parse(text);
    bool eq = want && v && json_equal((json_t *)v, want);
    if (!eq) {
        char *got = v ? json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        fprintf(stderr, "got %s, want %s\n", got ? got : "(null)", text);
        free(got);
    }
    json_decref(want);
    return eq;
}

/* conflict_detect on JSON texts; returns its result code. */
static int detect(int64_t base, int64_t mirror, const char *changed, const char *delta, const char *now,
                  struct conflict_result *res)
{
    json_t *c = parse(changed);
    json_t *d = parse(delta);
    json_t *n = parse(now);
    int rc = conflict_detect(base, mirror, c, d, n, res);

    json_decref(c);
    json_decref(d);
    json_decref(n);
    return rc;
}

static void test_no_conflict_when_base_current(void)
{
    struct conflict_result res;

    CU_ASSERT_EQUAL(detect(3, 3, pems_changed, "{\"monthlyRate\":99}", pems_now, &res), 0);
    CU_ASSERT_EQUAL(res.outcome, CONFLICT_NONE);
    CU_ASSERT_TRUE(json_text_equal(res.conflict_fields, "[]"));
    CU_ASSERT_TRUE(json_text_equal(res.rebased_delta, "{\"monthlyRate\":99}"));
    conflict_result_clear(&res);
    CU_ASSERT_PTR_NULL(res.rebased_delta);
    CU_ASSERT_PTR_NULL(res.conflict_fields);

    /* a base newer than the mirror (the mirror has not caught up) is no conflict either */
    CU_ASSERT_EQUAL(detect(5, 4, pems_changed, "{\"monthlyRate\":99}", pems_now, &res), 0);
    CU_ASSERT_EQUAL(res.outcome, CONFLICT_NONE);
    CU_ASSERT_TRUE(json_text_equal(res.rebased_delta, "{\"monthlyRate\":99}"));
    conflict_result_clear(&res);

    /* 64-bit versions compare whole: 2^32+5 is newer than 4, and 2^32+1 older than 2^32+2
     * (as 32-bit ints they would be 5 > 4 and 1 < 2, and 2^31 would be negative) */
    CU_ASSERT_EQUAL(detect(4294967301LL, 4294967301LL, pems_changed, "{\"monthlyRate\":99}",
                           pems_now, &res), 0);
    CU_ASSERT_EQUAL(res.outcome, CONFLICT_NONE);
    conflict_result_clear(&res);
    CU_ASSERT_EQUAL(detect(2147483648LL, 5, pems_changed, "{\"monthlyRate\":99}", pems_now, &res),
                    0);
    CU_ASSERT_EQUAL(res.outcome, CONFLICT_NONE);
    conflict_result_clear(&res);
    CU_ASSERT_EQUAL(detect(4, 4294967301LL, pems_changed, "{\"monthlyRate\":99}", pems_now, &res),
                    0);
    CU_ASSERT_EQUAL(res.outcome, CONFLICT_OVERLAP);
    conflict_result_clear(&res);
}

static void test_auto_merge_non_overlapping(void)
{
    struct conflict_result res;

    CU_ASSERT_EQUAL(detect(2, 3, pems_changed, "{\"model\":\"LTM 1200\",\"hasPlan\":true}",
                           pems_now, &res), 0);
    CU_ASSERT_EQUAL(res.outcome, CONFLICT_AUTO_MERGE);
    CU_ASSERT_TRUE(json_text_equal(res.conflict_fields, "[]"));
    CU_ASSERT_TRUE(json_text_equal(res.rebased_delta, "{\"model\":\"LTM 1200\",\"hasPlan\":true}"));
    conflict_result_clear(&res);
}

static void test_conflict_for_overlapping(void)
{
    struct conflict_result res;

    CU_ASSERT_EQUAL(detect(2, 4, pems_changed,
                           "{\"monthlyRate\":14000,\"model\":\"X\",\"forecastEnd\":\"2025-11-30\"}",
                           pems_now, &res), 0);
    CU_ASSERT_EQUAL(res.outcome, CONFLICT_OVERLAP);
    /* sorted names */
    CU_ASSERT_TRUE(json_text_equal(res.conflict_fields, "[\"forecastEnd\",\"monthlyRate\"]"));
    CU_ASSERT_TRUE(json_text_equal(res.rebased_delta,
                                   "{\"monthlyRate\":14000,\"model\":\"X\",\"forecastEnd\":\"2025-11-30\"}"));
    conflict_result_clear(&res);
}

/* conflict_resolve against PEMS's record now (pems_now): its result and plan */
static enum conflict_resolve_error resolve(bool resolved, enum conflict_resolution r,
                                           const char *local, const char *merged,
                                           bool record_gone, struct conflict_resolution_plan *plan)
{
    json_t *l = parse(local), *m = parse(merged), *now = record_gone ? NULL : parse(pems_now);
    enum conflict_resolve_error e = conflict_resolve(resolved, r, PFA_OP_UPDATE, l, m, now, plan);
    json_decref(l);
    json_decref(m);
    json_decref(now);
    return e;
}

static void test_resolve_use_local(void)
{
    struct conflict_resolution_plan plan;
    CU_ASSERT_EQUAL(resolve(false, RESOLVE_USE_LOCAL, "{\"monthlyRate\":14000}", NULL, false, &plan),
                    RESOLVE_OK);
    CU_ASSERT_TRUE(json_text_equal(plan.applied, "{\"monthlyRate\":14000}"));
    CU_ASSERT_FALSE(plan.discard);
    CU_ASSERT_EQUAL(plan.op, PFA_OP_UPDATE);
    conflict_resolution_plan_clear(&plan);
    /* mergedData belongs to merge alone (the API's 400) */
    CU_ASSERT_EQUAL(resolve(false, RESOLVE_USE_LOCAL, "{\"monthlyRate\":14000}",
                            "{\"monthlyRate\":1}", false, &plan),
                    RESOLVE_ERR_MERGED_DATA_NOT_ALLOWED);
    CU_ASSERT_PTR_NULL(plan.applied);
    conflict_resolution_plan_clear(&plan);
    /* JSON null is an absent mergedData */
    CU_ASSERT_EQUAL(resolve(false, RESOLVE_USE_LOCAL, "{\"monthlyRate\":14000}", "null", false,
                            &plan), RESOLVE_OK);
    conflict_resolution_plan_clear(&plan);
    /* the local change is validated again on PEMS's record now */
    CU_ASSERT_EQUAL(resolve(false, RESOLVE_USE_LOCAL, "{\"forecastStart\":\"2026-06-01\"}", NULL,
                            false, &plan), RESOLVE_ERR_INVALID);
    CU_ASSERT_PTR_NULL(plan.applied);
    CU_ASSERT_TRUE(json_array_size(plan.details) > 0);
    conflict_resolution_plan_clear(&plan);
    /* nothing to rebase on when PEMS deleted the record */
    CU_ASSERT_EQUAL(resolve(false, RESOLVE_USE_LOCAL, "{\"monthlyRate\":14000}", NULL, true, &plan),
                    RESOLVE_ERR_RECORD_GONE);
    conflict_resolution_plan_clear(&plan);
}

static void test_resolve_use_pems(void)
{
    struct conflict_resolution_plan plan;
    /* the modification is discarded; appliedChanges is {} (also when the record is gone) */
    CU_ASSERT_EQUAL(resolve(false, RESOLVE_USE_PEMS, "{\"monthlyRate\":14000}", NULL, false, &plan),
                    RESOLVE_OK);
    CU_ASSERT_TRUE(plan.discard);
    CU_ASSERT_TRUE(json_text_equal(plan.applied, "{}"));
    conflict_resolution_plan_clear(&plan);
    CU_ASSERT_EQUAL(resolve(false, RESOLVE_USE_PEMS, "{\"monthlyRate\":14000}", NULL, true, &plan),
                    RESOLVE_OK);
    CU_ASSERT_TRUE(plan.discard);
    conflict_resolution_plan_clear(&plan);
    CU_ASSERT_EQUAL(resolve(false, RESOLVE_USE_PEMS, "{\"monthlyRate\":14000}", "{}", false, &plan),
                    RESOLVE_ERR_MERGED_DATA_NOT_ALLOWED);
    conflict_resolution_plan_clear(&plan);
}

static void test_reject_merge_without_data(void)
{
    struct conflict_resolution_plan plan;
    const char *local = "{\"monthlyRate\":14000}";
    CU_ASSERT_EQUAL(resolve(false, RESOLVE_MERGE, local, NULL, false, &plan),
                    RESOLVE_ERR_MERGED_DATA_REQUIRED);
    CU_ASSERT_PTR_NULL(plan.applied);
    CU_ASSERT_EQUAL(resolve(false, RESOLVE_MERGE, local, "null", false, &plan),
                    RESOLVE_ERR_MERGED_DATA_REQUIRED);
    CU_ASSERT_EQUAL(resolve(false, RESOLVE_MERGE, local, "\"x\"", false, &plan),
                    RESOLVE_ERR_MERGED_DATA_REQUIRED);
    /* a malformed request is reported before the conflict's state */
    CU_ASSERT_EQUAL(resolve(true, RESOLVE_MERGE, local, NULL, false, &plan),
                    RESOLVE_ERR_MERGED_DATA_REQUIRED);
    CU_ASSERT_EQUAL(conflict_resolve_request(RESOLVE_MERGE, NULL), RESOLVE_ERR_MERGED_DATA_REQUIRED);
    CU_ASSERT_EQUAL(conflict_resolve_request(RESOLVE_USE_LOCAL, NULL), RESOLVE_OK);
    /* {} is given, and then an update that changes nothing: invalid like any modification */
    CU_ASSERT_EQUAL(resolve(false, RESOLVE_MERGE, local, "{}", false, &plan), RESOLVE_ERR_INVALID);
    CU_ASSERT_TRUE(json_array_size(plan.details) > 0);
    conflict_resolution_plan_clear(&plan);
}

static void test_resolve_merge_with_data(void)
{
    struct conflict_resolution_plan plan;
    CU_ASSERT_EQUAL(resolve(false, RESOLVE_MERGE, "{\"monthlyRate\":14000}",
                            "{\"monthlyRate\":14500,\"model\":\"Y\"}", false, &plan),
                    RESOLVE_OK);
    CU_ASSERT_TRUE(json_text_equal(plan.applied, "{\"monthlyRate\":14500,\"model\":\"Y\"}"));
    CU_ASSERT_FALSE(plan.discard);
    CU_ASSERT_EQUAL(plan.op, PFA_OP_UPDATE);
    conflict_resolution_plan_clear(&plan);
    /* mergedData is validated like any modification */
    CU_ASSERT_EQUAL(resolve(false, RESOLVE_MERGE, "{\"monthlyRate\":14000}",
                            "{\"monthlyRate\":-1}", false, &plan), RESOLVE_ERR_INVALID);
    conflict_resolution_plan_clear(&plan);
    CU_ASSERT_EQUAL(resolve(false, RESOLVE_MERGE, "{\"monthlyRate\":14000}",
                            "{\"monthlyRate\":14500}", true, &plan), RESOLVE_ERR_RECORD_GONE);
    conflict_resolution_plan_clear(&plan);
    /* merge of a delete is an update */
    json_t *m = parse("{\"monthlyRate\":14500}"), *now = parse(pems_now);
    CU_ASSERT_EQUAL(conflict_resolve(false, RESOLVE_MERGE, PFA_OP_DELETE, NULL, m, now, &plan),
                    RESOLVE_OK);
    CU_ASSERT_EQUAL(plan.op, PFA_OP_UPDATE);
    conflict_resolution_plan_clear(&plan);
    json_decref(m);
    json_decref(now);
}

static void test_resolve_merge_keeping_pems(void)
{
    struct conflict_resolution_plan plan;
    /* every field holds PEMS's value now (15000 == 15000.0): use_pems, nothing written */
    CU_ASSERT_EQUAL(resolve(false, RESOLVE_MERGE, "{\"monthlyRate\":14000}",
                            "{\"monthlyRate\":15000.0,\"model\":\"LTM 1100\"}", false, &plan),
                    RESOLVE_OK);
    CU_ASSERT_EQUAL(plan.resolution, RESOLVE_USE_PEMS);
    CU_ASSERT_TRUE(plan.discard);
    CU_ASSERT_TRUE(json_text_equal(plan.applied, "{}"));
    conflict_resolution_plan_clear(&plan);
    /* PEMS's values as they read once sanitized */
    CU_ASSERT_EQUAL(resolve(false, RESOLVE_MERGE, "{\"monthlyRate\":14000}",
                            "{\"model\":\" LTM 1100 \"}", false, &plan),
                    RESOLVE_OK);
    CU_ASSERT_EQUAL(plan.resolution, RESOLVE_USE_PEMS);
    CU_ASSERT_TRUE(plan.discard);
    conflict_resolution_plan_clear(&plan);
    /* one field of another value: a merge, written */
    CU_ASSERT_EQUAL(resolve(false, RESOLVE_MERGE, "{\"monthlyRate\":14000}",
                            "{\"monthlyRate\":15000,\"model\":\"LTM 1200\"}", false, &plan),
                    RESOLVE_OK);
    CU_ASSERT_EQUAL(plan.resolution, RESOLVE_MERGE);
    CU_ASSERT_FALSE(plan.discard);
    CU_ASSERT_TRUE(json_text_equal(plan.applied, "{\"monthlyRate\":15000,\"model\":\"LTM 1200\"}"));
    conflict_resolution_plan_clear(&plan);
    /* PEMS's values on a record PEMS deleted: still nothing to merge into */
    CU_ASSERT_EQUAL(resolve(false, RESOLVE_MERGE, "{\"monthlyRate\":14000}",
                            "{\"monthlyRate\":15000}", true, &plan), RESOLVE_ERR_RECORD_GONE);
    conflict_resolution_plan_clear(&plan);
    /* the other resolutions are recorded as asked */
    CU_ASSERT_EQUAL(resolve(false, RESOLVE_USE_LOCAL, "{\"monthlyRate\":15000}", NULL, false, &plan),
                    RESOLVE_OK);
    CU_ASSERT_EQUAL(plan.resolution, RESOLVE_USE_LOCAL);
    conflict_resolution_plan_clear(&plan);
    CU_ASSERT_STRING_EQUAL(conflict_resolution_name(RESOLVE_USE_PEMS), "use_pems");
    CU_ASSERT_STRING_EQUAL(conflict_resolution_name(RESOLVE_MERGE), "merge");
    CU_ASSERT_STRING_EQUAL(conflict_resolution_name(RESOLVE_USE_LOCAL), "use_local");
}

static void test_reject_already_resolved(void)
{
    struct conflict_resolution_plan plan;
    const char *local = "{\"monthlyRate\":14000}";
    CU_ASSERT_EQUAL(resolve(true, RESOLVE_USE_LOCAL, local, NULL, false, &plan),
                    RESOLVE_ERR_ALREADY_RESOLVED);
    CU_ASSERT_PTR_NULL(plan.applied);
    CU_ASSERT_EQUAL(resolve(true, RESOLVE_USE_PEMS, local, NULL, false, &plan),
                    RESOLVE_ERR_ALREADY_RESOLVED);
    CU_ASSERT_EQUAL(resolve(true, RESOLVE_MERGE, local, "{\"monthlyRate\":14500}", false, &plan),
                    RESOLVE_ERR_ALREADY_RESOLVED);
    CU_ASSERT_PTR_NULL(plan.applied);
    conflict_resolution_plan_clear(&plan);
}

static void test_resolution_parse(void)
{
    enum conflict_resolution r = RESOLVE_MERGE;

    CU_ASSERT_EQUAL(conflict_resolution_parse("use_local", &r), 0);
    CU_ASSERT_EQUAL(r, RESOLVE_USE_LOCAL);
    CU_ASSERT_EQUAL(conflict_resolution_parse("use_pems", &r), 0);
    CU_ASSERT_EQUAL(r, RESOLVE_USE_PEMS);
    CU_ASSERT_EQUAL(conflict_resolution_parse("merge", &r), 0);
    CU_ASSERT_EQUAL(r, RESOLVE_MERGE);
    CU_ASSERT_EQUAL(conflict_resolution_parse("USE_LOCAL", &r), -1);
    CU_ASSERT_EQUAL(conflict_resolution_parse("use_local ", &r), -1);
    CU_ASSERT_EQUAL(conflict_resolution_parse("", &r), -1);
    CU_ASSERT_EQUAL(conflict_resolution_parse(NULL, &r), -1);
    CU_ASSERT_EQUAL(r, RESOLVE_MERGE);
}

static void test_convergent_edit(void)
{
    struct conflict_result res;

    /* both sides set monthlyRate to 15000 (100 == 100.0 too): not a conflict, nothing to write */
    CU_ASSERT_EQUAL(detect(2, 3, pems_changed, "{\"monthlyRate\":15000.0}", pems_now, &res), 0);
    CU_ASSERT_EQUAL(res.outcome, CONFLICT_AUTO_MERGE);
    CU_ASSERT_TRUE(json_text_equal(res.conflict_fields, "[]"));
    CU_ASSERT_TRUE(json_text_equal(res.rebased_delta, "{}"));
    conflict_result_clear(&res);

    /* convergent field dropped, the rest merged */
    CU_ASSERT_EQUAL(detect(2, 3, pems_changed,
                           "{\"forecastEnd\":\"2025-12-31\",\"model\":\"Z\"}", pems_now, &res), 0);
    CU_ASSERT_EQUAL(res.outcome, CONFLICT_AUTO_MERGE);
    CU_ASSERT_TRUE(json_text_equal(res.rebased_delta, "{\"model\":\"Z\"}"));
    conflict_result_clear(&res);

    /* one convergent, one real conflict: only the real one is listed */
    CU_ASSERT_EQUAL(detect(2, 3, pems_changed,
                           "{\"forecastEnd\":\"2025-12-31\",\"monthlyRate\":1}", pems_now, &res), 0);
    CU_ASSERT_EQUAL(res.outcome, CONFLICT_OVERLAP);
    CU_ASSERT_TRUE(json_text_equal(res.conflict_fields, "[\"monthlyRate\"]"));
    CU_ASSERT_TRUE(json_text_equal(res.rebased_delta, "{\"monthlyRate\":1}"));
    conflict_result_clear(&res);

    /* both cleared a field: PEMS no longer has it, our delta nulls it */
    CU_ASSERT_EQUAL(detect(2, 3, "[\"class\"]", "{\"class\":null}", pems_now, &res), 0);
    CU_ASSERT_EQUAL(res.outcome, CONFLICT_AUTO_MERGE);
    CU_ASSERT_TRUE(json_text_equal(res.rebased_delta, "{}"));
    conflict_result_clear(&res);

    /* we cleared a field PEMS changed to a value: a conflict */
    CU_ASSERT_EQUAL(detect(2, 3, pems_changed, "{\"monthlyRate\":null}", pems_now, &res), 0);
    CU_ASSERT_EQUAL(res.outcome, CONFLICT_OVERLAP);
    CU_ASSERT_TRUE(json_text_equal(res.conflict_fields, "[\"monthlyRate\"]"));
    conflict_result_clear(&res);
}

static void test_detect_edge_cases(void)
{
    struct conflict_result res;
    json_t *delta = parse("{\"monthlyRate\":1,\"model\":\"Q\"}");
    json_t *changed = parse(pems_changed);
    json_t *now = parse(pems_now);
    json_t *delta_copy = json_deep_copy(delta);
    json_t *now_copy = json_deep_copy(now);

    /* inputs untouched, the results are separate new references */
    CU_ASSERT_FATAL(delta && changed && now && delta_copy && now_copy);
    CU_ASSERT_EQUAL(conflict_detect(1, 2, changed, delta, now, &res), 0);
    CU_ASSERT_TRUE(json_equal(delta, delta_copy));
    CU_ASSERT_TRUE(json_equal(now, now_copy));
    CU_ASSERT_PTR_NOT_EQUAL(res.rebased_delta, delta);
    CU_ASSERT_EQUAL(res.rebased_delta->refcount, 1);
    CU_ASSERT_EQUAL(res.conflict_fields->refcount, 1);
    conflict_result_clear(&res);

    /* no history rows (or none given): nothing overlaps */
    CU_ASSERT_EQUAL(conflict_detect(1, 2, NULL, delta, now, &res), 0);
    CU_ASSERT_EQUAL(res.outcome, CONFLICT_AUTO_MERGE);
    CU_ASSERT_TRUE(json_equal(res.rebased_delta, delta));
    conflict_result_clear(&res);

    /* a delete passes an empty delta: never a conflict */
    CU_ASSERT_EQUAL(conflict_detect(1, 2, changed, NULL, now, &res), 0);
    CU_ASSERT_EQUAL(res.outcome, CONFLICT_AUTO_MERGE);
    CU_ASSERT_TRUE(json_text_equal(res.rebased_delta, "{}"));
    conflict_result_clear(&res);

    /* a delta that is not an object is refused */
    {
        json_t *bad = json_array();
        CU_ASSERT_EQUAL(conflict_detect(1, 2, changed, bad, now, &res), -1);
        CU_ASSERT_PTR_NULL(res.rebased_delta);
        CU_ASSERT_PTR_NULL(res.conflict_fields);
        json_decref(bad);
    }
    CU_ASSERT_EQUAL(conflict_detect(1, 2, changed, delta, now, NULL), -1);

    /* clearing twice is harmless */
    conflict_result_clear(&res);
    json_decref(delta);
    json_decref(changed);
    json_decref(now);
    json_decref(delta_copy);
    json_decref(now_copy);
}

int main(void)
{
    static const struct unit_test tests[] = {
        { "no conflict when baseVersion >= mirrorVersion", test_no_conflict_when_base_current },
        { "auto-merge for non-overlapping changes", test_auto_merge_non_overlapping },
        { "conflict for overlapping changes", test_conflict_for_overlapping },
        { "resolve with use_local", test_resolve_use_local },
        { "resolve with use_pems", test_resolve_use_pems },
        { "reject merge without mergedData", test_reject_merge_without_data },
        { "resolve with merge and mergedData", test_resolve_merge_with_data },
        { "merge keeping PEMS's value in every field is use_pems", test_resolve_merge_keeping_pems },
        { "reject resolving a resolved conflict", test_reject_already_resolved },
        { "resolution parsing", test_resolution_parse },
        { "convergent edit is not a conflict", test_convergent_edit },
        { "detect edge cases", test_detect_edge_cases },
    };
    return UNIT_RUN("conflict", NULL, tests);
}
