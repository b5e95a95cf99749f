/* The logger writes logfmt: values quoted and escaped as they need, literal "..." values,
 * fragments of pairs copied, long lines cut back to a whole pair. */
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"

static char captured[16384];

/* Runs the logging in fn with stderr on a temporary file; captured holds what came out,
 * without the ts, level, prog and pid that every line starts with. */
static const char *capture_line(void (*fn)(void))
{
    fflush(stderr);
    FILE *tmp = tmpfile();
    CU_ASSERT_PTR_NOT_NULL_FATAL(tmp);
    int saved = dup(STDERR_FILENO);
    dup2(fileno(tmp), STDERR_FILENO);
    fn();
    dup2(saved, STDERR_FILENO);
    close(saved);
    rewind(tmp);
    size_t n = fread(captured, 1, sizeof captured - 1, tmp);
    fclose(tmp);
    captured[n] = '\0';
    const char *ev = strstr(captured, " event=");
    return ev ? ev + 1 : captured;
}

static void log_quotes(void)
{
    log_warn("db_connect_failed", "error=\"%s\"", "host \"db 1\" said: no\n\tretry\\later");
}

static void test_quotes_escaped(void)
{
    const char *l = capture_line(log_quotes);
    CU_ASSERT_STRING_EQUAL(l, "event=db_connect_failed error=\"host \\\"db 1\\\" said: no\\n\\tretry"
                              "\\\\later\"\n");
    CU_ASSERT_PTR_NOT_NULL(strstr(captured, " level=warn "));
}

static void log_bare(void)
{
    log_info("e", "a=%s b=%s c=%d d=%s e=%s f=%.*s g=%lld%% h=%.2f", "plain", "two words", -3,
             "", "k=v", 3, "abcdef", 12345678901LL, 1.5);
}

static void test_values_quoted_only_when_needed(void)
{
    CU_ASSERT_STRING_EQUAL(capture_line(log_bare),
                           "event=e a=plain b=\"two words\" c=-3 d=\"\" e=\"k=v\" f=abc "
                           "g=12345678901% h=1.50\n");
}

static void log_literal(void)
{
    log_error("start_failed", "reason=\"PEMS_WRITE_SYNC_SCHEDULE: %s\" code=%d", "61 * * * \"x\"",
              78);
}

static void test_literal_quoted_value(void)
{
    CU_ASSERT_STRING_EQUAL(capture_line(log_literal),
                           "event=start_failed reason=\"PEMS_WRITE_SYNC_SCHEDULE: 61 * * * "
                           "\\\"x\\\"\" code=78\n");
}

static void log_fragment(void)
{
    log_info("child_exited", "child_pid=%d program=%s %s reason=%s", 42, "pems-fcgi",
             "signal=SIGKILL core_dumped=true", "crash");
}

static void test_fragment_copied(void)
{
    CU_ASSERT_STRING_EQUAL(capture_line(log_fragment),
                           "event=child_exited child_pid=42 program=pems-fcgi signal=SIGKILL "
                           "core_dumped=true reason=crash\n");
}

static void log_control(void)
{
    char v[] = { 'a', 1, 'b', 0x7f, '\r', 0 };
    const char *volatile none = NULL;   /* a NULL the compiler cannot see */
    log_info("e", "v=%s n=%s", v, none);
}

static void test_control_characters(void)
{
    CU_ASSERT_STRING_EQUAL(capture_line(log_control),
                           "event=e v=\"a\\u0001b\\u007f\\r\" n=(null)\n");
}

static void log_pems_text(void)
{
    /* what a PEMS server may send: an invalid byte, a C1 CSI, ESC, and a valid é */
    log_info("e", "v=\"%s\"", "\xff\xc2\x9b" "2J\x1b]0;t\x07r\xc3\xa9");
}

static void test_pems_text_valid_utf8_c1_escaped(void)
{
    CU_ASSERT_STRING_EQUAL(capture_line(log_pems_text),
                           "event=e v=\"\xef\xbf\xbd\\u009b2J\\u001b]0;t\\u0007r\xc3\xa9\"\n");
}

static void log_long(void)
{
    char *big = malloc(20000);
    memset(big, 'x', 19999);
    big[19999] = '\0';
    big[10] = '"';
    log_info("e", "first=1 big=\"%s\" after=2", big);
    free(big);
}

static void test_long_line_cut_at_a_pair(void)
{
    const char *l = capture_line(log_long);
    CU_ASSERT_STRING_EQUAL(l, "event=e first=1 truncated=true\n");
}

static void log_levels(void)
{
    log_init("t", PEMS_LOG_WARN);
    log_info("hidden", NULL);
    log_debug("hidden", NULL);
    log_warn("shown", NULL);
    log_init("t", PEMS_LOG_DEBUG);
}

static void test_levels_filter(void)
{
    CU_ASSERT_STRING_EQUAL(capture_line(log_levels), "event=shown\n");
    CU_ASSERT_PTR_NULL(strstr(captured, "hidden"));
    CU_ASSERT_PTR_NOT_NULL(strstr(captured, " prog=t "));
}

static int init(void)
{
    log_init("test_log", PEMS_LOG_DEBUG);
    return 0;
}

int main(void)
{
    static const struct unit_test tests[] = {
        { "quotes, newline, tab and backslash escaped", test_quotes_escaped },
        { "values quoted only when they need it", test_values_quoted_only_when_needed },
        { "a literal \"...\" value around a conversion", test_literal_quoted_value },
        { "a fragment of pairs is copied", test_fragment_copied },
        { "control characters as \\u00XX", test_control_characters },
        { "PEMS text: valid UTF-8, C1 escaped", test_pems_text_valid_utf8_c1_escaped },
        { "a line too long is cut back to a whole pair", test_long_line_cut_at_a_pair },
        { "levels below the minimum are not written", test_levels_filter },
    };
    return UNIT_RUN("log", init, tests);
}
