/* The HTML report (src/report.h) on a real trace's results (tests/fixtures/report: summary.json
 * and cases.jsonl of `trace qwen3moe-f32.gguf --facts facts_small.json --filter none --seed 1
 * --rome 3 --rome-window 2`): every figure and table is there with the file's numbers, text from
 * the files is escaped, optional sections come and go with their fields, nothing refers outside
 * the page, and malformed input fails with the file and the field named.
 *
 * The numbers expected in the page are read from the fixture here and formatted with printf; the
 * rendering in a browser is checked by tests/report_chromium.sh.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cJSON.h"
#include "report.h"
#include "xt_test.h"

#define FIXTURE XT_FIXTURE_DIR "/report"

static cJSON *summary_fixture, *cases_fixture;

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0, len = strlen(needle);
    for (const char *p = hay; (p = strstr(p, needle)); p += len) n++;
    return n;
}

/* The page for (summary, cases), or NULL with the error in *err. */
static char *page(const cJSON *summary, const cJSON *cases, xt_error *err)
{
    char *html = NULL;
    xt_error_clear(err);
    xt_report_input in = {.summary = summary, .cases = cases};
    xt_status s = xt_report_html(&in, &html, err);
    if (s) CHECK(html == NULL);
    return s ? NULL : html;
}

/* The item at a dotted path ("layer_sweep.discovery.1.mean"; numbers index arrays). */
static cJSON *at(cJSON *j, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *t = strtok(buf, "."); t && j; t = strtok(NULL, "."))
        j = cJSON_IsArray(j) ? cJSON_GetArrayItem(j, atoi(t)) : cJSON_GetObjectItem(j, t);
    return j;
}

static double num(cJSON *j, const char *path)
{
    cJSON *v = at(j, path);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static const char *f3(char *buf, double v)
{
    snprintf(buf, 32, "%.3f", v);
    return buf;
}

/* No NaN or infinity printed as a number anywhere ("dominant-baseline" holds "nan"). */
static void check_no_nan(const char *html)
{
    CHECK_MSG(count(html, "nan") == count(html, "dominant-baseline"), "a NaN was printed");
    CHECK(!strstr(html, ">inf") && !strstr(html, "-inf") && !strstr(html, " inf"));
}

/* Nothing that a browser would fetch: no scripts, links, sources, CSS urls or imports. */
static void check_self_contained(const char *html)
{
    static const char *const bad[] = {"<script", "<link", "<img", "<iframe", "<object", " src=",
                                      "href=", "url(", "@import", "://"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_MSG(!strstr(html, bad[i]), "the page holds '%s'", bad[i]);
    CHECK(strstr(html, "Content-Security-Policy\" content=\"default-src 'none'"));
}

static void report_should_draw_every_figure_for_the_fixture(void)
{
    xt_error err = {0};
    char *html = page(summary_fixture, cases_fixture, &err);
    CHECK_MSG(html, "%s", err.msg);
    if (!html) return;
    CHECK(!strncmp(html, "<!DOCTYPE html>", 15));
    CHECK(count(html, "<svg ") == 6);
    static const char *const ids[] = {
        "<svg id=\"layer-sweep\"",      "<svg id=\"expert-bars\"",
        "<svg id=\"expert-ranking\"",   "<svg id=\"heatmap-residual\"",
        "<svg id=\"heatmap-attention\"", "<svg id=\"heatmap-moe\"",
        "id=\"selected-layer\"",        "<table id=\"sweep-table\"",
        "<table id=\"expert-table\"",   "<table id=\"coalition-table\"",
        "<table id=\"cases-table\"",    "<table id=\"settings-table\"",
        "<table id=\"environment-table\"", "<table id=\"counts-table\""};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        CHECK_MSG(count(html, ids[i]) == 1, "%s: %zu times", ids[i], count(html, ids[i]));
    check_self_contained(html);
    check_no_nan(html);

    /* the layer sweep: a point per layer and split, its mean and CI in the table */
    uint32_t L = (uint32_t)cJSON_GetArraySize(at(summary_fixture, "layer_sweep.discovery"));
    CHECK(L == 2);
    CHECK(count(html, "<circle class=\"pt\"") == (size_t)2 * L);
    static const char *const splits[] = {"discovery", "validation"};
    for (int s = 0; s < 2; s++)
        for (uint32_t l = 0; l < L; l++) {
            char path[96], m[32], lo[32], hi[32], want[256];
            snprintf(path, sizeof path, "layer_sweep.%s.%u", splits[s], l);
            cJSON *e = at(summary_fixture, path);
            snprintf(want, sizeof want,
                     "<td class=\"num\">%s</td><td class=\"num ci\">[%s, %s]</td>",
                     f3(m, num(e, "mean")), f3(lo, num(e, "lo")), f3(hi, num(e, "hi")));
            CHECK_MSG(strstr(html, want), "%s: %s", path, want);
            snprintf(want, sizeof want, "<title>%s, layer %u: %s [%s, %s]", splits[s], l, m, lo,
                     hi);
            CHECK_MSG(strstr(html, want), "%s: %s", path, want);
        }
    /* l* marked on the figure and in the table */
    char want[256], m[32], lo[32], hi[32];
    snprintf(want, sizeof want, ">l* = %.0f (selected on discovery)</text>",
             num(summary_fixture, "layer.selected"));
    CHECK_MSG(strstr(html, want), "%s", want);
    CHECK(count(html, "<tr class=\"sel\"><th>0  ◀ l*</th>") == 1);

    /* e* against the controls, and the coalitions, on validation */
    const char *name = cJSON_GetStringValue(at(summary_fixture, "expert.selected"));
    CHECK(name && !strcmp(name, "L0E004"));
    static const char *const rows[][2] = {
        {"expert.validation.rescue", "expert L0E004 rescue"},
        {"expert.validation.controls.active_random", "control: active-random"},
        {"expert.validation.controls.gate_weight_matched", "control: gate-weight-matched"},
        {"expert.validation.controls.equal_norm", "control: equal-norm"},
        {"expert.validation.coalitions.top_k", "D_top: clean top-k coalition"},
        {"expert.validation.coalitions.union", "D_union: union coalition"}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        cJSON *e = at(summary_fixture, rows[i][0]);
        snprintf(want, sizeof want, "<td class=\"num\">%s</td><td class=\"num ci\">[%s, %s]</td>",
                 f3(m, num(e, "mean")), f3(lo, num(e, "lo")), f3(hi, num(e, "hi")));
        const char *row = strstr(html, rows[i][1]);
        CHECK_MSG(row && strstr(row, want), "%s: %s", rows[i][0], want);
        snprintf(want, sizeof want, "%s, validation: %s [%s, %s]", rows[i][1], m, lo, hi);
        if (i >= 1 && i <= 3) /* the bars' hover text (the controls' labels read "control: ...") */
            CHECK_MSG(strstr(html, want), "%s", want);
    }
    snprintf(want, sizeof want, "<td class=\"num\">%.3f</td>",
             num(summary_fixture, "expert.validation.coalitions.top_k.p"));
    CHECK_MSG(strstr(strstr(html, "coalition-table"), want), "p of D_top: %s", want);
    /* the discovery ranking: one bar row per ranked expert, e* outlined */
    CHECK(count(html, "<g class=\"rank-row") ==
          (size_t)cJSON_GetArraySize(at(summary_fixture, "expert.ranking")));
    CHECK(strstr(html, "<g class=\"rank-row rank-selected\"><text class=\"tick strong\"") &&
          strstr(html, ">E004</text>"));

    /* the heatmaps: 6 token groups × L cells per kind, values in the hover text */
    CHECK(count(html, "<rect class=\"cell\"") == (size_t)3 * 6 * L);
    snprintf(want, sizeof want, "last token, layer 1: %.3f</title>",
             num(summary_fixture, "rome.attention.5.1"));
    CHECK_MSG(strstr(strstr(html, "heatmap-attention"), want), "%s", want);

    /* every setting and environment field, the cases, the union = layer patch identity */
    cJSON *e;
    cJSON_ArrayForEach(e, at(summary_fixture, "settings"))
    {
        snprintf(want, sizeof want, "<tr><th><code>%s</code></th>", e->string);
        CHECK_MSG(strstr(strstr(html, "settings-table"), want), "setting %s", e->string);
    }
    snprintf(want, sizeof want, "<td>%s</td>",
             cJSON_GetStringValue(at(summary_fixture, "environment.device")));
    CHECK_MSG(strstr(strstr(html, "environment-table"), want), "%s", want);
    int n_cases = cJSON_GetArraySize(cases_fixture);
    CHECK(n_cases == 11);
    CHECK(count(html, "<tr class=\"disc\">") + count(html, "<tr class=\"val\">") ==
          (size_t)n_cases);
    snprintf(want, sizeof want, "exactly in %d of %d cases", n_cases, n_cases);
    CHECK_MSG(strstr(html, want), "%s", want);
    CHECK(strstr(html, "<mark>Autonomous University of Madrid</mark>"));
    free(html);
}

static void report_should_escape_text_from_the_files(void)
{
    cJSON *s = cJSON_Duplicate(summary_fixture, true), *c = cJSON_Duplicate(cases_fixture, true);
    cJSON_ReplaceItemInObject(at(s, "settings"), "model",
                              cJSON_CreateString("<script>alert(\"x&y\")</script>"));
    cJSON_AddStringToObject(at(s, "settings"), "<b>key</b>", "it's");
    cJSON_ReplaceItemInObject(at(s, "environment"), "device",
                              cJSON_CreateString("GPU \x01 \xff\xfe <i>"));
    cJSON_ReplaceItemInObject(at(s, "rejected.0"), "reason",
                              cJSON_CreateString("</td></tr></table><h1>x</h1>"));
    cJSON_ReplaceItemInObject(cJSON_GetArrayItem(c, 0), "subject",
                              cJSON_CreateString("<b>'Tom' & \"Jerry\"</b>"));
    cJSON_ReplaceItemInObject(cJSON_GetArrayItem(c, 0), "prompt",
                              cJSON_CreateString("Of <b>'Tom' & \"Jerry\"</b>, the"));
    xt_error err = {0};
    char *html = page(s, c, &err);
    CHECK_MSG(html, "%s", err.msg);
    if (html) {
        CHECK(!strstr(html, "<script") && !strstr(html, "<b>") && !strstr(html, "<i>") &&
              !strstr(html, "<h1>x"));
        CHECK(strstr(html, "&lt;script&gt;alert(&quot;x&amp;y&quot;)&lt;/script&gt;"));
        CHECK(strstr(html, "<code>&lt;b&gt;key&lt;/b&gt;</code></th><td>it&#39;s</td>"));
        CHECK(strstr(html, "GPU &#xFFFD; &#xFFFD;&#xFFFD; &lt;i&gt;"));
        CHECK(strstr(html, "&lt;/td&gt;&lt;/tr&gt;&lt;/table&gt;&lt;h1&gt;x&lt;/h1&gt;"));
        CHECK(strstr(html, "Of <mark>&lt;b&gt;&#39;Tom&#39; &amp; &quot;Jerry&quot;&lt;/b&gt;"
                           "</mark>, the"));
        check_self_contained(html);
    }
    free(html);
    cJSON_Delete(s);
    cJSON_Delete(c);
}

/* One change to the fixture: the value at path replaced by `json` (deleted when NULL). */
typedef struct mutation {
    const char *path, *json, *message;
} mutation;

static void apply(cJSON *root, const char *path, const char *json)
{
    char parent[256];
    snprintf(parent, sizeof parent, "%s", path);
    char *dot = strrchr(parent, '.');
    const char *key = dot ? dot + 1 : parent;
    cJSON *p = root;
    if (dot) {
        *dot = 0;
        p = at(root, parent);
    }
    if (!p) return;
    cJSON *v = json ? cJSON_Parse(json) : NULL;
    if (cJSON_IsArray(p)) {
        if (v) cJSON_ReplaceItemInArray(p, atoi(key), v);
        else cJSON_DeleteItemFromArray(p, atoi(key));
    } else {
        if (v && cJSON_HasObjectItem(p, key)) cJSON_ReplaceItemInObject(p, key, v);
        else if (v) cJSON_AddItemToObject(p, key, v); /* a field the fixture lacks */
        else cJSON_DeleteItemFromObject(p, key);
    }
}

static void report_should_reject_malformed_summaries_naming_the_field(void)
{
    static const mutation cases[] = {
        {"layer_sweep", NULL, "summary.json: field 'layer_sweep' is missing"},
        {"settings", "3", "summary.json: field 'settings' is a number, expected an object"},
        {"counts", NULL, "field 'counts' is missing"},
        {"format_version", "2", "field 'format_version' is 2"},
        {"layer_sweep.discovery.1.mean", "\"0.4\"",
         "field 'layer_sweep.discovery[1].mean' is a string, expected a number or null"},
        {"layer_sweep.validation.1.hi", NULL, "field 'layer_sweep.validation[1].hi' is missing"},
        {"layer_sweep.validation.1", NULL, "field 'layer_sweep.validation' has 1 entries"},
        {"layer_sweep.discovery.0", "7", "field 'layer_sweep.discovery[0]' is a number"},
        {"layer_sweep.discovery.1.layer", "5", "field 'layer_sweep.discovery[1].layer' is 5"},
        {"settings.n_layer", "3", "settings.n_layer is 3"},
        {"layer.selected", "7", "field 'layer.selected' is 7"},
        {"layer.selected", "null", "field 'layer.selected' is null, expected a number"},
        {"layer", "[]", "field 'layer' is an array"},
        {"expert.selected", "4", "field 'expert.selected' is a number, expected a string"},
        {"expert.validation.controls.equal_norm.hi", "true",
         "field 'expert.validation.controls.equal_norm.hi' is a boolean"},
        {"expert.validation.rescue.lo", NULL, "field 'expert.validation.rescue.lo' is missing"},
        {"expert.discovery.coalitions", NULL, "field 'expert.discovery.coalitions' is missing"},
        {"expert.discovery.rank.first", "1", "field 'expert.discovery.rank.first' is a number"},
        {"expert.ranking.2.expert", "-1", "field 'expert.ranking[2].expert' is -1"},
        {"expert.ranking.3", "\"x\"", "field 'expert.ranking[3]' is a string"},
        {"rome.groups.0", "5", "field 'rome.groups[0]' is a number, expected a string"},
        {"rome.groups", "[]", "field 'rome.groups' has 0 entries"},
        {"rome.metric", "\"logit\"", "field 'rome.metric' is 'logit', expected 'delta' or 'p_true'"},
        {"rome.moe.2", "[1]", "field 'rome.moe[2]' has 1 entries, expected 2"},
        {"rome.residual.4.1", "{}", "field 'rome.residual[4][1]' is an object"},
        {"rome.attention", NULL, "field 'rome.attention' is missing"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *s = cJSON_Duplicate(summary_fixture, true);
        apply(s, cases[i].path, cases[i].json);
        xt_error err = {0};
        char *html = page(s, cases_fixture, &err);
        CHECK_MSG(!html && err.status == XT_ERR_FORMAT && xt_status_exit_code(err.status) == 1,
                  "%s accepted", cases[i].path);
        CHECK_MSG(strstr(err.msg, cases[i].message), "%s: message '%s', wanted '%s'",
                  cases[i].path, err.msg, cases[i].message);
        free(html);
        cJSON_Delete(s);
    }
    /* not an object at all; and a malformed case names cases.jsonl, the entry and the field */
    cJSON *arr = cJSON_CreateArray();
    xt_error err = {0};
    CHECK(!page(arr, NULL, &err) && strstr(err.msg, "summary.json: the summary is an array"));
    cJSON_Delete(arr);
    cJSON *c = cJSON_Duplicate(cases_fixture, true);
    cJSON_ReplaceItemInObject(cJSON_GetArrayItem(c, 1), "subject", cJSON_CreateNumber(5));
    CHECK(!page(summary_fixture, c, &err) && err.status == XT_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, "cases.jsonl entry 2: field 'subject' is a number"), "%s", err.msg);
    cJSON_ReplaceItemInObject(cJSON_GetArrayItem(c, 1), "subject", cJSON_CreateString("x"));
    cJSON_ReplaceItemInArray(cJSON_GetObjectItem(cJSON_GetArrayItem(c, 2), "experts"), 1,
                             cJSON_CreateString("x"));
    CHECK(!page(summary_fixture, c, &err));
    CHECK_MSG(strstr(err.msg, "cases.jsonl entry 3: field 'experts[1]' is a string"), "%s",
              err.msg);
    cJSON_Delete(c);
}

/* The heatmaps say which metric their values are: Δ (also when the field is absent, as in
 * runs before the field existed) or p(true). */
static void report_should_name_the_rome_metric(void)
{
    xt_error err = {0};
    char *html = page(summary_fixture, cases_fixture, &err);
    CHECK_MSG(html && strstr(html, "the value is Δ − Δ<sub>noised</sub>"), "%s", err.msg);
    free(html);
    cJSON *s = cJSON_Duplicate(summary_fixture, true);
    apply(s, "rome.metric", "\"p_true\"");
    html = page(s, cases_fixture, &err);
    CHECK_MSG(html && strstr(html, "the value is p(true) − p<sub>noised</sub>(true)") &&
                  !strstr(html, "the value is Δ"),
              "%s", err.msg);
    free(html);
    cJSON_Delete(s);
}

static void report_should_leave_out_what_the_summary_does_not_have(void)
{
    xt_error err = {0};
    cJSON *s = cJSON_Duplicate(summary_fixture, true);
    cJSON_DeleteItemFromObject(s, "rome");
    char *html = page(s, cases_fixture, &err);
    CHECK_MSG(html, "%s", err.msg);
    CHECK(html && count(html, "<svg ") == 3 && !strstr(html, "heatmap-"));
    free(html);
    /* a dense model: no expert pass, no coalitions; no cases.jsonl; no environment */
    cJSON_DeleteItemFromObject(s, "expert");
    cJSON_DeleteItemFromObject(s, "environment");
    html = page(s, NULL, &err);
    CHECK_MSG(html, "%s", err.msg);
    if (html) {
        CHECK(count(html, "<svg ") == 1 && strstr(html, "<svg id=\"layer-sweep\""));
        CHECK(!strstr(html, "coalition-table") && !strstr(html, "cases-table"));
        CHECK(strstr(html, "No expert pass") && strstr(html, "No cases.jsonl"));
        CHECK(strstr(html, "<p id=\"environment-table\">not recorded"));
    }
    free(html);
    cJSON_Delete(s);
    /* nulls (non-finite statistics) print as n/a and draw nothing */
    s = cJSON_Duplicate(summary_fixture, true);
    apply(s, "layer_sweep.validation.0.mean", "null");
    apply(s, "layer_sweep.validation.0.lo", "null");
    apply(s, "expert.discovery.rescue.hi", "null");
    apply(s, "rome.moe.0.0", "null");
    html = page(s, cases_fixture, &err);
    CHECK_MSG(html, "%s", err.msg);
    if (html) {
        check_no_nan(html);
        CHECK(count(html, "<circle class=\"pt\"") == 3);
        CHECK(strstr(html, "<td class=\"num\">n/a</td><td class=\"num ci\">[n/a, "));
        CHECK(strstr(html, "subject, first, layer 0: n/a</title>"));
    }
    free(html);
    cJSON_Delete(s);
}

/* 48 layers (Qwen3-30B-A3B): the fixture's two layers repeated. */
static void report_should_draw_many_layers(void)
{
    enum { L = 48 };
    cJSON *s = cJSON_Duplicate(summary_fixture, true);
    cJSON_ReplaceItemInObject(at(s, "settings"), "n_layer", cJSON_CreateNumber(L));
    static const char *const arrays[] = {"layer_sweep.discovery", "layer_sweep.validation"};
    for (int a = 0; a < 2; a++) {
        cJSON *arr = at(s, arrays[a]);
        for (int l = 2; l < L; l++) {
            cJSON *e = cJSON_Duplicate(cJSON_GetArrayItem(arr, l % 2), true);
            cJSON_ReplaceItemInObject(e, "layer", cJSON_CreateNumber(l));
            cJSON_AddItemToArray(arr, e);
        }
    }
    static const char *const kinds[] = {"residual", "attention", "moe"};
    for (int k = 0; k < 3; k++)
        for (int g = 0; g < 6; g++) {
            char path[64];
            snprintf(path, sizeof path, "rome.%s.%d", kinds[k], g);
            cJSON *row = at(s, path);
            for (int l = 2; l < L; l++)
                cJSON_AddItemToArray(row, cJSON_Duplicate(cJSON_GetArrayItem(row, l % 2), true));
        }
    cJSON_ReplaceItemInObject(at(s, "layer"), "selected", cJSON_CreateNumber(40));
    xt_error err = {0};
    char *html = page(s, NULL, &err);
    CHECK_MSG(html, "%s", err.msg);
    if (html) {
        CHECK(count(html, "<circle class=\"pt\"") == (size_t)2 * L);
        CHECK(count(html, "<rect class=\"cell\"") == (size_t)3 * 6 * L);
        CHECK(strstr(html, ">l* = 40 (selected on discovery)</text>"));
        CHECK(strstr(html, "<text class=\"tick sel-tick\""));
        CHECK(count(html, "<tr class=\"sel\"><th>40  ◀ l*</th>") == 1);
        check_no_nan(html);
    }
    free(html);
    cJSON_Delete(s);
}

static bool write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    bool ok = fputs(text, f) >= 0;
    return fclose(f) == 0 && ok;
}

static void report_files_should_be_read_and_written_with_their_names_in_errors(void)
{
    xt_error err = {0};
    cJSON *s, *c;
    CHECK(xt_report_load(XT_TMP_DIR "/no-such-results", &s, &c, &err) == XT_ERR_IO);
    CHECK_MSG(strstr(err.msg, "no-such-results/summary.json: no such file"), "%s", err.msg);
    CHECK(xt_status_exit_code(err.status) == 1);

    const char *dir = XT_TMP_DIR "/report-bad";
    mkdir(dir, 0777);
    CHECK(write_file(XT_TMP_DIR "/report-bad/summary.json", "{\n  \"settings\": {,\n}"));
    xt_error_clear(&err);
    CHECK(xt_report_load(dir, &s, &c, &err) == XT_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, "report-bad/summary.json: not valid JSON (line 2"), "%s", err.msg);

    char *text = cJSON_PrintUnformatted(summary_fixture);
    CHECK(text && write_file(XT_TMP_DIR "/report-bad/summary.json", text));
    free(text);
    CHECK(write_file(XT_TMP_DIR "/report-bad/cases.jsonl", "{\"case_id\": 1}\n{\"case_id\": \n"));
    xt_error_clear(&err);
    CHECK(xt_report_load(dir, &s, &c, &err) == XT_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, "report-bad/cases.jsonl: line 2: not valid JSON"), "%s", err.msg);
    CHECK(write_file(XT_TMP_DIR "/report-bad/cases.jsonl", "{\"case_id\": 1}\n\n[1]\n"));
    CHECK(xt_report_load(dir, &s, &c, &err) == XT_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, "cases.jsonl: line 3: not a JSON object"), "%s", err.msg);
    /* the page names the file it read in field errors */
    CHECK(write_file(XT_TMP_DIR "/report-bad/cases.jsonl", "{\"case_id\": \"1\"}\n"));
    CHECK(xt_report_write(dir, XT_TMP_DIR "/report-bad/report.html", NULL, &err) == XT_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, "report-bad/cases.jsonl entry 1: field 'case_id' is a string"), "%s",
              err.msg);

    /* the fixture, written */
    const char *out = XT_TMP_DIR "/report-fixture.html";
    size_t bytes = 0;
    xt_error_clear(&err);
    CHECK_MSG(xt_report_write(FIXTURE, out, &bytes, &err) == XT_OK, "%s", err.msg);
    struct stat st;
    CHECK(stat(out, &st) == 0 && (size_t)st.st_size == bytes && bytes > 10000);
    CHECK(xt_report_write(FIXTURE, XT_TMP_DIR "/no-such-dir/report.html", NULL, &err) == XT_ERR_IO);
    CHECK_MSG(strstr(err.msg, "no-such-dir/report.html: cannot write"), "%s", err.msg);
}

int main(void)
{
    xt_error err = {0};
    if (xt_report_load(FIXTURE, &summary_fixture, &cases_fixture, &err) || !cases_fixture) {
        fprintf(stderr, "cannot load the fixture: %s\n", err.msg);
        return 1;
    }
    RUN(report_should_draw_every_figure_for_the_fixture);
    RUN(report_should_escape_text_from_the_files);
    RUN(report_should_reject_malformed_summaries_naming_the_field);
    RUN(report_should_name_the_rome_metric);
    RUN(report_should_leave_out_what_the_summary_does_not_have);
    RUN(report_should_draw_many_layers);
    RUN(report_files_should_be_read_and_written_with_their_names_in_errors);
    cJSON_Delete(summary_fixture);
    cJSON_Delete(cases_fixture);
    return xt_test_finish();
}
