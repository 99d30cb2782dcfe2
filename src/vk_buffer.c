/* Buffers: one VkBuffer with its own VkDeviceMemory, mapped for life when host-visible.
 *
 * Memory types are chosen from a preference list per kind, falling through to the next type
 * when an allocation fails. Uploads and downloads copy directly when the buffer is mapped and
 * otherwise go through the context's staging buffer, chunk by chunk. Non-coherent memory is
 * flushed / invalidated over ranges widened to nonCoherentAtomSize.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vk_internal.h"

#define DL VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT
#define HV VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT
#define HC VK_MEMORY_PROPERTY_HOST_CACHED_BIT
#define COH VK_MEMORY_PROPERTY_HOST_COHERENT_BIT

typedef struct mem_pref {
    VkMemoryPropertyFlags want;
    VkMemoryPropertyFlags avoid;
} mem_pref;

/* Candidate memory types for kind, best first, without repeats; returns how many. */
static uint32_t candidates(const xt_vk_device_info *d, xt_buffer_kind kind, uint32_t type_bits,
                           uint32_t out[VK_MAX_MEMORY_TYPES])
{
    static const mem_pref device[] = {{DL, HV}, {DL, 0}, {0, 0}};
    static const mem_pref device_uma[] = {{DL | HV | COH, 0}, {DL | HV, 0}, {DL, 0}, {0, 0}};
    static const mem_pref upload[] = {{HV | COH, DL}, {HV | COH, 0}, {HV, 0}};
    static const mem_pref readback[] = {{HV | HC | COH, 0}, {HV | HC, 0}, {HV | COH, 0}, {HV, 0}};
    const mem_pref *p;
    uint32_t np;
    switch (kind) {
    case XT_BUFFER_UPLOAD:
        p = upload, np = 3;
        break;
    case XT_BUFFER_READBACK:
        p = readback, np = 4;
        break;
    default:
        if (d->enabled.uma)
            p = device_uma, np = 4;
        else
            p = device, np = 3;
        break;
    }
    uint32_t n = 0;
    for (uint32_t i = 0; i < np; i++) {
        for (uint32_t t = 0; t < d->type_count; t++) {
            VkMemoryPropertyFlags f = d->types[t].flags;
            if (!(type_bits & (1u << t)) || (f & p[i].want) != p[i].want || (f & p[i].avoid))
                continue;
            bool seen = false;
            for (uint32_t k = 0; k < n; k++)
                seen |= out[k] == t;
            if (!seen) out[n++] = t;
        }
    }
    return n;
}

static const char *label_of(const xt_buffer_desc *desc)
{
    return desc->label ? desc->label : "buffer";
}

xt_status xt_buffer_create(xt_vk_context *ctx, const xt_buffer_desc *desc, xt_buffer *out,
                           xt_error *err)
{
    memset(out, 0, sizeof *out);
    const xt_vk_device_info *d = &ctx->info;
    const char *label = label_of(desc);
    char a[32], b[32];
    VkDeviceSize size = desc->size_bytes;
    if (size == 0) return xt_error_set(err, XT_ERR_RANGE, "buffer '%s': size 0", label);
    if (d->limits.max_buffer_size && size > d->limits.max_buffer_size)
        return xt_error_set(err, XT_ERR_RANGE,
                            "buffer '%s' of %llu bytes (%s) exceeds maxBufferSize %llu bytes (%s) "
                            "of device %u (%s); large tensors must be split into chunks",
                            label, (unsigned long long)size, xt_vk_bytes_string(size, a, sizeof a),
                            (unsigned long long)d->limits.max_buffer_size,
                            xt_vk_bytes_string(d->limits.max_buffer_size, b, sizeof b), d->index,
                            d->name);
    if (size > d->limits.max_memory_allocation_size) goto too_big;

    xt_status s;
    VkResult r = vkCreateBuffer(ctx->device,
                                &(VkBufferCreateInfo){
                                    .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
                                    .size = size,
                                    .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT |
                                             VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                                             VK_BUFFER_USAGE_TRANSFER_DST_BIT |
                                             VK_BUFFER_USAGE_INDIRECT_BUFFER_BIT,
                                    .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
                                },
                                NULL, &out->buffer);
    if (r != VK_SUCCESS) {
        out->buffer = VK_NULL_HANDLE;
        xt_status fs = xt_vk_fail(r, err, "vkCreateBuffer");
        xt_error_prefix(err, "buffer '%s' (%llu bytes)", label, (unsigned long long)size);
        return fs;
    }
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(ctx->device, out->buffer, &req);
    if (req.size > d->limits.max_memory_allocation_size) {
        size = req.size;
        vkDestroyBuffer(ctx->device, out->buffer, NULL);
        out->buffer = VK_NULL_HANDLE;
        goto too_big;
    }

    uint32_t types[VK_MAX_MEMORY_TYPES];
    uint32_t nt = candidates(d, desc->kind, req.memoryTypeBits, types);
    if (nt == 0) {
        s = xt_error_set(err, XT_ERR_DEVICE,
                         "buffer '%s': device %u (%s) has no memory type for this buffer kind",
                         label, d->index, d->name);
        goto fail;
    }
    r = VK_ERROR_OUT_OF_DEVICE_MEMORY;
    for (uint32_t i = 0; i < nt && r != VK_SUCCESS; i++) {
        r = vkAllocateMemory(ctx->device,
                             &(VkMemoryAllocateInfo){
                                 .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
                                 .allocationSize = req.size,
                                 .memoryTypeIndex = types[i],
                             },
                             NULL, &out->memory);
        if (r == VK_SUCCESS)
            out->memory_type = types[i];
        else if (r != VK_ERROR_OUT_OF_DEVICE_MEMORY && r != VK_ERROR_OUT_OF_HOST_MEMORY)
            break;
    }
    if (r != VK_SUCCESS) {
        out->memory = VK_NULL_HANDLE;
        if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY) {
            uint32_t heap = d->types[types[0]].heap;
            s = xt_error_set(
                err, XT_ERR_DEVICE_MEMORY,
                "out of device memory: buffer '%s' needs %llu bytes (%s) from heap "
                "%u (%s%s) of device %u (%s)",
                label, (unsigned long long)req.size, xt_vk_bytes_string(req.size, a, sizeof a),
                heap, xt_vk_bytes_string(d->heaps[heap].size_bytes, b, sizeof b),
                (d->heaps[heap].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) ? ", device-local"
                                                                         : ", host",
                d->index, d->name);
        } else {
            s = xt_vk_fail(r, err, "vkAllocateMemory");
            xt_error_prefix(err, "buffer '%s'", label);
        }
        goto fail;
    }
    r = vkBindBufferMemory(ctx->device, out->buffer, out->memory, 0);
    if (r != VK_SUCCESS) {
        s = xt_vk_fail(r, err, "vkBindBufferMemory");
        goto fail;
    }
    VkMemoryPropertyFlags flags = d->types[out->memory_type].flags;
    out->coherent = flags & COH;
    out->size_bytes = desc->size_bytes;
    out->alloc_bytes = req.size;
    out->kind = desc->kind;
    /* A device buffer in host-visible memory is mapped only when UMA mapping is enabled: under
     * the feature floor it takes the staging path even on lavapipe. */
    if ((flags & HV) && (desc->kind != XT_BUFFER_DEVICE || d->enabled.uma)) {
        r = vkMapMemory(ctx->device, out->memory, 0, VK_WHOLE_SIZE, 0, &out->mapped);
        if (r != VK_SUCCESS) {
            out->mapped = NULL;
            s = xt_vk_fail(r, err, "vkMapMemory");
            xt_error_prefix(err, "buffer '%s'", label);
            goto fail;
        }
    }
    return XT_OK;

too_big:
    return xt_error_set(err, XT_ERR_RANGE,
                        "buffer '%s' of %llu bytes (%s) exceeds maxMemoryAllocationSize %llu "
                        "bytes (%s) of device %u (%s); large tensors must be split into chunks",
                        label, (unsigned long long)size, xt_vk_bytes_string(size, a, sizeof a),
                        (unsigned long long)d->limits.max_memory_allocation_size,
                        xt_vk_bytes_string(d->limits.max_memory_allocation_size, b, sizeof b),
                        d->index, d->name);
fail:
    xt_buffer_destroy(ctx, out);
    return s;
}

void xt_buffer_destroy(xt_vk_context *ctx, xt_buffer *buf)
{
    if (!buf) return;
    if (buf->mapped) vkUnmapMemory(ctx->device, buf->memory);
    if (buf->buffer) vkDestroyBuffer(ctx->device, buf->buffer, NULL);
    if (buf->memory) vkFreeMemory(ctx->device, buf->memory, NULL);
    memset(buf, 0, sizeof *buf);
}

/* [offset, offset + size) widened to whole atoms, or to the end of the allocation. */
static VkMappedMemoryRange atom_range(const xt_vk_context *ctx, const xt_buffer *buf,
                                      VkDeviceSize offset, VkDeviceSize size)
{
    VkDeviceSize atom = ctx->info.limits.non_coherent_atom_size;
    if (atom == 0) atom = 1;
    VkDeviceSize begin = offset / atom * atom;
    VkDeviceSize end = (offset + size + atom - 1) / atom * atom;
    return (VkMappedMemoryRange){
        .sType = VK_STRUCTURE_TYPE_MAPPED_MEMORY_RANGE,
        .memory = buf->memory,
        .offset = begin,
        .size = end >= buf->alloc_bytes ? VK_WHOLE_SIZE : end - begin,
    };
}

static xt_status check_range(const xt_buffer *buf, VkDeviceSize offset, size_t size,
                             const char *what, xt_error *err)
{
    if (!buf || !buf->buffer) return xt_error_set(err, XT_ERR_USAGE, "%s: no buffer", what);
    if (offset > buf->size_bytes || size > buf->size_bytes - offset)
        return xt_error_set(err, XT_ERR_RANGE,
                            "%s: bytes [%llu, %llu) outside the buffer's %llu bytes", what,
                            (unsigned long long)offset, (unsigned long long)(offset + size),
                            (unsigned long long)buf->size_bytes);
    return XT_OK;
}

/* The shared staging buffer and the command buffer that copies through it. */
static xt_status ensure_staging(xt_vk_context *ctx, xt_error *err)
{
    xt_status s;
    if (!ctx->transfer && (s = xt_cmd_create(ctx, &ctx->transfer, err))) return s;
    if (ctx->staging.buffer) return XT_OK;
    uint64_t bytes = ctx->staging_bytes;
    if (bytes > ctx->info.limits.max_memory_allocation_size)
        bytes = ctx->info.limits.max_memory_allocation_size;
    s = xt_buffer_create(
        ctx, &(xt_buffer_desc){.size_bytes = bytes, .kind = XT_BUFFER_READBACK, .label = "staging"},
        &ctx->staging, err);
    if (s == XT_OK && !ctx->staging.mapped)
        s = xt_error_set(err, XT_ERR_DEVICE, "staging buffer is not host-visible");
    return s;
}

xt_status xt_buffer_upload(xt_vk_context *ctx, xt_buffer *dst, VkDeviceSize offset, const void *src,
                           size_t size_bytes, xt_error *err)
{
    xt_status s = check_range(dst, offset, size_bytes, "xt_buffer_upload", err);
    if (s || size_bytes == 0) return s;
    if (dst->mapped) {
        memcpy((char *)dst->mapped + offset, src, size_bytes);
        if (!dst->coherent) {
            VkMappedMemoryRange mr = atom_range(ctx, dst, offset, size_bytes);
            VkResult r = vkFlushMappedMemoryRanges(ctx->device, 1, &mr);
            if (r != VK_SUCCESS) return xt_vk_fail(r, err, "vkFlushMappedMemoryRanges");
        }
        return XT_OK;
    }
    if ((s = ensure_staging(ctx, err))) return s;
    const char *from = src;
    for (size_t done = 0; done < size_bytes;) {
        size_t n = size_bytes - done;
        if (n > ctx->staging.size_bytes) n = (size_t)ctx->staging.size_bytes;
        memcpy(ctx->staging.mapped, from + done, n);
        if (!ctx->staging.coherent) {
            VkMappedMemoryRange mr = atom_range(ctx, &ctx->staging, 0, n);
            VkResult r = vkFlushMappedMemoryRanges(ctx->device, 1, &mr);
            if (r != VK_SUCCESS) return xt_vk_fail(r, err, "vkFlushMappedMemoryRanges");
        }
        if ((s = xt_cmd_begin(ctx->transfer, err))) return s;
        xt_cmd_copy(ctx->transfer, &ctx->staging, 0, dst, offset + done, n);
        if ((s = xt_cmd_submit_wait(ctx->transfer, err))) return s;
        done += n;
    }
    return XT_OK;
}

xt_status xt_buffer_download(xt_vk_context *ctx, const xt_buffer *src, VkDeviceSize offset,
                             void *dst, size_t size_bytes, xt_error *err)
{
    xt_status s = check_range(src, offset, size_bytes, "xt_buffer_download", err);
    if (s || size_bytes == 0) return s;
    if (src->mapped) {
        if (!src->coherent) {
            VkMappedMemoryRange mr = atom_range(ctx, src, offset, size_bytes);
            VkResult r = vkInvalidateMappedMemoryRanges(ctx->device, 1, &mr);
            if (r != VK_SUCCESS) return xt_vk_fail(r, err, "vkInvalidateMappedMemoryRanges");
        }
        memcpy(dst, (const char *)src->mapped + offset, size_bytes);
        return XT_OK;
    }
    if ((s = ensure_staging(ctx, err))) return s;
    char *to = dst;
    for (size_t done = 0; done < size_bytes;) {
        size_t n = size_bytes - done;
        if (n > ctx->staging.size_bytes) n = (size_t)ctx->staging.size_bytes;
        if ((s = xt_cmd_begin(ctx->transfer, err))) return s;
        xt_cmd_copy(ctx->transfer, src, offset + done, &ctx->staging, 0, n);
        if ((s = xt_cmd_submit_wait(ctx->transfer, err))) return s;
        if (!ctx->staging.coherent) {
            VkMappedMemoryRange mr = atom_range(ctx, &ctx->staging, 0, n);
            VkResult r = vkInvalidateMappedMemoryRanges(ctx->device, 1, &mr);
            if (r != VK_SUCCESS) return xt_vk_fail(r, err, "vkInvalidateMappedMemoryRanges");
        }
        memcpy(to + done, ctx->staging.mapped, n);
        done += n;
    }
    return XT_OK;
}
