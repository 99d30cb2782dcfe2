/* What every GPU op shares: a cache of compute pipelines keyed by (shader, specialization
 * constants, layout), and device tensors — weights resident on the device in their GGUF type,
 * split into chunks that each fit one storage binding (maxStorageBufferRange is 128 MiB on
 * lavapipe and Dozen, ~256 MiB on MoltenVK; one Q4_K Mixtral expert tensor is ~264 MB).
 *
 *     xt_kernels *k;
 *     xt_kernels_create(vk, &k, &err);
 *     const xt_pipeline *p;
 *     xt_kernels_pipeline(k, &(xt_pipeline_desc){.shader = "rms_norm", ...}, &p, &err);
 *     xt_dispatch(cmd, p, ...);
 *     xt_kernels_destroy(k);
 */
#ifndef XT_KERNELS_H
#define XT_KERNELS_H

#include <stdbool.h>
#include <stdint.h>

#include "expertrace/status.h"
#include "expertrace/vk.h"

typedef struct xt_kernels xt_kernels;

/* Also measures whether the device fuses `fma` (xt_vk_fma_fused) and sets the CPU reference's
 * rounding to match (xt_ref_set_fused_fma). */
xt_status xt_kernels_create(xt_vk_context *ctx, xt_kernels **out, xt_error *err);
/* Destroys every cached pipeline. The GPU must be done with them. NULL is a no-op. */
void xt_kernels_destroy(xt_kernels *k);
xt_vk_context *xt_kernels_context(const xt_kernels *k);

/* The pipeline for desc: created on first use, then returned from the cache. The pointer stays
 * valid until xt_kernels_destroy. */
xt_status xt_kernels_pipeline(xt_kernels *k, const xt_pipeline_desc *desc, const xt_pipeline **out,
                              xt_error *err);
uint32_t xt_kernels_pipeline_count(const xt_kernels *k);

/* ---- device tensors ------------------------------------------------------------------------ */

/* Rows [row_begin, row_begin + row_count) of a tensor, in one buffer starting at offset 0. Rows
 * are ne[0] elements; row r of a 3-D tensor {ne0, ne1, ne2} is (r % ne1) of slab r / ne1. */
typedef struct xt_dtensor_chunk {
    xt_buffer buf;      /* size padded to a multiple of 4 bytes (shaders read 32-bit words) */
    uint64_t row_begin;
    uint64_t row_count;
} xt_dtensor_chunk;

typedef struct xt_dtensor {
    char name[64];
    uint32_t type;          /* xt_type */
    int64_t ne[4];          /* ggml order, unused dims 1 */
    uint64_t row_bytes;     /* bytes of one row of ne[0] elements */
    uint64_t n_rows;        /* ne[1] * ne[2] * ne[3] */
    uint64_t slab_rows;     /* rows kept together in one chunk: ne[1] (a whole expert / matrix) */
    bool slabs_split;       /* a slab was too large for one binding and spans chunks */
    uint32_t n_chunks;
    xt_dtensor_chunk *chunks; /* n_chunks, in row order */
} xt_dtensor;

typedef struct xt_dtensor_desc {
    const char *name;        /* for messages */
    uint32_t type;           /* xt_type; any type with known block size */
    int64_t ne[4];           /* 0 in a trailing dim means 1 */
    const void *data;        /* packed rows as in GGUF; NULL: zero-filled */
    uint64_t data_bytes;     /* must equal n_rows * row_bytes when data is given */
    uint64_t max_chunk_bytes; /* 0: the device's limits; tests set less to exercise chunking */
} xt_dtensor_desc;

/* Uploads a tensor in chunks of whole slabs where a slab fits one binding, else of whole rows.
 * A row larger than a binding is XT_ERR_RANGE naming the tensor and the limit. On failure *out is
 * zeroed and nothing is left allocated. */
xt_status xt_dtensor_create(xt_vk_context *ctx, const xt_dtensor_desc *desc, xt_dtensor *out,
                            xt_error *err);
void xt_dtensor_destroy(xt_vk_context *ctx, xt_dtensor *t);

/* The chunk that holds row and the row's index inside it; false when row is out of range. */
bool xt_dtensor_locate(const xt_dtensor *t, uint64_t row, uint32_t *chunk, uint64_t *row_in_chunk);

/* The bytes one binding may cover on this device: min(maxStorageBufferRange, maxBufferSize,
 * maxMemoryAllocationSize), rounded down to a multiple of 4. */
uint64_t xt_binding_limit_bytes(const xt_vk_context *ctx);

#endif
