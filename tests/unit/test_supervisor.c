#include "supervisor.h"

#include "unit.h"
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const struct restart_policy policy = RESTART_POLICY_DEFAULT;

static void test_crash_loop_doubles_to_cap(void)
{
    long backoff = 0;
    const long expected[] = { 100, 200, 400, 800, 1600, 3200, 6400, 10000, 10000, 10000 };
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++)
        CU_ASSERT_EQUAL(restart_delay(&policy, &backoff, 5), expected[i]);
}

static void test_stable_child_resets_backoff(void)
{
    long backoff = 0;
    for (int i = 0; i < 6; i++)
        restart_delay(&policy, &backoff, 50);
    CU_ASSERT_EQUAL(restart_delay(&policy, &backoff, 9999), 6400);
    CU_ASSERT_EQUAL(restart_delay(&policy, &backoff, 10000), 100);
    CU_ASSERT_EQUAL(restart_delay(&policy, &backoff, 10), 200);
}

static void test_odd_policy_never_exceeds_max(void)
{
    const struct restart_policy p = { 300, 1000, 5000 };
    long backoff = 0;
    CU_ASSERT_EQUAL(restart_delay(&p, &backoff, 0), 300);
    CU_ASSERT_EQUAL(restart_delay(&p, &backoff, 0), 600);
    CU_ASSERT_EQUAL(restart_delay(&p, &backoff, 0), 1000);
    CU_ASSERT_EQUAL(restart_delay(&p, &backoff, 0), 1000);
}

static int wait_status_of(void (*body)(void))
{
    pid_t pid = fork();
    if (pid == 0) {
        body();
        _exit(99);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
}

static void exit_3(void) { _exit(3); }
static void die_by_kill(void) { raise(SIGKILL); }

static void test_exit_describe(void)
{
    char buf[64];
    exit_describe(wait_status_of(exit_3), buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "exit_code=3");
    exit_describe(wait_status_of(die_by_kill), buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "signal=SIGKILL");
}

static void test_program_beside(void)
{
    char *p = program_beside("/bin/true", "sh", "/usr/libexec/x/sh");
    CU_ASSERT_STRING_EQUAL(p, "/bin/sh");   /* beside wins: a build tree runs its own */
    free(p);
    p = program_beside("/bin/true", "no-such-program-pems", NULL);
    CU_ASSERT_STRING_EQUAL(p, "no-such-program-pems");
    free(p);
    p = program_beside("/bin/true", "no-such-program-pems", "/usr/libexec/pems-sync/pems-fcgi");
    CU_ASSERT_STRING_EQUAL(p, "/usr/libexec/pems-sync/pems-fcgi");   /* an installed pemsd */
    free(p);
    p = program_beside("", "pems-fcgi", "");
    CU_ASSERT_STRING_EQUAL(p, "pems-fcgi");
    free(p);
}

int main(void)
{
    static const struct unit_test tests[] = {
        { "crash loop doubles to the cap", test_crash_loop_doubles_to_cap },
        { "stable child resets backoff", test_stable_child_resets_backoff },
        { "odd policy never exceeds max", test_odd_policy_never_exceeds_max },
        { "exit description", test_exit_describe },
        { "program beside self", test_program_beside },
    };
    return UNIT_RUN("supervisor", NULL, tests);
}
