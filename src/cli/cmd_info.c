/* expertrace info MODEL.gguf [--json] [--help]
 *
 * Describes a GGUF file without loading its weights: version, alignment, architecture and name;
 * every hyper-parameter under "<arch>."; a tokenizer summary (model, pre-tokenizer, vocabulary
 * size, merges, bos/eos) that never dumps the big arrays; the other general.* and remaining keys;
 * the tensor table; bytes and tensor count per type; the total. Arrays print as [type × count].
 *
 * --json prints the same as one object: file, version, alignment, file_size, data_offset,
 * architecture, name, metadata (key -> scalar, or {"type": element type, "count": n} for arrays;
 * integers exact, non-finite floats null), tokenizer, tensors [{name, type, shape (ne order),
 * offset (from the data section), bytes (null for unknown types)}], tensor_count, bytes_per_type,
 * tensors_per_type, total_bytes. Strings are made valid UTF-8 (bad bytes and NULs become U+FFFD).
 */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cJSON.h"
#include "cli.h"
#include "expertrace/gguf.h"
#include "expertrace/model.h"
#include "expertrace/quant.h"

#define STRING_SHOWN_BYTES 120 /* longer string values are cut in the text output */

static void print_help(void)
{
    printf("usage: expertrace info MODEL.gguf [--json]\n\n"
           "Describes a GGUF model file: GGUF version, alignment, architecture, hyper-parameters,\n"
           "tokenizer summary, other metadata, the tensor table and bytes per tensor type.\n"
           "  --json   print the same as one JSON object\n"
           "  --help   this text\n");
}

/* ---- text output ---------------------------------------------------------------------------- */

/* Writes bytes for a terminal: control bytes, quotes and backslashes escaped; at most max bytes. */
static void put_escaped(const unsigned char *s, size_t len, size_t max, bool quote)
{
    if (quote) putchar('"');
    size_t n = len < max ? len : max;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c == '\\' || (quote && c == '"')) printf("\\%c", c);
        else if (c == '\n') fputs("\\n", stdout);
        else if (c == '\t') fputs("\\t", stdout);
        else if (c < 0x20 || c == 0x7f) printf("\\x%02x", c);
        else putchar(c);
    }
    if (quote) putchar('"');
    if (n < len) printf("... (%zu bytes)", len);
}

static void put_name(const char *s)
{
    put_escaped((const unsigned char *)s, strlen(s), 200, false);
}

static void print_value(const xt_gguf_value *v)
{
    switch (v->type) {
    case XT_GGUF_U8: printf("%u", (unsigned)v->u8); break;
    case XT_GGUF_I8: printf("%d", (int)v->i8); break;
    case XT_GGUF_U16: printf("%u", (unsigned)v->u16); break;
    case XT_GGUF_I16: printf("%d", (int)v->i16); break;
    case XT_GGUF_U32: printf("%" PRIu32, v->u32); break;
    case XT_GGUF_I32: printf("%" PRId32, v->i32); break;
    case XT_GGUF_U64: printf("%" PRIu64, v->u64); break;
    case XT_GGUF_I64: printf("%" PRId64, v->i64); break;
    case XT_GGUF_F32: printf("%.9g", (double)v->f32); break;
    case XT_GGUF_F64: printf("%.17g", v->f64); break;
    case XT_GGUF_BOOL: fputs(v->b ? "true" : "false", stdout); break;
    case XT_GGUF_STRING: put_escaped(v->str.bytes, v->str.len, STRING_SHOWN_BYTES, true); break;
    case XT_GGUF_ARRAY:
        printf("[%s \xc3\x97 %" PRIu64 "]", xt_gguf_type_name(v->arr.type), v->arr.count);
        break;
    default: fputs("?", stdout); break;
    }
}

static void print_kv(const xt_gguf *g, uint64_t i, int width)
{
    xt_gguf_value v;
    if (xt_gguf_kv_value(g, i, &v, NULL)) return;
    const char *key = xt_gguf_kv_key(g, i);
    printf("  ");
    put_name(key);
    int pad = width - (int)strlen(key);
    printf("%*s  ", pad > 0 ? pad : 0, "");
    print_value(&v);
    if (v.type != XT_GGUF_ARRAY) printf("  (%s)", xt_gguf_type_name(v.type));
    putchar('\n');
}

static bool has_prefix(const char *s, const char *prefix)
{
    return prefix[0] && !strncmp(s, prefix, strlen(prefix));
}

/* Keys the tokenizer summary shows as its own lines. */
static const char *const tokenizer_summary_keys[] = {
    "tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens",
    "tokenizer.ggml.merges", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
};

static bool is_summary_key(const char *key)
{
    for (size_t i = 0; i < sizeof tokenizer_summary_keys / sizeof tokenizer_summary_keys[0]; i++)
        if (!strcmp(key, tokenizer_summary_keys[i])) return true;
    return false;
}

enum group { G_HEADER, G_ARCH, G_TOKENIZER, G_GENERAL, G_OTHER };

/* Which section a key is listed in. general.architecture/name/alignment are in the header. */
static enum group group_of(const char *key, const char *arch_prefix)
{
    if (!strcmp(key, "general.architecture") || !strcmp(key, "general.name") ||
        !strcmp(key, "general.alignment"))
        return G_HEADER;
    if (has_prefix(key, arch_prefix)) return G_ARCH;
    if (has_prefix(key, "tokenizer.")) return G_TOKENIZER;
    if (has_prefix(key, "general.")) return G_GENERAL;
    return G_OTHER;
}

static void print_group(const xt_gguf *g, enum group which, const char *arch_prefix,
                        bool skip_summary, const char *title)
{
    int width = 0, n = 0;
    for (uint64_t i = 0; i < xt_gguf_kv_count(g); i++) {
        const char *key = xt_gguf_kv_key(g, i);
        if (group_of(key, arch_prefix) != which || (skip_summary && is_summary_key(key))) continue;
        int len = (int)strlen(key);
        if (len > width) width = len < 48 ? len : 48;
        n++;
    }
    if (!n) return;
    if (title) printf("\n%s\n", title);
    for (uint64_t i = 0; i < xt_gguf_kv_count(g); i++) {
        const char *key = xt_gguf_kv_key(g, i);
        if (group_of(key, arch_prefix) != which || (skip_summary && is_summary_key(key))) continue;
        print_kv(g, i, width);
    }
}

/* A summary line: the key's value, an array's count, or "(absent)". */
static void print_summary_line(const xt_gguf *g, const char *label, const char *key, bool count)
{
    xt_gguf_value v;
    printf("  %-14s", label);
    if (xt_gguf_get(g, key, &v, NULL)) {
        printf("(absent)\n");
        return;
    }
    if (count && v.type == XT_GGUF_ARRAY) printf("%" PRIu64, v.arr.count);
    else print_value(&v);
    putchar('\n');
}

/* ---- per-type totals ------------------------------------------------------------------------ */

typedef struct type_total {
    uint32_t type;
    const char *name;
    uint64_t tensors, bytes;
} type_total;

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Totals per ggml type number, ascending; *n_out entries. NULL (with *n_out 0) when empty or out
 * of memory (the caller tells which by the tensor count). */
static type_total *totals_per_type(const xt_gguf *g, size_t *n_out)
{
    size_t n = (size_t)xt_gguf_tensor_count(g);
    *n_out = 0;
    if (!n) return NULL;
    uint32_t *types = malloc(n * sizeof *types);
    type_total *out = calloc(n, sizeof *out);
    if (!types || !out) {
        free(types);
        free(out);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) types[i] = xt_gguf_tensor_at(g, i)->type;
    qsort(types, n, sizeof *types, cmp_u32);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!k || out[k - 1].type != types[i]) out[k++].type = types[i];
    free(types);
    for (size_t i = 0; i < n; i++) {
        const xt_gguf_tensor *t = xt_gguf_tensor_at(g, i);
        size_t lo = 0, hi = k; /* binary search: hostile files may hold many distinct types */
        while (hi - lo > 1) {
            size_t mid = (lo + hi) / 2;
            if (out[mid].type <= t->type) lo = mid;
            else hi = mid;
        }
        out[lo].name = t->type_name;
        out[lo].tensors++;
        out[lo].bytes += t->nbytes; /* <= file size: cannot overflow */
    }
    *n_out = k;
    return out;
}

static void format_shape(char *dst, size_t n, const xt_gguf_tensor *t)
{
    size_t o = 0;
    dst[0] = '\0';
    for (uint32_t d = 0; d < t->n_dims && o < n; d++) {
        int w = snprintf(dst + o, n - o, "%s%" PRId64, d ? ", " : "{", t->ne[d]);
        if (w < 0) break;
        o += (size_t)w;
    }
    if (o < n) snprintf(dst + o, n - o, "}");
}

static void print_bytes(uint64_t b)
{
    printf("%" PRIu64 " bytes", b);
    if (b >= 1024u * 1024u) printf(" (%.2f MiB)", (double)b / (1024.0 * 1024.0));
    else if (b >= 1024u) printf(" (%.2f KiB)", (double)b / 1024.0);
}

static int print_text(const xt_gguf *g, const char *arch_prefix)
{
    xt_gguf_value v;
    printf("file          ");
    put_name(xt_gguf_path(g));
    printf("\ngguf version  %" PRIu32 "\nalignment     %" PRIu32 "\nfile size     ",
           xt_gguf_version(g), xt_gguf_alignment(g));
    print_bytes(xt_gguf_file_size(g));
    printf(", tensor data from offset %" PRIu64 "\n", xt_gguf_data_offset(g));
    printf("architecture  ");
    if (xt_gguf_get(g, "general.architecture", &v, NULL)) printf("(none)");
    else print_value(&v);
    printf("\nname          ");
    if (xt_gguf_get(g, "general.name", &v, NULL)) printf("(none)");
    else print_value(&v);
    putchar('\n');

    if (arch_prefix[0]) {
        char title[128];
        snprintf(title, sizeof title, "hyper-parameters (%.100s*)", arch_prefix);
        print_group(g, G_ARCH, arch_prefix, false, title);
    }

    bool any_tok = false;
    for (uint64_t i = 0; i < xt_gguf_kv_count(g); i++)
        if (group_of(xt_gguf_kv_key(g, i), arch_prefix) == G_TOKENIZER) any_tok = true;
    if (any_tok) {
        printf("\ntokenizer\n");
        print_summary_line(g, "model", "tokenizer.ggml.model", false);
        print_summary_line(g, "pre", "tokenizer.ggml.pre", false);
        print_summary_line(g, "vocab size", "tokenizer.ggml.tokens", true);
        print_summary_line(g, "merges", "tokenizer.ggml.merges", true);
        print_summary_line(g, "bos id", "tokenizer.ggml.bos_token_id", false);
        print_summary_line(g, "eos id", "tokenizer.ggml.eos_token_id", false);
        print_group(g, G_TOKENIZER, arch_prefix, true, NULL);
    }
    print_group(g, G_GENERAL, arch_prefix, false, "general");
    print_group(g, G_OTHER, arch_prefix, false, "other metadata");

    uint64_t n = xt_gguf_tensor_count(g), total = 0;
    int name_w = 4, type_w = 4, shape_w = 5;
    for (uint64_t i = 0; i < n; i++) {
        const xt_gguf_tensor *t = xt_gguf_tensor_at(g, i);
        char shape[128];
        format_shape(shape, sizeof shape, t);
        if ((int)strlen(t->name) > name_w) name_w = (int)strlen(t->name);
        if ((int)strlen(t->type_name) > type_w) type_w = (int)strlen(t->type_name);
        if ((int)strlen(shape) > shape_w) shape_w = (int)strlen(shape);
        total += t->nbytes;
    }
    printf("\ntensors (%" PRIu64 ")\n", n);
    if (n) {
        printf("  %-*s  %-*s  %-*s  %12s\n", name_w, "name", type_w, "type", shape_w, "shape",
               "bytes");
        for (uint64_t i = 0; i < n; i++) {
            const xt_gguf_tensor *t = xt_gguf_tensor_at(g, i);
            char shape[128];
            format_shape(shape, sizeof shape, t);
            printf("  ");
            put_name(t->name);
            printf("%*s  %-*s  %-*s  ", name_w - (int)strlen(t->name), "", type_w, t->type_name,
                   shape_w, shape);
            if (t->type_known) printf("%12" PRIu64 "\n", t->nbytes);
            else printf("%12s\n", "?");
        }
    }
    size_t nt;
    type_total *tt = totals_per_type(g, &nt);
    if (n && !tt) {
        fprintf(stderr, "expertrace: out of memory\n");
        return XT_EXIT_INPUT;
    }
    if (nt) {
        printf("\nbytes per type\n");
        for (size_t i = 0; i < nt; i++) {
            printf("  %-*s  %5" PRIu64 " tensor%s  ", type_w, tt[i].name, tt[i].tensors,
                   tt[i].tensors == 1 ? " " : "s");
            if (strncmp(tt[i].name, "unknown", 7)) print_bytes(tt[i].bytes);
            else printf("? (unknown type)");
            putchar('\n');
        }
    }
    free(tt);
    printf("\ntotal         %" PRIu64 " tensor%s, ", n, n == 1 ? "" : "s");
    print_bytes(total);
    putchar('\n');
    return XT_EXIT_OK;
}

/* ---- memory plan ---------------------------------------------------------------------------- */

/* The plan is made for lavapipe's 128 MiB storage-binding limit, the smallest we meet
 * (DESIGN.md §7); `run` checks the real device's limits and heaps before uploading. */
#define PLAN_BINDING_LIMIT (128ull << 20)

/* Opens path as a model and plans its weights; false (and a message in err) when the file is
 * not a model we can run. */
static bool memory_plan(const char *path, xt_mem_plan *plan, xt_error *err)
{
    xt_model *m = NULL;
    bool ok = xt_model_open(path, &m, err) == XT_OK &&
              xt_model_plan(m, PLAN_BINDING_LIMIT, plan, err) == XT_OK;
    xt_model_close(m);
    return ok;
}

static void print_memory_plan(const char *path)
{
    xt_mem_plan plan;
    xt_error err = {0};
    printf("\nmemory plan (device weights, bindings of at most 128 MiB)\n");
    if (!memory_plan(path, &plan, &err)) {
        printf("  not available: %s\n", err.msg);
        return;
    }
    for (uint32_t i = 0; i < plan.n_types; i++) {
        printf("  %-8s %5u tensor%s  ", xt_type_name(plan.per_type[i].type),
               plan.per_type[i].tensors, plan.per_type[i].tensors == 1 ? " " : "s");
        print_bytes(plan.per_type[i].bytes);
        putchar('\n');
    }
    printf("  weights   ");
    print_bytes(plan.weight_bytes);
    printf("\n  largest binding ");
    print_bytes(plan.largest_binding);
    printf(" (%s); %u tensor%s split into chunks\n", plan.largest_binding_tensor,
           plan.chunked_tensors, plan.chunked_tensors == 1 ? "" : "s");
}

/* ---- JSON output ---------------------------------------------------------------------------- */

/* A NUL-terminated, valid UTF-8 copy of s (bad sequences and NUL bytes become U+FFFD). */
static char *utf8_copy(const unsigned char *s, size_t len)
{
    if (len > (SIZE_MAX - 1) / 3) return NULL;
    char *out = malloc(len * 3 + 1);
    if (!out) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        unsigned char c = s[i];
        size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        bool ok = n > 0 && c != 0 && i + n <= len;
        uint32_t cp = n == 1 ? c : n == 2 ? (c & 0x1fu) : n == 3 ? (c & 0x0fu) : (c & 0x07u);
        for (size_t k = 1; ok && k < n; k++) {
            if ((s[i + k] & 0xc0) != 0x80) ok = false;
            cp = cp << 6 | (s[i + k] & 0x3fu);
        }
        /* no overlong forms, surrogates or code points past U+10FFFF */
        if (ok && ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
                   (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff))
            ok = false;
        if (ok) {
            memcpy(out + o, s + i, n);
            o += n;
            i += n;
        } else {
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
            i += 1;
        }
    }
    out[o] = '\0';
    return out;
}

static cJSON *json_string(const unsigned char *s, size_t len)
{
    char *c = utf8_copy(s, len);
    if (!c) return NULL;
    cJSON *j = cJSON_CreateString(c);
    free(c);
    return j;
}

static cJSON *json_cstring(const char *s)
{
    return json_string((const unsigned char *)s, strlen(s));
}

/* Exact numbers as raw JSON text (cJSON numbers are doubles). */
static cJSON *json_u64(uint64_t u)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRIu64, u);
    return cJSON_CreateRaw(buf);
}

static cJSON *json_i64(int64_t i)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRId64, i);
    return cJSON_CreateRaw(buf);
}

static cJSON *json_float(double d, int digits)
{
    if (!isfinite(d)) return cJSON_CreateNull();
    char buf[48];
    snprintf(buf, sizeof buf, "%.*g", digits, d);
    return cJSON_CreateRaw(buf);
}

static cJSON *json_value(const xt_gguf_value *v)
{
    switch (v->type) {
    case XT_GGUF_U8: return json_u64(v->u8);
    case XT_GGUF_I8: return json_i64(v->i8);
    case XT_GGUF_U16: return json_u64(v->u16);
    case XT_GGUF_I16: return json_i64(v->i16);
    case XT_GGUF_U32: return json_u64(v->u32);
    case XT_GGUF_I32: return json_i64(v->i32);
    case XT_GGUF_U64: return json_u64(v->u64);
    case XT_GGUF_I64: return json_i64(v->i64);
    case XT_GGUF_F32: return json_float(v->f32, 9);
    case XT_GGUF_F64: return json_float(v->f64, 17);
    case XT_GGUF_BOOL: return cJSON_CreateBool(v->b);
    case XT_GGUF_STRING: return json_string(v->str.bytes, v->str.len);
    case XT_GGUF_ARRAY: {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "type", xt_gguf_type_name(v->arr.type));
        cJSON_AddItemToObject(o, "count", json_u64(v->arr.count));
        return o;
    }
    default: return cJSON_CreateNull();
    }
}

/* key's value, an array's count, or null when absent. */
static cJSON *json_lookup(const xt_gguf *g, const char *key, bool count)
{
    xt_gguf_value v;
    if (xt_gguf_get(g, key, &v, NULL)) return cJSON_CreateNull();
    if (count && v.type == XT_GGUF_ARRAY) return json_u64(v.arr.count);
    if (v.type == XT_GGUF_ARRAY) return cJSON_CreateNull();
    return json_value(&v);
}

static int print_json(const xt_gguf *g)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "file", json_cstring(xt_gguf_path(g)));
    cJSON_AddItemToObject(root, "version", json_u64(xt_gguf_version(g)));
    cJSON_AddItemToObject(root, "alignment", json_u64(xt_gguf_alignment(g)));
    cJSON_AddItemToObject(root, "file_size", json_u64(xt_gguf_file_size(g)));
    cJSON_AddItemToObject(root, "data_offset", json_u64(xt_gguf_data_offset(g)));
    cJSON_AddItemToObject(root, "architecture", json_lookup(g, "general.architecture", false));
    cJSON_AddItemToObject(root, "name", json_lookup(g, "general.name", false));

    cJSON *meta = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "metadata", meta);
    for (uint64_t i = 0; i < xt_gguf_kv_count(g); i++) {
        xt_gguf_value v;
        if (xt_gguf_kv_value(g, i, &v, NULL)) continue;
        char *key = utf8_copy((const unsigned char *)xt_gguf_kv_key(g, i),
                              strlen(xt_gguf_kv_key(g, i)));
        if (key) cJSON_AddItemToObject(meta, key, json_value(&v));
        free(key);
    }

    cJSON *tok = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "tokenizer", tok);
    cJSON_AddItemToObject(tok, "model", json_lookup(g, "tokenizer.ggml.model", false));
    cJSON_AddItemToObject(tok, "pre", json_lookup(g, "tokenizer.ggml.pre", false));
    cJSON_AddItemToObject(tok, "vocab_size", json_lookup(g, "tokenizer.ggml.tokens", true));
    cJSON_AddItemToObject(tok, "merges", json_lookup(g, "tokenizer.ggml.merges", true));
    cJSON_AddItemToObject(tok, "bos_token_id",
                          json_lookup(g, "tokenizer.ggml.bos_token_id", false));
    cJSON_AddItemToObject(tok, "eos_token_id",
                          json_lookup(g, "tokenizer.ggml.eos_token_id", false));

    cJSON *tensors = cJSON_CreateArray();
    cJSON_AddItemToObject(root, "tensors", tensors);
    uint64_t total = 0;
    for (uint64_t i = 0; i < xt_gguf_tensor_count(g); i++) {
        const xt_gguf_tensor *t = xt_gguf_tensor_at(g, i);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToArray(tensors, o);
        cJSON_AddItemToObject(o, "name", json_cstring(t->name));
        cJSON_AddStringToObject(o, "type", t->type_name);
        cJSON *shape = cJSON_CreateArray();
        for (uint32_t d = 0; d < t->n_dims; d++) cJSON_AddItemToArray(shape, json_i64(t->ne[d]));
        cJSON_AddItemToObject(o, "shape", shape);
        cJSON_AddItemToObject(o, "offset", json_u64(t->offset));
        cJSON_AddItemToObject(o, "bytes", t->type_known ? json_u64(t->nbytes) : cJSON_CreateNull());
        total += t->nbytes;
    }
    cJSON_AddItemToObject(root, "tensor_count", json_u64(xt_gguf_tensor_count(g)));
    size_t nt;
    type_total *tt = totals_per_type(g, &nt);
    cJSON *bpt = cJSON_CreateObject(), *tpt = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "bytes_per_type", bpt);
    cJSON_AddItemToObject(root, "tensors_per_type", tpt);
    for (size_t i = 0; i < nt; i++) {
        bool known = strncmp(tt[i].name, "unknown", 7) != 0;
        cJSON_AddItemToObject(bpt, tt[i].name, known ? json_u64(tt[i].bytes) : cJSON_CreateNull());
        cJSON_AddItemToObject(tpt, tt[i].name, json_u64(tt[i].tensors));
    }
    cJSON_AddItemToObject(root, "total_bytes", json_u64(total));
    xt_mem_plan plan;
    xt_error perr = {0};
    if (memory_plan(xt_gguf_path(g), &plan, &perr)) {
        cJSON *mp = cJSON_CreateObject(), *per = cJSON_CreateObject();
        cJSON_AddItemToObject(mp, "binding_limit", json_u64(plan.binding_limit));
        for (uint32_t i = 0; i < plan.n_types; i++)
            cJSON_AddItemToObject(per, xt_type_name(plan.per_type[i].type),
                                  json_u64(plan.per_type[i].bytes));
        cJSON_AddItemToObject(mp, "bytes_per_type", per);
        cJSON_AddItemToObject(mp, "weight_bytes", json_u64(plan.weight_bytes));
        cJSON_AddItemToObject(mp, "largest_binding", json_u64(plan.largest_binding));
        cJSON_AddItemToObject(mp, "largest_binding_tensor",
                              json_cstring(plan.largest_binding_tensor));
        cJSON_AddItemToObject(mp, "chunked_tensors", json_u64(plan.chunked_tensors));
        cJSON_AddItemToObject(root, "memory_plan", mp);
    } else {
        cJSON_AddItemToObject(root, "memory_plan", cJSON_CreateNull());
        cJSON_AddItemToObject(root, "memory_plan_error", json_cstring(perr.msg));
    }
    char *text = (xt_gguf_tensor_count(g) && !tt) ? NULL : cJSON_Print(root);
    free(tt);
    cJSON_Delete(root);
    if (!text) {
        fprintf(stderr, "expertrace: out of memory formatting JSON\n");
        return XT_EXIT_INPUT;
    }
    puts(text);
    cJSON_free(text);
    return XT_EXIT_OK;
}

int xt_cmd_info(int argc, char **argv)
{
    const char *path = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            print_help();
            return XT_EXIT_OK;
        } else if (!strcmp(argv[i], "--json")) {
            json = true;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return xt_cli_usage_error("info", "unknown option '%s'", argv[i]);
        } else if (!path) {
            path = argv[i];
        } else {
            return xt_cli_usage_error("info", "one MODEL.gguf only ('%s' and '%s' given)", path,
                                      argv[i]);
        }
    }
    if (!path) return xt_cli_usage_error("info", "missing MODEL.gguf");

    xt_gguf *g = NULL;
    xt_error err = {0};
    if (xt_gguf_open(path, &g, &err)) return xt_cli_fail(&err);

    /* "<arch>." from general.architecture, when it is a string */
    char arch_prefix[160] = "";
    xt_gguf_str arch;
    if (xt_gguf_get_str(g, "general.architecture", &arch, NULL) == XT_OK && arch.len &&
        arch.len < sizeof arch_prefix - 1 && !memchr(arch.bytes, 0, arch.len)) {
        memcpy(arch_prefix, arch.bytes, arch.len);
        arch_prefix[arch.len] = '.';
        arch_prefix[arch.len + 1] = '\0';
    }

    int code = json ? print_json(g) : print_text(g, arch_prefix);
    if (!json && code == XT_EXIT_OK) print_memory_plan(path);
    xt_gguf_close(g);
    if (fflush(stdout) || ferror(stdout)) {
        fprintf(stderr, "expertrace: error writing output\n");
        return XT_EXIT_INPUT;
    }
    return code;
}
