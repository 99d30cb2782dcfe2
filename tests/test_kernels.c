/* The shared GPU-op infrastructure: the pipeline cache and chunked device tensors. */
#include <stdlib.h>

#include "expertrace/quant.h"
#include "expertrace/vk.h"
#include "kernels.h"
#include "xt_test.h"

static xt_vk_context *vk;

static void pipeline_cache_should_reuse_equal_descs_and_separate_spec_constants(void)
{
    xt_error err = {0};
    xt_kernels *k;
    CHECK(xt_kernels_create(vk, &k, &err) == XT_OK);
    xt_spec_constant s64 = {0, 64}, s32 = {0, 32};
    xt_pipeline_desc d = {.shader = "axpy", .spec = &s64, .spec_count = 1, .push_bytes = 8,
                          .binding_count = 2};
    const xt_pipeline *a, *b, *c;
    CHECK(xt_kernels_pipeline(k, &d, &a, &err) == XT_OK);
    CHECK(xt_kernels_pipeline(k, &d, &b, &err) == XT_OK);
    d.spec = &s32;
    CHECK(xt_kernels_pipeline(k, &d, &c, &err) == XT_OK);
    CHECK(a == b);
    CHECK(a != c);
    CHECK(xt_kernels_pipeline_count(k) == 2);
    d.shader = "no_such_shader";
    CHECK(xt_kernels_pipeline(k, &d, &a, &err) == XT_ERR_NOT_FOUND);
    CHECK(strstr(err.msg, "no_such_shader") != NULL);
    CHECK(xt_kernels_pipeline_count(k) == 2);
    xt_kernels_destroy(k);
}

/* Downloads every chunk and compares it with the rows it should hold. */
static int chunks_hold_rows(const xt_dtensor *t, const uint8_t *src)
{
    int bad = 0;
    for (uint32_t c = 0; c < t->n_chunks; c++) {
        const xt_dtensor_chunk *ch = &t->chunks[c];
        uint64_t bytes = ch->row_count * t->row_bytes;
        CHECK(ch->buf.size_bytes % 4 == 0 && ch->buf.size_bytes >= bytes);
        uint8_t *got = malloc(ch->buf.size_bytes);
        xt_error err = {0};
        CHECK(xt_buffer_download(vk, &ch->buf, 0, got, ch->buf.size_bytes, &err) == XT_OK);
        if (memcmp(got, src + ch->row_begin * t->row_bytes, bytes)) bad++;
        for (uint64_t i = bytes; i < ch->buf.size_bytes; i++)
            if (got[i]) bad++; /* padding is zero */
        free(got);
    }
    return bad;
}

static void dtensor_should_split_into_whole_experts_within_the_chunk_limit(void)
{
    /* Q8_0 {64, 3, 5}: rows of 2 blocks = 68 bytes (not a multiple of 4), slabs of 3 rows. */
    int64_t ne[4] = {64, 3, 5, 1};
    uint64_t row_bytes = 68, rows = 15;
    uint8_t *data = malloc(rows * row_bytes);
    for (uint64_t i = 0; i < rows * row_bytes; i++) data[i] = (uint8_t)(i * 7 + 1);
    xt_error err = {0};
    xt_dtensor t;
    /* room for 7 rows: 2 whole slabs (6 rows) per chunk -> chunks of 6, 6, 3 rows */
    CHECK(xt_dtensor_create(vk, &(xt_dtensor_desc){.name = "exps", .type = XT_TYPE_Q8_0,
                                                   .ne = {ne[0], ne[1], ne[2], ne[3]},
                                                   .data = data, .data_bytes = rows * row_bytes,
                                                   .max_chunk_bytes = 7 * 68 + 3},
                            &t, &err) == XT_OK);
    CHECK(t.n_chunks == 3 && t.row_bytes == 68 && t.n_rows == 15 && !t.slabs_split);
    CHECK(t.chunks[0].row_count == 6 && t.chunks[1].row_begin == 6 && t.chunks[2].row_count == 3);
    CHECK(chunks_hold_rows(&t, data) == 0);
    uint32_t c;
    uint64_t r;
    CHECK(xt_dtensor_locate(&t, 13, &c, &r) && c == 2 && r == 1);
    CHECK(!xt_dtensor_locate(&t, 15, &c, &r));
    xt_dtensor_destroy(vk, &t);

    /* a slab larger than a chunk: whole rows, flagged */
    CHECK(xt_dtensor_create(vk, &(xt_dtensor_desc){.name = "exps", .type = XT_TYPE_Q8_0,
                                                   .ne = {ne[0], ne[1], ne[2], ne[3]},
                                                   .data = data, .data_bytes = rows * row_bytes,
                                                   .max_chunk_bytes = 2 * 68 + 3},
                            &t, &err) == XT_OK);
    CHECK(t.slabs_split && t.n_chunks == 8 && t.chunks[7].row_count == 1);
    CHECK(chunks_hold_rows(&t, data) == 0);
    xt_dtensor_destroy(vk, &t);
    free(data);
}

static void dtensor_should_reject_rows_larger_than_a_binding_and_wrong_sizes(void)
{
    xt_error err = {0};
    xt_dtensor t;
    float data[64] = {0};
    CHECK(xt_dtensor_create(vk, &(xt_dtensor_desc){.name = "wide", .type = XT_TYPE_F32,
                                                   .ne = {64, 1}, .data = data,
                                                   .data_bytes = sizeof data,
                                                   .max_chunk_bytes = 128},
                            &t, &err) == XT_ERR_RANGE);
    CHECK(strstr(err.msg, "'wide'") != NULL);
    CHECK(xt_dtensor_create(vk, &(xt_dtensor_desc){.name = "short", .type = XT_TYPE_F32,
                                                   .ne = {64, 2}, .data = data,
                                                   .data_bytes = sizeof data},
                            &t, &err) == XT_ERR_FORMAT);
    CHECK(strstr(err.msg, "'short'") != NULL);
    CHECK(xt_dtensor_create(vk, &(xt_dtensor_desc){.name = "partial", .type = XT_TYPE_Q4_K,
                                                   .ne = {100, 2}},
                            &t, &err) != XT_OK);
    CHECK(strstr(err.msg, "'partial'") != NULL);
    CHECK(t.n_chunks == 0 && t.chunks == NULL);
}

static void dtensor_without_data_should_be_zero(void)
{
    xt_error err = {0};
    xt_dtensor t;
    CHECK(xt_dtensor_create(vk, &(xt_dtensor_desc){.name = "z", .type = XT_TYPE_F16,
                                                   .ne = {6, 3}},
                            &t, &err) == XT_OK);
    uint8_t zeros[36] = {0};
    CHECK(t.n_chunks == 1 && chunks_hold_rows(&t, zeros) == 0);
    xt_dtensor_destroy(vk, &t);
}

static void indirect_dispatch_should_take_group_counts_from_the_buffer(void)
{
    xt_error err = {0};
    xt_kernels *k;
    CHECK(xt_kernels_create(vk, &k, &err) == XT_OK);
    const xt_pipeline *p;
    xt_spec_constant wg = {0, 64};
    CHECK(xt_kernels_pipeline(k, &(xt_pipeline_desc){.shader = "axpy", .spec = &wg,
                                                      .spec_count = 1, .push_bytes = 8,
                                                      .binding_count = 2},
                              &p, &err) == XT_OK);
    enum { N = 1000 };
    float x[N], y[N];
    for (int i = 0; i < N; i++) x[i] = (float)i, y[i] = 1.0f;
    xt_buffer bx, by, args;
    CHECK(xt_buffer_create(vk, &(xt_buffer_desc){.size_bytes = sizeof x}, &bx, &err) == XT_OK);
    CHECK(xt_buffer_create(vk, &(xt_buffer_desc){.size_bytes = sizeof y}, &by, &err) == XT_OK);
    CHECK(xt_buffer_create(vk, &(xt_buffer_desc){.size_bytes = 32}, &args, &err) == XT_OK);
    /* 5 groups of 64 = 320 elements: the rest of y keeps its value */
    uint32_t cmdargs[8] = {0, 0, 0, 0, 5, 1, 1, 0};
    CHECK(xt_buffer_upload(vk, &bx, 0, x, sizeof x, &err) == XT_OK);
    CHECK(xt_buffer_upload(vk, &by, 0, y, sizeof y, &err) == XT_OK);
    CHECK(xt_buffer_upload(vk, &args, 0, cmdargs, sizeof cmdargs, &err) == XT_OK);
    struct {
        uint32_t n;
        float a;
    } push = {N, 2.0f};
    xt_binding b[2] = {{.buffer = &bx}, {.buffer = &by}};
    xt_cmd *cmd;
    CHECK(xt_cmd_create(vk, &cmd, &err) == XT_OK);
    CHECK(xt_cmd_begin(cmd, &err) == XT_OK);
    CHECK(xt_dispatch_indirect(cmd, p, &args, 16, &push, sizeof push, b, 2, &err) == XT_OK);
    CHECK(xt_dispatch_indirect(cmd, p, &args, 18, &push, sizeof push, b, 2, &err) ==
          XT_ERR_RANGE);
    CHECK(xt_dispatch_indirect(cmd, p, &args, 24, &push, sizeof push, b, 2, &err) ==
          XT_ERR_RANGE);
    CHECK(xt_cmd_submit_wait(cmd, &err) == XT_OK);
    CHECK(xt_buffer_download(vk, &by, 0, y, sizeof y, &err) == XT_OK);
    int bad = 0;
    for (int i = 0; i < N; i++) bad += y[i] != (i < 320 ? 2.0f * (float)i + 1.0f : 1.0f);
    CHECK_MSG(bad == 0, "%d elements wrong", bad);
    xt_cmd_destroy(cmd);
    xt_buffer_destroy(vk, &bx);
    xt_buffer_destroy(vk, &by);
    xt_buffer_destroy(vk, &args);
    xt_kernels_destroy(k);
}

static void validation_layer_should_report_no_messages(void)
{
    xt_vk_context_destroy(vk); /* leaked objects are reported at device destruction */
    vk = NULL;
    uint32_t msgs = xt_vk_validation_messages_total();
    CHECK_MSG(msgs == 0, "%u validation messages", msgs);
}

int main(void)
{
    xt_error err = {0};
    if (xt_vk_context_create(&(xt_vk_desc){0}, &vk, &err)) {
        fprintf(stderr, "no Vulkan device: %s\n", err.msg);
        return 1;
    }
    RUN(pipeline_cache_should_reuse_equal_descs_and_separate_spec_constants);
    RUN(dtensor_should_split_into_whole_experts_within_the_chunk_limit);
    RUN(dtensor_should_reject_rows_larger_than_a_binding_and_wrong_sizes);
    RUN(dtensor_without_data_should_be_zero);
    RUN(indirect_dispatch_should_take_group_counts_from_the_buffer);
    RUN(validation_layer_should_report_no_messages);
    return xt_test_finish();
}
