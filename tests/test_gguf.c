/* The GGUF reader against the gguf Python package's view of the same files, and against
 * malformed input: every truncation, random corruption and hand-built hostile files.
 *
 * The oracle is tests/fixtures/gguf/expected.json, written by tests/reference/make_gguf_fixtures.py
 * from gguf.GGUFReader; the check itself needs no Python.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cJSON.h"
#include "expertrace/gguf.h"
#include "expertrace/quant.h"
#include "xt_test.h"

#define GGUF_DIR XT_FIXTURE_DIR "/gguf"

static const char *const fixture_names[] = {"metadata_v3.gguf", "align64_v2.gguf",
                                            "tiny_moe_v3.gguf"};
#define N_FIXTURES (sizeof fixture_names / sizeof fixture_names[0])

/* ---- helpers ------------------------------------------------------------------------------- */

static unsigned char *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc(n > 0 ? (size_t)n : 1);
    if (p && n > 0 && fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    fclose(f);
    *size = n > 0 ? (size_t)n : 0;
    return p;
}

static unsigned char *read_fixture(const char *name, size_t *size)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", GGUF_DIR, name);
    return read_file(path, size);
}

static cJSON *load_oracle(void)
{
    size_t n;
    unsigned char *text = read_fixture("expected.json", &n);
    if (!text) return NULL;
    cJSON *j = cJSON_ParseWithLength((const char *)text, n);
    free(text);
    return j;
}

static uint64_t fnv1a64(const unsigned char *p, uint64_t n)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (uint64_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3u;
    return h;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* Decodes hex into out (capacity cap); returns the byte count or -1. */
static long unhex(const char *hex, unsigned char *out, size_t cap)
{
    size_t n = strlen(hex);
    if (n % 2 || n / 2 > cap) return -1;
    for (size_t i = 0; i < n / 2; i++) {
        int a = hexval(hex[2 * i]), b = hexval(hex[2 * i + 1]);
        if (a < 0 || b < 0) return -1;
        out[i] = (unsigned char)(a << 4 | b);
    }
    return (long)(n / 2);
}

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static double jnum(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : -1.0;
}

static bool contains(const char *hay, const char *needle) { return strstr(hay, needle) != NULL; }

/* ---- oracle comparison --------------------------------------------------------------------- */

/* Compares one value with its oracle encoding; where names the value in failure output. */
static void check_value(const cJSON *want, const xt_gguf_value *v, const char *where)
{
    const char *type = jstr(want, "type");
    CHECK_MSG(!strcmp(type, xt_gguf_type_name(v->type)), "%s: type %s, oracle %s", where,
              xt_gguf_type_name(v->type), type);
    if (strcmp(type, xt_gguf_type_name(v->type))) return;
    switch (v->type) {
    case XT_GGUF_U8: case XT_GGUF_U16: case XT_GGUF_U32: case XT_GGUF_U64: {
        uint64_t w = strtoull(jstr(want, "value"), NULL, 10);
        uint64_t got = v->type == XT_GGUF_U8 ? v->u8 : v->type == XT_GGUF_U16 ? v->u16
                       : v->type == XT_GGUF_U32 ? v->u32 : v->u64;
        CHECK_MSG(got == w, "%s: %" PRIu64 " != oracle %" PRIu64, where, got, w);
        break;
    }
    case XT_GGUF_I8: case XT_GGUF_I16: case XT_GGUF_I32: case XT_GGUF_I64: {
        int64_t w = strtoll(jstr(want, "value"), NULL, 10);
        int64_t got = v->type == XT_GGUF_I8 ? v->i8 : v->type == XT_GGUF_I16 ? v->i16
                      : v->type == XT_GGUF_I32 ? v->i32 : v->i64;
        CHECK_MSG(got == w, "%s: %" PRId64 " != oracle %" PRId64, where, got, w);
        break;
    }
    case XT_GGUF_F32: {
        uint32_t bits;
        memcpy(&bits, &v->f32, 4);
        uint32_t w = (uint32_t)strtoul(jstr(want, "bits"), NULL, 16);
        CHECK_MSG(bits == w, "%s: f32 bits %08" PRIx32 " != oracle %08" PRIx32, where, bits, w);
        break;
    }
    case XT_GGUF_F64: {
        uint64_t bits;
        memcpy(&bits, &v->f64, 8);
        uint64_t w = strtoull(jstr(want, "bits"), NULL, 16);
        CHECK_MSG(bits == w, "%s: f64 bits %016" PRIx64 " != oracle %016" PRIx64, where, bits, w);
        break;
    }
    case XT_GGUF_BOOL:
        CHECK_MSG(v->b == cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(want, "value")),
                  "%s: bool", where);
        break;
    case XT_GGUF_STRING: {
        unsigned char bytes[4096];
        long n = unhex(jstr(want, "hex"), bytes, sizeof bytes);
        CHECK_MSG(n >= 0 && (size_t)n == v->str.len &&
                      (n == 0 || !memcmp(bytes, v->str.bytes, (size_t)n)),
                  "%s: string " XT_GGUF_STR_FMT " differs from oracle hex %s", where,
                  XT_GGUF_STR_ARG(v->str), jstr(want, "hex"));
        break;
    }
    case XT_GGUF_ARRAY: {
        const xt_gguf_array *a = &v->arr;
        CHECK_MSG(!strcmp(jstr(want, "elem"), xt_gguf_type_name(a->type)),
                  "%s: element type %s, oracle %s", where, xt_gguf_type_name(a->type),
                  jstr(want, "elem"));
        CHECK_MSG(a->count == (uint64_t)jnum(want, "count"), "%s: count %" PRIu64, where, a->count);
        const cJSON *items = cJSON_GetObjectItemCaseSensitive(want, "items");
        CHECK((uint64_t)cJSON_GetArraySize(items) == a->count);
        uint64_t i = 0;
        const cJSON *item;
        cJSON_ArrayForEach(item, items)
        {
            char sub[256];
            snprintf(sub, sizeof sub, "%.200s[%" PRIu64 "]", where, i);
            xt_gguf_value e;
            xt_error err = {0};
            CHECK_MSG(xt_gguf_array_get(a, i, &e, &err) == XT_OK, "%s: %s", sub, err.msg);
            check_value(item, &e, sub);
            /* the typed accessors agree with the generic one */
            if (a->type == XT_GGUF_STRING) {
                xt_gguf_str s;
                CHECK(xt_gguf_array_get_str(a, i, &s, NULL) == XT_OK && s.bytes == e.str.bytes &&
                      s.len == e.str.len);
            } else if (a->type == XT_GGUF_ARRAY) {
                xt_gguf_array c;
                CHECK(xt_gguf_array_get_array(a, i, &c, NULL) == XT_OK && c.impl == e.arr.impl);
            } else {
                const unsigned char *raw = xt_gguf_array_data(a);
                size_t es = xt_gguf_type_size(a->type);
                CHECK(raw != NULL && es > 0);
                if (raw && es) CHECK(!memcmp(raw + i * es, &e.u8, es)); /* little-endian host */
            }
            i++;
        }
        break;
    }
    default:
        CHECK_MSG(0, "%s: unexpected type %d", where, (int)v->type);
    }
}

static void check_against_oracle(const xt_gguf *g, const cJSON *want, const char *name)
{
    CHECK_MSG(xt_gguf_version(g) == (uint32_t)jnum(want, "version"), "%s: version", name);
    CHECK_MSG(xt_gguf_alignment(g) == (uint32_t)jnum(want, "alignment"), "%s: alignment", name);
    CHECK_MSG(xt_gguf_data_offset(g) == (uint64_t)jnum(want, "data_offset"),
              "%s: data offset %" PRIu64, name, xt_gguf_data_offset(g));
    CHECK(xt_gguf_file_size(g) == (uint64_t)jnum(want, "file_size"));

    const cJSON *kvs = cJSON_GetObjectItemCaseSensitive(want, "kv");
    CHECK_MSG(xt_gguf_kv_count(g) == (uint64_t)cJSON_GetArraySize(kvs), "%s: %" PRIu64 " keys",
              name, xt_gguf_kv_count(g));
    uint64_t i = 0;
    const cJSON *kv;
    cJSON_ArrayForEach(kv, kvs)
    {
        const char *key = jstr(kv, "key");
        const char *got = xt_gguf_kv_key(g, i);
        CHECK_MSG(got && !strcmp(got, key), "%s: key %" PRIu64 " is %s, oracle %s", name, i,
                  got ? got : "(null)", key);
        CHECK_MSG(xt_gguf_find_key(g, key) == (int64_t)i, "%s: find_key(%s)", name, key);
        xt_gguf_value v;
        CHECK(xt_gguf_kv_value(g, i, &v, NULL) == XT_OK);
        CHECK(xt_gguf_kv_type(g, i) == v.type);
        char where[256];
        snprintf(where, sizeof where, "%s: %.200s", name, key);
        check_value(kv, &v, where);
        xt_gguf_value v2;
        CHECK(xt_gguf_get(g, key, &v2, NULL) == XT_OK && v2.type == v.type);
        i++;
    }

    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(want, "tensors");
    CHECK(xt_gguf_tensor_count(g) == (uint64_t)cJSON_GetArraySize(ts));
    i = 0;
    const cJSON *tj;
    cJSON_ArrayForEach(tj, ts)
    {
        const xt_gguf_tensor *t = xt_gguf_tensor_at(g, i++);
        if (!t) {
            CHECK_MSG(0, "%s: tensor %" PRIu64 " missing", name, i - 1);
            continue;
        }
        const char *tname = jstr(tj, "name");
        CHECK_MSG(!strcmp(t->name, tname), "%s: tensor name %s, oracle %s", name, t->name, tname);
        CHECK(xt_gguf_find_tensor(g, tname) == t);
        CHECK(t->type == (uint32_t)jnum(tj, "type"));
        CHECK(t->type_known && !strcmp(t->type_name, xt_type_name(t->type)));
        const cJSON *ne = cJSON_GetObjectItemCaseSensitive(tj, "ne");
        CHECK_MSG(t->n_dims == (uint32_t)cJSON_GetArraySize(ne), "%s: %s n_dims %" PRIu32, name,
                  tname, t->n_dims);
        for (uint32_t d = 0; d < XT_GGUF_MAX_DIMS; d++) {
            const cJSON *e = cJSON_GetArrayItem(ne, (int)d);
            int64_t w = d < t->n_dims && e ? (int64_t)e->valuedouble : 1;
            CHECK_MSG(t->ne[d] == w, "%s: %s ne[%" PRIu32 "] = %" PRId64 ", oracle %" PRId64, name,
                      tname, d, t->ne[d], w);
        }
        CHECK(t->n_elements == (int64_t)jnum(tj, "n_elements"));
        CHECK(t->offset == (uint64_t)jnum(tj, "offset"));
        CHECK_MSG(t->nbytes == (uint64_t)jnum(tj, "nbytes"), "%s: %s nbytes %" PRIu64, name, tname,
                  t->nbytes);
        CHECK(xt_gguf_data_offset(g) + t->offset == (uint64_t)jnum(tj, "file_offset"));
        CHECK(t->offset % xt_gguf_alignment(g) == 0);
        CHECK(t->data != NULL);
        char hash[20];
        snprintf(hash, sizeof hash, "%016" PRIx64, t->data ? fnv1a64(t->data, t->nbytes) : 0);
        CHECK_MSG(!strcmp(hash, jstr(tj, "fnv1a64")), "%s: %s data hash %s, oracle %s", name, tname,
                  hash, jstr(tj, "fnv1a64"));
        const xt_gguf_tensor *t2 = NULL;
        CHECK(xt_gguf_get_tensor(g, tname, &t2, NULL) == XT_OK && t2 == t);
    }
    CHECK(xt_gguf_tensor_at(g, i) == NULL);
    CHECK(xt_gguf_kv_key(g, xt_gguf_kv_count(g)) == NULL);
}

static void open_should_match_the_gguf_package_on_every_value_and_tensor(void)
{
    cJSON *oracle = load_oracle();
    CHECK_MSG(oracle != NULL, "cannot read %s/expected.json", GGUF_DIR);
    if (!oracle) return;
    for (size_t f = 0; f < N_FIXTURES; f++) {
        const char *name = fixture_names[f];
        const cJSON *want = cJSON_GetObjectItemCaseSensitive(oracle, name);
        CHECK_MSG(want != NULL, "oracle has no %s", name);
        if (!want) continue;
        /* through mmap */
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", GGUF_DIR, name);
        xt_gguf *g = NULL;
        xt_error err = {0};
        CHECK_MSG(xt_gguf_open(path, &g, &err) == XT_OK, "%s", err.msg);
        if (g) {
            CHECK(!strcmp(xt_gguf_path(g), path));
            check_against_oracle(g, want, name);
            xt_gguf_close(g);
        }
        /* from memory */
        size_t n;
        unsigned char *data = read_fixture(name, &n);
        CHECK(data != NULL);
        g = NULL;
        CHECK_MSG(xt_gguf_open_memory(data, n, name, &g, &err) == XT_OK, "%s", err.msg);
        if (g) {
            check_against_oracle(g, want, name);
            xt_gguf_close(g);
        }
        free(data);
    }
    cJSON_Delete(oracle);
}

/* ---- getters ------------------------------------------------------------------------------- */

static xt_gguf *open_fixture(const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", GGUF_DIR, name);
    xt_gguf *g = NULL;
    xt_error err = {0};
    if (xt_gguf_open(path, &g, &err)) fprintf(stderr, "%s\n", err.msg);
    return g;
}

static void get_should_return_not_found_naming_the_key(void)
{
    xt_gguf *g = open_fixture("metadata_v3.gguf");
    CHECK(g != NULL);
    if (!g) return;
    xt_error err = {0};
    uint32_t u = 7;
    CHECK(xt_gguf_get_u32(g, "no.such.key", &u, &err) == XT_ERR_NOT_FOUND);
    CHECK(err.status == XT_ERR_NOT_FOUND);
    CHECK_MSG(contains(err.msg, "no.such.key") && contains(err.msg, "metadata_v3.gguf"), "%s",
              err.msg);
    CHECK(u == 7); /* untouched */
    CHECK(xt_gguf_find_key(g, "no.such.key") == -1);
    CHECK(xt_gguf_find_key(g, "") == -1);
    xt_gguf_value v;
    CHECK(xt_gguf_get(g, "xt.u8", &v, NULL) == XT_ERR_NOT_FOUND); /* prefix of a key is no key */
    CHECK(xt_gguf_kv_value(g, 1000, &v, &err) == XT_ERR_RANGE);
    xt_gguf_close(g);
}

static void get_should_return_type_error_naming_key_and_both_types(void)
{
    xt_gguf *g = open_fixture("metadata_v3.gguf");
    CHECK(g != NULL);
    if (!g) return;
    xt_error err = {0};
    uint32_t u = 7;
    CHECK(xt_gguf_get_u32(g, "xt.i32.min", &u, &err) == XT_ERR_TYPE);
    CHECK_MSG(contains(err.msg, "'xt.i32.min'") && contains(err.msg, "is i32") &&
                  contains(err.msg, "expected u32"),
              "%s", err.msg);
    CHECK(u == 7);
    xt_gguf_str s;
    CHECK(xt_gguf_get_str(g, "xt.arr.u8", &s, &err) == XT_ERR_TYPE);
    CHECK_MSG(contains(err.msg, "array of u8") && contains(err.msg, "expected string"), "%s",
              err.msg);
    xt_gguf_array a;
    CHECK(xt_gguf_get_array(g, "xt.str.empty", &a, &err) == XT_ERR_TYPE);
    bool b;
    CHECK(xt_gguf_get_bool(g, "xt.u8.max", &b, &err) == XT_ERR_TYPE);
    float f;
    CHECK(xt_gguf_get_f32(g, "xt.f64.pi", &f, &err) == XT_ERR_TYPE);
    CHECK(contains(err.msg, "is f64") && contains(err.msg, "expected f32"));

    /* every typed getter on its own type */
    uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; int32_t i32; uint64_t u64; int64_t i64;
    double d;
    CHECK(xt_gguf_get_u8(g, "xt.u8.max", &u8, NULL) == XT_OK && u8 == 255);
    CHECK(xt_gguf_get_i8(g, "xt.i8.min", &i8, NULL) == XT_OK && i8 == -128);
    CHECK(xt_gguf_get_u16(g, "xt.u16.max", &u16, NULL) == XT_OK && u16 == 65535);
    CHECK(xt_gguf_get_i16(g, "xt.i16.min", &i16, NULL) == XT_OK && i16 == -32768);
    CHECK(xt_gguf_get_u32(g, "xt.u32.max", &u, NULL) == XT_OK && u == UINT32_MAX);
    CHECK(xt_gguf_get_i32(g, "xt.i32.min", &i32, NULL) == XT_OK && i32 == INT32_MIN);
    CHECK(xt_gguf_get_u64(g, "xt.u64.max", &u64, NULL) == XT_OK && u64 == UINT64_MAX);
    CHECK(xt_gguf_get_i64(g, "xt.i64.min", &i64, NULL) == XT_OK && i64 == INT64_MIN);
    CHECK(xt_gguf_get_f32(g, "xt.f32.inf", &f, NULL) == XT_OK && isinf(f) && f > 0);
    CHECK(xt_gguf_get_f64(g, "xt.f64.nan", &d, NULL) == XT_OK && isnan(d));
    CHECK(xt_gguf_get_bool(g, "xt.bool.true", &b, NULL) == XT_OK && b);
    CHECK(xt_gguf_get_str(g, "general.architecture", &s, NULL) == XT_OK &&
          xt_gguf_str_eq(s, "xtest"));
    CHECK(xt_gguf_get_array(g, "xt.arr.str", &a, NULL) == XT_OK && a.count == 4 &&
          a.type == XT_GGUF_STRING);
    xt_gguf_close(g);
}

static void get_uint_and_int_should_read_any_integer_type_with_range_checks(void)
{
    xt_gguf *g = open_fixture("metadata_v3.gguf");
    CHECK(g != NULL);
    if (!g) return;
    xt_error err = {0};
    uint64_t u = 0;
    int64_t i = 0;
    CHECK(xt_gguf_get_uint(g, "xt.u8.max", 0, UINT64_MAX, &u, NULL) == XT_OK && u == 255);
    CHECK(xt_gguf_get_uint(g, "xt.i8.max", 0, UINT64_MAX, &u, NULL) == XT_OK && u == 127);
    CHECK(xt_gguf_get_uint(g, "xt.u64.max", 0, UINT64_MAX, &u, NULL) == XT_OK && u == UINT64_MAX);
    CHECK(xt_gguf_get_int(g, "xt.i64.min", INT64_MIN, INT64_MAX, &i, NULL) == XT_OK &&
          i == INT64_MIN);
    CHECK(xt_gguf_get_int(g, "xt.i32.minus_one", -10, 10, &i, NULL) == XT_OK && i == -1);
    CHECK(xt_gguf_get_int(g, "xt.u32.max", 0, INT64_MAX, &i, NULL) == XT_OK && i == UINT32_MAX);

    u = 42;
    CHECK(xt_gguf_get_uint(g, "xt.i32.minus_one", 0, UINT64_MAX, &u, &err) == XT_ERR_RANGE);
    CHECK_MSG(contains(err.msg, "'xt.i32.minus_one' = -1") && contains(err.msg, "out of range"),
              "%s", err.msg);
    CHECK(u == 42);
    CHECK(xt_gguf_get_uint(g, "xt.u8.max", 1, 100, &u, &err) == XT_ERR_RANGE);
    CHECK_MSG(contains(err.msg, "= 255") && contains(err.msg, "[1, 100]"), "%s", err.msg);
    CHECK(xt_gguf_get_uint(g, "xt.u8.zero", 1, 100, &u, &err) == XT_ERR_RANGE);
    CHECK(xt_gguf_get_int(g, "xt.u64.max", INT64_MIN, INT64_MAX, &i, &err) == XT_ERR_RANGE);
    CHECK_MSG(contains(err.msg, "18446744073709551615"), "%s", err.msg);
    CHECK(xt_gguf_get_int(g, "xt.i16.min", -100, 100, &i, &err) == XT_ERR_RANGE);
    CHECK(xt_gguf_get_uint(g, "xt.f32.eps", 0, 1, &u, &err) == XT_ERR_TYPE);
    CHECK_MSG(contains(err.msg, "expected an integer"), "%s", err.msg);
    CHECK(xt_gguf_get_uint(g, "xt.bool.true", 0, 1, &u, &err) == XT_ERR_TYPE);
    CHECK(xt_gguf_get_int(g, "missing", 0, 1, &i, &err) == XT_ERR_NOT_FOUND);

    double d = 0;
    CHECK(xt_gguf_get_float(g, "xt.f32.eps", &d, NULL) == XT_OK && d == (double)1e-6f);
    CHECK(xt_gguf_get_float(g, "xt.f64.pi", &d, NULL) == XT_OK && d == 3.141592653589793);
    CHECK(xt_gguf_get_float(g, "xt.u8.max", &d, &err) == XT_ERR_TYPE);
    xt_gguf_close(g);
}

static void array_accessors_should_check_index_and_element_type(void)
{
    xt_gguf *g = open_fixture("metadata_v3.gguf");
    CHECK(g != NULL);
    if (!g) return;
    xt_error err = {0};
    xt_gguf_array a, inner, leaf;
    xt_gguf_value v;
    CHECK(xt_gguf_get_array(g, "xt.arr.nested3", &a, NULL) == XT_OK);
    CHECK(a.type == XT_GGUF_ARRAY && a.count == 3);
    CHECK(xt_gguf_array_get_array(&a, 0, &inner, NULL) == XT_OK && inner.count == 2);
    CHECK(xt_gguf_array_get_array(&inner, 1, &leaf, NULL) == XT_OK && leaf.type == XT_GGUF_STRING);
    xt_gguf_str s;
    CHECK(xt_gguf_array_get_str(&leaf, 1, &s, NULL) == XT_OK && xt_gguf_str_eq(s, "c"));
    CHECK(xt_gguf_array_get_str(&leaf, 2, &s, &err) == XT_ERR_RANGE);
    CHECK_MSG(contains(err.msg, "key 'xt.arr.nested3'[0][1]") && contains(err.msg, "index 2") &&
                  contains(err.msg, "2 elements"),
              "%s", err.msg);
    CHECK(xt_gguf_array_get_str(&a, 0, &s, &err) == XT_ERR_TYPE);
    CHECK_MSG(contains(err.msg, "elements are array") && contains(err.msg, "expected string"), "%s",
              err.msg);
    CHECK(xt_gguf_array_data(&a) == NULL && xt_gguf_array_data(&leaf) == NULL);
    CHECK(xt_gguf_array_get_array(&a, 2, &inner, NULL) == XT_OK && inner.count == 0);
    CHECK(xt_gguf_array_get(&inner, 0, &v, &err) == XT_ERR_RANGE);

    int64_t i;
    double d;
    CHECK(xt_gguf_get_array(g, "xt.arr.u64", &a, NULL) == XT_OK);
    CHECK(xt_gguf_array_get_int(&a, 0, &i, NULL) == XT_OK && i == 0);
    CHECK(xt_gguf_array_get_int(&a, 1, &i, &err) == XT_ERR_RANGE);
    CHECK(xt_gguf_get_array(g, "xt.arr.i8", &a, NULL) == XT_OK);
    CHECK(xt_gguf_array_get_int(&a, 0, &i, NULL) == XT_OK && i == -128);
    CHECK(xt_gguf_array_get_float(&a, 0, &d, &err) == XT_ERR_TYPE);
    CHECK(xt_gguf_get_array(g, "xt.arr.f64", &a, NULL) == XT_OK);
    CHECK(xt_gguf_array_get_float(&a, 2, &d, NULL) == XT_OK && d == -2.5);
    CHECK(xt_gguf_array_get_int(&a, 2, &i, &err) == XT_ERR_TYPE);
    CHECK(xt_gguf_get_array(g, "xt.arr.u32", &a, NULL) == XT_OK);
    const unsigned char *raw = xt_gguf_array_data(&a);
    CHECK(raw != NULL && raw[8] == 0xff && raw[11] == 0xff && raw[4] == 2);
    CHECK(xt_gguf_get_array(g, "xt.arr.empty_u32", &a, NULL) == XT_OK && a.count == 0);
    CHECK(xt_gguf_array_get(&a, 0, &v, &err) == XT_ERR_RANGE);
    xt_gguf_array zero = {0};
    CHECK(xt_gguf_array_get(&zero, 0, &v, &err) == XT_ERR_RANGE);
    xt_gguf_close(g);
}

static void strings_should_be_length_delimited_views(void)
{
    xt_gguf *g = open_fixture("metadata_v3.gguf");
    CHECK(g != NULL);
    if (!g) return;
    xt_gguf_str s;
    CHECK(xt_gguf_get_str(g, "xt.str.with_nul", &s, NULL) == XT_OK);
    CHECK(s.len == 3 && s.bytes[0] == 'a' && s.bytes[1] == 0 && s.bytes[2] == 'b');
    CHECK(!xt_gguf_str_eq(s, "a"));
    char buf[8];
    CHECK(xt_gguf_str_copy(s, buf, sizeof buf) == 3 && !strcmp(buf, "a"));
    CHECK(xt_gguf_get_str(g, "xt.str.empty", &s, NULL) == XT_OK && s.len == 0);
    CHECK(xt_gguf_str_eq(s, "") && xt_gguf_str_copy(s, buf, sizeof buf) == 0 && buf[0] == 0);
    CHECK(xt_gguf_get_str(g, "general.name", &s, NULL) == XT_OK);
    CHECK(xt_gguf_str_copy(s, buf, sizeof buf) == strlen("all metadata types"));
    CHECK(!strcmp(buf, "all met")); /* truncated, still terminated */
    CHECK(xt_gguf_str_copy(s, NULL, 0) == s.len);
    xt_gguf_close(g);
}

static void find_tensor_should_miss_cleanly(void)
{
    xt_gguf *g = open_fixture("tiny_moe_v3.gguf");
    CHECK(g != NULL);
    if (!g) return;
    CHECK(xt_gguf_find_tensor(g, "blk.0.ffn_up_exps.weight") != NULL);
    CHECK(xt_gguf_find_tensor(g, "blk.0.ffn_up_exps") == NULL);
    CHECK(xt_gguf_find_tensor(g, "") == NULL);
    const xt_gguf_tensor *t = NULL;
    xt_error err = {0};
    CHECK(xt_gguf_get_tensor(g, "output.weight", &t, &err) == XT_ERR_NOT_FOUND && t == NULL);
    CHECK_MSG(contains(err.msg, "'output.weight'") && contains(err.msg, "tiny_moe_v3.gguf"), "%s",
              err.msg);
    const xt_gguf_tensor *e = xt_gguf_find_tensor(g, "blk.0.ffn_down_exps.weight");
    CHECK(e && e->n_dims == 3 && e->ne[0] == 32 && e->ne[1] == 32 && e->ne[2] == 2 &&
          e->ne[3] == 1);
    xt_gguf_close(g);
}

/* ---- walking everything (used on corrupted input) ----------------------------------------- */

static uint64_t walk_value(const xt_gguf_value *v, int depth)
{
    uint64_t h = (uint64_t)v->type;
    if (v->type == XT_GGUF_STRING) return h + fnv1a64(v->str.bytes, v->str.len);
    if (v->type != XT_GGUF_ARRAY) return h;
    CHECK(depth <= XT_GGUF_MAX_DEPTH);
    for (uint64_t i = 0; i < v->arr.count; i++) {
        xt_gguf_value e;
        if (xt_gguf_array_get(&v->arr, i, &e, NULL) != XT_OK) {
            CHECK(0);
            break;
        }
        h += walk_value(&e, depth + 1);
    }
    return h;
}

static uint64_t walk_all(const xt_gguf *g)
{
    uint64_t h = 0;
    for (uint64_t i = 0; i < xt_gguf_kv_count(g); i++) {
        xt_gguf_value v;
        CHECK(xt_gguf_kv_value(g, i, &v, NULL) == XT_OK);
        const char *key = xt_gguf_kv_key(g, i);
        CHECK(key && xt_gguf_find_key(g, key) == (int64_t)i);
        h += walk_value(&v, 1);
    }
    for (uint64_t i = 0; i < xt_gguf_tensor_count(g); i++) {
        const xt_gguf_tensor *t = xt_gguf_tensor_at(g, i);
        CHECK(xt_gguf_find_tensor(g, t->name) == t);
        CHECK(t->n_dims >= 1 && t->n_dims <= 4);
        if (t->type_known) {
            CHECK(t->data != NULL || t->nbytes == 0);
            CHECK(t->nbytes == 0 ||
                  xt_gguf_data_offset(g) + t->offset + t->nbytes <= xt_gguf_file_size(g));
            if (t->data) h += fnv1a64(t->data, t->nbytes);
        }
    }
    return h;
}

/* ---- malformed input: truncation and corruption ------------------------------------------- */

/* Opens an exact-size heap copy of data[0..n), so that ASan sees any read past the end. */
static xt_status open_copy(const unsigned char *data, size_t n, const char *name, xt_error *err,
                           uint64_t *walk_hash)
{
    unsigned char *copy = malloc(n ? n : 1);
    if (n) memcpy(copy, data, n);
    xt_gguf *g = NULL;
    xt_status s = xt_gguf_open_memory(copy, n, name, &g, err);
    if (s == XT_OK) {
        uint64_t h = walk_all(g);
        if (walk_hash) *walk_hash = h;
        xt_gguf_close(g);
    } else {
        CHECK(g == NULL);
    }
    free(copy);
    return s;
}

static void open_should_fail_on_every_truncation_of_a_valid_file(void)
{
    cJSON *oracle = load_oracle();
    CHECK(oracle != NULL);
    if (!oracle) return;
    for (size_t f = 0; f < N_FIXTURES; f++) {
        size_t n;
        unsigned char *data = read_fixture(fixture_names[f], &n);
        CHECK(data != NULL);
        if (!data) continue;
        /* A file is complete once the last tensor's bytes are in; the writer's trailing padding
         * may go. */
        const cJSON *ts = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(oracle, fixture_names[f]), "tensors");
        size_t need = 0;
        const cJSON *t;
        cJSON_ArrayForEach(t, ts)
        {
            size_t end = (size_t)(jnum(t, "file_offset") + jnum(t, "nbytes"));
            if (end > need) need = end;
        }
        CHECK(need > 0 && need <= n);
        size_t bad_messages = 0;
        for (size_t len = 0; len < n; len++) {
            xt_error err = {0};
            xt_status s = open_copy(data, len, "cut.gguf", &err, NULL);
            if (len < need) {
                CHECK_MSG(s == XT_ERR_FORMAT, "%s cut at %zu: status %s", fixture_names[f], len,
                          xt_status_to_string(s));
                if (strncmp(err.msg, "cut.gguf: offset ", 17)) bad_messages++;
            } else {
                CHECK_MSG(s == XT_OK, "%s cut at %zu (past the data): %s", fixture_names[f], len,
                          err.msg);
            }
        }
        CHECK_MSG(bad_messages == 0, "%zu truncation messages without file and offset",
                  bad_messages);
        free(data);
    }
    cJSON_Delete(oracle);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static uint64_t rng_next(void)
{
    /* xorshift64*: deterministic, seeded above */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1du;
}

static void open_should_survive_random_corruption(void)
{
    size_t opened = 0, rejected = 0, bad = 0;
    rng_state = 0x9e3779b97f4a7c15u;
    for (size_t f = 0; f < N_FIXTURES; f++) {
        size_t n;
        unsigned char *data = read_fixture(fixture_names[f], &n);
        CHECK(data != NULL);
        if (!data) continue;
        xt_gguf *g0 = NULL;
        CHECK(xt_gguf_open_memory(data, n, "x", &g0, NULL) == XT_OK);
        size_t dir = g0 ? (size_t)xt_gguf_data_offset(g0) : n;
        xt_gguf_close(g0);
        unsigned char *mut = malloc(n);
        for (int iter = 0; iter < 30000; iter++) {
            memcpy(mut, data, n);
            int flips = 1 + (int)(rng_next() % 8);
            for (int k = 0; k < flips; k++) {
                /* mostly the directory, where the structure is */
                size_t region = rng_next() % 8 ? dir : n;
                size_t pos = (size_t)(rng_next() % region);
                uint64_t r = rng_next();
                switch (r % 4) {
                case 0: mut[pos] = (unsigned char)(r >> 8); break;
                case 1: mut[pos] ^= (unsigned char)(1u << ((r >> 8) % 8)); break;
                case 2: mut[pos] = 0xff; break;
                default: mut[pos] = 0; break;
                }
            }
            xt_error err = {0};
            size_t len = rng_next() % 16 ? n : (size_t)(rng_next() % n);
            xt_status s = open_copy(mut, len, "fuzzed.gguf", &err, NULL);
            if (s == XT_OK) {
                opened++;
            } else {
                rejected++;
                if ((s != XT_ERR_FORMAT && s != XT_ERR_UNSUPPORTED) ||
                    strncmp(err.msg, "fuzzed.gguf: offset ", 20))
                    bad++, fprintf(stderr, "unexpected: %s: %s\n", xt_status_to_string(s), err.msg);
            }
        }
        free(mut);
        free(data);
    }
    printf("     corruption: %zu opened, %zu rejected\n", opened, rejected);
    CHECK(rejected > 0 && opened > 0);
    CHECK(bad == 0);
}

/* ---- hand-built hostile files ------------------------------------------------------------- */

typedef struct gbuf {
    unsigned char p[4096];
    size_t n;
} gbuf;

static void put(gbuf *b, const void *d, size_t n)
{
    if (b->n + n > sizeof b->p) {
        CHECK_MSG(0, "test buffer overflow");
        return;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void put_u8(gbuf *b, uint8_t v) { put(b, &v, 1); }
static void put_u32(gbuf *b, uint32_t v)
{
    unsigned char x[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    put(b, x, 4);
}
static void put_u64(gbuf *b, uint64_t v)
{
    put_u32(b, (uint32_t)v);
    put_u32(b, (uint32_t)(v >> 32));
}
static void put_str(gbuf *b, const char *s)
{
    put_u64(b, strlen(s));
    put(b, s, strlen(s));
}
static void put_header(gbuf *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
    b->n = 0;
    put(b, "GGUF", 4);
    put_u32(b, version);
    put_u64(b, n_tensors);
    put_u64(b, n_kv);
}
static void put_kv_u32(gbuf *b, const char *key, uint32_t v)
{
    put_str(b, key);
    put_u32(b, XT_GGUF_U32);
    put_u32(b, v);
}
/* A tensor record; ne has n_dims entries. */
static void put_tensor(gbuf *b, const char *name, uint32_t n_dims, const uint64_t *ne,
                       uint32_t type, uint64_t offset)
{
    put_str(b, name);
    put_u32(b, n_dims);
    for (uint32_t i = 0; i < n_dims; i++) put_u64(b, ne[i]);
    put_u32(b, type);
    put_u64(b, offset);
}
static void put_pad(gbuf *b, size_t align)
{
    while (b->n % align) put_u8(b, 0);
}
static void put_zeros(gbuf *b, size_t n)
{
    for (size_t i = 0; i < n; i++) put_u8(b, 0);
}

/* Expects b to be rejected with status want and every needle in the message. */
static void expect_reject(const gbuf *b, xt_status want, const char *needle1, const char *needle2)
{
    xt_error err = {0};
    xt_status s = open_copy(b->p, b->n, "hostile.gguf", &err, NULL);
    CHECK_MSG(s == want, "status %s, want %s (%s)", xt_status_to_string(s),
              xt_status_to_string(want), err.msg);
    CHECK_MSG(!strncmp(err.msg, "hostile.gguf: offset ", 21), "no file/offset: %s", err.msg);
    CHECK_MSG(!needle1 || contains(err.msg, needle1), "'%s' not in: %s", needle1, err.msg);
    CHECK_MSG(!needle2 || contains(err.msg, needle2), "'%s' not in: %s", needle2, err.msg);
}

static void expect_accept(const gbuf *b)
{
    xt_error err = {0};
    CHECK_MSG(open_copy(b->p, b->n, "ok.gguf", &err, NULL) == XT_OK, "%s", err.msg);
}

static void open_should_reject_v1_header(void)
{
    gbuf b = {0};
    put(&b, "GGUF", 4);
    put_u32(&b, 1);
    put_u32(&b, 0); /* v1: u32 counts */
    put_u32(&b, 0);
    expect_reject(&b, XT_ERR_UNSUPPORTED, "offset 4:", "GGUF version 1 is not supported");
}

static void open_should_reject_other_versions_and_big_endian(void)
{
    gbuf b = {0};
    put_header(&b, 4, 0, 0);
    expect_reject(&b, XT_ERR_UNSUPPORTED, "version 4", NULL);
    put_header(&b, 0, 0, 0);
    expect_reject(&b, XT_ERR_UNSUPPORTED, "version 0", NULL);
    put_header(&b, 0x03000000u, 0, 0);
    expect_reject(&b, XT_ERR_UNSUPPORTED, "big-endian", NULL);
    put_header(&b, 2, 0, 0);
    expect_accept(&b);
    put_header(&b, 3, 0, 0);
    expect_accept(&b);
}

static void open_should_reject_bad_magic_and_tiny_files(void)
{
    gbuf b = {0};
    put(&b, "GGML", 4);
    put_u32(&b, 3);
    put_u64(&b, 0);
    put_u64(&b, 0);
    expect_reject(&b, XT_ERR_FORMAT, "offset 0:", "not a GGUF file");
    b.n = 0;
    expect_reject(&b, XT_ERR_FORMAT, "truncated", "magic");
    put_header(&b, 3, 0, 0);
    b.n = 20;
    expect_reject(&b, XT_ERR_FORMAT, "offset 16:", "key/value count");
}

static void open_should_reject_absurd_counts_without_allocating(void)
{
    gbuf b = {0};
    put_header(&b, 3, 0, UINT64_MAX);
    expect_reject(&b, XT_ERR_FORMAT, "offset 16:", "key/value count 18446744073709551615");
    put_header(&b, 3, (uint64_t)1 << 60, 0);
    expect_reject(&b, XT_ERR_FORMAT, "offset 8:", "tensor count");
    /* a count that the remaining bytes could hold, but the records are not all there */
    put_header(&b, 3, 0, 2);
    put_kv_u32(&b, "a", 1);
    put_str(&b, "b");
    expect_reject(&b, XT_ERR_FORMAT, "key 'b': truncated: value type needs 4 bytes, 0 left", NULL);
}

static void open_should_reject_absurd_string_lengths(void)
{
    gbuf b = {0};
    put_header(&b, 3, 0, 1);
    put_u64(&b, (uint64_t)1 << 62); /* key length */
    put_zeros(&b, 16);
    expect_reject(&b, XT_ERR_FORMAT, "offset 24:", "key length 4611686018427387904 exceeds");

    put_header(&b, 3, 0, 1);
    put_str(&b, "k");
    put_u32(&b, XT_GGUF_STRING);
    put_u64(&b, UINT64_MAX);
    expect_reject(&b, XT_ERR_FORMAT, "offset 37:", "key 'k': string value length");

    put_header(&b, 3, 1, 0);
    put_u64(&b, 1000); /* tensor name length */
    put_zeros(&b, 40);
    expect_reject(&b, XT_ERR_FORMAT, "tensor 0: name length 1000 exceeds", NULL);
}

static void open_should_reject_absurd_array_counts(void)
{
    static const uint32_t types[] = {XT_GGUF_U8, XT_GGUF_U64, XT_GGUF_STRING, XT_GGUF_ARRAY};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        gbuf b = {0};
        put_header(&b, 3, 0, 1);
        put_str(&b, "tokenizer.ggml.tokens");
        put_u32(&b, XT_GGUF_ARRAY);
        put_u32(&b, types[i]);
        put_u64(&b, (uint64_t)1 << 61);
        put_zeros(&b, 64);
        expect_reject(&b, XT_ERR_FORMAT,
                      "key 'tokenizer.ggml.tokens': array of 2305843009213693952", "cannot fit");
    }
    /* a string element whose length runs off the end */
    gbuf b = {0};
    put_header(&b, 3, 0, 1);
    put_str(&b, "s");
    put_u32(&b, XT_GGUF_ARRAY);
    put_u32(&b, XT_GGUF_STRING);
    put_u64(&b, 2);
    put_str(&b, "ok");
    put_u64(&b, 99);
    put_zeros(&b, 4);
    expect_reject(&b, XT_ERR_FORMAT, "string element 1 length 99", NULL);
}

static void open_should_reject_bad_value_types_and_bools(void)
{
    gbuf b = {0};
    put_header(&b, 3, 0, 1);
    put_str(&b, "k");
    put_u32(&b, 13);
    put_u32(&b, 0);
    expect_reject(&b, XT_ERR_FORMAT, "offset 33:", "key 'k': value type 13 is not a GGUF type");

    put_header(&b, 3, 0, 1);
    put_str(&b, "k");
    put_u32(&b, XT_GGUF_ARRAY);
    put_u32(&b, 77);
    put_u64(&b, 0);
    expect_reject(&b, XT_ERR_FORMAT, "array element type 77", NULL);

    put_header(&b, 3, 0, 1);
    put_str(&b, "flag");
    put_u32(&b, XT_GGUF_BOOL);
    put_u8(&b, 2);
    expect_reject(&b, XT_ERR_FORMAT, "bool value 2 is not 0 or 1", NULL);

    put_header(&b, 3, 0, 1);
    put_str(&b, "k");
    put_u32(&b, XT_GGUF_U64);
    put_u32(&b, 0); /* 4 of the 8 bytes */
    expect_reject(&b, XT_ERR_FORMAT, "key 'k': truncated", NULL);

    put_header(&b, 3, 0, 1);
    put_u64(&b, 3);
    put(&b, "a\0b", 3);
    put_u32(&b, XT_GGUF_U8);
    put_u8(&b, 1);
    expect_reject(&b, XT_ERR_FORMAT, "key contains a NUL byte", NULL);
}

static void build_nested(gbuf *b, int levels)
{
    put_header(b, 3, 0, 1);
    put_str(b, "deep");
    put_u32(b, XT_GGUF_ARRAY);
    for (int i = 0; i < levels - 1; i++) {
        put_u32(b, XT_GGUF_ARRAY);
        put_u64(b, 1);
    }
    put_u32(b, XT_GGUF_U8);
    put_u64(b, 1);
    put_u8(b, 7);
}

static void open_should_reject_nesting_too_deep(void)
{
    gbuf b = {0};
    build_nested(&b, XT_GGUF_MAX_DEPTH);
    expect_accept(&b);
    build_nested(&b, XT_GGUF_MAX_DEPTH + 1);
    expect_reject(&b, XT_ERR_FORMAT, "key 'deep': arrays nested deeper than 8", NULL);
    /* depth is a property of the type: an empty array of arrays at the limit is still too deep */
    build_nested(&b, XT_GGUF_MAX_DEPTH);
    b.n -= 4 + 8 + 1; /* drop the innermost u8 array: its element type, count and value */
    put_u32(&b, XT_GGUF_ARRAY);
    put_u64(&b, 0);
    expect_reject(&b, XT_ERR_FORMAT, "nested deeper", NULL);
}

static void open_should_reject_duplicate_key(void)
{
    gbuf b = {0};
    put_header(&b, 3, 0, 3);
    put_kv_u32(&b, "a.b", 1);
    put_kv_u32(&b, "c", 2);
    size_t second = b.n;
    put_kv_u32(&b, "a.b", 3);
    char where[64];
    snprintf(where, sizeof where, "offset %zu:", second);
    expect_reject(&b, XT_ERR_FORMAT, where, "duplicate key 'a.b' (first at offset 24)");
}

static void open_should_reject_bad_alignment_value(void)
{
    static const uint32_t bad[] = {0, 3, 48, 0x80000001u};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gbuf b = {0};
        put_header(&b, 3, 0, 1);
        put_kv_u32(&b, "general.alignment", bad[i]);
        expect_reject(&b, XT_ERR_FORMAT, "offset 24:", "is not a nonzero power of two");
    }
    gbuf b = {0};
    put_header(&b, 3, 0, 1);
    put_str(&b, "general.alignment");
    put_u32(&b, XT_GGUF_U64);
    put_u64(&b, 64);
    expect_reject(&b, XT_ERR_FORMAT, "general.alignment is u64, expected u32", NULL);
}

static void open_should_reject_bad_n_dims(void)
{
    static const uint64_t ne[5] = {4, 1, 1, 1, 1};
    gbuf b = {0};
    put_header(&b, 3, 1, 0);
    put_tensor(&b, "w", 0, ne, XT_TYPE_F32, 0);
    put_pad(&b, 32);
    put_zeros(&b, 32);
    expect_reject(&b, XT_ERR_FORMAT, "offset 33:", "tensor 'w': n_dims = 0, expected 1 to 4");
    put_header(&b, 3, 1, 0);
    put_tensor(&b, "w", 5, ne, XT_TYPE_F32, 0);
    put_pad(&b, 32);
    put_zeros(&b, 32);
    expect_reject(&b, XT_ERR_FORMAT, "tensor 'w': n_dims = 5", NULL);
    put_header(&b, 3, 1, 0);
    put_tensor(&b, "w", 4, ne, XT_TYPE_F32, 0);
    put_pad(&b, 32);
    put_zeros(&b, 32);
    expect_accept(&b);
}

static void open_should_reject_negative_and_overflowing_shapes(void)
{
    gbuf b = {0};
    const uint64_t neg[2] = {4, (uint64_t)-5};
    put_header(&b, 3, 1, 0);
    put_tensor(&b, "blk.0.attn_q.weight", 2, neg, XT_TYPE_F32, 0);
    /* ne[1] sits after magic..counts (24), name (8 + 19), n_dims (4), ne[0] (8) */
    expect_reject(&b, XT_ERR_FORMAT,
                  "hostile.gguf: offset 63: tensor 'blk.0.attn_q.weight': ne[1] = -5 is negative",
                  NULL);

    const uint64_t big[2] = {(uint64_t)1 << 32, (uint64_t)1 << 32};
    put_header(&b, 3, 1, 0);
    put_tensor(&b, "w", 2, big, XT_TYPE_F32, 0);
    expect_reject(&b, XT_ERR_FORMAT, "tensor 'w': shape overflows", NULL);

    const uint64_t max2[2] = {INT64_MAX, 2};
    put_header(&b, 3, 1, 0);
    put_tensor(&b, "w", 2, max2, XT_TYPE_I8, 0);
    expect_reject(&b, XT_ERR_FORMAT, "shape overflows", NULL);

    /* fits INT64_MAX elements but its bytes overflow 64 bits */
    const uint64_t huge[1] = {(uint64_t)1 << 62};
    put_header(&b, 3, 1, 0);
    put_tensor(&b, "w", 1, huge, XT_TYPE_F32, 0);
    put_pad(&b, 32);
    expect_reject(&b, XT_ERR_FORMAT, "offset 45: tensor 'w'", "overflow 64 bits");
    /* bytes fit in 64 bits, the file does not hold them */
    const uint64_t large[2] = {(uint64_t)1 << 30, (uint64_t)1 << 30};
    put_header(&b, 3, 1, 0);
    put_tensor(&b, "w", 2, large, XT_TYPE_F32, 0);
    put_pad(&b, 32);
    expect_reject(&b, XT_ERR_FORMAT, "tensor 'w'", "runs past the end");

    /* a zero dimension makes an empty tensor, and other dims may not overflow either */
    const uint64_t zero[3] = {0, (uint64_t)1 << 40, (uint64_t)1 << 40};
    put_header(&b, 3, 1, 0);
    put_tensor(&b, "w", 3, zero, XT_TYPE_F32, 0);
    expect_reject(&b, XT_ERR_FORMAT, "shape overflows", NULL);
    const uint64_t empty[2] = {0, 8};
    put_header(&b, 3, 1, 0);
    put_tensor(&b, "w", 2, empty, XT_TYPE_F32, 0);
    expect_accept(&b);
}

static void open_should_keep_unknown_type_readable_but_unusable(void)
{
    gbuf b = {0};
    const uint64_t ne[1] = {64};
    put_header(&b, 3, 3, 0);
    put_tensor(&b, "mystery", 1, ne, 99, 0);
    put_tensor(&b, "retired", 1, ne, 4, 0); /* Q4_2, removed from ggml */
    put_tensor(&b, "known", 1, ne, XT_TYPE_F32, 0);
    put_pad(&b, 32);
    put_zeros(&b, 256);
    unsigned char *copy = malloc(b.n);
    memcpy(copy, b.p, b.n);
    xt_gguf *g = NULL;
    xt_error err = {0};
    CHECK_MSG(xt_gguf_open_memory(copy, b.n, "mixed.gguf", &g, &err) == XT_OK, "%s", err.msg);
    if (g) {
        const xt_gguf_tensor *t = xt_gguf_find_tensor(g, "mystery");
        CHECK(t && !t->type_known && t->type == 99 && !strcmp(t->type_name, "unknown (99)"));
        CHECK(t && t->nbytes == 0 && t->data == NULL && t->n_elements == 64);
        const xt_gguf_tensor *u = NULL;
        CHECK(xt_gguf_get_tensor(g, "mystery", &u, &err) == XT_ERR_UNSUPPORTED && u == NULL);
        CHECK_MSG(contains(err.msg, "mixed.gguf") && contains(err.msg, "tensor 'mystery'") &&
                      contains(err.msg, "unknown ggml type 99"),
                  "%s", err.msg);
        t = xt_gguf_find_tensor(g, "retired");
        CHECK(t && !t->type_known && !strcmp(t->type_name, "unknown (4)"));
        CHECK(xt_gguf_get_tensor(g, "known", &u, NULL) == XT_OK && u->nbytes == 256);
        xt_gguf_close(g);
    }
    free(copy);

    /* an unknown tensor's offset is still checked */
    put_header(&b, 3, 1, 0);
    put_tensor(&b, "mystery", 1, ne, 99, 64);
    put_pad(&b, 32);
    put_zeros(&b, 32);
    expect_reject(&b, XT_ERR_FORMAT, "tensor 'mystery'", "past the end");
}

static void open_should_reject_partial_blocks(void)
{
    gbuf b = {0};
    const uint64_t ne[2] = {33, 2};
    put_header(&b, 3, 1, 0);
    put_tensor(&b, "q", 2, ne, XT_TYPE_Q8_0, 0);
    put_pad(&b, 32);
    put_zeros(&b, 128);
    expect_reject(&b, XT_ERR_FORMAT, "ne[0] = 33 is not a multiple of the q8_0 block size 32",
                  NULL);
    /* the total is a whole number of blocks, the rows are not: still wrong */
    const uint64_t ne2[2] = {16, 2};
    put_header(&b, 3, 1, 0);
    put_tensor(&b, "q", 2, ne2, XT_TYPE_Q8_0, 0);
    put_pad(&b, 32);
    put_zeros(&b, 64);
    expect_reject(&b, XT_ERR_FORMAT, "ne[0] = 16", NULL);
}

static void open_should_reject_offsets_past_the_end(void)
{
    gbuf b = {0};
    const uint64_t ne[1] = {16};
    put_header(&b, 3, 1, 0);
    put_tensor(&b, "w", 1, ne, XT_TYPE_F32, 0);
    put_pad(&b, 32);
    put_zeros(&b, 63); /* one byte short */
    /* the offset field is the last 8 bytes of the record: 24 + 9 + 4 + 8 + 4 = 49 */
    expect_reject(&b, XT_ERR_FORMAT,
                  "offset 49: tensor 'w': data at offset 0 + 64 bytes runs past the end", NULL);
    put_zeros(&b, 1);
    expect_accept(&b);

    for (int k = 0; k < 2; k++) {
        put_header(&b, 3, 1, 0);
        put_tensor(&b, "w", 1, ne, XT_TYPE_F32, k ? UINT64_MAX - 31 : (uint64_t)1 << 63);
        put_pad(&b, 32);
        put_zeros(&b, 64);
        expect_reject(&b, XT_ERR_FORMAT, "runs past the end", NULL);
    }
}

static void open_should_reject_misaligned_offsets(void)
{
    gbuf b = {0};
    const uint64_t ne[1] = {4};
    put_header(&b, 3, 1, 0);
    put_tensor(&b, "w", 1, ne, XT_TYPE_F32, 4);
    put_pad(&b, 32);
    put_zeros(&b, 64);
    expect_reject(&b, XT_ERR_FORMAT,
                  "offset 49: tensor 'w': data offset 4 is not a multiple of the alignment 32",
                  NULL);
    /* with general.alignment = 4 the same offset is fine */
    put_header(&b, 3, 1, 1);
    put_kv_u32(&b, "general.alignment", 4);
    put_tensor(&b, "w", 1, ne, XT_TYPE_F32, 4);
    put_pad(&b, 4);
    put_zeros(&b, 20);
    expect_accept(&b);
}

static void open_should_reject_duplicate_tensor_names(void)
{
    gbuf b = {0};
    const uint64_t ne[1] = {8};
    put_header(&b, 3, 2, 0);
    put_tensor(&b, "w", 1, ne, XT_TYPE_F32, 0);
    size_t second = b.n;
    put_tensor(&b, "w", 1, ne, XT_TYPE_F32, 32);
    put_pad(&b, 32);
    put_zeros(&b, 64);
    char where[64];
    snprintf(where, sizeof where, "offset %zu:", second);
    expect_reject(&b, XT_ERR_FORMAT, where, "duplicate tensor name 'w' (first at offset 24)");
}

static void open_should_reject_overlapping_tensors(void)
{
    gbuf b = {0};
    const uint64_t ne[1] = {16};
    put_header(&b, 3, 3, 0);
    put_tensor(&b, "a", 1, ne, XT_TYPE_F32, 64);
    put_tensor(&b, "b", 1, ne, XT_TYPE_F32, 0);
    put_tensor(&b, "c", 1, ne, XT_TYPE_F32, 96); /* overlaps a = [64, 128) */
    put_pad(&b, 32);
    put_zeros(&b, 192);
    expect_reject(&b, XT_ERR_FORMAT,
                  "tensor 'c': data [96, 160) overlaps tensor 'a' at [64, 128)", NULL);
    /* out-of-order but disjoint tensors are fine */
    put_header(&b, 3, 2, 0);
    put_tensor(&b, "a", 1, ne, XT_TYPE_F32, 64);
    put_tensor(&b, "b", 1, ne, XT_TYPE_F32, 0);
    put_pad(&b, 32);
    put_zeros(&b, 128);
    expect_accept(&b);
}

static void open_should_reject_bad_tensor_names(void)
{
    char name[80];
    memset(name, 'n', sizeof name);
    const uint64_t ne[1] = {8};
    gbuf b = {0};
    name[XT_GGUF_MAX_NAME_BYTES] = '\0';
    put_header(&b, 3, 1, 0);
    put_tensor(&b, name, 1, ne, XT_TYPE_F32, 0);
    put_pad(&b, 32);
    put_zeros(&b, 32);
    expect_accept(&b);
    name[XT_GGUF_MAX_NAME_BYTES] = 'n';
    name[XT_GGUF_MAX_NAME_BYTES + 1] = '\0';
    put_header(&b, 3, 1, 0);
    put_tensor(&b, name, 1, ne, XT_TYPE_F32, 0);
    put_pad(&b, 32);
    put_zeros(&b, 32);
    expect_reject(&b, XT_ERR_FORMAT, "offset 24:", "name is 64 bytes, longer than the 63");
}

static void open_should_accept_a_file_without_tensors_or_padding(void)
{
    gbuf b = {0};
    put_header(&b, 3, 0, 1);
    put_kv_u32(&b, "x", 5); /* ends unaligned, no padding */
    xt_gguf *g = NULL;
    CHECK(xt_gguf_open_memory(b.p, b.n, NULL, &g, NULL) == XT_OK);
    if (g) {
        CHECK(!strcmp(xt_gguf_path(g), "<memory>"));
        CHECK(xt_gguf_tensor_count(g) == 0 && xt_gguf_alignment(g) == 32);
        CHECK(xt_gguf_data_offset(g) == 64);
        xt_gguf_close(g);
    }
    xt_gguf_close(NULL);
    xt_error err = {0};
    CHECK(xt_gguf_open_memory(NULL, 0, "null.gguf", &g, &err) == XT_ERR_FORMAT && g == NULL);
}

static void open_should_name_the_file_in_messages(void)
{
    xt_error err = {0};
    xt_gguf *g = NULL;
    CHECK(xt_gguf_open(XT_TMP_DIR "/does-not-exist.gguf", &g, &err) == XT_ERR_IO && g == NULL);
    CHECK_MSG(contains(err.msg, "does-not-exist.gguf"), "%s", err.msg);
    CHECK(xt_gguf_open(XT_TMP_DIR, &g, &err) == XT_ERR_IO);
    CHECK_MSG(contains(err.msg, "not a regular file"), "%s", err.msg);

    /* a truncated copy of a fixture on disk, opened through mmap */
    size_t n;
    unsigned char *data = read_fixture("tiny_moe_v3.gguf", &n);
    CHECK(data != NULL);
    if (!data) return;
    const char *path = XT_TMP_DIR "/truncated-model.gguf";
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f) {
        fwrite(data, 1, n / 2, f);
        fclose(f);
        CHECK(xt_gguf_open(path, &g, &err) == XT_ERR_FORMAT);
        CHECK_MSG(!strncmp(err.msg, path, strlen(path)) && contains(err.msg, ": offset "), "%s",
                  err.msg);
        CHECK_MSG(contains(err.msg, "past the end"), "%s", err.msg);
        f = fopen(path, "wb"); /* empty */
        if (f) fclose(f);
        CHECK(xt_gguf_open(path, &g, &err) == XT_ERR_FORMAT);
        CHECK_MSG(contains(err.msg, "truncated"), "%s", err.msg);
        remove(path);
    }
    free(data);
}

int main(void)
{
    RUN(open_should_match_the_gguf_package_on_every_value_and_tensor);
    RUN(get_should_return_not_found_naming_the_key);
    RUN(get_should_return_type_error_naming_key_and_both_types);
    RUN(get_uint_and_int_should_read_any_integer_type_with_range_checks);
    RUN(array_accessors_should_check_index_and_element_type);
    RUN(strings_should_be_length_delimited_views);
    RUN(find_tensor_should_miss_cleanly);
    RUN(open_should_fail_on_every_truncation_of_a_valid_file);
    RUN(open_should_survive_random_corruption);
    RUN(open_should_reject_v1_header);
    RUN(open_should_reject_other_versions_and_big_endian);
    RUN(open_should_reject_bad_magic_and_tiny_files);
    RUN(open_should_reject_absurd_counts_without_allocating);
    RUN(open_should_reject_absurd_string_lengths);
    RUN(open_should_reject_absurd_array_counts);
    RUN(open_should_reject_bad_value_types_and_bools);
    RUN(open_should_reject_nesting_too_deep);
    RUN(open_should_reject_duplicate_key);
    RUN(open_should_reject_bad_alignment_value);
    RUN(open_should_reject_bad_n_dims);
    RUN(open_should_reject_negative_and_overflowing_shapes);
    RUN(open_should_keep_unknown_type_readable_but_unusable);
    RUN(open_should_reject_partial_blocks);
    RUN(open_should_reject_offsets_past_the_end);
    RUN(open_should_reject_misaligned_offsets);
    RUN(open_should_reject_duplicate_tensor_names);
    RUN(open_should_reject_overlapping_tensors);
    RUN(open_should_reject_bad_tensor_names);
    RUN(open_should_accept_a_file_without_tensors_or_padding);
    RUN(open_should_name_the_file_in_messages);
    return xt_test_finish();
}
