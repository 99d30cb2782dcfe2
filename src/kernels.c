/* Pipeline cache and chunked device tensors (see kernels.h). */
#include "kernels.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expertrace/quant.h"
#include "ref_matmul.h"

typedef struct cache_entry {
    char shader[64];
    xt_spec_constant spec[XT_MAX_SPEC_CONSTANTS];
    uint32_t spec_count;
    uint32_t push_bytes;
    uint32_t binding_count;
    uint32_t subgroup_size;
    xt_pipeline pipeline;
} cache_entry;

struct xt_kernels {
    xt_vk_context *ctx;
    cache_entry **entries; /* individually allocated: pipeline pointers stay valid as it grows */
    uint32_t count, capacity;
};

xt_status xt_kernels_create(xt_vk_context *ctx, xt_kernels **out, xt_error *err)
{
    *out = NULL;
    xt_kernels *k = calloc(1, sizeof *k);
    if (!k) return xt_error_set(err, XT_ERR_NO_MEMORY, "kernels: out of host memory");
    k->ctx = ctx;
    /* The matmul-like ops reduce with fma; the CPU reference rounds the way this device does. */
    bool fused;
    xt_status s = xt_vk_fma_fused(ctx, &fused, err);
    if (s) {
        free(k);
        return s;
    }
    xt_ref_set_fused_fma(fused);
    *out = k;
    return XT_OK;
}

void xt_kernels_destroy(xt_kernels *k)
{
    if (!k) return;
    for (uint32_t i = 0; i < k->count; i++) {
        xt_pipeline_destroy(k->ctx, &k->entries[i]->pipeline);
        free(k->entries[i]);
    }
    free(k->entries);
    free(k);
}

xt_vk_context *xt_kernels_context(const xt_kernels *k)
{
    return k->ctx;
}

uint32_t xt_kernels_pipeline_count(const xt_kernels *k)
{
    return k->count;
}

static bool entry_matches(const cache_entry *e, const xt_pipeline_desc *d)
{
    if (strcmp(e->shader, d->shader) || e->spec_count != d->spec_count ||
        e->push_bytes != d->push_bytes || e->binding_count != d->binding_count ||
        e->subgroup_size != d->subgroup_size)
        return false;
    for (uint32_t i = 0; i < d->spec_count; i++)
        if (e->spec[i].id != d->spec[i].id || e->spec[i].value != d->spec[i].value) return false;
    return true;
}

xt_status xt_kernels_pipeline(xt_kernels *k, const xt_pipeline_desc *desc, const xt_pipeline **out,
                              xt_error *err)
{
    *out = NULL;
    if (!desc->shader) return xt_error_set(err, XT_ERR_USAGE, "pipeline without a shader name");
    if (strlen(desc->shader) >= sizeof k->entries[0]->shader)
        return xt_error_set(err, XT_ERR_USAGE, "shader name '%s' too long", desc->shader);
    if (desc->spec_count > XT_MAX_SPEC_CONSTANTS)
        return xt_error_set(err, XT_ERR_RANGE, "pipeline '%s': %u specialization constants",
                            desc->shader, desc->spec_count);
    for (uint32_t i = 0; i < k->count; i++)
        if (entry_matches(k->entries[i], desc)) {
            *out = &k->entries[i]->pipeline;
            return XT_OK;
        }
    if (k->count == k->capacity) {
        uint32_t cap = k->capacity ? 2 * k->capacity : 16;
        cache_entry **grown = realloc(k->entries, cap * sizeof *grown);
        if (!grown) return xt_error_set(err, XT_ERR_NO_MEMORY, "kernels: out of host memory");
        k->entries = grown;
        k->capacity = cap;
    }
    cache_entry *e = calloc(1, sizeof *e);
    if (!e) return xt_error_set(err, XT_ERR_NO_MEMORY, "kernels: out of host memory");
    snprintf(e->shader, sizeof e->shader, "%s", desc->shader);
    if (desc->spec_count) memcpy(e->spec, desc->spec, desc->spec_count * sizeof e->spec[0]);
    e->spec_count = desc->spec_count;
    e->push_bytes = desc->push_bytes;
    e->binding_count = desc->binding_count;
    e->subgroup_size = desc->subgroup_size;
    xt_status s = xt_pipeline_create(k->ctx, desc, &e->pipeline, err);
    if (s) {
        free(e);
        return s;
    }
    k->entries[k->count++] = e;
    *out = &e->pipeline;
    return XT_OK;
}

/* ---- device tensors ------------------------------------------------------------------------ */

uint64_t xt_binding_limit_bytes(const xt_vk_context *ctx)
{
    const xt_vk_device_info *d = xt_vk_context_info(ctx);
    uint64_t lim = d->limits.max_storage_buffer_range;
    if (d->limits.max_memory_allocation_size && d->limits.max_memory_allocation_size < lim)
        lim = d->limits.max_memory_allocation_size;
    if (d->limits.max_buffer_size && d->limits.max_buffer_size < lim)
        lim = d->limits.max_buffer_size;
    return lim & ~(uint64_t)3;
}

void xt_dtensor_destroy(xt_vk_context *ctx, xt_dtensor *t)
{
    if (!t) return;
    for (uint32_t i = 0; i < t->n_chunks; i++) xt_buffer_destroy(ctx, &t->chunks[i].buf);
    free(t->chunks);
    memset(t, 0, sizeof *t);
}

/* Uploads bytes [0, n) of src to the start of buf, then zero-pads to a multiple of 4 (a row of
 * 34-byte Q8_0 blocks need not end on a word). */
static xt_status upload_padded(xt_vk_context *ctx, xt_buffer *buf, const uint8_t *src, uint64_t n,
                               xt_error *err)
{
    uint64_t whole = n & ~(uint64_t)3;
    xt_status s = XT_OK;
    if (whole) s = xt_buffer_upload(ctx, buf, 0, src, (size_t)whole, err);
    if (s == XT_OK && n > whole) {
        uint8_t tail[4] = {0};
        memcpy(tail, src + whole, (size_t)(n - whole));
        s = xt_buffer_upload(ctx, buf, whole, tail, 4, err);
    }
    return s;
}

xt_status xt_dtensor_create(xt_vk_context *ctx, const xt_dtensor_desc *desc, xt_dtensor *out,
                            xt_error *err)
{
    memset(out, 0, sizeof *out);
    const char *name = desc->name ? desc->name : "tensor";
    snprintf(out->name, sizeof out->name, "%s", name);
    out->type = desc->type;
    for (int i = 0; i < 4; i++) {
        out->ne[i] = desc->ne[i] ? desc->ne[i] : 1;
        if (out->ne[i] < 0)
            return xt_error_set(err, XT_ERR_RANGE, "tensor '%s': ne[%d] = %" PRId64 " is negative",
                                name, i, out->ne[i]);
    }
    xt_status s = xt_type_nbytes(desc->type, (uint64_t)out->ne[0], &out->row_bytes, err);
    if (s) {
        xt_error_prefix(err, "tensor '%s'", name);
        return s;
    }
    uint64_t rows = 1;
    for (int i = 1; i < 4; i++) {
        if ((uint64_t)out->ne[i] && rows > UINT64_MAX / (uint64_t)out->ne[i])
            return xt_error_set(err, XT_ERR_RANGE, "tensor '%s': shape overflows", name);
        rows *= (uint64_t)out->ne[i];
    }
    out->n_rows = rows;
    out->slab_rows = (uint64_t)out->ne[1];
    if (out->row_bytes && rows > UINT64_MAX / out->row_bytes)
        return xt_error_set(err, XT_ERR_RANGE, "tensor '%s': size overflows", name);
    uint64_t total = rows * out->row_bytes;
    if (desc->data && desc->data_bytes != total)
        return xt_error_set(err, XT_ERR_FORMAT,
                            "tensor '%s': %" PRIu64 " bytes of data for %" PRIu64 " rows of %" PRIu64
                            " bytes",
                            name, desc->data_bytes, rows, out->row_bytes);

    uint64_t limit = xt_binding_limit_bytes(ctx);
    if (desc->max_chunk_bytes && desc->max_chunk_bytes < limit) limit = desc->max_chunk_bytes;
    /* a chunk's padded size must fit the binding too */
    if (out->row_bytes == 0 || out->row_bytes + 3 > limit)
        return xt_error_set(err, XT_ERR_RANGE,
                            "tensor '%s': one row is %" PRIu64 " bytes, more than one storage "
                            "binding may cover (%" PRIu64 " bytes)",
                            name, out->row_bytes, limit);
    uint64_t rows_per_chunk = (limit - 3) / out->row_bytes;
    uint64_t slab = out->slab_rows ? out->slab_rows : 1;
    if (rows_per_chunk >= slab)
        rows_per_chunk -= rows_per_chunk % slab; /* whole slabs (experts) per chunk */
    else
        out->slabs_split = true;
    if (rows_per_chunk > rows) rows_per_chunk = rows;
    uint64_t n_chunks = rows ? (rows + rows_per_chunk - 1) / rows_per_chunk : 0;
    if (n_chunks > UINT32_MAX)
        return xt_error_set(err, XT_ERR_RANGE, "tensor '%s': too many chunks", name);

    out->chunks = n_chunks ? calloc((size_t)n_chunks, sizeof *out->chunks) : NULL;
    if (n_chunks && !out->chunks)
        return xt_error_set(err, XT_ERR_NO_MEMORY, "tensor '%s': out of host memory", name);
    uint8_t *zeros = NULL;
    for (uint64_t c = 0; c < n_chunks; c++) {
        xt_dtensor_chunk *ch = &out->chunks[c];
        ch->row_begin = c * rows_per_chunk;
        ch->row_count = rows - ch->row_begin < rows_per_chunk ? rows - ch->row_begin : rows_per_chunk;
        uint64_t bytes = ch->row_count * out->row_bytes;
        char label[96];
        snprintf(label, sizeof label, "%s[chunk %" PRIu64 "]", name, c);
        s = xt_buffer_create(ctx,
                             &(xt_buffer_desc){.size_bytes = (bytes + 3) & ~(uint64_t)3,
                                               .kind = XT_BUFFER_DEVICE,
                                               .label = label},
                             &ch->buf, err);
        if (s) goto fail;
        out->n_chunks = (uint32_t)c + 1;
        if (desc->data) {
            const uint8_t *src = (const uint8_t *)desc->data + ch->row_begin * out->row_bytes;
            s = upload_padded(ctx, &ch->buf, src, bytes, err);
        } else {
            if (!zeros && !(zeros = calloc(1, (size_t)ch->buf.size_bytes))) {
                s = xt_error_set(err, XT_ERR_NO_MEMORY, "tensor '%s': out of host memory", name);
                goto fail;
            }
            s = xt_buffer_upload(ctx, &ch->buf, 0, zeros, (size_t)ch->buf.size_bytes, err);
        }
        if (s) goto fail;
    }
    free(zeros);
    return XT_OK;
fail:
    free(zeros);
    xt_dtensor_destroy(ctx, out);
    return s;
}

bool xt_dtensor_locate(const xt_dtensor *t, uint64_t row, uint32_t *chunk, uint64_t *row_in_chunk)
{
    if (row >= t->n_rows || t->n_chunks == 0) return false;
    /* chunks are equal-sized except the last: direct index */
    uint64_t per = t->chunks[0].row_count;
    uint32_t c = (uint32_t)(row / per);
    *chunk = c;
    *row_in_chunk = row - t->chunks[c].row_begin;
    return true;
}
