/* CPU reference of the quantized-weight ops (see ref_matmul.h). Written to be read: dequantize a
 * weight row, then plain dot products in k order. */
#include "ref_matmul.h"

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "expertrace/quant.h"

static bool fused_fma;

void xt_ref_set_fused_fma(bool fused)
{
    fused_fma = fused;
}

bool xt_ref_fused_fma(void)
{
    return fused_fma;
}

/* The one reduction every op uses: acc = 0; acc = fma(w[k], x[k], acc) for k = 0..K-1, fused
 * or with the product rounded first, as the device does. */
static float dot(const float *w, const float *x, uint32_t k)
{
    float acc = 0.0f;
    if (fused_fma) {
        for (uint32_t i = 0; i < k; i++) acc = fmaf(w[i], x[i], acc);
    } else {
        for (uint32_t i = 0; i < k; i++) acc = acc + w[i] * x[i];
    }
    return acc;
}

/* Bytes of one row of k elements of type; checks that w_bytes holds n_rows of them. */
static xt_status row_bytes_of(uint32_t type, uint32_t k, uint64_t n_rows, uint64_t w_bytes,
                              uint64_t *row_bytes, xt_error *err)
{
    xt_status s = xt_type_nbytes(type, k, row_bytes, err);
    if (s) return s;
    if (w_bytes < *row_bytes * n_rows)
        return xt_error_set(err, XT_ERR_FORMAT,
                            "reference matmul: %" PRIu64 " rows of %s[%" PRIu32 "] need %" PRIu64
                            " bytes, have %" PRIu64,
                            n_rows, xt_type_name(type), k, *row_bytes * n_rows, w_bytes);
    return XT_OK;
}

/* Dequantizes row r of W into out[k]. */
static xt_status load_row(uint32_t type, const void *w, uint64_t row_bytes, uint64_t r, uint32_t k,
                          float *out, xt_error *err)
{
    return xt_dequantize(type, (const uint8_t *)w + r * row_bytes, row_bytes, out, k, err);
}

xt_status xt_ref_matmul(uint32_t type, const void *w, uint64_t w_bytes, uint32_t k,
                        uint32_t n_out, const float *x, uint32_t rows, float *y, xt_error *err)
{
    uint64_t rb;
    xt_status s = row_bytes_of(type, k, n_out, w_bytes, &rb, err);
    if (s) return s;
    float *wrow = malloc((size_t)k * sizeof *wrow + 1);
    if (!wrow) return xt_error_set(err, XT_ERR_NO_MEMORY, "reference matmul: out of memory");
    for (uint32_t n = 0; n < n_out && !s; n++) {
        s = load_row(type, w, rb, n, k, wrow, err);
        for (uint32_t t = 0; t < rows && !s; t++)
            y[(size_t)t * n_out + n] = dot(wrow, x + (size_t)t * k, k);
    }
    free(wrow);
    return s;
}

xt_status xt_ref_matmul_id(uint32_t type, const void *w, uint64_t w_bytes, uint32_t k,
                           uint32_t n_out, uint32_t n_expert, const float *x, uint32_t x_row_div,
                           const uint32_t *ids, uint32_t n_entries, float *y, xt_error *err)
{
    uint64_t rb;
    xt_status s = row_bytes_of(type, k, (uint64_t)n_out * n_expert, w_bytes, &rb, err);
    if (s) return s;
    if (x_row_div == 0)
        return xt_error_set(err, XT_ERR_USAGE, "reference matmul_id: x_row_div must be >= 1");
    for (uint32_t e = 0; e < n_entries; e++)
        if (ids[e] >= n_expert)
            return xt_error_set(err, XT_ERR_RANGE,
                                "reference matmul_id: entry %" PRIu32 " names expert %" PRIu32
                                " of %" PRIu32,
                                e, ids[e], n_expert);
    float *wrow = malloc((size_t)k * sizeof *wrow + 1);
    if (!wrow) return xt_error_set(err, XT_ERR_NO_MEMORY, "reference matmul_id: out of memory");
    /* expert by expert, so each weight row is dequantized once */
    for (uint32_t ex = 0; ex < n_expert && !s; ex++) {
        bool used = false;
        for (uint32_t e = 0; e < n_entries && !used; e++) used = ids[e] == ex;
        if (!used) continue;
        for (uint32_t n = 0; n < n_out && !s; n++) {
            s = load_row(type, w, rb, (uint64_t)ex * n_out + n, k, wrow, err);
            for (uint32_t e = 0; e < n_entries && !s; e++)
                if (ids[e] == ex)
                    y[(size_t)e * n_out + n] = dot(wrow, x + (size_t)(e / x_row_div) * k, k);
        }
    }
    free(wrow);
    return s;
}

xt_status xt_ref_get_rows(uint32_t type, const void *w, uint64_t w_bytes, uint32_t k,
                          uint32_t n_rows, const uint32_t *ids, uint32_t rows, float *y,
                          uint32_t *n_out_of_range, xt_error *err)
{
    uint64_t rb;
    xt_status s = row_bytes_of(type, k, n_rows, w_bytes, &rb, err);
    if (s) return s;
    uint32_t bad = 0;
    for (uint32_t t = 0; t < rows && !s; t++) {
        float *out = y + (size_t)t * k;
        if (ids[t] >= n_rows) {
            memset(out, 0, (size_t)k * sizeof *out);
            bad++;
        } else {
            s = load_row(type, w, rb, ids[t], k, out, err);
        }
    }
    if (n_out_of_range) *n_out_of_range = bad;
    return s;
}

xt_status xt_ref_logit_gather(uint32_t type, const void *w, uint64_t w_bytes, uint32_t k,
                              uint32_t n_vocab, const float *h, const uint32_t *true_ids,
                              const uint32_t *foil_ids, uint32_t rows, float *logits, float *diff,
                              xt_error *err)
{
    uint64_t rb;
    xt_status s = row_bytes_of(type, k, n_vocab, w_bytes, &rb, err);
    if (s) return s;
    float *wrow = malloc((size_t)k * sizeof *wrow + 1);
    if (!wrow) return xt_error_set(err, XT_ERR_NO_MEMORY, "reference logit gather: out of memory");
    for (uint32_t t = 0; t < rows && !s; t++) {
        for (int which = 0; which < 2 && !s; which++) {
            uint32_t id = which == 0 ? true_ids[t] : foil_ids[t];
            float v = NAN;
            if (id < n_vocab) {
                s = load_row(type, w, rb, id, k, wrow, err);
                v = dot(wrow, h + (size_t)t * k, k);
            }
            logits[2 * (size_t)t + which] = v;
        }
        diff[t] = logits[2 * (size_t)t] - logits[2 * (size_t)t + 1];
    }
    free(wrow);
    return s;
}
