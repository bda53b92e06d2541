/* The schema reader of choreo-gen: what valid schemas turn into, and the
 * file:line:col and text of the error each kind of mistake produces. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emit.h"
#include "schema.h"

static gen_schema *parse(const char *text, gen_diags *d)
{
    memset(d, 0, sizeof *d);
    return gen_schema_parse("t.events", text, strlen(text), d);
}

/* The first diagnostic as "file:line:col: message". */
static const char *first(const gen_diags *d, char *buf, size_t size)
{
    if (d->n == 0)
        return "(no error)";
    snprintf(buf, size, "%s:%d:%d: %s", d->items[0].loc.file, d->items[0].loc.line,
             d->items[0].loc.col, d->items[0].msg);
    return buf;
}

Test(gen_schema, reads_events_records_fields_defaults_and_docs)
{
    gen_diags d;
    gen_schema *s = parse("# The file.\n"
                          "\n"
                          "# A point.\n"
                          "record Point {\n"
                          "  x: i32   # across\n"
                          "  y: i32 = -1\n"
                          "}\n"
                          "\n"
                          "event OrderCreated v12 {\n"
                          "  # The id.\n"
                          "  order_id: string(64)\n"
                          "  tags: list<string(8)>(3) = [\"a\",\n"
                          "                             \"b\"]\n"
                          "  at: Point\n"
                          "}\n",
                          &d);
    char buf[512], tb[64];
    cr_assert_not_null(s, "%s", first(&d, buf, sizeof buf));
    cr_assert_eq(s->ndecls, 2);
    gen_decl *p = &s->decls[0], *e = &s->decls[1];
    cr_assert(!p->is_event);
    cr_assert_str_eq(p->name, "Point");
    cr_assert_str_eq(p->doc, "A point.");
    cr_assert_str_eq(p->fields[0].doc, "across");
    cr_assert_null(p->fields[0].dflt);
    cr_assert_eq(p->fields[1].dflt->neg, true);
    cr_assert_eq(p->fields[1].dflt->mag, 1);
    cr_assert(e->is_event);
    cr_assert_str_eq(e->snake, "order_created");
    cr_assert_eq(e->version, 12);
    cr_assert_eq(e->loc.line, 9);
    cr_assert_eq(e->nfields, 3);
    cr_assert_str_eq(e->fields[0].doc, "The id.");
    cr_assert_str_eq(gen_type_str(e->fields[0].type, tb, sizeof tb), "string(64)");
    cr_assert_str_eq(gen_type_str(e->fields[1].type, tb, sizeof tb), "list<string(8)>(3)");
    cr_assert_eq(e->fields[1].dflt->nitems, 2);
    cr_assert_eq(e->fields[2].type->record, p);
    gen_schema_free(s);
}

Test(gen_schema, an_empty_schema_is_valid)
{
    gen_diags d;
    gen_schema *s = parse("# nothing yet\n", &d);
    cr_assert_not_null(s);
    cr_assert_eq(s->ndecls, 0);
    gen_schema_free(s);
}

typedef struct bad_case {
    const char *text;
    const char *error; /* the first diagnostic, exactly */
} bad_case;

static const bad_case bad_cases[] = {
    /* lexical */
    {"event A v1 {\n  s: string = \"open\n}\n",
     "t.events:2:15: unterminated string: add the closing '\"' on the same line"},
    {"event A v1 {\n  s: string = \"\\q\"\n}\n",
     "t.events:2:16: bad escape in string: use \\\" \\\\ \\n \\t \\r \\uXXXX, or \\xNN in "
     "bytes"},
    {"event A v1 {\n  b: bytes = \"\\x4\"\n}\n",
     "t.events:2:15: bad escape in string: \\x needs two hex digits"},
    {"event A v1 {\n  s: string = \"\\u0000\"\n}\n",
     "t.events:2:16: bad escape in string: \\u0000 is not allowed (NUL and surrogates cannot "
     "be stored)"},
    {"event A v1 {\n  s: string = \"\xff\"\n}\n",
     "t.events:2:16: string is not valid UTF-8 (byte 0xff)"},
    {"event A v1 {\n  n: i32 = 12ab\n}\n", "t.events:2:12: bad number: 'a' cannot follow digits"},
    /* A comment may be copied into the generated header: UTF-8 as strings. */
    {"event A v1 {\n  n: i32 # caf\xe9\n}\n",
     "t.events:2:15: comment is not valid UTF-8 (byte 0xe9)"},
    {"# caf\xc3\xa9 \xc3(\n# and \xff\nevent A v1 {\n}\n",
     "t.events:1:9: comment is not valid UTF-8 (byte 0xc3)"},
    /* 010 and 10 would be two spellings of one number (and 010 octal to a C
     * reader), as v01 and v1 are of one version. */
    {"event A v1 {\n  n: i32 = 010\n}\n",
     "t.events:2:12: bad number 010: write it without leading zeros, as 10"},
    {"event A v1 {\n  n: i64 = -007\n}\n",
     "t.events:2:12: bad number -007: write it without leading zeros, as -7"},
    {"event A v1 {\n  f: f64 = 00.5e3\n}\n",
     "t.events:2:12: bad number 00.5e3: write it without leading zeros, as 0.5e3"},
    {"event A v1 {\n  s: string(064)\n}\n",
     "t.events:2:13: bad number 064: write it without leading zeros, as 64"},
    {"event A v1 {\n  l: list<i32> = [1, 00]\n}\n",
     "t.events:2:22: bad number 00: write it without leading zeros, as 0"},
    {"event A v1 {\n  n: i32 @\n}\n", "t.events:2:10: unexpected character '@'"},
    {"event A v1 {\n  n\xc3\xa9: i32\n}\n",
     "t.events:2:4: unexpected byte 0xc3 (only ASCII is allowed outside strings and comments)"},
    /* structure */
    {"evnt A v1 {}\n",
     "t.events:1:1: expected 'event' or 'record' at the start of a declaration, found 'evnt'"},
    {"event A v1 {\n  n: i32\n", "t.events:3:1: missing '}' to close event A opened at line 1"},
    {"event A v1 {\n  n: i32\n\nevent B v1 {\n}\n",
     "t.events:4:1: missing '}' to close event A opened at line 1"},
    {"event A v1\n  n: i32\n}\n", "t.events:2:3: missing '{' after event A, found 'n'"},
    {"event A {\n}\n", "t.events:1:9: missing version after event name A: write 'event A v1 {'"},
    {"event A v0 {\n}\n", "t.events:1:9: version 'v0' is out of range: use v1 to v65535"},
    {"event A version1 {\n}\n", "t.events:1:9: bad version 'version1': write v1, v2, ..."},
    {"event A v01 {\n}\n",
     "t.events:1:9: bad version 'v01': write it without leading zeros, as v1"},
    {"event A v0020 {\n}\n",
     "t.events:1:9: bad version 'v0020': write it without leading zeros, as v20"},
    {"record R v1 {\n}\n", "t.events:1:10: records have no version (only events do): remove 'v1'"},
    {"event A v1 {\n  n i32\n}\n", "t.events:2:5: expected ':' after field name 'n', found 'i32'"},
    {"event A v1 {\n  n: i32 m: i32\n}\n",
     "t.events:2:10: unexpected 'm' after field 'n': write one field per line"},
    {"event A v1 {\n  n:\n}\n",
     "t.events:2:5: expected a type (string, bytes, bool, i32, i64, u64, f64, timestamp, "
     "list<T> or a record name), found the end of the line"},
    {"event A v1 {\n  l: list<i32\n}\n",
     "t.events:2:14: expected '>' to close 'list<', found the end of the line"},
    {"event A v1 {\n  l: list(3)\n}\n",
     "t.events:2:10: expected '<' after 'list' (as in list<string>), found '('"},
    {"event A v1 {\n  s: string(x)\n}\n",
     "t.events:2:13: expected a size bound (a positive integer) after '(', found 'x'"},
    {"event A v1 {\n  s: string(0)\n}\n",
     "t.events:2:13: size bound 0 is out of range: use 1 to 16777216"},
    {"event A v1 {\n  s: string =\n}\n",
     "t.events:2:14: expected a default value (a string, number, true, false or a list [...]), "
     "found the end of the line"},
    {"event A v1 {\n  l: list<i32> = [1 2]\n}\n",
     "t.events:2:21: expected ',' or ']' in the list opened at line 2, found '2'"},
    {"event A v1 {\n}\nstray\n",
     "t.events:3:1: expected 'event' or 'record' at the start of a declaration, found 'stray'"},
    /* names */
    {"event order_created v1 {\n}\n",
     "t.events:1:7: bad event name 'order_created': use UpperCamel ASCII ([A-Z][A-Za-z0-9]*), "
     "e.g. OrderCreated"},
    {"record point {\n}\n",
     "t.events:1:8: bad record name 'point': use UpperCamel ASCII ([A-Z][A-Za-z0-9]*), e.g. "
     "OrderCreated"},
    {"event AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA v1 {\n}\n",
     "t.events:1:7: event name 'AAAAAAAAAAAAAAAAAAAA...' is longer than 64 characters"},
    {"event A v1 {\n}\nevent A v2 {\n}\n", "t.events:3:7: event A is already declared at line 1"},
    /* With a prefix, a name ending in _t can be a system header's type:
     * prefix int and Least8T give int_least8_t. */
    {"record Least8T {\n}\n",
     "t.events:1:8: bad record name 'Least8T': its C name <prefix>_least8_t ends in _t, as the "
     "type names of system headers do (int_least8_t, size_t, ...), and could be one of them; "
     "choose another name"},
    {"event T v1 {\n}\n",
     "t.events:1:7: bad event name 'T': its C name <prefix>_t ends in _t, as the type names of "
     "system headers do (int_least8_t, size_t, ...), and could be one of them; choose another "
     "name"},
    {"event Size2T v1 {\n}\n",
     "t.events:1:7: bad event name 'Size2T': its C name <prefix>_size2_t ends in _t, as the type "
     "names of system headers do (int_least8_t, size_t, ...), and could be one of them; choose "
     "another name"},
    {"event A v1 {\n  OrderId: string\n}\n",
     "t.events:2:3: bad field name 'OrderId': use snake_case ([a-z][a-z0-9_]*, no '__', no "
     "trailing '_'), e.g. order_id"},
    {"event A v1 {\n  a__b: string\n}\n",
     "t.events:2:3: bad field name 'a__b': use snake_case ([a-z][a-z0-9_]*, no '__', no "
     "trailing '_'), e.g. order_id"},
    {"event A v1 {\n  default: string\n}\n",
     "t.events:2:3: bad field name 'default': it is a C or C++ keyword; choose another name"},
    {"event A v1 {\n  x: i32\n  y: i32\n  x: string\n}\n",
     "t.events:4:3: duplicate field 'x' in event A (first at line 2)"},
    {"event HTTPError v1 {\n}\nevent HttpError v1 {\n}\n",
     "t.events:3:7: event HttpError clashes with event HTTPError (line 1): both generate the C "
     "name <prefix>_http_error; rename one"},
    {"event Order v1 {\n}\nevent OrderInit v1 {\n}\n",
     "t.events:3:7: event OrderInit clashes with event Order (line 1): both generate the C name "
     "<prefix>_order_init; rename one"},
    {"record Mem {\n}\n",
     "t.events:1:8: record Mem would generate the C name <prefix>_mem, which choreo-gen uses "
     "itself; rename it"},
    /* types */
    {"event A v1 {\n  s: strng\n}\n", "t.events:2:6: unknown type 'strng'; did you mean 'string'?"},
    {"event A v1 {\n  s: Whatever\n}\n",
     "t.events:2:6: unknown type 'Whatever': use string, bytes, bool, i32, i64, u64, f64, "
     "timestamp, list<T> or a record declared above"},
    {"record Point {\n}\nevent A v1 {\n  p: Pont\n}\n",
     "t.events:4:6: unknown type 'Pont'; did you mean 'Point'?"},
    {"event A v1 {\n  p: P\n}\nrecord P {\n}\n",
     "t.events:2:6: record P is used before its declaration at line 4: declare records above "
     "the events and records that use them"},
    {"record P {\n  p: P\n}\n", "t.events:2:6: record P cannot contain itself"},
    {"event B v1 {\n}\nevent A v1 {\n  b: B\n}\n",
     "t.events:4:6: 'B' is an event: only records can be field types (declare 'record B { ... "
     "}' for the shared fields)"},
    {"event A v1 {\n  l: list<list<i32>>\n}\n",
     "t.events:2:11: lists of lists are not supported: put the inner list in a record"},
    {"event A v1 {\n  n: i32(4)\n}\n",
     "t.events:2:6: a size bound applies to string, bytes and list only, not to i32"},
    /* defaults */
    {"event A v1 {\n  n: i32 = \"1\"\n}\n",
     "t.events:2:12: default of field 'n' must be an integer for i32"},
    {"event A v1 {\n  n: i32 = 2147483648\n}\n",
     "t.events:2:12: default 2147483648 of field 'n' is out of range for i32 (-2147483648 to "
     "2147483647)"},
    {"event A v1 {\n  n: i64 = 9223372036854775808\n}\n",
     "t.events:2:12: default 9223372036854775808 of field 'n' is out of range for i64 "
     "(-9223372036854775808 to 9223372036854775807)"},
    {"event A v1 {\n  n: u64 = -1\n}\n",
     "t.events:2:12: default -1 of field 'n' is out of range for u64 (0 to "
     "18446744073709551615)"},
    {"event A v1 {\n  n: u64 = 18446744073709551616\n}\n",
     "t.events:2:12: default 18446744073709551616 of field 'n' is out of range for u64 (0 to "
     "18446744073709551615)"},
    {"event A v1 {\n  n: i32 = 1.5\n}\n",
     "t.events:2:12: default of field 'n' must be an integer for i32"},
    {"event A v1 {\n  f: f64 = 1e999\n}\n",
     "t.events:2:12: default 1e999 of field 'f' is out of range for f64"},
    {"event A v1 {\n  f: f64 = 1e-400\n}\n",
     "t.events:2:12: default 1e-400 of field 'f' is too small for f64: it would become 0 (the "
     "smallest nonzero f64 is about 4.9e-324); write 0 if that is meant"},
    {"event A v1 {\n  f: f64 = -0.0000001e-320\n}\n",
     "t.events:2:12: default -0.0000001e-320 of field 'f' is too small for f64: it would become "
     "0 (the smallest nonzero f64 is about 4.9e-324); write 0 if that is meant"},
    {"event A v1 {\n  n: i32 = -0\n}\n",
     "t.events:2:12: default -0 of field 'n': an integer has no negative zero; write it as 0"},
    {"event A v1 {\n  n: u64 = -0\n}\n",
     "t.events:2:12: default -0 of field 'n': an integer has no negative zero; write it as 0"},
    {"event A v1 {\n  s: string = \"\\x41\"\n}\n",
     "t.events:2:15: default of field 's' uses \\x escapes, which are for bytes: a string holds "
     "UTF-8 text; write the character, or \\uXXXX"},
    {"event A v1 {\n  l: list<string> = [\"a\", \"\\xe9\"]\n}\n",
     "t.events:2:27: default of field 'l' uses \\x escapes, which are for bytes: a string holds "
     "UTF-8 text; write the character, or \\uXXXX"},
    {"event A v1 {\n  f: f64 = true\n}\n",
     "t.events:2:12: default of field 'f' must be a number for f64"},
    {"event A v1 {\n  b: bool = 1\n}\n", "t.events:2:13: default of field 'b' must be true or false"},
    {"event A v1 {\n  s: string = 1\n}\n",
     "t.events:2:15: default of field 's' must be a string literal (\"...\") for string"},
    {"event A v1 {\n  s: string(2) = \"abc\"\n}\n",
     "t.events:2:18: default of field 's' is 3 bytes long, more than its bound 2"},
    {"event A v1 {\n  l: list<i32> = 1\n}\n",
     "t.events:2:18: default of field 'l' must be a list [...] for list<i32>"},
    {"event A v1 {\n  l: list<i32> = [1, \"2\"]\n}\n",
     "t.events:2:22: default of field 'l' must be an integer for i32"},
    {"event A v1 {\n  l: list<i32>(1) = [1, 2]\n}\n",
     "t.events:2:21: default of field 'l' has 2 items, more than its bound 1"},
    {"record P {\n}\nevent A v1 {\n  p: P = 1\n}\n",
     "t.events:4:10: field 'p' of record type P cannot have a default: make it required, or a "
     "list<P> = []"},
};

Test(gen_schema, each_mistake_is_reported_at_its_file_line_and_column)
{
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        gen_diags d;
        char buf[600];
        gen_schema *s = parse(bad_cases[i].text, &d);
        cr_expect_null(s, "case %zu was accepted:\n%s", i, bad_cases[i].text);
        gen_schema_free(s);
        const char *got = first(&d, buf, sizeof buf);
        cr_expect(strcmp(got, bad_cases[i].error) == 0, "case %zu:\n%s got:  %s\nwant: %s", i,
                  bad_cases[i].text, got, bad_cases[i].error);
    }
}

/* Every name a struct member cannot have in C11, C23, C++20 or gnu modes,
 * and the type names the generated structs use (C++ forbids a member that
 * changes their meaning). */
Test(gen_schema, field_names_that_would_not_compile_are_refused)
{
    static const char *const keywords[] = {
        "alignas", "alignof", "and", "and_eq", "asm", "auto", "bitand", "bitor", "bool",
        "break", "case", "catch", "char", "char8_t", "char16_t", "char32_t", "class",
        "co_await", "co_return", "co_yield", "compl", "concept", "const", "const_cast",
        "consteval", "constexpr", "constinit", "continue", "decltype", "default", "delete",
        "do", "double", "dynamic_cast", "else", "enum", "explicit", "export", "extern",
        "false", "float", "for", "friend", "goto", "if", "inline", "int", "long", "mutable",
        "namespace", "new", "noexcept", "not", "not_eq", "nullptr", "operator", "or",
        "or_eq", "private", "protected", "public", "register", "reinterpret_cast",
        "requires", "restrict", "return", "short", "signed", "sizeof", "static",
        "static_assert", "static_cast", "struct", "switch", "template", "this",
        "thread_local", "throw", "true", "try", "typedef", "typeid", "typename", "typeof",
        "typeof_unqual", "union", "unsigned", "using", "virtual", "void", "volatile",
        "wchar_t", "while", "xor", "xor_eq",
    };
    static const char *const taken[] = {
        "unix", "linux", "errno", "assert", "stdin", "stdout", "stderr", "int32_t",
        "int64_t", "uint64_t", "uint8_t", "uint32_t", "size_t", "max_align_t",
        /* <complex.h>, <stdnoreturn.h> */
        "complex", "imaginary", "noreturn",
        /* glibc's macros for members inside unions: <sys/stat.h>, <signal.h>,
         * <netdb.h>, <net/if.h>, <ifaddrs.h>; and <math.h>'s */
        "st_atime", "st_mtime", "st_ctime", "si_pid", "si_uid", "si_addr", "si_status",
        "si_value", "si_band", "si_fd", "si_int", "si_timerid", "sa_handler", "sa_sigaction",
        "sigev_notify_function", "h_addr", "h_errno", "ifr_name", "ifr_flags", "ifa_dstaddr",
        "ifc_buf", "math_errhandling",
    };
    for (size_t k = 0; k < 2; k++) {
        const char *const *names = k ? taken : keywords;
        size_t n = k ? sizeof taken / sizeof taken[0] : sizeof keywords / sizeof keywords[0];
        for (size_t i = 0; i < n; i++) {
            char text[128], want[256], buf[600];
            snprintf(text, sizeof text, "event A v1 {\n  %s: i32\n}\n", names[i]);
            snprintf(want, sizeof want,
                     k ? "t.events:2:3: bad field name '%s': C compilers or headers define it "
                         "(a macro or a type name), so the generated struct would not "
                         "compile; choose another name"
                       : "t.events:2:3: bad field name '%s': it is a C or C++ keyword; choose "
                         "another name",
                     names[i]);
            gen_diags d;
            gen_schema *s = parse(text, &d);
            cr_expect_null(s, "field name %s was accepted", names[i]);
            gen_schema_free(s);
            cr_expect_str_eq(first(&d, buf, sizeof buf), want);
        }
    }
}

Test(gen_schema, several_mistakes_are_all_reported)
{
    gen_diags d;
    gen_schema *s = parse("event A v1 {\n"
                          "  a i32\n"
                          "  b: i32 c\n"
                          "  d: list<\n"
                          "}\n",
                          &d);
    cr_assert_null(s);
    cr_assert_eq(d.n, 3);
    cr_assert_eq(d.items[0].loc.line, 2);
    cr_assert_eq(d.items[1].loc.line, 3);
    cr_assert_eq(d.items[2].loc.line, 4);
}

Test(gen_schema, the_number_of_reported_errors_is_bounded)
{
    char text[4096] = "event A v1 {\n";
    for (int i = 0; i < 40; i++)
        strcat(text, "  bad line\n");
    strcat(text, "}\n");
    gen_diags d;
    gen_schema *s = parse(text, &d);
    cr_assert_null(s);
    cr_assert_eq(d.n, GEN_DIAG_MAX);
    cr_assert_eq(d.dropped, 40 - GEN_DIAG_MAX);
}

/* "event A v1 {\n  x: " + open * n + tail, in a new buffer. */
static char *nested(const char *head, const char *open, size_t n, const char *tail)
{
    size_t hl = strlen(head), ol = strlen(open), tl = strlen(tail);
    char *text = malloc(hl + ol * n + tl + 1);
    cr_assert_not_null(text);
    memcpy(text, head, hl);
    for (size_t i = 0; i < n; i++)
        memcpy(text + hl + i * ol, open, ol);
    memcpy(text + hl + ol * n, tail, tl + 1);
    return text;
}

Test(gen_schema, deep_nesting_is_an_error_at_its_column_not_a_crash)
{
    static const struct {
        const char *head, *open, *tail, *error;
    } cases[] = {
        {"event A v1 {\n  x: list<i32> = ", "[", "\n}\n",
         "t.events:2:82: '[' nested more than 64 levels deep: a default list holds scalar "
         "values, not lists"},
        {"event A v1 {\n  x: ", "list<", "i32\n}\n",
         "t.events:2:326: list<...> nested more than 64 levels deep: a list holds scalars or "
         "records (put an inner list in a record)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *text = nested(cases[i].head, cases[i].open, 50000, cases[i].tail);
        gen_diags d;
        char buf[600];
        gen_schema *s = parse(text, &d);
        cr_expect_null(s);
        gen_schema_free(s);
        cr_expect_str_eq(first(&d, buf, sizeof buf), cases[i].error);
        free(text);
    }
}

Test(gen_schema, a_field_may_be_called_event_or_record)
{
    gen_diags d;
    char buf[512];
    gen_schema *s = parse("event A v1 {\n  event: string\n  record: i32\n}\n", &d);
    cr_assert_not_null(s, "%s", first(&d, buf, sizeof buf));
    cr_assert_str_eq(s->decls[0].fields[0].name, "event");
    cr_assert_str_eq(s->decls[0].fields[1].name, "record");
    gen_schema_free(s);
}

Test(gen_schema, a_nul_byte_means_not_a_schema)
{
    gen_diags d;
    memset(&d, 0, sizeof d);
    gen_schema *s = gen_schema_parse("t.events", "event A v1 {}\n\0", 15, &d);
    cr_assert_null(s);
    cr_assert_str_eq(d.items[0].msg, "the file contains a NUL byte: it is not a schema text file");
}

Test(gen_schema, snake_case_of_names)
{
    static const char *const pairs[][2] = {
        {"OrderCreated", "order_created"}, {"HTTPError", "http_error"}, {"A", "a"},
        {"OrderV2", "order_v2"},           {"ABC", "abc"},               {"Item2Go", "item2_go"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        char buf[64];
        cr_expect_str_eq(gen_snake(pairs[i][0], buf, sizeof buf), pairs[i][1]);
    }
}

Test(gen_schema, prefixes_must_be_c_identifiers)
{
    cr_expect(gen_prefix_valid("shop"));
    cr_expect(gen_prefix_valid("my_shop2"));
    cr_expect(!gen_prefix_valid(""));
    cr_expect(!gen_prefix_valid("Shop"));
    cr_expect(!gen_prefix_valid("my-shop"));
    cr_expect(!gen_prefix_valid("a__b"));
    cr_expect(!gen_prefix_valid("shop_"));
    cr_expect(!gen_prefix_valid("2shop"));
    cr_expect(!gen_prefix_valid("abcdefghijklmnopqrstuvwxyzabcdefg"));
    cr_expect(gen_prefix_valid("choreography"));
    cr_expect(gen_prefix_valid("my_choreo"));
}

/* Generated names would share libchoreo's (choreo_event, choreo_tx, ...). */
Test(gen_schema, prefixes_of_libchoreos_names_are_refused_with_the_reason)
{
    static const char *const bad[] = {"choreo", "choreo_shop", "choreo_x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *why = gen_prefix_problem(bad[i]);
        cr_expect_not_null(why, "prefix %s was accepted", bad[i]);
        if (why)
            cr_expect(strstr(why, "names starting with choreo_ are libchoreo's own"), "%s: %s",
                      bad[i], why);
    }
    cr_expect_null(gen_prefix_problem("shop"));
    cr_expect(strstr(gen_prefix_problem("shop_"), "[a-z][a-z0-9]*(_[a-z0-9]+)*"));
}

/* SQLite's names (choreo.h includes sqlite3.h) and C11's <stdatomic.h>
 * (the generated source includes it) share the generated names' shape. */
Test(gen_schema, prefixes_of_sqlite_and_stdatomic_names_are_refused_with_the_reason)
{
    static const struct {
        const char *prefix, *says;
    } bad[] = {
        {"sqlite3", "names starting with sqlite3_ are SQLite's (sqlite3_stmt, ...)"},
        {"sqlite3_x", "names starting with sqlite3_ are SQLite's"},
        {"sqlite", "names starting with sqlite_ or SQLITE_ are SQLite's (SQLITE_VERSION, ...)"},
        {"sqlite_shop", "names starting with sqlite_ or SQLITE_ are SQLite's"},
        {"atomic", "names starting with atomic_ are C11's <stdatomic.h> (atomic_int, ...)"},
        {"atomic_x", "names starting with atomic_ are C11's <stdatomic.h>"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *why = gen_prefix_problem(bad[i].prefix);
        cr_expect_not_null(why, "prefix %s was accepted", bad[i].prefix);
        if (why)
            cr_expect(strstr(why, bad[i].says), "%s: %s", bad[i].prefix, why);
    }
    static const char *const good[] = {"sqlitex", "my_sqlite3", "sqlite4", "atomics", "int",
                                       "uint", "int_least8"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        cr_expect_null(gen_prefix_problem(good[i]), "prefix %s was refused", good[i]);
}

/* A bytes default is the UTF-8 bytes of its text, and \xNN adds any one
 * byte, NUL included; shown again, such a value keeps its \xNN. */
Test(gen_schema, bytes_defaults_hold_the_bytes_their_escapes_say)
{
    gen_diags d;
    char buf[512];
    gen_schema *s = parse("event A v1 {\n"
                          "  b: bytes(5) = \"\\x00\\xffA\\u00e9\"\n"
                          "  l: list<bytes> = [\"\\x7f\", \"*/\"]\n"
                          "}\n",
                          &d);
    cr_assert_not_null(s, "%s", first(&d, buf, sizeof buf));
    const gen_value *b = s->decls[0].fields[0].dflt;
    cr_assert_eq(b->len, 5);
    cr_assert(memcmp(b->str, "\x00\xff" "A\xc3\xa9", 5) == 0);
    cr_assert_str_eq(gen_value_str(b, buf, sizeof buf), "\"\\x00\\xffA\\xc3\\xa9\"");
    cr_assert_str_eq(gen_value_str(s->decls[0].fields[1].dflt, buf, sizeof buf),
                     "[\"\\x7f\", \"*\\u002f\"]");
    gen_schema_free(s);
}

/* What is refused is a literal whose value would change; these keep it. */
Test(gen_schema, number_defaults_that_keep_their_value_are_accepted)
{
    gen_diags d;
    char buf[512];
    gen_schema *s = parse("event A v1 {\n"
                          "  a: i32 = 0\n"
                          "  b: f64 = -0\n"
                          "  c: f64 = 0.0e-999\n"
                          "  e: f64 = 1e-320\n"
                          "  f: f64 = -0.05\n"
                          "  g: f64 = 1e-05\n"
                          "}\n",
                          &d);
    cr_assert_not_null(s, "%s", first(&d, buf, sizeof buf));
    const gen_field *f = s->decls[0].fields;
    cr_expect_eq(f[0].dflt->mag, 0);
    cr_expect(f[1].dflt->f == 0 && signbit(f[1].dflt->f), "-0 is f64's negative zero");
    cr_expect(f[2].dflt->f == 0);
    cr_expect(f[3].dflt->f > 0, "a subnormal f64 is kept");
    cr_expect(f[4].dflt->f == -0.05);
    cr_expect(f[5].dflt->f == 1e-05);
    gen_schema_free(s);
}

/* Checking compares names with a table, not each declaration with every
 * other, and the arena does not leave most of its memory unused: a schema
 * of many declarations takes time and memory in proportion (it took
 * 78 KB and quadratic time per declaration). The timeout is far above
 * what a sanitizer or valgrind build needs. */
Test(gen_schema, many_declarations_are_checked_in_time_and_memory_in_proportion,
     .timeout = 60)
{
    enum { N = 20000 };
    static const char decl[] = "record R%d {\n  x: i32\n  y: list<R0> = []\n}\n"
                               "event E%d v1 {\n  r: R%d\n  s: string = \"\"\n}\n";
    size_t cap = N * (sizeof decl + 16), n = 0;
    char *text = malloc(cap);
    cr_assert_not_null(text);
    n += (size_t)snprintf(text, cap, "record R0 {\n  x: i32\n}\n");
    for (int i = 1; i < N; i++)
        n += (size_t)snprintf(text + n, cap - n, decl, i, i, i);
    gen_diags d;
    char buf[512];
    memset(&d, 0, sizeof d);
    gen_schema *s = gen_schema_parse("t.events", text, n, &d);
    free(text);
    cr_assert_not_null(s, "%s", first(&d, buf, sizeof buf));
    cr_assert_eq(s->ndecls, 2 * N - 1);
    size_t per_decl = gen_arena_footprint(s->arena) / s->ndecls;
    cr_expect_lt(per_decl, 4096, "%zu bytes per declaration", per_decl);
    gen_schema_free(s);
}
