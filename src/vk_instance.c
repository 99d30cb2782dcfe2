/* Vulkan loader, instance, validation messenger, the device list and device selection.
 *
 * Validation (EXPERTRACE_VALIDATION=1 or desc->validation) enables VK_LAYER_KHRONOS_validation
 * when installed, with synchronization validation where the layer offers VK_EXT_validation_
 * features, and a VK_EXT_debug_utils messenger that prints every warning and error to stderr.
 * What counts towards the "validation messages" tests assert to be 0: every ERROR, and WARNINGs
 * of the VALIDATION type. Not counted (printed with "(not counted)"): PERFORMANCE warnings —
 * vendor advice that would make the same correct code pass on one driver and fail on another —
 * and GENERAL warnings, which come from the loader about other drivers and layers installed on
 * the machine, not from our use of the API.
 */
#if defined(__SANITIZE_ADDRESS__)
#define XT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define XT_ASAN 1
#endif
#endif
#ifdef XT_ASAN
#define _GNU_SOURCE /* dl_iterate_phdr, RTLD_NODELETE */
#include <dlfcn.h>
#include <link.h>
#endif

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vk_internal.h"

#define VALIDATION_LAYER "VK_LAYER_KHRONOS_validation"

/* Every counted message of every instance in this process, destruction included. */
static atomic_uint total_messages;

uint32_t xt_vk_validation_messages_total(void)
{
    return (uint32_t)atomic_load(&total_messages);
}

/* ---- small helpers shared by the vk_*.c files ---------------------------------------------- */

const char *xt_vk_result_name(VkResult r)
{
    switch (r) {
#define R(x)                                                                                       \
    case x:                                                                                        \
        return #x;
        R(VK_SUCCESS)
        R(VK_NOT_READY)
        R(VK_TIMEOUT)
        R(VK_INCOMPLETE)
        R(VK_ERROR_OUT_OF_HOST_MEMORY)
        R(VK_ERROR_OUT_OF_DEVICE_MEMORY)
        R(VK_ERROR_INITIALIZATION_FAILED)
        R(VK_ERROR_DEVICE_LOST)
        R(VK_ERROR_MEMORY_MAP_FAILED)
        R(VK_ERROR_LAYER_NOT_PRESENT)
        R(VK_ERROR_EXTENSION_NOT_PRESENT)
        R(VK_ERROR_FEATURE_NOT_PRESENT)
        R(VK_ERROR_INCOMPATIBLE_DRIVER)
        R(VK_ERROR_TOO_MANY_OBJECTS)
        R(VK_ERROR_FORMAT_NOT_SUPPORTED)
        R(VK_ERROR_FRAGMENTED_POOL)
        R(VK_ERROR_UNKNOWN)
        R(VK_ERROR_OUT_OF_POOL_MEMORY)
        R(VK_ERROR_INVALID_EXTERNAL_HANDLE)
        R(VK_ERROR_FRAGMENTATION)
        R(VK_ERROR_INVALID_OPAQUE_CAPTURE_ADDRESS)
        R(VK_PIPELINE_COMPILE_REQUIRED)
#undef R
    default:
        return "VkResult (unnamed)";
    }
}

xt_status xt_vk_fail(VkResult r, xt_error *err, const char *what)
{
    xt_status s = XT_ERR_DEVICE;
    if (r == VK_ERROR_DEVICE_LOST)
        s = XT_ERR_DEVICE_LOST;
    else if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY)
        s = XT_ERR_DEVICE_MEMORY;
    else if (r == VK_ERROR_OUT_OF_HOST_MEMORY)
        s = XT_ERR_NO_MEMORY;
    return xt_error_set(err, s, "%s: %s (%d)", what, xt_vk_result_name(r), (int)r);
}

char *xt_vk_version_string(uint32_t version, char *buf, size_t buf_bytes)
{
    snprintf(buf, buf_bytes, "%u.%u.%u", VK_API_VERSION_MAJOR(version),
             VK_API_VERSION_MINOR(version), VK_API_VERSION_PATCH(version));
    return buf;
}

const char *xt_vk_device_type_name(VkPhysicalDeviceType type)
{
    switch (type) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU:
        return "discrete";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU:
        return "integrated";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU:
        return "virtual";
    case VK_PHYSICAL_DEVICE_TYPE_CPU:
        return "cpu";
    default:
        return "other";
    }
}

const char *xt_vk_bytes_string(uint64_t bytes, char *buf, size_t buf_bytes)
{
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024.0 && u < 4) {
        v /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, buf_bytes, "%llu B", (unsigned long long)bytes);
    else
        snprintf(buf, buf_bytes, "%.1f %s", v, unit[u]);
    return buf;
}

/* ---- environment ---------------------------------------------------------------------------- */

static xt_status env_validation(xt_vk_validation v, bool *on, xt_error *err)
{
    if (v != XT_VK_VALIDATION_DEFAULT) {
        *on = v == XT_VK_VALIDATION_ON;
        return XT_OK;
    }
    const char *e = getenv("EXPERTRACE_VALIDATION");
    if (!e || !*e || !strcmp(e, "0") || !strcmp(e, "off")) {
        *on = false;
        return XT_OK;
    }
    if (!strcmp(e, "1") || !strcmp(e, "on")) {
        *on = true;
        return XT_OK;
    }
    return xt_error_set(err, XT_ERR_USAGE, "EXPERTRACE_VALIDATION='%s': expected 1 or 0", e);
}

static xt_status env_features(xt_vk_feature_level v, xt_vk_feature_level *out, xt_error *err)
{
    if (v != XT_VK_FEATURES_DEFAULT) {
        *out = v;
        return XT_OK;
    }
    const char *e = getenv("EXPERTRACE_FEATURES");
    if (!e || !*e || !strcmp(e, "all")) {
        *out = XT_VK_FEATURES_ALL;
        return XT_OK;
    }
    if (!strcmp(e, "min")) {
        *out = XT_VK_FEATURES_MIN;
        return XT_OK;
    }
    return xt_error_set(err, XT_ERR_USAGE, "EXPERTRACE_FEATURES='%s': expected 'min' or 'all'", e);
}

/* ---- debug messenger ------------------------------------------------------------------------ */

static VKAPI_ATTR VkBool32 VKAPI_CALL on_message(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                                                 VkDebugUtilsMessageTypeFlagsEXT types,
                                                 const VkDebugUtilsMessengerCallbackDataEXT *data,
                                                 void *user)
{
    xt_vk_instance *inst = user;
    bool error = severity & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT;
    bool counted = error || (types & VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT);
    if (counted) {
        inst->messages++;
        atomic_fetch_add(&total_messages, 1u);
    }
    const char *kind = (types & VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT)    ? "validation"
                       : (types & VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT) ? "performance"
                                                                                   : "general";
    /* The one place the library prints: these messages are for the developer at the terminal. */
    fprintf(stderr, "expertrace: vulkan %s %s%s: %s\n", kind, error ? "error" : "warning",
            counted ? "" : " (not counted)", data && data->pMessage ? data->pMessage : "");
    return VK_FALSE;
}

static VkDebugUtilsMessengerCreateInfoEXT messenger_info(xt_vk_instance *inst)
{
    return (VkDebugUtilsMessengerCreateInfoEXT){
        .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
        .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
                           VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
        .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
        .pfnUserCallback = on_message,
        .pUserData = inst,
    };
}

/* ---- instance ------------------------------------------------------------------------------- */

static bool loader_ready;

static xt_status open_loader(xt_error *err)
{
    if (loader_ready) return XT_OK;
    if (volkInitialize() != VK_SUCCESS)
        return xt_error_set(err, XT_ERR_DEVICE,
                            "no Vulkan loader found (libvulkan.so.1, vulkan-1.dll or "
                            "libvulkan.1.dylib); install the Vulkan runtime and a driver "
                            "(on Debian/Ubuntu: libvulkan1 and mesa-vulkan-drivers)");
    loader_ready = true;
    return XT_OK;
}

static bool ext_listed(const VkExtensionProperties *e, uint32_t n, const char *name)
{
    for (uint32_t i = 0; i < n; i++)
        if (!strcmp(e[i].extensionName, name)) return true;
    return false;
}

/* Instance extensions: from the loader and implicit layers, plus those of `layer` if non-NULL.
 * The caller frees *out. */
static xt_status list_instance_exts(const char *layer, VkExtensionProperties **out, uint32_t *n,
                                    xt_error *err)
{
    *out = NULL;
    *n = 0;
    uint32_t count = 0;
    VkResult r = vkEnumerateInstanceExtensionProperties(layer, &count, NULL);
    if (r != VK_SUCCESS) return xt_vk_fail(r, err, "vkEnumerateInstanceExtensionProperties");
    VkExtensionProperties *e = calloc(count ? count : 1, sizeof *e);
    if (!e) return xt_error_set(err, XT_ERR_NO_MEMORY, "instance extension list");
    r = vkEnumerateInstanceExtensionProperties(layer, &count, e);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE) {
        free(e);
        return xt_vk_fail(r, err, "vkEnumerateInstanceExtensionProperties");
    }
    *out = e;
    *n = count;
    return XT_OK;
}

static xt_status has_layer(const char *name, bool *found, xt_error *err)
{
    *found = false;
    uint32_t n = 0;
    VkResult r = vkEnumerateInstanceLayerProperties(&n, NULL);
    if (r != VK_SUCCESS) return xt_vk_fail(r, err, "vkEnumerateInstanceLayerProperties");
    VkLayerProperties *l = calloc(n ? n : 1, sizeof *l);
    if (!l) return xt_error_set(err, XT_ERR_NO_MEMORY, "instance layer list");
    r = vkEnumerateInstanceLayerProperties(&n, l);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE) {
        free(l);
        return xt_vk_fail(r, err, "vkEnumerateInstanceLayerProperties");
    }
    for (uint32_t i = 0; i < n; i++)
        if (!strcmp(l[i].layerName, name)) *found = true;
    free(l);
    return XT_OK;
}

xt_status xt_vk_instance_create(const xt_vk_desc *desc, xt_vk_instance **out, xt_error *err)
{
    static const xt_vk_desc defaults = {0};
    if (!desc) desc = &defaults;
    *out = NULL;
    bool want_validation = false;
    xt_vk_feature_level level = XT_VK_FEATURES_ALL;
    xt_status s = env_validation(desc->validation, &want_validation, err);
    if (s) return s;
    if ((s = env_features(desc->features, &level, err))) return s;
    if ((s = open_loader(err))) return s;

    uint32_t loader_api = volkGetInstanceVersion();
    if (loader_api < VK_MAKE_API_VERSION(0, 1, 1, 0)) {
        return xt_error_set(err, XT_ERR_DEVICE,
                            "the Vulkan loader is version 1.0; expertrace needs a 1.2 loader "
                            "and device (update the Vulkan runtime)");
    }
    /* What the loader offers, up to 1.3; a 1.1 loader accepts a higher apiVersion. */
    uint32_t api = loader_api >= VK_API_VERSION_1_3 ? VK_API_VERSION_1_3 : VK_API_VERSION_1_2;

    xt_vk_instance *inst = calloc(1, sizeof *inst);
    VkExtensionProperties *exts = NULL, *layer_exts = NULL;
    uint32_t n_exts = 0, n_layer_exts = 0;
    if (!inst) return xt_error_set(err, XT_ERR_NO_MEMORY, "vulkan instance");
    inst->api_version = api;
    inst->features = level;

    if ((s = list_instance_exts(NULL, &exts, &n_exts, err))) goto fail;
    bool layer = false;
    if (want_validation && (s = has_layer(VALIDATION_LAYER, &layer, err))) goto fail;
    if (layer && (s = list_instance_exts(VALIDATION_LAYER, &layer_exts, &n_layer_exts, err)))
        goto fail;

    const char *names[4];
    uint32_t n_names = 0;
    VkInstanceCreateFlags flags = 0;
#ifdef VK_KHR_portability_enumeration
    if (ext_listed(exts, n_exts, VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME)) {
        names[n_names++] = VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME;
        flags |= VK_INSTANCE_CREATE_ENUMERATE_PORTABILITY_BIT_KHR;
    }
#endif
    bool sync_validation = false;
    if (layer) {
        inst->debug_utils = ext_listed(exts, n_exts, VK_EXT_DEBUG_UTILS_EXTENSION_NAME) ||
                            ext_listed(layer_exts, n_layer_exts, VK_EXT_DEBUG_UTILS_EXTENSION_NAME);
        if (inst->debug_utils) names[n_names++] = VK_EXT_DEBUG_UTILS_EXTENSION_NAME;
        sync_validation =
            ext_listed(layer_exts, n_layer_exts, VK_EXT_VALIDATION_FEATURES_EXTENSION_NAME);
        if (sync_validation) names[n_names++] = VK_EXT_VALIDATION_FEATURES_EXTENSION_NAME;
    }

    /* Chained into the create info, the messenger also sees vkCreate/DestroyInstance. */
    VkDebugUtilsMessengerCreateInfoEXT mi = messenger_info(inst);
    static const VkValidationFeatureEnableEXT enables[] = {
        VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT};
    VkValidationFeaturesEXT vf = {
        .sType = VK_STRUCTURE_TYPE_VALIDATION_FEATURES_EXT,
        .enabledValidationFeatureCount = 1,
        .pEnabledValidationFeatures = enables,
    };
    const void *chain = NULL;
    if (inst->debug_utils) {
        mi.pNext = chain;
        chain = &mi;
    }
    if (sync_validation) {
        vf.pNext = chain;
        chain = &vf;
    }
    const char *layers[] = {VALIDATION_LAYER};
    VkInstanceCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
        .pNext = chain,
        .flags = flags,
        .pApplicationInfo =
            &(VkApplicationInfo){
                .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
                .pApplicationName = "expertrace",
                .applicationVersion = VK_MAKE_API_VERSION(0, 0, 1, 0),
                .pEngineName = "expertrace",
                .engineVersion = VK_MAKE_API_VERSION(0, 0, 1, 0),
                .apiVersion = api,
            },
        .enabledLayerCount = layer ? 1 : 0,
        .ppEnabledLayerNames = layer ? layers : NULL,
        .enabledExtensionCount = n_names,
        .ppEnabledExtensionNames = n_names ? names : NULL,
    };
    VkResult r = vkCreateInstance(&ci, NULL, &inst->instance);
    if (r == VK_ERROR_INCOMPATIBLE_DRIVER) {
        s = xt_error_set(err, XT_ERR_DEVICE,
                         "vkCreateInstance: no Vulkan driver supports this instance "
                         "(VK_ERROR_INCOMPATIBLE_DRIVER); is a Vulkan driver installed?");
        goto fail;
    }
    if (r != VK_SUCCESS) {
        s = xt_vk_fail(r, err, "vkCreateInstance");
        goto fail;
    }
    volkLoadInstance(inst->instance);
    inst->validation_active = layer;

    if (inst->debug_utils) {
        inst->create_messenger = (PFN_vkCreateDebugUtilsMessengerEXT)vkGetInstanceProcAddr(
            inst->instance, "vkCreateDebugUtilsMessengerEXT");
        inst->destroy_messenger = (PFN_vkDestroyDebugUtilsMessengerEXT)vkGetInstanceProcAddr(
            inst->instance, "vkDestroyDebugUtilsMessengerEXT");
        if (inst->create_messenger && inst->destroy_messenger) {
            mi.pNext = NULL;
            r = inst->create_messenger(inst->instance, &mi, NULL, &inst->messenger);
            if (r != VK_SUCCESS) {
                s = xt_vk_fail(r, err, "vkCreateDebugUtilsMessengerEXT");
                goto fail;
            }
        }
    }

    uint32_t n = 0;
    r = vkEnumeratePhysicalDevices(inst->instance, &n, NULL);
    if (r != VK_SUCCESS) {
        s = xt_vk_fail(r, err, "vkEnumeratePhysicalDevices");
        goto fail;
    }
    if (n == 0) {
        s = xt_error_set(err, XT_ERR_DEVICE,
                         "no Vulkan device found (install a GPU driver, or mesa-vulkan-drivers "
                         "for the lavapipe CPU device)");
        goto fail;
    }
    VkPhysicalDevice *pds = calloc(n, sizeof *pds);
    inst->devices = calloc(n, sizeof *inst->devices);
    if (!pds || !inst->devices) {
        free(pds);
        s = xt_error_set(err, XT_ERR_NO_MEMORY, "physical device list");
        goto fail;
    }
    r = vkEnumeratePhysicalDevices(inst->instance, &n, pds);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE) {
        free(pds);
        s = xt_vk_fail(r, err, "vkEnumeratePhysicalDevices");
        goto fail;
    }
    for (uint32_t i = 0; i < n; i++) {
        s = xt_vk_detect(pds[i], i, api, level, &inst->devices[i], err);
        if (s) {
            free(pds);
            goto fail;
        }
    }
    inst->device_count = n;
    free(pds);
    free(exts);
    free(layer_exts);
    *out = inst;
    return XT_OK;

fail:
    free(exts);
    free(layer_exts);
    xt_vk_instance_destroy(inst);
    return s;
}

#ifdef XT_ASAN
/* AddressSanitizer builds only. vkDestroyInstance makes the loader dlclose drivers and layers;
 * the caches they keep in globals (lavapipe's, for one) then lie in unmapped memory, and
 * LeakSanitizer reports them as leaks from modules it can no longer name, so they cannot be
 * suppressed either. Marking every loaded module RTLD_NODELETE keeps those globals mapped: what
 * a driver still references is not reported, what a layer truly leaks is reported under its
 * name (tests/lsan.supp), and our own leaks are reported as always. */
static int pin_module(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    (void)data;
    if (info->dlpi_name && info->dlpi_name[0]) {
        void *h = dlopen(info->dlpi_name, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
        if (h) dlclose(h); /* drops only the reference just taken; NODELETE stays */
    }
    return 0;
}
#endif

void xt_vk_instance_destroy(xt_vk_instance *inst)
{
    if (!inst) return;
#ifdef XT_ASAN
    dl_iterate_phdr(pin_module, NULL);
#endif
    if (inst->messenger) inst->destroy_messenger(inst->instance, inst->messenger, NULL);
    if (inst->instance) vkDestroyInstance(inst->instance, NULL);
    free(inst->devices);
    free(inst);
}

uint32_t xt_vk_instance_device_count(const xt_vk_instance *inst)
{
    return inst->device_count;
}

const xt_vk_device_info *xt_vk_instance_device(const xt_vk_instance *inst, uint32_t index)
{
    return index < inst->device_count ? &inst->devices[index].info : NULL;
}

uint32_t xt_vk_instance_api_version(const xt_vk_instance *inst)
{
    return inst->api_version;
}

bool xt_vk_instance_validation_active(const xt_vk_instance *inst)
{
    return inst->validation_active;
}

xt_vk_feature_level xt_vk_instance_feature_level(const xt_vk_instance *inst)
{
    return inst->features;
}

uint32_t xt_vk_instance_validation_messages(const xt_vk_instance *inst)
{
    return inst->messages;
}

/* ---- selection ------------------------------------------------------------------------------ */

static int type_rank(VkPhysicalDeviceType t)
{
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU:
        return 4;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU:
        return 3;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU:
        return 2;
    case VK_PHYSICAL_DEVICE_TYPE_CPU:
        return 1;
    default:
        return 0;
    }
}

static xt_status parse_index(const char *s, uint32_t *out)
{
    if (!*s) return XT_ERR_USAGE;
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') return XT_ERR_USAGE;
        v = v * 10 + (uint64_t)(*p - '0');
        if (v > UINT32_MAX) return XT_ERR_USAGE;
    }
    *out = (uint32_t)v;
    return XT_OK;
}

xt_status xt_vk_instance_select(const xt_vk_instance *inst, const xt_vk_desc *desc, uint32_t *index,
                                xt_error *err)
{
    const char *source = NULL;
    uint32_t idx = 0;
    const char *e = getenv("EXPERTRACE_DEVICE");
    if (desc && desc->device_index_set) {
        idx = desc->device_index;
        source = "device index";
    } else if (e && *e) {
        if (parse_index(e, &idx))
            return xt_error_set(err, XT_ERR_USAGE,
                                "EXPERTRACE_DEVICE='%s': expected a device index (0..%u)", e,
                                inst->device_count - 1);
        source = "EXPERTRACE_DEVICE";
    }

    if (source) {
        if (idx >= inst->device_count)
            return xt_error_set(err, XT_ERR_USAGE,
                                "%s %u is out of range: %u Vulkan device%s found (valid: 0..%u; "
                                "see 'expertrace devices')",
                                source, idx, inst->device_count, inst->device_count == 1 ? "" : "s",
                                inst->device_count - 1);
        const xt_vk_device_info *d = &inst->devices[idx].info;
        if (!d->usable)
            return xt_error_set(err, XT_ERR_UNSUPPORTED, "device %u (%s) cannot be used: %s", idx,
                                d->name, d->unusable_reason);
        *index = idx;
        return XT_OK;
    }

    uint32_t best = UINT32_MAX;
    for (uint32_t i = 0; i < inst->device_count; i++) {
        const xt_vk_device_info *d = &inst->devices[i].info;
        if (!d->usable) continue;
        if (best == UINT32_MAX) {
            best = i;
            continue;
        }
        const xt_vk_device_info *b = &inst->devices[best].info;
        int dr = type_rank(d->type) - type_rank(b->type);
        if (dr > 0 || (dr == 0 && d->device_local_bytes > b->device_local_bytes)) best = i;
    }
    if (best == UINT32_MAX) {
        char why[XT_ERROR_MSG_BYTES] = "";
        size_t used = 0;
        for (uint32_t i = 0; i < inst->device_count && used < sizeof why; i++) {
            int w = snprintf(why + used, sizeof why - used, "%s%u (%s): %s", i ? "; " : "", i,
                             inst->devices[i].info.name, inst->devices[i].info.unusable_reason);
            if (w < 0) break;
            used += (size_t)w;
        }
        return xt_error_set(err, XT_ERR_DEVICE, "no usable Vulkan device: %s", why);
    }
    *index = best;
    return XT_OK;
}
