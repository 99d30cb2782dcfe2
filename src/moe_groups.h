/* Tokens grouped by expert: built on the GPU by the grouping pass (op_moe.c: histogram, prefix
 * sum, stable compaction, tile list, indirect-dispatch arguments) and consumed by the expert
 * matmuls (op_matmul.c, xt_op_matmul_id), so the expert FFNs run as real GEMMs over the tokens
 * routed to each expert instead of one mat-vec per token (DESIGN.md §5).
 *
 * For T tokens with top-k routing there are T*k entries; entry e = t*k + slot. Buffers (u32):
 *
 *   ids     [T*k]        expert of entry e (router output, or an override)
 *   counts  [E]          entries routed to each expert
 *   offsets [E+1]        exclusive prefix sum of counts
 *   order   [T*k]        entries sorted by expert; within an expert by ascending e (stable, so
 *                        the list does not depend on thread timing)
 *   tiles   [2*max_tiles] per tile: (expert, first index into order); a tile covers up to
 *                        tile_rows consecutive entries of one expert; tiles are in expert order
 *   args    [4*3]        four VkDispatchIndirectCommand slots: slot 0 = {n_tiles, 1, 1} written
 *                        by the grouping pass; slots 1..3 are scratch for consumers (e.g. a
 *                        matmul writing {n_tiles, column blocks, 1} before its indirect dispatch)
 *
 * max_tiles = ceil(T*k / tile_rows) + E bounds the tile count for any routing.
 * Reductions inside a tile never mix entries, so an entry's result does not depend on which
 * other entries share its tile (batch invariance).
 */
#ifndef XT_MOE_GROUPS_H
#define XT_MOE_GROUPS_H

#include <stdint.h>

#include "expertrace/vk.h"

typedef struct xt_moe_groups {
    uint32_t n_tokens;   /* T */
    uint32_t n_used;     /* k */
    uint32_t n_expert;   /* E */
    uint32_t tile_rows;  /* entries per tile */
    uint32_t max_tiles;
    xt_binding ids;      /* u32 [T*k] */
    xt_binding counts;   /* u32 [E] */
    xt_binding offsets;  /* u32 [E+1] */
    xt_binding order;    /* u32 [T*k] */
    xt_binding tiles;    /* u32 [2*max_tiles] */
    const xt_buffer *args; /* u32 [12], indirect-dispatch arguments (offset 0) */
} xt_moe_groups;

static inline uint32_t xt_moe_max_tiles(uint32_t entries, uint32_t tile_rows, uint32_t n_expert)
{
    return (entries + tile_rows - 1) / tile_rows + n_expert;
}

#endif
