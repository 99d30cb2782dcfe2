/* expertrace bench [--ops matmul,attn,moe] [--tokens 1,16,256,2048] [--types q4_K,q8_0,...]
 * [--repeats N] [--device N]: op micro-benchmarks at Qwen3-30B-A3B layer shapes with GPU
 * timestamps, printed next to the device's measured peak FP32 FLOP/s and copy bytes/s. Figures,
 * not pass/fail: each family's rows come from its xt_bench_* function (bench.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cli.h"
#include "expertrace/quant.h"
#include "expertrace/vk.h"
#include "kernels.h"

static const char *const verb_name = "bench";

enum { MAX_LIST = 32 };

static void print_help(FILE *f)
{
    fprintf(f, "usage: expertrace bench [--ops LIST] [--tokens LIST] [--types LIST] [--repeats N]\n"
               "                        [--device N]\n\n"
               "Times the GPU ops at Qwen3-30B-A3B layer shapes (n_embd 2048, 128 experts top-8,\n"
               "n_ff_exp 768, vocab 151936) and prints GFLOP/s and GB/s next to the device's\n"
               "measured peak.\n\n"
               "  --ops LIST      comma-separated families: matmul, attn, moe (default: all)\n"
               "  --tokens LIST   token counts (default: 1,16,256,2048)\n"
               "  --types LIST    weight types for matmul, e.g. q4_K,q6_K,q8_0 (the default)\n"
               "  --repeats N     timed runs per row, median reported (default: 3)\n"
               "  --device N      Vulkan device index (default: the best; see 'expertrace devices')\n"
               "  --help          this text\n");
}

/* Splits a comma-separated list in place; returns the count, or -1 when it has more than max
 * items or an empty one. */
static int split_list(char *s, char **items, int max)
{
    int n = 0;
    for (char *p = s;; p++) {
        char *comma = strchr(p, ',');
        if (comma) *comma = '\0';
        if (!*p || n == max) return -1;
        items[n++] = p;
        if (!comma) return n;
        p = comma;
    }
}

static bool type_by_name(const char *name, uint32_t *out)
{
    for (uint32_t t = 0; t < XT_TYPE_COUNT; t++) {
        const xt_type_traits *tr = xt_type_get_traits(t);
        if (tr && !strcmp(tr->name, name)) {
            *out = t;
            return true;
        }
    }
    return false;
}

int xt_cmd_bench(int argc, char **argv)
{
    bool want_matmul = true, want_attn = true, want_moe = true;
    uint32_t tokens[MAX_LIST] = {1, 16, 256, 2048}, n_tokens = 4;
    uint32_t types[MAX_LIST], n_types = 0, repeats = 3;
    /* a 2048-token attention prefill or MoE block is one long dispatch on a CPU device such as
     * lavapipe (minutes): wait longer than the library's default minute */
    xt_vk_desc desc = {.timeout_ns = 30ull * 60 * 1000000000ull};
    char *items[MAX_LIST];
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        if (!strcmp(opt, "--help") || !strcmp(opt, "-h")) {
            print_help(stdout);
            return XT_EXIT_OK;
        }
        bool takes_value = !strcmp(opt, "--ops") || !strcmp(opt, "--tokens") ||
                           !strcmp(opt, "--types") || !strcmp(opt, "--repeats") ||
                           !strcmp(opt, "--device");
        if (!takes_value) return xt_cli_usage_error(verb_name, "unknown option '%s'", opt);
        if (i + 1 >= argc) return xt_cli_usage_error(verb_name, "%s needs a value", opt);
        char *val = argv[++i];
        if (!strcmp(opt, "--repeats")) {
            if (!xt_cli_parse_u32(val, &repeats) || repeats == 0 || repeats > 1000)
                return xt_cli_usage_error(verb_name, "--repeats '%s': expected 1..1000", val);
        } else if (!strcmp(opt, "--device")) {
            if (!xt_cli_parse_u32(val, &desc.device_index))
                return xt_cli_usage_error(verb_name, "--device '%s': expected an index", val);
            desc.device_index_set = true;
        } else {
            int n = split_list(val, items, MAX_LIST);
            if (n < 0)
                return xt_cli_usage_error(verb_name, "%s '%s': expected a comma-separated list "
                                          "of at most %d items", opt, val, MAX_LIST);
            if (!strcmp(opt, "--ops")) {
                want_matmul = want_attn = want_moe = false;
                for (int j = 0; j < n; j++) {
                    if (!strcmp(items[j], "matmul")) want_matmul = true;
                    else if (!strcmp(items[j], "attn")) want_attn = true;
                    else if (!strcmp(items[j], "moe")) want_moe = true;
                    else
                        return xt_cli_usage_error(verb_name, "--ops: unknown family '%s' "
                                                  "(matmul, attn, moe)", items[j]);
                }
            } else if (!strcmp(opt, "--tokens")) {
                for (int j = 0; j < n; j++)
                    if (!xt_cli_parse_u32(items[j], &tokens[j]) || tokens[j] == 0 || tokens[j] > 65536)
                        return xt_cli_usage_error(verb_name, "--tokens: '%s' is not a count in "
                                                  "1..65536", items[j]);
                n_tokens = (uint32_t)n;
            } else {
                for (int j = 0; j < n; j++) {
                    if (!type_by_name(items[j], &types[j]))
                        return xt_cli_usage_error(verb_name, "--types: unknown type '%s'",
                                                  items[j]);
                }
                n_types = (uint32_t)n;
            }
        }
    }

    xt_error err = {0};
    xt_vk_context *vk = NULL;
    xt_kernels *k = NULL;
    xt_bench b = {.out = stdout, .repeats = repeats, .tokens = tokens, .n_tokens = n_tokens,
                  .types = types, .n_types = n_types};
    int rc = XT_EXIT_OK;
    if (xt_vk_context_create(&desc, &vk, &err) || xt_kernels_create(vk, &k, &err) ||
        xt_vk_measure_peak(vk, NULL, &b.peak, &err)) {
        rc = xt_cli_fail(&err);
        goto done;
    }
    b.k = k;
    printf("device: %s\n", xt_vk_context_info(vk)->name);
    xt_bench_header(&b);
    if ((want_matmul && xt_bench_matmul(&b, &err)) || (want_attn && xt_bench_attn(&b, &err)) ||
        (want_moe && xt_bench_moe(&b, &err)))
        rc = xt_cli_fail(&err);
done:
    xt_kernels_destroy(k);
    xt_vk_context_destroy(vk);
    return rc;
}
