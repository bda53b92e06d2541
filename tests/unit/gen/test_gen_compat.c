/* choreo-gen's compatibility verdicts over the schema pairs in compat/:
 * NAME.old.events -> NAME.new.events, one row per kind of change, with the
 * counts of breaking, warning and compatible changes, and the first line
 * reported (file:line: verdict: what). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compat.h"
#include "schema.h"

typedef struct compat_case {
    const char *name;
    size_t breaking, warnings, compatible;
    const char *first; /* start of the first line, "" when nothing changed */
    const char *says;  /* a phrase the first line contains */
} compat_case;

static const compat_case cases[] = {
    {"identical", 0, 0, 0, "", ""},
    {"add_event", 0, 0, 1, "compat/add_event.new.events:18: compatible",
     "event OrderShipped was added"},
    {"add_record", 0, 0, 1, "compat/add_record.new.events:1: compatible",
     "record Address was added"},
    {"add_optional_field", 0, 0, 1, "compat/add_optional_field.new.events:10: compatible",
     "optional field 'coupon' was added"},
    {"remove_optional_field", 0, 0, 1, "compat/remove_optional_field.old.events:9: compatible",
     "optional field 'note' was removed"},
    {"required_to_optional", 0, 0, 1, "compat/required_to_optional.new.events:15: compatible",
     "field 'reason' became optional"},
    {"version_up", 0, 0, 1, "compat/version_up.new.events:6: compatible",
     "version raised from v1 to v2"},
    {"explicit_default_list_bound", 0, 0, 0, "", ""},
    {"change_default", 0, 1, 0, "compat/change_default.new.events:9: warning",
     "default of field 'note' changed from \"\" to \"none\""},
    {"rename_optional_field", 0, 1, 0, "compat/rename_optional_field.new.events:9: warning",
     "optional field 'note' was renamed to 'comment'"},
    {"add_required_field", 1, 0, 0, "compat/add_required_field.new.events:10: breaking",
     "required field 'coupon' was added"},
    {"remove_required_field", 1, 0, 0, "compat/remove_required_field.old.events:8: breaking",
     "required field 'qty' was removed"},
    {"rename_required_field", 1, 0, 0, "compat/rename_required_field.new.events:8: breaking",
     "field 'qty' was renamed to 'quantity' (compat/rename_required_field.old.events:8)"},
    {"change_type", 1, 0, 0, "compat/change_type.new.events:8: breaking",
     "field 'qty' changed type from i32 to i64"},
    {"change_list_item_type", 1, 0, 0, "compat/change_list_item_type.new.events:10: breaking",
     "field 'items' changed type from list<Item> to list<string>"},
    {"change_bound", 1, 0, 0, "compat/change_bound.new.events:7: breaking",
     "changed its size bound from string(64) to string(32)"},
    {"add_list_bound", 1, 0, 0, "compat/add_list_bound.new.events:10: breaking",
     "changed its size bound from list<Item> to list<Item>(100)"},
    {"optional_to_required", 1, 0, 0, "compat/optional_to_required.new.events:9: breaking",
     "field 'note' became required"},
    {"remove_event", 1, 0, 0, "compat/remove_event.old.events:13: breaking",
     "event OrderCancelled was removed"},
    {"remove_record", 2, 0, 0, "compat/remove_record.old.events:1: breaking",
     "record Item was removed"},
    {"record_field_changed", 1, 0, 0, "compat/record_field_changed.new.events:4: breaking",
     "record Item: required field 'price' was added"},
    {"event_to_record", 1, 0, 0, "compat/event_to_record.new.events:13: breaking",
     "OrderCancelled was an event and is now a record"},
    {"version_down", 1, 0, 0, "compat/version_down.new.events:13: breaking",
     "version went down from v2 to v1"},
};

static gen_schema *load(const char *path)
{
    gen_diags d;
    memset(&d, 0, sizeof d);
    gen_schema *s = gen_schema_load(path, &d);
    cr_assert_not_null(s, "%s: %s", path, d.n ? d.items[0].msg : "?");
    return s;
}

Test(gen_compat, each_kind_of_change_gets_its_verdict)
{
    const char *dir = getenv("GEN_TEST_DIR");
    cr_assert_not_null(dir, "GEN_TEST_DIR must name tests/unit/gen");
    cr_assert_eq(chdir(dir), 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const compat_case *c = &cases[i];
        char old_path[256], new_path[256];
        snprintf(old_path, sizeof old_path, "compat/%s.old.events", c->name);
        snprintf(new_path, sizeof new_path, "compat/%s.new.events", c->name);
        gen_schema *o = load(old_path), *n = load(new_path);
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        cr_assert_not_null(f);
        gen_compat_counts k = gen_compat_check(o, n, f);
        fclose(f);
        cr_expect_eq(k.breaking, c->breaking, "%s: %zu breaking\n%s", c->name, k.breaking, text);
        cr_expect_eq(k.warnings, c->warnings, "%s: %zu warnings\n%s", c->name, k.warnings, text);
        cr_expect_eq(k.compatible, c->compatible, "%s: %zu compatible\n%s", c->name,
                     k.compatible, text);
        cr_expect(strncmp(text, c->first, strlen(c->first)) == 0, "%s: first line\n%s", c->name,
                  text);
        char *nl = strchr(text, '\n');
        if (nl)
            *nl = '\0';
        cr_expect(strstr(text, c->says) != NULL, "%s: does not say \"%s\":\n%s", c->name, c->says,
                  text);
        free(text);
        gen_schema_free(o);
        gen_schema_free(n);
    }
}

Test(gen_compat, the_demo_schema_is_compatible_with_itself)
{
    const char *dir = getenv("GEN_TEST_DIR");
    cr_assert_not_null(dir);
    char path[512];
    snprintf(path, sizeof path, "%s/../../../events/shop.events", dir);
    gen_schema *a = load(path), *b = load(path);
    FILE *devnull = fopen("/dev/null", "w");
    gen_compat_counts k = gen_compat_check(a, b, devnull);
    fclose(devnull);
    cr_assert_eq(k.breaking + k.warnings + k.compatible, 0);
    gen_schema_free(a);
    gen_schema_free(b);
}
