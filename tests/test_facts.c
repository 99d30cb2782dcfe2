/* The fact-record loader (src/facts.h): CounterFact JSON and JSONL, ROME's known_1000, every kind
 * of malformed record (skipped, reported with its index and field), whole-file failures (named
 * by file, and line for JSONL), foils for known records, and the prompt / subject offset.
 *
 * Fixtures in tests/fixtures/facts/ follow the real files' schemas (ROME's dsets/counterfact.py
 * and dsets/knowns.py; the first records are CounterFact's and known_1000's own).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "facts.h"
#include "xt_test.h"

#define FACTS_DIR XT_FIXTURE_DIR "/facts"

/* A valid CounterFact record with the given case_id, to keep a file from being all-invalid. */
#define GOOD_CF(id)                                                                                \
    "{\"case_id\": " #id ", \"requested_rewrite\": {\"prompt\": \"The mother tongue of {} is\", " \
    "\"relation_id\": \"P103\", \"subject\": \"Danielle Darrieux\", \"target_new\": {\"str\": "   \
    "\"English\"}, \"target_true\": {\"str\": \"French\"}}}"

#define GOOD_KNOWN(id)                                                                             \
    "{\"known_id\": " #id ", \"subject\": \"Beats Music\", \"attribute\": \"Apple\", "           \
    "\"prompt\": \"Beats Music is owned by\", \"relation_id\": \"P127\"}"

static xt_status parse(const char *text, xt_facts *f, xt_error *err)
{
    return xt_facts_parse(text, strlen(text), "inline.json", f, err);
}

static const xt_fact *find_case(const xt_facts *f, int64_t case_id)
{
    for (uint32_t i = 0; i < f->n; i++)
        if (f->v[i].case_id == case_id) return &f->v[i];
    return NULL;
}

static int has(const char *s, const char *part)
{
    return s && strstr(s, part) != NULL;
}

/* ---- the fixtures ---------------------------------------------------------------------------- */

static void counterfact_json_should_load_every_record(void)
{
    xt_facts f;
    xt_error err = {0};
    CHECK_MSG(xt_facts_load(FACTS_DIR "/counterfact_small.json", &f, &err) == XT_OK, "%s",
              err.msg);
    CHECK(!strcmp(f.format, "counterfact"));
    CHECK(f.n == 5 && f.n_skipped == 0 && f.n_records == 5);
    CHECK(has(f.name, "counterfact_small.json"));
    const xt_fact *x = &f.v[0];
    CHECK(x->case_id == 0 && x->index == 0);
    CHECK(!strcmp(x->prompt_template, "The mother tongue of {} is"));
    CHECK(!strcmp(x->subject, "Danielle Darrieux"));
    CHECK(!strcmp(x->target_true, "French") && !strcmp(x->target_foil, "English"));
    CHECK(!strcmp(x->relation_id, "P103"));
    /* optional fields absent (record 2) or extra keys (record 3) do not matter */
    CHECK(f.v[2].case_id == 2 && !strcmp(f.v[2].target_foil, "piano"));
    CHECK(f.v[3].case_id == 3 && !strcmp(f.v[3].subject, "Autonomous University of Madrid"));
    /* \u escapes become UTF-8 */
    CHECK(f.v[4].case_id == 21918);
    CHECK(!strcmp(f.v[4].subject, "V\xc3\xa4stra G\xc3\xb6taland County"));
    for (uint32_t i = 0; i < f.n; i++) CHECK(f.v[i].index == i);
    xt_facts_free(&f);
    CHECK(f.v == NULL && f.n == 0);
}

static void counterfact_jsonl_should_match_the_json(void)
{
    xt_facts a, b;
    xt_error err = {0};
    CHECK(xt_facts_load(FACTS_DIR "/counterfact_small.json", &a, &err) == XT_OK);
    CHECK_MSG(xt_facts_load(FACTS_DIR "/counterfact_small.jsonl", &b, &err) == XT_OK, "%s",
              err.msg);
    CHECK(!strcmp(b.format, "counterfact-jsonl"));
    CHECK(a.n == b.n && b.n == 5 && b.n_skipped == 0);
    for (uint32_t i = 0; i < a.n && i < b.n; i++) {
        CHECK(a.v[i].case_id == b.v[i].case_id && a.v[i].index == b.v[i].index);
        CHECK(!strcmp(a.v[i].prompt_template, b.v[i].prompt_template));
        CHECK(!strcmp(a.v[i].subject, b.v[i].subject));
        CHECK(!strcmp(a.v[i].target_true, b.v[i].target_true));
        CHECK(!strcmp(a.v[i].target_foil, b.v[i].target_foil));
        CHECK(!strcmp(a.v[i].relation_id, b.v[i].relation_id));
    }
    xt_facts_free(&a);
    xt_facts_free(&b);
}

static void known_should_load_without_foils(void)
{
    xt_facts f;
    xt_error err = {0};
    CHECK_MSG(xt_facts_load(FACTS_DIR "/known_sample.json", &f, &err) == XT_OK, "%s", err.msg);
    CHECK(!strcmp(f.format, "known"));
    CHECK(f.n == 8 && f.n_skipped == 0);
    for (uint32_t i = 0; i < f.n; i++) CHECK(f.v[i].target_foil == NULL);
    const xt_fact *x = &f.v[0];
    CHECK(x->case_id == 0 && !strcmp(x->subject, "Vinson Massif"));
    CHECK(!strcmp(x->target_true, "Antarctica") && !strcmp(x->relation_id, "P30"));
    /* the template comes from "prompt" (with its last word), not from "template" */
    CHECK(!strcmp(x->prompt_template, "{} is located in the continent of"));
    CHECK(!strcmp(find_case(&f, 6)->prompt_template, "The {} is located in"));
    CHECK(!strcmp(find_case(&f, 4)->prompt_template, "{} was created by"));
    xt_facts_free(&f);
}

static void foils_should_come_from_the_next_record_of_the_relation(void)
{
    xt_facts f;
    xt_error err = {0};
    CHECK(xt_facts_load(FACTS_DIR "/known_sample.json", &f, &err) == XT_OK);
    CHECK_MSG(xt_facts_assign_foils(&f, &err) == XT_OK, "%s", err.msg);
    CHECK(f.n == 5 && f.n_skipped == 3 && f.n_records == 8);
    const xt_fact *x;
    /* P30: Antarctica <-> Europe; P127: Apple, Amazon, Apple in file order */
    CHECK((x = find_case(&f, 0)) && !strcmp(x->target_foil, "Europe"));
    CHECK((x = find_case(&f, 3)) && !strcmp(x->target_foil, "Antarctica"));
    CHECK((x = find_case(&f, 1)) && !strcmp(x->target_foil, "Amazon"));
    CHECK((x = find_case(&f, 2)) && !strcmp(x->target_foil, "Apple"));
    CHECK((x = find_case(&f, 5)) && !strcmp(x->target_foil, "Amazon")); /* wraps past 1 (Apple) */
    /* P176 has one record, P131 two with the same attribute: skipped, in file order */
    CHECK(f.skipped[0].index == 4 && f.skipped[1].index == 6 && f.skipped[2].index == 7);
    CHECK_MSG(has(f.skipped[0].reason, "record 4: target_foil") &&
                  has(f.skipped[0].reason, "P176"),
              "%s", f.skipped[0].reason);
    CHECK(has(f.skipped[2].reason, "P131"));
    /* the survivors stay in file order */
    for (uint32_t i = 1; i < f.n; i++) CHECK(f.v[i - 1].index < f.v[i].index);
    /* a second call changes nothing */
    CHECK(xt_facts_assign_foils(&f, &err) == XT_OK && f.n == 5 && f.n_skipped == 3);
    xt_facts_free(&f);
}

static void foils_should_leave_counterfact_records_alone(void)
{
    xt_facts f;
    xt_error err = {0};
    CHECK(xt_facts_load(FACTS_DIR "/counterfact_small.json", &f, &err) == XT_OK);
    CHECK(xt_facts_assign_foils(&f, &err) == XT_OK);
    CHECK(f.n == 5 && f.n_skipped == 0 && !strcmp(f.v[0].target_foil, "English"));
    xt_facts_free(&f);
}

static void foils_should_fail_when_no_record_gets_one(void)
{
    xt_facts f;
    xt_error err = {0};
    CHECK(parse("[" GOOD_KNOWN(1) "," GOOD_KNOWN(2) "]", &f, &err) == XT_OK);
    CHECK(xt_facts_assign_foils(&f, &err) == XT_ERR_FORMAT);
    CHECK_MSG(has(err.msg, "inline.json") && has(err.msg, "foil"), "%s", err.msg);
    CHECK(f.n == 0 && f.n_skipped == 2);
    xt_facts_free(&f);
}

/* ---- malformed records ----------------------------------------------------------------------- */

/* Parses [GOOD, bad] and expects bad (record 1) skipped with a reason containing `want`. */
static void expect_skip(const char *good, const char *bad, const char *want)
{
    char text[2048];
    snprintf(text, sizeof text, "[%s,\n%s]", good, bad);
    xt_facts f;
    xt_error err = {0};
    xt_status s = parse(text, &f, &err);
    CHECK_MSG(s == XT_OK, "%s: %s", bad, err.msg);
    if (s) return;
    CHECK_MSG(f.n == 1 && f.n_skipped == 1, "%s: n %u skipped %u", bad, f.n, f.n_skipped);
    if (f.n_skipped == 1) {
        CHECK(f.skipped[0].index == 1);
        char full[256];
        snprintf(full, sizeof full, "record 1: %s", want);
        CHECK_MSG(has(f.skipped[0].reason, full), "got \"%s\", want \"%s\"", f.skipped[0].reason,
                  full);
    }
    xt_facts_free(&f);
}

#define RW(inner) "{\"case_id\": 9, \"requested_rewrite\": {" inner "}}"
#define RW_OK_TARGETS "\"target_new\": {\"str\": \"B\"}, \"target_true\": {\"str\": \"A\"}"

static void counterfact_record_errors_should_name_index_and_field(void)
{
    const char *g = GOOD_CF(0);
    expect_skip(g, "{\"requested_rewrite\": {}}", "case_id: missing");
    expect_skip(g, RW("") "", "requested_rewrite.prompt: missing");
    expect_skip(g, "{\"case_id\": \"9\"}", "case_id: expected an integer, got string");
    expect_skip(g, "{\"case_id\": 1.5}", "case_id: expected an integer, got 1.5");
    expect_skip(g, "{\"case_id\": -1}", "case_id: -1 is outside 0..2147483647");
    expect_skip(g, "{\"case_id\": 2147483648}", "case_id: 2147483648 is outside 0..2147483647");
    expect_skip(g, "{\"case_id\": 1e400}", "case_id: expected an integer");
    expect_skip(g, "{\"case_id\": 9}", "requested_rewrite: missing");
    expect_skip(g, "{\"case_id\": 9, \"requested_rewrite\": [1]}",
                "requested_rewrite: expected an object, got array");
    expect_skip(g, "{\"case_id\": 9, \"pararel_idx\": \"x\", \"requested_rewrite\": {}}",
                "pararel_idx: expected an integer, got string");
    expect_skip(g, RW("\"prompt\": \"no placeholder\""),
                "requested_rewrite.prompt: has 0 \"{}\" (expected exactly one)");
    expect_skip(g, RW("\"prompt\": \"{} and {}\""), "requested_rewrite.prompt: has 2 \"{}\"");
    expect_skip(g, RW("\"prompt\": 7"), "requested_rewrite.prompt: expected a string, got number");
    expect_skip(g, RW("\"prompt\": \"{} is\", \"subject\": \"S\", " RW_OK_TARGETS),
                "requested_rewrite.relation_id: missing");
    expect_skip(g, RW("\"prompt\": \"{} is\", \"relation_id\": \"P1\", \"subject\": \"\", "
                      RW_OK_TARGETS),
                "requested_rewrite.subject: empty");
    expect_skip(g, RW("\"prompt\": \"{} is\", \"relation_id\": \"P1\", \"subject\": null, "
                      RW_OK_TARGETS),
                "requested_rewrite.subject: expected a string, got null");
    expect_skip(g, RW("\"prompt\": \"{} is\", \"relation_id\": \"P1\", \"subject\": \"S\", "
                      "\"target_new\": \"B\", \"target_true\": {\"str\": \"A\"}"),
                "requested_rewrite.target_new: expected an object, got string");
    expect_skip(g, RW("\"prompt\": \"{} is\", \"relation_id\": \"P1\", \"subject\": \"S\", "
                      "\"target_new\": {\"str\": \"B\"}, \"target_true\": {\"id\": \"Q1\"}"),
                "requested_rewrite.target_true.str: missing");
    expect_skip(g, RW("\"prompt\": \"{} is\", \"relation_id\": \"P1\", \"subject\": \"S\", "
                      "\"target_new\": {\"str\": \"\"}, \"target_true\": {\"str\": \"A\"}"),
                "requested_rewrite.target_new.str: empty");
    expect_skip(g, RW("\"prompt\": \"{} is\", \"relation_id\": \"P1\", \"subject\": \"S\", "
                      "\"target_new\": {\"str\": \"B\", \"id\": 5}, \"target_true\": {\"str\": "
                      "\"A\"}"),
                "requested_rewrite.target_new.id: expected a string, got number");
    expect_skip(g, RW("\"prompt\": \"{} is\", \"relation_id\": \"P1\", \"subject\": \"S\", "
                      "\"target_new\": {\"str\": \"B\"}, \"target_true\": {\"str\": true}"),
                "requested_rewrite.target_true.str: expected a string, got bool");
    expect_skip(g, "{\"case_id\": 9, \"requested_rewrite\": {\"prompt\": \"{} is\", "
                   "\"relation_id\": \"P1\", \"subject\": \"S\", " RW_OK_TARGETS "}, "
                   "\"neighborhood_prompts\": [\"a\", 2]}",
                "neighborhood_prompts[1]: expected a string, got number");
    expect_skip(g, "{\"case_id\": 9, \"requested_rewrite\": {\"prompt\": \"{} is\", "
                   "\"relation_id\": \"P1\", \"subject\": \"S\", " RW_OK_TARGETS "}, "
                   "\"generation_prompts\": \"a\"}",
                "generation_prompts: expected an array of strings, got string");
    expect_skip(g, "42", "expected an object, got number");
    expect_skip(g, "[" GOOD_CF(5) "]", "expected an object, got array");
}

static void known_record_errors_should_name_index_and_field(void)
{
    const char *g = GOOD_KNOWN(0);
#define K(body) "{\"known_id\": 3, " body "}"
#define K_OK "\"subject\": \"S\", \"attribute\": \"A\", \"relation_id\": \"P1\""
    expect_skip(g, "{\"subject\": \"S\"}", "known_id: missing");
    expect_skip(g, K("\"attribute\": \"A\""), "subject: missing");
    expect_skip(g, K("\"subject\": \"S\", \"attribute\": \"\""), "attribute: empty");
    expect_skip(g, K("\"subject\": \"S\", \"attribute\": \"A\", \"template\": 1"),
                "template: expected a string, got number");
    expect_skip(g, K("\"subject\": \"S\", \"attribute\": \"A\", \"prediction\": []"),
                "prediction: expected a string, got array");
    expect_skip(g, K("\"subject\": \"S\", \"attribute\": \"A\", \"prompt\": \"S is\""),
                "relation_id: missing");
    expect_skip(g, K(K_OK), "prompt: missing");
    expect_skip(g, K(K_OK ", \"prompt\": \"nobody is\""),
                "prompt: does not contain the subject");
    expect_skip(g, K(K_OK ", \"prompt\": \"S is {}\""), "prompt: has 2 \"{}\"");
    expect_skip(g, "{\"known_id\": -3}", "known_id: -3 is outside");
#undef K
#undef K_OK
}

static void duplicate_case_ids_should_keep_the_first(void)
{
    xt_facts f;
    xt_error err = {0};
    CHECK(parse("[" GOOD_CF(4) "," GOOD_CF(7) "," GOOD_CF(4) "," GOOD_CF(4) "," GOOD_CF(7.0) "]",
                &f, &err) == XT_OK);
    CHECK(f.n == 2 && f.v[0].index == 0 && f.v[1].index == 1);
    CHECK(f.n_skipped == 3);
    CHECK(f.skipped[0].index == 2 && f.skipped[1].index == 3 && f.skipped[2].index == 4);
    CHECK_MSG(has(f.skipped[0].reason, "record 2: case_id: 4 repeats record 0"), "%s",
              f.skipped[0].reason);
    CHECK_MSG(has(f.skipped[2].reason, "record 4: case_id: 7 repeats record 1"), "%s",
              f.skipped[2].reason);
    xt_facts_free(&f);
}

static void case_id_bounds_should_be_inclusive(void)
{
    xt_facts f;
    xt_error err = {0};
    CHECK(parse("[" GOOD_CF(0) "," GOOD_CF(2147483647) "," GOOD_CF(3.0) "]", &f, &err) == XT_OK);
    CHECK(f.n == 3 && f.v[1].case_id == 2147483647 && f.v[2].case_id == 3);
    xt_facts_free(&f);
}

static void jsonl_skips_should_give_the_line(void)
{
    const char *text = GOOD_CF(1) "\n\n{\"case_id\": 2}\n" GOOD_CF(3) "\n";
    xt_facts f;
    xt_error err = {0};
    CHECK(xt_facts_parse(text, strlen(text), "cases.jsonl", &f, &err) == XT_OK);
    CHECK(!strcmp(f.format, "counterfact-jsonl"));
    CHECK(f.n == 2 && f.n_skipped == 1 && f.v[1].index == 2);
    CHECK_MSG(has(f.skipped[0].reason, "record 1 (line 3): requested_rewrite: missing"), "%s",
              f.skipped[0].reason);
    xt_facts_free(&f);
}

static void known_jsonl_should_load(void)
{
    const char *text = GOOD_KNOWN(1) "\r\n" GOOD_KNOWN(2);
    xt_facts f;
    xt_error err = {0};
    CHECK(xt_facts_parse(text, strlen(text), "k.jsonl", &f, &err) == XT_OK);
    CHECK(!strcmp(f.format, "known-jsonl") && f.n == 2);
    xt_facts_free(&f);
}

/* ---- whole-file failures --------------------------------------------------------------------- */

/* Parses text as `name` and expects status s with every `parts` string in the message. */
static void expect_fail(const char *text, size_t len, xt_status s, const char *part1,
                        const char *part2)
{
    xt_facts f;
    xt_error err = {0};
    xt_status got = xt_facts_parse(text, len, "bad/facts.json", &f, &err);
    CHECK_MSG(got == s, "%.40s: status %d, want %d (%s)", text, got, s, err.msg);
    CHECK_MSG(has(err.msg, "bad/facts.json"), "%s", err.msg);
    CHECK_MSG(has(err.msg, part1), "\"%s\" lacks \"%s\"", err.msg, part1);
    if (part2) CHECK_MSG(has(err.msg, part2), "\"%s\" lacks \"%s\"", err.msg, part2);
    CHECK(f.v == NULL && f.n == 0 && f.skipped == NULL && f.name == NULL);
    xt_facts_free(&f);
}

#define FAIL(text, s, a, b) expect_fail(text, strlen(text), s, a, b)

static void file_errors_should_name_the_file(void)
{
    FAIL("", XT_ERR_FORMAT, "empty", NULL);
    FAIL(" \n\t ", XT_ERR_FORMAT, "empty", NULL);
    FAIL("this is not json", XT_ERR_FORMAT, "line 1, column 1", "not valid JSON");
    FAIL("[\n" GOOD_CF(1) ",\n{\"case_id\": 2, \"requested", XT_ERR_FORMAT, "line 3",
         "not valid JSON");
    FAIL("[]", XT_ERR_FORMAT, "no records", NULL);
    FAIL("[1, 2, \"x\"]", XT_ERR_FORMAT, "no record has", NULL);
    FAIL("[{\"foo\": 1}]", XT_ERR_FORMAT, "no record has", NULL);
    FAIL("42", XT_ERR_FORMAT, "top level is a number", NULL);
    FAIL("\"facts\"", XT_ERR_FORMAT, "top level is a string", NULL);
    FAIL("{\n  \"case_id\": 0\n}\n", XT_ERR_FORMAT, "one object over several lines", NULL);
    FAIL("[" GOOD_CF(1) "] trailing", XT_ERR_FORMAT, "unexpected text after", NULL);
    FAIL("[{\"case_id\": 1}, {\"case_id\": -2}]", XT_ERR_FORMAT, "none of its 2 records is valid",
         "record 0: requested_rewrite: missing");
    /* JSONL: a broken line fails the file, with its line number */
    FAIL(GOOD_CF(1) "\n\n{\"case_id\": 2, \n" GOOD_CF(3), XT_ERR_FORMAT, "line 3",
         "not valid JSON");
    FAIL(GOOD_CF(1) "\n" GOOD_CF(2) " " GOOD_CF(3) "\n", XT_ERR_FORMAT, "line 2",
         "unexpected text after the record");
    /* a NUL byte inside the text */
    const char nul[] = "[" GOOD_CF(1) "\0]";
    expect_fail(nul, sizeof nul - 1, XT_ERR_FORMAT, "NUL byte", NULL);
}

static void truncated_files_should_fail_cleanly(void)
{
    FILE *fp = fopen(FACTS_DIR "/counterfact_small.json", "rb");
    CHECK(fp != NULL);
    if (!fp) return;
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    CHECK(n > 100 && n < sizeof buf);
    /* Every proper prefix that ends inside the array is an error, never a crash. */
    uint32_t failed = 0;
    for (size_t len = 0; len < n - 2; len += 7) {
        xt_facts f;
        xt_error err = {0};
        xt_status s = xt_facts_parse(buf, len, "cut.json", &f, &err);
        failed += s != XT_OK;
        CHECK(s != XT_OK || f.n > 0);
        xt_facts_free(&f);
    }
    CHECK(failed == (uint32_t)((n - 3) / 7 + 1));
}

static void missing_files_should_fail_with_io(void)
{
    xt_facts f;
    xt_error err = {0};
    CHECK(xt_facts_load(FACTS_DIR "/no_such_file.json", &f, &err) == XT_ERR_IO);
    CHECK_MSG(has(err.msg, "no_such_file.json"), "%s", err.msg);
    CHECK(xt_facts_load(FACTS_DIR, &f, &err) == XT_ERR_IO);
    CHECK_MSG(has(err.msg, FACTS_DIR), "%s", err.msg);
    xt_facts_free(&f);
}

static void byte_order_mark_should_be_skipped(void)
{
    const char *text = "\xEF\xBB\xBF[" GOOD_CF(1) "]";
    xt_facts f;
    xt_error err = {0};
    CHECK_MSG(xt_facts_parse(text, strlen(text), "bom.json", &f, &err) == XT_OK, "%s", err.msg);
    CHECK(f.n == 1);
    xt_facts_free(&f);
}

/* ---- prompts --------------------------------------------------------------------------------- */

static void prompt_should_put_the_subject_at_the_placeholder(void)
{
    xt_fact x = {.prompt_template = "The mother tongue of {} is", .subject = "Danielle Darrieux"};
    size_t at = 99;
    char *p = xt_fact_prompt(&x, &at);
    CHECK(p && !strcmp(p, "The mother tongue of Danielle Darrieux is"));
    CHECK(at == 21 && !strncmp(p + at, x.subject, strlen(x.subject)));
    free(p);
    x.prompt_template = "{} is located in";
    x.subject = "Vinson Massif";
    p = xt_fact_prompt(&x, &at);
    CHECK(p && !strcmp(p, "Vinson Massif is located in") && at == 0);
    free(p);
    x.prompt_template = "Capital of {}";
    x.subject = "V\xc3\xa4stra";
    p = xt_fact_prompt(&x, NULL);
    CHECK(p && !strcmp(p, "Capital of V\xc3\xa4stra"));
    free(p);
    x.prompt_template = "{}";
    p = xt_fact_prompt(&x, &at);
    CHECK(p && !strcmp(p, x.subject) && at == 0);
    free(p);
    x.prompt_template = "no hole";
    CHECK(xt_fact_prompt(&x, &at) == NULL);
}

static void known_prompt_should_round_trip(void)
{
    /* For known records the template is cut from "prompt": putting the subject back gives the
     * prompt itself, with the subject at its first occurrence. */
    const char *text = "[{\"known_id\": 0, \"subject\": \"Paris\", \"attribute\": \"France\", "
                       "\"prompt\": \"Paris Hilton was born in Paris, the capital of\", "
                       "\"relation_id\": \"P1\"}]";
    xt_facts f;
    xt_error err = {0};
    CHECK(parse(text, &f, &err) == XT_OK && f.n == 1);
    if (f.n != 1) return;
    CHECK(!strcmp(f.v[0].prompt_template, "{} Hilton was born in Paris, the capital of"));
    size_t at;
    char *p = xt_fact_prompt(&f.v[0], &at);
    CHECK(p && !strcmp(p, "Paris Hilton was born in Paris, the capital of") && at == 0);
    free(p);
    xt_facts_free(&f);
}

int main(void)
{
    RUN(counterfact_json_should_load_every_record);
    RUN(counterfact_jsonl_should_match_the_json);
    RUN(known_should_load_without_foils);
    RUN(foils_should_come_from_the_next_record_of_the_relation);
    RUN(foils_should_leave_counterfact_records_alone);
    RUN(foils_should_fail_when_no_record_gets_one);
    RUN(counterfact_record_errors_should_name_index_and_field);
    RUN(known_record_errors_should_name_index_and_field);
    RUN(duplicate_case_ids_should_keep_the_first);
    RUN(case_id_bounds_should_be_inclusive);
    RUN(jsonl_skips_should_give_the_line);
    RUN(known_jsonl_should_load);
    RUN(file_errors_should_name_the_file);
    RUN(truncated_files_should_fail_cleanly);
    RUN(missing_files_should_fail_with_io);
    RUN(byte_order_mark_should_be_skipped);
    RUN(prompt_should_put_the_subject_at_the_placeholder);
    RUN(known_prompt_should_round_trip);
    return xt_test_finish();
}
