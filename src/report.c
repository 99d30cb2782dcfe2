/* The HTML report (report.h): summary.json (+ cases.jsonl) of a trace → one self-contained page.
 *
 * Two steps. read_summary checks every field the page uses and copies the numbers into a
 * `report` (NaN where the file has null: trace_num writes non-finite values as null), so a
 * malformed file fails with the file and the field's path before anything is drawn. The page is
 * then written into one growing string: inline CSS, figures as inline SVG drawn here (the data
 * → pixel arithmetic is a few linear scales), tables, no script. Settings, counts and
 * environment are printed field by field as the file has them, so a field added to the summary
 * shows up without a change here.
 *
 * Everything that comes from a file goes through sb_esc (HTML-escaped, control characters and
 * invalid UTF-8 replaced by U+FFFD); numbers are printed with printf; nothing else is pasted.
 */
#include "report.h"
#include "util.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define XT_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define XT_PRINTF(a, b)
#endif

enum { SPLIT_DISC = 0, SPLIT_VAL = 1, N_SPLITS = 2, ROME_KINDS = 3 };
#define MAX_LAYERS 4096
#define MAX_GROUPS 64

static const char *const split_names[N_SPLITS] = {"discovery", "validation"};
static const char *const split_colors[N_SPLITS] = {"#0072b2", "#d55e00"}; /* Okabe–Ito */
static const char *const rome_kinds[ROME_KINDS] = {"residual", "attention", "moe"};

/* ---- a growing output string ----------------------------------------------------------------- */

typedef struct sbuf {
    char *p;
    size_t n, cap;
    bool oom;
} sbuf;

static bool sb_reserve(sbuf *b, size_t extra)
{
    if (b->oom) return false;
    if (b->n + extra + 1 <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 1 << 16;
    while (cap < b->n + extra + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (!sb_reserve(b, n)) return;
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void sb_puts(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

XT_PRINTF(2, 3) static void sb_printf(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !sb_reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->n, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)n;
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0 if it is not one. */
static int utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    int n = c < 0x80                ? 1
            : (c & 0xe0) == 0xc0 ? 2
            : (c & 0xf0) == 0xe0 ? 3
            : (c & 0xf8) == 0xf0 ? 4
                                 : 0;
    if (n == 0 || (n == 2 && c < 0xc2) || (n == 4 && c > 0xf4)) return 0;
    for (int i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80) return 0;
    if (n == 3 && ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] >= 0xa0))) return 0;
    if (n == 4 && ((c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] >= 0x90))) return 0;
    return n;
}

/* Text from a file, safe in element content and in quoted attributes. */
static void sb_esc_n(sbuf *b, const char *text, size_t max)
{
    const unsigned char *s = (const unsigned char *)(text ? text : "");
    for (size_t i = 0; i < max && s[i];) {
        unsigned c = s[i];
        const char *rep = c == '&'   ? "&amp;"
                          : c == '<' ? "&lt;"
                          : c == '>' ? "&gt;"
                          : c == '"' ? "&quot;"
                          : c == '\'' ? "&#39;"
                          : (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f ? "&#xFFFD;"
                                                                               : NULL;
        if (rep) {
            sb_puts(b, rep);
            i++;
            continue;
        }
        int n = utf8_len(s + i);
        if (n == 0 || (size_t)n > max - i) {
            sb_puts(b, "&#xFFFD;");
            i++;
        } else {
            sb_put(b, (const char *)s + i, (size_t)n);
            i += (size_t)n;
        }
    }
}

static void sb_esc(sbuf *b, const char *text) { sb_esc_n(b, text, SIZE_MAX); }

/* ---- numbers as text ------------------------------------------------------------------------- */

/* v with `dec` decimals; "n/a" where the file had null. Never "-0.000". */
static const char *fmt_num(char *buf, size_t n, double v, int dec)
{
    if (!isfinite(v)) return snprintf(buf, n, "n/a"), buf;
    snprintf(buf, n, "%.*f", dec, v);
    bool zero = buf[0] == '-';
    for (const char *c = buf + 1; zero && *c; c++) zero = *c == '0' || *c == '.';
    if (zero) memmove(buf, buf + 1, strlen(buf));
    return buf;
}

static const char *fmt_p(char *buf, size_t n, double p)
{
    if (!isfinite(p)) snprintf(buf, n, "n/a");
    else if (p >= 0.001) snprintf(buf, n, "%.3f", p);
    else snprintf(buf, n, "%.1e", p);
    return buf;
}

static void sb_num(sbuf *b, double v, int dec)
{
    char t[64];
    sb_puts(b, fmt_num(t, sizeof t, v, dec));
}

/* ---- reading the summary: every field checked, messages naming the file and the field -------- */

typedef enum kind { K_OBJECT, K_ARRAY, K_STRING, K_NUMBER, K_NUMBER_OR_NULL, K_BOOL } kind;
static const char *const kind_names[] = {"an object", "an array", "a string",
                                         "a number", "a number or null", "true or false"};

typedef struct reader {
    xt_error *err;
    const char *file;
    char where[48]; /* "" or " entry 3" (a line of cases.jsonl) */
    bool failed;
} reader;

XT_PRINTF(2, 3) static void rd_fail(reader *rd, const char *fmt, ...)
{
    if (rd->failed) return;
    rd->failed = true;
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    xt_error_set(rd->err, XT_ERR_FORMAT, "%s%s: %s", rd->file, rd->where, msg);
}

static const char *type_name(const cJSON *j)
{
    if (cJSON_IsObject(j)) return "an object";
    if (cJSON_IsArray(j)) return "an array";
    if (cJSON_IsString(j)) return "a string";
    if (cJSON_IsNumber(j)) return "a number";
    if (cJSON_IsBool(j)) return "a boolean";
    return "null";
}

static bool is_kind(const cJSON *j, kind k)
{
    switch (k) {
    case K_OBJECT: return cJSON_IsObject(j);
    case K_ARRAY: return cJSON_IsArray(j);
    case K_STRING: return cJSON_IsString(j) && j->valuestring;
    case K_NUMBER: return cJSON_IsNumber(j);
    case K_NUMBER_OR_NULL: return cJSON_IsNumber(j) || cJSON_IsNull(j);
    case K_BOOL: return cJSON_IsBool(j);
    }
    return false;
}

static const char *join(char *buf, size_t n, const char *path, const char *key)
{
    snprintf(buf, n, "%s%s%s", path, *path ? "." : "", key);
    return buf;
}

/* obj[key] of kind k; NULL when absent and optional, or after recording the problem. */
static const cJSON *get(reader *rd, const cJSON *obj, const char *path, const char *key, kind k,
                        bool optional)
{
    if (rd->failed || !obj) return NULL;
    char full[256];
    join(full, sizeof full, path, key);
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!j) {
        if (!optional) rd_fail(rd, "field '%s' is missing (expected %s)", full, kind_names[k]);
        return NULL;
    }
    if (!is_kind(j, k)) {
        rd_fail(rd, "field '%s' is %s, expected %s", full, type_name(j), kind_names[k]);
        return NULL;
    }
    return j;
}

/* A number or null (NaN; also for an optional field that is absent, and for ±1e999). */
static double get_num(reader *rd, const cJSON *obj, const char *path, const char *key,
                      bool optional)
{
    const cJSON *j = get(rd, obj, path, key, K_NUMBER_OR_NULL, optional);
    return cJSON_IsNumber(j) && isfinite(j->valuedouble) ? j->valuedouble : NAN;
}

/* A required non-negative integer (layer, expert, count). */
static double get_count(reader *rd, const cJSON *obj, const char *path, const char *key)
{
    const cJSON *j = get(rd, obj, path, key, K_NUMBER, false);
    if (!j) return 0;
    double v = j->valuedouble;
    if (!(v >= 0 && v <= 1e9 && v == floor(v))) {
        char full[256];
        rd_fail(rd, "field '%s' is %g, expected a whole number >= 0",
                join(full, sizeof full, path, key), v);
        return 0;
    }
    return v;
}

static const char *get_str(reader *rd, const cJSON *obj, const char *path, const char *key,
                           bool optional)
{
    const cJSON *j = get(rd, obj, path, key, K_STRING, optional);
    return j ? j->valuestring : NULL;
}

static bool get_bool(reader *rd, const cJSON *obj, const char *path, const char *key)
{
    return cJSON_IsTrue(get(rd, obj, path, key, K_BOOL, true));
}

/* A statistic as trace_stats.c writes it: {mean, lo, hi, n, p?}, or a ratio {ratio, lo, hi}. */
typedef struct stat_ci {
    double mean, lo, hi, p, n;
} stat_ci;

static stat_ci get_stat(reader *rd, const cJSON *obj, const char *path, const char *key, bool ratio)
{
    stat_ci s = {NAN, NAN, NAN, NAN, NAN};
    char sub[256];
    join(sub, sizeof sub, path, key);
    const cJSON *j = get(rd, obj, path, key, K_OBJECT, false);
    if (!j) return s;
    s.mean = get_num(rd, j, sub, ratio ? "ratio" : "mean", false);
    s.lo = get_num(rd, j, sub, "lo", false);
    s.hi = get_num(rd, j, sub, "hi", false);
    if (!ratio) {
        s.n = get_num(rd, j, sub, "n", true);
        s.p = get_num(rd, j, sub, "p", true);
    }
    return s;
}

typedef struct expert_split {
    const char *clean_active, *rank_first;
    stat_ci rescue, specificity, layer, random, matched, equal, top, uni, e_over_l, s_over_l;
    double rank_mean;
} expert_split;

typedef struct ranked {
    double expert, active, mean;
    bool candidate;
} ranked;

typedef struct also {
    double expert;
    expert_split val;
} also;

typedef struct report {
    reader rd;
    sbuf out;
    const cJSON *settings, *counts, *environment, *rejected, *split, *cases;
    const char *summary_path, *cases_path;
    uint32_t L;           /* layers in the sweep */
    stat_ci *sweep[N_SPLITS]; /* [L] */
    double layer, runner_up, runner_up_rescue, top_val, top_val_rescue;
    bool layer_forced;
    bool has_expert, expert_forced, fallback;
    const char *expert_name;
    double expert, expert_layer, candidates;
    expert_split ex[N_SPLITS];
    ranked *rank;
    uint32_t n_rank;
    also *also;
    uint32_t n_also;
    bool has_rome;
    double rome_window, rome_cases;
    bool rome_prob; /* the grid's metric is p(true), not Δ */
    uint32_t n_groups;
    const char *groups[MAX_GROUPS];
    double *grid[ROME_KINDS]; /* [n_groups][L] */
} report;

static void read_expert_split(reader *rd, const cJSON *ex, const char *path, const char *key,
                              expert_split *s)
{
    char p[128], q[160];
    join(p, sizeof p, path, key);
    const cJSON *j = get(rd, ex, path, key, K_OBJECT, false);
    if (!j) return;
    s->clean_active = get_str(rd, j, p, "clean_active", false);
    s->rescue = get_stat(rd, j, p, "rescue", false);
    s->specificity = get_stat(rd, j, p, "specificity", false);
    s->layer = get_stat(rd, j, p, "layer_rescue", false);
    s->e_over_l = get_stat(rd, j, p, "expert_over_layer", true);
    s->s_over_l = get_stat(rd, j, p, "spec_over_layer", true);
    const cJSON *c = get(rd, j, p, "controls", K_OBJECT, false);
    join(q, sizeof q, p, "controls");
    s->random = get_stat(rd, c, q, "active_random", false);
    s->matched = get_stat(rd, c, q, "gate_weight_matched", false);
    s->equal = get_stat(rd, c, q, "equal_norm", false);
    const cJSON *r = get(rd, j, p, "rank", K_OBJECT, false);
    join(q, sizeof q, p, "rank");
    s->rank_mean = get_num(rd, r, q, "mean", false);
    s->rank_first = get_str(rd, r, q, "first", false);
    const cJSON *co = get(rd, j, p, "coalitions", K_OBJECT, false);
    join(q, sizeof q, p, "coalitions");
    s->top = get_stat(rd, co, q, "top_k", false);
    s->uni = get_stat(rd, co, q, "union", false);
}

/* An array of n numbers-or-null into out; path names it in messages. */
static void read_row(reader *rd, const cJSON *a, const char *path, uint32_t n, const char *what,
                     double *out)
{
    if (rd->failed) return;
    if (!cJSON_IsArray(a)) {
        rd_fail(rd, "field '%s' is %s, expected an array", path, type_name(a));
        return;
    }
    if ((uint32_t)cJSON_GetArraySize(a) != n) {
        rd_fail(rd, "field '%s' has %d entries, expected %u (%s)", path, cJSON_GetArraySize(a), n,
                what);
        return;
    }
    uint32_t i = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, a)
    {
        if (!is_kind(v, K_NUMBER_OR_NULL)) {
            rd_fail(rd, "field '%s[%u]' is %s, expected a number or null", path, i, type_name(v));
            return;
        }
        out[i++] = cJSON_IsNumber(v) && isfinite(v->valuedouble) ? v->valuedouble : NAN;
    }
}

static void read_sweep(report *r, const cJSON *ls)
{
    reader *rd = &r->rd;
    const cJSON *a[N_SPLITS];
    for (int s = 0; s < N_SPLITS; s++)
        a[s] = get(rd, ls, "layer_sweep", split_names[s], K_ARRAY, false);
    if (rd->failed) return;
    int n = cJSON_GetArraySize(a[SPLIT_DISC]);
    if (n < 1 || n > MAX_LAYERS) {
        rd_fail(rd,
                "field 'layer_sweep.discovery' has %d entries, expected 1 to %d (one per layer)", n,
                MAX_LAYERS);
        return;
    }
    if (cJSON_GetArraySize(a[SPLIT_VAL]) != n) {
        rd_fail(rd, "field 'layer_sweep.validation' has %d entries, expected %d (as discovery)",
                cJSON_GetArraySize(a[SPLIT_VAL]), n);
        return;
    }
    const cJSON *nl = get(rd, r->settings, "settings", "n_layer", K_NUMBER, true);
    if (nl && nl->valuedouble != n) {
        rd_fail(rd, "field 'layer_sweep.discovery' has %d entries but settings.n_layer is %g", n,
                nl->valuedouble);
        return;
    }
    r->L = (uint32_t)n;
    for (int s = 0; s < N_SPLITS && !rd->failed; s++) {
        r->sweep[s] = calloc(r->L, sizeof *r->sweep[s]);
        if (!r->sweep[s]) {
            r->out.oom = true;
            return;
        }
        for (uint32_t l = 0; l < r->L && !rd->failed; l++) {
            char path[96];
            snprintf(path, sizeof path, "layer_sweep.%s[%u]", split_names[s], l);
            const cJSON *e = cJSON_GetArrayItem(a[s], (int)l);
            if (!cJSON_IsObject(e)) {
                rd_fail(rd, "field '%s' is %s, expected an object", path, type_name(e));
                return;
            }
            stat_ci *st = &r->sweep[s][l];
            st->mean = get_num(rd, e, path, "mean", false);
            st->lo = get_num(rd, e, path, "lo", false);
            st->hi = get_num(rd, e, path, "hi", false);
            st->n = get_num(rd, e, path, "n", true);
            st->p = get_num(rd, e, path, "p", true);
            const cJSON *lj = get(rd, e, path, "layer", K_NUMBER, true);
            if (lj && lj->valuedouble != l)
                rd_fail(rd, "field '%s.layer' is %g, expected %u (entries in layer order)", path,
                        lj->valuedouble, l);
        }
    }
}

static void read_expert(report *r, const cJSON *ex)
{
    reader *rd = &r->rd;
    r->has_expert = true;
    r->expert_name = get_str(rd, ex, "expert", "selected", false);
    r->expert = get_count(rd, ex, "expert", "expert");
    r->expert_layer = get_count(rd, ex, "expert", "layer");
    r->expert_forced = get_bool(rd, ex, "expert", "forced");
    r->fallback = get_bool(rd, ex, "expert", "recurrence_fallback");
    r->candidates = get_num(rd, ex, "expert", "candidates", true);
    for (int s = 0; s < N_SPLITS; s++)
        read_expert_split(rd, ex, "expert", split_names[s], &r->ex[s]);
    const cJSON *ra = get(rd, ex, "expert", "ranking", K_ARRAY, true);
    if (ra && cJSON_GetArraySize(ra) > 0) {
        r->rank = calloc((size_t)cJSON_GetArraySize(ra), sizeof *r->rank);
        if (!r->rank) {
            r->out.oom = true;
            return;
        }
        const cJSON *e;
        cJSON_ArrayForEach(e, ra)
        {
            char path[64];
            snprintf(path, sizeof path, "expert.ranking[%u]", r->n_rank);
            if (!cJSON_IsObject(e)) {
                rd_fail(rd, "field '%s' is %s, expected an object", path, type_name(e));
                return;
            }
            ranked *k = &r->rank[r->n_rank++];
            k->expert = get_count(rd, e, path, "expert");
            k->active = get_count(rd, e, path, "active_discovery");
            k->candidate = get_bool(rd, e, path, "candidate");
            k->mean = get_num(rd, e, path, "mean_rescue_discovery", false);
        }
    }
    const cJSON *al = get(rd, ex, "expert", "also", K_ARRAY, true);
    if (al && cJSON_GetArraySize(al) > 0) {
        r->also = calloc((size_t)cJSON_GetArraySize(al), sizeof *r->also);
        if (!r->also) {
            r->out.oom = true;
            return;
        }
        const cJSON *e;
        cJSON_ArrayForEach(e, al)
        {
            char path[64];
            snprintf(path, sizeof path, "expert.also[%u]", r->n_also);
            if (!cJSON_IsObject(e)) {
                rd_fail(rd, "field '%s' is %s, expected an object", path, type_name(e));
                return;
            }
            also *a = &r->also[r->n_also++];
            a->expert = get_count(rd, e, path, "expert");
            read_expert_split(rd, e, path, "validation", &a->val);
        }
    }
}

static void read_rome(report *r, const cJSON *ro)
{
    reader *rd = &r->rd;
    r->has_rome = true;
    r->rome_window = get_num(rd, ro, "rome", "window", true);
    r->rome_cases = get_num(rd, ro, "rome", "cases", true);
    const char *metric = get_str(rd, ro, "rome", "metric", true); /* absent: Δ (older runs) */
    if (metric && strcmp(metric, "delta") && strcmp(metric, "p_true"))
        rd_fail(rd, "field 'rome.metric' is '%s', expected 'delta' or 'p_true'", metric);
    r->rome_prob = metric && !strcmp(metric, "p_true");
    const cJSON *g = get(rd, ro, "rome", "groups", K_ARRAY, false);
    if (rd->failed) return;
    int ng = cJSON_GetArraySize(g);
    if (ng < 1 || ng > MAX_GROUPS) {
        rd_fail(rd, "field 'rome.groups' has %d entries, expected 1 to %d token groups", ng,
                MAX_GROUPS);
        return;
    }
    r->n_groups = (uint32_t)ng;
    for (int i = 0; i < ng; i++) {
        const cJSON *s = cJSON_GetArrayItem(g, i);
        if (!is_kind(s, K_STRING)) {
            rd_fail(rd, "field 'rome.groups[%d]' is %s, expected a string", i, type_name(s));
            return;
        }
        r->groups[i] = s->valuestring;
    }
    for (int kd = 0; kd < ROME_KINDS && !rd->failed; kd++) {
        const cJSON *grid = get(rd, ro, "rome", rome_kinds[kd], K_ARRAY, false);
        if (rd->failed) return;
        if (cJSON_GetArraySize(grid) != ng) {
            rd_fail(rd, "field 'rome.%s' has %d rows, expected %d (one per token group)",
                    rome_kinds[kd], cJSON_GetArraySize(grid), ng);
            return;
        }
        r->grid[kd] = calloc((size_t)ng * r->L, sizeof *r->grid[kd]);
        if (!r->grid[kd]) {
            r->out.oom = true;
            return;
        }
        for (int i = 0; i < ng && !rd->failed; i++) {
            char path[64];
            snprintf(path, sizeof path, "rome.%s[%d]", rome_kinds[kd], i);
            read_row(rd, cJSON_GetArrayItem(grid, i), path, r->L, "one per layer",
                     r->grid[kd] + (size_t)i * r->L);
        }
    }
}

/* The fields of one cases.jsonl line that the page shows: types checked where present. */
static void check_case(reader *rd, const cJSON *c)
{
    if (!cJSON_IsObject(c)) {
        rd_fail(rd, "is %s, expected an object", type_name(c));
        return;
    }
    get(rd, c, "", "case_id", K_NUMBER, false);
    static const char *const strs[] = {"split", "subject", "prompt", "target_true", "target_new"};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) get_str(rd, c, "", strs[i], true);
    static const char *const nums[] = {"delta_clean", "delta_noised_mean", "layer_patch_rescue",
                                       "coalition_top", "coalition_union"};
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) get_num(rd, c, "", nums[i], true);
    const cJSON *lr = get(rd, c, "", "layer_rescue", K_ARRAY, true);
    const cJSON *v;
    uint32_t i = 0;
    cJSON_ArrayForEach(v, lr)
    {
        if (!is_kind(v, K_NUMBER_OR_NULL))
            rd_fail(rd, "field 'layer_rescue[%u]' is %s, expected a number or null", i,
                    type_name(v));
        i++;
    }
    const cJSON *ex = get(rd, c, "", "experts", K_ARRAY, true);
    i = 0;
    cJSON_ArrayForEach(v, ex)
    {
        char path[48];
        snprintf(path, sizeof path, "experts[%u]", i++);
        if (!cJSON_IsObject(v)) {
            rd_fail(rd, "field '%s' is %s, expected an object", path, type_name(v));
            return;
        }
        get_num(rd, v, path, "expert", false);
        get_num(rd, v, path, "rescue", false);
    }
}

static void read_summary(report *r, const cJSON *s, const cJSON *cases)
{
    reader *rd = &r->rd;
    rd->file = r->summary_path;
    if (!cJSON_IsObject(s)) {
        rd_fail(rd, "the summary is %s, expected an object", type_name(s));
        return;
    }
    const cJSON *fv = get(rd, s, "", "format_version", K_NUMBER, true);
    if (fv && fv->valuedouble != 1) {
        rd_fail(rd, "field 'format_version' is %g; this expertrace reads version 1",
                fv->valuedouble);
        return;
    }
    r->settings = get(rd, s, "", "settings", K_OBJECT, false);
    r->counts = get(rd, s, "", "counts", K_OBJECT, false);
    r->environment = get(rd, s, "", "environment", K_OBJECT, true);
    r->rejected = get(rd, s, "", "rejected", K_ARRAY, true);
    r->split = get(rd, s, "", "split", K_OBJECT, true);
    read_sweep(r, get(rd, s, "", "layer_sweep", K_OBJECT, false));
    const cJSON *ly = get(rd, s, "", "layer", K_OBJECT, false);
    r->layer = get_count(rd, ly, "layer", "selected");
    if (!rd->failed && !(r->layer >= 0 && r->layer < r->L && r->layer == floor(r->layer))) {
        rd_fail(rd, "field 'layer.selected' is %g, expected a layer of the sweep (0 to %u)",
                r->layer, r->L - 1);
        return;
    }
    r->layer_forced = get_bool(rd, ly, "layer", "forced");
    r->runner_up = get_num(rd, ly, "layer", "runner_up", true);
    r->runner_up_rescue = get_num(rd, ly, "layer", "runner_up_rescue_discovery", true);
    r->top_val = get_num(rd, ly, "layer", "top_layer_validation", true);
    r->top_val_rescue = get_num(rd, ly, "layer", "top_layer_validation_rescue", true);
    const cJSON *ex = get(rd, s, "", "expert", K_OBJECT, true);
    if (ex) read_expert(r, ex);
    const cJSON *ro = get(rd, s, "", "rome", K_OBJECT, true);
    if (ro) read_rome(r, ro);
    if (rd->failed || !cases) return;
    rd->file = r->cases_path;
    if (!cJSON_IsArray(cases)) {
        rd_fail(rd, "the cases are %s, expected an array", type_name(cases));
        return;
    }
    r->cases = cases;
    uint32_t i = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cases)
    {
        snprintf(rd->where, sizeof rd->where, " entry %u", ++i);
        check_case(rd, c);
        if (rd->failed) return;
    }
    rd->where[0] = 0;
}

/* ---- SVG helpers ----------------------------------------------------------------------------- */

typedef struct scale {
    double d0, d1, r0, r1; /* domain → range, linear */
} scale;

static double sc(const scale *s, double v)
{
    return s->r0 + (v - s->d0) * (s->r1 - s->r0) / (s->d1 - s->d0);
}

/* A value the figures can place: finite and not absurd (the tables print whatever the file has;
 * 1e300 on an axis would leave nothing else visible and overflow the arithmetic). */
static bool drawable(double v) { return isfinite(v) && fabs(v) <= 1e9; }

/* A "nice" axis covering [lo, hi] and 0 with about `target` ticks (1, 2, 5 × 10^k steps). */
typedef struct axis {
    double lo, hi, step;
    int dec;
} axis;

static axis nice_axis(double lo, double hi, int target)
{
    axis a;
    if (!drawable(lo) || !drawable(hi)) lo = hi = 0;
    if (lo > 0) lo = 0;
    if (hi < 0) hi = 0;
    if (hi - lo < 1e-9) {
        lo -= 1;
        hi += 1;
    }
    double raw = (hi - lo) / target, mag = pow(10, floor(log10(raw))), f = raw / mag;
    a.step = (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
    a.lo = floor(lo / a.step - 1e-9) * a.step;
    a.hi = ceil(hi / a.step + 1e-9) * a.step;
    a.dec = a.step >= 1 ? 0 : (int)ceil(-log10(a.step) - 1e-9);
    return a;
}

/* Extends [*lo, *hi] by a value if it is drawable. */
static void widen(double *lo, double *hi, double v)
{
    if (!drawable(v)) return;
    if (v < *lo) *lo = v;
    if (v > *hi) *hi = v;
}

static void svg_open(sbuf *b, const char *id, int w, int h, const char *title)
{
    sb_printf(b,
              "<svg id=\"%s\" class=\"fig\" viewBox=\"0 0 %d %d\" "
              "width=\"%d\" height=\"%d\" role=\"img\" aria-labelledby=\"%s-title\">"
              "<title id=\"%s-title\">",
              id, w, h, w, h, id, id);
    sb_esc(b, title);
    sb_puts(b, "</title>\n");
}

/* Horizontal grid lines with labels on the left (vertical value axis), zero line darker, and
 * the axis title rotated along it. */
static void y_axis(sbuf *b, const axis *a, const scale *y, double x0, double x1, const char *label)
{
    for (double v = a->lo; v <= a->hi + a->step * 1e-6; v += a->step) {
        double py = sc(y, v);
        char t[32];
        bool zero = fabs(v) < a->step * 1e-6;
        sb_printf(b, "<line class=\"%s\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>",
                  zero ? "zero" : "grid", x0, x1, py, py);
        sb_printf(b, "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" "
                     "dominant-baseline=\"middle\">%s</text>\n",
                  x0 - 6, py, fmt_num(t, sizeof t, zero ? 0 : v, a->dec));
    }
    double mid = (y->r0 + y->r1) / 2;
    sb_printf(b, "<text class=\"label\" transform=\"translate(%.1f %.1f) rotate(-90)\" "
                 "text-anchor=\"middle\">",
              x0 - 46, mid);
    sb_esc(b, label);
    sb_puts(b, "</text>\n");
}

/* Vertical grid lines with labels below (horizontal value axis). */
static void x_axis(sbuf *b, const axis *a, const scale *x, double y0, double y1, const char *label)
{
    for (double v = a->lo; v <= a->hi + a->step * 1e-6; v += a->step) {
        double px = sc(x, v);
        char t[32];
        bool zero = fabs(v) < a->step * 1e-6;
        sb_printf(b, "<line class=\"%s\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>",
                  zero ? "zero" : "grid", px, px, y0, y1);
        sb_printf(b,
                  "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
                  px, y1 + 16, fmt_num(t, sizeof t, zero ? 0 : v, a->dec));
    }
    sb_printf(b, "<text class=\"label\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">",
              (x->r0 + x->r1) / 2, y1 + 36);
    sb_esc(b, label);
    sb_puts(b, "</text>\n");
}

/* A CI whisker with caps at x from lo to hi (skipped where either is null). */
static void whisker(sbuf *b, const scale *y, double x, double lo, double hi, double cap,
                    const char *color)
{
    if (!drawable(lo) || !drawable(hi)) return;
    double a = sc(y, lo), c = sc(y, hi);
    sb_printf(b,
              "<path class=\"ci\" stroke=\"%s\" "
              "d=\"M%.1f %.1fV%.1fM%.1f %.1fH%.1fM%.1f %.1fH%.1f\"/>",
              color, x, a, c, x - cap, a, x + cap, x - cap, c, x + cap);
}

/* "<split>, layer 3: 0.430 [−0.582, 1.731], n = 6, p = 0.686" as a <title> (the hover text). */
static void stat_title(sbuf *b, const char *what, const stat_ci *s)
{
    char m[32], lo[32], hi[32], p[32];
    sb_puts(b, "<title>");
    sb_esc(b, what);
    sb_printf(b, ": %s [%s, %s]", fmt_num(m, sizeof m, s->mean, 3),
              fmt_num(lo, sizeof lo, s->lo, 3), fmt_num(hi, sizeof hi, s->hi, 3));
    if (isfinite(s->n)) sb_printf(b, ", n = %.0f", s->n);
    if (isfinite(s->p)) sb_printf(b, ", p = %s", fmt_p(p, sizeof p, s->p));
    sb_puts(b, "</title>");
}

static void legend_line(sbuf *b, double x, double y, const char *color, const char *text)
{
    sb_printf(b,
              "<g class=\"legend\"><line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" "
              "stroke=\"%s\" stroke-width=\"2\"/>"
              "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"/>"
              "<text x=\"%.1f\" y=\"%.1f\" dominant-baseline=\"middle\">",
              x, x + 22, y, y, color, x + 11, y, color, x + 28, y);
    sb_esc(b, text);
    sb_puts(b, "</text></g>\n");
}

static void legend_box(sbuf *b, double x, double y, const char *color, double opacity,
                       const char *extra, const char *text)
{
    sb_printf(b,
              "<g class=\"legend\"><rect x=\"%.1f\" y=\"%.1f\" width=\"14\" height=\"12\" "
              "fill=\"%s\" fill-opacity=\"%.2f\" %s/>"
              "<text x=\"%.1f\" y=\"%.1f\" dominant-baseline=\"middle\">",
              x, y - 6, color, opacity, extra ? extra : "", x + 20, y);
    sb_esc(b, text);
    sb_puts(b, "</text></g>\n");
}

/* ---- figure 1: the layer sweep --------------------------------------------------------------- */

static void fig_layer_sweep(report *r)
{
    sbuf *b = &r->out;
    const int W = 820, H = 380, ml = 70, mr = 20, mt = 56, mb = 58;
    uint32_t L = r->L, sel = (uint32_t)r->layer;
    double lo = 0, hi = 0;
    for (int s = 0; s < N_SPLITS; s++)
        for (uint32_t l = 0; l < L; l++) {
            widen(&lo, &hi, r->sweep[s][l].lo);
            widen(&lo, &hi, r->sweep[s][l].hi);
            widen(&lo, &hi, r->sweep[s][l].mean);
        }
    axis a = nice_axis(lo, hi, 6);
    scale y = {a.lo, a.hi, H - mb, mt};
    double band = (double)(W - ml - mr) / L, off = fmin(7, band * 0.12);
#define LX(l) (ml + ((l) + 0.5) * band)
    svg_open(b, "layer-sweep", W, H,
             "Layer sweep: mean rescue per layer with 95% bootstrap CIs, discovery and validation");
    /* the selected layer behind everything */
    double sel_w = fmin(band * 0.7, 56);
    sb_printf(b,
              "<g id=\"selected-layer\" class=\"selected-layer\"><rect class=\"sel-band\" "
              "x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\"/>"
              "<line class=\"sel-line\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\"/>"
              "<text class=\"sel-text\" x=\"%.1f\" y=\"%d\" text-anchor=\"%s\">l* = %u%s</text>"
              "</g>\n",
              LX(sel) - sel_w / 2, mt, sel_w, H - mb - mt, LX(sel), LX(sel), mt - 4, H - mb,
              LX(sel), mt - 8, sel < L / 2 || L < 3 ? "start" : "end", sel,
              r->layer_forced ? " (forced)" : " (selected on discovery)");
    y_axis(b, &a, &y, ml, W - mr, "mean rescue Δpatched − Δnoised (logits)");
    /* layer ticks, thinned to about 24 labels */
    uint32_t every = (L + 23) / 24;
    for (uint32_t l = 0; l < L; l++) {
        sb_printf(b, "<line class=\"axis\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\"/>", LX(l),
                  LX(l), H - mb, H - mb + (l % every ? 3 : 5));
        if (l % every == 0 || l == sel)
            sb_printf(b,
                      "<text class=\"tick%s\" x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%u</text>",
                      l == sel ? " sel-tick" : "", LX(l), H - mb + 18, l);
    }
    sb_printf(b, "<line class=\"axis\" x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\"/>\n", ml, W - mr,
              H - mb, H - mb);
    sb_printf(b, "<text class=\"label\" x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">"
                 "layer (MoE-block output patched at the final position)</text>\n",
              (ml + W - mr) / 2.0, H - 12);
    for (int s = 0; s < N_SPLITS; s++) {
        const char *col = split_colors[s];
        double dx = s == SPLIT_DISC ? -off : off;
        sb_printf(b, "<g class=\"series\" id=\"layer-sweep-%s\">", split_names[s]);
        /* CI band and line, one segment per run of layers with values */
        for (uint32_t l0 = 0; l0 < L;) {
            uint32_t l1 = l0;
            while (l1 < L && drawable(r->sweep[s][l1].mean)) l1++;
            if (l1 > l0 + 1) {
                bool band_ok = true;
                for (uint32_t l = l0; l < l1; l++)
                    band_ok = band_ok && drawable(r->sweep[s][l].lo) && drawable(r->sweep[s][l].hi);
                if (band_ok) {
                    sb_printf(b, "<path class=\"band\" fill=\"%s\" d=\"", col);
                    for (uint32_t l = l0; l < l1; l++)
                        sb_printf(b, "%c%.1f %.1f", l == l0 ? 'M' : 'L', LX(l) + dx,
                                  sc(&y, r->sweep[s][l].hi));
                    for (uint32_t l = l1; l-- > l0;)
                        sb_printf(b, "L%.1f %.1f", LX(l) + dx, sc(&y, r->sweep[s][l].lo));
                    sb_puts(b, "Z\"/>");
                }
                sb_printf(b, "<path class=\"line\" stroke=\"%s\" d=\"", col);
                for (uint32_t l = l0; l < l1; l++)
                    sb_printf(b, "%c%.1f %.1f", l == l0 ? 'M' : 'L', LX(l) + dx,
                              sc(&y, r->sweep[s][l].mean));
                sb_puts(b, "\"/>");
            }
            l0 = l1 + 1;
        }
        for (uint32_t l = 0; l < L; l++) {
            const stat_ci *st = &r->sweep[s][l];
            if (!drawable(st->mean)) continue;
            whisker(b, &y, LX(l) + dx, st->lo, st->hi, fmin(4, band * 0.1), col);
            char what[64];
            snprintf(what, sizeof what, "%s, layer %u", split_names[s], l);
            sb_printf(b, "<circle class=\"pt\" cx=\"%.1f\" cy=\"%.1f\" r=\"%s\" fill=\"%s\">",
                      LX(l) + dx, sc(&y, st->mean), l == sel ? "5" : "3.5", col);
            stat_title(b, what, st);
            sb_puts(b, "</circle>");
        }
        sb_puts(b, "</g>\n");
    }
    /* legend, above the plot */
    char t[96];
    for (int s = 0; s < N_SPLITS; s++) {
        double n = r->sweep[s][0].n;
        if (isfinite(n)) snprintf(t, sizeof t, "%s (n = %.0f cases)", split_names[s], n);
        else snprintf(t, sizeof t, "%s", split_names[s]);
        legend_line(b, ml + 4 + s * 200, 18, split_colors[s], t);
    }
    legend_box(b, ml + 404, 18, "#57606a", 0.25, NULL, "95% bootstrap CI (band and whiskers)");
    sb_puts(b, "</svg>\n");
#undef LX
}

/* ---- figure 2: e* against its controls ------------------------------------------------------- */

static void fig_expert_bars(report *r)
{
    sbuf *b = &r->out;
    enum { N_BARS = 6 };
    char ename[96];
    snprintf(ename, sizeof ename, "expert %s", r->expert_name);
    const char *labels[N_BARS][2] = {{"layer patch", "(all experts)"},
                                     {ename, "(e*)"},
                                     {"control:", "active-random"},
                                     {"control:", "gate-weight-matched"},
                                     {"control:", "equal-norm"},
                                     {"specificity", "(e* − active-random)"}};
    const stat_ci *v[N_SPLITS][N_BARS];
    for (int s = 0; s < N_SPLITS; s++) {
        const expert_split *e = &r->ex[s];
        const stat_ci *row[N_BARS] = {&e->layer, &e->rescue, &e->random, &e->matched, &e->equal,
                                   &e->specificity};
        memcpy(v[s], row, sizeof row);
    }
    const int W = 820, H = 400, ml = 70, mr = 20, mt = 56, mb = 70;
    double lo = 0, hi = 0;
    for (int s = 0; s < N_SPLITS; s++)
        for (int i = 0; i < N_BARS; i++) {
            widen(&lo, &hi, v[s][i]->lo);
            widen(&lo, &hi, v[s][i]->hi);
            widen(&lo, &hi, v[s][i]->mean);
        }
    axis a = nice_axis(lo, hi, 6);
    scale y = {a.lo, a.hi, H - mb, mt};
    double group = (double)(W - ml - mr) / N_BARS, bw = group * 0.32;
    svg_open(b, "expert-bars", W, H,
             "Expert pass at the selected layer: the selected expert's rescue against the layer "
             "patch and three controls, with 95% bootstrap CIs");
    /* the controls' region, shaded */
    sb_printf(b, "<rect class=\"ctl-band\" x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\"/>"
                 "<text class=\"note\" x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">"
                 "controls</text>\n",
              ml + 2 * group, mt, 3 * group, H - mb - mt, ml + 3.5 * group, mt + 14);
    y_axis(b, &a, &y, ml, W - mr, "mean rescue (logits)");
    for (int i = 0; i < N_BARS; i++) {
        double cx = ml + (i + 0.5) * group;
        sb_printf(b, "<g class=\"bars\" id=\"expert-bar-%d\">", i);
        for (int s = 0; s < N_SPLITS; s++) {
            const stat_ci *st = v[s][i];
            double x = cx + (s == SPLIT_DISC ? -bw - 2 : 2), y0 = sc(&y, 0);
            if (drawable(st->mean)) {
                double y1 = sc(&y, st->mean);
                sb_printf(b, "<rect class=\"bar%s\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                             "height=\"%.1f\" fill=\"%s\">",
                          i == 1 ? " bar-main" : "", x, fmin(y0, y1), bw, fabs(y1 - y0),
                          split_colors[s]);
                char what[160];
                snprintf(what, sizeof what, "%s %s, %s", labels[i][0], labels[i][1],
                         split_names[s]);
                stat_title(b, what, st);
                sb_puts(b, "</rect>");
                whisker(b, &y, x + bw / 2, st->lo, st->hi, fmin(5, bw * 0.25), "#24292f");
            } else {
                sb_printf(b, "<text class=\"note\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">"
                             "n/a</text>",
                          x + bw / 2, y0 - 4);
            }
        }
        for (int k = 0; k < 2; k++) {
            sb_printf(b, "<text class=\"tick%s\" x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">",
                      i == 1 ? " strong" : "", cx, H - mb + 18 + 15 * k);
            sb_esc(b, labels[i][k]);
            sb_puts(b, "</text>");
        }
        sb_puts(b, "</g>\n");
    }
    sb_printf(b, "<line class=\"axis\" x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\"/>\n", ml, W - mr,
              H - mb, H - mb);
    char t[96];
    for (int s = 0; s < N_SPLITS; s++) {
        const char *ca = r->ex[s].clean_active;
        snprintf(t, sizeof t, "%s (e* clean-routed in %s cases)", split_names[s], ca ? ca : "?");
        legend_box(b, ml + 4 + s * 300, 18, split_colors[s], 1, NULL, t);
    }
    sb_printf(b, "<g class=\"legend\"><path class=\"ci\" stroke=\"#24292f\" "
                 "d=\"M%d 12V24M%d 12H%dM%d 24H%d\"/><text x=\"%d\" y=\"18\" "
                 "dominant-baseline=\"middle\">95%% CI</text></g>\n",
              ml + 611, ml + 607, ml + 615, ml + 607, ml + 615, ml + 622);
    sb_puts(b, "</svg>\n");
}

/* ---- figure 3: the discovery ranking of experts at l* ---------------------------------------- */

static void fig_expert_ranking(report *r)
{
    sbuf *b = &r->out;
    const int W = 820, ml = 90, mr = 130, mt = 44, mb = 52, rowh = 22;
    int H = mt + mb + rowh * (int)r->n_rank;
    double lo = 0, hi = 0;
    for (uint32_t i = 0; i < r->n_rank; i++) widen(&lo, &hi, r->rank[i].mean);
    axis a = nice_axis(lo, hi, 6);
    scale x = {a.lo, a.hi, ml, W - mr};
    svg_open(b, "expert-ranking", W, H,
             "Discovery ranking of the experts at the selected layer: mean rescue over the "
             "discovery cases (0 where not routed)");
    x_axis(b, &a, &x, mt, H - mb,
           "mean rescue over discovery cases, 0 where not clean-routed (logits)");
    double disc_n = r->sweep[SPLIT_DISC][0].n;
    for (uint32_t i = 0; i < r->n_rank; i++) {
        const ranked *k = &r->rank[i];
        bool sel = r->has_expert && k->expert == r->expert;
        double cy = mt + (i + 0.5) * rowh, x0 = sc(&x, 0);
        sb_printf(b, "<g class=\"rank-row%s\">", sel ? " rank-selected" : "");
        sb_printf(b, "<text class=\"tick%s\" x=\"%d\" y=\"%.1f\" text-anchor=\"end\" "
                     "dominant-baseline=\"middle\">E%03.0f</text>",
                  sel ? " strong" : "", ml - 8, cy, k->expert);
        if (drawable(k->mean)) {
            double x1 = sc(&x, k->mean);
            sb_printf(b, "<rect class=\"bar\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%d\" "
                         "fill=\"%s\"%s><title>E%03.0f: mean rescue %.3f, clean-routed in %.0f "
                         "discovery cases%s</title></rect>",
                      fmin(x0, x1), cy - rowh * 0.35, fabs(x1 - x0), (int)(rowh * 0.7),
                      k->candidate ? "#009e73" : "#a8b1ba",
                      sel ? " stroke=\"#24292f\" stroke-width=\"2\"" : "", k->expert, k->mean,
                      k->active, k->candidate ? " (candidate)" : "");
        }
        char act[64];
        if (isfinite(disc_n)) snprintf(act, sizeof act, "active %.0f/%.0f", k->active, disc_n);
        else snprintf(act, sizeof act, "active %.0f", k->active);
        sb_printf(b, "<text class=\"note\" x=\"%d\" y=\"%.1f\" dominant-baseline=\"middle\">%s%s"
                     "</text></g>\n",
                  W - mr + 8, cy, act, sel ? " ◀ e*" : "");
    }
    legend_box(b, ml, 18, "#009e73", 1, NULL,
               "candidate (clean-routed in at least half of the discovery cases)");
    legend_box(b, ml + 420, 18, "#a8b1ba", 1, NULL, "other");
    legend_box(b, ml + 500, 18, "#ffffff", 1, "stroke=\"#24292f\" stroke-width=\"2\"",
               "selected e*");
    sb_puts(b, "</svg>\n");
}

/* ---- figure 4: ROME-style layer × position heatmaps ---------------------------------------- */

/* Diverging colour for t in [-1, 1]: blue (negative) – near-white – red (positive). */
static void heat_color(double t, char *out, size_t n)
{
    static const double neg[3] = {33, 102, 172}, mid[3] = {247, 247, 247}, pos[3] = {178, 24, 43};
    if (t > 1) t = 1;
    if (t < -1) t = -1;
    const double *end = t < 0 ? neg : pos;
    double u = fabs(t);
    int c[3];
    for (int i = 0; i < 3; i++) c[i] = (int)lround(mid[i] + (end[i] - mid[i]) * u);
    snprintf(out, n, "#%02x%02x%02x", c[0], c[1], c[2]);
}

static const char *group_label(const char *g)
{
    static const char *const known[][2] = {
        {"subject_first", "subject, first"}, {"subject_middle", "subject, middle"},
        {"subject_last", "subject, last"},   {"after_first", "first after subject"},
        {"after_further", "further tokens"}, {"last", "last token"}};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (!strcmp(g, known[i][0])) return known[i][1];
    return g;
}

static void fig_heatmap(report *r, int kd, double vmax)
{
    sbuf *b = &r->out;
    static const char *const titles[ROME_KINDS] = {"Residual stream", "Attention output",
                                                   "MoE-block output"};
    uint32_t L = r->L, G = r->n_groups;
    const int ml = 120, mt = 34, cellh = 28, cb = 86;
    double cellw = fmin(54.0, 440.0 / L);
    int W = ml + (int)ceil(cellw * L) + cb, H = mt + (int)G * cellh + 46;
    char id[32], title[128];
    snprintf(id, sizeof id, "heatmap-%s", rome_kinds[kd]);
    snprintf(title, sizeof title, "%s", titles[kd]);
    if (kd && isfinite(r->rome_window))
        snprintf(title + strlen(title), sizeof title - strlen(title), " (window %.0f)",
                 r->rome_window);
    svg_open(b, id, W, H, title);
    sb_printf(b, "<text class=\"ftitle\" x=\"%d\" y=\"18\">", 8);
    sb_esc(b, title);
    sb_puts(b, "</text>\n");
    bool text = cellw >= 38;
    for (uint32_t g = 0; g < G; g++) {
        double y = mt + g * cellh;
        sb_printf(b, "<text class=\"tick\" x=\"%d\" y=\"%.1f\" text-anchor=\"end\" "
                     "dominant-baseline=\"middle\">",
                  ml - 8, y + cellh / 2.0);
        sb_esc(b, group_label(r->groups[g]));
        sb_puts(b, "</text>");
        for (uint32_t l = 0; l < L; l++) {
            double v = r->grid[kd][(size_t)g * L + l], x = ml + l * cellw;
            char col[16], num[32];
            if (drawable(v)) heat_color(v / vmax, col, sizeof col);
            else snprintf(col, sizeof col, "#d0d7de");
            sb_printf(b, "<rect class=\"cell\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%d\" "
                         "fill=\"%s\"><title>",
                      x, y, cellw, cellh, col);
            sb_esc(b, group_label(r->groups[g]));
            sb_printf(b, ", layer %u: %s</title></rect>", l, fmt_num(num, sizeof num, v, 3));
            if (text)
                sb_printf(b, "<text class=\"cellv%s\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" "
                             "dominant-baseline=\"middle\">%s</text>",
                          drawable(v) && fabs(v / vmax) > 0.55 ? " inv" : "", x + cellw / 2,
                          y + cellh / 2.0, fmt_num(num, sizeof num, v, 2));
        }
        sb_puts(b, "\n");
    }
    /* layer labels, thinned */
    uint32_t every = (uint32_t)ceil(24.0 / cellw);
    for (uint32_t l = 0; l < L; l += every ? every : 1)
        sb_printf(b, "<text class=\"tick\" x=\"%.1f\" y=\"%u\" text-anchor=\"middle\">%u</text>",
                  ml + (l + 0.5) * cellw, mt + G * cellh + 16, l);
    sb_printf(b, "<text class=\"label\" x=\"%.1f\" y=\"%u\" text-anchor=\"middle\">layer</text>\n",
              ml + cellw * L / 2, mt + G * cellh + 36);
    /* colour bar */
    double cx = ml + cellw * L + 14, ch = G * cellh;
    const int steps = 24;
    for (int i = 0; i < steps; i++) {
        char col[16];
        heat_color(1 - 2 * (i + 0.5) / steps, col, sizeof col);
        sb_printf(b, "<rect x=\"%.1f\" y=\"%.2f\" width=\"14\" height=\"%.2f\" fill=\"%s\"/>", cx,
                  mt + ch * i / steps, ch / steps + 0.5, col);
    }
    char t[32];
    sb_printf(b, "<rect class=\"frame\" x=\"%.1f\" y=\"%d\" width=\"14\" height=\"%.1f\"/>", cx, mt,
              ch);
    sb_printf(b, "<text class=\"tick\" x=\"%.1f\" y=\"%d\" dominant-baseline=\"middle\">+%s</text>",
              cx + 20, mt, fmt_num(t, sizeof t, vmax, 2));
    sb_printf(b, "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" dominant-baseline=\"middle\">0</text>",
              cx + 20, mt + ch / 2);
    sb_printf(b,
              "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" dominant-baseline=\"middle\">−%s</text>",
              cx + 20, mt + ch, fmt_num(t, sizeof t, vmax, 2));
    sb_printf(b, "<text class=\"note\" x=\"%.1f\" y=\"%u\">%s</text>\n", cx - 4,
              mt + G * cellh + 20, r->rome_prob ? "p − pnoised" : "Δ − Δnoised");
    sb_puts(b, "</svg>\n");
}

/* ---- tables ---------------------------------------------------------------------------------- */

/* One value of a settings / counts / environment object, as the file has it. */
static void value_text(sbuf *b, const cJSON *v)
{
    if (cJSON_IsString(v)) {
        sb_esc(b, v->valuestring);
    } else if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (!isfinite(d)) sb_puts(b, "n/a");
        else if (d == floor(d) && fabs(d) < 1e15) sb_printf(b, "%.0f", d);
        else sb_printf(b, "%.6g", d);
    } else if (cJSON_IsBool(v)) {
        sb_puts(b, cJSON_IsTrue(v) ? "true" : "false");
    } else if (cJSON_IsNull(v)) {
        sb_puts(b, "null");
    } else {
        char *t = cJSON_PrintUnformatted(v);
        sb_puts(b, "<code>");
        sb_esc(b, t ? t : "");
        sb_puts(b, "</code>");
        free(t);
    }
}

static void kv_table(sbuf *b, const char *id, const cJSON *obj)
{
    sb_printf(b, "<table id=\"%s\" class=\"kv\"><tbody>\n", id);
    const cJSON *v;
    cJSON_ArrayForEach(v, obj)
    {
        sb_puts(b, "<tr><th><code>");
        sb_esc(b, v->string);
        sb_puts(b, "</code></th><td>");
        value_text(b, v);
        sb_puts(b, "</td></tr>\n");
    }
    sb_puts(b, "</tbody></table>\n");
}

/* Mean, CI and p of one statistic as three cells. */
static void stat_cells(sbuf *b, const stat_ci *s, bool with_p)
{
    char m[32], lo[32], hi[32], p[32];
    sb_printf(b, "<td class=\"num\">%s</td><td class=\"num ci\">[%s, %s]</td>",
              fmt_num(m, sizeof m, s->mean, 3), fmt_num(lo, sizeof lo, s->lo, 3),
              fmt_num(hi, sizeof hi, s->hi, 3));
    if (with_p)
        sb_printf(b, "<td class=\"num\">%s</td>", isfinite(s->p) ? fmt_p(p, sizeof p, s->p) : "");
}

static void stat_row(sbuf *b, const char *cls, const char *label, const stat_ci *d,
                     const stat_ci *v)
{
    sb_printf(b, "<tr%s%s%s><th>", cls ? " class=\"" : "", cls ? cls : "", cls ? "\"" : "");
    sb_esc(b, label);
    sb_puts(b, "</th>");
    stat_cells(b, d, true);
    stat_cells(b, v, true);
    sb_puts(b, "</tr>\n");
}

static void stat_head(sbuf *b, const char *id, const char *first)
{
    sb_printf(b, "<table id=\"%s\" class=\"stats\"><thead><tr><th rowspan=\"2\">%s</th>"
                 "<th colspan=\"3\" class=\"disc\">discovery</th>"
                 "<th colspan=\"3\" class=\"val\">validation</th></tr><tr>"
                 "<th>mean</th><th>95%% CI</th><th>p</th><th>mean</th><th>95%% CI</th><th>p</th>"
                 "</tr></thead><tbody>\n",
              id, first);
}

static void sweep_table(report *r)
{
    sbuf *b = &r->out;
    stat_head(b, "sweep-table", "layer");
    for (uint32_t l = 0; l < r->L; l++) {
        char label[32];
        snprintf(label, sizeof label, "%u%s", l, l == (uint32_t)r->layer ? "  ◀ l*" : "");
        stat_row(b, l == (uint32_t)r->layer ? "sel" : NULL, label, &r->sweep[SPLIT_DISC][l],
                 &r->sweep[SPLIT_VAL][l]);
    }
    sb_puts(b, "</tbody></table>\n");
}

static void expert_table(report *r)
{
    sbuf *b = &r->out;
    const expert_split *d = &r->ex[SPLIT_DISC], *v = &r->ex[SPLIT_VAL];
    char e[128];
    stat_head(b, "expert-table", "at layer l*");
    stat_row(b, NULL, "layer patch rescue", &d->layer, &v->layer);
    snprintf(e, sizeof e, "expert %s rescue", r->expert_name);
    stat_row(b, "sel", e, &d->rescue, &v->rescue);
    stat_row(b, NULL, "specificity (e* − active-random)", &d->specificity, &v->specificity);
    stat_row(b, NULL, "control: active-random", &d->random, &v->random);
    stat_row(b, NULL, "control: gate-weight-matched", &d->matched, &v->matched);
    stat_row(b, NULL, "control: equal-norm", &d->equal, &v->equal);
    stat_row(b, NULL, "e* / layer patch (ratio of means)", &d->e_over_l, &v->e_over_l);
    stat_row(b, NULL, "specificity / layer patch", &d->s_over_l, &v->s_over_l);
    sb_puts(b, "<tr><th>rank of e* among routed experts (mean; first in)</th>");
    for (int s = 0; s < N_SPLITS; s++) {
        sb_puts(b, "<td class=\"num\">");
        sb_num(b, r->ex[s].rank_mean, 2);
        sb_puts(b, "</td><td class=\"num\">");
        sb_esc(b, r->ex[s].rank_first);
        sb_puts(b, "</td><td></td>");
    }
    sb_puts(b, "</tr>\n<tr><th>e* clean-routed in</th>");
    for (int s = 0; s < N_SPLITS; s++) {
        sb_puts(b, "<td class=\"num\" colspan=\"2\">");
        sb_esc(b, r->ex[s].clean_active);
        sb_puts(b, " cases</td><td></td>");
    }
    sb_puts(b, "</tr>\n");
    for (uint32_t i = 0; i < r->n_also; i++) {
        const also *a = &r->also[i];
        static const stat_ci none = {NAN, NAN, NAN, NAN, NAN};
        snprintf(e, sizeof e, "also forced: E%03.0f rescue", a->expert);
        stat_row(b, NULL, e, &none, &a->val.rescue);
        snprintf(e, sizeof e, "also forced: E%03.0f specificity", a->expert);
        stat_row(b, NULL, e, &none, &a->val.specificity);
    }
    sb_puts(b, "</tbody></table>\n");
}

/* Cases (from cases.jsonl) whose union coalition equals the layer patch exactly. */
static void union_check(report *r, uint32_t *same, uint32_t *total)
{
    *same = *total = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, r->cases)
    {
        const cJSON *u = cJSON_GetObjectItemCaseSensitive(c, "coalition_union");
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(c, "layer_patch_rescue");
        if (!cJSON_IsNumber(u) || !cJSON_IsNumber(l)) continue;
        (*total)++;
        *same += u->valuedouble == l->valuedouble;
    }
}

static void coalition_table(report *r)
{
    sbuf *b = &r->out;
    const expert_split *d = &r->ex[SPLIT_DISC], *v = &r->ex[SPLIT_VAL];
    stat_head(b, "coalition-table", "patch at layer l*");
    stat_row(b, NULL, "D_top: clean top-k coalition (Σ δe over clean-routed experts)", &d->top,
             &v->top);
    stat_row(b, NULL, "D_union: union coalition (clean- and noised-routed experts)", &d->uni,
             &v->uni);
    stat_row(b, NULL, "layer patch (the whole MoE-block output)", &d->layer, &v->layer);
    sb_puts(b, "</tbody></table>\n");
    if (r->cases) {
        uint32_t same, total;
        union_check(r, &same, &total);
        if (total)
            sb_printf(b, "<p class=\"note\" id=\"union-check\">D_union equals the layer patch "
                         "exactly in %u of %u cases (cases.jsonl).</p>\n",
                      same, total);
    }
}

static double case_num(const cJSON *c, const char *key)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(c, key);
    return cJSON_IsNumber(j) && isfinite(j->valuedouble) ? j->valuedouble : NAN;
}

static const char *case_str(const cJSON *c, const char *key)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(c, key);
    return cJSON_IsString(j) ? j->valuestring : NULL;
}

/* The prompt with the subject's first occurrence marked. */
static void prompt_cell(sbuf *b, const char *prompt, const char *subject)
{
    if (!prompt) return;
    const char *at = subject && *subject ? strstr(prompt, subject) : NULL;
    if (!at) {
        sb_esc(b, prompt);
        return;
    }
    sb_esc_n(b, prompt, (size_t)(at - prompt));
    sb_puts(b, "<mark>");
    sb_esc(b, subject);
    sb_puts(b, "</mark>");
    sb_esc(b, at + strlen(subject));
}

static void cases_table(report *r)
{
    sbuf *b = &r->out;
    uint32_t n = (uint32_t)cJSON_GetArraySize(r->cases), sel = (uint32_t)r->layer;
    sb_printf(b, "<details%s><summary>%u cases (cases.jsonl)</summary>\n",
              n <= 24 ? " open" : "", n);
    sb_puts(b, "<table id=\"cases-table\" class=\"cases\"><thead><tr><th>case</th><th>split</th>"
               "<th>prompt (subject marked)</th><th>true / foil</th><th>Δ clean</th>"
               "<th>Δ noised</th>");
    sb_printf(b, "<th>rescue at l* = %u</th>", sel);
    if (r->has_expert) {
        sb_puts(b, "<th>");
        sb_esc(b, r->expert_name);
        sb_puts(b, " rescue</th>");
    }
    sb_puts(b, "<th>D_top</th><th>D_union</th></tr></thead><tbody>\n");
    const cJSON *c;
    cJSON_ArrayForEach(c, r->cases)
    {
        const char *split = case_str(c, "split");
        sb_printf(b, "<tr class=\"%s\"><td class=\"num\">%.0f</td><td>",
                  split && !strcmp(split, "validation") ? "val" : "disc", case_num(c, "case_id"));
        sb_esc(b, split ? split : "");
        sb_puts(b, "</td><td>");
        prompt_cell(b, case_str(c, "prompt"), case_str(c, "subject"));
        sb_puts(b, "</td><td>");
        sb_esc(b, case_str(c, "target_true"));
        sb_puts(b, " / ");
        sb_esc(b, case_str(c, "target_new"));
        sb_puts(b, "</td><td class=\"num\">");
        sb_num(b, case_num(c, "delta_clean"), 3);
        sb_puts(b, "</td><td class=\"num\">");
        sb_num(b, case_num(c, "delta_noised_mean"), 3);
        sb_puts(b, "</td><td class=\"num\">");
        const cJSON *lr = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(c, "layer_rescue"),
                                             (int)sel);
        sb_num(b, cJSON_IsNumber(lr) ? lr->valuedouble : NAN, 3);
        sb_puts(b, "</td>");
        if (r->has_expert) {
            /* 0 where e* is not clean-routed, as the protocol counts it */
            double er = 0;
            bool routed = false;
            const cJSON *e;
            cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(c, "experts"))
                if (case_num(e, "expert") == r->expert) {
                    er = case_num(e, "rescue");
                    routed = true;
                }
            sb_printf(b, "<td class=\"num%s\">", routed ? "" : " dim");
            sb_num(b, er, 3);
            sb_puts(b, routed ? "</td>" : " <small>(not routed)</small></td>");
        }
        sb_puts(b, "<td class=\"num\">");
        sb_num(b, case_num(c, "coalition_top"), 3);
        sb_puts(b, "</td><td class=\"num\">");
        sb_num(b, case_num(c, "coalition_union"), 3);
        sb_puts(b, "</td></tr>\n");
    }
    sb_puts(b, "</tbody></table></details>\n");
}

/* ---- the page -------------------------------------------------------------------------------- */

static const char page_css[] =
    ":root{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--card:#f6f8fa;--disc:#0072b2;"
    "--val:#d55e00}\n"
    "*{box-sizing:border-box}\n"
    "body{margin:0;color:var(--fg);background:#fff;font:15px/1.5 system-ui,-apple-system,"
    "\"Segoe UI\",Roboto,\"Helvetica Neue\",Arial,\"Noto Sans\",\"DejaVu Sans\",sans-serif}\n"
    "main{max-width:1060px;margin:0 auto;padding:28px 28px 60px}\n"
    "h1{font-size:28px;margin:0 0 2px}h2{font-size:21px;margin:40px 0 8px;padding-bottom:4px;"
    "border-bottom:1px solid var(--line)}h3{font-size:16px;margin:22px 0 6px}\n"
    "p{margin:6px 0}.sub,.note,figcaption{color:var(--muted)}.note{font-size:13px}\n"
    "code{font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,\"DejaVu Sans Mono\","
    "monospace;overflow-wrap:anywhere}\n"
    ".cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(230px,1fr));gap:12px;"
    "margin:18px 0}\n"
    ".card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:10px 14px}"
    "\n.card .k{font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.05em}\n"
    ".card .v{font-size:22px;font-weight:650;line-height:1.3}.card .d{font-size:13px;"
    "color:var(--muted)}\n"
    ".warn{background:#fff8c5;border:1px solid #d4a72c;border-radius:6px;padding:6px 12px;"
    "margin:10px 0}\n"
    "figure{margin:14px 0 20px}figcaption{font-size:13px;max-width:820px}\n"
    "svg.fig{display:block;max-width:100%;height:auto;margin-bottom:6px}\n"
    ".fig text{font-size:12px;fill:#1f2328}.fig .tick{fill:#424a53}.fig .strong{font-weight:650}"
    "\n.fig .label{font-size:12.5px;fill:#424a53}.fig .note{font-size:11.5px;fill:#59636e}\n"
    ".fig .ftitle{font-size:13.5px;font-weight:600}\n"
    ".fig .grid{stroke:#eef1f4}.fig .zero{stroke:#8c959f;stroke-width:1.2}"
    ".fig .axis{stroke:#8c959f}\n"
    ".fig .band{fill-opacity:.14;stroke:none}.fig .line{fill:none;stroke-width:2}"
    ".fig .ci{fill:none;stroke-width:1.4}\n"
    ".fig .pt{stroke:#fff;stroke-width:1.2}.fig .sel-band{fill:#fff3bf;fill-opacity:.8}"
    ".fig .sel-line{stroke:#bf8700;stroke-width:1.5;stroke-dasharray:5 4}\n"
    ".fig .sel-text{font-weight:650;fill:#7d4e00}.fig .sel-tick{font-weight:700;fill:#7d4e00}"
    ".fig .ctl-band{fill:#f6f8fa}\n"
    ".fig .bar{stroke:none}.fig .bar-main{stroke:#24292f;stroke-width:1}"
    ".fig .cell{stroke:#fff;stroke-width:1}.fig .cellv{font-size:11px}"
    ".fig .cellv.inv{fill:#fff}.fig .frame{fill:none;stroke:#8c959f}\n"
    "table{border-collapse:collapse;font-size:13.5px;margin:8px 0 14px;"
    "font-variant-numeric:tabular-nums}\n"
    "th,td{border-bottom:1px solid var(--line);padding:4px 10px;text-align:left;"
    "vertical-align:top}\n"
    "thead th{background:var(--card);font-weight:600}th.disc{color:var(--disc)}"
    "th.val{color:var(--val)}\n"
    "td.num{text-align:right;white-space:nowrap}td.ci{color:var(--muted)}td.dim{color:#8c959f}\n"
    "tr.sel{background:#fff8c5}table.kv th{font-weight:normal;white-space:nowrap}\n"
    "table.cases td{font-size:12.5px}mark{background:#fff3bf;padding:0 1px}\n"
    ".cols{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:0 28px}\n"
    ".heatmaps{display:flex;flex-wrap:wrap;gap:6px 22px;align-items:flex-start}\n"
    "details{margin:8px 0}summary{cursor:pointer;color:#0969da}\n"
    "footer{margin-top:48px;color:var(--muted);font-size:12.5px}\n"
    "@media print{main{max-width:none}details{display:block}}\n";

/* A headline card: label, value, detail (all escaped). */
static void card(sbuf *b, const char *id, const char *k, const char *v, const char *d)
{
    sb_printf(b, "<div class=\"card\" id=\"%s\"><div class=\"k\">", id);
    sb_esc(b, k);
    sb_puts(b, "</div><div class=\"v\">");
    sb_esc(b, v);
    sb_puts(b, "</div><div class=\"d\">");
    sb_esc(b, d);
    sb_puts(b, "</div></div>\n");
}

static const char *stat_text(char *buf, size_t n, const char *label, const stat_ci *s)
{
    char m[32], lo[32], hi[32];
    snprintf(buf, n, "%s %s [%s, %s]", label, fmt_num(m, sizeof m, s->mean, 3),
             fmt_num(lo, sizeof lo, s->lo, 3), fmt_num(hi, sizeof hi, s->hi, 3));
    return buf;
}

static const char *setting_str(const report *r, const char *key)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(r->settings, key);
    return cJSON_IsString(j) ? j->valuestring : NULL;
}

static double setting_num(const cJSON *obj, const char *key)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNumber(j) ? j->valuedouble : NAN;
}

static void page_header(report *r)
{
    sbuf *b = &r->out;
    const char *model = setting_str(r, "model"), *arch = setting_str(r, "arch");
    const char *base = model ? strrchr(model, '/') : NULL;
    base = base ? base + 1 : model;
    sb_puts(b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
               "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
               "style-src 'unsafe-inline'\">\n"
               "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
               "<meta name=\"generator\" content=\"expertrace report\">\n<title>expertrace report");
    if (base) {
        sb_puts(b, " — ");
        sb_esc(b, base);
    }
    sb_printf(b, "</title>\n<style>\n%s</style></head>\n<body><main>\n", page_css);
    sb_puts(b, "<header><h1>expertrace report</h1><p class=\"sub\" id=\"model-line\">");
    sb_esc(b, model ? model : "(model not recorded)");
    if (arch) {
        sb_puts(b, " · ");
        sb_esc(b, arch);
    }
    sb_printf(b, " · %u layers", r->L);
    double ne = setting_num(r->settings, "n_expert"), k = setting_num(r->settings, "n_expert_used");
    if (isfinite(ne) && ne > 0) sb_printf(b, " · %.0f experts", ne);
    if (isfinite(ne) && ne > 0 && isfinite(k)) sb_printf(b, ", top-%.0f", k);
    const char *facts = setting_str(r, "facts");
    if (facts) {
        sb_puts(b, " · facts ");
        sb_esc(b, facts);
    }
    sb_puts(b, "</p></header>\n");
}

static void headline(report *r)
{
    sbuf *b = &r->out;
    uint32_t sel = (uint32_t)r->layer;
    char v[160], d[320], t1[96], t2[96];
    sb_puts(b, "<section class=\"cards\" id=\"headline\">\n");
    snprintf(v, sizeof v, "L%u%s", sel, r->layer_forced ? " (forced)" : "");
    snprintf(d, sizeof d, "%s; %s",
             stat_text(t1, sizeof t1, "discovery", &r->sweep[SPLIT_DISC][sel]),
             stat_text(t2, sizeof t2, "validation", &r->sweep[SPLIT_VAL][sel]));
    card(b, "card-layer", "selected layer l*", v, d);
    if (r->has_expert) {
        snprintf(v, sizeof v, "%s%s", r->expert_name, r->expert_forced ? " (forced)" : "");
        snprintf(d, sizeof d, "%s; %s",
                 stat_text(t1, sizeof t1, "validation rescue", &r->ex[SPLIT_VAL].rescue),
                 stat_text(t2, sizeof t2, "specificity", &r->ex[SPLIT_VAL].specificity));
        card(b, "card-expert", "selected expert e*", v, d);
    }
    double sel_n = setting_num(r->counts, "selected"), rec = setting_num(r->counts, "records");
    double nd = setting_num(r->counts, "discovery"), nv = setting_num(r->counts, "validation");
    if (isfinite(sel_n) && isfinite(nd) && isfinite(nv) && isfinite(rec)) {
        snprintf(v, sizeof v, "%.0f selected", sel_n);
        snprintf(d, sizeof d, "%.0f discovery / %.0f validation, of %.0f records", nd, nv, rec);
        card(b, "card-cases", "cases", v, d);
    }
    const char *dev = NULL, *backend = NULL;
    if (r->environment) {
        const cJSON *j = cJSON_GetObjectItemCaseSensitive(r->environment, "device");
        dev = cJSON_IsString(j) ? j->valuestring : NULL;
        j = cJSON_GetObjectItemCaseSensitive(r->environment, "backend");
        backend = cJSON_IsString(j) ? j->valuestring : NULL;
    }
    snprintf(d, sizeof d, "backend %s", backend ? backend : "not recorded");
    card(b, "card-device", "device", dev && *dev ? dev : "not recorded", d);
    sb_puts(b, "</section>\n");
    if (r->fallback)
        sb_puts(b, "<p class=\"warn\">No expert was clean-routed in at least half of the discovery "
                   "cases: e* is the best expert routed in any discovery case (recurrence "
                   "fallback).</p>\n");
}

static void section_sweep(report *r)
{
    sbuf *b = &r->out;
    char t[64];
    sb_puts(b, "<section id=\"sweep\"><h2>1. Layer sweep</h2>\n<p>For each layer, the noised run's "
               "MoE-block output at the final position is replaced by the clean one; the rescue is "
               "Δ<sub>patched</sub> − Δ<sub>noised</sub> with Δ = logit(true) − logit(foil). "
               "The layer l* is the argmax of the mean rescue on the discovery cases and is "
               "reported on the validation cases.</p>\n<figure>");
    fig_layer_sweep(r);
    sb_printf(b, "<figcaption>Mean rescue per layer with 95%% percentile-bootstrap intervals "
                 "(bands and whiskers). l* = %.0f",
              r->layer);
    if (isfinite(r->runner_up))
        sb_printf(b, "; discovery runner-up: layer %.0f (%s)", r->runner_up,
                  fmt_num(t, sizeof t, r->runner_up_rescue, 3));
    if (isfinite(r->top_val))
        sb_printf(b, "; best layer on validation: %.0f (%s)", r->top_val,
                  fmt_num(t, sizeof t, r->top_val_rescue, 3));
    sb_puts(b, ". p: two-sided sign-flip test of mean rescue = 0.</figcaption></figure>\n");
    sb_printf(b, "<details%s><summary>values per layer</summary>\n", r->L <= 12 ? " open" : "");
    sweep_table(r);
    sb_puts(b, "</details></section>\n");
}

static void section_expert(report *r)
{
    sbuf *b = &r->out;
    sb_puts(b, "<section id=\"experts\"><h2>2. Expert pass at l*</h2>\n");
    if (!r->has_expert) {
        sb_puts(b, "<p>No expert pass in this summary (a dense model, or no routed experts).</p>"
                   "</section>\n");
        return;
    }
    sb_printf(b, "<p>At layer %.0f each clean-routed expert's update δ<sub>e</sub> = "
                 "c<sub>e</sub>(clean) − c<sub>e</sub>(noised) is added to the noised output. "
                 "The selected expert e* = <strong>",
              r->expert_layer);
    sb_esc(b, r->expert_name);
    sb_puts(b, "</strong>");
    if (r->expert_forced) sb_puts(b, " (forced)");
    else if (isfinite(r->candidates))
        sb_printf(b, " (best of %.0f recurrence-first candidates on discovery)", r->candidates);
    sb_puts(b, " is compared with the layer patch and three controls: other clean-routed experts "
               "of the same case (active-random), the routed expert with the closest gate weight "
               "(gate-weight-matched) and a random direction of the same norm (equal-norm).</p>\n"
               "<figure>");
    fig_expert_bars(r);
    sb_puts(b, "<figcaption>Mean rescue over all cases of each split (0 where e* is not "
               "clean-routed), with 95% bootstrap intervals.</figcaption></figure>\n");
    expert_table(r);
    if (r->n_rank) {
        sb_puts(b, "<h3>Discovery ranking of experts at l*</h3>\n<figure>");
        fig_expert_ranking(r);
        sb_puts(b, "<figcaption>Recurrence-first selection: candidates (clean-routed in at least "
                   "half of the discovery cases) first, each by its mean rescue over all discovery "
                   "cases.</figcaption></figure>\n");
    }
    sb_puts(b, "</section>\n");
}

static void section_coalitions(report *r)
{
    sbuf *b = &r->out;
    if (!r->has_expert) return;
    sb_puts(b, "<section id=\"coalitions\"><h2>3. Coalitions</h2>\n<p>The summed updates of the "
               "clean-routed experts (D_top), and of the union of clean- and noised-routed experts "
               "(D_union, with δ<sub>e</sub> = −c<sub>e</sub>(noised) for noised-only experts), "
               "against the whole layer patch. p: two-sided sign-flip test.</p>\n");
    coalition_table(r);
    sb_puts(b, "</section>\n");
}

static void section_rome(report *r)
{
    sbuf *b = &r->out;
    if (!r->has_rome) return;
    double vmax = 0;
    for (int kd = 0; kd < ROME_KINDS; kd++)
        for (size_t i = 0; i < (size_t)r->n_groups * r->L; i++)
            if (drawable(r->grid[kd][i])) vmax = fmax(vmax, fabs(r->grid[kd][i]));
    if (vmax == 0) vmax = 1;
    sb_puts(b, "<section id=\"rome\"><h2>4. ROME-style traces</h2>\n<p>Restoring the clean "
               "residual stream, attention output or MoE-block output at one (token, layer) of the "
               "noised run");
    if (isfinite(r->rome_cases))
        sb_printf(b, ", averaged over the first %.0f cases", r->rome_cases);
    if (r->rome_prob)
        sb_puts(b, " on six token groups; the value is p(true) − p<sub>noised</sub>(true) (ROME's "
                   "indirect effect, probabilities).</p>\n");
    else
        sb_puts(b, " on six token groups; the value is Δ − Δ<sub>noised</sub> (logits).</p>\n");
    sb_puts(b, "<figure><div class=\"heatmaps\">\n");
    for (int kd = 0; kd < ROME_KINDS; kd++) fig_heatmap(r, kd, vmax);
    sb_puts(b, "</div><figcaption>Residual stream: the clean residual entering one layer, "
               "restored at one position. Attention and MoE-block output: the clean outputs of a "
               "window of layers centred on the layer");
    if (isfinite(r->rome_window)) sb_printf(b, " (%.0f layers)", r->rome_window);
    sb_puts(b, ", restored at one position. One colour scale for the three maps; hover a cell for "
               "its value.</figcaption></figure>\n</section>\n");
}

static void section_cases(report *r)
{
    sbuf *b = &r->out;
    sb_puts(b, "<section id=\"cases\"><h2>5. Cases</h2>\n");
    kv_table(b, "counts-table", r->counts);
    if (r->cases) cases_table(r);
    else sb_puts(b, "<p class=\"note\">No cases.jsonl next to the summary: per-case details "
                    "omitted.</p>\n");
    int nrej = r->rejected ? cJSON_GetArraySize(r->rejected) : 0;
    if (nrej > 0) {
        sb_printf(b, "<details><summary>%d rejected records</summary><table id=\"rejected-table\">"
                     "<thead><tr><th>record</th><th>case</th><th>reason</th></tr></thead><tbody>\n",
                  nrej);
        const cJSON *e;
        cJSON_ArrayForEach(e, r->rejected)
        {
            sb_puts(b, "<tr><td class=\"num\">");
            value_text(b, cJSON_GetObjectItemCaseSensitive(e, "record"));
            sb_puts(b, "</td><td class=\"num\">");
            value_text(b, cJSON_GetObjectItemCaseSensitive(e, "case_id"));
            sb_puts(b, "</td><td>");
            value_text(b, cJSON_GetObjectItemCaseSensitive(e, "reason"));
            sb_puts(b, "</td></tr>\n");
        }
        sb_puts(b, "</tbody></table></details>\n");
    }
    if (r->split) {
        sb_puts(b, "<details><summary>case ids of the split</summary>\n");
        kv_table(b, "split-table", r->split);
        sb_puts(b, "</details>\n");
    }
    sb_puts(b, "</section>\n");
}

static void section_settings(report *r)
{
    sbuf *b = &r->out;
    sb_puts(b, "<section id=\"settings\"><h2>6. Settings and environment</h2>\n<div class=\"cols\">"
               "<div><h3>Settings</h3>\n");
    kv_table(b, "settings-table", r->settings);
    sb_puts(b, "</div><div><h3>Environment</h3>\n");
    if (r->environment) kv_table(b, "environment-table", r->environment);
    else sb_puts(b, "<p id=\"environment-table\">not recorded in this summary</p>\n");
    sb_puts(b, "</div></div></section>\n");
}

static void report_free(report *r)
{
    for (int s = 0; s < N_SPLITS; s++) free(r->sweep[s]);
    for (int k = 0; k < ROME_KINDS; k++) free(r->grid[k]);
    free(r->rank);
    free(r->also);
}

xt_status xt_report_html(const xt_report_input *in, char **html, xt_error *err)
{
    *html = NULL;
    report r = {.rd = {.err = err}};
    r.summary_path = in->summary_path ? in->summary_path : "summary.json";
    r.cases_path = in->cases_path ? in->cases_path : "cases.jsonl";
    read_summary(&r, in->summary, in->cases);
    if (!r.rd.failed && !r.out.oom) {
        page_header(&r);
        headline(&r);
        section_sweep(&r);
        section_expert(&r);
        section_coalitions(&r);
        section_rome(&r);
        section_cases(&r);
        section_settings(&r);
        sb_puts(&r.out, "<footer>Written by <code>expertrace report</code> from <code>");
        sb_esc(&r.out, r.summary_path);
        sb_puts(&r.out, "</code>. Self-contained: no scripts, fonts or images are loaded."
                        "</footer>\n</main></body></html>\n");
    }
    report_free(&r);
    if (r.rd.failed) {
        free(r.out.p);
        return err ? err->status : XT_ERR_FORMAT;
    }
    if (r.out.oom) {
        free(r.out.p);
        return xt_error_set(err, XT_ERR_NO_MEMORY, "report: out of host memory");
    }
    *html = r.out.p;
    return XT_OK;
}

/* ---- files ----------------------------------------------------------------------------------- */

/* Line and column of byte `at` of text, for parse errors. */
static void line_col(const char *text, const char *at, unsigned *line, unsigned *col)
{
    *line = 1;
    *col = 1;
    for (const char *c = text; c < at && *c; c++) {
        if (*c == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

xt_status xt_report_load(const char *dir, cJSON **summary, cJSON **cases, xt_error *err)
{
    *summary = *cases = NULL;
    char path[4096];
    char *text;
    size_t len;
    snprintf(path, sizeof path, "%s/summary.json", dir);
    xt_status s = xt_read_file(path, true, &text, &len, err);
    if (s) return s;
    if (!text)
        return xt_error_set(err, XT_ERR_IO,
                            "%s: no such file (is '%s' a directory written by 'expertrace trace'?)",
                            path, dir);
    if (strlen(text) != len) {
        free(text);
        return xt_error_set(err, XT_ERR_FORMAT, "%s: not a JSON text (NUL byte)", path);
    }
    const char *end = NULL;
    *summary = cJSON_ParseWithOpts(text, &end, true);
    if (!*summary) {
        unsigned line, col;
        line_col(text, end ? end : text, &line, &col);
        free(text);
        return xt_error_set(err, XT_ERR_FORMAT, "%s: not valid JSON (line %u, column %u)", path,
                            line, col);
    }
    free(text);
    snprintf(path, sizeof path, "%s/cases.jsonl", dir);
    s = xt_read_file(path, true, &text, &len, err);
    if (s) goto fail;
    if (!text) return XT_OK;
    *cases = cJSON_CreateArray();
    unsigned line = 0;
    for (char *p = text; *cases && p < text + len;) {
        char *nl = memchr(p, '\n', (size_t)(text + len - p));
        char *e = nl ? nl : text + len;
        line++;
        *e = 0;
        const char *q = p;
        while (*q == ' ' || *q == '\t' || *q == '\r') q++;
        if (*q) {
            cJSON *c = cJSON_ParseWithOpts(p, &end, true);
            if (!c || !cJSON_IsObject(c)) {
                cJSON_Delete(c);
                s = xt_error_set(err, XT_ERR_FORMAT, "%s: line %u: %s", path, line,
                                 c ? "not a JSON object" : "not valid JSON");
                goto fail;
            }
            cJSON_AddItemToArray(*cases, c);
        }
        p = e + 1;
    }
    free(text);
    if (!*cases) {
        cJSON_Delete(*summary);
        *summary = NULL;
        return xt_error_set(err, XT_ERR_NO_MEMORY, "%s: out of host memory", path);
    }
    return XT_OK;
fail:
    free(text);
    cJSON_Delete(*summary);
    cJSON_Delete(*cases);
    *summary = *cases = NULL;
    return s;
}

xt_status xt_report_write(const char *dir, const char *out_path, size_t *bytes, xt_error *err)
{
    cJSON *summary, *cases;
    xt_status s = xt_report_load(dir, &summary, &cases, err);
    if (s) return s;
    char sp[4096], cp[4096];
    snprintf(sp, sizeof sp, "%s/summary.json", dir);
    snprintf(cp, sizeof cp, "%s/cases.jsonl", dir);
    char *html = NULL;
    s = xt_report_html(&(xt_report_input){.summary = summary, .summary_path = sp, .cases = cases,
                                          .cases_path = cp},
                       &html, err);
    cJSON_Delete(summary);
    cJSON_Delete(cases);
    if (s) return s;
    size_t n = strlen(html);
    bool to_stdout = !strcmp(out_path, "-");
    FILE *f = to_stdout ? stdout : fopen(out_path, "wb");
    if (!f) {
        s = xt_error_set(err, XT_ERR_IO, "%s: cannot write: %s", out_path, strerror(errno));
    } else {
        bool ok = fwrite(html, 1, n, f) == n;
        ok = (to_stdout ? fflush(f) == 0 : fclose(f) == 0) && ok;
        if (!ok) s = xt_error_set(err, XT_ERR_IO, "%s: write failed", out_path);
    }
    free(html);
    if (!s && bytes) *bytes = n;
    return s;
}
