#include "text.h"

#include <jansson.h>

#include "unit.h"

#define FFFD "\xef\xbf\xbd"

/* clip(in, len, cap) into a fresh buffer, checked valid and NUL-terminated */
static const char *clip(const char *in, size_t len, size_t cap)
{
    static char out[4096];
    size_t n = text_utf8_clip(in, len, out, cap);
    CU_ASSERT_TRUE(n < cap);
    CU_ASSERT_EQUAL(strlen(out), n);
    CU_ASSERT_TRUE(text_utf8_valid(out, n));
    return out;
}

static void test_ascii_and_valid_text_copied(void)
{
    ASSERT_STR_EQ(clip("PEMS 503: down", 14, 64), "PEMS 503: down");
    ASSERT_STR_EQ(clip("", 0, 1), "");
    ASSERT_STR_EQ(clip(NULL, 0, 8), "");
    const char *fr = "Serveur indisponible, r\xc3\xa9" "essayez \xe2\x82\xac \xf0\x9f\x98\x80";
    ASSERT_STR_EQ(clip(fr, strlen(fr), 256), fr);
}

static void test_cut_at_a_character_boundary(void)
{
    /* "a" + 150 x "é": 301 bytes; a budget of 200 (199 + NUL) cut inside a character before */
    char in[302];
    in[0] = 'a';
    for (int i = 0; i < 150; i++)
        memcpy(in + 1 + 2 * i, "\xc3\xa9", 2);
    in[301] = '\0';
    const char *out = clip(in, 301, 200);
    CU_ASSERT_EQUAL(strlen(out), 199);   /* "a" + 99 x "é" */
    CU_ASSERT_EQUAL(memcmp(out, in, 199), 0);
    out = clip(in, 301, 201);
    CU_ASSERT_EQUAL(strlen(out), 199);   /* 200 would end inside the 100th "é" */
    ASSERT_STR_EQ(clip("\xe2\x82\xac\xe2\x82\xac", 6, 6), "\xe2\x82\xac");
    ASSERT_STR_EQ(clip("\xf0\x9f\x98\x80", 4, 4), "");
    ASSERT_STR_EQ(clip("abc", 3, 1), "");
    ASSERT_STR_EQ(clip("abc", 3, 3), "ab");
}

static void test_invalid_bytes_replaced_never_dropped(void)
{
    /* a raw proxy page: \xff\xfe then text */
    ASSERT_STR_EQ(clip("\xff\xfe<html>", 8, 64), FFFD FFFD "<html>");
    /* a lone continuation byte, a truncated sequence, an overlong '/', a surrogate, > U+10FFFF */
    ASSERT_STR_EQ(clip("a\x80z", 3, 64), "a" FFFD "z");
    ASSERT_STR_EQ(clip("a\xc3", 2, 64), "a" FFFD);
    ASSERT_STR_EQ(clip("\xe2\x82z", 3, 64), FFFD FFFD "z");
    ASSERT_STR_EQ(clip("\xc0\xaf", 2, 64), FFFD FFFD);
    ASSERT_STR_EQ(clip("\xe0\x80\xaf", 3, 64), FFFD FFFD FFFD);
    ASSERT_STR_EQ(clip("\xed\xa0\x80", 3, 64), FFFD FFFD FFFD);
    ASSERT_STR_EQ(clip("\xf4\x90\x80\x80", 4, 64), FFFD FFFD FFFD FFFD);
    ASSERT_STR_EQ(clip("\xf5\x80", 2, 64), FFFD FFFD);
    /* NUL cannot be stored: it is replaced too, and what follows it is kept */
    ASSERT_STR_EQ(clip("a\0b", 3, 64), "a" FFFD "b");
    /* a replacement that does not fit is not cut either */
    ASSERT_STR_EQ(clip("ab\xff", 3, 5), "ab");
    ASSERT_STR_EQ(clip("ab\xff", 3, 6), "ab" FFFD);
}

static void test_output_is_what_jansson_and_postgres_take(void)
{
    unsigned char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    char out[1024];
    size_t n = text_utf8_clip((const char *)all, sizeof all, out, sizeof out);
    json_t *s = json_stringn(out, n);
    CU_ASSERT_PTR_NOT_NULL(s);   /* jansson refuses invalid UTF-8 */
    json_decref(s);
    /* 0x01..0x7f copied, NUL and 0x80..0xff replaced: 127 + 129 x 3 bytes */
    CU_ASSERT_EQUAL(n, 127 + 129 * 3);
}

static void test_char_len_and_valid(void)
{
    CU_ASSERT_EQUAL(text_utf8_char_len((const unsigned char *)"a", 1), 1);
    CU_ASSERT_EQUAL(text_utf8_char_len((const unsigned char *)"\xc3\xa9", 2), 2);
    CU_ASSERT_EQUAL(text_utf8_char_len((const unsigned char *)"\xc3\xa9", 1), 0);
    CU_ASSERT_EQUAL(text_utf8_char_len((const unsigned char *)"\xef\xbf\xbd", 3), 3);
    CU_ASSERT_EQUAL(text_utf8_char_len((const unsigned char *)"\xf4\x8f\xbf\xbf", 4), 4);
    CU_ASSERT_EQUAL(text_utf8_char_len((const unsigned char *)"\xc1\xbf", 2), 0);
    CU_ASSERT_TRUE(text_utf8_valid("", 0));
    CU_ASSERT_TRUE(text_utf8_valid("r\xc3\xa9sum\xc3\xa9", 8));
    CU_ASSERT_FALSE(text_utf8_valid("r\xc3", 2));
    CU_ASSERT_FALSE(text_utf8_valid("\xff", 1));
}

static void expect_escaped(const char *in, size_t len, enum text_escape mode, const char *want)
{
    char *out = text_escape_controls(in, len, mode);
    ASSERT_STR_EQ(out, want);
    free(out);
}

static void test_escape_controls_for_a_terminal(void)
{
    /* clear screen, retitle the terminal (OSC ... BEL), a C1 CSI, DEL */
    static const char hostile[] = "\x1b[2J\x1b]0;pwned\x07 x\xc2\x9b" "2J\x7f";
    expect_escaped(hostile, sizeof hostile - 1, TEXT_ESCAPE_FIELD,
                   "\\u001b[2J\\u001b]0;pwned\\u0007 x\\u009b2J\\u007f");
    expect_escaped("a\tb\nc\rd\\e", 9, TEXT_ESCAPE_FIELD, "a\\tb\\nc\\rd\\\\e");
    expect_escaped("r\xc3\xa9sum\xc3\xa9 \xe2\x82\xac \xc2\xa0", 15, TEXT_ESCAPE_FIELD,
                   "r\xc3\xa9sum\xc3\xa9 \xe2\x82\xac \xc2\xa0");   /* printable: as is */
    expect_escaped("\xff\x00z", 3, TEXT_ESCAPE_FIELD, FFFD FFFD "z");
    /* JSON: its structure and escapes kept, DEL and C1 (which jansson leaves raw) escaped */
    static const char json[] = "[\n  \"a\\u001b\xc2\x9b\x7f\"\n]";
    expect_escaped(json, sizeof json - 1, TEXT_ESCAPE_JSON,
                   "[\n  \"a\\u001b\\u009b\\u007f\"\n]");
    expect_escaped("", 0, TEXT_ESCAPE_JSON, "");
}

int main(void)
{
    static const struct unit_test tests[] = {
        { "ascii_and_valid_text_copied", test_ascii_and_valid_text_copied },
        { "cut_at_a_character_boundary", test_cut_at_a_character_boundary },
        { "invalid_bytes_replaced_never_dropped", test_invalid_bytes_replaced_never_dropped },
        { "output_is_what_jansson_and_postgres_take", test_output_is_what_jansson_and_postgres_take },
        { "char_len_and_valid", test_char_len_and_valid },
        { "escape_controls_for_a_terminal", test_escape_controls_for_a_terminal },
    };
    return UNIT_RUN("text", NULL, tests);
}
