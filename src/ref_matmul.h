/* CPU reference of the quantized-weight ops (matmul, matmul_id, get_rows, logit_gather): the
 * oracle the shaders are tested against and, later, part of a `--backend cpu`.
 *
 * Weights are packed GGUF rows (W [n_rows][K] in `type`, row r at byte r * row_bytes); they are
 * dequantized with xt_dequantize, one row at a time. Every dot product is one fp32 accumulator
 * that adds w[k] * x[k] for k = 0..K-1 in order, the order the shaders use too
 * (shaders/matmul.comp). Each step is fmaf (one rounding) or a product rounded to fp32 and then
 * added, as the device's `fma` does: xt_ref_set_fused_fma with what xt_vk_fma_fused measured
 * (default: not fused, as lavapipe; no contraction otherwise: the build passes
 * -ffp-contract=off).
 */
#ifndef XT_REF_MATMUL_H
#define XT_REF_MATMUL_H

#include <stdbool.h>
#include <stdint.h>

#include "expertrace/status.h"

/* Process-wide: whether the reference's dot products fuse each step (set once at start-up,
 * before any thread runs reference ops). */
void xt_ref_set_fused_fma(bool fused);
bool xt_ref_fused_fma(void);

/* y[t][n] = W[n] . x[t] for t < rows, n < n_out; W {K, n_out} (w_bytes = n_out * row bytes),
 * x [rows][K], y [rows][n_out]. */
xt_status xt_ref_matmul(uint32_t type, const void *w, uint64_t w_bytes, uint32_t k,
                        uint32_t n_out, const float *x, uint32_t rows, float *y, xt_error *err);

/* The expert GEMM: for entry e < n_entries, with expert ids[e] < n_expert,
 * y[e][n] = W[ids[e]][n] . x[e / x_row_div]. W {K, n_out, n_expert}, x [n_entries/x_row_div][K]
 * (rows up to the last one used), y [n_entries][n_out]. An expert id out of range is
 * XT_ERR_RANGE. */
xt_status xt_ref_matmul_id(uint32_t type, const void *w, uint64_t w_bytes, uint32_t k,
                           uint32_t n_out, uint32_t n_expert, const float *x, uint32_t x_row_div,
                           const uint32_t *ids, uint32_t n_entries, float *y, xt_error *err);

/* y[t] = dequant(W[ids[t]]), W [n_rows][K], y [rows][K]. An id >= n_rows gives a zero row and
 * counts in *n_out_of_range (may be NULL), like the shader. */
xt_status xt_ref_get_rows(uint32_t type, const void *w, uint64_t w_bytes, uint32_t k,
                          uint32_t n_rows, const uint32_t *ids, uint32_t rows, float *y,
                          uint32_t *n_out_of_range, xt_error *err);

/* logits[t] = (W[true_ids[t]] . h[t], W[foil_ids[t]] . h[t]), diff[t] = logits[t][0] -
 * logits[t][1]; W [n_vocab][K], h [rows][K]. An id >= n_vocab gives a NaN logit. */
xt_status xt_ref_logit_gather(uint32_t type, const void *w, uint64_t w_bytes, uint32_t k,
                              uint32_t n_vocab, const float *h, const uint32_t *true_ids,
                              const uint32_t *foil_ids, uint32_t rows, float *logits, float *diff,
                              xt_error *err);

#endif
