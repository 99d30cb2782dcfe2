/* libFuzzer target for the GGUF reader: open an arbitrary image from memory, walk every key
 * (nested arrays included, through every accessor) and every tensor (touching each data byte),
 * close. Any crash, sanitizer report or broken invariant is a bug.
 *
 *     cmake -S . -B build-fuzz -G Ninja -DCMAKE_C_COMPILER=clang -DXT_FUZZ=ON
 *     cmake --build build-fuzz --target fuzz_gguf
 *     cp -r tests/fuzz/corpus/gguf /tmp/corpus
 *     build-fuzz/tests/fuzz/fuzz_gguf -max_total_time=60 /tmp/corpus
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "expertrace/gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken invariant: abort so libFuzzer records the input (fuzz harness, not library code). */
#define INVARIANT(c)                                                                               \
    do {                                                                                           \
        if (!(c)) abort();                                                                         \
    } while (0)

static volatile uint64_t sink;

static void walk_value(const xt_gguf_value *v, int depth)
{
    INVARIANT(v->type != XT_GGUF_ARRAY || depth <= XT_GGUF_MAX_DEPTH); /* a key's array is 1 */
    uint64_t h = (uint64_t)v->type;
    switch (v->type) {
    case XT_GGUF_STRING: {
        for (size_t i = 0; i < v->str.len; i++) h = h * 31 + v->str.bytes[i];
        char buf[16];
        INVARIANT(xt_gguf_str_copy(v->str, buf, sizeof buf) == v->str.len);
        break;
    }
    case XT_GGUF_ARRAY: {
        const xt_gguf_array *a = &v->arr;
        INVARIANT(a->type < XT_GGUF_TYPE_COUNT);
        const unsigned char *raw = xt_gguf_array_data(a);
        size_t es = xt_gguf_type_size(a->type);
        for (uint64_t i = 0; i < a->count; i++) {
            xt_gguf_value e;
            xt_error err = {0};
            INVARIANT(xt_gguf_array_get(a, i, &e, &err) == XT_OK);
            INVARIANT(e.type == a->type);
            if (raw) INVARIANT(es && !memcmp(raw + i * es, &e.u8, es)); /* little-endian host */
            if (a->type == XT_GGUF_STRING) {
                xt_gguf_str s;
                INVARIANT(xt_gguf_array_get_str(a, i, &s, NULL) == XT_OK && s.len == e.str.len);
            } else if (a->type == XT_GGUF_ARRAY) {
                xt_gguf_array c;
                INVARIANT(xt_gguf_array_get_array(a, i, &c, NULL) == XT_OK &&
                          c.count == e.arr.count);
            } else {
                int64_t iv;
                double dv;
                (void)xt_gguf_array_get_int(a, i, &iv, &err);
                (void)xt_gguf_array_get_float(a, i, &dv, &err);
            }
            walk_value(&e, depth + 1);
        }
        xt_gguf_value past;
        xt_error err = {0};
        INVARIANT(xt_gguf_array_get(a, a->count, &past, &err) == XT_ERR_RANGE);
        break;
    }
    default:
        h += v->u64; /* reads the union's first bytes; fine for every scalar */
        break;
    }
    sink += h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    xt_gguf *g = NULL;
    xt_error err = {0};
    xt_status s = xt_gguf_open_memory(data, size, "fuzz.gguf", &g, &err);
    if (s != XT_OK) {
        INVARIANT(g == NULL && err.status == s && err.msg[0] != '\0');
        return 0;
    }
    for (uint64_t i = 0; i < xt_gguf_kv_count(g); i++) {
        const char *key = xt_gguf_kv_key(g, i);
        INVARIANT(key != NULL && xt_gguf_find_key(g, key) == (int64_t)i);
        xt_gguf_value v;
        INVARIANT(xt_gguf_kv_value(g, i, &v, NULL) == XT_OK);
        walk_value(&v, 1);
        uint64_t u;
        int64_t iv;
        double d;
        (void)xt_gguf_get_uint(g, key, 0, UINT64_MAX, &u, &err);
        (void)xt_gguf_get_int(g, key, INT64_MIN, INT64_MAX, &iv, &err);
        (void)xt_gguf_get_float(g, key, &d, &err);
    }
    uint32_t align = xt_gguf_alignment(g);
    INVARIANT(align && !(align & (align - 1)));
    for (uint64_t i = 0; i < xt_gguf_tensor_count(g); i++) {
        const xt_gguf_tensor *t = xt_gguf_tensor_at(g, i);
        INVARIANT(xt_gguf_find_tensor(g, t->name) == t);
        INVARIANT(t->n_dims >= 1 && t->n_dims <= XT_GGUF_MAX_DIMS && t->n_elements >= 0);
        INVARIANT(t->offset % align == 0);
        const xt_gguf_tensor *u = NULL;
        xt_status ts = xt_gguf_get_tensor(g, t->name, &u, &err);
        INVARIANT(t->type_known ? ts == XT_OK && u == t : ts == XT_ERR_UNSUPPORTED);
        if (t->type_known && t->nbytes) {
            INVARIANT(xt_gguf_data_offset(g) + t->offset + t->nbytes <= size);
            const unsigned char *p = t->data;
            uint64_t h = 0;
            for (uint64_t k = 0; k < t->nbytes; k++) h += p[k];
            sink += h;
        }
    }
    xt_gguf_close(g);
    return 0;
}
