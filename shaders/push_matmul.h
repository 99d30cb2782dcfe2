/* Push-constant blocks of the quantized-weight family (matmul, matmul_id, get_rows,
 * logit_gather), shared by src/op_matmul.c and the shaders. Element offsets (`*_off`) are in
 * 32-bit words from the start of a binding: the host binds at an offset aligned to
 * minStorageBufferOffsetAlignment and passes the remainder here. Strides are in elements.
 * Weight rows are addressed inside one chunk of an xt_dtensor: `row_bytes` per row, rows
 * [chunk_row_begin, chunk_row_begin + chunk_row_count) of the whole tensor live in the binding.
 *
 * C sees every block; a shader sees only the one it selects before including this file
 * (`#define XT_PUSH_WANT_MATMUL`), since GLSL allows one push-constant block, named `pc`. */
#ifndef XT_PUSH_MATMUL_H
#define XT_PUSH_MATMUL_H

#include "xt_shared.h"

/* Bounds of the matmul tiles (shaders/matmul.comp; the sizes themselves are specialization
 * constants chosen in src/op_matmul.c): token rows of a tile (XT_MM_MAX_TD for the direct tile,
 * whose register tile is NR x TT), weight rows and token rows of one
 * invocation's register tile, and, for the staged (GPU) tile, the K step and the weight rows
 * staged in shared memory: (64 + 32) x 65 floats = 24.4 KiB, under the 32 KiB Apple GPUs give. */
#define XT_MM_MAX_T 32
#define XT_MM_MAX_TD 16 /* direct tile: token rows */
#define XT_MM_MAX_N 8
#define XT_MM_MAX_RT 4
#define XT_MM_BK 64
#define XT_MM_MAX_BN 64

#if !defined(VULKAN) || defined(XT_PUSH_WANT_MATMUL)
/* Workgroup (x, y) = (column block, row block): y[r][col0 + c] = W[w_row0 + c] . x[r] for
 * c < n_cols, r < rows. */
XT_PUSH_BEGIN(xt_push_matmul)
    xt_u32 rows;
    xt_u32 k;
    xt_u32 n_cols;    /* columns this dispatch writes (rows of W in this chunk) */
    xt_u32 col0;      /* first output column */
    xt_u32 w_row0;    /* chunk-local weight row of column col0 */
    xt_u32 row_bytes;
    xt_u32 x_off;
    xt_u32 x_stride;
    xt_u32 y_off;
    xt_u32 y_stride;
XT_PUSH_END(xt_push_matmul, 40)
#endif

#if !defined(VULKAN) || defined(XT_PUSH_WANT_MATMUL_ID)
/* Workgroup (x, y) = (tile, column block) over moe_groups.h's tiles: for entry e of the tile,
 * y[e][n] = W[expert * n_out + n] . x[e / x_row_div], where that weight row is in this chunk. */
XT_PUSH_BEGIN(xt_push_matmul_id)
    xt_u32 k;
    xt_u32 n_out;     /* N: rows of one expert's matrix */
    xt_u32 n_expert;
    xt_u32 row_bytes;
    xt_u32 chunk_row_begin;
    xt_u32 chunk_row_count;
    xt_u32 n_entries; /* T * k: bounds for order[] and y rows */
    xt_u32 x_row_div;
    xt_u32 x_rows;    /* rows of x: bounds */
    xt_u32 tile_rows;
    xt_u32 max_tiles;
    xt_u32 x_off;
    xt_u32 x_stride;
    xt_u32 y_off;
    xt_u32 y_stride;
XT_PUSH_END(xt_push_matmul_id, 60)
#endif

#if !defined(VULKAN) || defined(XT_PUSH_WANT_MATMUL_ID_ARGS)
/* One invocation: args[3 * slot ..] = {args[0], col_blocks, 1}. */
XT_PUSH_BEGIN(xt_push_matmul_id_args)
    xt_u32 slot;
    xt_u32 col_blocks;
XT_PUSH_END(xt_push_matmul_id_args, 8)
#endif

#if !defined(VULKAN) || defined(XT_PUSH_WANT_GET_ROWS)
/* One invocation per (row, 32 elements): y[t] = dequant(W[ids[t]]). */
XT_PUSH_BEGIN(xt_push_get_rows)
    xt_u32 rows;
    xt_u32 k;
    xt_u32 row_bytes;
    xt_u32 chunk_row_begin;
    xt_u32 chunk_row_count;
    xt_u32 n_total_rows; /* ids >= this are out of range: zero row + flag */
    xt_u32 first_chunk;  /* 1 in the dispatch that handles out-of-range ids */
    xt_u32 has_flag;
    xt_u32 ids_off;
    xt_u32 y_off;
    xt_u32 y_stride;
    xt_u32 flag_off;
XT_PUSH_END(xt_push_get_rows, 48)
#endif

#if !defined(VULKAN) || defined(XT_PUSH_WANT_LOGIT_GATHER)
/* finish == 0: one invocation per (row, which): logits[t][which] = W[id] . h[t] for the ids in
 * this chunk (which 0: true, 1: foil). finish == 1: one per row: diff[t] = l[t][0] - l[t][1]. */
XT_PUSH_BEGIN(xt_push_logit_gather)
    xt_u32 rows;
    xt_u32 k;
    xt_u32 row_bytes;
    xt_u32 chunk_row_begin;
    xt_u32 chunk_row_count;
    xt_u32 n_total_rows; /* ids >= this are out of range: NaN logit + flag */
    xt_u32 first_chunk;
    xt_u32 has_flag;
    xt_u32 finish;
    xt_u32 h_off;
    xt_u32 h_stride;
    xt_u32 true_off;
    xt_u32 foil_off;
    xt_u32 logits_off;
    xt_u32 diff_off;
    xt_u32 flag_off;
XT_PUSH_END(xt_push_logit_gather, 64)
#endif

/* Error-flag bits written (atomicOr) by get_rows and logit_gather. */
#define XT_MM_FLAG_ID_OUT_OF_RANGE 1u

#endif
