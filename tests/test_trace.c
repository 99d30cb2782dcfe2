/* The tracer (src/trace.h) end to end on the small models of $XT_MODEL_DIR and on the committed
 * default model (assets/default-model.gguf, which really knows its facts):
 *
 * - against the independent transformers implementation of the protocol's numerics
 *   (tests/reference/trace_reference.py; fixtures tests/fixtures/trace/ref_<model>.json): tokens,
 *   subject span, true/foil ids, Δ clean / noised, every layer's rescue, every clean-routed
 *   expert's rescue and the two coalitions, |difference| <= 1e-3; where the fixture has ROME
 *   grids, every cell of ours with either metric (Δ: |difference| <= 1e-3; p(true): relative,
 *   see rome_grids_should_match_transformers_reference);
 * - ROME identities: restoring the residual entering layer 0 where no noise was added changes
 *   neither metric, bit for bit; no grid value is NaN or infinite;
 * - exact identities (DESIGN.md §6), bit for bit: D_union = layer patch; the expert pass's layer
 *   patch = the sweep's; zero noise = clean run (every rescue exactly 0); wavefront rows = full
 *   recompute; a case alone in its batch = in a full batch; a zero patch = the noised run;
 * - resume: a run cut short (lines dropped, a half-written last line) and rerun gives the same
 *   summary.json, byte for byte, as an uninterrupted run;
 * - the GPU against --backend cpu through xt_trace_compare.
 * Without $XT_MODEL_DIR only the default model's tests run; the rest print SKIP (and fail under
 * CI=true, like test_model).
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "expertrace/vk.h"
#include "forward.h"
#include "trace.h"
#include "util.h"
#include "xt_test.h"

static const char *model_dir;
static xt_vk_context *vk;
static char facts_path[1024];

static char *slurp(const char *path, size_t *len)
{
    char *b;
    size_t n;
    if (xt_read_file(path, false, &b, &n, NULL)) return NULL;
    if (len) *len = n;
    return b;
}

static void rm_dir(const char *dir)
{
    static const char *const files[] = {"sweep.jsonl",    "cases.jsonl",       "summary.json",
                                        "settings.json",  "summary.json.tmp",  "settings.json.tmp",
                                        "rome.jsonl",     "rome.jsonl.tmp",    "timing.json",
                                        "timing.json.tmp"};
    char p[1200];
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        unlink(p);
    }
    rmdir(dir);
}

typedef struct run_cfg {
    xt_backend backend;
    uint32_t seed, layer, batch_tokens;
    double noise_scale;
    bool full_recompute;
    const char *cases_path;           /* NULL: the facts' cases, shuffled */
    uint32_t rome_cases, rome_window; /* rome_cases 0: no ROME grids */
    xt_rome_metric rome_metric;
} run_cfg;

/* Runs (or resumes) a trace into dir as it is; false on failure. */
static bool trace_into(const xt_model *m, const run_cfg *c, const char *dir)
{
    xt_trace_opts o;
    xt_trace_opts_init(&o);
    o.facts_path = facts_path;
    o.cases_path = c->cases_path;
    o.out_dir = dir;
    o.filter = XT_FILTER_NONE;
    o.noise_seed = c->seed;
    o.noise_scale = c->noise_scale;
    o.layer = (int32_t)c->layer;
    o.bootstrap = 200;
    o.flips = 200;
    o.quiet = true;
    o.full_recompute = c->full_recompute;
    if (c->batch_tokens) o.batch_tokens = c->batch_tokens;
    o.rome_cases = c->rome_cases;
    if (c->rome_window) o.rome_window = c->rome_window;
    o.rome_metric = c->rome_metric;
    xt_fwd_desc d;
    xt_trace_fwd_desc(m, &o, &d);
    d.backend = c->backend;
    d.vk = vk;
    xt_fwd *f = NULL;
    xt_error err = {0};
    bool ok = !xt_fwd_create(&d, &f, &err) && !xt_trace_run(m, f, &o, &err);
    if (!ok) fprintf(stderr, "trace %s: %s\n", dir, err.msg);
    xt_fwd_destroy(f);
    return ok;
}

/* Runs a trace into XT_TMP_DIR/test_trace-<tag> (emptied first); the prefix keeps it apart from
 * the CLI test's directories, which ctest may run at the same time. */
static bool run_trace(const xt_model *m, const run_cfg *c, const char *tag, char *dir, size_t cap)
{
    snprintf(dir, cap, "%s/test_trace-%s", XT_TMP_DIR, tag);
    rm_dir(dir);
    return trace_into(m, c, dir);
}

/* dir/name (JSON lines) as an array of its lines. */
static cJSON *read_lines(const char *dir, const char *name)
{
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    char *b = slurp(p, NULL);
    cJSON *a = cJSON_CreateArray();
    for (char *line = b ? strtok(b, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        if (j) cJSON_AddItemToArray(a, j);
    }
    free(b);
    return a;
}

static cJSON *read_cases(const char *dir) { return read_lines(dir, "cases.jsonl"); }

static const cJSON *at(const cJSON *j, const char *k) { return cJSON_GetObjectItemCaseSensitive(j, k); }
static double num(const cJSON *j, const char *k) { return cJSON_GetNumberValue(at(j, k)); }

static const cJSON *find_case(const cJSON *cases, double id)
{
    for (const cJSON *c = cases->child; c; c = c->next)
        if (num(c, "case_id") == id) return c;
    return NULL;
}

/* ---- against the transformers reference ----------------------------------------------------- */

static const char *ref_name;
static xt_model *ref_model;
static cJSON *ref; /* the fixture ref_<ref_name>.json */

/* Reads the fixture of ref_name into ref and points facts_path at the facts it was made from
 * (settings.facts, a path under tests/fixtures/trace/). */
static bool load_reference(void)
{
    char fx[1024];
    snprintf(fx, sizeof fx, "%s/trace/ref_%s.json", XT_FIXTURE_DIR, ref_name);
    char *txt = slurp(fx, NULL);
    ref = txt ? cJSON_Parse(txt) : NULL;
    free(txt);
    const char *facts = cJSON_GetStringValue(at(at(ref, "settings"), "facts"));
    if (!facts) {
        fprintf(stderr, "%s: unreadable, or without settings.facts\n", fx);
        cJSON_Delete(ref);
        ref = NULL;
        return false;
    }
    const char *base = strrchr(facts, '/');
    snprintf(facts_path, sizeof facts_path, "%s/trace/%s", XT_FIXTURE_DIR, base ? base + 1 : facts);
    return true;
}

static void reference_fixture_should_load(void) { CHECK(load_reference()); }

static void trace_should_match_transformers_reference(void)
{
    char dir[1100];
    const cJSON *st = at(ref, "settings");
    run_cfg c = {.seed = (uint32_t)num(st, "seed"), .layer = (uint32_t)num(st, "expert_layer"),
                 .noise_scale = num(st, "noise_k")};
    CHECK(run_trace(ref_model, &c, ref_name, dir, sizeof dir));
    cJSON *ours = read_cases(dir);
    double max_d = 0, max_l = 0, max_e = 0;
    int n = 0;
    CHECK_MSG(cJSON_GetArraySize(ours) == cJSON_GetArraySize(at(ref, "cases")),
              "%d cases traced, the reference has %d", cJSON_GetArraySize(ours),
              cJSON_GetArraySize(at(ref, "cases")));
    for (const cJSON *rc = at(ref, "cases")->child; rc; rc = rc->next, n++) {
        double id = num(rc, "case_id");
        const cJSON *oc = find_case(ours, id);
        CHECK_MSG(oc, "case %.0f missing from our results", id);
        if (!oc) continue;
        CHECK_MSG(cJSON_Compare(at(rc, "tokens"), at(oc, "tokens"), true), "case %.0f tokens", id);
        CHECK_MSG(cJSON_Compare(at(rc, "subject"), at(oc, "subject_span"), true),
                  "case %.0f subject span", id);
        CHECK_MSG(num(rc, "true_id") == num(oc, "true_id") && num(rc, "foil_id") == num(oc, "foil_id"),
                  "case %.0f true/foil ids", id);
        double d1 = fabs(num(rc, "delta_clean") - num(oc, "delta_clean"));
        double d2 = fabs(num(rc, "delta_noised") - num(oc, "delta_noised_mean"));
        max_d = fmax(max_d, fmax(d1, d2));
        const cJSON *rl = at(rc, "layer_rescue"), *ol = at(oc, "layer_rescue");
        CHECK(cJSON_GetArraySize(rl) == cJSON_GetArraySize(ol));
        for (int l = 0; l < cJSON_GetArraySize(rl); l++)
            max_l = fmax(max_l, fabs(cJSON_GetArrayItem(rl, l)->valuedouble -
                                     cJSON_GetNumberValue(cJSON_GetArrayItem(ol, l))));
        const cJSON *re = at(rc, "experts"), *oe = at(oc, "experts");
        CHECK_MSG(cJSON_GetArraySize(re) == cJSON_GetArraySize(oe), "case %.0f experts", id);
        for (int s = 0; s < cJSON_GetArraySize(re) && s < cJSON_GetArraySize(oe); s++) {
            const cJSON *a = cJSON_GetArrayItem(re, s), *b = cJSON_GetArrayItem(oe, s);
            CHECK_MSG(num(a, "expert") == num(b, "expert"), "case %.0f slot %d: expert %.0f vs %.0f",
                      id, s, num(a, "expert"), num(b, "expert"));
            max_e = fmax(max_e, fabs(num(a, "rescue") - num(b, "rescue")));
            max_e = fmax(max_e, fabs(num(a, "weight_clean") - num(b, "weight")));
        }
        max_e = fmax(max_e, fabs(num(rc, "coalition_top") - num(oc, "coalition_top")));
        max_e = fmax(max_e, fabs(num(rc, "coalition_union") - num(oc, "coalition_union")));
    }
    printf("  %-18s %d cases: max |diff| delta %.2e, layer rescue %.2e, expert rescue %.2e\n",
           ref_name, n, max_d, max_l, max_e);
    CHECK_MSG(max_d <= 1e-3 && max_l <= 1e-3 && max_e <= 1e-3, "differences above 1e-3");
    cJSON_Delete(ours);
    rm_dir(dir);
}

/* ---- ROME grids ----------------------------------------------------------------------------- */

static const char *const rome_kinds[3] = {"residual", "attention", "moe"};

/* ROME restores every (site, layer, position), each a full recompute of the prompt (~1.5 s per
 * case and metric on lavapipe), so the comparison runs on the reference's shortest prompt alone:
 * the trace is given the two shortest as case ids (it needs two cases) and makes the grids of the
 * first. XT_TRACE_ROME_ALL=1 compares every case of the fixture. */
#define ROME_GIVEN_CASES 2

/* rome.jsonl of the last ROME comparison, [0] Δ and [1] p(true), for the identity test after it. */
static cJSON *rome_lines[2];

static void rome_lines_free(void)
{
    for (int i = 0; i < 2; i++) {
        cJSON_Delete(rome_lines[i]);
        rome_lines[i] = NULL;
    }
}

/* Writes the ids of the ROME_GIVEN_CASES shortest prompts among ref's ROME cases to path, the
 * shortest first. */
static bool write_rome_cases(const char *path)
{
    const cJSON *rc = at(at(ref, "rome"), "cases");
    double pick[ROME_GIVEN_CASES];
    int n = 0;
    for (; n < ROME_GIVEN_CASES; n++) {
        int best = 0x7fffffff;
        for (const cJSON *x = rc ? rc->child : NULL; x; x = x->next) {
            double id = num(x, "case_id");
            int T = cJSON_GetArraySize(at(find_case(at(ref, "cases"), id), "tokens"));
            bool taken = false;
            for (int i = 0; i < n; i++) taken |= pick[i] == id;
            if (!taken && T > 0 && T < best) {
                best = T;
                pick[n] = id;
            }
        }
        if (best == 0x7fffffff) break;
    }
    FILE *f = n ? fopen(path, "wb") : NULL;
    if (!f) return false;
    fputc('[', f);
    for (int i = 0; i < n; i++) fprintf(f, "%s%.0f", i ? ", " : "", pick[i]);
    fputs("]\n", f);
    return fclose(f) == 0;
}

/* Our ROME grids for ref's model, window w, into rome_lines: the Δ run, then the p(true) run in the
 * same directory, which resumes the layer sweep and expert pass and recomputes only the grids. */
static bool rome_traces(uint32_t w)
{
    char dir[1100], cases[1200];
    const cJSON *st = at(ref, "settings");
    const char *all = getenv("XT_TRACE_ROME_ALL");
    bool subset = !(all && !strcmp(all, "1"));
    snprintf(cases, sizeof cases, "%s/test_trace-rome-cases.json", XT_TMP_DIR);
    run_cfg c = {.seed = (uint32_t)num(st, "seed"), .layer = (uint32_t)num(st, "expert_layer"),
                 .noise_scale = num(st, "noise_k"), .cases_path = subset ? cases : NULL,
                 .rome_cases = subset ? 1 : (uint32_t)cJSON_GetArraySize(at(ref, "cases")),
                 .rome_window = w, .rome_metric = XT_ROME_METRIC_DELTA};
    rome_lines_free();
    bool ok = (!subset || write_rome_cases(cases)) &&
              run_trace(ref_model, &c, "rome", dir, sizeof dir);
    if (ok) rome_lines[0] = read_lines(dir, "rome.jsonl");
    c.rome_metric = XT_ROME_METRIC_PROB;
    ok = ok && trace_into(ref_model, &c, dir);
    if (ok) rome_lines[1] = read_lines(dir, "rome.jsonl");
    rm_dir(dir);
    if (subset) unlink(cases);
    return ok;
}

/* Grid cell [layer][position] of g (NAN where missing or null). */
static double cell(const cJSON *g, int l, int q)
{
    return cJSON_GetNumberValue(cJSON_GetArrayItem(cJSON_GetArrayItem(g, l), q));
}

static double rome_cell(const cJSON *line, const char *kind, int l, int q)
{
    return cell(at(line, kind), l, q);
}

/* The larger of m and x, where a NaN x (a value missing on either side) counts as infinite. */
static double worst(double m, double x) { return isnan(x) ? INFINITY : fmax(m, x); }

/* Ours against the fixture's ROME grids, each metric from its own run. The fixture holds the
 * metric of each restored run; ours, restored minus noised.
 * Δ: |difference| <= 1e-3, as every other Δ figure. p(true) spans 1e-34 (the random-weight test
 * models) to 1 (the default model), so it is judged relative to the larger of the two
 * probabilities a cell subtracts: |ours − (p_restored − p_noised)| <= 1e-3 max(p_restored,
 * p_noised), and each of p_clean, p_noised within 1e-3 of itself. log p(true) moves with the
 * logits, which agree to ~3e-5: measured up to 1.2e-4 relative (tests/reference/README.md). */
static void rome_grids_should_match_transformers_reference(void)
{
    const cJSON *rr = at(ref, "rome");
    uint32_t w = (uint32_t)num(rr, "window"), L = (uint32_t)num(at(ref, "settings"), "n_layer");
    double max_d = 0, max_p = 0, max_base_d = 0, max_base_p = 0;
    int n = 0;
    CHECK(rome_traces(w));
    for (int mi = 0; mi < 2; mi++) {
        bool prob = mi == 1;
        const char *key = prob ? "p_true" : "delta";
        const cJSON *ours = rome_lines[mi];
        CHECK_MSG(cJSON_GetArraySize(ours) > 0, "%s: no ROME grid of ours", key);
        for (const cJSON *oc = ours ? ours->child : NULL; oc; oc = oc->next) {
            double id = num(oc, "case_id");
            const cJSON *rc = find_case(at(rr, "cases"), id), *fc = find_case(at(ref, "cases"), id);
            CHECK_MSG(rc && fc, "%s: case %.0f not in the reference", key, id);
            if (!rc || !fc) continue;
            n += !prob;
            const char *metric = cJSON_GetStringValue(at(oc, "metric"));
            CHECK_MSG(metric && !strcmp(metric, key) && num(oc, "window") == w,
                      "case %.0f: metric %s, window %g", id, metric ? metric : "?",
                      num(oc, "window"));
            CHECK_MSG(cJSON_Compare(at(fc, "tokens"), at(oc, "tokens"), true) &&
                          cJSON_Compare(at(fc, "subject"), at(oc, "subject_span"), true),
                      "case %.0f: tokens or subject span", id);
            int T = cJSON_GetArraySize(at(oc, "tokens"));
            double clean = num(at(rc, "clean"), key), noised = num(at(rc, "noised"), key);
            double dc = fabs(num(oc, "clean") - clean), dn = fabs(num(oc, "noised") - noised);
            if (prob) {
                max_base_p = worst(max_base_p, dc / fmax(clean, 1e-300));
                max_base_p = worst(max_base_p, dn / fmax(noised, 1e-300));
            } else {
                max_base_d = worst(worst(max_base_d, dc), dn);
            }
            for (int kd = 0; kd < 3; kd++) {
                const cJSON *g = at(at(rc, rome_kinds[kd]), key);
                CHECK_MSG(cJSON_GetArraySize(g) == (int)L &&
                              cJSON_GetArraySize(at(oc, rome_kinds[kd])) == (int)L,
                          "case %.0f %s: grid rows", id, rome_kinds[kd]);
                for (int l = 0; l < (int)L; l++)
                    for (int q = 0; q < T; q++) {
                        double rv = cell(g, l, q);
                        double diff = fabs(rome_cell(oc, rome_kinds[kd], l, q) - (rv - noised));
                        if (prob) max_p = worst(max_p, diff / fmax(fmax(rv, noised), 1e-300));
                        else max_d = worst(max_d, diff);
                    }
            }
        }
    }
    printf("  %-18s %d case%s, ROME window %u: max |diff| delta %.2e (clean/noised %.2e), "
           "max rel diff p(true) %.2e (clean/noised %.2e)\n",
           ref_name, n, n == 1 ? "" : "s", w, max_d, max_base_d, max_p, max_base_p);
    CHECK_MSG(max_d <= 1e-3 && max_base_d <= 1e-3, "Δ differences above 1e-3");
    CHECK_MSG(max_p <= 1e-3 && max_base_p <= 1e-3, "p(true) relative differences above 1e-3");
}

/* On the grids the comparison above made. At layer 0 a restoration outside the subject span puts
 * back the value the noised run already has there, so the restored run is the noised run (batch
 * invariance, DESIGN.md §6): exactly 0 in both metrics. Every cell must be a number (NaN and
 * infinities are written as null). */
static void rome_restoring_an_unnoised_position_at_layer_0_should_change_nothing(void)
{
    for (int mi = 0; mi < 2; mi++) {
        const cJSON *lines = rome_lines[mi];
        CHECK(cJSON_GetArraySize(lines) > 0);
        int zeros = 0;
        for (const cJSON *x = lines ? lines->child : NULL; x; x = x->next) {
            int T = cJSON_GetArraySize(at(x, "tokens")), L = cJSON_GetArraySize(at(x, "residual"));
            double a = cJSON_GetNumberValue(cJSON_GetArrayItem(at(x, "subject_span"), 0));
            double b = cJSON_GetNumberValue(cJSON_GetArrayItem(at(x, "subject_span"), 1));
            CHECK(a < b);
            CHECK(cJSON_IsNumber(at(x, "clean")) && cJSON_IsNumber(at(x, "noised")));
            CHECK(L > 0 && cJSON_GetArraySize(at(x, "attention")) == L &&
                  cJSON_GetArraySize(at(x, "moe")) == L);
            for (int kd = 0; kd < 3; kd++)
                for (int l = 0; l < L; l++)
                    for (int q = 0; q < T; q++)
                        CHECK_MSG(isfinite(rome_cell(x, rome_kinds[kd], l, q)),
                                  "case %.0f %s [%d][%d] not a finite number", num(x, "case_id"),
                                  rome_kinds[kd], l, q);
            for (int q = 0; q < T; q++) {
                if (q >= a && q < b) continue;
                double v = rome_cell(x, "residual", 0, q);
                CHECK_MSG(v == 0, "case %.0f %s: residual [0][%d] = %.9g, not 0", num(x, "case_id"),
                          mi ? "p(true)" : "delta", q, v);
                zeros++;
            }
        }
        CHECK(zeros > 0);
    }
}

/* ---- identities ----------------------------------------------------------------------------- */

static xt_model *id_model;

static bool same_lines(const cJSON *a, const cJSON *b, const char *what)
{
    bool ok = cJSON_GetArraySize(a) == cJSON_GetArraySize(b) && cJSON_GetArraySize(a) > 0;
    for (const cJSON *x = a->child; x && ok; x = x->next) {
        const cJSON *y = find_case(b, num(x, "case_id"));
        if (!y || !cJSON_Compare(x, y, true)) {
            fprintf(stderr, "%s: case %.0f differs\n", what, num(x, "case_id"));
            ok = false;
        }
    }
    return ok;
}

static void union_coalition_should_equal_layer_patch_bit_for_bit(void)
{
    char dir[1100];
    run_cfg c = {.seed = 1, .layer = 1, .noise_scale = 3};
    CHECK(run_trace(id_model, &c, "union", dir, sizeof dir));
    cJSON *cs = read_cases(dir);
    CHECK(cJSON_GetArraySize(cs) > 3);
    for (const cJSON *x = cs->child; x; x = x->next) {
        CHECK_MSG(num(x, "coalition_union") == num(x, "layer_patch_rescue"),
                  "case %.0f: D_union %.9g, layer patch %.9g", num(x, "case_id"),
                  num(x, "coalition_union"), num(x, "layer_patch_rescue"));
        CHECK_MSG(num(x, "layer_patch_rescue") ==
                      cJSON_GetArrayItem(at(x, "layer_rescue"), 1)->valuedouble,
                  "case %.0f: the expert pass's layer patch differs from the sweep's",
                  num(x, "case_id"));
    }
    cJSON_Delete(cs);
    rm_dir(dir);
}

static void zero_noise_should_give_the_clean_run(void)
{
    char dir[1100];
    run_cfg c = {.seed = 1, .layer = 0, .noise_scale = 0};
    CHECK(run_trace(id_model, &c, "zero", dir, sizeof dir));
    cJSON *cs = read_cases(dir);
    CHECK(cJSON_GetArraySize(cs) > 3);
    for (const cJSON *x = cs->child; x; x = x->next) {
        CHECK(num(x, "delta_clean") == num(x, "delta_noised_mean"));
        for (const cJSON *l = at(x, "layer_rescue")->child; l; l = l->next)
            CHECK_MSG(l->valuedouble == 0, "case %.0f: rescue %.9g with zero noise",
                      num(x, "case_id"), l->valuedouble);
        CHECK(num(x, "coalition_union") == 0 && num(x, "coalition_top") == 0);
        for (const cJSON *e = at(x, "experts")->child; e; e = e->next) CHECK(num(e, "rescue") == 0);
    }
    cJSON_Delete(cs);
    rm_dir(dir);
}

static void wavefront_rows_should_equal_full_recompute(void)
{
    char d1[1100], d2[1100];
    run_cfg c = {.seed = 2, .layer = 1, .noise_scale = 3};
    CHECK(run_trace(id_model, &c, "wave", d1, sizeof d1));
    c.full_recompute = true;
    CHECK(run_trace(id_model, &c, "full", d2, sizeof d2));
    cJSON *a = read_cases(d1), *b = read_cases(d2);
    CHECK(same_lines(a, b, "full recompute"));
    cJSON_Delete(a);
    cJSON_Delete(b);
    rm_dir(d1);
    rm_dir(d2);
}

static void case_alone_should_equal_case_in_batch(void)
{
    char d1[1100], d2[1100];
    run_cfg c = {.seed = 3, .layer = 0, .noise_scale = 3};
    CHECK(run_trace(id_model, &c, "big", d1, sizeof d1));
    c.batch_tokens = 32; /* one or two cases (clean + noised, <= 16 tokens each) per submission */
    CHECK(run_trace(id_model, &c, "alone", d2, sizeof d2));
    cJSON *a = read_cases(d1), *b = read_cases(d2);
    CHECK(same_lines(a, b, "batch of one"));
    cJSON_Delete(a);
    cJSON_Delete(b);
    rm_dir(d1);
    rm_dir(d2);
}

static void zero_patch_should_give_the_noised_run(void)
{
    xt_fwd *f = NULL;
    xt_error err = {0};
    const xt_hparams *hp = xt_model_hparams(id_model);
    CHECK(!xt_fwd_create(&(xt_fwd_desc){.model = id_model, .vk = vk, .max_tokens = 64}, &f, &err));
    if (!f) return;
    int32_t toks[7] = {1, 415, 413, 2728, 301, 19895, 349};
    uint32_t D = hp->n_embd, L = hp->n_layer;
    float *noise = calloc(D, sizeof *noise), *zero = calloc(D, sizeof *zero);
    for (uint32_t d = 0; d < D; d++) noise[d] = (float)((d * 37 % 11) - 5) * 0.3f;
    CHECK(!xt_fwd_store_write(f, 0, noise, D, &err) && !xt_fwd_store_write(f, D, zero, D, &err));
    xt_fwd_seq seq = {toks, 7};
    xt_fwd_patch np = {.row = 0, .position = 2, .layer = 0, .site = XT_FWD_SITE_RESIDUAL,
                       .mode = XT_FWD_PATCH_ADD, .src = 0};
    xt_fwd_record recs[8];
    for (uint32_t l = 0; l < L && l < 8; l++)
        recs[l] = (xt_fwd_record){0, 6, l, XT_REC_RESIDUAL_MID, 2 * D + l * D};
    uint32_t t = 4949, fo = 4300;
    float dn;
    CHECK(!xt_fwd_prefill(f, &(xt_fwd_batch){.seqs = &seq, .n_seqs = 1, .patches = &np,
                                             .n_patches = 1, .records = recs, .n_records = L,
                                             .true_ids = &t, .foil_ids = &fo, .delta = &dn},
                          &err));
    for (uint32_t l = 0; l < L; l++) {
        xt_fwd_row row = {0, l, XT_STAGE_MOE, 2 * D + l * D};
        xt_fwd_patch zp = {.row = 0, .layer = l, .site = XT_FWD_SITE_MOE_OUT,
                           .mode = XT_FWD_PATCH_ADD, .src = D};
        float dz;
        CHECK(!xt_fwd_wavefront(f, &(xt_fwd_batch){.rows = &row, .n_rows = 1, .patches = &zp,
                                                   .n_patches = 1, .true_ids = &t,
                                                   .foil_ids = &fo, .delta = &dz},
                                &err));
        CHECK_MSG(memcmp(&dz, &dn, 4) == 0, "layer %u: zero patch %.9g, noised %.9g", l, dz, dn);
    }
    free(noise);
    free(zero);
    xt_fwd_destroy(f);
}

static void resumed_run_should_equal_uninterrupted_run(void)
{
    char d1[1100], d2[1100], p[1200];
    run_cfg c = {.seed = 4, .layer = 1, .noise_scale = 3};
    CHECK(run_trace(id_model, &c, "whole", d1, sizeof d1));
    CHECK(run_trace(id_model, &c, "cut", d2, sizeof d2));
    /* cut it: keep 4 sweep lines and 2 case lines, then half a line */
    static const char *const files[2] = {"sweep.jsonl", "cases.jsonl"};
    for (int i = 0; i < 2; i++) {
        snprintf(p, sizeof p, "%s/%s", d2, files[i]);
        size_t len;
        char *b = slurp(p, &len);
        CHECK(b);
        if (!b) return;
        size_t at_b = 0;
        for (int lines = 0; lines < 4 - 2 * i && at_b < len; at_b++)
            if (b[at_b] == '\n') lines++;
        FILE *f = fopen(p, "wb");
        fwrite(b, 1, at_b + 40 < len ? at_b + 40 : at_b, f);
        fclose(f);
        free(b);
    }
    snprintf(p, sizeof p, "%s/summary.json", d2);
    unlink(p);
    /* the rerun: same arguments, same directory */
    CHECK(trace_into(id_model, &c, d2));
    char *s1, *s2;
    snprintf(p, sizeof p, "%s/summary.json", d1);
    s1 = slurp(p, NULL);
    snprintf(p, sizeof p, "%s/summary.json", d2);
    s2 = slurp(p, NULL);
    /* the directories differ by name only: the settings do not name the output directory */
    CHECK_MSG(s1 && s2 && !strcmp(s1, s2), "summary.json of the resumed run differs");
    free(s1);
    free(s2);
    rm_dir(d1);
    rm_dir(d2);
}

static void gpu_and_cpu_results_should_compare_equal(void)
{
    char d1[1100], d2[1100];
    run_cfg c = {.seed = 5, .layer = 1, .noise_scale = 3};
    CHECK(run_trace(id_model, &c, "gpu", d1, sizeof d1));
    c.backend = XT_BACKEND_CPU;
    CHECK(run_trace(id_model, &c, "cpu", d2, sizeof d2));
    bool same = false;
    xt_error err = {0};
    FILE *out = tmpfile();
    CHECK(!xt_trace_compare(d1, d2, 1e-4, out, &same, &err));
    CHECK_MSG(same, "GPU and CPU results differ beyond 1e-4");
    fclose(out);
    rm_dir(d1);
    rm_dir(d2);
}

static void vulkan_validation_should_report_nothing(void)
{
    CHECK_MSG(xt_vk_validation_messages_total() == 0, "%u validation messages",
              xt_vk_validation_messages_total());
}

static void models_should_be_present(void)
{
    CHECK_MSG(0, "CI=true but XT_MODEL_DIR (%s) has no qwen3moe-f32.gguf",
              model_dir ? model_dir : "unset");
}

static xt_model *open_path(const char *p)
{
    xt_model *m = NULL;
    xt_error err = {0};
    if (access(p, R_OK)) return NULL;
    if (xt_model_open(p, &m, &err)) fprintf(stderr, "%s: %s\n", p, err.msg);
    return m;
}

/* A reference model: the committed default model from assets/, the others from XT_MODEL_DIR. */
static xt_model *open_model(const char *name)
{
    char p[1200];
    if (!strcmp(name, "default-model"))
        snprintf(p, sizeof p, "%s/default-model.gguf", XT_ASSETS_DIR);
    else if (model_dir)
        snprintf(p, sizeof p, "%s/%s.gguf", model_dir, name);
    else
        return NULL;
    return open_path(p);
}

int main(void)
{
    model_dir = getenv("XT_MODEL_DIR");
    const char *ci = getenv("CI");
    xt_error err = {0};
    if (xt_vk_context_create(&(xt_vk_desc){0}, &vk, &err)) {
        fprintf(stderr, "test_trace: no Vulkan device: %s\n", err.msg);
        return 1;
    }
    /* every fixture whose model is at hand: the default model always, the rest with XT_MODEL_DIR */
    DIR *d = opendir(XT_FIXTURE_DIR "/trace");
    for (struct dirent *e; d && (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        if (strncmp(e->d_name, "ref_", 4) || n < 10 || strcmp(e->d_name + n - 5, ".json")) continue;
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(n - 9), e->d_name + 4);
        ref_model = open_model(name);
        if (!ref_model) {
            /* the sanitizer leg runs a subset of the models; qwen3moe-f32 is always there */
            printf("  %-18s not in XT_MODEL_DIR: its reference comparison skipped\n", name);
            continue;
        }
        ref_name = name;
        RUN(reference_fixture_should_load);
        if (ref) {
            RUN(trace_should_match_transformers_reference);
            if (at(ref, "rome")) {
                RUN(rome_grids_should_match_transformers_reference);
                RUN(rome_restoring_an_unnoised_position_at_layer_0_should_change_nothing);
                rome_lines_free();
            }
        }
        cJSON_Delete(ref);
        ref = NULL;
        xt_model_close(ref_model);
    }
    if (d) closedir(d);
    snprintf(facts_path, sizeof facts_path, "%s/trace/facts_small.json", XT_FIXTURE_DIR);
    id_model = open_model("qwen3moe-f32");
    if (id_model) {
        RUN(union_coalition_should_equal_layer_patch_bit_for_bit);
        RUN(zero_noise_should_give_the_clean_run);
        RUN(zero_patch_should_give_the_noised_run);
        RUN(wavefront_rows_should_equal_full_recompute);
        RUN(case_alone_should_equal_case_in_batch);
        RUN(resumed_run_should_equal_uninterrupted_run);
        RUN(gpu_and_cpu_results_should_compare_equal);
        xt_model_close(id_model);
    } else if (ci && !strcmp(ci, "true")) {
        RUN(models_should_be_present);
    } else {
        printf("SKIP test_trace's identities on qwen3moe-f32: XT_MODEL_DIR unset or without it\n");
    }
    xt_vk_context_destroy(vk);
    RUN(vulkan_validation_should_report_nothing);
    return xt_test_finish();
}
