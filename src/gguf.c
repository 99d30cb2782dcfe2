/* GGUF v2/v3 reader (include/expertrace/gguf.h).
 *
 * File layout, all little endian: "GGUF", u32 version, u64 n_tensors, u64 n_kv; n_kv records of
 * (string key, u32 value type, value); n_tensors records of (string name, u32 n_dims,
 * u64 ne[n_dims], u32 ggml type, u64 offset); zero padding to the alignment; tensor data, each
 * tensor at data_start + offset. A string is a u64 byte count and the bytes (no NUL); an array is
 * a u32 element type, a u64 count and the elements. GGUF v1 used u32 for counts and lengths; v3
 * only added big-endian files, so v2 and v3 little-endian files read alike.
 *
 * Open validates everything once, so accessors afterwards need no checks beyond an index. Nothing
 * is allocated from a count in the file before the bytes that count describes have been seen:
 * the key/value and tensor tables grow as records are read, and an array is first walked
 * (validated, nothing stored) and only then indexed. A hostile count therefore costs at most a
 * scan of bytes that are really there.
 */
#include "expertrace/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "expertrace/quant.h"

#define GGUF_HEADER_BYTES 24u
/* Smallest encodings, used to bound counts by the bytes left before anything is allocated. */
#define MIN_KV_BYTES 13u     /* key length (8) + empty key + value type (4) + a u8 value (1) */
#define MIN_TENSOR_BYTES 32u /* name length (8) + n_dims (4) + one ne (8) + type (4) + offset (8) */
#define MIN_STRING_BYTES 8u
#define MIN_ARRAY_BYTES 12u  /* element type (4) + count (8) */

/* ---- arena: all small allocations live until close --------------------------------------- */

typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
    max_align_t data[]; /* cap bytes */
} chunk;

static void *arena_alloc(chunk **head, size_t n)
{
    const size_t align = sizeof(max_align_t);
    if (n > SIZE_MAX - align) return NULL;
    n = (n + align - 1) / align * align;
    if (n == 0) n = align;
    chunk *c = *head;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        if (cap > SIZE_MAX - sizeof(chunk)) return NULL;
        c = malloc(sizeof(chunk) + cap);
        if (!c) return NULL;
        c->next = *head;
        c->used = 0;
        c->cap = cap;
        *head = c;
    }
    void *p = (unsigned char *)c->data + c->used;
    c->used += n;
    return p;
}

static void arena_free(chunk *c)
{
    while (c) {
        chunk *next = c->next;
        free(c);
        c = next;
    }
}

/* ---- the reader ------------------------------------------------------------------------------ */

struct xt_gguf_arr {
    xt_gguf_type type;
    uint64_t count;
    const unsigned char *data;        /* first element */
    const uint64_t *str_at;           /* strings: element i's length field is at data + str_at[i] */
    struct xt_gguf_arr *child;        /* arrays of arrays: count nested arrays */
    const struct xt_gguf_arr *parent; /* for messages: the index path from the key */
    uint64_t index;                   /* position in parent */
    const char *file, *key;
};

typedef struct kv {
    const char *key;     /* NUL-terminated arena copy */
    uint64_t at;         /* file offset of the record */
    xt_gguf_value value; /* strings and arrays point into the file / arena */
} kv;

typedef struct tinfo {
    xt_gguf_tensor t;   /* first: xt_gguf_tensor_at hands out &tinfo.t */
    uint64_t offset_at; /* file offset of the record's offset field */
} tinfo;

struct xt_gguf {
    char *name;
    const unsigned char *base;
    uint64_t size;
    void *map; /* mmap'ed region (file opens only) */
    size_t map_bytes;
    uint32_t version;
    uint32_t alignment;
    uint64_t data_offset;
    kv *kvs;
    uint64_t n_kv;
    kv **kv_by_key; /* sorted by key */
    tinfo *tensors;
    uint64_t n_tensors;
    tinfo **tensor_by_name; /* sorted by name */
    chunk *arena;
};

/* Cursor over the image while opening. ctx prefixes messages ("key 'x': "). */
typedef struct rd {
    xt_gguf *g;
    const unsigned char *p;
    uint64_t size, pos;
    xt_error *err;
    char ctx[160];
} rd;

static uint16_t ld16(const unsigned char *p) { return (uint16_t)(p[0] | (unsigned)p[1] << 8); }

static uint32_t ld32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t ld64(const unsigned char *p)
{
    return (uint64_t)ld32(p) | (uint64_t)ld32(p + 4) << 32;
}

/* Two's complement reinterpretation without implementation-defined conversions. */
static int64_t as_i64(uint64_t u) { return u <= INT64_MAX ? (int64_t)u : -(int64_t)(~u) - 1; }

/* vsnprintf behind a function boundary: every caller bounds its output, and truncating a long
 * name inside a message is the intent. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 3, 4)))
#endif
static void fmt(char *dst, size_t n, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    vsnprintf(dst, n, f, ap);
    va_end(ap);
}

/* A name from the file, made printable for a message: bytes outside printable ASCII become \xNN,
 * and long names are cut with "...". */
static void printable(char *dst, size_t n, const unsigned char *s, uint64_t len)
{
    size_t o = 0;
    for (uint64_t i = 0; i < len; i++) {
        unsigned char c = s[i];
        if (o + 8 >= n || i >= 96) {
            memcpy(dst + o, "...", 4);
            return;
        }
        if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') {
            dst[o++] = (char)c;
        } else {
            static const char hex[] = "0123456789abcdef";
            dst[o++] = '\\';
            dst[o++] = 'x';
            dst[o++] = hex[c >> 4];
            dst[o++] = hex[c & 15];
        }
    }
    dst[o] = '\0';
}

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 4, 5)))
#endif
static xt_status fail_at(rd *r, uint64_t at, xt_status s, const char *f, ...)
{
    char what[640];
    va_list ap;
    va_start(ap, f);
    vsnprintf(what, sizeof what, f, ap);
    va_end(ap);
    return xt_error_set(r->err, s, "%s: offset %" PRIu64 ": %s%s", r->g->name, at, r->ctx, what);
}

static xt_status need(rd *r, uint64_t n, const char *what)
{
    if (r->size - r->pos < n)
        return fail_at(r, r->pos, XT_ERR_FORMAT,
                       "truncated: %s needs %" PRIu64 " bytes, %" PRIu64 " left", what, n,
                       r->size - r->pos);
    return XT_OK;
}

static xt_status rd_u32(rd *r, uint32_t *v, const char *what)
{
    xt_status s = need(r, 4, what);
    if (s) return s;
    *v = ld32(r->p + r->pos);
    r->pos += 4;
    return XT_OK;
}

static xt_status rd_u64(rd *r, uint64_t *v, const char *what)
{
    xt_status s = need(r, 8, what);
    if (s) return s;
    *v = ld64(r->p + r->pos);
    r->pos += 8;
    return XT_OK;
}

static xt_status rd_str(rd *r, xt_gguf_str *out, const char *what)
{
    uint64_t at = r->pos, len;
    xt_status s = rd_u64(r, &len, what);
    if (s) return s;
    if (len > r->size - r->pos)
        return fail_at(r, at, XT_ERR_FORMAT,
                       "%s length %" PRIu64 " exceeds the %" PRIu64 " bytes left in the file", what,
                       len, r->size - r->pos);
    out->bytes = r->p + r->pos;
    out->len = (size_t)len;
    r->pos += len;
    return XT_OK;
}

static char *arena_strdup(xt_gguf *g, const unsigned char *s, size_t len)
{
    char *d = arena_alloc(&g->arena, len + 1);
    if (!d) return NULL;
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

/* ---- value types ----------------------------------------------------------------------------- */

static const char *const type_names[XT_GGUF_TYPE_COUNT] = {
    [XT_GGUF_U8] = "u8",     [XT_GGUF_I8] = "i8",         [XT_GGUF_U16] = "u16",
    [XT_GGUF_I16] = "i16",   [XT_GGUF_U32] = "u32",       [XT_GGUF_I32] = "i32",
    [XT_GGUF_F32] = "f32",   [XT_GGUF_BOOL] = "bool",     [XT_GGUF_STRING] = "string",
    [XT_GGUF_ARRAY] = "array", [XT_GGUF_U64] = "u64",     [XT_GGUF_I64] = "i64",
    [XT_GGUF_F64] = "f64",
};

static const uint8_t type_sizes[XT_GGUF_TYPE_COUNT] = {
    [XT_GGUF_U8] = 1,  [XT_GGUF_I8] = 1,  [XT_GGUF_U16] = 2, [XT_GGUF_I16] = 2,
    [XT_GGUF_U32] = 4, [XT_GGUF_I32] = 4, [XT_GGUF_F32] = 4, [XT_GGUF_BOOL] = 1,
    [XT_GGUF_U64] = 8, [XT_GGUF_I64] = 8, [XT_GGUF_F64] = 8,
};

const char *xt_gguf_type_name(xt_gguf_type t)
{
    if ((unsigned)t >= XT_GGUF_TYPE_COUNT) return "invalid";
    return type_names[t];
}

size_t xt_gguf_type_size(xt_gguf_type t)
{
    if ((unsigned)t >= XT_GGUF_TYPE_COUNT) return 0;
    return type_sizes[t];
}

static bool is_int_type(xt_gguf_type t)
{
    switch (t) {
    case XT_GGUF_U8: case XT_GGUF_I8: case XT_GGUF_U16: case XT_GGUF_I16: case XT_GGUF_U32:
    case XT_GGUF_I32: case XT_GGUF_U64: case XT_GGUF_I64:
        return true;
    default:
        return false;
    }
}

/* Decodes one validated fixed-size value. */
static void decode_scalar(xt_gguf_type t, const unsigned char *p, xt_gguf_value *v)
{
    v->type = t;
    switch (t) {
    case XT_GGUF_U8: v->u8 = p[0]; break;
    case XT_GGUF_I8:
        v->i8 = (int8_t)as_i64((uint64_t)p[0] | (p[0] & 0x80 ? ~(uint64_t)0xff : 0));
        break;
    case XT_GGUF_U16: v->u16 = ld16(p); break;
    case XT_GGUF_I16: {
        uint16_t u = ld16(p);
        v->i16 = (int16_t)as_i64((uint64_t)u | (u & 0x8000u ? ~(uint64_t)0xffff : 0));
        break;
    }
    case XT_GGUF_U32: v->u32 = ld32(p); break;
    case XT_GGUF_I32: {
        uint32_t u = ld32(p);
        v->i32 = (int32_t)as_i64((uint64_t)u | (u & 0x80000000u ? ~(uint64_t)0xffffffffu : 0));
        break;
    }
    case XT_GGUF_F32: {
        uint32_t u = ld32(p);
        memcpy(&v->f32, &u, 4);
        break;
    }
    case XT_GGUF_BOOL: v->b = p[0] != 0; break;
    case XT_GGUF_U64: v->u64 = ld64(p); break;
    case XT_GGUF_I64: v->i64 = as_i64(ld64(p)); break;
    case XT_GGUF_F64: {
        uint64_t u = ld64(p);
        memcpy(&v->f64, &u, 8);
        break;
    }
    default: break;
    }
}

/* An integer value as (negative?, u64 two's-complement bits). */
static void int_of(const xt_gguf_value *v, bool *neg, uint64_t *u)
{
    int64_t i = 0;
    *neg = false;
    switch (v->type) {
    case XT_GGUF_U8: *u = v->u8; return;
    case XT_GGUF_U16: *u = v->u16; return;
    case XT_GGUF_U32: *u = v->u32; return;
    case XT_GGUF_U64: *u = v->u64; return;
    case XT_GGUF_I8: i = v->i8; break;
    case XT_GGUF_I16: i = v->i16; break;
    case XT_GGUF_I32: i = v->i32; break;
    case XT_GGUF_I64: i = v->i64; break;
    default: *u = 0; return;
    }
    *neg = i < 0;
    *u = (uint64_t)i;
}

/* ---- arrays: walk (validate) then index ------------------------------------------------------ */

/* Validates the array whose header is at r->pos and moves past it. depth is its nesting level
 * (a key's own array is 1). Allocates nothing. */
static xt_status walk_array(rd *r, int depth)
{
    uint64_t at = r->pos;
    uint32_t et;
    uint64_t count;
    xt_status s = rd_u32(r, &et, "array element type");
    if (s) return s;
    if (et >= XT_GGUF_TYPE_COUNT)
        return fail_at(r, at, XT_ERR_FORMAT,
                       "array element type %" PRIu32 " is not a GGUF type (0..12)", et);
    if (et == XT_GGUF_ARRAY && depth >= XT_GGUF_MAX_DEPTH)
        return fail_at(r, at, XT_ERR_FORMAT, "arrays nested deeper than %d levels",
                       XT_GGUF_MAX_DEPTH);
    s = rd_u64(r, &count, "array count");
    if (s) return s;
    uint64_t left = r->size - r->pos;
    uint64_t min = et == XT_GGUF_STRING ? MIN_STRING_BYTES
                   : et == XT_GGUF_ARRAY ? MIN_ARRAY_BYTES
                                         : type_sizes[et];
    if (count > left / min)
        return fail_at(r, at, XT_ERR_FORMAT,
                       "array of %" PRIu64 " %s elements cannot fit in the %" PRIu64
                       " bytes left in the file",
                       count, type_names[et], left);
    const unsigned char *p = r->p + r->pos;
    if (et == XT_GGUF_STRING) {
        for (uint64_t i = 0; i < count; i++) {
            left = r->size - r->pos;
            if (left < 8)
                return fail_at(r, r->pos, XT_ERR_FORMAT,
                               "truncated: length of string element %" PRIu64
                               " needs 8 bytes, %" PRIu64 " left",
                               i, left);
            uint64_t len = ld64(r->p + r->pos);
            if (len > left - 8)
                return fail_at(r, r->pos, XT_ERR_FORMAT,
                               "string element %" PRIu64 " length %" PRIu64
                               " exceeds the %" PRIu64 " bytes left in the file",
                               i, len, left - 8);
            r->pos += 8 + len;
        }
    } else if (et == XT_GGUF_ARRAY) {
        for (uint64_t i = 0; i < count; i++) {
            s = walk_array(r, depth + 1);
            if (s) return s;
        }
    } else {
        if (et == XT_GGUF_BOOL) {
            for (uint64_t i = 0; i < count; i++)
                if (p[i] > 1)
                    return fail_at(r, r->pos + i, XT_ERR_FORMAT,
                                   "bool element %" PRIu64 " is %u, not 0 or 1", i, p[i]);
        }
        r->pos += count * min;
    }
    return XT_OK;
}

/* Fills node for an array that walk_array accepted; returns the offset just past it in *end. */
static xt_status index_array(xt_gguf *g, uint64_t pos, struct xt_gguf_arr *node,
                             const struct xt_gguf_arr *parent, uint64_t index, const char *key,
                             uint64_t *end)
{
    const unsigned char *p = g->base;
    node->type = (xt_gguf_type)ld32(p + pos);
    node->count = ld64(p + pos + 4);
    node->parent = parent;
    node->index = index;
    node->file = g->name;
    node->key = key;
    node->str_at = NULL;
    node->child = NULL;
    pos += MIN_ARRAY_BYTES;
    node->data = p + pos;
    uint64_t start = pos;
    size_t elem = node->type == XT_GGUF_STRING  ? sizeof(uint64_t)
                  : node->type == XT_GGUF_ARRAY ? sizeof(struct xt_gguf_arr)
                                                : 1;
    if (node->count > SIZE_MAX / elem) return XT_ERR_NO_MEMORY;
    if (node->type == XT_GGUF_STRING) {
        uint64_t *at = arena_alloc(&g->arena, (size_t)node->count * sizeof *at);
        if (!at) return XT_ERR_NO_MEMORY;
        for (uint64_t i = 0; i < node->count; i++) {
            at[i] = pos - start;
            pos += 8 + ld64(p + pos);
        }
        node->str_at = at;
    } else if (node->type == XT_GGUF_ARRAY) {
        struct xt_gguf_arr *c = arena_alloc(&g->arena, (size_t)node->count * sizeof *c);
        if (!c) return XT_ERR_NO_MEMORY;
        for (uint64_t i = 0; i < node->count; i++) {
            xt_status s = index_array(g, pos, &c[i], node, i, key, &pos);
            if (s) return s;
        }
        node->child = c;
    } else {
        pos += node->count * type_sizes[node->type];
    }
    *end = pos;
    return XT_OK;
}

/* ---- opening -------------------------------------------------------------------------------- */

static int cmp_kv(const void *a, const void *b)
{
    const kv *x = *(kv *const *)a, *y = *(kv *const *)b;
    int c = strcmp(x->key, y->key);
    if (c) return c;
    return x->at < y->at ? -1 : x->at > y->at;
}

static int cmp_tensor_name(const void *a, const void *b)
{
    const tinfo *x = *(tinfo *const *)a, *y = *(tinfo *const *)b;
    int c = strcmp(x->t.name, y->t.name);
    if (c) return c;
    return x->t.info_offset < y->t.info_offset ? -1 : x->t.info_offset > y->t.info_offset;
}

static int cmp_tensor_offset(const void *a, const void *b)
{
    const tinfo *x = *(tinfo *const *)a, *y = *(tinfo *const *)b;
    if (x->t.offset != y->t.offset) return x->t.offset < y->t.offset ? -1 : 1;
    return x->t.info_offset < y->t.info_offset ? -1 : x->t.info_offset > y->t.info_offset;
}

static xt_status no_memory(rd *r, const char *what)
{
    return fail_at(r, r->pos, XT_ERR_NO_MEMORY, "out of memory for %s", what);
}

/* Grows *arr (of elem bytes each) to hold at least n + 1 entries. */
static bool grow(void **arr, uint64_t *cap, uint64_t n, size_t elem)
{
    if (n < *cap) return true;
    uint64_t c = *cap ? *cap * 2 : 16;
    if (c > SIZE_MAX / elem) return false;
    void *p = realloc(*arr, (size_t)c * elem);
    if (!p) return false;
    *arr = p;
    *cap = c;
    return true;
}

static xt_status read_header(rd *r, uint64_t *n_tensors, uint64_t *n_kv)
{
    xt_gguf *g = r->g;
    xt_status s = need(r, 4, "magic");
    if (s) return s;
    const unsigned char *m = r->p;
    if (memcmp(m, "GGUF", 4)) {
        char shown[40];
        printable(shown, sizeof shown, m, 4);
        return fail_at(r, 0, XT_ERR_FORMAT,
                       "not a GGUF file: magic is '%s' (%02x %02x %02x %02x), expected 'GGUF'",
                       shown, m[0], m[1], m[2], m[3]);
    }
    r->pos = 4;
    s = rd_u32(r, &g->version, "version");
    if (s) return s;
    uint32_t v = g->version;
    uint32_t swapped = (v >> 24) | ((v >> 8) & 0xff00u) | ((v << 8) & 0xff0000u) | (v << 24);
    if (v == 1)
        return fail_at(r, 4, XT_ERR_UNSUPPORTED,
                       "GGUF version 1 is not supported (it used 32-bit counts; only versions 2 "
                       "and 3 are read): convert the model again with a current llama.cpp");
    if ((v & 0xffffu) == 0 && swapped >= 1 && swapped <= 3)
        return fail_at(r, 4, XT_ERR_UNSUPPORTED,
                       "big-endian GGUF (version %" PRIu32 " byte-swapped) is not supported",
                       swapped);
    if (v != 2 && v != 3)
        return fail_at(r, 4, XT_ERR_UNSUPPORTED,
                       "GGUF version %" PRIu32 " is not supported (only versions 2 and 3)", v);
    s = rd_u64(r, n_tensors, "tensor count");
    if (!s) s = rd_u64(r, n_kv, "key/value count");
    if (s) return s;
    uint64_t left = r->size - r->pos;
    if (*n_kv > left / MIN_KV_BYTES)
        return fail_at(r, 16, XT_ERR_FORMAT,
                       "key/value count %" PRIu64 " cannot fit in the %" PRIu64
                       " bytes left (each pair takes at least %u)",
                       *n_kv, left, MIN_KV_BYTES);
    if (*n_tensors > left / MIN_TENSOR_BYTES)
        return fail_at(r, 8, XT_ERR_FORMAT,
                       "tensor count %" PRIu64 " cannot fit in the %" PRIu64
                       " bytes left (each tensor record takes at least %u)",
                       *n_tensors, left, MIN_TENSOR_BYTES);
    return XT_OK;
}

static xt_status read_kvs(rd *r, uint64_t n_kv)
{
    xt_gguf *g = r->g;
    uint64_t cap = 0;
    for (uint64_t i = 0; i < n_kv; i++) {
        uint64_t at = r->pos;
        xt_gguf_str key;
        fmt(r->ctx, sizeof r->ctx, "key/value pair %" PRIu64 ": ", i);
        xt_status s = rd_str(r, &key, "key");
        if (s) return s;
        if (memchr(key.bytes, 0, key.len))
            return fail_at(r, at + 8, XT_ERR_FORMAT, "key contains a NUL byte");
        if (!grow((void **)&g->kvs, &cap, g->n_kv, sizeof(kv))) return no_memory(r, "keys");
        kv *e = &g->kvs[g->n_kv];
        e->at = at;
        e->key = arena_strdup(g, key.bytes, key.len);
        if (!e->key) return no_memory(r, "keys");
        char shown[160];
        printable(shown, sizeof shown, key.bytes, key.len);
        fmt(r->ctx, sizeof r->ctx, "key '%s': ", shown);

        uint64_t type_at = r->pos;
        uint32_t type;
        s = rd_u32(r, &type, "value type");
        if (s) return s;
        if (type >= XT_GGUF_TYPE_COUNT)
            return fail_at(r, type_at, XT_ERR_FORMAT,
                           "value type %" PRIu32 " is not a GGUF type (0..12)", type);
        xt_gguf_value *v = &e->value;
        memset(v, 0, sizeof *v);
        v->type = (xt_gguf_type)type;
        if (type == XT_GGUF_STRING) {
            s = rd_str(r, &v->str, "string value");
            if (s) return s;
        } else if (type == XT_GGUF_ARRAY) {
            uint64_t start = r->pos, end;
            s = walk_array(r, 1);
            if (s) return s;
            struct xt_gguf_arr *node = arena_alloc(&g->arena, sizeof *node);
            if (!node || index_array(g, start, node, NULL, 0, e->key, &end))
                return no_memory(r, "arrays");
            v->arr.type = node->type;
            v->arr.count = node->count;
            v->arr.impl = node;
        } else {
            s = need(r, type_sizes[type], "value");
            if (s) return s;
            if (type == XT_GGUF_BOOL && r->p[r->pos] > 1)
                return fail_at(r, r->pos, XT_ERR_FORMAT, "bool value %u is not 0 or 1",
                               r->p[r->pos]);
            decode_scalar(v->type, r->p + r->pos, v);
            r->pos += type_sizes[type];
        }
        g->n_kv++;
    }
    r->ctx[0] = '\0';

    /* Sorted index for lookups; equal neighbours are duplicate keys (llama.cpp rejects them). */
    if (g->n_kv) {
        g->kv_by_key = malloc((size_t)g->n_kv * sizeof *g->kv_by_key);
        if (!g->kv_by_key) return no_memory(r, "the key index");
        for (uint64_t i = 0; i < g->n_kv; i++) g->kv_by_key[i] = &g->kvs[i];
        qsort(g->kv_by_key, (size_t)g->n_kv, sizeof *g->kv_by_key, cmp_kv);
        for (uint64_t i = 1; i < g->n_kv; i++) {
            const kv *a = g->kv_by_key[i - 1], *b = g->kv_by_key[i];
            if (!strcmp(a->key, b->key)) {
                char shown[160];
                printable(shown, sizeof shown, (const unsigned char *)b->key, strlen(b->key));
                return fail_at(r, b->at, XT_ERR_FORMAT,
                               "duplicate key '%s' (first at offset %" PRIu64 ")", shown, a->at);
            }
        }
    }
    return XT_OK;
}

static const kv *find_kv(const xt_gguf *g, const char *key)
{
    if (!g || !key || !g->n_kv) return NULL;
    size_t lo = 0, hi = (size_t)g->n_kv;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(g->kv_by_key[mid]->key, key);
        if (!c) return g->kv_by_key[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

static xt_status read_alignment(rd *r)
{
    xt_gguf *g = r->g;
    g->alignment = XT_GGUF_DEFAULT_ALIGNMENT;
    const kv *e = find_kv(g, "general.alignment");
    if (!e) return XT_OK;
    if (e->value.type != XT_GGUF_U32)
        return fail_at(r, e->at, XT_ERR_FORMAT, "general.alignment is %s, expected u32",
                       type_names[e->value.type]);
    uint32_t a = e->value.u32;
    if (a == 0 || (a & (a - 1)))
        return fail_at(r, e->at, XT_ERR_FORMAT,
                       "general.alignment = %" PRIu32 " is not a nonzero power of two", a);
    g->alignment = a;
    return XT_OK;
}

static xt_status read_tensor(rd *r, uint64_t i, tinfo *ti)
{
    xt_gguf *g = r->g;
    xt_gguf_tensor *t = &ti->t;
    memset(ti, 0, sizeof *ti);
    t->info_offset = r->pos;
    fmt(r->ctx, sizeof r->ctx, "tensor %" PRIu64 ": ", i);
    xt_gguf_str name;
    xt_status s = rd_str(r, &name, "name");
    if (s) return s;
    if (name.len > XT_GGUF_MAX_NAME_BYTES)
        return fail_at(r, t->info_offset, XT_ERR_FORMAT,
                       "name is %zu bytes, longer than the %d that ggml allows", name.len,
                       XT_GGUF_MAX_NAME_BYTES);
    if (memchr(name.bytes, 0, name.len))
        return fail_at(r, t->info_offset + 8, XT_ERR_FORMAT, "name contains a NUL byte");
    char *copy = arena_strdup(g, name.bytes, name.len);
    if (!copy) return no_memory(r, "tensor names");
    t->name = copy;
    char shown[160];
    printable(shown, sizeof shown, name.bytes, name.len);
    fmt(r->ctx, sizeof r->ctx, "tensor '%s': ", shown);

    uint64_t at = r->pos;
    s = rd_u32(r, &t->n_dims, "n_dims");
    if (s) return s;
    if (t->n_dims < 1 || t->n_dims > XT_GGUF_MAX_DIMS)
        return fail_at(r, at, XT_ERR_FORMAT, "n_dims = %" PRIu32 ", expected 1 to %d", t->n_dims,
                       XT_GGUF_MAX_DIMS);
    uint64_t dims_at = r->pos;
    int64_t prod = 1; /* of the nonzero dims, so every partial product fits too */
    bool any_zero = false;
    for (uint32_t j = 0; j < XT_GGUF_MAX_DIMS; j++) t->ne[j] = 1;
    for (uint32_t j = 0; j < t->n_dims; j++) {
        uint64_t ne_at = r->pos, u;
        char what[16];
        fmt(what, sizeof what, "ne[%" PRIu32 "]", j);
        s = rd_u64(r, &u, what);
        if (s) return s;
        if (u > INT64_MAX)
            return fail_at(r, ne_at, XT_ERR_FORMAT, "ne[%" PRIu32 "] = %" PRId64 " is negative", j,
                           as_i64(u));
        t->ne[j] = (int64_t)u;
        if (u == 0) {
            any_zero = true;
        } else if (prod > INT64_MAX / t->ne[j]) {
            return fail_at(r, dims_at, XT_ERR_FORMAT,
                           "shape overflows: the product of ne[0..%" PRIu32 "] exceeds INT64_MAX",
                           j);
        } else {
            prod *= t->ne[j];
        }
    }
    t->n_elements = any_zero ? 0 : prod;

    at = r->pos;
    s = rd_u32(r, &t->type, "type");
    if (s) return s;
    const xt_type_traits *tr = xt_type_get_traits(t->type);
    if (tr) {
        t->type_known = true;
        t->type_name = tr->name;
        if (t->ne[0] % tr->block_size)
            return fail_at(r, at, XT_ERR_FORMAT,
                           "ne[0] = %" PRId64 " is not a multiple of the %s block size %" PRIu32,
                           t->ne[0], tr->name, tr->block_size);
        xt_error e2 = {0};
        if (xt_type_nbytes(t->type, (uint64_t)t->n_elements, &t->nbytes, &e2))
            return fail_at(r, at, XT_ERR_FORMAT, "%s", e2.msg); /* e.g. bytes overflow 64 bits */
    } else {
        char buf[32];
        fmt(buf, sizeof buf, "unknown (%" PRIu32 ")", t->type);
        t->type_name = arena_strdup(g, (const unsigned char *)buf, strlen(buf));
        if (!t->type_name) return no_memory(r, "type names");
    }

    ti->offset_at = r->pos;
    s = rd_u64(r, &t->offset, "data offset");
    if (s) return s;
    if (t->offset % g->alignment)
        return fail_at(r, ti->offset_at, XT_ERR_FORMAT,
                       "data offset %" PRIu64 " is not a multiple of the alignment %" PRIu32,
                       t->offset, g->alignment);
    return XT_OK;
}

static xt_status read_tensors(rd *r, uint64_t n_tensors)
{
    xt_gguf *g = r->g;
    uint64_t cap = 0;
    for (uint64_t i = 0; i < n_tensors; i++) {
        if (!grow((void **)&g->tensors, &cap, g->n_tensors, sizeof(tinfo)))
            return no_memory(r, "tensors");
        xt_status s = read_tensor(r, i, &g->tensors[g->n_tensors]);
        if (s) return s;
        g->n_tensors++;
    }
    r->ctx[0] = '\0';

    /* The data section starts at the first aligned offset after the directory. */
    uint64_t pad = (g->alignment - r->pos % g->alignment) % g->alignment;
    if (r->pos > UINT64_MAX - pad)
        return fail_at(r, r->pos, XT_ERR_FORMAT, "data section overflows");
    g->data_offset = r->pos + pad;
    uint64_t data_bytes = g->data_offset <= g->size ? g->size - g->data_offset : 0;

    for (uint64_t i = 0; i < g->n_tensors; i++) {
        tinfo *ti = &g->tensors[i];
        xt_gguf_tensor *t = &ti->t;
        if (t->offset > data_bytes || t->nbytes > data_bytes - t->offset) {
            char shown[160];
            printable(shown, sizeof shown, (const unsigned char *)t->name, strlen(t->name));
            return fail_at(r, ti->offset_at, XT_ERR_FORMAT,
                           "tensor '%s': data at offset %" PRIu64 " + %" PRIu64
                           " bytes runs past the end of the file (data section: %" PRIu64
                           " bytes from file offset %" PRIu64 ")",
                           shown, t->offset, t->nbytes, data_bytes, g->data_offset);
        }
        if (t->type_known)
            t->data = g->base + (g->data_offset <= g->size ? g->data_offset + t->offset : g->size);
    }

    if (!g->n_tensors) return XT_OK;
    tinfo **order = malloc((size_t)g->n_tensors * sizeof *order);
    if (!order) return no_memory(r, "the tensor index");
    /* Overlap: sort the tensors that occupy bytes by offset; neighbours must not intersect. */
    size_t n = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (g->tensors[i].t.type_known && g->tensors[i].t.nbytes) order[n++] = &g->tensors[i];
    if (n > 1) qsort(order, n, sizeof *order, cmp_tensor_offset);
    for (size_t i = 1; i < n; i++) {
        const xt_gguf_tensor *a = &order[i - 1]->t, *b = &order[i]->t;
        if (a->offset + a->nbytes > b->offset) {
            char sa[160], sb[160];
            printable(sa, sizeof sa, (const unsigned char *)a->name, strlen(a->name));
            printable(sb, sizeof sb, (const unsigned char *)b->name, strlen(b->name));
            uint64_t at = order[i]->offset_at;
            free(order);
            return fail_at(r, at, XT_ERR_FORMAT,
                           "tensor '%s': data [%" PRIu64 ", %" PRIu64
                           ") overlaps tensor '%s' at [%" PRIu64 ", %" PRIu64 ")",
                           sb, b->offset, b->offset + b->nbytes, sa, a->offset,
                           a->offset + a->nbytes);
        }
    }
    /* Names: sorted index for lookups; equal neighbours are duplicates. */
    for (uint64_t i = 0; i < g->n_tensors; i++) order[i] = &g->tensors[i];
    if (g->n_tensors > 1) qsort(order, (size_t)g->n_tensors, sizeof *order, cmp_tensor_name);
    g->tensor_by_name = order;
    for (uint64_t i = 1; i < g->n_tensors; i++) {
        const xt_gguf_tensor *a = &order[i - 1]->t, *b = &order[i]->t;
        if (!strcmp(a->name, b->name)) {
            char shown[160];
            printable(shown, sizeof shown, (const unsigned char *)b->name, strlen(b->name));
            return fail_at(r, b->info_offset, XT_ERR_FORMAT,
                           "duplicate tensor name '%s' (first at offset %" PRIu64 ")", shown,
                           a->info_offset);
        }
    }
    return XT_OK;
}

static xt_status open_image(const void *data, size_t size, const char *name, void *map,
                            xt_gguf **out, xt_error *err)
{
    *out = NULL;
    xt_gguf *g = calloc(1, sizeof *g);
    if (!g) {
        if (map) munmap(map, size);
        return xt_error_set(err, XT_ERR_NO_MEMORY, "%s: out of memory", name);
    }
    g->map = map;
    g->map_bytes = size;
    g->base = data;
    g->size = size;
    size_t nlen = strlen(name);
    g->name = malloc(nlen + 1);
    if (!g->name) {
        xt_gguf_close(g);
        return xt_error_set(err, XT_ERR_NO_MEMORY, "%s: out of memory", name);
    }
    memcpy(g->name, name, nlen + 1);

    rd r = {.g = g, .p = g->base, .size = size, .pos = 0, .err = err};
    uint64_t n_tensors, n_kv;
    xt_status s = read_header(&r, &n_tensors, &n_kv);
    if (!s) s = read_kvs(&r, n_kv);
    if (!s) s = read_alignment(&r);
    if (!s) s = read_tensors(&r, n_tensors);
    if (s) {
        xt_gguf_close(g);
        return s;
    }
    *out = g;
    return XT_OK;
}

xt_status xt_gguf_open_memory(const void *data, size_t size, const char *name, xt_gguf **out,
                              xt_error *err)
{
    static const unsigned char empty[1] = {0};
    if (!out) return xt_error_set(err, XT_ERR_USAGE, "xt_gguf_open_memory: out is NULL");
    return open_image(data ? data : empty, data ? size : 0, name ? name : "<memory>", NULL, out,
                      err);
}

xt_status xt_gguf_open(const char *path, xt_gguf **out, xt_error *err)
{
    if (!out) return xt_error_set(err, XT_ERR_USAGE, "xt_gguf_open: out is NULL");
    *out = NULL;
    if (!path) return xt_error_set(err, XT_ERR_USAGE, "xt_gguf_open: path is NULL");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return xt_error_set(err, XT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st)) {
        int e = errno;
        close(fd);
        return xt_error_set(err, XT_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return xt_error_set(err, XT_ERR_IO, "%s: not a regular file", path);
    }
    if (st.st_size < 0 || (uintmax_t)st.st_size > (uintmax_t)(SIZE_MAX >> 1)) {
        close(fd);
        return xt_error_set(err, XT_ERR_IO, "%s: file too large to map", path);
    }
    size_t size = (size_t)st.st_size;
    void *map = NULL;
    if (size) {
        map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            int e = errno;
            close(fd);
            return xt_error_set(err, XT_ERR_IO, "%s: cannot map %zu bytes: %s", path, size,
                                strerror(e));
        }
    }
    close(fd);
    static const unsigned char empty[1] = {0};
    return open_image(map ? map : empty, size, path, map, out, err);
}

void xt_gguf_close(xt_gguf *g)
{
    if (!g) return;
    if (g->map) munmap(g->map, g->map_bytes);
    free(g->kvs);
    free(g->kv_by_key);
    free(g->tensors);
    free(g->tensor_by_name);
    arena_free(g->arena);
    free(g->name);
    free(g);
}

/* ---- file-level accessors ------------------------------------------------------------------ */

const char *xt_gguf_path(const xt_gguf *g) { return g->name; }
uint32_t xt_gguf_version(const xt_gguf *g) { return g->version; }
uint32_t xt_gguf_alignment(const xt_gguf *g) { return g->alignment; }
uint64_t xt_gguf_file_size(const xt_gguf *g) { return g->size; }
uint64_t xt_gguf_data_offset(const xt_gguf *g) { return g->data_offset; }

/* ---- strings ------------------------------------------------------------------------------- */

bool xt_gguf_str_eq(xt_gguf_str s, const char *cstr)
{
    size_t n = strlen(cstr);
    return n == s.len && (n == 0 || !memcmp(s.bytes, cstr, n));
}

size_t xt_gguf_str_copy(xt_gguf_str s, char *dst, size_t dst_bytes)
{
    if (dst_bytes) {
        size_t n = s.len < dst_bytes - 1 ? s.len : dst_bytes - 1;
        if (n) memcpy(dst, s.bytes, n);
        dst[n] = '\0';
    }
    return s.len;
}

/* ---- metadata accessors -------------------------------------------------------------------- */

uint64_t xt_gguf_kv_count(const xt_gguf *g) { return g->n_kv; }

const char *xt_gguf_kv_key(const xt_gguf *g, uint64_t i)
{
    return i < g->n_kv ? g->kvs[i].key : NULL;
}

xt_gguf_type xt_gguf_kv_type(const xt_gguf *g, uint64_t i)
{
    return i < g->n_kv ? g->kvs[i].value.type : XT_GGUF_TYPE_COUNT;
}

xt_status xt_gguf_kv_value(const xt_gguf *g, uint64_t i, xt_gguf_value *out, xt_error *err)
{
    if (i >= g->n_kv)
        return xt_error_set(err, XT_ERR_RANGE,
                            "%s: key/value index %" PRIu64 " is out of range (%" PRIu64 " pairs)",
                            g->name, i, g->n_kv);
    *out = g->kvs[i].value;
    return XT_OK;
}

int64_t xt_gguf_find_key(const xt_gguf *g, const char *key)
{
    const kv *e = find_kv(g, key);
    return e ? (int64_t)(e - g->kvs) : -1;
}

/* "u32", or "array of string" for arrays. */
static void describe_type(char *dst, size_t n, const xt_gguf_value *v)
{
    if (v->type == XT_GGUF_ARRAY)
        fmt(dst, n, "array of %s", xt_gguf_type_name(v->arr.type));
    else
        fmt(dst, n, "%s", xt_gguf_type_name(v->type));
}

static xt_status lookup(const xt_gguf *g, const char *key, const kv **out, xt_error *err)
{
    const kv *e = find_kv(g, key);
    if (!e)
        return xt_error_set(err, XT_ERR_NOT_FOUND, "%s: key '%s' not found", g->name,
                            key ? key : "(null)");
    *out = e;
    return XT_OK;
}

static xt_status get_typed(const xt_gguf *g, const char *key, xt_gguf_type want,
                           xt_gguf_value *out, xt_error *err)
{
    const kv *e = NULL;
    xt_status s = lookup(g, key, &e, err);
    if (s) return s;
    if (e->value.type != want) {
        char have[48];
        describe_type(have, sizeof have, &e->value);
        return xt_error_set(err, XT_ERR_TYPE, "%s: key '%s' is %s, expected %s", g->name, key,
                            have, xt_gguf_type_name(want));
    }
    *out = e->value;
    return XT_OK;
}

xt_status xt_gguf_get(const xt_gguf *g, const char *key, xt_gguf_value *out, xt_error *err)
{
    const kv *e = NULL;
    xt_status s = lookup(g, key, &e, err);
    if (s) return s;
    *out = e->value;
    return XT_OK;
}

#define XT_GGUF_GETTER(suffix, ctype, tag, member)                                                 \
    xt_status xt_gguf_get_##suffix(const xt_gguf *g, const char *key, ctype *out, xt_error *err)   \
    {                                                                                              \
        xt_gguf_value v;                                                                           \
        xt_status s = get_typed(g, key, tag, &v, err);                                             \
        if (s) return s;                                                                           \
        *out = v.member;                                                                           \
        return XT_OK;                                                                              \
    }

XT_GGUF_GETTER(u8, uint8_t, XT_GGUF_U8, u8)
XT_GGUF_GETTER(i8, int8_t, XT_GGUF_I8, i8)
XT_GGUF_GETTER(u16, uint16_t, XT_GGUF_U16, u16)
XT_GGUF_GETTER(i16, int16_t, XT_GGUF_I16, i16)
XT_GGUF_GETTER(u32, uint32_t, XT_GGUF_U32, u32)
XT_GGUF_GETTER(i32, int32_t, XT_GGUF_I32, i32)
XT_GGUF_GETTER(u64, uint64_t, XT_GGUF_U64, u64)
XT_GGUF_GETTER(i64, int64_t, XT_GGUF_I64, i64)
XT_GGUF_GETTER(f32, float, XT_GGUF_F32, f32)
XT_GGUF_GETTER(f64, double, XT_GGUF_F64, f64)
XT_GGUF_GETTER(bool, bool, XT_GGUF_BOOL, b)
XT_GGUF_GETTER(str, xt_gguf_str, XT_GGUF_STRING, str)
XT_GGUF_GETTER(array, xt_gguf_array, XT_GGUF_ARRAY, arr)
#undef XT_GGUF_GETTER

static xt_status get_integer(const xt_gguf *g, const char *key, bool *neg, uint64_t *u,
                             xt_error *err)
{
    const kv *e = NULL;
    xt_status s = lookup(g, key, &e, err);
    if (s) return s;
    if (!is_int_type(e->value.type)) {
        char have[48];
        describe_type(have, sizeof have, &e->value);
        return xt_error_set(err, XT_ERR_TYPE, "%s: key '%s' is %s, expected an integer", g->name,
                            key, have);
    }
    int_of(&e->value, neg, u);
    return XT_OK;
}

static void int_text(char *dst, size_t n, bool neg, uint64_t u)
{
    if (neg) fmt(dst, n, "%" PRId64, as_i64(u));
    else fmt(dst, n, "%" PRIu64, u);
}

xt_status xt_gguf_get_uint(const xt_gguf *g, const char *key, uint64_t min, uint64_t max,
                           uint64_t *out, xt_error *err)
{
    bool neg;
    uint64_t u;
    xt_status s = get_integer(g, key, &neg, &u, err);
    if (s) return s;
    if (neg || u < min || u > max) {
        char text[32];
        int_text(text, sizeof text, neg, u);
        return xt_error_set(err, XT_ERR_RANGE,
                            "%s: key '%s' = %s is out of range [%" PRIu64 ", %" PRIu64 "]", g->name,
                            key, text, min, max);
    }
    *out = u;
    return XT_OK;
}

xt_status xt_gguf_get_int(const xt_gguf *g, const char *key, int64_t min, int64_t max,
                          int64_t *out, xt_error *err)
{
    bool neg;
    uint64_t u;
    xt_status s = get_integer(g, key, &neg, &u, err);
    if (s) return s;
    int64_t i = as_i64(u);
    if ((!neg && u > INT64_MAX) || i < min || i > max) {
        char text[32];
        int_text(text, sizeof text, neg, u);
        return xt_error_set(err, XT_ERR_RANGE,
                            "%s: key '%s' = %s is out of range [%" PRId64 ", %" PRId64 "]", g->name,
                            key, text, min, max);
    }
    *out = i;
    return XT_OK;
}

xt_status xt_gguf_get_float(const xt_gguf *g, const char *key, double *out, xt_error *err)
{
    const kv *e = NULL;
    xt_status s = lookup(g, key, &e, err);
    if (s) return s;
    if (e->value.type == XT_GGUF_F32) *out = e->value.f32;
    else if (e->value.type == XT_GGUF_F64) *out = e->value.f64;
    else {
        char have[48];
        describe_type(have, sizeof have, &e->value);
        return xt_error_set(err, XT_ERR_TYPE, "%s: key '%s' is %s, expected f32 or f64", g->name,
                            key, have);
    }
    return XT_OK;
}

/* ---- array accessors ----------------------------------------------------------------------- */

/* "key 'k'[2][0]" for messages. */
static void array_path(char *dst, size_t n, const struct xt_gguf_arr *a)
{
    uint64_t idx[XT_GGUF_MAX_DEPTH];
    int depth = 0;
    for (const struct xt_gguf_arr *p = a; p->parent && depth < XT_GGUF_MAX_DEPTH; p = p->parent)
        idx[depth++] = p->index;
    size_t o = 0;
    fmt(dst, n, "%s: key '%s'", a->file, a->key);
    o = strlen(dst);
    while (depth-- > 0 && o < n) {
        fmt(dst + o, n - o, "[%" PRIu64 "]", idx[depth]);
        o += strlen(dst + o);
    }
}

static xt_status check_index(const xt_gguf_array *a, uint64_t i, xt_error *err)
{
    if (!a->impl)
        return xt_error_set(err, XT_ERR_RANGE, "array index %" PRIu64 " of an empty array view", i);
    if (i >= a->impl->count) {
        char path[512];
        array_path(path, sizeof path, a->impl);
        return xt_error_set(err, XT_ERR_RANGE,
                            "%s: index %" PRIu64 " is out of range (%" PRIu64 " elements)", path, i,
                            a->impl->count);
    }
    return XT_OK;
}

static void element(const struct xt_gguf_arr *a, uint64_t i, xt_gguf_value *out)
{
    memset(out, 0, sizeof *out);
    out->type = a->type;
    if (a->type == XT_GGUF_STRING) {
        const unsigned char *p = a->data + a->str_at[i];
        out->str.len = (size_t)ld64(p);
        out->str.bytes = p + 8;
    } else if (a->type == XT_GGUF_ARRAY) {
        const struct xt_gguf_arr *c = &a->child[i];
        out->arr.type = c->type;
        out->arr.count = c->count;
        out->arr.impl = c;
    } else {
        decode_scalar(a->type, a->data + i * type_sizes[a->type], out);
    }
}

static xt_status element_type_error(const xt_gguf_array *a, const char *want, xt_error *err)
{
    char path[512];
    array_path(path, sizeof path, a->impl);
    return xt_error_set(err, XT_ERR_TYPE, "%s: elements are %s, expected %s", path,
                        xt_gguf_type_name(a->impl->type), want);
}

xt_status xt_gguf_array_get(const xt_gguf_array *a, uint64_t i, xt_gguf_value *out, xt_error *err)
{
    xt_status s = check_index(a, i, err);
    if (s) return s;
    element(a->impl, i, out);
    return XT_OK;
}

xt_status xt_gguf_array_get_str(const xt_gguf_array *a, uint64_t i, xt_gguf_str *out,
                                xt_error *err)
{
    xt_status s = check_index(a, i, err);
    if (s) return s;
    if (a->impl->type != XT_GGUF_STRING) return element_type_error(a, "string", err);
    xt_gguf_value v;
    element(a->impl, i, &v);
    *out = v.str;
    return XT_OK;
}

xt_status xt_gguf_array_get_array(const xt_gguf_array *a, uint64_t i, xt_gguf_array *out,
                                  xt_error *err)
{
    xt_status s = check_index(a, i, err);
    if (s) return s;
    if (a->impl->type != XT_GGUF_ARRAY) return element_type_error(a, "array", err);
    xt_gguf_value v;
    element(a->impl, i, &v);
    *out = v.arr;
    return XT_OK;
}

xt_status xt_gguf_array_get_int(const xt_gguf_array *a, uint64_t i, int64_t *out, xt_error *err)
{
    xt_status s = check_index(a, i, err);
    if (s) return s;
    if (!is_int_type(a->impl->type)) return element_type_error(a, "an integer", err);
    xt_gguf_value v;
    element(a->impl, i, &v);
    bool neg;
    uint64_t u;
    int_of(&v, &neg, &u);
    if (!neg && u > INT64_MAX) {
        char path[512];
        array_path(path, sizeof path, a->impl);
        return xt_error_set(err, XT_ERR_RANGE, "%s[%" PRIu64 "] = %" PRIu64 " exceeds INT64_MAX",
                            path, i, u);
    }
    *out = as_i64(u);
    return XT_OK;
}

xt_status xt_gguf_array_get_float(const xt_gguf_array *a, uint64_t i, double *out, xt_error *err)
{
    xt_status s = check_index(a, i, err);
    if (s) return s;
    if (a->impl->type != XT_GGUF_F32 && a->impl->type != XT_GGUF_F64)
        return element_type_error(a, "f32 or f64", err);
    xt_gguf_value v;
    element(a->impl, i, &v);
    *out = v.type == XT_GGUF_F32 ? (double)v.f32 : v.f64;
    return XT_OK;
}

const void *xt_gguf_array_data(const xt_gguf_array *a)
{
    if (!a->impl || a->impl->type == XT_GGUF_STRING || a->impl->type == XT_GGUF_ARRAY) return NULL;
    return a->impl->data;
}

/* ---- tensors ------------------------------------------------------------------------------- */

uint64_t xt_gguf_tensor_count(const xt_gguf *g) { return g->n_tensors; }

const xt_gguf_tensor *xt_gguf_tensor_at(const xt_gguf *g, uint64_t i)
{
    return i < g->n_tensors ? &g->tensors[i].t : NULL;
}

const xt_gguf_tensor *xt_gguf_find_tensor(const xt_gguf *g, const char *name)
{
    if (!g || !name || !g->n_tensors) return NULL;
    size_t lo = 0, hi = (size_t)g->n_tensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(g->tensor_by_name[mid]->t.name, name);
        if (!c) return &g->tensor_by_name[mid]->t;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

xt_status xt_gguf_get_tensor(const xt_gguf *g, const char *name, const xt_gguf_tensor **out,
                             xt_error *err)
{
    const xt_gguf_tensor *t = xt_gguf_find_tensor(g, name);
    if (!t)
        return xt_error_set(err, XT_ERR_NOT_FOUND, "%s: tensor '%s' not found", g->name,
                            name ? name : "(null)");
    if (!t->type_known)
        return xt_error_set(err, XT_ERR_UNSUPPORTED,
                            "%s: offset %" PRIu64 ": tensor '%s' has unknown ggml type %" PRIu32,
                            g->name, t->info_offset, t->name, t->type);
    *out = t;
    return XT_OK;
}
