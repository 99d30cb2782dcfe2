/* expertrace trace [MODEL.gguf] [--facts FILE] [-o DIR] [options]: the tracing protocol
 * (src/trace.h) on a model and a facts file; with neither, on the default model and facts in the
 * repository's assets/ (EXPERTRACE_ASSETS overrides where they are looked for).
 *
 * expertrace compare A B [--tol X]: two result directories, case by case (trace_compare.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "expertrace/model.h"
#include "expertrace/vk.h"
#include "forward.h"
#include "trace.h"
#include "util.h"

#ifndef XT_ASSETS_DIR
#define XT_ASSETS_DIR "assets"
#endif

static void print_help(void)
{
    printf(
        "usage: expertrace trace [MODEL.gguf] [--facts FILE] [-o DIR] [options]\n\n"
        "Expert-aware causal tracing (DESIGN.md §4): noise the subject, patch the clean MoE-block\n"
        "output of each layer at the final position (layer sweep), then each routed expert's\n"
        "update at the selected layer (expert pass), with controls, coalitions and statistics.\n"
        "Without MODEL and --facts: the default model and facts in assets/.\n\n"
        "  --facts FILE          CounterFact JSON / JSONL, or ROME's known_1000.json\n"
        "  -o, --out DIR         results directory (default expertrace-results); a rerun with\n"
        "                        the same arguments resumes from what is there\n"
        "  --cases FILE          use these case ids (a list, or {discovery, validation})\n"
        "  --cases-key NAME      the key holding them in FILE (the paper's file is keyed by model)\n"
        "  --n N                 cases to select (default 256); --discovery N of them (N/2)\n"
        "  --filter MODE         strict (Δ_clean >= 1, drop >= 0.5; default), relaxed, none\n"
        "  --noise-scale K       σ = K × std (default 3)\n"
        "  --noise-std WHAT      embedding (the whole matrix; default) or subject (ROME)\n"
        "  --draws S             noise draws per case (default 1)\n"
        "  --seed N              noise seed (default 0); --shuffle-seed N (0); --stats-seed N (0)\n"
        "  --bos auto|on|off     BOS token (default auto: as the vocabulary says)\n"
        "  --layer L             force the layer instead of selecting it\n"
        "  --experts E1,E2,...   force the expert (the first) and report the others too\n"
        "  --bootstrap B         resamples for CIs (default 5000); --flips F sign flips (10000)\n"
        "  --rome N              ROME-style position x layer grids for the first N cases\n"
        "  --rome-window W       layers per attention / MoE restoration window (default 10)\n"
        "  --rome-metric M       delta (logit true - foil; default) or p-true (softmax, ROME's)\n"
        "  --full-recompute      every patch as a full prefill (the checking path)\n"
        "  --batch-tokens N      tokens per submission (default 512)\n"
        "  --backend gpu|cpu     the Vulkan device (default) or the CPU reference ops\n"
        "  --device N            Vulkan device index (see 'expertrace devices')\n"
        "  --quiet               no summary on stdout; --no-progress: no progress bar\n");
}

static bool parse_experts(const char *s, xt_trace_opts *o)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", s);
    o->n_forced_experts = 0;
    for (char *t = strtok(buf, ","); t; t = strtok(NULL, ",")) {
        uint32_t e;
        if (o->n_forced_experts == XT_TRACE_MAX_FORCED_EXPERTS || !xt_cli_parse_u32(t, &e))
            return false;
        o->forced_experts[o->n_forced_experts++] = e;
    }
    return o->n_forced_experts > 0;
}

static bool parse_double(const char *s, double *out)
{
    char *end;
    *out = strtod(s, &end);
    return end != s && !*end && *out >= 0 && *out < 1e6;
}

static bool file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* assets/<name>: $EXPERTRACE_ASSETS, the source tree's assets/, then ./assets. */
static const char *default_asset(const char *name, char *buf, size_t cap)
{
    const char *dirs[3] = {getenv("EXPERTRACE_ASSETS"), XT_ASSETS_DIR, "assets"};
    for (int i = 0; i < 3; i++) {
        if (!dirs[i]) continue;
        snprintf(buf, cap, "%s/%s", dirs[i], name);
        if (file_exists(buf)) return buf;
    }
    return NULL;
}

int xt_cmd_trace(int argc, char **argv)
{
    static const char *const verb = "trace";
    xt_trace_opts o;
    xt_trace_opts_init(&o);
    const char *model_path = NULL;
    uint32_t device = 0;
    bool device_set = false, no_progress = false;
    xt_backend backend = XT_BACKEND_GPU;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool hv = i + 1 < argc;
        uint32_t u;
        double d;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            print_help();
            return XT_EXIT_OK;
        } else if (!strcmp(a, "--facts") && hv) {
            o.facts_path = argv[++i];
        } else if ((!strcmp(a, "-o") || !strcmp(a, "--out")) && hv) {
            o.out_dir = argv[++i];
        } else if (!strcmp(a, "--cases") && hv) {
            o.cases_path = argv[++i];
        } else if (!strcmp(a, "--cases-key") && hv) {
            o.cases_key = argv[++i];
        } else if ((!strcmp(a, "--n") || !strcmp(a, "--discovery") || !strcmp(a, "--draws") ||
                    !strcmp(a, "--seed") || !strcmp(a, "--shuffle-seed") ||
                    !strcmp(a, "--stats-seed") || !strcmp(a, "--layer") ||
                    !strcmp(a, "--bootstrap") || !strcmp(a, "--flips") || !strcmp(a, "--rome") ||
                    !strcmp(a, "--rome-window") || !strcmp(a, "--batch-tokens") ||
                    !strcmp(a, "--device")) &&
                   hv) {
            if (!xt_cli_parse_u32(argv[++i], &u))
                return xt_cli_usage_error(verb, "%s wants a non-negative integer, not '%s'", a,
                                          argv[i]);
            if (!strcmp(a, "--n")) o.n_cases = u;
            else if (!strcmp(a, "--discovery")) o.n_discovery = u;
            else if (!strcmp(a, "--draws")) o.draws = u;
            else if (!strcmp(a, "--seed")) o.noise_seed = u;
            else if (!strcmp(a, "--shuffle-seed")) o.shuffle_seed = u;
            else if (!strcmp(a, "--stats-seed")) o.stats_seed = u;
            else if (!strcmp(a, "--layer")) o.layer = (int32_t)u;
            else if (!strcmp(a, "--bootstrap")) o.bootstrap = u;
            else if (!strcmp(a, "--flips")) o.flips = u;
            else if (!strcmp(a, "--rome")) o.rome_cases = u;
            else if (!strcmp(a, "--rome-window")) o.rome_window = u;
            else if (!strcmp(a, "--batch-tokens")) o.batch_tokens = u;
            else {
                device = u;
                device_set = true;
            }
            if ((!strcmp(a, "--n") || !strcmp(a, "--draws") || !strcmp(a, "--batch-tokens") ||
                 !strcmp(a, "--rome-window") || !strcmp(a, "--bootstrap")) &&
                u == 0)
                return xt_cli_usage_error(verb, "%s must be positive", a);
            if (o.layer > 100000) return xt_cli_usage_error(verb, "--layer %u is absurd", u);
        } else if (!strcmp(a, "--noise-scale") && hv) {
            if (!parse_double(argv[++i], &d))
                return xt_cli_usage_error(verb, "--noise-scale wants a number >= 0, not '%s'",
                                          argv[i]);
            o.noise_scale = d;
        } else if (!strcmp(a, "--noise-std") && hv) {
            const char *v = argv[++i];
            if (!strcmp(v, "embedding")) o.noise_std = XT_NOISE_STD_EMBEDDING;
            else if (!strcmp(v, "subject")) o.noise_std = XT_NOISE_STD_SUBJECT;
            else return xt_cli_usage_error(verb, "--noise-std is embedding or subject, not '%s'", v);
        } else if (!strcmp(a, "--rome-metric") && hv) {
            const char *v = argv[++i];
            if (!strcmp(v, "delta")) o.rome_metric = XT_ROME_METRIC_DELTA;
            else if (!strcmp(v, "p-true")) o.rome_metric = XT_ROME_METRIC_PROB;
            else return xt_cli_usage_error(verb, "--rome-metric is delta or p-true, not '%s'", v);
        } else if (!strcmp(a, "--filter") && hv) {
            const char *v = argv[++i];
            if (!strcmp(v, "strict")) o.filter = XT_FILTER_STRICT;
            else if (!strcmp(v, "relaxed")) o.filter = XT_FILTER_RELAXED;
            else if (!strcmp(v, "none")) o.filter = XT_FILTER_NONE;
            else return xt_cli_usage_error(verb, "--filter is strict, relaxed or none, not '%s'", v);
        } else if (!strcmp(a, "--experts") && hv) {
            if (!parse_experts(argv[++i], &o))
                return xt_cli_usage_error(verb, "--experts wants comma-separated expert ids, not '%s'",
                                          argv[i]);
        } else if (!strcmp(a, "--bos") && hv) {
            if (!xt_bos_mode_parse(argv[++i], &o.bos))
                return xt_cli_usage_error(verb, "--bos is auto, on or off, not '%s'", argv[i]);
        } else if (!strcmp(a, "--backend") && hv) {
            const char *b = argv[++i];
            if (!strcmp(b, "gpu")) backend = XT_BACKEND_GPU;
            else if (!strcmp(b, "cpu")) backend = XT_BACKEND_CPU;
            else return xt_cli_usage_error(verb, "--backend is gpu or cpu, not '%s'", b);
        } else if (!strcmp(a, "--full-recompute")) {
            o.full_recompute = true;
        } else if (!strcmp(a, "--quiet")) {
            o.quiet = true;
        } else if (!strcmp(a, "--no-progress")) {
            no_progress = true;
        } else if (a[0] == '-' && a[1]) {
            return xt_cli_usage_error(verb, "unknown option or missing value: '%s'", a);
        } else if (!model_path) {
            model_path = a;
        } else {
            return xt_cli_usage_error(verb, "unexpected argument '%s'", a);
        }
    }
    char mbuf[4096], fbuf[4096];
    if (!model_path && !o.facts_path) {
        model_path = default_asset("default-model.gguf", mbuf, sizeof mbuf);
        o.facts_path = default_asset("facts.json", fbuf, sizeof fbuf);
        if (!model_path || !o.facts_path) {
            fprintf(stderr, "expertrace trace: no model given and the default model / facts "
                            "(assets/default-model.gguf, assets/facts.json) were not found; set "
                            "EXPERTRACE_ASSETS to the repository's assets directory\n");
            return XT_EXIT_INPUT;
        }
    }
    if (!model_path) return xt_cli_usage_error(verb, "no model file given");
    if (!o.facts_path) return xt_cli_usage_error(verb, "no --facts file given");
    if (o.n_discovery >= o.n_cases && o.n_discovery)
        return xt_cli_usage_error(verb, "--discovery must be less than --n");
    o.progress = !no_progress && isatty(2);

    xt_error err = {0};
    xt_model *m = NULL;
    xt_vk_context *vk = NULL;
    xt_fwd *f = NULL;
    int rc = XT_EXIT_OK;
    char dev[512] = "", drv[600] = "", feat[300] = "";
    if (xt_model_open(model_path, &m, &err)) goto fail;
    if (backend == XT_BACKEND_GPU) {
        /* a CPU Vulkan device takes minutes for one batch of a real-shape model */
        if (xt_vk_context_create(&(xt_vk_desc){.device_index_set = device_set,
                                               .device_index = device,
                                               .timeout_ns = 1800ull * 1000000000ull},
                                 &vk, &err))
            goto fail;
        const xt_vk_device_info *in = xt_vk_context_info(vk);
        snprintf(dev, sizeof dev, "%s", in->name);
        snprintf(drv, sizeof drv, "%s %s", in->driver_name, in->driver_info);
        snprintf(feat, sizeof feat, "%s%s%s%s%s", getenv("EXPERTRACE_FEATURES") ? "min" : "default",
                 in->enabled.subgroup_arithmetic ? " subgroup_arithmetic" : "",
                 in->enabled.subgroup_ballot ? " subgroup_ballot" : "",
                 in->enabled.shader_float16 ? " float16" : "", in->enabled.uma ? " uma" : "");
    } else {
        snprintf(dev, sizeof dev, "cpu (reference ops)");
    }
    o.device_name = dev;
    o.driver = drv;
    o.features = feat;
    o.backend_name = backend == XT_BACKEND_GPU ? "gpu" : "cpu";
    xt_fwd_desc fd;
    xt_trace_fwd_desc(m, &o, &fd);
    fd.backend = backend;
    fd.vk = vk;
    if (xt_fwd_create(&fd, &f, &err)) goto fail;
    double t0 = xt_now_s();
    if (xt_trace_run(m, f, &o, &err)) goto fail;
    if (!o.quiet) printf("wall time %.1f s (model loaded, device set up before)\n", xt_now_s() - t0);
    goto done;
fail:
    rc = xt_cli_fail(&err);
done:
    xt_fwd_destroy(f);
    xt_vk_context_destroy(vk);
    xt_model_close(m);
    return rc;
}

int xt_cmd_compare(int argc, char **argv)
{
    static const char *const verb = "compare";
    const char *dirs[2] = {NULL, NULL};
    double tol = 1e-3;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: expertrace compare DIR_A DIR_B [--tol X]\n\n"
                   "Checks two trace result directories case by case: the same cases and split,\n"
                   "the same selected layer and expert, the same routed experts, and every Δ and\n"
                   "rescue within X (absolute, default 1e-3). Prints each difference; exit 0 when\n"
                   "they agree, 1 when they differ.\n");
            return XT_EXIT_OK;
        } else if (!strcmp(a, "--tol") && i + 1 < argc) {
            if (!parse_double(argv[++i], &tol))
                return xt_cli_usage_error(verb, "--tol wants a number >= 0, not '%s'", argv[i]);
        } else if (a[0] == '-' && a[1]) {
            return xt_cli_usage_error(verb, "unknown option or missing value: '%s'", a);
        } else if (!dirs[0]) {
            dirs[0] = a;
        } else if (!dirs[1]) {
            dirs[1] = a;
        } else {
            return xt_cli_usage_error(verb, "unexpected argument '%s'", a);
        }
    }
    if (!dirs[1]) return xt_cli_usage_error(verb, "give two result directories");
    xt_error err = {0};
    bool same = false;
    if (xt_trace_compare(dirs[0], dirs[1], tol, stdout, &same, &err)) return xt_cli_fail(&err);
    return same ? XT_EXIT_OK : XT_EXIT_INPUT;
}
