/* GPU ops on weights kept in their GGUF type (DESIGN.md §6): matmul, the expert GEMM over tokens
 * grouped by expert (matmul_id), embedding rows (get_rows) and the two-logit gather that replaces
 * the full lm head for rows that need only Δ (logit_gather, DESIGN.md §5).
 *
 *     xt_op_matmul(k, cmd, &(xt_matmul_desc){.w = &wq, .rows = T, .x = {&act, 0},
 *                                             .y = {&q, 0}}, &err);
 *
 * Each function records into cmd and never submits. They insert the barriers they need between
 * their own dispatches; the caller puts XT_BARRIER_COMPUTE_TO_COMPUTE between the dispatch that
 * wrote an op's inputs and the op, and between the op and whatever reads its outputs.
 *
 * Numerics: every output is one fp32 accumulator over k = 0..K-1 in order (shaders/matmul.glsl),
 * in all four ops and whatever the row count, so a row's result does not depend on its batch and
 * logit_gather's logits equal the matmul's entries bit for bit. The CPU reference is
 * src/ref_matmul.c. Weight types: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K..Q6_K.
 */
#ifndef XT_OP_MATMUL_H
#define XT_OP_MATMUL_H

#include <stdbool.h>
#include <stdint.h>

#include "expertrace/status.h"
#include "expertrace/vk.h"
#include "kernels.h"
#include "moe_groups.h"

/* An array in a buffer: 32-bit elements from a byte offset that is a multiple of 4 (the op binds
 * at an aligned offset and passes the remainder to the shader). */
typedef struct xt_mm_array {
    const xt_buffer *buf;
    VkDeviceSize offset; /* bytes */
} xt_mm_array;

/* True when the shaders handle weight type t. */
bool xt_op_matmul_supports(uint32_t type);

typedef struct xt_matmul_desc {
    const xt_dtensor *w; /* {K, N} or {K, N, E} in any supported type, any chunking */
    uint32_t expert;     /* slab of a 3-D W to use (0 for 2-D) */
    uint32_t rows;       /* T >= 1 */
    xt_mm_array x;       /* fp32 [T][x_stride] */
    uint32_t x_stride;   /* elements; 0: K */
    xt_mm_array y;       /* fp32 [T][y_stride], columns 0..N-1 written */
    uint32_t y_stride;   /* elements; 0: N */
} xt_matmul_desc;

/* y[t][n] = sum_k W[expert][n][k] * x[t][k]. One dispatch per chunk of W that holds rows of the
 * expert (dispatches write disjoint columns: no barrier between them). */
xt_status xt_op_matmul(xt_kernels *k, xt_cmd *cmd, const xt_matmul_desc *d, xt_error *err);

typedef struct xt_matmul_id_desc {
    const xt_dtensor *w;        /* {K, N, E}, E == groups->n_expert */
    const xt_moe_groups *groups; /* filled by the grouping pass (or the host) */
    xt_mm_array x;              /* fp32 [x_rows][x_stride]; entry e reads row e / x_row_div */
    uint32_t x_rows;
    uint32_t x_stride; /* elements; 0: K */
    uint32_t x_row_div; /* n_used for gate/up (x = the token's input), 1 for down; 0: 1 */
    xt_mm_array y;      /* fp32 [T*k][y_stride]: row e = entry e */
    uint32_t y_stride;  /* elements; 0: N */
    uint32_t args_slot; /* scratch slot 1..3 of groups->args for this call's arguments; 0: 1 */
} xt_matmul_id_desc;

/* For every entry e (in the tiles of groups), y[e][n] = sum_k W[ids[e]][n][k] * x[e/div][k]:
 * bit-identical to xt_op_matmul on that expert's matrix and row. Records a one-invocation
 * dispatch writing {n_tiles, column blocks, 1} into args slot args_slot, a compute-to-indirect
 * barrier, then one indirect dispatch per chunk of W (tiles whose expert is elsewhere exit).
 * The grouping pass's writes must be visible (caller: XT_BARRIER_COMPUTE_TO_COMPUTE). Two calls
 * in one recording that use the same args slot need a barrier between them (the slot is
 * rewritten while the earlier indirect dispatch may still read it): give gate/up/down their own
 * slots. */
xt_status xt_op_matmul_id(xt_kernels *k, xt_cmd *cmd, const xt_matmul_id_desc *d, xt_error *err);

typedef struct xt_get_rows_desc {
    const xt_dtensor *w; /* [n_rows][K] (e.g. token_embd), any supported type and chunking */
    uint32_t rows;       /* T >= 1 */
    xt_mm_array ids;     /* u32 [T] */
    xt_mm_array y;       /* fp32 [T][y_stride] */
    uint32_t y_stride;   /* elements; 0: K */
    xt_mm_array flag;    /* optional u32: OR-ed with XT_MM_FLAG_ID_OUT_OF_RANGE (push_matmul.h) */
} xt_get_rows_desc;

/* y[t] = dequant(W[ids[t]]), bit-identical to xt_dequantize. An id >= the tensor's rows reads
 * nothing: its row is written as zeros and the flag word (when given) gets
 * XT_MM_FLAG_ID_OUT_OF_RANGE. One dispatch per chunk (disjoint rows of y). */
xt_status xt_op_get_rows(xt_kernels *k, xt_cmd *cmd, const xt_get_rows_desc *d, xt_error *err);

typedef struct xt_logit_gather_desc {
    const xt_dtensor *w;   /* lm head [n_vocab][K], any supported type, possibly chunked */
    uint32_t rows;         /* T >= 1 */
    xt_mm_array h;         /* fp32 [T][h_stride]: final-norm output */
    uint32_t h_stride;     /* elements; 0: K */
    xt_mm_array true_ids;  /* u32 [T] */
    xt_mm_array foil_ids;  /* u32 [T] */
    xt_mm_array logits;    /* fp32 [T][2]: (logit true, logit foil) */
    xt_mm_array diff;      /* fp32 [T]: logit true - logit foil */
    xt_mm_array flag;      /* optional u32, as get_rows */
} xt_logit_gather_desc;

/* logits[t] = (W[true] . h[t], W[foil] . h[t]) — each bit-identical to the corresponding entry of
 * xt_op_matmul(W, h) — and diff[t] = their difference. An id >= n_vocab gives a NaN logit and
 * sets the flag. One dispatch per chunk, a barrier, one dispatch for the differences. */
xt_status xt_op_logit_gather(xt_kernels *k, xt_cmd *cmd, const xt_logit_gather_desc *d,
                             xt_error *err);

#endif
