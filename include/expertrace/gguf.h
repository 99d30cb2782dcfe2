/* GGUF reader: the metadata and tensor directory of llama.cpp model files (GGUF v2 and v3).
 *
 *     xt_gguf *g;
 *     if (xt_gguf_open("model.gguf", &g, &err)) return xt_cli_fail(&err);
 *     uint64_t n_layer;
 *     xt_gguf_get_uint(g, "qwen3moe.block_count", 1, 4096, &n_layer, &err);
 *     const xt_gguf_tensor *t = xt_gguf_find_tensor(g, "token_embd.weight");
 *     xt_gguf_close(g);
 *
 * The file is memory-mapped read-only; strings, arrays and tensor data are views into the mapping,
 * valid until xt_gguf_close. Opening validates the whole directory up front (every length, count,
 * shape, type, offset, alignment and overlap; duplicate keys and tensor names) so that later
 * accessors cannot read outside the file; a bad file fails with a message naming the file, the byte
 * offset and the field. Only little-endian files are read (big-endian GGUF is reported as such).
 *
 * Rejected at open (XT_ERR_FORMAT unless noted): a bad magic; versions other than 2 and 3, and
 * big-endian files (XT_ERR_UNSUPPORTED); counts, lengths or array sizes larger than the bytes
 * left; value or element types outside 0..12; bools other than 0 or 1; arrays nested deeper than
 * XT_GGUF_MAX_DEPTH; NUL bytes in keys or tensor names; duplicate keys or tensor names (as
 * llama.cpp); general.alignment that is not a u32 nonzero power of two; tensor names over 63
 * bytes; n_dims outside 1..4; a negative ne; element counts or byte sizes that overflow; rows
 * (ne[0]) that are not whole quant blocks; unaligned data offsets; data past the end of the file;
 * overlapping tensor data. Unlike llama.cpp, which wants each tensor exactly where the previous
 * one's padded data ends, any aligned, non-overlapping layout is accepted. Unknown ggml type
 * numbers are not rejected: see xt_gguf_tensor.type_known.
 */
#ifndef EXPERTRACE_GGUF_H
#define EXPERTRACE_GGUF_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "expertrace/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define XT_GGUF_DEFAULT_ALIGNMENT 32u
#define XT_GGUF_MAX_DIMS 4
/* Arrays may hold arrays; an array of arrays of u32 is nesting depth 2. Deeper files are rejected
 * (llama.cpp itself reads no nested arrays; the gguf Python package writes them). */
#define XT_GGUF_MAX_DEPTH 8
/* Longest tensor name in bytes: ggml's GGML_MAX_NAME (64) less the terminating NUL. */
#define XT_GGUF_MAX_NAME_BYTES 63

/* Metadata value types; the numbers are the file's. */
typedef enum xt_gguf_type {
    XT_GGUF_U8 = 0,
    XT_GGUF_I8 = 1,
    XT_GGUF_U16 = 2,
    XT_GGUF_I16 = 3,
    XT_GGUF_U32 = 4,
    XT_GGUF_I32 = 5,
    XT_GGUF_F32 = 6,
    XT_GGUF_BOOL = 7,
    XT_GGUF_STRING = 8,
    XT_GGUF_ARRAY = 9,
    XT_GGUF_U64 = 10,
    XT_GGUF_I64 = 11,
    XT_GGUF_F64 = 12,
    XT_GGUF_TYPE_COUNT = 13
} xt_gguf_type;

/* "u8", "i32", "f32", "bool", "string", "array", ...; "invalid" for other numbers. */
const char *xt_gguf_type_name(xt_gguf_type t);

/* Bytes of one value of a fixed-size type; 0 for string and array (and invalid numbers). */
size_t xt_gguf_type_size(xt_gguf_type t);

/* A string value: len bytes in the file, NOT NUL-terminated, may contain NUL bytes, UTF-8 by the
 * spec but not validated. `bytes` is unsigned char so that passing it to a function expecting a
 * C string (strcmp, strlen, fopen) is a -Wpointer-sign warning, an error under the project's
 * -Werror. printf's "%s" is not caught that way: print it with
 *     printf("key = " XT_GGUF_STR_FMT "\n", XT_GGUF_STR_ARG(s));
 * compare it with xt_gguf_str_eq, or copy it with xt_gguf_str_copy. */
typedef struct xt_gguf_str {
    const unsigned char *bytes; /* into the mapping; valid until xt_gguf_close */
    size_t len;
} xt_gguf_str;

#define XT_GGUF_STR_FMT "%.*s"
#define XT_GGUF_STR_ARG(s)                                                                         \
    (int)((s).len > (size_t)INT_MAX ? INT_MAX : (int)(s).len), (const char *)(s).bytes

/* True when s holds exactly the bytes of the C string cstr. */
bool xt_gguf_str_eq(xt_gguf_str s, const char *cstr);

/* Copies s into dst as a NUL-terminated string, truncating to dst_bytes - 1 bytes (a NUL inside
 * s ends the C string early). Returns s.len, so `xt_gguf_str_copy(s, buf, n) >= n` means
 * truncated. dst may be NULL when dst_bytes is 0. */
size_t xt_gguf_str_copy(xt_gguf_str s, char *dst, size_t dst_bytes);

struct xt_gguf_arr; /* private */

/* An array value: a view, valid until xt_gguf_close. Read elements with xt_gguf_array_get*. */
typedef struct xt_gguf_array {
    xt_gguf_type type; /* element type (XT_GGUF_ARRAY for arrays of arrays) */
    uint64_t count;    /* number of elements (may be 0) */
    const struct xt_gguf_arr *impl;
} xt_gguf_array;

/* One metadata value. Read the member that `type` names. */
typedef struct xt_gguf_value {
    xt_gguf_type type;
    union {
        uint8_t u8;
        int8_t i8;
        uint16_t u16;
        int16_t i16;
        uint32_t u32;
        int32_t i32;
        uint64_t u64;
        int64_t i64;
        float f32;
        double f64;
        bool b;
        xt_gguf_str str;
        xt_gguf_array arr;
    };
} xt_gguf_value;

/* One tensor of the directory. Owned by the reader; valid until xt_gguf_close. */
typedef struct xt_gguf_tensor {
    const char *name;             /* NUL-terminated copy, 0..63 bytes, no NUL inside */
    uint32_t n_dims;              /* 1..4 */
    int64_t ne[XT_GGUF_MAX_DIMS]; /* per dim, ggml order (ne[0] contiguous); 1 past n_dims */
    int64_t n_elements;           /* product of ne, <= INT64_MAX */
    uint32_t type;                /* ggml type number as stored (see quant.h) */
    const char *type_name;        /* "q4_K", ...; "unknown (N)" when type_known is false */
    /* A type number this build does not know keeps the file readable (so `info` can list it) but
     * the tensor unusable: nbytes is 0, data is NULL, and xt_gguf_get_tensor fails on it with
     * XT_ERR_UNSUPPORTED. Its offset is still checked for alignment and against the file size;
     * its extent (and hence overlap with other tensors) cannot be checked. */
    bool type_known;
    uint64_t offset;              /* bytes from the start of the data section; aligned */
    uint64_t nbytes;              /* exact data bytes (without padding) */
    const void *data;             /* into the mapping (read-only, may be unaligned for host
                                   * types when the file alignment is < 8); NULL if !type_known */
    uint64_t info_offset;         /* file offset of this tensor's directory record */
} xt_gguf_tensor;

typedef struct xt_gguf xt_gguf;

/* Opens and validates the GGUF file at path (memory-mapped read-only). On success *out owns the
 * mapping; release it with xt_gguf_close. Errors: XT_ERR_IO (cannot open/map), XT_ERR_FORMAT
 * (malformed), XT_ERR_UNSUPPORTED (v1, newer versions, big-endian), XT_ERR_NO_MEMORY. */
xt_status xt_gguf_open(const char *path, xt_gguf **out, xt_error *err);

/* Opens a GGUF image already in memory. The reader never writes to data; it keeps pointers into
 * it (strings, arrays, tensor data), so data must stay valid and unchanged until xt_gguf_close.
 * name names the image in messages (copied; NULL means "<memory>"). data may be NULL when size is
 * 0 (which fails as truncated). */
xt_status xt_gguf_open_memory(const void *data, size_t size, const char *name, xt_gguf **out,
                              xt_error *err);

/* Frees everything (and unmaps the file). NULL is fine. */
void xt_gguf_close(xt_gguf *g);

const char *xt_gguf_path(const xt_gguf *g);        /* the path or name given at open */
uint32_t xt_gguf_version(const xt_gguf *g);        /* 2 or 3 */
uint32_t xt_gguf_alignment(const xt_gguf *g);      /* general.alignment or 32 */
uint64_t xt_gguf_file_size(const xt_gguf *g);      /* bytes */
uint64_t xt_gguf_data_offset(const xt_gguf *g);    /* file offset of the tensor data section */

/* ---- metadata ---------------------------------------------------------------------------- */

/* Keys in file order, i < xt_gguf_kv_count. Keys are NUL-terminated copies (a key holding a NUL
 * byte is rejected at open). Out-of-range i: NULL key, type XT_GGUF_TYPE_COUNT, XT_ERR_RANGE. */
uint64_t xt_gguf_kv_count(const xt_gguf *g);
const char *xt_gguf_kv_key(const xt_gguf *g, uint64_t i);
xt_gguf_type xt_gguf_kv_type(const xt_gguf *g, uint64_t i);
xt_status xt_gguf_kv_value(const xt_gguf *g, uint64_t i, xt_gguf_value *out, xt_error *err);

/* Index of key, or -1 when absent (O(log n)). */
int64_t xt_gguf_find_key(const xt_gguf *g, const char *key);

/* Typed getters. XT_ERR_NOT_FOUND when the key is absent; XT_ERR_TYPE when it holds another type
 * (the message names the key and both types). *out is written only on success. */
xt_status xt_gguf_get(const xt_gguf *g, const char *key, xt_gguf_value *out, xt_error *err);
xt_status xt_gguf_get_u8(const xt_gguf *g, const char *key, uint8_t *out, xt_error *err);
xt_status xt_gguf_get_i8(const xt_gguf *g, const char *key, int8_t *out, xt_error *err);
xt_status xt_gguf_get_u16(const xt_gguf *g, const char *key, uint16_t *out, xt_error *err);
xt_status xt_gguf_get_i16(const xt_gguf *g, const char *key, int16_t *out, xt_error *err);
xt_status xt_gguf_get_u32(const xt_gguf *g, const char *key, uint32_t *out, xt_error *err);
xt_status xt_gguf_get_i32(const xt_gguf *g, const char *key, int32_t *out, xt_error *err);
xt_status xt_gguf_get_u64(const xt_gguf *g, const char *key, uint64_t *out, xt_error *err);
xt_status xt_gguf_get_i64(const xt_gguf *g, const char *key, int64_t *out, xt_error *err);
xt_status xt_gguf_get_f32(const xt_gguf *g, const char *key, float *out, xt_error *err);
xt_status xt_gguf_get_f64(const xt_gguf *g, const char *key, double *out, xt_error *err);
xt_status xt_gguf_get_bool(const xt_gguf *g, const char *key, bool *out, xt_error *err);
xt_status xt_gguf_get_str(const xt_gguf *g, const char *key, xt_gguf_str *out, xt_error *err);
xt_status xt_gguf_get_array(const xt_gguf *g, const char *key, xt_gguf_array *out, xt_error *err);

/* Any integer type (u8..i64; not bool) converted to u64 / i64 and checked against [min, max]:
 * XT_ERR_RANGE (naming key, value and bounds) when outside — including a negative value read as
 * unsigned. llama.cpp files mix u32 and i32 for the same key, so hyper-parameters read this way. */
xt_status xt_gguf_get_uint(const xt_gguf *g, const char *key, uint64_t min, uint64_t max,
                           uint64_t *out, xt_error *err);
xt_status xt_gguf_get_int(const xt_gguf *g, const char *key, int64_t min, int64_t max,
                          int64_t *out, xt_error *err);
/* f32 or f64, as a double. */
xt_status xt_gguf_get_float(const xt_gguf *g, const char *key, double *out, xt_error *err);

/* ---- arrays ------------------------------------------------------------------------------ */

/* Element i of any type. XT_ERR_RANGE when i >= count (message names the key and index path). */
xt_status xt_gguf_array_get(const xt_gguf_array *a, uint64_t i, xt_gguf_value *out, xt_error *err);
/* Element i as a string / nested array; XT_ERR_TYPE when the elements are of another type. */
xt_status xt_gguf_array_get_str(const xt_gguf_array *a, uint64_t i, xt_gguf_str *out,
                                xt_error *err);
xt_status xt_gguf_array_get_array(const xt_gguf_array *a, uint64_t i, xt_gguf_array *out,
                                  xt_error *err);
/* Element i of any integer type as i64 (XT_ERR_RANGE for a u64 above INT64_MAX), or of f32/f64
 * as a double. */
xt_status xt_gguf_array_get_int(const xt_gguf_array *a, uint64_t i, int64_t *out, xt_error *err);
xt_status xt_gguf_array_get_float(const xt_gguf_array *a, uint64_t i, double *out, xt_error *err);
/* The raw elements of a fixed-size element type: count * xt_gguf_type_size(type) bytes, little
 * endian, possibly unaligned (memcpy them out). NULL for string and array elements. */
const void *xt_gguf_array_data(const xt_gguf_array *a);

/* ---- tensors ----------------------------------------------------------------------------- */

/* Tensors in file order; NULL for i >= count. */
uint64_t xt_gguf_tensor_count(const xt_gguf *g);
const xt_gguf_tensor *xt_gguf_tensor_at(const xt_gguf *g, uint64_t i);
/* The tensor called name (O(log n)), or NULL. */
const xt_gguf_tensor *xt_gguf_find_tensor(const xt_gguf *g, const char *name);
/* As find, for tensors the caller will use: XT_ERR_NOT_FOUND when absent, XT_ERR_UNSUPPORTED
 * when its type number is unknown; each with a message naming the file and tensor. */
xt_status xt_gguf_get_tensor(const xt_gguf *g, const char *name, const xt_gguf_tensor **out,
                             xt_error *err);

#ifdef __cplusplus
}
#endif

#endif
