/* expertrace compare: two result directories (e.g. two vendors' GPUs, or a GPU and --backend
 * cpu) case by case. Same cases and split, same selected layer and expert, the same routed
 * experts per case, and every Δ and rescue within an absolute tolerance. Every difference is
 * printed with the case, field and both values; the environments are printed first. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "trace_internal.h"

typedef struct side {
    const char *dir;
    cJSON *summary;
    cJSON *cases; /* object: case_id (as text) -> the case's last line */
} side;

static xt_status load_side(side *s, xt_error *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/summary.json", s->dir);
    s->summary = trace_read_json(path, err);
    if (!s->summary) return err->status;
    snprintf(path, sizeof path, "%s/cases.jsonl", s->dir);
    FILE *f = fopen(path, "rb");
    if (!f) return xt_error_set(err, XT_ERR_NOT_FOUND, "%s: cannot open", path);
    s->cases = cJSON_CreateObject();
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    unsigned ln = 0;
    xt_status st = XT_OK;
    while ((n = getline(&line, &cap, f)) > 0) {
        ln++;
        cJSON *j = cJSON_ParseWithLength(line, (size_t)n);
        const cJSON *id = j ? cJSON_GetObjectItemCaseSensitive(j, "case_id") : NULL;
        if (!cJSON_IsNumber(id)) {
            cJSON_Delete(j);
            if (line[n - 1] != '\n') break; /* an unfinished last line */
            st = xt_error_set(err, XT_ERR_FORMAT, "%s:%u: not a case line", path, ln);
            break;
        }
        char key[32];
        snprintf(key, sizeof key, "%.0f", id->valuedouble);
        cJSON_DeleteItemFromObjectCaseSensitive(s->cases, key);
        cJSON_AddItemToObject(s->cases, key, j);
    }
    free(line);
    fclose(f);
    return st;
}

typedef struct cmp {
    FILE *out;
    double tol;
    uint32_t diffs, checked;
    double max_diff;
    const char *where;
} cmp;

static void differ(cmp *c, const char *fmt, const char *a, const char *b)
{
    c->diffs++;
    if (c->diffs <= 200) fprintf(c->out, "  %s: %s: %s vs %s\n", c->where, fmt, a, b);
}

static void num(cmp *c, const char *field, const cJSON *a, const cJSON *b)
{
    char sa[64], sb[64];
    c->checked++;
    bool na = cJSON_IsNumber(a), nb = cJSON_IsNumber(b);
    if (!na || !nb) {
        if (na != nb || (!cJSON_IsNull(a) && !na) || (!cJSON_IsNull(b) && !nb))
            differ(c, field, na ? "a number" : "absent/null", nb ? "a number" : "absent/null");
        return;
    }
    double d = fabs(a->valuedouble - b->valuedouble);
    if (d > c->max_diff) c->max_diff = d;
    if (d > c->tol || isnan(d)) {
        char f2[160];
        snprintf(sa, sizeof sa, "%.9g", a->valuedouble);
        snprintf(sb, sizeof sb, "%.9g", b->valuedouble);
        snprintf(f2, sizeof f2, "%s (|diff| %.3g > tol %.3g)", field, d, c->tol);
        differ(c, f2, sa, sb);
    }
}

static void exact(cmp *c, const char *field, const cJSON *a, const cJSON *b)
{
    c->checked++;
    if (cJSON_Compare(a, b, true)) return;
    char *sa = a ? cJSON_PrintUnformatted(a) : NULL, *sb = b ? cJSON_PrintUnformatted(b) : NULL;
    differ(c, field, sa ? sa : "(absent)", sb ? sb : "(absent)");
    free(sa);
    free(sb);
}

static const cJSON *at(const cJSON *j, const char *k) { return cJSON_GetObjectItemCaseSensitive(j, k); }

static void compare_case(cmp *c, const cJSON *a, const cJSON *b)
{
    exact(c, "tokens", at(a, "tokens"), at(b, "tokens"));
    exact(c, "subject_span", at(a, "subject_span"), at(b, "subject_span"));
    exact(c, "split", at(a, "split"), at(b, "split"));
    num(c, "delta_clean", at(a, "delta_clean"), at(b, "delta_clean"));
    num(c, "delta_noised_mean", at(a, "delta_noised_mean"), at(b, "delta_noised_mean"));
    exact(c, "passed", at(a, "passed"), at(b, "passed"));
    const cJSON *la = at(a, "layer_rescue"), *lb = at(b, "layer_rescue");
    int n = cJSON_GetArraySize(la);
    if (n != cJSON_GetArraySize(lb)) exact(c, "layer_rescue", la, lb);
    for (int l = 0; l < n && n == cJSON_GetArraySize(lb); l++) {
        char f[48];
        snprintf(f, sizeof f, "layer_rescue[%d]", l);
        num(c, f, cJSON_GetArrayItem(la, l), cJSON_GetArrayItem(lb, l));
    }
    exact(c, "expert_layer", at(a, "expert_layer"), at(b, "expert_layer"));
    const cJSON *ea = at(a, "experts"), *eb = at(b, "experts");
    int k = cJSON_GetArraySize(ea);
    for (int s = 0; s < k; s++) {
        const cJSON *xa = cJSON_GetArrayItem(ea, s), *xb = cJSON_GetArrayItem(eb, s);
        char f[64];
        snprintf(f, sizeof f, "experts[%d].expert", s);
        exact(c, f, at(xa, "expert"), at(xb, "expert"));
        snprintf(f, sizeof f, "experts[%d].rescue", s);
        num(c, f, at(xa, "rescue"), at(xb, "rescue"));
        snprintf(f, sizeof f, "experts[%d].equal_norm_rescue", s);
        num(c, f, at(xa, "equal_norm_rescue"), at(xb, "equal_norm_rescue"));
    }
    if (k != cJSON_GetArraySize(eb)) exact(c, "experts", ea, eb);
    num(c, "layer_patch_rescue", at(a, "layer_patch_rescue"), at(b, "layer_patch_rescue"));
    num(c, "coalition_top", at(a, "coalition_top"), at(b, "coalition_top"));
    num(c, "coalition_union", at(a, "coalition_union"), at(b, "coalition_union"));
}

xt_status xt_trace_compare(const char *dir_a, const char *dir_b, double tol, FILE *out,
                           bool *same, xt_error *err)
{
    side a = {.dir = dir_a}, b = {.dir = dir_b};
    xt_status s;
    *same = false;
    if ((s = load_side(&a, err)) || (s = load_side(&b, err))) goto done;
    cmp c = {.out = out, .tol = tol};
    for (int i = 0; i < 2; i++) {
        const cJSON *env = at(i ? b.summary : a.summary, "environment");
        fprintf(out, "%s: %s: device %s, backend %s, driver %s, features %s\n", i ? "B" : "A",
                i ? dir_b : dir_a, cJSON_GetStringValue(at(env, "device")),
                cJSON_GetStringValue(at(env, "backend")), cJSON_GetStringValue(at(env, "driver")),
                cJSON_GetStringValue(at(env, "features")));
    }
    c.where = "summary";
    exact(&c, "split", at(a.summary, "split"), at(b.summary, "split"));
    exact(&c, "layer.selected", at(at(a.summary, "layer"), "selected"),
          at(at(b.summary, "layer"), "selected"));
    exact(&c, "expert.selected", at(at(a.summary, "expert"), "selected"),
          at(at(b.summary, "expert"), "selected"));
    exact(&c, "settings.noise_seed", at(at(a.summary, "settings"), "noise_seed"),
          at(at(b.summary, "settings"), "noise_seed"));
    num(&c, "settings.sigma", at(at(a.summary, "settings"), "sigma"),
        at(at(b.summary, "settings"), "sigma"));
    uint32_t n_cases = 0;
    for (const cJSON *x = a.cases->child; x; x = x->next) {
        char where[64];
        snprintf(where, sizeof where, "case %s", x->string);
        c.where = where;
        const cJSON *y = at(b.cases, x->string);
        if (!y) {
            differ(&c, "present", "yes", "no");
            continue;
        }
        n_cases++;
        compare_case(&c, x, y);
    }
    for (const cJSON *y = b.cases->child; y; y = y->next)
        if (!at(a.cases, y->string)) {
            char where[64];
            snprintf(where, sizeof where, "case %s", y->string);
            c.where = where;
            differ(&c, "present", "no", "yes");
        }
    if (c.diffs > 200) fprintf(out, "  ... %u differences in all\n", c.diffs);
    fprintf(out, "%s: %u cases, %u values compared, max |diff| %.3g, tolerance %.3g: %u "
                 "difference%s\n",
            c.diffs ? "DIFFERENT" : "SAME", n_cases, c.checked, c.max_diff, tol, c.diffs,
            c.diffs == 1 ? "" : "s");
    *same = c.diffs == 0;
done:
    cJSON_Delete(a.summary);
    cJSON_Delete(b.summary);
    cJSON_Delete(a.cases);
    cJSON_Delete(b.cases);
    return s;
}
