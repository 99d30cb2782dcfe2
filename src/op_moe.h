/* GPU ops of the MoE family: the router (softmax, top-k, mask/override), grouping of (token, slot)
 * entries by expert (src/moe_groups.h), the expert-FFN elementwise steps (SwiGLU, weighting,
 * shared-expert gate, combine), the patch-injection pass, and the whole MoE block. Each records
 * into an xt_cmd and never submits. CPU references with the same semantics: ref_moe.h.
 *
 *     xt_op_router(k, cmd, &(xt_router_desc){.n_tokens = T, .n_expert = 128, .n_used = 8,
 *                                            .renorm = true, .logits = lg, .ids = ids,
 *                                            .weights = w}, &err);
 *     xt_cmd_barrier(cmd, XT_BARRIER_COMPUTE_TO_COMPUTE);
 *     xt_op_moe_group(k, cmd, &groups, &scratch, &err);
 *
 * Buffers are xt_binding (buffer, byte offset, range): the offset must be a multiple of
 * minStorageBufferOffsetAlignment (xt_dispatch checks); sizes come from the counts in each desc
 * and every shader bounds-checks against them, never against the binding's end. Layouts: fp32
 * row-major [rows][width]; routing per token t and slot s at entry e = t*k + s.
 *
 * Barriers: ops record the barriers between their own dispatches, none before the first or after
 * the last; between an op that writes a buffer and one that reads it the caller records
 * XT_BARRIER_COMPUTE_TO_COMPUTE (and XT_BARRIER_COMPUTE_TO_INDIRECT before an indirect dispatch
 * reading the grouping's args). xt_op_moe_layer records everything it needs inside.
 *
 * Numerics (DESIGN.md §6): fp32; per-token or per-element work with fixed orders; grouping uses
 * integers only and is stable; no atomics on floats, so results are bitwise reproducible and a
 * token's results do not depend on its batch.
 */
#ifndef XT_OP_MOE_H
#define XT_OP_MOE_H

#include <stdbool.h>
#include <stdint.h>

#include "expertrace/status.h"
#include "expertrace/vk.h"
#include "kernels.h"
#include "moe_groups.h"
#include "ref_moe.h" /* brings push_moe.h: XT_ROUTER_*, XT_SITE_*, XT_PATCH_* */

/* ---- router -------------------------------------------------------------------------------- */

/* probs = softmax(logits) over all E (max-subtracted, fp32); ids = top-k by logit, descending,
 * ties to the lower expert index; weights = probs at ids, renormalised to sum 1 when renorm.
 *
 * Ablation inputs (both optional, buffer NULL = absent):
 * - mask: u32 bitmask [mask_rows][ceil(E/32)], bit e set = expert e may not be chosen. The softmax
 *   still runs over all E, so without renorm the remaining weights keep their probabilities.
 *   mask_rows 1 applies one mask to every token, else it must be T.
 * - force: u32 [T][k]; a token whose first slot is not XT_MOE_NO_EXPERT takes its k ids verbatim
 *   (slot order as given, mask not applied; ids >= E are empty slots), weights = their probs,
 *   renormalised when renorm.
 * Slots that cannot be filled (every expert masked) are XT_MOE_NO_EXPERT with weight 0. */
typedef struct xt_router_desc {
    uint32_t n_tokens, n_expert, n_used; /* T, E (<= 1024), k (<= E) */
    bool renorm;
    xt_binding logits;  /* f32 [T][E], from the ffn_gate_inp matmul */
    xt_binding mask;    /* optional u32 [mask_rows][ceil(E/32)] */
    uint32_t mask_rows; /* 1 or T */
    xt_binding force;   /* optional u32 [T][k] */
    xt_binding ids;     /* out u32 [T][k] */
    xt_binding weights; /* out f32 [T][k] */
    xt_binding probs;   /* optional out f32 [T][E], for the tracer */
} xt_router_desc;
xt_status xt_op_router(xt_kernels *k, xt_cmd *cmd, const xt_router_desc *d, xt_error *err);

/* ---- grouping ------------------------------------------------------------------------------ */

#define XT_MOE_MAX_EXPERT 1024u
#define XT_MOE_GROUP_BLOCK 64u /* entries per block of the count/scatter passes */

/* Bytes of the scratch buffer xt_op_moe_group needs: u32 [ceil(entries / block)][E]. */
uint64_t xt_moe_group_scratch_bytes(uint32_t n_entries, uint32_t n_expert);

/* Fills counts, offsets, order, tiles and args slot 0 of g from g->ids (three dispatches:
 * per-block counts, one-workgroup scan + tile list, stable scatter). ids >= E are left out of
 * order (offsets[E] counts only routed entries). max_tiles must be xt_moe_max_tiles(...) or more.
 */
xt_status xt_op_moe_group(xt_kernels *k, xt_cmd *cmd, const xt_moe_groups *g,
                          const xt_binding *scratch, xt_error *err);

/* ---- expert FFN steps ---------------------------------------------------------------------- */

/* gate[i] = silu(gate[i]) * up[i] over rows x width (in place). */
xt_status xt_op_moe_swiglu(xt_kernels *k, xt_cmd *cmd, uint32_t n_rows, uint32_t width,
                           const xt_binding *gate, const xt_binding *up, xt_error *err);
/* c[e][n] = ids[e] < E ? w[e] * c[e][n] : 0 over n_entries x width (in place): the down
 * projection of each entry becomes its weighted contribution. */
xt_status xt_op_moe_weight(xt_kernels *k, xt_cmd *cmd, uint32_t n_entries, uint32_t width,
                           uint32_t n_expert, const xt_binding *c, const xt_binding *w,
                           const xt_binding *ids, xt_error *err);
/* s[t][n] = sigmoid(gate[t]) * s[t][n] (in place; gate f32 [T]). */
xt_status xt_op_moe_shared_gate(xt_kernels *k, xt_cmd *cmd, uint32_t n_tokens, uint32_t width,
                                const xt_binding *s, const xt_binding *gate, xt_error *err);
/* y[t] = c[t*k] + ... + c[t*k+k-1] in slot order, then + shared[t] when shared is non-NULL. */
xt_status xt_op_moe_combine(xt_kernels *k, xt_cmd *cmd, uint32_t n_tokens, uint32_t n_used,
                            uint32_t width, const xt_binding *c, const xt_binding *shared,
                            const xt_binding *y, xt_error *err);

/* ---- patch injection ----------------------------------------------------------------------- */

/* One patch-table entry; the table is a u32 buffer of these (shaders read XT_PATCH_* words). */
typedef struct xt_patch_entry {
    uint32_t row;      /* batch row; token = row_base[row] + position */
    uint32_t position; /* position within the row */
    uint32_t layer;
    uint32_t site;     /* XT_SITE_* */
    uint32_t expert;   /* XT_SITE_EXPERT / XT_SITE_ROUTER_WEIGHT: the routed expert to patch */
    uint32_t mode;     /* XT_PATCH_REPLACE / ADD / ZERO */
    uint32_t src;      /* index of the first source float (width floats; 1 for router weights) */
    uint32_t reserved; /* 0 */
} xt_patch_entry;
_Static_assert(sizeof(xt_patch_entry) == XT_PATCH_WORDS * 4, "patch entry layout");

/* Applies table entries [first, first + count) whose layer and site match to target, in table
 * order per token. Per-expert sites look the expert up among the token's k routed slots (ids);
 * an expert the token did not route to is a no-op (DESIGN.md §4: its contribution is 0 — add a
 * delta at XT_SITE_MOE_OUT instead). Source reads past src_floats are skipped. count 0 records
 * nothing. */
typedef struct xt_patch_desc {
    xt_binding table; /* u32 [entries][XT_PATCH_WORDS] */
    uint32_t first, count;
    xt_binding row_base; /* u32 [n_rows]: token index of each row's position 0 */
    uint32_t n_rows;
    xt_binding src; /* f32 [src_floats]: recorded clean vectors, deltas */
    uint32_t src_floats;
    uint32_t layer, site;
    xt_binding target; /* f32 [n_tokens][width], or [n_tokens*k][width] for per-expert sites */
    uint32_t n_tokens;
    uint32_t width;  /* n_embd; 1 for XT_SITE_ROUTER_WEIGHT */
    xt_binding ids;  /* u32 [n_tokens*k], per-expert sites only */
    uint32_t n_used; /* k, per-expert sites only */
} xt_patch_desc;
xt_status xt_op_patch(xt_kernels *k, xt_cmd *cmd, const xt_patch_desc *d, xt_error *err);

/* ---- the MoE block ------------------------------------------------------------------------- */

/* The block's weights, resident on the device (GGUF names, DESIGN.md §3). */
typedef struct xt_moe_layer_weights {
    const xt_dtensor *gate_inp;       /* ffn_gate_inp {n_embd, E} */
    const xt_dtensor *gate_exps;      /* {n_embd, n_ff, E} */
    const xt_dtensor *up_exps;        /* {n_embd, n_ff, E} */
    const xt_dtensor *down_exps;      /* {n_ff, n_embd, E} */
    const xt_dtensor *gate_inp_shexp; /* {n_embd}, or NULL: no shared expert */
    const xt_dtensor *gate_shexp;     /* {n_embd, n_ff_s} */
    const xt_dtensor *up_shexp;       /* {n_embd, n_ff_s} */
    const xt_dtensor *down_shexp;     /* {n_ff_s, n_embd} */
    uint32_t n_used;                  /* k: ARCH.expert_used_count */
    bool renorm;                      /* qwen3moe, Mixtral: true; qwen2moe, olmoe: false */
} xt_moe_layer_weights;

/* Intermediate buffers of the block for up to max_tokens tokens, all readable after the block
 * ran: the tracer reads routing and single contributions from here (and patches them through the
 * layer's patch table). */
typedef struct xt_moe_workspace {
    uint32_t max_tokens, n_embd, n_ff, n_ff_shared, n_expert, n_used, tile_rows, max_tiles;
    xt_buffer logits;   /* f32 [T][E] router logits */
    xt_buffer probs;    /* f32 [T][E] softmax over all experts */
    xt_buffer ids;      /* u32 [T*k] routed experts, slot order */
    xt_buffer weights;  /* f32 [T*k] router weights */
    xt_buffer counts, offsets, order, tiles, args, scratch; /* grouping (moe_groups.h) */
    xt_buffer gate;     /* f32 [T*k][n_ff]: gate projection, then SwiGLU output */
    xt_buffer up;       /* f32 [T*k][n_ff] */
    xt_buffer contrib;  /* f32 [T*k][n_embd]: c[t][slot] = w * expert output */
    xt_buffer sh_gate;  /* f32 [T][n_ff_s] (shared expert only) */
    xt_buffer sh_up;    /* f32 [T][n_ff_s] */
    xt_buffer sh_logit; /* f32 [T]: dot(gate_inp_shexp, x) */
    xt_buffer shared;   /* f32 [T][n_embd]: sigmoid-gated shared-expert output */
} xt_moe_workspace;

/* Allocates the workspace for w's shapes; the caller destroys it with xt_moe_workspace_destroy. */
xt_status xt_moe_workspace_create(xt_vk_context *ctx, const xt_moe_layer_weights *w,
                                  uint32_t max_tokens, xt_moe_workspace *ws, xt_error *err);
void xt_moe_workspace_destroy(xt_vk_context *ctx, xt_moe_workspace *ws);

typedef struct xt_moe_layer_desc {
    const xt_moe_layer_weights *w;
    xt_moe_workspace *ws;
    uint32_t n_tokens;   /* T <= ws->max_tokens */
    const xt_buffer *x;  /* f32 [T][n_embd]: post-norm input (ffn_norm output) */
    VkDeviceSize x_offset; /* bytes, a multiple of 4 */
    xt_binding y;        /* f32 [T][n_embd]: the block's output */
    /* routing ablation inputs, as xt_router_desc (optional) */
    xt_binding mask;
    uint32_t mask_rows;
    xt_binding force;
    /* optional patch table: table, first, count, row_base, n_rows, src, src_floats, layer are
     * used; entries run at XT_SITE_ROUTER_WEIGHT (before weighting), XT_SITE_EXPERT (before the
     * combine), XT_SITE_SHARED_EXPERT (before the combine) and XT_SITE_MOE_OUT (on y). */
    const xt_patch_desc *patch;
} xt_moe_layer_desc;

/* Records the whole block: router logits (xt_op_matmul), router, grouping, gate/up/down through
 * xt_op_matmul_id (args slots 1, 2, 3), SwiGLU, weighting, the shared expert, the patch passes
 * and the combine. Inputs must be visible (caller: a barrier after whatever wrote x); y is written
 * by the last dispatch (caller: a barrier before reading it). */
xt_status xt_op_moe_layer(xt_kernels *k, xt_cmd *cmd, const xt_moe_layer_desc *d, xt_error *err);

#endif
