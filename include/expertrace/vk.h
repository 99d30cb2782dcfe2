/* The Vulkan layer: instance and device selection, one struct of detected features and limits,
 * buffers, compute pipelines from embedded shaders, dispatch, submission and GPU timestamps.
 *
 *     xt_vk_context *vk;
 *     if (xt_vk_context_create(&(xt_vk_desc){0}, &vk, &err)) return xt_cli_fail(&err);
 *     xt_buffer x;
 *     xt_buffer_create(vk, &(xt_buffer_desc){ .size_bytes = n * 4, .label = "x" }, &x, &err);
 *     xt_buffer_upload(vk, &x, 0, host_x, n * 4, &err);
 *     ...xt_pipeline_create, xt_cmd_begin, xt_dispatch, xt_cmd_submit_wait...
 *
 * Descriptor structs: zero means "default" for every field. Defaults come from the environment
 * where a variable exists: EXPERTRACE_DEVICE=N (device index), EXPERTRACE_VALIDATION=1 (Khronos
 * validation layer plus a message counter), EXPERTRACE_FEATURES=min (the feature floor: every
 * optional feature off so that fallback paths run). An explicit descriptor field wins over the
 * environment.
 *
 * Objects are not thread-safe: one thread drives one context. Device-level functions go through
 * the loader's trampolines (volkLoadInstance), so several contexts may coexist.
 */
#ifndef EXPERTRACE_VK_H
#define EXPERTRACE_VK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <volk.h>

#include "expertrace/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- configuration ------------------------------------------------------------------------- */

typedef enum xt_vk_validation {
    XT_VK_VALIDATION_DEFAULT = 0, /* EXPERTRACE_VALIDATION=1 turns it on; off otherwise */
    XT_VK_VALIDATION_ON,          /* on when VK_LAYER_KHRONOS_validation is installed */
    XT_VK_VALIDATION_OFF,
} xt_vk_validation;

typedef enum xt_vk_feature_level {
    XT_VK_FEATURES_DEFAULT = 0, /* EXPERTRACE_FEATURES=min|all; all when unset */
    XT_VK_FEATURES_ALL,         /* enable every optional feature the device supports */
    XT_VK_FEATURES_MIN,         /* the floor: no optional feature, fences, staging copies */
} xt_vk_feature_level;

typedef struct xt_vk_desc {
    bool device_index_set; /* false: EXPERTRACE_DEVICE, else the best usable device */
    uint32_t device_index; /* index into the instance's device list when device_index_set */
    xt_vk_validation validation;
    xt_vk_feature_level features;
    uint64_t timeout_ns;    /* how long a wait for the GPU may take; 0: 60 s */
    uint64_t staging_bytes; /* size of the staging buffer for uploads/downloads; 0: 64 MiB */
} xt_vk_desc;

/* ---- what a device offers ------------------------------------------------------------------ */

/* Optional features, each either "supported by the device" or "enabled for this run". The
 * feature floor (XT_VK_FEATURES_MIN) leaves every field of `enabled` false. */
typedef struct xt_vk_features {
    bool shader_float16;
    bool shader_int8;
    bool shader_int16;
    bool shader_int64;
    bool storage_buffer_8bit;             /* storageBuffer8BitAccess */
    bool uniform_and_storage_buffer_8bit; /* uniformAndStorageBuffer8BitAccess */
    bool storage_push_constant_8bit;
    bool storage_buffer_16bit; /* storageBuffer16BitAccess */
    bool uniform_and_storage_buffer_16bit;
    bool storage_push_constant_16bit;
    bool timeline_semaphore; /* else: one fence per command buffer */
    bool buffer_device_address;
    bool scalar_block_layout;
    bool vulkan_memory_model;
    bool vulkan_memory_model_device_scope;
    bool subgroup_size_control;
    bool compute_full_subgroups;
    bool maintenance4;
    bool integer_dot_product; /* VK_KHR_shader_integer_dot_product or 1.3 */
    bool subgroup_arithmetic; /* subgroupAdd & co. in compute shaders */
    bool subgroup_ballot;     /* subgroupBroadcast & co. in compute shaders */
    bool cooperative_matrix;  /* extension present (KHR or NV); never enabled yet */
    bool uma;                 /* device-local memory mapped directly, no staging */
} xt_vk_features;

typedef struct xt_vk_memory_heap {
    VkDeviceSize size_bytes;
    VkMemoryHeapFlags flags;
} xt_vk_memory_heap;

typedef struct xt_vk_memory_type {
    VkMemoryPropertyFlags flags;
    uint32_t heap;
} xt_vk_memory_type;

/* Everything we detect about one physical device, filled by one function. */
typedef struct xt_vk_device_info {
    uint32_t index;            /* position in the instance's device list */
    bool usable;               /* Vulkan 1.2+ and a compute queue */
    char unusable_reason[128]; /* why not, when !usable */
    char name[VK_MAX_PHYSICAL_DEVICE_NAME_SIZE];
    VkPhysicalDeviceType type;
    uint32_t api_version;           /* what the device reports (VK_MAKE_API_VERSION packing) */
    uint32_t effective_api_version; /* min(device, instance): what we may use */
    uint32_t driver_version;        /* raw, vendor-specific packing; see driver_version_string */
    char driver_version_string[32];
    uint32_t vendor_id;
    uint32_t device_id;
    VkDriverId driver_id; /* 0 when the driver does not report it */
    char driver_name[VK_MAX_DRIVER_NAME_SIZE];
    char driver_info[VK_MAX_DRIVER_INFO_SIZE];
    uint32_t queue_family;       /* the compute queue family we use; UINT32_MAX when none */
    bool portability_subset;     /* VK_KHR_portability_subset offered (MoltenVK) */
    bool cooperative_matrix_khr; /* VK_KHR_cooperative_matrix offered */
    bool cooperative_matrix_nv;  /* VK_NV_cooperative_matrix offered */

    xt_vk_features supported; /* what the device offers */
    xt_vk_features enabled;   /* what this run uses (policy applied) */

    struct {
        uint32_t size; /* default subgroup size */
        VkShaderStageFlags supported_stages;
        VkSubgroupFeatureFlags supported_operations;
        uint32_t min_size, max_size; /* subgroup size control; 0 when unavailable */
        VkShaderStageFlags required_size_stages;
        uint32_t max_compute_workgroup_subgroups;
    } subgroup;

    struct {
        bool packed_4x8_signed_accelerated;   /* dot4I8Packed */
        bool packed_4x8_unsigned_accelerated; /* dot4U8Packed */
        bool packed_4x8_mixed_accelerated;
        bool bit8_signed_accelerated; /* i8vec4 dot */
        bool bit8_unsigned_accelerated;
        bool bit16_signed_accelerated;
        bool accumulating_saturating_4x8_packed_signed_accelerated;
    } integer_dot;

    struct {
        bool compute_and_graphics; /* timestampComputeAndGraphics */
        float period_ns;           /* nanoseconds per tick */
        uint32_t valid_bits;       /* of our queue family; 0: no timestamps there */
    } timestamps;

    struct {
        uint64_t max_storage_buffer_range; /* bytes one storage binding may cover */
        uint64_t max_memory_allocation_size;
        uint64_t max_buffer_size; /* maintenance4; 0 when not reported */
        uint32_t max_compute_work_group_count[3];
        uint32_t max_compute_work_group_size[3];
        uint32_t max_compute_work_group_invocations;
        uint32_t max_compute_shared_memory_size;
        uint32_t max_push_constants_size;
        uint32_t max_per_stage_descriptor_storage_buffers;
        uint64_t min_storage_buffer_offset_alignment;
        uint64_t non_coherent_atom_size;
    } limits;

    uint32_t heap_count;
    xt_vk_memory_heap heaps[VK_MAX_MEMORY_HEAPS];
    uint32_t type_count;
    xt_vk_memory_type types[VK_MAX_MEMORY_TYPES];
    VkDeviceSize device_local_bytes; /* the largest device-local heap */
} xt_vk_device_info;

/* Short names for reports: "discrete", "integrated", "virtual", "cpu", "other". */
const char *xt_vk_device_type_name(VkPhysicalDeviceType type);
/* "1.3.230" into buf (at least 16 bytes); returns buf. */
char *xt_vk_version_string(uint32_t version, char *buf, size_t buf_bytes);

/* ---- instance: the device list without creating a device ----------------------------------- */

typedef struct xt_vk_instance xt_vk_instance;

/* Opens the Vulkan loader, creates an instance (with validation per desc) and detects every
 * physical device. A missing loader or no device at all is XT_ERR_DEVICE. The caller destroys
 * the result with xt_vk_instance_destroy. */
xt_status xt_vk_instance_create(const xt_vk_desc *desc, xt_vk_instance **out, xt_error *err);
void xt_vk_instance_destroy(xt_vk_instance *inst);

uint32_t xt_vk_instance_device_count(const xt_vk_instance *inst);
/* NULL when index is out of range. Valid until the instance is destroyed. */
const xt_vk_device_info *xt_vk_instance_device(const xt_vk_instance *inst, uint32_t index);
/* The instance's Vulkan version (what we requested from the loader). */
uint32_t xt_vk_instance_api_version(const xt_vk_instance *inst);
bool xt_vk_instance_validation_active(const xt_vk_instance *inst);
/* The policy in force: XT_VK_FEATURES_ALL or XT_VK_FEATURES_MIN (never DEFAULT). */
xt_vk_feature_level xt_vk_instance_feature_level(const xt_vk_instance *inst);
/* Errors and validation warnings the debug messenger has seen so far (see vk_instance.c for
 * what is counted). */
uint32_t xt_vk_instance_validation_messages(const xt_vk_instance *inst);
/* The same count over every instance this process created, including messages emitted while
 * destroying (leaked objects are reported by vkDestroyDevice): tests check it after cleanup. */
uint32_t xt_vk_validation_messages_total(void);

/* The device desc selects: desc->device_index, else EXPERTRACE_DEVICE, else the best usable
 * device (discrete > integrated > virtual > cpu; ties: more device-local memory). An index out
 * of range is XT_ERR_USAGE naming the device count; an unusable device is XT_ERR_UNSUPPORTED
 * saying why. */
xt_status xt_vk_instance_select(const xt_vk_instance *inst, const xt_vk_desc *desc, uint32_t *index,
                                xt_error *err);

/* ---- context: instance + logical device + compute queue ------------------------------------ */

typedef struct xt_vk_context xt_vk_context;

/* Creates an instance, selects a device (xt_vk_instance_select) and creates it with the
 * features the policy enables. The caller destroys the result with xt_vk_context_destroy. */
xt_status xt_vk_context_create(const xt_vk_desc *desc, xt_vk_context **out, xt_error *err);
/* Waits for the device to go idle, then destroys everything the context owns. NULL is a no-op. */
void xt_vk_context_destroy(xt_vk_context *ctx);

const xt_vk_device_info *xt_vk_context_info(const xt_vk_context *ctx);
const xt_vk_instance *xt_vk_context_instance(const xt_vk_context *ctx);
VkDevice xt_vk_context_device(const xt_vk_context *ctx);
/* Shorthands for the instance's validation state. */
bool xt_vk_context_validation_active(const xt_vk_context *ctx);
uint32_t xt_vk_context_validation_messages(const xt_vk_context *ctx);

/* ---- buffers ------------------------------------------------------------------------------- */

typedef enum xt_buffer_kind {
    XT_BUFFER_DEVICE = 0, /* device-local storage buffer (+ transfer src/dst); on UMA devices with
                             features.uma enabled it is also host-visible and mapped */
    XT_BUFFER_UPLOAD,     /* host-visible, mapped: the CPU writes, the GPU reads (staging) */
    XT_BUFFER_READBACK,   /* host-visible, mapped, cached where possible: the GPU writes, the CPU
                             reads */
} xt_buffer_kind;

typedef struct xt_buffer_desc {
    VkDeviceSize size_bytes; /* > 0 */
    xt_buffer_kind kind;
    const char *label; /* for error messages; NULL: "buffer" */
} xt_buffer_desc;

typedef struct xt_buffer {
    VkBuffer buffer;
    VkDeviceMemory memory;
    void *mapped;             /* host pointer to byte 0 when host-visible, else NULL */
    VkDeviceSize size_bytes;  /* as requested */
    VkDeviceSize alloc_bytes; /* the allocation (>= size_bytes) */
    xt_buffer_kind kind;
    uint32_t memory_type;
    bool coherent; /* HOST_COHERENT: no flush/invalidate needed */
} xt_buffer;

/* Sizes above maxBufferSize or maxMemoryAllocationSize are XT_ERR_RANGE naming the limit (large
 * tensors must be split into chunks); a failed allocation is XT_ERR_DEVICE_MEMORY naming the size
 * and heap. On failure *out is zeroed. */
xt_status xt_buffer_create(xt_vk_context *ctx, const xt_buffer_desc *desc, xt_buffer *out,
                           xt_error *err);
/* Frees buf and zeroes it. The GPU must be done with it. A zeroed buffer is a no-op. */
void xt_buffer_destroy(xt_vk_context *ctx, xt_buffer *buf);

/* Host -> buf[offset, offset + size_bytes): a memcpy when mapped (flushed when non-coherent),
 * otherwise through the context's staging buffer; returns after the copy completed. The GPU must
 * not be using that range (mapped buffers are written immediately). */
xt_status xt_buffer_upload(xt_vk_context *ctx, xt_buffer *dst, VkDeviceSize offset, const void *src,
                           size_t size_bytes, xt_error *err);
/* buf[offset, offset + size_bytes) -> host; the GPU work that wrote it must have completed
 * (xt_cmd_wait). */
xt_status xt_buffer_download(xt_vk_context *ctx, const xt_buffer *src, VkDeviceSize offset,
                             void *dst, size_t size_bytes, xt_error *err);

/* ---- compute pipelines --------------------------------------------------------------------- */

/* Storage buffers per pipeline: Vulkan guarantees 4, MoltenVK without argument buffers allows 31
 * bindings per stage in all; 8 keeps every pipeline portable. */
#define XT_MAX_BINDINGS 8
#define XT_MAX_SPEC_CONSTANTS 16

typedef struct xt_spec_constant {
    uint32_t id;    /* constant_id in the shader */
    uint32_t value; /* bit pattern: a float goes in through memcpy */
} xt_spec_constant;

typedef struct xt_pipeline_desc {
    const char *shader;           /* embedded module name: shaders/<name>.comp */
    const xt_spec_constant *spec; /* spec_count entries */
    uint32_t spec_count;
    uint32_t push_bytes;    /* push-constant block size; multiple of 4 */
    uint32_t binding_count; /* storage buffers at set 0, bindings 0..n-1; <= 8 */
    uint32_t subgroup_size; /* 0: the driver's; else requested where granted */
} xt_pipeline_desc;

typedef struct xt_pipeline {
    VkPipeline pipeline;
    VkPipelineLayout layout;
    VkDescriptorSetLayout set_layout;
    uint32_t push_bytes;
    uint32_t binding_count;
    uint32_t subgroup_size; /* the required size when granted, else 0 */
    char name[64];
} xt_pipeline;

/* An unknown shader is XT_ERR_NOT_FOUND; limits exceeded are XT_ERR_RANGE. On failure *out is
 * zeroed. */
xt_status xt_pipeline_create(xt_vk_context *ctx, const xt_pipeline_desc *desc, xt_pipeline *out,
                             xt_error *err);
void xt_pipeline_destroy(xt_vk_context *ctx, xt_pipeline *p);

/* ---- command buffers, dispatch, barriers, submission ---------------------------------------- */

/* A primary command buffer with its own descriptor pools and completion signal (a timeline
 * semaphore value when enabled, a fence otherwise). Life cycle: begin -> record -> submit ->
 * wait -> begin ... */
typedef struct xt_cmd xt_cmd;

xt_status xt_cmd_create(xt_vk_context *ctx, xt_cmd **out, xt_error *err);
/* Waits for pending work, then frees. NULL is a no-op. */
void xt_cmd_destroy(xt_cmd *cmd);
VkCommandBuffer xt_cmd_handle(const xt_cmd *cmd);

/* Starts recording; recycles the descriptor sets of the previous recording. A command buffer
 * still in flight is an error (wait first). */
xt_status xt_cmd_begin(xt_cmd *cmd, xt_error *err);
/* Ends recording (after a barrier that makes every write visible to the host and to later
 * submissions) and submits to the context's queue. */
xt_status xt_cmd_submit(xt_cmd *cmd, xt_error *err);
/* Waits up to the context's timeout. A timeout is XT_ERR_DEVICE, a lost device
 * XT_ERR_DEVICE_LOST. */
xt_status xt_cmd_wait(xt_cmd *cmd, xt_error *err);
xt_status xt_cmd_submit_wait(xt_cmd *cmd, xt_error *err);

typedef struct xt_binding {
    const xt_buffer *buffer;
    VkDeviceSize offset;      /* multiple of minStorageBufferOffsetAlignment */
    VkDeviceSize range_bytes; /* 0: to the end of the buffer; <= maxStorageBufferRange */
} xt_binding;

/* Records one dispatch: binds the pipeline, a descriptor set for bindings[0..binding_count) and
 * the push constants. push_bytes and binding_count must equal the pipeline's (XT_ERR_USAGE
 * otherwise); group counts are checked against maxComputeWorkGroupCount. */
xt_status xt_dispatch(xt_cmd *cmd, const xt_pipeline *p, uint32_t groups_x, uint32_t groups_y,
                      uint32_t groups_z, const void *push, uint32_t push_bytes,
                      const xt_binding *bindings, uint32_t binding_count, xt_error *err);

/* Like xt_dispatch, with the workgroup counts read by the GPU from a VkDispatchIndirectCommand
 * at args[args_offset] (written by an earlier dispatch: put XT_BARRIER_COMPUTE_TO_INDIRECT
 * between them). Counts above maxComputeWorkGroupCount are the writer's to prevent. */
xt_status xt_dispatch_indirect(xt_cmd *cmd, const xt_pipeline *p, const xt_buffer *args,
                               VkDeviceSize args_offset, const void *push, uint32_t push_bytes,
                               const xt_binding *bindings, uint32_t binding_count, xt_error *err);

/* Groups for n invocations of local_size each, spread over x and y when x alone would exceed
 * maxComputeWorkGroupCount[0] (shaders index with xt_global_index() from common.glsl). */
void xt_groups_1d(const xt_vk_context *ctx, uint64_t n, uint32_t local_size, uint32_t groups[3]);

typedef enum xt_barrier {
    XT_BARRIER_COMPUTE_TO_COMPUTE = 0, /* a dispatch reads or overwrites what one before wrote */
    XT_BARRIER_TRANSFER_TO_COMPUTE,    /* copy/fill, then dispatch */
    XT_BARRIER_COMPUTE_TO_TRANSFER,    /* dispatch, then copy */
    XT_BARRIER_COMPUTE_TO_INDIRECT,    /* a dispatch writes arguments of a later indirect one */
} xt_barrier;

void xt_cmd_barrier(xt_cmd *cmd, xt_barrier kind);
void xt_cmd_copy(xt_cmd *cmd, const xt_buffer *src, VkDeviceSize src_offset, const xt_buffer *dst,
                 VkDeviceSize dst_offset, VkDeviceSize size_bytes);
/* size_bytes and dst_offset multiples of 4. */
void xt_cmd_fill(xt_cmd *cmd, const xt_buffer *dst, VkDeviceSize dst_offset,
                 VkDeviceSize size_bytes, uint32_t value);

/* ---- GPU timestamps ------------------------------------------------------------------------ */

typedef struct xt_timer xt_timer;

/* slot_count timestamp slots. XT_ERR_UNSUPPORTED when the queue has no timestamps
 * (timestampValidBits == 0). */
xt_status xt_timer_create(xt_vk_context *ctx, uint32_t slot_count, xt_timer **out, xt_error *err);
void xt_timer_destroy(xt_timer *t);
/* Records a reset of every slot; once per recording, before the first xt_timer_mark. */
void xt_timer_reset(xt_cmd *cmd, xt_timer *t);
/* Records a timestamp taken when all earlier commands have completed. */
void xt_timer_mark(xt_cmd *cmd, xt_timer *t, uint32_t slot);
/* After the command buffer completed: nanoseconds between two slots (wrap-around of
 * timestampValidBits handled). */
xt_status xt_timer_elapsed_ns(xt_timer *t, uint32_t slot_begin, uint32_t slot_end,
                              double *elapsed_ns, xt_error *err);

/* ---- measured peaks ------------------------------------------------------------------------ */

typedef struct xt_peak_desc {
    uint32_t fma_groups;     /* workgroups of 256 for peak_fma; 0: 8 per compute unit guess */
    uint32_t fma_iterations; /* loop trips per invocation (32 FMAs each); 0: 4096 */
    uint64_t copy_bytes;     /* bytes copied by peak_copy; 0: min(256 MiB, range limit) */
    uint32_t repeats;        /* best of; 0: 3 */
} xt_peak_desc;

typedef struct xt_peak {
    double flops_per_s;     /* fp32 FMA, counted as 2 FLOP */
    double bytes_per_s;     /* read + written */
    double fma_ns, copy_ns; /* best single run */
} xt_peak;

/* Runs peak_fma and peak_copy with GPU timestamps. XT_ERR_UNSUPPORTED without timestamps. */
xt_status xt_vk_measure_peak(xt_vk_context *ctx, const xt_peak_desc *desc, xt_peak *out,
                             xt_error *err);

/* Whether the device fuses `fma` under `precise` (one rounding) or rounds the product first, as
 * lavapipe does: measured by one dispatch on the first call, then remembered by the context.
 * The shaders' matmul-like ops reduce with fma; the CPU reference follows the answer
 * (xt_ref_set_fused_fma in src/ref_matmul.h). */
xt_status xt_vk_fma_fused(xt_vk_context *ctx, bool *fused, xt_error *err);

#ifdef __cplusplus
}
#endif

#endif
