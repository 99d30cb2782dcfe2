/* Compute pipelines from embedded SPIR-V (shaders/<name>.comp) and the dispatch helper.
 *
 * Layout convention for every shader: set 0, storage buffers at bindings 0..n-1 (n <= 8,
 * DESIGN.md §7), one push-constant block. No pipeline cache yet: our pipelines are few and
 * drivers keep their own on-disk caches.
 */
#include <stdio.h>
#include <string.h>

#include "shaders.h"
#include "vk_internal.h"

static bool is_pow2(uint32_t v)
{
    return v && !(v & (v - 1));
}

xt_status xt_pipeline_create(xt_vk_context *ctx, const xt_pipeline_desc *desc, xt_pipeline *out,
                             xt_error *err)
{
    memset(out, 0, sizeof *out);
    const xt_vk_device_info *d = &ctx->info;
    const char *name = desc->shader ? desc->shader : "(null)";
    const xt_shader_blob *blob = desc->shader ? xt_shader_find(desc->shader) : NULL;
    if (!blob)
        return xt_error_set(err, XT_ERR_NOT_FOUND,
                            "no embedded shader '%s' (expected shaders/%s.comp)", name, name);
    if (desc->binding_count > XT_MAX_BINDINGS)
        return xt_error_set(err, XT_ERR_RANGE,
                            "pipeline '%s': %u storage-buffer bindings, at most %d allowed "
                            "(portability: MoltenVK and Vulkan's guaranteed minimum)",
                            name, desc->binding_count, XT_MAX_BINDINGS);
    if (desc->binding_count > d->limits.max_per_stage_descriptor_storage_buffers)
        return xt_error_set(
            err, XT_ERR_RANGE, "pipeline '%s': %u storage-buffer bindings, device allows %u", name,
            desc->binding_count, d->limits.max_per_stage_descriptor_storage_buffers);
    if (desc->push_bytes % 4 || desc->push_bytes > d->limits.max_push_constants_size)
        return xt_error_set(err, XT_ERR_RANGE,
                            "pipeline '%s': push-constant block of %u bytes (must be a multiple "
                            "of 4 and at most maxPushConstantsSize %u)",
                            name, desc->push_bytes, d->limits.max_push_constants_size);
    if (desc->spec_count > XT_MAX_SPEC_CONSTANTS || (desc->spec_count && !desc->spec))
        return xt_error_set(err, XT_ERR_RANGE,
                            "pipeline '%s': %u specialization constants (at most %d)", name,
                            desc->spec_count, XT_MAX_SPEC_CONSTANTS);
    snprintf(out->name, sizeof out->name, "%s", name);
    out->push_bytes = desc->push_bytes;
    out->binding_count = desc->binding_count;

    xt_status s = XT_OK;
    VkShaderModule module = VK_NULL_HANDLE;
    VkResult r = vkCreateShaderModule(ctx->device,
                                      &(VkShaderModuleCreateInfo){
                                          .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
                                          .codeSize = *blob->size_bytes,
                                          .pCode = blob->code,
                                      },
                                      NULL, &module);
    if (r != VK_SUCCESS) {
        module = VK_NULL_HANDLE;
        s = xt_vk_fail(r, err, "vkCreateShaderModule");
        goto fail;
    }

    VkDescriptorSetLayoutBinding b[XT_MAX_BINDINGS];
    for (uint32_t i = 0; i < desc->binding_count; i++)
        b[i] = (VkDescriptorSetLayoutBinding){
            .binding = i,
            .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
            .descriptorCount = 1,
            .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
        };
    r = vkCreateDescriptorSetLayout(
        ctx->device,
        &(VkDescriptorSetLayoutCreateInfo){
            .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
            .bindingCount = desc->binding_count,
            .pBindings = desc->binding_count ? b : NULL,
        },
        NULL, &out->set_layout);
    if (r != VK_SUCCESS) {
        out->set_layout = VK_NULL_HANDLE;
        s = xt_vk_fail(r, err, "vkCreateDescriptorSetLayout");
        goto fail;
    }
    VkPushConstantRange push = {
        .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
        .offset = 0,
        .size = desc->push_bytes,
    };
    r = vkCreatePipelineLayout(ctx->device,
                               &(VkPipelineLayoutCreateInfo){
                                   .sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
                                   .setLayoutCount = 1,
                                   .pSetLayouts = &out->set_layout,
                                   .pushConstantRangeCount = desc->push_bytes ? 1 : 0,
                                   .pPushConstantRanges = desc->push_bytes ? &push : NULL,
                               },
                               NULL, &out->layout);
    if (r != VK_SUCCESS) {
        out->layout = VK_NULL_HANDLE;
        s = xt_vk_fail(r, err, "vkCreatePipelineLayout");
        goto fail;
    }

    VkSpecializationMapEntry entries[XT_MAX_SPEC_CONSTANTS];
    uint32_t values[XT_MAX_SPEC_CONSTANTS];
    for (uint32_t i = 0; i < desc->spec_count; i++) {
        entries[i] = (VkSpecializationMapEntry){
            .constantID = desc->spec[i].id,
            .offset = i * (uint32_t)sizeof(uint32_t),
            .size = sizeof(uint32_t),
        };
        values[i] = desc->spec[i].value;
    }
    VkSpecializationInfo spec = {
        .mapEntryCount = desc->spec_count,
        .pMapEntries = entries,
        .dataSize = desc->spec_count * sizeof(uint32_t),
        .pData = values,
    };

    /* A required subgroup size only where the device grants it for compute; otherwise the
     * shader must cope with the driver's size (DESIGN.md §7). */
    VkPipelineShaderStageRequiredSubgroupSizeCreateInfo rss = {
        .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_REQUIRED_SUBGROUP_SIZE_CREATE_INFO,
        .requiredSubgroupSize = desc->subgroup_size,
    };
    bool grant = desc->subgroup_size && d->enabled.subgroup_size_control &&
                 (d->subgroup.required_size_stages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                 is_pow2(desc->subgroup_size) && desc->subgroup_size >= d->subgroup.min_size &&
                 desc->subgroup_size <= d->subgroup.max_size;
    VkComputePipelineCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .stage =
            {
                .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                .pNext = grant ? &rss : NULL,
                .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                .module = module,
                .pName = "main",
                .pSpecializationInfo = desc->spec_count ? &spec : NULL,
            },
        .layout = out->layout,
    };
    r = vkCreateComputePipelines(ctx->device, VK_NULL_HANDLE, 1, &ci, NULL, &out->pipeline);
    if (r != VK_SUCCESS) {
        out->pipeline = VK_NULL_HANDLE;
        s = xt_vk_fail(r, err, "vkCreateComputePipelines");
        xt_error_prefix(err, "pipeline '%s'", name);
        goto fail;
    }
    out->subgroup_size = grant ? desc->subgroup_size : 0;
    vkDestroyShaderModule(ctx->device, module, NULL);
    return XT_OK;

fail:
    if (module) vkDestroyShaderModule(ctx->device, module, NULL);
    xt_pipeline_destroy(ctx, out);
    return s;
}

void xt_pipeline_destroy(xt_vk_context *ctx, xt_pipeline *p)
{
    if (!p) return;
    if (p->pipeline) vkDestroyPipeline(ctx->device, p->pipeline, NULL);
    if (p->layout) vkDestroyPipelineLayout(ctx->device, p->layout, NULL);
    if (p->set_layout) vkDestroyDescriptorSetLayout(ctx->device, p->set_layout, NULL);
    memset(p, 0, sizeof *p);
}

/* Checks a dispatch's push constants and bindings against the pipeline and the device limits,
 * then binds the pipeline, a descriptor set and the push constants: everything but the launch. */
static xt_status bind_for_dispatch(xt_cmd *cmd, const xt_pipeline *p, const void *push,
                                   uint32_t push_bytes, const xt_binding *bindings,
                                   uint32_t binding_count, xt_error *err)
{
    xt_vk_context *ctx = cmd->ctx;
    const xt_vk_device_info *d = &ctx->info;
    if (cmd->state != XT_CMD_RECORDING)
        return xt_error_set(err, XT_ERR_USAGE, "xt_dispatch: command buffer not recording");
    if (!p || !p->pipeline) return xt_error_set(err, XT_ERR_USAGE, "xt_dispatch: no pipeline");
    if (push_bytes != p->push_bytes || (push_bytes && !push))
        return xt_error_set(err, XT_ERR_USAGE,
                            "dispatch of '%s': %u push-constant bytes given, the pipeline "
                            "declares %u",
                            p->name, push ? push_bytes : 0, p->push_bytes);
    if (binding_count != p->binding_count || (binding_count && !bindings))
        return xt_error_set(err, XT_ERR_USAGE,
                            "dispatch of '%s': %u buffer bindings given, the pipeline declares %u",
                            p->name, bindings ? binding_count : 0, p->binding_count);
    VkDescriptorBufferInfo info[XT_MAX_BINDINGS];
    VkWriteDescriptorSet writes[XT_MAX_BINDINGS];
    for (uint32_t i = 0; i < binding_count; i++) {
        const xt_binding *b = &bindings[i];
        if (!b->buffer || !b->buffer->buffer)
            return xt_error_set(err, XT_ERR_USAGE, "dispatch of '%s': binding %u has no buffer",
                                p->name, i);
        VkDeviceSize size = b->buffer->size_bytes;
        VkDeviceSize align = d->limits.min_storage_buffer_offset_alignment;
        if (align && b->offset % align)
            return xt_error_set(err, XT_ERR_RANGE,
                                "dispatch of '%s': binding %u offset %llu is not a multiple of "
                                "minStorageBufferOffsetAlignment %llu",
                                p->name, i, (unsigned long long)b->offset,
                                (unsigned long long)align);
        if (b->offset >= size)
            return xt_error_set(err, XT_ERR_RANGE,
                                "dispatch of '%s': binding %u offset %llu past the buffer's %llu "
                                "bytes",
                                p->name, i, (unsigned long long)b->offset,
                                (unsigned long long)size);
        VkDeviceSize range = b->range_bytes ? b->range_bytes : size - b->offset;
        if (range > size - b->offset)
            return xt_error_set(err, XT_ERR_RANGE,
                                "dispatch of '%s': binding %u range [%llu, +%llu) past the "
                                "buffer's %llu bytes",
                                p->name, i, (unsigned long long)b->offset,
                                (unsigned long long)range, (unsigned long long)size);
        if (range > d->limits.max_storage_buffer_range)
            return xt_error_set(err, XT_ERR_RANGE,
                                "dispatch of '%s': binding %u covers %llu bytes, above "
                                "maxStorageBufferRange %llu of device %u (%s); split the tensor "
                                "into chunks",
                                p->name, i, (unsigned long long)range,
                                (unsigned long long)d->limits.max_storage_buffer_range, d->index,
                                d->name);
        info[i] = (VkDescriptorBufferInfo){
            .buffer = b->buffer->buffer, .offset = b->offset, .range = range};
        writes[i] = (VkWriteDescriptorSet){
            .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
            .dstBinding = i,
            .descriptorCount = 1,
            .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
            .pBufferInfo = &info[i],
        };
    }

    vkCmdBindPipeline(cmd->cb, VK_PIPELINE_BIND_POINT_COMPUTE, p->pipeline);
    if (binding_count) {
        VkDescriptorSet set;
        xt_status s = xt_cmd_alloc_set(cmd, p->set_layout, &set, err);
        if (s) return s;
        for (uint32_t i = 0; i < binding_count; i++)
            writes[i].dstSet = set;
        vkUpdateDescriptorSets(ctx->device, binding_count, writes, 0, NULL);
        vkCmdBindDescriptorSets(cmd->cb, VK_PIPELINE_BIND_POINT_COMPUTE, p->layout, 0, 1, &set, 0,
                                NULL);
    }
    if (push_bytes)
        vkCmdPushConstants(cmd->cb, p->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, push_bytes, push);
    return XT_OK;
}

xt_status xt_dispatch(xt_cmd *cmd, const xt_pipeline *p, uint32_t groups_x, uint32_t groups_y,
                      uint32_t groups_z, const void *push, uint32_t push_bytes,
                      const xt_binding *bindings, uint32_t binding_count, xt_error *err)
{
    const xt_vk_device_info *d = &cmd->ctx->info;
    const uint32_t groups[3] = {groups_x, groups_y, groups_z};
    for (int i = 0; i < 3; i++)
        if (groups[i] > d->limits.max_compute_work_group_count[i])
            return xt_error_set(err, XT_ERR_RANGE,
                                "dispatch of '%s': %u workgroups in %c, device allows %u",
                                p ? p->name : "(null)", groups[i], "xyz"[i],
                                d->limits.max_compute_work_group_count[i]);
    xt_status s = bind_for_dispatch(cmd, p, push, push_bytes, bindings, binding_count, err);
    if (s) return s;
    vkCmdDispatch(cmd->cb, groups_x, groups_y, groups_z);
    return XT_OK;
}

xt_status xt_dispatch_indirect(xt_cmd *cmd, const xt_pipeline *p, const xt_buffer *args,
                               VkDeviceSize args_offset, const void *push, uint32_t push_bytes,
                               const xt_binding *bindings, uint32_t binding_count, xt_error *err)
{
    if (!args || !args->buffer)
        return xt_error_set(err, XT_ERR_USAGE, "indirect dispatch of '%s': no argument buffer",
                            p ? p->name : "(null)");
    if (args_offset % 4 || args_offset > args->size_bytes ||
        args->size_bytes - args_offset < sizeof(VkDispatchIndirectCommand))
        return xt_error_set(err, XT_ERR_RANGE,
                            "indirect dispatch of '%s': arguments at offset %llu do not fit the "
                            "%llu-byte buffer or are not 4-byte aligned",
                            p ? p->name : "(null)", (unsigned long long)args_offset,
                            (unsigned long long)args->size_bytes);
    xt_status s = bind_for_dispatch(cmd, p, push, push_bytes, bindings, binding_count, err);
    if (s) return s;
    vkCmdDispatchIndirect(cmd->cb, args->buffer, args_offset);
    return XT_OK;
}
