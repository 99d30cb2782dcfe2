/* expertrace devices [--json] [--device N] [--peak]: every Vulkan device, its limits and the
 * features expertrace uses, supported vs enabled for this run (EXPERTRACE_FEATURES=min shows the
 * floor). The default device is marked '*', unusable ones '!' with the reason. Exit 3 when there
 * is no Vulkan loader or device.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "cli.h"
#include "expertrace/vk.h"

static const char *const verb_name = "devices";

static void print_help(FILE *f)
{
    fprintf(f, "usage: expertrace devices [--json] [--device N] [--peak]\n\n"
               "Lists every Vulkan device with its limits and the features expertrace uses\n"
               "(supported by the device / enabled for this run).\n\n"
               "  --json       machine-readable output on stdout\n"
               "  --device N   mark device N as the one a run would use (default: the best)\n"
               "  --peak       also measure peak FP32 FLOP/s and copy bytes/s on that device\n"
               "  --help       this text\n\n"
               "environment: EXPERTRACE_DEVICE=N, EXPERTRACE_FEATURES=min|all,\n"
               "             EXPERTRACE_VALIDATION=1\n");
}

/* ---- tables shared by the text and JSON output ------------------------------------------- */

typedef struct feature_row {
    const char *name; /* Vulkan's spelling where there is one */
    size_t offset;    /* of the bool in xt_vk_features */
} feature_row;

#define F(name, field) {name, offsetof(xt_vk_features, field)}
static const feature_row features[] = {
    F("shaderFloat16", shader_float16),
    F("shaderInt8", shader_int8),
    F("shaderInt16", shader_int16),
    F("shaderInt64", shader_int64),
    F("storageBuffer8BitAccess", storage_buffer_8bit),
    F("uniformAndStorageBuffer8BitAccess", uniform_and_storage_buffer_8bit),
    F("storagePushConstant8", storage_push_constant_8bit),
    F("storageBuffer16BitAccess", storage_buffer_16bit),
    F("uniformAndStorageBuffer16BitAccess", uniform_and_storage_buffer_16bit),
    F("storagePushConstant16", storage_push_constant_16bit),
    F("timelineSemaphore", timeline_semaphore),
    F("bufferDeviceAddress", buffer_device_address),
    F("scalarBlockLayout", scalar_block_layout),
    F("vulkanMemoryModel", vulkan_memory_model),
    F("vulkanMemoryModelDeviceScope", vulkan_memory_model_device_scope),
    F("subgroupSizeControl", subgroup_size_control),
    F("computeFullSubgroups", compute_full_subgroups),
    F("maintenance4", maintenance4),
    F("shaderIntegerDotProduct", integer_dot_product),
    F("subgroupArithmetic", subgroup_arithmetic),
    F("subgroupBallot", subgroup_ballot),
    F("cooperativeMatrix", cooperative_matrix),
    F("umaDirectMapping", uma),
};
#undef F

static bool feature(const xt_vk_features *f, const feature_row *row)
{
    return *(const bool *)((const char *)f + row->offset);
}

typedef struct flag_name {
    uint32_t bit;
    const char *name;
} flag_name;

static const flag_name subgroup_ops[] = {
    {VK_SUBGROUP_FEATURE_BASIC_BIT, "basic"},
    {VK_SUBGROUP_FEATURE_VOTE_BIT, "vote"},
    {VK_SUBGROUP_FEATURE_ARITHMETIC_BIT, "arithmetic"},
    {VK_SUBGROUP_FEATURE_BALLOT_BIT, "ballot"},
    {VK_SUBGROUP_FEATURE_SHUFFLE_BIT, "shuffle"},
    {VK_SUBGROUP_FEATURE_SHUFFLE_RELATIVE_BIT, "shuffle_relative"},
    {VK_SUBGROUP_FEATURE_CLUSTERED_BIT, "clustered"},
    {VK_SUBGROUP_FEATURE_QUAD_BIT, "quad"},
    {0, NULL},
};

static const flag_name stages[] = {
    {VK_SHADER_STAGE_VERTEX_BIT, "vertex"},
    {VK_SHADER_STAGE_TESSELLATION_CONTROL_BIT, "tess_control"},
    {VK_SHADER_STAGE_TESSELLATION_EVALUATION_BIT, "tess_eval"},
    {VK_SHADER_STAGE_GEOMETRY_BIT, "geometry"},
    {VK_SHADER_STAGE_FRAGMENT_BIT, "fragment"},
    {VK_SHADER_STAGE_COMPUTE_BIT, "compute"},
    {0, NULL},
};

static const flag_name heap_flags[] = {
    {VK_MEMORY_HEAP_DEVICE_LOCAL_BIT, "device-local"},
    {VK_MEMORY_HEAP_MULTI_INSTANCE_BIT, "multi-instance"},
    {0, NULL},
};

static const flag_name type_flags[] = {
    {VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, "device-local"},
    {VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT, "host-visible"},
    {VK_MEMORY_PROPERTY_HOST_COHERENT_BIT, "host-coherent"},
    {VK_MEMORY_PROPERTY_HOST_CACHED_BIT, "host-cached"},
    {VK_MEMORY_PROPERTY_LAZILY_ALLOCATED_BIT, "lazily-allocated"},
    {VK_MEMORY_PROPERTY_PROTECTED_BIT, "protected"},
    {0, NULL},
};

/* "a b c" for the set bits of flags, "none" when none; returns buf. */
static const char *flags_string(uint32_t flags, const flag_name *names, char *buf, size_t n)
{
    buf[0] = '\0';
    size_t used = 0;
    for (const flag_name *f = names; f->name; f++) {
        if (!(flags & f->bit)) continue;
        int w = snprintf(buf + used, n - used, "%s%s", used ? " " : "", f->name);
        if (w < 0 || (size_t)w >= n - used) break;
        used += (size_t)w;
    }
    if (!used) snprintf(buf, n, "none");
    return buf;
}

static cJSON *flags_json(uint32_t flags, const flag_name *names)
{
    cJSON *a = cJSON_CreateArray();
    for (const flag_name *f = names; f->name; f++)
        if (flags & f->bit) cJSON_AddItemToArray(a, cJSON_CreateString(f->name));
    return a;
}

static const char *yes(bool b)
{
    return b ? "yes" : "no";
}

static const char *bytes_string(uint64_t bytes, char *buf, size_t n)
{
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024.0 && u < 6) {
        v /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, n, "%llu B", (unsigned long long)bytes);
    else
        snprintf(buf, n, "%.1f %s", v, unit[u]);
    return buf;
}

/* ---- text ------------------------------------------------------------------------------------ */

static void row_u64(const char *name, uint64_t v)
{
    printf("    %-38s %llu\n", name, (unsigned long long)v);
}

static void row_bytes(const char *name, uint64_t v)
{
    char b[32];
    printf("    %-38s %llu (%s)\n", name, (unsigned long long)v, bytes_string(v, b, sizeof b));
}

static void row_u32x3(const char *name, const uint32_t v[3])
{
    printf("    %-38s %u x %u x %u\n", name, v[0], v[1], v[2]);
}

static void print_summary_line(const xt_vk_device_info *d, bool is_default)
{
    char v[16], m[32];
    printf("%c %-2u %-40s %-10s Vulkan %-9s %-12s %s device-local\n",
           is_default  ? '*'
           : d->usable ? ' '
                       : '!',
           d->index, d->name, xt_vk_device_type_name(d->type),
           xt_vk_version_string(d->api_version, v, sizeof v),
           d->driver_name[0] ? d->driver_name : "?",
           bytes_string(d->device_local_bytes, m, sizeof m));
}

static void print_device(const xt_vk_device_info *d, bool is_default, bool floor,
                         const xt_peak *peak)
{
    char a[32], b[32], s[256];
    printf("\ndevice %u: %s%s\n", d->index, d->name,
           is_default  ? "  [default]"
           : d->usable ? ""
                       : "  [unusable]");
    if (!d->usable) printf("  %-40s %s\n", "unusable because", d->unusable_reason);
    printf("  %-40s %s\n", "type", xt_vk_device_type_name(d->type));
    printf("  %-40s 0x%04x / 0x%04x\n", "vendor / device id", d->vendor_id, d->device_id);
    printf("  %-40s %s (used: %s)\n", "api version",
           xt_vk_version_string(d->api_version, a, sizeof a),
           xt_vk_version_string(d->effective_api_version, b, sizeof b));
    printf("  %-40s %s, %s (version %s, driverID %d)\n", "driver",
           d->driver_name[0] ? d->driver_name : "?", d->driver_info[0] ? d->driver_info : "?",
           d->driver_version_string, (int)d->driver_id);
    if (d->queue_family != UINT32_MAX)
        printf("  %-40s %u\n", "compute queue family", d->queue_family);
    printf("  %-40s %s\n", "portability subset", yes(d->portability_subset));

    printf("  limits\n");
    row_bytes("maxStorageBufferRange", d->limits.max_storage_buffer_range);
    row_bytes("maxMemoryAllocationSize", d->limits.max_memory_allocation_size);
    if (d->limits.max_buffer_size)
        row_bytes("maxBufferSize", d->limits.max_buffer_size);
    else
        printf("    %-38s not reported (no maintenance4)\n", "maxBufferSize");
    row_u32x3("maxComputeWorkGroupCount", d->limits.max_compute_work_group_count);
    row_u32x3("maxComputeWorkGroupSize", d->limits.max_compute_work_group_size);
    row_u64("maxComputeWorkGroupInvocations", d->limits.max_compute_work_group_invocations);
    row_bytes("maxComputeSharedMemorySize", d->limits.max_compute_shared_memory_size);
    row_u64("maxPushConstantsSize", d->limits.max_push_constants_size);
    row_u64("maxPerStageDescriptorStorageBuffers",
            d->limits.max_per_stage_descriptor_storage_buffers);
    row_u64("minStorageBufferOffsetAlignment", d->limits.min_storage_buffer_offset_alignment);
    row_u64("nonCoherentAtomSize", d->limits.non_coherent_atom_size);

    printf("  subgroup\n");
    row_u64("subgroupSize", d->subgroup.size);
    printf("    %-38s %s\n", "supportedStages",
           flags_string(d->subgroup.supported_stages, stages, s, sizeof s));
    printf("    %-38s %s\n", "supportedOperations",
           flags_string(d->subgroup.supported_operations, subgroup_ops, s, sizeof s));
    if (d->subgroup.max_size) {
        printf("    %-38s %u .. %u\n", "min/maxSubgroupSize", d->subgroup.min_size,
               d->subgroup.max_size);
        printf("    %-38s %s\n", "requiredSubgroupSizeStages",
               flags_string(d->subgroup.required_size_stages, stages, s, sizeof s));
        row_u64("maxComputeWorkgroupSubgroups", d->subgroup.max_compute_workgroup_subgroups);
    } else {
        printf("    %-38s not available\n", "subgroup size control");
    }

    printf("  timestamps\n");
    printf("    %-38s %s\n", "timestampComputeAndGraphics",
           yes(d->timestamps.compute_and_graphics));
    printf("    %-38s %g ns\n", "timestampPeriod", (double)d->timestamps.period_ns);
    printf("    %-38s %u%s\n", "timestampValidBits (compute queue)", d->timestamps.valid_bits,
           d->timestamps.valid_bits ? "" : " (no GPU timing)");

    if (d->supported.integer_dot_product) {
        printf("  integer dot product, accelerated\n");
        printf("    %-38s %s\n", "4x8BitPackedSigned",
               yes(d->integer_dot.packed_4x8_signed_accelerated));
        printf("    %-38s %s\n", "4x8BitPackedUnsigned",
               yes(d->integer_dot.packed_4x8_unsigned_accelerated));
        printf("    %-38s %s\n", "4x8BitPackedMixedSignedness",
               yes(d->integer_dot.packed_4x8_mixed_accelerated));
        printf("    %-38s %s\n", "8BitSigned", yes(d->integer_dot.bit8_signed_accelerated));
        printf("    %-38s %s\n", "8BitUnsigned", yes(d->integer_dot.bit8_unsigned_accelerated));
        printf("    %-38s %s\n", "16BitSigned", yes(d->integer_dot.bit16_signed_accelerated));
        printf("    %-38s %s\n", "AccumulatingSaturating4x8PackedSigned",
               yes(d->integer_dot.accumulating_saturating_4x8_packed_signed_accelerated));
    }
    printf("  %-40s KHR %s, NV %s\n", "cooperative matrix extensions",
           yes(d->cooperative_matrix_khr), yes(d->cooperative_matrix_nv));

    printf("  features %-31s supported  enabled%s\n", "",
           floor ? "  (EXPERTRACE_FEATURES=min)" : "");
    for (size_t i = 0; i < sizeof features / sizeof features[0]; i++)
        printf("    %-38s %-10s %s\n", features[i].name, yes(feature(&d->supported, &features[i])),
               yes(feature(&d->enabled, &features[i])));

    printf("  memory\n");
    for (uint32_t h = 0; h < d->heap_count; h++)
        printf("    heap %-2u %-30s %s\n", h, bytes_string(d->heaps[h].size_bytes, a, sizeof a),
               flags_string(d->heaps[h].flags, heap_flags, s, sizeof s));
    for (uint32_t t = 0; t < d->type_count; t++)
        printf("    type %-2u heap %-25u %s\n", t, d->types[t].heap,
               flags_string(d->types[t].flags, type_flags, s, sizeof s));
    if (peak)
        printf("  measured peak                            %.1f GFLOP/s fp32 FMA, %.1f GB/s copy\n",
               peak->flops_per_s * 1e-9, peak->bytes_per_s * 1e-9);
}

/* ---- JSON ------------------------------------------------------------------------------------ */

/* Exact as a JSON number up to 2^53, as a decimal string beyond. */
static void add_u64(cJSON *o, const char *name, uint64_t v)
{
    if (v <= (1ull << 53)) {
        cJSON_AddNumberToObject(o, name, (double)v);
    } else {
        char buf[32];
        snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
        cJSON_AddStringToObject(o, name, buf);
    }
}

static cJSON *u32x3(const uint32_t v[3])
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < 3; i++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber((double)v[i]));
    return a;
}

static cJSON *device_json(const xt_vk_device_info *d, bool is_default, const xt_peak *peak)
{
    char v[16];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "index", d->index);
    cJSON_AddStringToObject(o, "name", d->name);
    cJSON_AddStringToObject(o, "type", xt_vk_device_type_name(d->type));
    cJSON_AddBoolToObject(o, "default", is_default);
    cJSON_AddBoolToObject(o, "usable", d->usable);
    if (!d->usable) cJSON_AddStringToObject(o, "unusable_reason", d->unusable_reason);
    cJSON_AddStringToObject(o, "api_version", xt_vk_version_string(d->api_version, v, sizeof v));
    cJSON_AddStringToObject(o, "effective_api_version",
                            xt_vk_version_string(d->effective_api_version, v, sizeof v));
    cJSON_AddNumberToObject(o, "vendor_id", d->vendor_id);
    cJSON_AddNumberToObject(o, "device_id", d->device_id);
    cJSON_AddNumberToObject(o, "driver_id", (double)d->driver_id);
    cJSON_AddStringToObject(o, "driver_name", d->driver_name);
    cJSON_AddStringToObject(o, "driver_info", d->driver_info);
    cJSON_AddStringToObject(o, "driver_version", d->driver_version_string);
    if (d->queue_family != UINT32_MAX)
        cJSON_AddNumberToObject(o, "queue_family", d->queue_family);
    else
        cJSON_AddNullToObject(o, "queue_family");
    cJSON_AddBoolToObject(o, "portability_subset", d->portability_subset);
    cJSON_AddBoolToObject(o, "cooperative_matrix_khr", d->cooperative_matrix_khr);
    cJSON_AddBoolToObject(o, "cooperative_matrix_nv", d->cooperative_matrix_nv);

    cJSON *l = cJSON_AddObjectToObject(o, "limits");
    add_u64(l, "maxStorageBufferRange", d->limits.max_storage_buffer_range);
    add_u64(l, "maxMemoryAllocationSize", d->limits.max_memory_allocation_size);
    if (d->limits.max_buffer_size)
        add_u64(l, "maxBufferSize", d->limits.max_buffer_size);
    else
        cJSON_AddNullToObject(l, "maxBufferSize");
    cJSON_AddItemToObject(l, "maxComputeWorkGroupCount",
                          u32x3(d->limits.max_compute_work_group_count));
    cJSON_AddItemToObject(l, "maxComputeWorkGroupSize",
                          u32x3(d->limits.max_compute_work_group_size));
    add_u64(l, "maxComputeWorkGroupInvocations", d->limits.max_compute_work_group_invocations);
    add_u64(l, "maxComputeSharedMemorySize", d->limits.max_compute_shared_memory_size);
    add_u64(l, "maxPushConstantsSize", d->limits.max_push_constants_size);
    add_u64(l, "maxPerStageDescriptorStorageBuffers",
            d->limits.max_per_stage_descriptor_storage_buffers);
    add_u64(l, "minStorageBufferOffsetAlignment", d->limits.min_storage_buffer_offset_alignment);
    add_u64(l, "nonCoherentAtomSize", d->limits.non_coherent_atom_size);

    cJSON *sg = cJSON_AddObjectToObject(o, "subgroup");
    add_u64(sg, "size", d->subgroup.size);
    cJSON_AddItemToObject(sg, "supportedStages", flags_json(d->subgroup.supported_stages, stages));
    cJSON_AddItemToObject(sg, "supportedOperations",
                          flags_json(d->subgroup.supported_operations, subgroup_ops));
    add_u64(sg, "minSubgroupSize", d->subgroup.min_size);
    add_u64(sg, "maxSubgroupSize", d->subgroup.max_size);
    cJSON_AddItemToObject(sg, "requiredSubgroupSizeStages",
                          flags_json(d->subgroup.required_size_stages, stages));
    add_u64(sg, "maxComputeWorkgroupSubgroups", d->subgroup.max_compute_workgroup_subgroups);

    cJSON *ts = cJSON_AddObjectToObject(o, "timestamps");
    cJSON_AddBoolToObject(ts, "computeAndGraphics", d->timestamps.compute_and_graphics);
    cJSON_AddNumberToObject(ts, "period_ns", (double)d->timestamps.period_ns);
    cJSON_AddNumberToObject(ts, "validBits", d->timestamps.valid_bits);

    cJSON *id = cJSON_AddObjectToObject(o, "integer_dot_product_accelerated");
    cJSON_AddBoolToObject(id, "4x8BitPackedSigned", d->integer_dot.packed_4x8_signed_accelerated);
    cJSON_AddBoolToObject(id, "4x8BitPackedUnsigned",
                          d->integer_dot.packed_4x8_unsigned_accelerated);
    cJSON_AddBoolToObject(id, "4x8BitPackedMixedSignedness",
                          d->integer_dot.packed_4x8_mixed_accelerated);
    cJSON_AddBoolToObject(id, "8BitSigned", d->integer_dot.bit8_signed_accelerated);
    cJSON_AddBoolToObject(id, "8BitUnsigned", d->integer_dot.bit8_unsigned_accelerated);
    cJSON_AddBoolToObject(id, "16BitSigned", d->integer_dot.bit16_signed_accelerated);
    cJSON_AddBoolToObject(id, "AccumulatingSaturating4x8PackedSigned",
                          d->integer_dot.accumulating_saturating_4x8_packed_signed_accelerated);

    cJSON *f = cJSON_AddObjectToObject(o, "features");
    for (size_t i = 0; i < sizeof features / sizeof features[0]; i++) {
        cJSON *e = cJSON_AddObjectToObject(f, features[i].name);
        cJSON_AddBoolToObject(e, "supported", feature(&d->supported, &features[i]));
        cJSON_AddBoolToObject(e, "enabled", feature(&d->enabled, &features[i]));
    }

    cJSON *mem = cJSON_AddObjectToObject(o, "memory");
    add_u64(mem, "device_local_bytes", d->device_local_bytes);
    cJSON *heaps = cJSON_AddArrayToObject(mem, "heaps");
    for (uint32_t h = 0; h < d->heap_count; h++) {
        cJSON *e = cJSON_CreateObject();
        add_u64(e, "size_bytes", d->heaps[h].size_bytes);
        cJSON_AddItemToObject(e, "flags", flags_json(d->heaps[h].flags, heap_flags));
        cJSON_AddItemToArray(heaps, e);
    }
    cJSON *types = cJSON_AddArrayToObject(mem, "types");
    for (uint32_t t = 0; t < d->type_count; t++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "heap", d->types[t].heap);
        cJSON_AddItemToObject(e, "flags", flags_json(d->types[t].flags, type_flags));
        cJSON_AddItemToArray(types, e);
    }
    if (peak) {
        cJSON *p = cJSON_AddObjectToObject(o, "measured_peak");
        cJSON_AddNumberToObject(p, "flops_per_s", peak->flops_per_s);
        cJSON_AddNumberToObject(p, "bytes_per_s", peak->bytes_per_s);
    }
    return o;
}

/* ---- the verb -------------------------------------------------------------------------------- */

static bool parse_index(const char *s, uint32_t *out)
{
    if (!*s) return false;
    unsigned long long v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') return false;
        v = v * 10 + (unsigned long long)(*p - '0');
        if (v > UINT32_MAX) return false;
    }
    *out = (uint32_t)v;
    return true;
}

int xt_cmd_devices(int argc, char **argv)
{
    bool json = false, peak_wanted = false;
    xt_vk_desc desc = {0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            print_help(stdout);
            return XT_EXIT_OK;
        } else if (!strcmp(argv[i], "--json")) {
            json = true;
        } else if (!strcmp(argv[i], "--peak")) {
            peak_wanted = true;
        } else if (!strcmp(argv[i], "--device")) {
            if (i + 1 >= argc) return xt_cli_usage_error(verb_name, "--device needs an index");
            if (!parse_index(argv[++i], &desc.device_index))
                return xt_cli_usage_error(verb_name, "--device '%s': expected an index", argv[i]);
            desc.device_index_set = true;
        } else {
            return xt_cli_usage_error(verb_name, "unknown option '%s'", argv[i]);
        }
    }

    xt_error err = {0};
    xt_vk_instance *inst = NULL;
    if (xt_vk_instance_create(&desc, &inst, &err)) return xt_cli_fail(&err);

    /* The device a run would use; a bad selection still lists the devices, then fails. */
    uint32_t chosen = UINT32_MAX;
    xt_error select_err = {0};
    xt_status select_status = xt_vk_instance_select(inst, &desc, &chosen, &select_err);
    if (select_status) chosen = UINT32_MAX;

    xt_peak peak = {0};
    bool have_peak = false;
    int code = XT_EXIT_OK;
    if (peak_wanted && chosen != UINT32_MAX) {
        desc.device_index_set = true;
        desc.device_index = chosen;
        xt_vk_context *vk = NULL;
        if (xt_vk_context_create(&desc, &vk, &err) || xt_vk_measure_peak(vk, NULL, &peak, &err)) {
            fprintf(stderr, "expertrace devices: --peak: %s\n", err.msg);
            code = xt_status_exit_code(err.status);
        } else {
            have_peak = true;
        }
        xt_vk_context_destroy(vk);
    }

    uint32_t n = xt_vk_instance_device_count(inst);
    bool floor = xt_vk_instance_feature_level(inst) == XT_VK_FEATURES_MIN;

    char v[16];
    if (json) {
        cJSON *root = cJSON_CreateObject();
        cJSON *ji = cJSON_AddObjectToObject(root, "instance");
        cJSON_AddStringToObject(
            ji, "api_version", xt_vk_version_string(xt_vk_instance_api_version(inst), v, sizeof v));
        cJSON_AddBoolToObject(ji, "validation", xt_vk_instance_validation_active(inst));
        cJSON_AddStringToObject(ji, "features", floor ? "min" : "all");
        if (chosen != UINT32_MAX)
            cJSON_AddNumberToObject(root, "default_device", chosen);
        else
            cJSON_AddNullToObject(root, "default_device");
        cJSON *devs = cJSON_AddArrayToObject(root, "devices");
        for (uint32_t i = 0; i < n; i++)
            cJSON_AddItemToArray(devs, device_json(xt_vk_instance_device(inst, i), i == chosen,
                                                   i == chosen && have_peak ? &peak : NULL));
        char *text = cJSON_Print(root);
        if (text) {
            printf("%s\n", text);
            cJSON_free(text);
        } else {
            fprintf(stderr, "expertrace devices: out of memory writing JSON\n");
            code = XT_EXIT_INPUT;
        }
        cJSON_Delete(root);
    } else {
        printf("Vulkan instance %s, validation %s, features %s\n\n",
               xt_vk_version_string(xt_vk_instance_api_version(inst), v, sizeof v),
               xt_vk_instance_validation_active(inst) ? "on" : "off",
               floor ? "min (EXPERTRACE_FEATURES=min)" : "all");
        for (uint32_t i = 0; i < n; i++)
            print_summary_line(xt_vk_instance_device(inst, i), i == chosen);
        printf("(* default device, ! unusable)\n");
        for (uint32_t i = 0; i < n; i++)
            print_device(xt_vk_instance_device(inst, i), i == chosen, floor,
                         i == chosen && have_peak ? &peak : NULL);
    }
    xt_vk_instance_destroy(inst);
    if (select_status) {
        fprintf(stderr, "expertrace devices: %s\n", select_err.msg);
        return xt_status_exit_code(select_status);
    }
    return code;
}
