#include "unit.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "metrics.h"
#include "metrics_render.h"

static char path[64];

static char *render(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    metrics_render(out);
    fclose(out);
    return text;
}

static void test_counts_across_processes(void)
{
    snprintf(path, sizeof path, "/tmp/pems-test-metrics-%d", (int)getpid());
    unlink(path);
    CU_ASSERT_EQUAL_FATAL(metrics_open(path), 0);
    /* children add through their own mapping of the same file */
    for (int c = 0; c < 3; c++) {
        pid_t pid = fork();
        if (pid == 0) {
            metrics_close();
            if (metrics_open(path) != 0)
                _exit(1);
            for (int i = 0; i < 100; i++)
                metrics_http_observe("/api/pems/conflicts", 200, 0.003);
            metrics_http_observe("/api/pems/conflicts", 404, 2.0);
            metrics_sync_item("synced");
            metrics_upstream_inc(429);
            _exit(0);
        }
        CU_ASSERT_FATAL(pid > 0);
    }
    for (int c = 0; c < 3; c++) {
        int st;
        wait(&st);
        CU_ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    metrics_sync_item("merged");
    metrics_sync_item("nonsense");
    char *t = render();
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "pems_http_requests_total{route=\"/api/pems/conflicts\",status=\"200\"} 300\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "pems_http_requests_total{route=\"/api/pems/conflicts\",status=\"404\"} 3\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "pems_http_request_duration_seconds_bucket{route=\"/api/pems/conflicts\",le=\"0.0025\"} 0\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "pems_http_request_duration_seconds_bucket{route=\"/api/pems/conflicts\",le=\"0.005\"} 300\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "pems_http_request_duration_seconds_bucket{route=\"/api/pems/conflicts\",le=\"+Inf\"} 303\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "pems_http_request_duration_seconds_count{route=\"/api/pems/conflicts\"} 303\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "pems_sync_items_total{result=\"synced\"} 3\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "pems_sync_items_total{result=\"merged\"} 1\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "pems_sync_items_total{result=\"failed\"} 0\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "pems_upstream_requests_total{status=\"429\"} 3\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "# TYPE pems_http_request_duration_seconds histogram\n"));
    free(t);
    metrics_close();
    /* reopening keeps the numbers */
    CU_ASSERT_EQUAL_FATAL(metrics_open(path), 0);
    t = render();
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "pems_sync_items_total{result=\"synced\"} 3\n"));
    free(t);
    metrics_close();
    unlink(path);
}

static void test_no_file(void)
{
    metrics_close();
    metrics_http_observe("/x", 200, 0.1);   /* a no-op, not a crash */
    char *t = render();
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "# TYPE pems_sync_items_total counter\n"));
    CU_ASSERT_PTR_NULL(strstr(t, "route=\"/x\""));
    free(t);
    CU_ASSERT_EQUAL(metrics_open("/nonexistent-dir/metrics"), -1);
}

int main(void)
{
    static const struct unit_test tests[] = {
        { "shared counters across processes", test_counts_across_processes },
        { "without a file", test_no_file },
    };
    return UNIT_RUN("metrics", NULL, tests);
}
