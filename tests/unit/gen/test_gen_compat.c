/* choreo-gen's compatibility verdicts over the schema pairs in compat/:
 * NAME.old.events -> NAME.new.events for --check-compat, one row per kind of
 * change, and NAME.producer.events -> NAME.consumer.events for
 * --check-consumer, one row per kind of unmet expectation, each with the
 * counts of breaking, warning and compatible findings, and the first line
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
    {"required_to_optional", 1, 0, 0, "compat/required_to_optional.new.events:15: breaking",
     "field 'reason' became optional; producers may now leave it out, and consumers built "
     "from the old schema, which require it, would reject that data"},
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

/* Producer -> consumer subset, for gen_compat_consumer. */
static const compat_case consumer_cases[] = {
    {"subset_met", 0, 0, 0, "", ""},
    {"missing_event", 1, 0, 0, "compat/missing_event.consumer.events:5: breaking",
     "event OrderShipped is not in the producer's schema compat/missing_event.producer.events"},
    {"missing_required_field", 1, 0, 0,
     "compat/missing_required_field.consumer.events:3: breaking",
     "event OrderCreated: required field 'coupon' is not declared by the producer"},
    {"missing_optional_field", 0, 1, 0, "compat/missing_optional_field.consumer.events:3: warning",
     "event OrderCreated: optional field 'coupon' is not declared by the producer; the "
     "consumer always sees its default \"none\""},
    {"consumer_type_differs", 1, 0, 0, "compat/consumer_type_differs.consumer.events:3: breaking",
     "event OrderCreated: field 'qty' is i64 here but i32 in the producer "
     "(compat/consumer_type_differs.producer.events:8)"},
    {"consumer_requires_optional", 1, 0, 0,
     "compat/consumer_requires_optional.consumer.events:3: breaking",
     "event OrderCreated: field 'note' is required here but optional in the producer"},
    {"producer_bound_larger", 4, 0, 0, "compat/producer_bound_larger.consumer.events:7: breaking",
     "event OrderCreated: field 'note' is string(100) here but string in the producer"},
    {"nested_record_field_missing", 1, 0, 0,
     "compat/nested_record_field_missing.consumer.events:3: breaking",
     "record Item: required field 'weight' is not declared by the producer"},
    {"consumer_default_differs", 0, 1, 0,
     "compat/consumer_default_differs.consumer.events:3: warning",
     "field 'note' defaults to \"none\" here but to \"\" in the producer"},
    {"producer_version_newer", 0, 0, 1,
     "compat/producer_version_newer.consumer.events:1: compatible",
     "event OrderCreated: the producer declares v2, newer than the consumer's v1"},
    {"producer_version_older", 1, 0, 0,
     "compat/producer_version_older.consumer.events:1: breaking",
     "event OrderCreated: the producer declares v1, older than the v2 the consumer expects"},
    {"consumer_record_renamed", 2, 0, 0,
     "compat/consumer_record_renamed.consumer.events:1: breaking",
     "record LineItem is not in the producer's schema"},
    {"event_is_record", 1, 0, 0, "compat/event_is_record.consumer.events:1: breaking",
     "OrderCancelled is a record here but an event in the producer"},
};

typedef gen_compat_counts (*check_fn)(const gen_schema *, const gen_schema *, void *);

static gen_schema *load(const char *path)
{
    gen_diags d;
    memset(&d, 0, sizeof d);
    gen_schema *s = gen_schema_load(path, &d);
    cr_assert_not_null(s, "%s: %s", path, d.n ? d.items[0].msg : "?");
    return s;
}

/* Runs `check` over compat/NAME.FROM.events -> compat/NAME.TO.events for
 * every case and compares counts and first line. */
static void check_cases(const compat_case *table, size_t n, const char *from, const char *to,
                        check_fn check)
{
    const char *dir = getenv("GEN_TEST_DIR");
    cr_assert_not_null(dir, "GEN_TEST_DIR must name tests/unit/gen");
    cr_assert_eq(chdir(dir), 0);
    for (size_t i = 0; i < n; i++) {
        const compat_case *c = &table[i];
        char from_path[256], to_path[256];
        snprintf(from_path, sizeof from_path, "compat/%s.%s.events", c->name, from);
        snprintf(to_path, sizeof to_path, "compat/%s.%s.events", c->name, to);
        gen_schema *a = load(from_path), *b = load(to_path);
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        cr_assert_not_null(f);
        gen_compat_counts k = check(a, b, f);
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
        gen_schema_free(a);
        gen_schema_free(b);
    }
}

Test(gen_compat, each_kind_of_change_gets_its_verdict)
{
    check_cases(cases, sizeof cases / sizeof cases[0], "old", "new", gen_compat_check);
}

Test(gen_compat, each_unmet_consumer_expectation_gets_its_verdict)
{
    check_cases(consumer_cases, sizeof consumer_cases / sizeof consumer_cases[0], "producer",
                "consumer", gen_compat_consumer);
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

/* gen_compat_consumer(producer, consumer) on two files of this folder; what
 * it prints goes to *text (free it). */
static gen_compat_counts consumer_check(const char *producer, const char *consumer, char **text)
{
    const char *dir = getenv("GEN_TEST_DIR");
    cr_assert_not_null(dir);
    char ppath[512], cpath[512];
    snprintf(ppath, sizeof ppath, "%s/%s", dir, producer);
    snprintf(cpath, sizeof cpath, "%s/%s", dir, consumer);
    gen_schema *p = load(ppath), *c = load(cpath);
    size_t len = 0;
    *text = NULL;
    FILE *f = open_memstream(text, &len);
    cr_assert_not_null(f);
    gen_compat_counts k = gen_compat_consumer(p, c, f);
    fclose(f);
    gen_schema_free(p);
    gen_schema_free(c);
    return k;
}

static void expect_met_silently(const char *producer, const char *consumer)
{
    char *text;
    gen_compat_counts k = consumer_check(producer, consumer, &text);
    cr_expect_eq(k.breaking + k.warnings + k.compatible, 0, "%s -> %s:\n%s", producer, consumer,
                 text);
    free(text);
}

Test(gen_compat, the_subsets_the_generated_code_tests_use_are_met)
{
    expect_met_silently("../../../events/shop.events", "shipping.events");
    expect_met_silently("all_types.events", "all_types_reader.events");
}

Test(gen_compat, a_schema_meets_itself_as_a_consumer)
{
    expect_met_silently("../../../events/shop.events", "../../../events/shop.events");
    expect_met_silently("all_types.events", "all_types.events");
}

Test(gen_compat, a_consumer_check_runs_one_way)
{
    /* The full schema as a consumer of the subset: the fields the subset
     * leaves out are now expected and missing. */
    char *text;
    gen_compat_counts k = consumer_check("shipping.events", "../../../events/shop.events", &text);
    cr_expect_gt(k.breaking, 0);
    cr_expect(strstr(text, "event OrderCreated: required field 'amount_cents' is not declared "
                           "by the producer"), "%s", text);
    free(text);
}

/* A new schema where a required field became optional, read by a consumer
 * built from the old one: a producer of the new schema, in any language,
 * may leave the field out and the old consumer rejects that data. Both
 * checks judge that pair of declarations the same way. */
Test(gen_compat, both_checks_call_a_field_made_optional_breaking)
{
    char *text;
    gen_compat_counts k = consumer_check("compat/required_to_optional.new.events",
                                         "compat/required_to_optional.old.events", &text);
    cr_expect_eq(k.breaking, 1, "%s", text);
    free(text);
    const char *dir = getenv("GEN_TEST_DIR");
    cr_assert_not_null(dir);
    char opath[512], npath[512];
    snprintf(opath, sizeof opath, "%s/compat/required_to_optional.old.events", dir);
    snprintf(npath, sizeof npath, "%s/compat/required_to_optional.new.events", dir);
    gen_schema *o = load(opath), *n = load(npath);
    FILE *devnull = fopen("/dev/null", "w");
    cr_assert_not_null(devnull);
    k = gen_compat_check(o, n, devnull);
    fclose(devnull);
    cr_expect_eq(k.breaking, 1);
    gen_schema_free(o);
    gen_schema_free(n);
}
