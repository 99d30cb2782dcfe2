/* expertrace: the command-line front end. Verbs live in cmd_*.c; this file dispatches and owns
 * the shared error printing. Only the CLI decides to exit; the library returns statuses. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

typedef struct verb {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} verb;

static const verb verbs[] = {
    {"bench", xt_cmd_bench, "time the GPU ops at Qwen3-30B-A3B shapes against the device's peak"},
    {"compare", xt_cmd_compare, "check two trace results case by case (two GPUs, or GPU vs CPU)"},
    {"devices", xt_cmd_devices, "list Vulkan devices, their limits and the features we use"},
    {"info", xt_cmd_info, "describe a GGUF model: architecture, hyper-parameters, tensors"},
    {"report", xt_cmd_report, "an HTML page with the figures and tables of a trace's results"},
    {"run", xt_cmd_run, "one forward pass: top next tokens, logits, routing per layer"},
    {"tokenize", xt_cmd_tokenize, "show the ids and pieces the model's tokenizer gives for a text"},
    {"trace", xt_cmd_trace, "expert-aware causal tracing of facts: layer sweep, expert pass, tables"},
};

static void print_usage(FILE *f)
{
    fprintf(f, "usage: expertrace <verb> [options]\n\nverbs:\n");
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        fprintf(f, "  %-10s %s\n", verbs[i].name, verbs[i].summary);
    fprintf(f, "\n'expertrace <verb> --help' describes a verb's options.\n"
               "exit codes: 0 ok, 1 bad input, 2 usage, 3 device error\n");
}

bool xt_cli_parse_u32(const char *s, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || v > UINT32_MAX || s[0] == '-') return false;
    *out = (uint32_t)v;
    return true;
}

int xt_cli_fail(const xt_error *err)
{
    fprintf(stderr, "expertrace: %s\n", err->msg[0] ? err->msg : xt_status_to_string(err->status));
    return xt_status_exit_code(err->status);
}

int xt_cli_usage_error(const char *verb_name, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "expertrace %s: ", verb_name);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(see 'expertrace %s --help')\n", verb_name);
    va_end(ap);
    return XT_EXIT_USAGE;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_usage(stderr);
        return XT_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        print_usage(stdout);
        return XT_EXIT_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("expertrace 0.1.0\n");
        return XT_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (!strcmp(argv[1], verbs[i].name)) return verbs[i].run(argc - 1, argv + 1);
    fprintf(stderr, "expertrace: unknown verb '%s'\n\n", argv[1]);
    print_usage(stderr);
    return XT_EXIT_USAGE;
}
