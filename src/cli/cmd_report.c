/* expertrace report RESULTS_DIR [-o FILE]: one self-contained HTML page (inline SVG and CSS,
 * nothing fetched) from the summary.json and cases.jsonl that 'expertrace trace' wrote
 * (src/report.h). */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "report.h"

static void print_help(void)
{
    printf("usage: expertrace report RESULTS_DIR [-o FILE]\n\n"
           "Writes one self-contained HTML page (inline SVG figures and CSS, no scripts, nothing\n"
           "fetched) from RESULTS_DIR/summary.json and, when present, RESULTS_DIR/cases.jsonl:\n"
           "the layer sweep with 95%% CIs (discovery and validation, the selected layer marked),\n"
           "the selected expert against its controls, the discovery ranking of experts, the\n"
           "coalition table, ROME-style heatmaps (trace --rome), per-case details, settings and\n"
           "the device.\n\n"
           "  -o, --out FILE   the page (default RESULTS_DIR/report.html; '-' for stdout)\n");
}

int xt_cmd_report(int argc, char **argv)
{
    static const char *const verb = "report";
    const char *dir = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            print_help();
            return XT_EXIT_OK;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--out")) {
            if (i + 1 >= argc) return xt_cli_usage_error(verb, "%s wants a file name", a);
            out = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            return xt_cli_usage_error(verb, "unknown option '%s'", a);
        } else if (!dir) {
            dir = a;
        } else {
            return xt_cli_usage_error(verb, "one results directory, not also '%s'", a);
        }
    }
    if (!dir) return xt_cli_usage_error(verb, "which results directory? (written by 'trace -o')");
    char def[4096];
    if (!out) {
        snprintf(def, sizeof def, "%s/report.html", dir);
        out = def;
    }
    xt_error err = {0};
    size_t bytes = 0;
    if (xt_report_write(dir, out, &bytes, &err)) return xt_cli_fail(&err);
    if (strcmp(out, "-")) fprintf(stderr, "expertrace report: wrote %s (%zu KB)\n", out,
                                  (bytes + 1023) / 1024);
    return XT_EXIT_OK;
}
