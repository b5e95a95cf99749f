#include "unit.h"

#include "api_sync_history.h"

static void test_sync_history_window(void)
{
    struct sync_history_window w;
    json_t *d = json_array();
    long long now = 1767261600000LL + 30 * 60000;   /* 2026-01-01T10:30Z */
    CU_ASSERT_TRUE(sync_history_window(NULL, NULL, NULL, now, &w, d));
    CU_ASSERT_STRING_EQUAL(w.bucket, "hour");
    CU_ASSERT_EQUAL(w.to_ms, now);
    CU_ASSERT_EQUAL(w.from_ms, now - 86400000LL);
    CU_ASSERT_EQUAL(w.buckets, 25);
    CU_ASSERT_TRUE(sync_history_window("2026-01-01T10:00:00Z", "2026-01-01T11:00:00Z", "minute",
                                       now, &w, d));
    CU_ASSERT_EQUAL(w.buckets, 60);
    CU_ASSERT_TRUE(sync_history_window("2026-01-01", "2026-01-01", "day", now, &w, d));
    CU_ASSERT_EQUAL(w.buckets, 1);
    CU_ASSERT_EQUAL(w.to_ms - w.from_ms, 86400000LL);
    CU_ASSERT_EQUAL(json_array_size(d), 0);
    CU_ASSERT_FALSE(sync_history_window("2026-01-02", "2026-01-01T00:00:00Z", NULL, now, &w, d));
    CU_ASSERT_FALSE(sync_history_window("2020-01-01", NULL, "minute", now, &w, d));
    CU_ASSERT_FALSE(sync_history_window("nope", NULL, NULL, now, &w, d));
    CU_ASSERT_EQUAL(json_array_size(d), 3);
    json_decref(d);
}

int main(void)
{
    static const struct unit_test tests[] = {
        { "sync-history window", test_sync_history_window },
    };
    return UNIT_RUN("sync_history", NULL, tests);
}
