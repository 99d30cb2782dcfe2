/* Private to the vk_*.c files: the opaque structs of include/expertrace/vk.h and shared helpers. */
#ifndef XT_VK_INTERNAL_H
#define XT_VK_INTERNAL_H

#include "expertrace/vk.h"

/* Not in the 1.3.239 headers we build against; only the name is needed to detect it. */
#define XT_VK_KHR_COOPERATIVE_MATRIX_NAME "VK_KHR_cooperative_matrix"
#define XT_VK_KHR_PORTABILITY_SUBSET_NAME "VK_KHR_portability_subset"

/* Appends struct s to a pNext chain whose open end is `next` (a void **), used when filling
 * VkPhysicalDeviceFeatures2 for detection and for device creation. */
#define XT_VK_CHAIN(next, s)                                                                       \
    do {                                                                                           \
        *(next) = &(s);                                                                            \
        (next) = &(s).pNext;                                                                       \
    } while (0)

/* Device extensions a 1.2 device needs for features that are core in 1.3. */
typedef struct xt_vk_device_exts {
    bool subgroup_size_control; /* VK_EXT_subgroup_size_control */
    bool integer_dot_product;   /* VK_KHR_shader_integer_dot_product */
    bool maintenance4;          /* VK_KHR_maintenance4 */
    bool portability_subset;
} xt_vk_device_exts;

typedef struct xt_vk_physical {
    VkPhysicalDevice handle;
    xt_vk_device_info info;
    xt_vk_device_exts exts; /* offered as extensions (and needed as such: effective API < 1.3) */
} xt_vk_physical;

struct xt_vk_instance {
    VkInstance instance;
    uint32_t api_version;
    bool validation_active;
    bool debug_utils;
    VkDebugUtilsMessengerEXT messenger;
    PFN_vkCreateDebugUtilsMessengerEXT create_messenger;
    PFN_vkDestroyDebugUtilsMessengerEXT destroy_messenger;
    uint32_t messages; /* counted by the messenger */
    xt_vk_feature_level features;
    uint32_t device_count;
    xt_vk_physical *devices; /* device_count entries */
};

struct xt_vk_context {
    xt_vk_instance *inst;
    const xt_vk_physical *phys;
    xt_vk_device_info info; /* copy of phys->info */
    VkDevice device;
    VkQueue queue;
    VkCommandPool pool;
    VkSemaphore timeline;    /* VK_NULL_HANDLE unless timeline semaphores are enabled */
    uint64_t timeline_value; /* last value a submission will signal */
    uint64_t timeout_ns;
    uint64_t staging_bytes;
    xt_buffer staging; /* created on first use */
    xt_cmd *transfer;  /* for staged uploads/downloads, created on first use */
    bool lost;
    int fma_fused;     /* xt_vk_fma_fused: -1 not probed yet, else 0 / 1 */
};

typedef enum xt_cmd_state { XT_CMD_IDLE = 0, XT_CMD_RECORDING, XT_CMD_PENDING } xt_cmd_state;

struct xt_cmd {
    xt_vk_context *ctx;
    VkCommandBuffer cb;
    VkFence fence;         /* when timeline semaphores are off */
    uint64_t signal_value; /* timeline value of the last submission */
    xt_cmd_state state;
    VkDescriptorPool *pools; /* grown on demand, reset by xt_cmd_begin */
    uint32_t pool_count, pool_cap, pool_current;
};

/* A descriptor set for layout from cmd's pools, valid until the next xt_cmd_begin. */
xt_status xt_cmd_alloc_set(xt_cmd *cmd, VkDescriptorSetLayout layout, VkDescriptorSet *out,
                           xt_error *err);

/* Fills err from a failed VkResult: DEVICE_LOST -> XT_ERR_DEVICE_LOST, out of device memory ->
 * XT_ERR_DEVICE_MEMORY, anything else XT_ERR_DEVICE. Message: "<what>: <VK_ERROR_NAME>". */
xt_status xt_vk_fail(VkResult r, xt_error *err, const char *what);
const char *xt_vk_result_name(VkResult r);

/* Detects everything about one physical device (vk_detect.c). api_version is the instance's. */
xt_status xt_vk_detect(VkPhysicalDevice pd, uint32_t index, uint32_t instance_api,
                       xt_vk_feature_level level, xt_vk_physical *out, xt_error *err);

/* Human-readable byte counts ("1.5 GiB") for messages. */
const char *xt_vk_bytes_string(uint64_t bytes, char *buf, size_t buf_bytes);

#endif
