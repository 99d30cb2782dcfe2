/* The context (logical device, compute queue, command pool, timeline semaphore), command
 * buffers with their descriptor pools, submission and waiting, barriers and GPU timestamps.
 *
 * Descriptor sets come from per-command-buffer pools that are reset when the command buffer is
 * begun again: VK_KHR_push_descriptor would be simpler but is not universal, and a pool reset is
 * as cheap. Completion is a timeline semaphore value when that feature is enabled, a fence per
 * command buffer otherwise (the feature floor), so both paths run in CI.
 */
#include <stdlib.h>
#include <string.h>

#include "vk_internal.h"

#define DEFAULT_TIMEOUT_NS (60ull * 1000 * 1000 * 1000)
#define DEFAULT_STAGING_BYTES (64ull << 20)
#define SETS_PER_POOL 128u

/* ---- device creation ------------------------------------------------------------------------ */

static xt_status create_device(xt_vk_context *ctx, xt_error *err)
{
    const xt_vk_physical *phys = ctx->phys;
    const xt_vk_features *en = &ctx->info.enabled;
    bool is13 = ctx->info.effective_api_version >= VK_API_VERSION_1_3;

    const char *exts[8];
    uint32_t n_exts = 0;
    /* Required by the spec whenever the device offers it (MoltenVK). */
    if (phys->exts.portability_subset) exts[n_exts++] = XT_VK_KHR_PORTABILITY_SUBSET_NAME;

    VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
    f2.features.shaderInt16 = en->shader_int16;
    f2.features.shaderInt64 = en->shader_int64;
    VkPhysicalDevice16BitStorageFeatures s16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES,
        .storageBuffer16BitAccess = en->storage_buffer_16bit,
        .uniformAndStorageBuffer16BitAccess = en->uniform_and_storage_buffer_16bit,
        .storagePushConstant16 = en->storage_push_constant_16bit,
    };
    VkPhysicalDevice8BitStorageFeatures s8 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_8BIT_STORAGE_FEATURES,
        .storageBuffer8BitAccess = en->storage_buffer_8bit,
        .uniformAndStorageBuffer8BitAccess = en->uniform_and_storage_buffer_8bit,
        .storagePushConstant8 = en->storage_push_constant_8bit,
    };
    VkPhysicalDeviceShaderFloat16Int8Features f16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES,
        .shaderFloat16 = en->shader_float16,
        .shaderInt8 = en->shader_int8,
    };
    VkPhysicalDeviceTimelineSemaphoreFeatures ts = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_TIMELINE_SEMAPHORE_FEATURES,
        .timelineSemaphore = en->timeline_semaphore,
    };
    VkPhysicalDeviceBufferDeviceAddressFeatures bda = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_BUFFER_DEVICE_ADDRESS_FEATURES,
        .bufferDeviceAddress = en->buffer_device_address,
    };
    VkPhysicalDeviceScalarBlockLayoutFeatures sbl = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SCALAR_BLOCK_LAYOUT_FEATURES,
        .scalarBlockLayout = en->scalar_block_layout,
    };
    VkPhysicalDeviceVulkanMemoryModelFeatures vmm = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_MEMORY_MODEL_FEATURES,
        .vulkanMemoryModel = en->vulkan_memory_model,
        /* Without it, the memory model forbids Device scope, which GLSL's memoryBarrier*()
         * emit. */
        .vulkanMemoryModelDeviceScope = en->vulkan_memory_model_device_scope,
    };
    VkPhysicalDeviceSubgroupSizeControlFeatures ssc = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES,
        .subgroupSizeControl = en->subgroup_size_control,
        .computeFullSubgroups = en->compute_full_subgroups,
    };
    VkPhysicalDeviceShaderIntegerDotProductFeatures idp = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES,
        .shaderIntegerDotProduct = en->integer_dot_product,
    };
    VkPhysicalDeviceMaintenance4Features m4 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_4_FEATURES,
        .maintenance4 = en->maintenance4,
    };

    /* Core 1.1/1.2 structs always (all-false is fine); 1.3 ones only when enabled, so a 1.2
     * device never sees a struct of an extension we did not enable. */
    void **next = &f2.pNext;
    XT_VK_CHAIN(next, s16);
    XT_VK_CHAIN(next, s8);
    XT_VK_CHAIN(next, f16);
    XT_VK_CHAIN(next, ts);
    XT_VK_CHAIN(next, bda);
    XT_VK_CHAIN(next, sbl);
    XT_VK_CHAIN(next, vmm);
    if (en->subgroup_size_control || en->compute_full_subgroups) {
        XT_VK_CHAIN(next, ssc);
        if (!is13) exts[n_exts++] = VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME;
    }
    if (en->integer_dot_product) {
        XT_VK_CHAIN(next, idp);
        if (!is13) exts[n_exts++] = VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME;
    }
    if (en->maintenance4) {
        XT_VK_CHAIN(next, m4);
        if (!is13) exts[n_exts++] = VK_KHR_MAINTENANCE_4_EXTENSION_NAME;
    }

    float priority = 1.0f;
    VkDeviceQueueCreateInfo qi = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
        .queueFamilyIndex = ctx->info.queue_family,
        .queueCount = 1,
        .pQueuePriorities = &priority,
    };
    VkDeviceCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
        .pNext = &f2,
        .queueCreateInfoCount = 1,
        .pQueueCreateInfos = &qi,
        .enabledExtensionCount = n_exts,
        .ppEnabledExtensionNames = n_exts ? exts : NULL,
    };
    VkResult r = vkCreateDevice(phys->handle, &ci, NULL, &ctx->device);
    if (r != VK_SUCCESS) {
        ctx->device = VK_NULL_HANDLE;
        xt_status s = xt_vk_fail(r, err, "vkCreateDevice");
        xt_error_prefix(err, "device %u (%s)", ctx->info.index, ctx->info.name);
        return s;
    }
    vkGetDeviceQueue(ctx->device, ctx->info.queue_family, 0, &ctx->queue);
    return XT_OK;
}

xt_status xt_vk_context_create(const xt_vk_desc *desc, xt_vk_context **out, xt_error *err)
{
    static const xt_vk_desc defaults = {0};
    if (!desc) desc = &defaults;
    *out = NULL;
    xt_vk_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return xt_error_set(err, XT_ERR_NO_MEMORY, "vulkan context");
    ctx->timeout_ns = desc->timeout_ns ? desc->timeout_ns : DEFAULT_TIMEOUT_NS;
    ctx->fma_fused = -1;
    ctx->staging_bytes = desc->staging_bytes ? desc->staging_bytes : DEFAULT_STAGING_BYTES;

    xt_status s = xt_vk_instance_create(desc, &ctx->inst, err);
    if (s) goto fail;
    uint32_t index = 0;
    if ((s = xt_vk_instance_select(ctx->inst, desc, &index, err))) goto fail;
    ctx->phys = &ctx->inst->devices[index];
    ctx->info = ctx->phys->info;
    if ((s = create_device(ctx, err))) goto fail;

    VkResult r = vkCreateCommandPool(ctx->device,
                                     &(VkCommandPoolCreateInfo){
                                         .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                         .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
                                         .queueFamilyIndex = ctx->info.queue_family,
                                     },
                                     NULL, &ctx->pool);
    if (r != VK_SUCCESS) {
        s = xt_vk_fail(r, err, "vkCreateCommandPool");
        goto fail;
    }
    if (ctx->info.enabled.timeline_semaphore) {
        VkSemaphoreTypeCreateInfo ti = {
            .sType = VK_STRUCTURE_TYPE_SEMAPHORE_TYPE_CREATE_INFO,
            .semaphoreType = VK_SEMAPHORE_TYPE_TIMELINE,
            .initialValue = 0,
        };
        r = vkCreateSemaphore(ctx->device,
                              &(VkSemaphoreCreateInfo){
                                  .sType = VK_STRUCTURE_TYPE_SEMAPHORE_CREATE_INFO,
                                  .pNext = &ti,
                              },
                              NULL, &ctx->timeline);
        if (r != VK_SUCCESS) {
            s = xt_vk_fail(r, err, "vkCreateSemaphore (timeline)");
            goto fail;
        }
    }
    *out = ctx;
    return XT_OK;

fail:
    xt_vk_context_destroy(ctx);
    return s;
}

void xt_vk_context_destroy(xt_vk_context *ctx)
{
    if (!ctx) return;
    if (ctx->device) {
        vkDeviceWaitIdle(ctx->device); /* best effort: a lost device still gets torn down */
        xt_cmd_destroy(ctx->transfer);
        xt_buffer_destroy(ctx, &ctx->staging);
        if (ctx->timeline) vkDestroySemaphore(ctx->device, ctx->timeline, NULL);
        if (ctx->pool) vkDestroyCommandPool(ctx->device, ctx->pool, NULL);
        vkDestroyDevice(ctx->device, NULL);
    }
    xt_vk_instance_destroy(ctx->inst);
    free(ctx);
}

const xt_vk_device_info *xt_vk_context_info(const xt_vk_context *ctx)
{
    return &ctx->info;
}

const xt_vk_instance *xt_vk_context_instance(const xt_vk_context *ctx)
{
    return ctx->inst;
}

VkDevice xt_vk_context_device(const xt_vk_context *ctx)
{
    return ctx->device;
}

bool xt_vk_context_validation_active(const xt_vk_context *ctx)
{
    return ctx->inst->validation_active;
}

uint32_t xt_vk_context_validation_messages(const xt_vk_context *ctx)
{
    return ctx->inst->messages;
}

/* Any call that reports a lost device marks the context, so later calls fail fast and clearly. */
static xt_status check(xt_vk_context *ctx, VkResult r, xt_error *err, const char *what)
{
    if (r == VK_SUCCESS) return XT_OK;
    if (r == VK_ERROR_DEVICE_LOST) ctx->lost = true;
    return xt_vk_fail(r, err, what);
}

/* ---- command buffers ------------------------------------------------------------------------ */

xt_status xt_cmd_create(xt_vk_context *ctx, xt_cmd **out, xt_error *err)
{
    *out = NULL;
    xt_cmd *cmd = calloc(1, sizeof *cmd);
    if (!cmd) return xt_error_set(err, XT_ERR_NO_MEMORY, "command buffer");
    cmd->ctx = ctx;
    xt_status s;
    VkResult r =
        vkAllocateCommandBuffers(ctx->device,
                                 &(VkCommandBufferAllocateInfo){
                                     .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                     .commandPool = ctx->pool,
                                     .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                     .commandBufferCount = 1,
                                 },
                                 &cmd->cb);
    if ((s = check(ctx, r, err, "vkAllocateCommandBuffers"))) goto fail;
    if (!ctx->timeline) {
        r = vkCreateFence(ctx->device,
                          &(VkFenceCreateInfo){.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO}, NULL,
                          &cmd->fence);
        if ((s = check(ctx, r, err, "vkCreateFence"))) goto fail;
    }
    *out = cmd;
    return XT_OK;

fail:
    xt_cmd_destroy(cmd);
    return s;
}

void xt_cmd_destroy(xt_cmd *cmd)
{
    if (!cmd) return;
    xt_vk_context *ctx = cmd->ctx;
    if (cmd->state == XT_CMD_PENDING && xt_cmd_wait(cmd, NULL) != XT_OK)
        vkDeviceWaitIdle(ctx->device); /* timed out or lost: nothing may still use it */
    for (uint32_t i = 0; i < cmd->pool_count; i++)
        vkDestroyDescriptorPool(ctx->device, cmd->pools[i], NULL);
    free(cmd->pools);
    if (cmd->fence) vkDestroyFence(ctx->device, cmd->fence, NULL);
    if (cmd->cb) vkFreeCommandBuffers(ctx->device, ctx->pool, 1, &cmd->cb);
    free(cmd);
}

VkCommandBuffer xt_cmd_handle(const xt_cmd *cmd)
{
    return cmd->cb;
}

xt_status xt_cmd_alloc_set(xt_cmd *cmd, VkDescriptorSetLayout layout, VkDescriptorSet *out,
                           xt_error *err)
{
    xt_vk_context *ctx = cmd->ctx;
    for (;;) {
        if (cmd->pool_current < cmd->pool_count) {
            VkResult r = vkAllocateDescriptorSets(
                ctx->device,
                &(VkDescriptorSetAllocateInfo){
                    .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
                    .descriptorPool = cmd->pools[cmd->pool_current],
                    .descriptorSetCount = 1,
                    .pSetLayouts = &layout,
                },
                out);
            if (r == VK_SUCCESS) return XT_OK;
            if (r != VK_ERROR_OUT_OF_POOL_MEMORY && r != VK_ERROR_FRAGMENTED_POOL)
                return check(ctx, r, err, "vkAllocateDescriptorSets");
            cmd->pool_current++; /* this pool is full: the next one, or a new one */
            continue;
        }
        if (cmd->pool_count == cmd->pool_cap) {
            uint32_t cap = cmd->pool_cap ? cmd->pool_cap * 2 : 4;
            VkDescriptorPool *p = realloc(cmd->pools, cap * sizeof *p);
            if (!p) return xt_error_set(err, XT_ERR_NO_MEMORY, "descriptor pool list");
            cmd->pools = p;
            cmd->pool_cap = cap;
        }
        VkDescriptorPoolSize size = {
            .type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
            .descriptorCount = SETS_PER_POOL * XT_MAX_BINDINGS,
        };
        VkResult r =
            vkCreateDescriptorPool(ctx->device,
                                   &(VkDescriptorPoolCreateInfo){
                                       .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
                                       .maxSets = SETS_PER_POOL,
                                       .poolSizeCount = 1,
                                       .pPoolSizes = &size,
                                   },
                                   NULL, &cmd->pools[cmd->pool_count]);
        xt_status s = check(ctx, r, err, "vkCreateDescriptorPool");
        if (s) return s;
        cmd->pool_count++;
    }
}

xt_status xt_cmd_begin(xt_cmd *cmd, xt_error *err)
{
    xt_vk_context *ctx = cmd->ctx;
    if (ctx->lost) return xt_error_set(err, XT_ERR_DEVICE_LOST, "the Vulkan device was lost");
    if (cmd->state == XT_CMD_PENDING)
        return xt_error_set(err, XT_ERR_USAGE,
                            "xt_cmd_begin: the command buffer is still in flight (xt_cmd_wait)");
    xt_status s;
    VkResult r = vkResetCommandBuffer(cmd->cb, 0);
    if ((s = check(ctx, r, err, "vkResetCommandBuffer"))) return s;
    for (uint32_t i = 0; i < cmd->pool_count; i++) {
        r = vkResetDescriptorPool(ctx->device, cmd->pools[i], 0);
        if ((s = check(ctx, r, err, "vkResetDescriptorPool"))) return s;
    }
    cmd->pool_current = 0;
    r = vkBeginCommandBuffer(cmd->cb, &(VkCommandBufferBeginInfo){
                                          .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                          .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
                                      });
    if ((s = check(ctx, r, err, "vkBeginCommandBuffer"))) return s;
    cmd->state = XT_CMD_RECORDING;
    return XT_OK;
}

xt_status xt_cmd_submit(xt_cmd *cmd, xt_error *err)
{
    xt_vk_context *ctx = cmd->ctx;
    if (cmd->state != XT_CMD_RECORDING)
        return xt_error_set(err, XT_ERR_USAGE, "xt_cmd_submit: not recording (xt_cmd_begin)");
    /* Every write of this submission becomes visible to the host (mapped reads after the wait)
     * and to whatever a later submission does — the one barrier callers never have to think
     * about. */
    VkMemoryBarrier mb = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_MEMORY_WRITE_BIT,
        .dstAccessMask = VK_ACCESS_MEMORY_READ_BIT | VK_ACCESS_MEMORY_WRITE_BIT |
                         VK_ACCESS_HOST_READ_BIT | VK_ACCESS_HOST_WRITE_BIT,
    };
    vkCmdPipelineBarrier(cmd->cb, VK_PIPELINE_STAGE_ALL_COMMANDS_BIT,
                         VK_PIPELINE_STAGE_ALL_COMMANDS_BIT | VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb,
                         0, NULL, 0, NULL);
    cmd->state = XT_CMD_IDLE;
    xt_status s;
    VkResult r = vkEndCommandBuffer(cmd->cb);
    if ((s = check(ctx, r, err, "vkEndCommandBuffer"))) return s;

    VkSubmitInfo si = {
        .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
        .commandBufferCount = 1,
        .pCommandBuffers = &cmd->cb,
    };
    uint64_t value = ctx->timeline_value + 1;
    VkTimelineSemaphoreSubmitInfo tsi = {
        .sType = VK_STRUCTURE_TYPE_TIMELINE_SEMAPHORE_SUBMIT_INFO,
        .signalSemaphoreValueCount = 1,
        .pSignalSemaphoreValues = &value,
    };
    VkFence fence = VK_NULL_HANDLE;
    if (ctx->timeline) {
        si.pNext = &tsi;
        si.signalSemaphoreCount = 1;
        si.pSignalSemaphores = &ctx->timeline;
    } else {
        r = vkResetFences(ctx->device, 1, &cmd->fence);
        if ((s = check(ctx, r, err, "vkResetFences"))) return s;
        fence = cmd->fence;
    }
    r = vkQueueSubmit(ctx->queue, 1, &si, fence);
    if ((s = check(ctx, r, err, "vkQueueSubmit"))) return s;
    if (ctx->timeline) {
        ctx->timeline_value = value;
        cmd->signal_value = value;
    }
    cmd->state = XT_CMD_PENDING;
    return XT_OK;
}

xt_status xt_cmd_wait(xt_cmd *cmd, xt_error *err)
{
    xt_vk_context *ctx = cmd->ctx;
    if (cmd->state != XT_CMD_PENDING) return XT_OK;
    VkResult r;
    if (ctx->timeline) {
        r = vkWaitSemaphores(ctx->device,
                             &(VkSemaphoreWaitInfo){
                                 .sType = VK_STRUCTURE_TYPE_SEMAPHORE_WAIT_INFO,
                                 .semaphoreCount = 1,
                                 .pSemaphores = &ctx->timeline,
                                 .pValues = &cmd->signal_value,
                             },
                             ctx->timeout_ns);
    } else {
        r = vkWaitForFences(ctx->device, 1, &cmd->fence, VK_TRUE, ctx->timeout_ns);
    }
    if (r == VK_TIMEOUT)
        return xt_error_set(err, XT_ERR_DEVICE,
                            "timed out after %.1f s waiting for the GPU (%s); the work is still "
                            "in flight",
                            (double)ctx->timeout_ns * 1e-9, ctx->timeline ? "timeline" : "fence");
    xt_status s = check(ctx, r, err, ctx->timeline ? "vkWaitSemaphores" : "vkWaitForFences");
    if (s) {
        if (s == XT_ERR_DEVICE_LOST) cmd->state = XT_CMD_IDLE;
        return s;
    }
    cmd->state = XT_CMD_IDLE;
    return XT_OK;
}

xt_status xt_cmd_submit_wait(xt_cmd *cmd, xt_error *err)
{
    xt_status s = xt_cmd_submit(cmd, err);
    return s ? s : xt_cmd_wait(cmd, err);
}

/* ---- barriers and transfers ----------------------------------------------------------------- */

void xt_cmd_barrier(xt_cmd *cmd, xt_barrier kind)
{
    VkPipelineStageFlags src = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT;
    VkPipelineStageFlags dst = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT;
    VkMemoryBarrier mb = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT,
        .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT,
    };
    switch (kind) {
    case XT_BARRIER_COMPUTE_TO_COMPUTE:
        break;
    case XT_BARRIER_TRANSFER_TO_COMPUTE:
        src = VK_PIPELINE_STAGE_TRANSFER_BIT;
        mb.srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT;
        break;
    case XT_BARRIER_COMPUTE_TO_TRANSFER:
        dst = VK_PIPELINE_STAGE_TRANSFER_BIT;
        mb.dstAccessMask = VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
        break;
    case XT_BARRIER_COMPUTE_TO_INDIRECT:
        /* the written arguments are read by vkCmdDispatchIndirect, the buffers by the shader */
        dst = VK_PIPELINE_STAGE_DRAW_INDIRECT_BIT | VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT;
        mb.dstAccessMask = VK_ACCESS_INDIRECT_COMMAND_READ_BIT | VK_ACCESS_SHADER_READ_BIT |
                           VK_ACCESS_SHADER_WRITE_BIT;
        break;
    }
    /* A write-after-read needs only the execution dependency, which the stage masks give. */
    vkCmdPipelineBarrier(cmd->cb, src, dst, 0, 1, &mb, 0, NULL, 0, NULL);
}

void xt_cmd_copy(xt_cmd *cmd, const xt_buffer *src, VkDeviceSize src_offset, const xt_buffer *dst,
                 VkDeviceSize dst_offset, VkDeviceSize size_bytes)
{
    VkBufferCopy region = {.srcOffset = src_offset, .dstOffset = dst_offset, .size = size_bytes};
    vkCmdCopyBuffer(cmd->cb, src->buffer, dst->buffer, 1, &region);
}

void xt_cmd_fill(xt_cmd *cmd, const xt_buffer *dst, VkDeviceSize dst_offset,
                 VkDeviceSize size_bytes, uint32_t value)
{
    vkCmdFillBuffer(cmd->cb, dst->buffer, dst_offset, size_bytes, value);
}

void xt_groups_1d(const xt_vk_context *ctx, uint64_t n, uint32_t local_size, uint32_t groups[3])
{
    uint64_t total = local_size ? (n + local_size - 1) / local_size : 0;
    uint64_t max_x = ctx->info.limits.max_compute_work_group_count[0];
    groups[2] = 1;
    if (total <= max_x) {
        groups[0] = (uint32_t)total;
        groups[1] = 1;
    } else {
        uint64_t y = (total + max_x - 1) / max_x;
        groups[0] = (uint32_t)max_x;
        groups[1] = y > UINT32_MAX ? UINT32_MAX : (uint32_t)y; /* xt_dispatch reports it */
    }
}

/* ---- timestamps ----------------------------------------------------------------------------- */

struct xt_timer {
    xt_vk_context *ctx;
    VkQueryPool pool;
    uint32_t slots;
};

xt_status xt_timer_create(xt_vk_context *ctx, uint32_t slot_count, xt_timer **out, xt_error *err)
{
    *out = NULL;
    if (ctx->info.timestamps.valid_bits == 0)
        return xt_error_set(err, XT_ERR_UNSUPPORTED,
                            "device %u (%s) has no timestamps on its compute queue",
                            ctx->info.index, ctx->info.name);
    if (slot_count == 0) return xt_error_set(err, XT_ERR_RANGE, "xt_timer_create: 0 slots");
    xt_timer *t = calloc(1, sizeof *t);
    if (!t) return xt_error_set(err, XT_ERR_NO_MEMORY, "timer");
    t->ctx = ctx;
    t->slots = slot_count;
    VkResult r = vkCreateQueryPool(ctx->device,
                                   &(VkQueryPoolCreateInfo){
                                       .sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
                                       .queryType = VK_QUERY_TYPE_TIMESTAMP,
                                       .queryCount = slot_count,
                                   },
                                   NULL, &t->pool);
    if (r != VK_SUCCESS) {
        free(t);
        return check(ctx, r, err, "vkCreateQueryPool");
    }
    *out = t;
    return XT_OK;
}

void xt_timer_destroy(xt_timer *t)
{
    if (!t) return;
    vkDestroyQueryPool(t->ctx->device, t->pool, NULL);
    free(t);
}

void xt_timer_reset(xt_cmd *cmd, xt_timer *t)
{
    vkCmdResetQueryPool(cmd->cb, t->pool, 0, t->slots);
}

void xt_timer_mark(xt_cmd *cmd, xt_timer *t, uint32_t slot)
{
    vkCmdWriteTimestamp(cmd->cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, t->pool, slot);
}

xt_status xt_timer_elapsed_ns(xt_timer *t, uint32_t slot_begin, uint32_t slot_end,
                              double *elapsed_ns, xt_error *err)
{
    *elapsed_ns = 0;
    if (slot_begin >= t->slots || slot_end >= t->slots)
        return xt_error_set(err, XT_ERR_RANGE, "timer slot %u or %u out of range (%u slots)",
                            slot_begin, slot_end, t->slots);
    uint64_t ticks[2];
    uint32_t slot[2] = {slot_begin, slot_end};
    for (int i = 0; i < 2; i++) {
        uint64_t v[2]; /* value, availability */
        VkResult r =
            vkGetQueryPoolResults(t->ctx->device, t->pool, slot[i], 1, sizeof v, v, sizeof v,
                                  VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WITH_AVAILABILITY_BIT);
        if (r != VK_SUCCESS && r != VK_NOT_READY)
            return check(t->ctx, r, err, "vkGetQueryPoolResults");
        if (r == VK_NOT_READY || v[1] == 0)
            return xt_error_set(err, XT_ERR_USAGE,
                                "timestamp slot %u is not available (not marked, or the command "
                                "buffer has not completed)",
                                slot[i]);
        ticks[i] = v[0];
    }
    uint32_t bits = t->ctx->info.timestamps.valid_bits;
    uint64_t mask = bits >= 64 ? UINT64_MAX : ((uint64_t)1 << bits) - 1;
    uint64_t delta = (ticks[1] - ticks[0]) & mask;
    *elapsed_ns = (double)delta * (double)t->ctx->info.timestamps.period_ns;
    return XT_OK;
}
