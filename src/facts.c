/* Fact-record loader (facts.h): CounterFact JSON/JSONL and known_1000, through cJSON.
 *
 * Both layouts become one cJSON array of records first (a JSONL file's lines are parsed one by one
 * and appended, remembering each record's line), so the schema checks run once over either. The
 * text is copied and NUL-terminated before cJSON sees it: the caller's buffer need not be, and
 * the parser then cannot read past it whatever it does with the length.
 *
 * A record is checked field by field; the first problem becomes its skip reason and the record is
 * dropped. Duplicate case_ids are found afterwards by sorting (the first occurrence in the file
 * stays). Nothing in a record is fatal; only a file that is not a list of records, or yields no
 * valid one, fails.
 */
#include "facts.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cJSON.h"
#include "util.h"

#define MAX_CASE_ID 2147483647.0 /* 2^31 - 1 */
#define REASON_BYTES 320

/* ---- small helpers --------------------------------------------------------------------------- */

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

static const char *type_name(const cJSON *v)
{
    if (cJSON_IsNull(v)) return "null";
    if (cJSON_IsBool(v)) return "bool";
    if (cJSON_IsNumber(v)) return "number";
    if (cJSON_IsString(v)) return "string";
    if (cJSON_IsArray(v)) return "array";
    if (cJSON_IsObject(v)) return "object";
    return "invalid value";
}

static size_t count_placeholders(const char *s)
{
    size_t n = 0;
    for (const char *p = s; (p = strstr(p, "{}")) != NULL; p += 2) n++;
    return n;
}

/* 1-based line and column of byte offset `at` in text. */
static void line_col(const char *text, size_t at, unsigned long *line, unsigned long *col)
{
    unsigned long l = 1, c = 1;
    for (size_t i = 0; i < at; i++) {
        if (text[i] == '\n') {
            l++;
            c = 1;
        } else {
            c++;
        }
    }
    *line = l;
    *col = c;
}

static int is_json_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* ---- field checks: each returns 0, or -1 with the reason in r -------------------------------- */

#define OUT_OF_MEMORY (-2) /* a check that allocates can also fail this way */

typedef struct reason {
    char text[REASON_BYTES];
} reason;

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 2, 3)))
#endif
static int fail(reason *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->text, sizeof r->text, fmt, ap);
    va_end(ap);
    return -1;
}

/* obj[key] as an object; *out NULL when absent and optional. */
static int get_object(const cJSON *obj, const char *key, const char *path, int required,
                      const cJSON **out, reason *r)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = NULL;
    if (!v) return required ? fail(r, "%s: missing", path) : 0;
    if (!cJSON_IsObject(v)) return fail(r, "%s: expected an object, got %s", path, type_name(v));
    *out = v;
    return 0;
}

static int get_string(const cJSON *obj, const char *key, const char *path, int required,
                      const char **out, reason *r)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = NULL;
    if (!v) return required ? fail(r, "%s: missing", path) : 0;
    if (!cJSON_IsString(v) || !v->valuestring)
        return fail(r, "%s: expected a string, got %s", path, type_name(v));
    *out = v->valuestring;
    return 0;
}

static int get_nonempty_string(const cJSON *obj, const char *key, const char *path,
                               const char **out, reason *r)
{
    if (get_string(obj, key, path, 1, out, r)) return -1;
    if (!**out) return fail(r, "%s: empty", path);
    return 0;
}

/* An integer in [lo, hi]; JSON has one number type, so 3.0 counts and 3.5 does not. */
static int get_int(const cJSON *obj, const char *key, const char *path, int required, double lo,
                   double hi, int64_t *out, reason *r)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = 0;
    if (!v) return required ? fail(r, "%s: missing", path) : 0;
    if (!cJSON_IsNumber(v)) return fail(r, "%s: expected an integer, got %s", path, type_name(v));
    double d = v->valuedouble;
    if (!isfinite(d) || d != floor(d))
        return fail(r, "%s: expected an integer, got %.17g", path, d);
    if (d < lo || d > hi) return fail(r, "%s: %.17g is outside %.0f..%.0f", path, d, lo, hi);
    *out = (int64_t)d;
    return 0;
}

static int check_string_array(const cJSON *obj, const char *key, reason *r)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return 0;
    if (!cJSON_IsArray(v)) return fail(r, "%s: expected an array of strings, got %s", key,
                                       type_name(v));
    unsigned long i = 0;
    for (const cJSON *e = v->child; e; e = e->next, i++)
        if (!cJSON_IsString(e))
            return fail(r, "%s[%lu]: expected a string, got %s", key, i, type_name(e));
    return 0;
}

static int check_template(const char *tmpl, const char *path, reason *r)
{
    size_t k = count_placeholders(tmpl);
    if (k != 1) return fail(r, "%s: has %zu \"{}\" (expected exactly one)", path, k);
    return 0;
}

/* ---- records --------------------------------------------------------------------------------- */

typedef enum kind { KIND_UNKNOWN, KIND_COUNTERFACT, KIND_KNOWN } kind;

static kind record_kind(const cJSON *rec)
{
    if (!cJSON_IsObject(rec)) return KIND_UNKNOWN;
    if (cJSON_GetObjectItemCaseSensitive(rec, "requested_rewrite") ||
        cJSON_GetObjectItemCaseSensitive(rec, "case_id"))
        return KIND_COUNTERFACT;
    if (cJSON_GetObjectItemCaseSensitive(rec, "known_id")) return KIND_KNOWN;
    return KIND_UNKNOWN;
}

/* A valid record's fields: views into the cJSON tree, copied by add_fact; only a known record's
 * template, cut from its prompt, is allocated here. */
typedef struct view {
    int64_t case_id;
    const char *template_text; /* CounterFact: requested_rewrite.prompt; known: template_owned */
    char *template_owned;      /* known: malloc'd; the caller frees what add_fact did not take */
    const char *subject, *target_true, *target_foil, *relation_id;
} view;

static int check_counterfact(const cJSON *rec, view *o, reason *r)
{
    const cJSON *rw, *tn, *tt;
    const char *id;
    int64_t pararel;
    if (get_int(rec, "case_id", "case_id", 1, 0, MAX_CASE_ID, &o->case_id, r)) return -1;
    if (get_int(rec, "pararel_idx", "pararel_idx", 0, -9007199254740992.0, 9007199254740992.0,
                &pararel, r))
        return -1;
    if (get_object(rec, "requested_rewrite", "requested_rewrite", 1, &rw, r)) return -1;
    if (get_string(rw, "prompt", "requested_rewrite.prompt", 1, &o->template_text, r) ||
        check_template(o->template_text, "requested_rewrite.prompt", r))
        return -1;
    if (get_string(rw, "relation_id", "requested_rewrite.relation_id", 1, &o->relation_id, r))
        return -1;
    if (get_nonempty_string(rw, "subject", "requested_rewrite.subject", &o->subject, r)) return -1;
    if (get_object(rw, "target_new", "requested_rewrite.target_new", 1, &tn, r) ||
        get_nonempty_string(tn, "str", "requested_rewrite.target_new.str", &o->target_foil, r) ||
        get_string(tn, "id", "requested_rewrite.target_new.id", 0, &id, r))
        return -1;
    if (get_object(rw, "target_true", "requested_rewrite.target_true", 1, &tt, r) ||
        get_nonempty_string(tt, "str", "requested_rewrite.target_true.str", &o->target_true, r) ||
        get_string(tt, "id", "requested_rewrite.target_true.id", 0, &id, r))
        return -1;
    static const char *const lists[] = {"paraphrase_prompts", "neighborhood_prompts",
                                        "attribute_prompts", "generation_prompts"};
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++)
        if (check_string_array(rec, lists[i], r)) return -1;
    return 0;
}

static int check_known(const cJSON *rec, view *o, reason *r)
{
    const char *unused, *prompt;
    if (get_int(rec, "known_id", "known_id", 1, 0, MAX_CASE_ID, &o->case_id, r)) return -1;
    if (get_nonempty_string(rec, "subject", "subject", &o->subject, r)) return -1;
    if (get_nonempty_string(rec, "attribute", "attribute", &o->target_true, r)) return -1;
    if (get_string(rec, "template", "template", 0, &unused, r)) return -1;
    if (get_string(rec, "prediction", "prediction", 0, &unused, r)) return -1;
    if (get_string(rec, "relation_id", "relation_id", 1, &o->relation_id, r)) return -1;
    if (get_string(rec, "prompt", "prompt", 1, &prompt, r)) return -1;
    const char *at = strstr(prompt, o->subject);
    if (!at) return fail(r, "prompt: does not contain the subject");
    /* The template is the prompt with its first occurrence of the subject (as ROME's
     * find_token_range takes it) replaced by "{}". A "{}" already in the prompt, or one formed
     * across the seams, would make the placeholder ambiguous. */
    size_t before = (size_t)(at - prompt), slen = strlen(o->subject);
    size_t after = strlen(at + slen);
    char *t = malloc(before + 2 + after + 1);
    if (!t) return OUT_OF_MEMORY;
    memcpy(t, prompt, before);
    memcpy(t + before, "{}", 2);
    memcpy(t + before + 2, at + slen, after + 1);
    size_t k = count_placeholders(t);
    if (k != 1) {
        free(t);
        return fail(r, "prompt: has %zu \"{}\" once the subject is replaced (expected exactly "
                       "one)", k);
    }
    o->template_owned = t;
    o->template_text = t;
    o->target_foil = NULL;
    return 0;
}

/* ---- the record list ------------------------------------------------------------------------- */

typedef struct builder {
    xt_facts *f;
    uint32_t cap_v, cap_skipped;
} builder;

static void free_fact(xt_fact *x)
{
    free(x->prompt_template);
    free(x->subject);
    free(x->target_true);
    free(x->target_foil);
    free(x->relation_id);
}

/* Appends "record I[ (line L)]: <reason>" to skipped; 0 or OUT_OF_MEMORY. */
static int add_skip(builder *b, uint32_t index, unsigned long line, const char *why)
{
    xt_facts *f = b->f;
    if (f->n_skipped == b->cap_skipped) {
        uint32_t cap = b->cap_skipped ? b->cap_skipped * 2 : 16;
        xt_fact_skip *p = realloc(f->skipped, (size_t)cap * sizeof *p);
        if (!p) return OUT_OF_MEMORY;
        f->skipped = p;
        b->cap_skipped = cap;
    }
    char text[REASON_BYTES + 64];
    if (line)
        snprintf(text, sizeof text, "record %u (line %lu): %s", index, line, why);
    else
        snprintf(text, sizeof text, "record %u: %s", index, why);
    char *s = dup_str(text);
    if (!s) return OUT_OF_MEMORY;
    f->skipped[f->n_skipped].index = index;
    f->skipped[f->n_skipped].reason = s;
    f->n_skipped++;
    return 0;
}

static int add_fact(builder *b, uint32_t index, view *o)
{
    xt_facts *f = b->f;
    if (f->n == b->cap_v) {
        uint32_t cap = b->cap_v ? b->cap_v * 2 : 64;
        xt_fact *p = realloc(f->v, (size_t)cap * sizeof *p);
        if (!p) return OUT_OF_MEMORY;
        f->v = p;
        b->cap_v = cap;
    }
    xt_fact x = {.case_id = o->case_id, .index = index};
    x.prompt_template = o->template_owned ? o->template_owned : dup_str(o->template_text);
    o->template_owned = NULL; /* now the fact's */
    x.subject = dup_str(o->subject);
    x.target_true = dup_str(o->target_true);
    x.target_foil = o->target_foil ? dup_str(o->target_foil) : NULL;
    x.relation_id = dup_str(o->relation_id);
    if (!x.prompt_template || !x.subject || !x.target_true || !x.relation_id ||
        (o->target_foil && !x.target_foil)) {
        free_fact(&x);
        return OUT_OF_MEMORY;
    }
    f->v[f->n++] = x;
    return 0;
}

static int cmp_case_id(const void *pa, const void *pb)
{
    const xt_fact *a = *(const xt_fact *const *)pa, *b = *(const xt_fact *const *)pb;
    if (a->case_id != b->case_id) return a->case_id < b->case_id ? -1 : 1;
    return a->index < b->index ? -1 : a->index > b->index;
}

static int cmp_skip_index(const void *pa, const void *pb)
{
    const xt_fact_skip *a = pa, *b = pb;
    return a->index < b->index ? -1 : a->index > b->index;
}

/* Drops v[i] where drop[i], keeping order. */
static void compact(xt_facts *f, const unsigned char *drop)
{
    uint32_t w = 0;
    for (uint32_t i = 0; i < f->n; i++) {
        if (drop[i])
            free_fact(&f->v[i]);
        else
            f->v[w++] = f->v[i];
    }
    f->n = w;
}

/* Skips every record whose case_id an earlier record already has. lines[index] as in convert. */
static int drop_duplicates(builder *b, const unsigned long *lines)
{
    xt_facts *f = b->f;
    if (f->n < 2) return 0;
    xt_fact **by_id = malloc((size_t)f->n * sizeof *by_id);
    unsigned char *drop = calloc(f->n, 1);
    int rc = 0;
    if (!by_id || !drop) {
        rc = OUT_OF_MEMORY;
        goto done;
    }
    for (uint32_t i = 0; i < f->n; i++) by_id[i] = &f->v[i];
    qsort(by_id, f->n, sizeof *by_id, cmp_case_id);
    for (uint32_t i = 1; i < f->n && !rc; i++) {
        const xt_fact *first = by_id[i - 1];
        if (by_id[i]->case_id != first->case_id) continue;
        uint32_t j = i;
        while (j < f->n && by_id[j]->case_id == first->case_id) {
            reason r;
            fail(&r, "case_id: %lld repeats record %u's", (long long)first->case_id,
                 first->index);
            drop[by_id[j] - f->v] = 1;
            rc = add_skip(b, by_id[j]->index, lines ? lines[by_id[j]->index] : 0, r.text);
            if (rc) break;
            j++;
        }
        i = j;
    }
    if (!rc) compact(f, drop);
done:
    free(by_id);
    free(drop);
    return rc;
}

/* The records of arr (in order) into b->f; lines[i] is record i's line for JSONL, else NULL. */
static xt_status convert(builder *b, const cJSON *arr, const unsigned long *lines, xt_error *err)
{
    xt_facts *f = b->f;
    if (!arr->child) return xt_error_set(err, XT_ERR_FORMAT, "%s: no records", f->name);
    kind k = KIND_UNKNOWN;
    for (const cJSON *rec = arr->child; rec && k == KIND_UNKNOWN; rec = rec->next)
        k = record_kind(rec);
    if (k == KIND_UNKNOWN)
        return xt_error_set(err, XT_ERR_FORMAT,
                            "%s: no record has \"case_id\" or \"requested_rewrite\" (CounterFact) "
                            "or \"known_id\" (known_1000)",
                            f->name);
    f->format = k == KIND_COUNTERFACT ? (lines ? "counterfact-jsonl" : "counterfact")
                                      : (lines ? "known-jsonl" : "known");
    uint32_t index = 0;
    for (const cJSON *rec = arr->child; rec; rec = rec->next, index++) {
        if (index == UINT32_MAX)
            return xt_error_set(err, XT_ERR_RANGE, "%s: more than %u records", f->name,
                                UINT32_MAX - 1);
        view o = {0};
        reason r = {{0}};
        int rc;
        if (!cJSON_IsObject(rec))
            rc = fail(&r, "expected an object, got %s", type_name(rec));
        else
            rc = k == KIND_COUNTERFACT ? check_counterfact(rec, &o, &r) : check_known(rec, &o, &r);
        if (rc == 0) rc = add_fact(b, index, &o);
        else if (rc != OUT_OF_MEMORY) rc = add_skip(b, index, lines ? lines[index] : 0, r.text);
        free(o.template_owned);
        if (rc == OUT_OF_MEMORY)
            return xt_error_set(err, XT_ERR_NO_MEMORY, "%s: record %u", f->name, index);
    }
    f->n_records = index;
    if (drop_duplicates(b, lines))
        return xt_error_set(err, XT_ERR_NO_MEMORY, "%s: duplicate check", f->name);
    if (f->n_skipped) qsort(f->skipped, f->n_skipped, sizeof *f->skipped, cmp_skip_index);
    if (f->n == 0) {
        if (f->n_records == 0)
            return xt_error_set(err, XT_ERR_FORMAT, "%s: no records", f->name);
        return xt_error_set(err, XT_ERR_FORMAT, "%s: none of its %u records is valid (first: %s)",
                            f->name, f->n_records, f->skipped[0].reason);
    }
    return XT_OK;
}

/* ---- the two layouts ------------------------------------------------------------------------- */

static xt_status not_json(const char *name, const char *text, size_t at, const char *what,
                          xt_error *err)
{
    unsigned long line, col;
    line_col(text, at, &line, &col);
    return xt_error_set(err, XT_ERR_FORMAT, "%s: line %lu, column %lu: %s", name, line, col, what);
}

/* text[len] holds one JSON value, an array of records. */
static xt_status parse_array(builder *b, const char *text, size_t len, xt_error *err)
{
    const char *name = b->f->name;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) {
        size_t at = end && end >= text && end <= text + len ? (size_t)(end - text) : 0;
        return not_json(name, text, at, "not valid JSON (or truncated)", err);
    }
    size_t at = (size_t)(end - text);
    while (at < len && is_json_space(text[at])) at++;
    xt_status s;
    if (at < len)
        s = not_json(name, text, at, "unexpected text after the top-level value", err);
    else if (!cJSON_IsArray(root))
        s = xt_error_set(err, XT_ERR_FORMAT,
                         "%s: top level is %s %s; expected an array of records or one record per "
                         "line (JSONL)",
                         name, cJSON_IsArray(root) || cJSON_IsObject(root) ? "an" : "a",
                         type_name(root));
    else
        s = convert(b, root, NULL, err);
    cJSON_Delete(root);
    return s;
}

/* text[len]: one record per line, blank lines allowed. A line that is not one JSON value fails
 * the file (a record cannot be told apart from the next once the syntax is broken). */
static xt_status parse_lines(builder *b, const char *text, size_t len, xt_error *err)
{
    const char *name = b->f->name;
    cJSON *arr = cJSON_CreateArray();
    unsigned long *lines = NULL;
    size_t n_lines = 0, cap_lines = 0;
    xt_status s = XT_OK;
    if (!arr) return xt_error_set(err, XT_ERR_NO_MEMORY, "%s", name);
    unsigned long line = 1;
    for (size_t pos = 0; pos < len; line++) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t stop = nl ? (size_t)(nl - text) : len;
        size_t a = pos;
        while (a < stop && is_json_space(text[a])) a++;
        if (a < stop) {
            const char *end = NULL;
            cJSON *rec = cJSON_ParseWithLengthOpts(text + a, stop - a, &end, 0);
            if (!rec) {
                /* A pretty-printed single object reads as a broken first line: say so. */
                cJSON *whole = line == 1 || n_lines == 0 ? cJSON_ParseWithLength(text, len) : NULL;
                if (whole && cJSON_IsObject(whole))
                    s = xt_error_set(err, XT_ERR_FORMAT,
                                     "%s: top level is one object over several lines; expected "
                                     "an array of records or one record per line (JSONL)",
                                     name);
                else
                    s = xt_error_set(err, XT_ERR_FORMAT,
                                     "%s: line %lu: not valid JSON (JSONL: one record per line)",
                                     name, line);
                cJSON_Delete(whole);
                goto done;
            }
            size_t at = (size_t)(end - text);
            while (at < stop && is_json_space(text[at])) at++;
            if (at < stop) {
                cJSON_Delete(rec);
                s = xt_error_set(err, XT_ERR_FORMAT,
                                 "%s: line %lu, column %lu: unexpected text after the record "
                                 "(JSONL: one record per line)",
                                 name, line, (unsigned long)(at - pos + 1));
                goto done;
            }
            if (n_lines == cap_lines) {
                size_t cap = cap_lines ? cap_lines * 2 : 64;
                unsigned long *p = realloc(lines, cap * sizeof *p);
                if (!p) {
                    cJSON_Delete(rec);
                    s = xt_error_set(err, XT_ERR_NO_MEMORY, "%s: line %lu", name, line);
                    goto done;
                }
                lines = p;
                cap_lines = cap;
            }
            lines[n_lines++] = line;
            if (!cJSON_AddItemToArray(arr, rec)) {
                cJSON_Delete(rec);
                s = xt_error_set(err, XT_ERR_NO_MEMORY, "%s: line %lu", name, line);
                goto done;
            }
        }
        pos = stop + 1;
    }
    s = convert(b, arr, lines, err);
done:
    cJSON_Delete(arr);
    free(lines);
    return s;
}

/* ---- public ---------------------------------------------------------------------------------- */

void xt_facts_free(xt_facts *f)
{
    if (!f) return;
    for (uint32_t i = 0; i < f->n; i++) free_fact(&f->v[i]);
    for (uint32_t i = 0; i < f->n_skipped; i++) free(f->skipped[i].reason);
    free(f->v);
    free(f->skipped);
    free(f->name);
    memset(f, 0, sizeof *f);
}

xt_status xt_facts_parse(const char *text, size_t len, const char *name, xt_facts *out,
                         xt_error *err)
{
    memset(out, 0, sizeof *out);
    if (!name) name = "<facts>";
    out->name = dup_str(name);
    char *copy = len < SIZE_MAX ? malloc(len + 1) : NULL;
    if (!out->name || !copy) {
        free(copy);
        xt_facts_free(out);
        return xt_error_set(err, XT_ERR_NO_MEMORY, "%s: %zu bytes", name, len);
    }
    if (len) memcpy(copy, text, len);
    copy[len] = '\0';

    builder b = {.f = out};
    /* A UTF-8 byte-order mark is skipped; leading whitespace stays, so line numbers hold. */
    size_t bom = len >= 3 && !memcmp(copy, "\xEF\xBB\xBF", 3) ? 3 : 0, at = bom;
    while (at < len && is_json_space(copy[at])) at++;
    /* cJSON reads a NUL byte as whitespace, and one inside a string would cut it short: JSON
     * text has none, so one means a binary or corrupt file. */
    const char *nul = memchr(copy, '\0', len);
    xt_status s;
    if (nul)
        s = not_json(name, copy, (size_t)(nul - copy), "NUL byte (not a JSON text file)", err);
    else if (at == len)
        s = xt_error_set(err, XT_ERR_FORMAT,
                         "%s: empty; expected an array of records or one record per line (JSONL)",
                         name);
    else if (copy[at] == '{')
        s = parse_lines(&b, copy + bom, len - bom, err);
    else
        s = parse_array(&b, copy + bom, len - bom, err);
    free(copy);
    if (s) xt_facts_free(out);
    return s;
}

xt_status xt_facts_load(const char *path, xt_facts *out, xt_error *err)
{
    memset(out, 0, sizeof *out);
    char *buf;
    size_t len;
    xt_status s = xt_read_file(path, false, &buf, &len, err);
    if (s) return s;
    s = xt_facts_parse(buf, len, path, out, err);
    free(buf);
    return s;
}

/* ---- foils for known records ----------------------------------------------------------------- */

static uint32_t drop_count(const unsigned char *drop, uint32_t n)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++) k += drop[i];
    return k;
}

static int cmp_relation(const void *pa, const void *pb)
{
    const xt_fact *a = *(const xt_fact *const *)pa, *b = *(const xt_fact *const *)pb;
    int c = strcmp(a->relation_id, b->relation_id);
    if (c) return c;
    return a->index < b->index ? -1 : a->index > b->index;
}

xt_status xt_facts_assign_foils(xt_facts *f, xt_error *err)
{
    const char *name = f->name ? f->name : "<facts>";
    uint32_t n = f->n;
    if (n == 0) return xt_error_set(err, XT_ERR_FORMAT, "%s: no records", name);
    /* Records grouped by relation, each group in file order; within a group g[0..m-1], the
     * partner of g[p] is the first g[q], q after p cyclically, whose target differs. Walking the
     * group twice over from the end gives every p its partner in one pass:
     * next[t] = t+1 if target(t+1) != target(t) else next[t+1], for t < 2m-1 (positions mod m). */
    xt_fact **g = malloc((size_t)n * sizeof *g);
    uint64_t *next = malloc((size_t)n * 2 * sizeof *next);
    unsigned char *drop = calloc(n, 1);
    builder b = {.f = f, .cap_v = n, .cap_skipped = f->n_skipped};
    xt_status s = XT_OK;
    if (!g || !next || !drop) {
        s = xt_error_set(err, XT_ERR_NO_MEMORY, "%s: foils for %u records", name, n);
        goto done;
    }
    for (uint32_t i = 0; i < n; i++) g[i] = &f->v[i];
    qsort(g, n, sizeof *g, cmp_relation);
    for (uint32_t lo = 0, hi; lo < n; lo = hi) {
        for (hi = lo + 1; hi < n && !strcmp(g[hi]->relation_id, g[lo]->relation_id); hi++) {}
        uint64_t m = hi - lo;
        xt_fact **grp = g + lo;
        const uint64_t none = UINT64_MAX;
        next[2 * m - 1] = none;
        for (uint64_t t = 2 * m - 1; t-- > 0;) {
            const char *here = grp[t % m]->target_true, *after = grp[(t + 1) % m]->target_true;
            next[t] = strcmp(here, after) ? t + 1 : next[t + 1];
        }
        for (uint64_t p = 0; p < m; p++) {
            xt_fact *x = grp[p];
            if (x->target_foil) continue;
            if (next[p] != none && next[p] < p + m) {
                x->target_foil = dup_str(grp[next[p] % m]->target_true);
                if (!x->target_foil) {
                    s = xt_error_set(err, XT_ERR_NO_MEMORY, "%s: foils", name);
                    goto done;
                }
                continue;
            }
            reason r;
            fail(&r, "target_foil: no other record with relation_id \"%.64s\" has a different "
                     "target", x->relation_id);
            /* The skip list is the file's; JSONL line numbers are not kept past loading. */
            if (add_skip(&b, x->index, 0, r.text)) {
                s = xt_error_set(err, XT_ERR_NO_MEMORY, "%s: foils", name);
                goto done;
            }
            drop[x - f->v] = 1;
        }
    }
    if (drop_count(drop, n) == n)
        s = xt_error_set(err, XT_ERR_FORMAT,
                         "%s: no record can have a foil: every relation has a single target",
                         name);
done:
    /* Also on failure: what moved to skipped leaves v, so the two lists never share a record. */
    if (drop) compact(f, drop);
    if (f->n_skipped) qsort(f->skipped, f->n_skipped, sizeof *f->skipped, cmp_skip_index);
    free(g);
    free(next);
    free(drop);
    return s;
}

/* ---- prompts --------------------------------------------------------------------------------- */

char *xt_fact_prompt(const xt_fact *f, size_t *subject_offset)
{
    const char *hole = strstr(f->prompt_template, "{}");
    if (!hole) return NULL;
    size_t before = (size_t)(hole - f->prompt_template);
    size_t slen = strlen(f->subject), after = strlen(hole + 2);
    char *p = malloc(before + slen + after + 1);
    if (!p) return NULL;
    memcpy(p, f->prompt_template, before);
    memcpy(p + before, f->subject, slen);
    memcpy(p + before + slen, hole + 2, after + 1);
    if (subject_offset) *subject_offset = before;
    return p;
}
