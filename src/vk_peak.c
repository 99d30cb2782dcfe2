/* Measured device peaks: fp32 FMA throughput (peak_fma.comp) and copy bandwidth
 * (peak_copy.comp), timed with GPU timestamps, best of a few runs after a warm-up. The benchmark
 * reports achieved FLOP/s and bytes/s of our kernels against these numbers.
 */
#include <string.h>

#include "vk_internal.h"

/* Mirrors the push-constant blocks of peak_fma.comp and peak_copy.comp. */
typedef struct peak_fma_push {
    uint32_t n;
    uint32_t iterations;
    float a, b;
} peak_fma_push;
_Static_assert(sizeof(peak_fma_push) == 16, "peak_fma push constants");

typedef struct peak_copy_push {
    uint32_t n;
} peak_copy_push;
_Static_assert(sizeof(peak_copy_push) == 4, "peak_copy push constants");

#define LOCAL 256u
#define FMA_PER_TRIP 32.0

xt_status xt_vk_measure_peak(xt_vk_context *ctx, const xt_peak_desc *desc, xt_peak *out,
                             xt_error *err)
{
    static const xt_peak_desc defaults = {0};
    if (!desc) desc = &defaults;
    memset(out, 0, sizeof *out);
    const xt_vk_device_info *d = &ctx->info;
    uint32_t groups = desc->fma_groups ? desc->fma_groups : 2048;
    uint32_t iterations = desc->fma_iterations ? desc->fma_iterations : 1024;
    uint32_t repeats = desc->repeats ? desc->repeats : 3;
    uint64_t copy_bytes = desc->copy_bytes ? desc->copy_bytes : 256ull << 20;
    if (copy_bytes > d->limits.max_storage_buffer_range)
        copy_bytes = d->limits.max_storage_buffer_range;
    if (copy_bytes > d->limits.max_memory_allocation_size)
        copy_bytes = d->limits.max_memory_allocation_size;
    copy_bytes = copy_bytes / 16 * 16;
    if (copy_bytes == 0) return xt_error_set(err, XT_ERR_RANGE, "peak: copy_bytes below 16");
    if (groups > d->limits.max_compute_work_group_count[0])
        groups = d->limits.max_compute_work_group_count[0];
    uint32_t copy_words = (uint32_t)(copy_bytes / 16);
    uint32_t fma_n = groups * LOCAL;

    xt_status s;
    xt_pipeline fma = {0}, copy = {0};
    xt_buffer fma_out = {0}, src = {0}, dst = {0};
    xt_cmd *cmd = NULL;
    xt_timer *timer = NULL;
    xt_spec_constant local = {.id = 0, .value = LOCAL};

    if ((s = xt_timer_create(ctx, 4, &timer, err))) goto done;
    if ((s = xt_pipeline_create(ctx,
                                &(xt_pipeline_desc){.shader = "peak_fma",
                                                    .spec = &local,
                                                    .spec_count = 1,
                                                    .push_bytes = sizeof(peak_fma_push),
                                                    .binding_count = 1},
                                &fma, err)))
        goto done;
    if ((s = xt_pipeline_create(ctx,
                                &(xt_pipeline_desc){.shader = "peak_copy",
                                                    .spec = &local,
                                                    .spec_count = 1,
                                                    .push_bytes = sizeof(peak_copy_push),
                                                    .binding_count = 2},
                                &copy, err)))
        goto done;
    if ((s = xt_buffer_create(
             ctx, &(xt_buffer_desc){.size_bytes = (VkDeviceSize)fma_n * 4, .label = "peak_fma out"},
             &fma_out, err)))
        goto done;
    if ((s = xt_buffer_create(ctx,
                              &(xt_buffer_desc){.size_bytes = copy_bytes, .label = "peak_copy src"},
                              &src, err)))
        goto done;
    if ((s = xt_buffer_create(ctx,
                              &(xt_buffer_desc){.size_bytes = copy_bytes, .label = "peak_copy dst"},
                              &dst, err)))
        goto done;
    if ((s = xt_cmd_create(ctx, &cmd, err))) goto done;

    /* Initialise the source once (copying uninitialised memory would be legal but odd). */
    if ((s = xt_cmd_begin(cmd, err))) goto done;
    xt_cmd_fill(cmd, &src, 0, copy_bytes, 0x3f800000u);
    if ((s = xt_cmd_submit_wait(cmd, err))) goto done;

    peak_fma_push fp = {.n = fma_n, .iterations = iterations, .a = 0.5f, .b = 1.0f};
    peak_copy_push cp = {.n = copy_words};
    uint32_t cg[3];
    xt_groups_1d(ctx, copy_words, LOCAL, cg);
    for (uint32_t rep = 0; rep <= repeats; rep++) { /* rep 0 is the warm-up */
        if ((s = xt_cmd_begin(cmd, err))) goto done;
        xt_timer_reset(cmd, timer);
        xt_timer_mark(cmd, timer, 0);
        if ((s = xt_dispatch(cmd, &fma, groups, 1, 1, &fp, sizeof fp,
                             (xt_binding[]){{.buffer = &fma_out}}, 1, err)))
            goto done;
        xt_timer_mark(cmd, timer, 1);
        xt_cmd_barrier(cmd, XT_BARRIER_COMPUTE_TO_COMPUTE); /* no overlap of the two */
        xt_timer_mark(cmd, timer, 2);
        if ((s = xt_dispatch(cmd, &copy, cg[0], cg[1], cg[2], &cp, sizeof cp,
                             (xt_binding[]){{.buffer = &src}, {.buffer = &dst}}, 2, err)))
            goto done;
        xt_timer_mark(cmd, timer, 3);
        if ((s = xt_cmd_submit_wait(cmd, err))) goto done;
        double fma_ns, copy_ns;
        if ((s = xt_timer_elapsed_ns(timer, 0, 1, &fma_ns, err))) goto done;
        if ((s = xt_timer_elapsed_ns(timer, 2, 3, &copy_ns, err))) goto done;
        if (rep == 0) continue;
        if (fma_ns > 0 && (out->fma_ns == 0 || fma_ns < out->fma_ns)) out->fma_ns = fma_ns;
        if (copy_ns > 0 && (out->copy_ns == 0 || copy_ns < out->copy_ns)) out->copy_ns = copy_ns;
    }
    if (out->fma_ns > 0)
        out->flops_per_s = (double)fma_n * iterations * FMA_PER_TRIP * 2.0 / (out->fma_ns * 1e-9);
    if (out->copy_ns > 0) out->bytes_per_s = 2.0 * (double)copy_bytes / (out->copy_ns * 1e-9);
    s = XT_OK;

done:
    xt_cmd_destroy(cmd);
    xt_timer_destroy(timer);
    xt_buffer_destroy(ctx, &dst);
    xt_buffer_destroy(ctx, &src);
    xt_buffer_destroy(ctx, &fma_out);
    xt_pipeline_destroy(ctx, &copy);
    xt_pipeline_destroy(ctx, &fma);
    return s;
}

/* Mirrors fma_probe.comp's push constants. */
typedef struct fma_probe_push {
    float a, b, c;
} fma_probe_push;
_Static_assert(sizeof(fma_probe_push) == 12, "fma_probe push constants");

xt_status xt_vk_fma_fused(xt_vk_context *ctx, bool *fused, xt_error *err)
{
    if (ctx->fma_fused >= 0) {
        *fused = ctx->fma_fused == 1;
        return XT_OK;
    }
    xt_status s;
    xt_pipeline p = {0};
    xt_buffer out = {0};
    xt_cmd *cmd = NULL;
    float result = 1.0f;
    if ((s = xt_pipeline_create(ctx,
                                &(xt_pipeline_desc){.shader = "fma_probe",
                                                    .push_bytes = sizeof(fma_probe_push),
                                                    .binding_count = 1},
                                &p, err)) ||
        (s = xt_buffer_create(ctx, &(xt_buffer_desc){.size_bytes = 4, .label = "fma_probe out"},
                              &out, err)) ||
        (s = xt_cmd_create(ctx, &cmd, err)) || (s = xt_cmd_begin(cmd, err)))
        goto done;
    fma_probe_push pc = {.a = 1.0f + 0x1p-12f, .b = 1.0f + 0x1p-12f, .c = -(1.0f + 0x1p-11f)};
    if ((s = xt_dispatch(cmd, &p, 1, 1, 1, &pc, sizeof pc, (xt_binding[]){{.buffer = &out}}, 1,
                         err)) ||
        (s = xt_cmd_submit_wait(cmd, err)) ||
        (s = xt_buffer_download(ctx, &out, 0, &result, 4, err)))
        goto done;
    if (result != 0x1p-24f && result != 0.0f) {
        s = xt_error_set(err, XT_ERR_DEVICE, "fma probe: the device computed %a for "
                         "fma(1 + 2^-12, 1 + 2^-12, -(1 + 2^-11)), neither fused (2^-24) nor "
                         "rounded (0)", (double)result);
        goto done;
    }
    ctx->fma_fused = result != 0.0f;
    *fused = ctx->fma_fused == 1;
done:
    xt_cmd_destroy(cmd);
    xt_buffer_destroy(ctx, &out);
    xt_pipeline_destroy(ctx, &p);
    return s;
}
