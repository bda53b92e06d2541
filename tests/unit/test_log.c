/* Log values made safe for one logfmt line: quotes, control bytes and bytes
 * that are not UTF-8 escaped, well-formed UTF-8 kept. */
#include <criterion/criterion.h>
#include <string.h>

#include "log.h"

static const char *safe(const char *s)
{
    static char buf[512];
    return choreo__log_safe(s, buf, sizeof buf);
}

Test(log, quotes_and_control_bytes_are_escaped)
{
    cr_assert_str_eq(safe("a \"b\" \\c\n\x7f"), "a \\\"b\\\" \\\\c\\x0a\\x7f");
}

Test(log, well_formed_utf8_is_kept)
{
    cr_assert_str_eq(safe("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8d\x8e"),
                     "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8d\x8e");
}

Test(log, bytes_that_are_not_utf8_are_escaped)
{
    cr_assert_str_eq(safe("id\xff\xfe"), "id\\xff\\xfe");
    cr_assert_str_eq(safe("\xc3("), "\\xc3(");              /* a lead byte alone */
    cr_assert_str_eq(safe("\xc0\xaf"), "\\xc0\\xaf");        /* overlong '/' */
    cr_assert_str_eq(safe("\xed\xa0\x80"), "\\xed\\xa0\\x80"); /* a surrogate */
    cr_assert_str_eq(safe("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80"); /* past U+10FFFF */
    cr_assert_str_eq(safe("\xe2\x82"), "\\xe2\\x82");        /* cut short at the end */
}

Test(log, a_character_is_never_cut_by_the_end_of_the_room)
{
    char buf[9];
    choreo__log_safe("abcd\xe2\x82\xac", buf, sizeof buf);
    cr_assert_str_eq(buf, "abcd");
}
