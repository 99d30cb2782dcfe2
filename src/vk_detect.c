/* One function that detects every feature and limit of a physical device we use, into one
 * struct (xt_vk_device_info), and decides what this run enables.
 *
 * Only structs whose version or extension the device offers are chained into the queries, so the
 * validation layer has nothing to say. "Effective" API version = min(device, instance): a 1.3
 * device under a 1.2 instance is treated as 1.2 plus extensions.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vk_internal.h"

#define API_1_1 VK_MAKE_API_VERSION(0, 1, 1, 0)
#define API_1_2 VK_MAKE_API_VERSION(0, 1, 2, 0)
#define API_1_3 VK_MAKE_API_VERSION(0, 1, 3, 0)

static bool has_ext(const VkExtensionProperties *exts, uint32_t n, const char *name)
{
    for (uint32_t i = 0; i < n; i++)
        if (strcmp(exts[i].extensionName, name) == 0) return true;
    return false;
}

static void copy_str(char *dst, size_t dst_bytes, const char *src)
{
    size_t n = strnlen(src, dst_bytes - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Vendor conventions for driverVersion: NVIDIA packs 10.8.8.6 bits; others (Mesa, AMD, Intel on
 * Linux, MoltenVK) use the Vulkan version packing. */
static void driver_version_string(uint32_t vendor_id, uint32_t v, char *buf, size_t buf_bytes)
{
    if (vendor_id == 0x10DE) {
        snprintf(buf, buf_bytes, "%u.%u.%u.%u", v >> 22, (v >> 14) & 0xffu, (v >> 6) & 0xffu,
                 v & 0x3fu);
    } else {
        xt_vk_version_string(v, buf, buf_bytes);
    }
}

/* The compute queue family: a universal (graphics + compute) family first — the most exercised
 * path on every driver — else any compute family; families with timestamps preferred. */
static uint32_t pick_queue_family(VkPhysicalDevice pd, uint32_t *valid_bits)
{
    uint32_t n = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, NULL);
    VkQueueFamilyProperties q[64];
    if (n > 64) n = 64;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, q);
    uint32_t best = UINT32_MAX;
    int best_score = -1;
    for (uint32_t i = 0; i < n; i++) {
        if (!(q[i].queueFlags & VK_QUEUE_COMPUTE_BIT) || q[i].queueCount == 0) continue;
        int score = 1;
        if (q[i].queueFlags & VK_QUEUE_GRAPHICS_BIT) score += 2;
        if (q[i].timestampValidBits > 0) score += 4;
        if (score > best_score) {
            best_score = score;
            best = i;
            *valid_bits = q[i].timestampValidBits;
        }
    }
    return best;
}

static void detect_memory(VkPhysicalDevice pd, xt_vk_device_info *d)
{
    VkPhysicalDeviceMemoryProperties mp;
    vkGetPhysicalDeviceMemoryProperties(pd, &mp);
    d->heap_count = mp.memoryHeapCount;
    d->type_count = mp.memoryTypeCount;
    uint32_t big = UINT32_MAX;
    for (uint32_t h = 0; h < mp.memoryHeapCount; h++) {
        d->heaps[h].size_bytes = mp.memoryHeaps[h].size;
        d->heaps[h].flags = mp.memoryHeaps[h].flags;
        if ((mp.memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) &&
            (big == UINT32_MAX || mp.memoryHeaps[h].size > mp.memoryHeaps[big].size))
            big = h;
    }
    if (big != UINT32_MAX) d->device_local_bytes = mp.memoryHeaps[big].size;

    /* UMA: the CPU can map the big device-local heap and reading it back is not a crawl over
     * PCIe — an integrated/CPU device, or a host-cached device-local type (a discrete GPU's
     * resizable BAR is write-combined, so it does not count). */
    const VkMemoryPropertyFlags dl_hv =
        VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT | VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT;
    bool shared_type =
        d->type == VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU || d->type == VK_PHYSICAL_DEVICE_TYPE_CPU;
    for (uint32_t t = 0; t < mp.memoryTypeCount; t++) {
        d->types[t].flags = mp.memoryTypes[t].propertyFlags;
        d->types[t].heap = mp.memoryTypes[t].heapIndex;
        if ((mp.memoryTypes[t].propertyFlags & dl_hv) == dl_hv &&
            mp.memoryTypes[t].heapIndex == big &&
            (shared_type || (mp.memoryTypes[t].propertyFlags & VK_MEMORY_PROPERTY_HOST_CACHED_BIT)))
            d->supported.uma = true;
    }
}

xt_status xt_vk_detect(VkPhysicalDevice pd, uint32_t index, uint32_t instance_api,
                       xt_vk_feature_level level, xt_vk_physical *out, xt_error *err)
{
    memset(out, 0, sizeof *out);
    out->handle = pd;
    xt_vk_device_info *d = &out->info;
    d->index = index;
    d->queue_family = UINT32_MAX;

    VkPhysicalDeviceProperties props;
    vkGetPhysicalDeviceProperties(pd, &props);
    copy_str(d->name, sizeof d->name, props.deviceName);
    d->type = props.deviceType;
    d->api_version = props.apiVersion;
    uint32_t api = props.apiVersion < instance_api ? props.apiVersion : instance_api;
    d->effective_api_version = api;
    d->driver_version = props.driverVersion;
    driver_version_string(props.vendorID, props.driverVersion, d->driver_version_string,
                          sizeof d->driver_version_string);
    d->vendor_id = props.vendorID;
    d->device_id = props.deviceID;

    const VkPhysicalDeviceLimits *l = &props.limits;
    d->limits.max_storage_buffer_range = l->maxStorageBufferRange;
    for (int i = 0; i < 3; i++) {
        d->limits.max_compute_work_group_count[i] = l->maxComputeWorkGroupCount[i];
        d->limits.max_compute_work_group_size[i] = l->maxComputeWorkGroupSize[i];
    }
    d->limits.max_compute_work_group_invocations = l->maxComputeWorkGroupInvocations;
    d->limits.max_compute_shared_memory_size = l->maxComputeSharedMemorySize;
    d->limits.max_push_constants_size = l->maxPushConstantsSize;
    d->limits.max_per_stage_descriptor_storage_buffers = l->maxPerStageDescriptorStorageBuffers;
    d->limits.min_storage_buffer_offset_alignment = l->minStorageBufferOffsetAlignment;
    d->limits.non_coherent_atom_size = l->nonCoherentAtomSize;
    d->timestamps.compute_and_graphics = l->timestampComputeAndGraphics;
    d->timestamps.period_ns = l->timestampPeriod;

    d->queue_family = pick_queue_family(pd, &d->timestamps.valid_bits);
    detect_memory(pd, d);

    uint32_t n_ext = 0;
    VkResult r = vkEnumerateDeviceExtensionProperties(pd, NULL, &n_ext, NULL);
    if (r != VK_SUCCESS) return xt_vk_fail(r, err, "vkEnumerateDeviceExtensionProperties");
    VkExtensionProperties *exts = calloc(n_ext ? n_ext : 1, sizeof *exts);
    if (!exts) return xt_error_set(err, XT_ERR_NO_MEMORY, "device extension list");
    r = vkEnumerateDeviceExtensionProperties(pd, NULL, &n_ext, exts);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE) {
        free(exts);
        return xt_vk_fail(r, err, "vkEnumerateDeviceExtensionProperties");
    }
    d->portability_subset = has_ext(exts, n_ext, XT_VK_KHR_PORTABILITY_SUBSET_NAME);
    out->exts.portability_subset = d->portability_subset;
    d->cooperative_matrix_khr = has_ext(exts, n_ext, XT_VK_KHR_COOPERATIVE_MATRIX_NAME);
    d->cooperative_matrix_nv = has_ext(exts, n_ext, VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME);
    d->supported.cooperative_matrix = d->cooperative_matrix_khr || d->cooperative_matrix_nv;
    bool is13 = api >= API_1_3;
    out->exts.subgroup_size_control =
        !is13 && has_ext(exts, n_ext, VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME);
    out->exts.integer_dot_product =
        !is13 && has_ext(exts, n_ext, VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME);
    out->exts.maintenance4 = !is13 && has_ext(exts, n_ext, VK_KHR_MAINTENANCE_4_EXTENSION_NAME);
    bool driver_props =
        api >= API_1_2 || has_ext(exts, n_ext, VK_KHR_DRIVER_PROPERTIES_EXTENSION_NAME);
    free(exts);

    if (api < API_1_1) {
        /* Vulkan 1.0: only the core structs above; not usable anyway. */
        VkPhysicalDeviceFeatures f;
        vkGetPhysicalDeviceFeatures(pd, &f);
        d->supported.shader_int16 = f.shaderInt16;
        d->supported.shader_int64 = f.shaderInt64;
    } else {
        /* ---- features ---- */
        VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
        VkPhysicalDevice16BitStorageFeatures s16 = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES};
        VkPhysicalDevice8BitStorageFeatures s8 = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_8BIT_STORAGE_FEATURES};
        VkPhysicalDeviceShaderFloat16Int8Features f16 = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES};
        VkPhysicalDeviceTimelineSemaphoreFeatures ts = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_TIMELINE_SEMAPHORE_FEATURES};
        VkPhysicalDeviceBufferDeviceAddressFeatures bda = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_BUFFER_DEVICE_ADDRESS_FEATURES};
        VkPhysicalDeviceScalarBlockLayoutFeatures sbl = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SCALAR_BLOCK_LAYOUT_FEATURES};
        VkPhysicalDeviceVulkanMemoryModelFeatures vmm = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_MEMORY_MODEL_FEATURES};
        VkPhysicalDeviceSubgroupSizeControlFeatures ssc = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES};
        VkPhysicalDeviceShaderIntegerDotProductFeatures idp = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES};
        VkPhysicalDeviceMaintenance4Features m4 = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_4_FEATURES};

        void **next = &f2.pNext;
        XT_VK_CHAIN(next, s16);
        bool is12 = api >= API_1_2;
        if (is12) {
            XT_VK_CHAIN(next, s8);
            XT_VK_CHAIN(next, f16);
            XT_VK_CHAIN(next, ts);
            XT_VK_CHAIN(next, bda);
            XT_VK_CHAIN(next, sbl);
            XT_VK_CHAIN(next, vmm);
        }
        bool has_ssc = is13 || out->exts.subgroup_size_control;
        bool has_idp = is13 || out->exts.integer_dot_product;
        bool has_m4 = is13 || out->exts.maintenance4;
        if (has_ssc) XT_VK_CHAIN(next, ssc);
        if (has_idp) XT_VK_CHAIN(next, idp);
        if (has_m4) XT_VK_CHAIN(next, m4);
        vkGetPhysicalDeviceFeatures2(pd, &f2);

        xt_vk_features *s = &d->supported;
        s->shader_int16 = f2.features.shaderInt16;
        s->shader_int64 = f2.features.shaderInt64;
        s->storage_buffer_16bit = s16.storageBuffer16BitAccess;
        s->uniform_and_storage_buffer_16bit = s16.uniformAndStorageBuffer16BitAccess;
        s->storage_push_constant_16bit = s16.storagePushConstant16;
        s->storage_buffer_8bit = s8.storageBuffer8BitAccess;
        s->uniform_and_storage_buffer_8bit = s8.uniformAndStorageBuffer8BitAccess;
        s->storage_push_constant_8bit = s8.storagePushConstant8;
        s->shader_float16 = f16.shaderFloat16;
        s->shader_int8 = f16.shaderInt8;
        s->timeline_semaphore = ts.timelineSemaphore;
        s->buffer_device_address = bda.bufferDeviceAddress;
        s->scalar_block_layout = sbl.scalarBlockLayout;
        s->vulkan_memory_model = vmm.vulkanMemoryModel;
        s->vulkan_memory_model_device_scope = vmm.vulkanMemoryModelDeviceScope;
        s->subgroup_size_control = ssc.subgroupSizeControl;
        s->compute_full_subgroups = ssc.computeFullSubgroups;
        s->integer_dot_product = idp.shaderIntegerDotProduct;
        s->maintenance4 = m4.maintenance4;

        /* ---- properties ---- */
        VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
        VkPhysicalDeviceSubgroupProperties sg = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
        VkPhysicalDeviceMaintenance3Properties m3p = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES};
        VkPhysicalDeviceDriverProperties drv = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
        VkPhysicalDeviceSubgroupSizeControlProperties sscp = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES};
        VkPhysicalDeviceShaderIntegerDotProductProperties idpp = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_PROPERTIES};
        VkPhysicalDeviceMaintenance4Properties m4p = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_4_PROPERTIES};
        next = &p2.pNext;
        XT_VK_CHAIN(next, sg);
        XT_VK_CHAIN(next, m3p);
        if (driver_props) XT_VK_CHAIN(next, drv);
        if (has_ssc) XT_VK_CHAIN(next, sscp);
        if (has_idp) XT_VK_CHAIN(next, idpp);
        if (has_m4) XT_VK_CHAIN(next, m4p);
        vkGetPhysicalDeviceProperties2(pd, &p2);

        d->subgroup.size = sg.subgroupSize;
        d->subgroup.supported_stages = sg.supportedStages;
        d->subgroup.supported_operations = sg.supportedOperations;
        s->subgroup_arithmetic = (sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                                 (sg.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT);
        s->subgroup_ballot = (sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                             (sg.supportedOperations & VK_SUBGROUP_FEATURE_BALLOT_BIT);
        d->limits.max_memory_allocation_size = m3p.maxMemoryAllocationSize;
        if (driver_props) {
            d->driver_id = drv.driverID;
            copy_str(d->driver_name, sizeof d->driver_name, drv.driverName);
            copy_str(d->driver_info, sizeof d->driver_info, drv.driverInfo);
        }
        if (has_ssc) {
            d->subgroup.min_size = sscp.minSubgroupSize;
            d->subgroup.max_size = sscp.maxSubgroupSize;
            d->subgroup.required_size_stages = sscp.requiredSubgroupSizeStages;
            d->subgroup.max_compute_workgroup_subgroups = sscp.maxComputeWorkgroupSubgroups;
        }
        if (has_idp) {
            d->integer_dot.packed_4x8_signed_accelerated =
                idpp.integerDotProduct4x8BitPackedSignedAccelerated;
            d->integer_dot.packed_4x8_unsigned_accelerated =
                idpp.integerDotProduct4x8BitPackedUnsignedAccelerated;
            d->integer_dot.packed_4x8_mixed_accelerated =
                idpp.integerDotProduct4x8BitPackedMixedSignednessAccelerated;
            d->integer_dot.bit8_signed_accelerated = idpp.integerDotProduct8BitSignedAccelerated;
            d->integer_dot.bit8_unsigned_accelerated =
                idpp.integerDotProduct8BitUnsignedAccelerated;
            d->integer_dot.bit16_signed_accelerated = idpp.integerDotProduct16BitSignedAccelerated;
            d->integer_dot.accumulating_saturating_4x8_packed_signed_accelerated =
                idpp.integerDotProductAccumulatingSaturating4x8BitPackedSignedAccelerated;
        }
        if (has_m4) d->limits.max_buffer_size = m4p.maxBufferSize;
    }

    /* ---- usable? ---- */
    char v[16];
    if (api < API_1_2) {
        snprintf(d->unusable_reason, sizeof d->unusable_reason,
                 "Vulkan %s (with this loader); expertrace needs 1.2",
                 xt_vk_version_string(api, v, sizeof v));
    } else if (d->queue_family == UINT32_MAX) {
        snprintf(d->unusable_reason, sizeof d->unusable_reason, "no compute queue");
    } else {
        d->usable = true;
    }

    /* ---- what this run enables ---- */
    if (d->usable && level != XT_VK_FEATURES_MIN) {
        d->enabled = d->supported;
        d->enabled.cooperative_matrix = false; /* detected only; no shader uses it yet */
        /* The memory model without device scope would forbid the Device-scope barriers that
         * GLSL's memoryBarrier*() emit: enable both or neither. */
        if (!d->supported.vulkan_memory_model_device_scope) {
            d->enabled.vulkan_memory_model = false;
            d->enabled.vulkan_memory_model_device_scope = false;
        }
    }
    return XT_OK;
}
