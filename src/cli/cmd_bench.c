/* expertrace bench [--ops matmul,attn,moe] [--tokens 1,16,256,2048] [--types q4_K,q8_0,...]
 * [--repeats N] [--device N]: op micro-benchmarks at Qwen3-30B-A3B layer shapes with GPU
 * timestamps, printed next to the device's measured peak FP32 FLOP/s and copy bytes/s. Figures,
 * not pass/fail: each family's rows come from its xt_bench_* function (bench.h).
 *
 * expertrace bench --ops forward --model FILE.gguf [--workloads batch64x16,prefill512]
 * [--tokens-file OUT_PREFIX.json] [--backend gpu|cpu] [--repeats N] [--json]: the whole forward
 * pass's tokens/s (xt_bench_forward), on the ids tests/reference/bench_llama.py gave llama.cpp.
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
               "                        [--device N]\n"
               "       expertrace bench --ops forward --model FILE.gguf [--workloads LIST]\n"
               "                        [--tokens-file FILE.json] [--backend gpu|cpu] [--repeats N]\n"
               "                        [--json] [--device N]\n\n"
               "Times the GPU ops at Qwen3-30B-A3B layer shapes (n_embd 2048, 128 experts top-8,\n"
               "n_ff_exp 768, vocab 151936) and prints GFLOP/s and GB/s next to the device's\n"
               "measured peak. The forward family times whole forward passes of a model instead:\n"
               "N prompts x M tokens in one submission, last-position logits of each prompt,\n"
               "wall-clock after a warm-up run, tokens/s of the best and the median run.\n\n"
               "  --ops LIST      comma-separated families: matmul, attn, moe, forward\n"
               "                  (default: matmul,attn,moe)\n"
               "  --tokens LIST   token counts (default: 1,16,256,2048)\n"
               "  --types LIST    weight types for matmul, e.g. q4_K,q6_K,q8_0 (the default)\n"
               "  --repeats N     timed runs per row, median reported (default: 3)\n"
               "  --device N      Vulkan device index (default: the best; see 'expertrace devices')\n"
               "  --model FILE    forward: the GGUF model\n"
               "  --workloads L   forward: batchNxM (N prompts of M tokens) and prefillM\n"
               "                  (default: batch64x16,prefill512)\n"
               "  --tokens-file F forward: token ids from bench_llama.py's OUT_PREFIX.json\n"
               "                  (\"prompts\": {workload: [[ids]]}); default: a fixed seed\n"
               "  --backend B     forward: gpu (default) or cpu (the reference ops)\n"
               "  --json          forward: one JSON object instead of the table\n"
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
    bool want_matmul = true, want_attn = true, want_moe = true, want_forward = false;
    bool json = false;
    const char *model_path = NULL, *tokens_file = NULL;
    const char *workloads[MAX_LIST] = {"batch64x16", "prefill512"};
    uint32_t n_workloads = 2;
    xt_backend backend = XT_BACKEND_GPU;
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
        if (!strcmp(opt, "--json")) {
            json = true;
            continue;
        }
        bool takes_value = !strcmp(opt, "--ops") || !strcmp(opt, "--tokens") ||
                           !strcmp(opt, "--types") || !strcmp(opt, "--repeats") ||
                           !strcmp(opt, "--device") || !strcmp(opt, "--model") ||
                           !strcmp(opt, "--workloads") || !strcmp(opt, "--tokens-file") ||
                           !strcmp(opt, "--backend");
        if (!takes_value) return xt_cli_usage_error(verb_name, "unknown option '%s'", opt);
        if (i + 1 >= argc) return xt_cli_usage_error(verb_name, "%s needs a value", opt);
        char *val = argv[++i];
        if (!strcmp(opt, "--model")) {
            model_path = val;
        } else if (!strcmp(opt, "--tokens-file")) {
            tokens_file = val;
        } else if (!strcmp(opt, "--backend")) {
            if (!strcmp(val, "gpu")) backend = XT_BACKEND_GPU;
            else if (!strcmp(val, "cpu")) backend = XT_BACKEND_CPU;
            else return xt_cli_usage_error(verb_name, "--backend is gpu or cpu, not '%s'", val);
        } else if (!strcmp(opt, "--repeats")) {
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
                want_matmul = want_attn = want_moe = want_forward = false;
                for (int j = 0; j < n; j++) {
                    if (!strcmp(items[j], "matmul")) want_matmul = true;
                    else if (!strcmp(items[j], "attn")) want_attn = true;
                    else if (!strcmp(items[j], "moe")) want_moe = true;
                    else if (!strcmp(items[j], "forward")) want_forward = true;
                    else
                        return xt_cli_usage_error(verb_name, "--ops: unknown family '%s' "
                                                  "(matmul, attn, moe, forward)", items[j]);
                }
            } else if (!strcmp(opt, "--workloads")) {
                for (int j = 0; j < n; j++) {
                    uint32_t ns, nt;
                    if (!xt_bench_fwd_parse_workload(items[j], &ns, &nt))
                        return xt_cli_usage_error(verb_name, "--workloads: '%s' is not batchNxM "
                                                  "or prefillM", items[j]);
                    workloads[j] = items[j];
                }
                n_workloads = (uint32_t)n;
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

    bool want_ops = want_matmul || want_attn || want_moe;
    if (want_forward && !model_path)
        return xt_cli_usage_error(verb_name, "--ops forward needs --model FILE.gguf");
    if (!want_forward && (model_path || tokens_file || json))
        return xt_cli_usage_error(verb_name, "--model, --tokens-file and --json belong to "
                                  "--ops forward");
    if (json && want_ops)
        return xt_cli_usage_error(verb_name, "--json: only with --ops forward alone");

    xt_error err = {0};
    xt_vk_context *vk = NULL;
    xt_kernels *k = NULL;
    xt_bench b = {.out = stdout, .repeats = repeats, .tokens = tokens, .n_tokens = n_tokens,
                  .types = types, .n_types = n_types};
    int rc = XT_EXIT_OK;
    bool need_vk = want_ops || backend == XT_BACKEND_GPU, have_peak = false;
    if (need_vk && xt_vk_context_create(&desc, &vk, &err)) {
        rc = xt_cli_fail(&err);
        goto done;
    }
    if (need_vk) {
        have_peak = !xt_vk_measure_peak(vk, NULL, &b.peak, &err);
        /* the op families need the peak (and its timestamps); the forward only reports it */
        if (!have_peak && want_ops) {
            rc = xt_cli_fail(&err);
            goto done;
        }
        xt_error_clear(&err);
    }
    if (want_ops) {
        if (xt_kernels_create(vk, &k, &err)) {
            rc = xt_cli_fail(&err);
            goto done;
        }
        b.k = k;
        printf("device: %s\n", xt_vk_context_info(vk)->name);
        xt_bench_header(&b);
        if ((want_matmul && xt_bench_matmul(&b, &err)) ||
            (want_attn && xt_bench_attn(&b, &err)) || (want_moe && xt_bench_moe(&b, &err))) {
            rc = xt_cli_fail(&err);
            goto done;
        }
    }
    if (want_forward &&
        xt_bench_forward(&(xt_bench_fwd_desc){.model_path = model_path, .tokens_file = tokens_file,
                                              .workloads = workloads, .n_workloads = n_workloads,
                                              .backend = backend,
                                              .vk = backend == XT_BACKEND_GPU ? vk : NULL,
                                              .peak = have_peak && backend == XT_BACKEND_GPU
                                                          ? &b.peak
                                                          : NULL,
                                              .repeats = repeats, .json = json, .out = stdout},
                         &err))
        rc = xt_cli_fail(&err);
done:
    xt_kernels_destroy(k);
    xt_vk_context_destroy(vk);
    return rc;
}
