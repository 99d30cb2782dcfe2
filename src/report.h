/* The `report` verb's library half: one self-contained HTML page from a trace results directory
 * (src/trace.h writes it): inline CSS and SVG figures, no scripts, nothing fetched (a
 * Content-Security-Policy of default-src 'none' says so to the browser too).
 *
 *     cJSON *summary, *cases;
 *     xt_report_load("results", &summary, &cases, &err);   // cases NULL without cases.jsonl
 *     char *html;
 *     xt_report_html(&(xt_report_input){.summary = summary, .cases = cases}, &html, &err);
 *
 * The page: the layer sweep (mean rescue per layer with 95% bootstrap CIs, discovery and
 * validation, l* marked), the expert pass at l* (e* against its three controls, the discovery
 * ranking of experts), the coalition table, the ROME-style layer × position heatmaps when the
 * summary has them, per-case details, settings, counts and environment. Every string taken from
 * the files is HTML-escaped. A summary that lacks a field the page needs, or holds it with the
 * wrong type, is an XT_ERR_FORMAT naming the file and the field ("layer_sweep.discovery[1].mean").
 */
#ifndef XT_REPORT_H
#define XT_REPORT_H

#include "cJSON.h"
#include "expertrace/status.h"

typedef struct xt_report_input {
    const cJSON *summary;      /* summary.json, parsed (required) */
    const char *summary_path;  /* its name in messages (default "summary.json") */
    const cJSON *cases;        /* cases.jsonl as an array of its objects, or NULL */
    const char *cases_path;    /* its name in messages (default "cases.jsonl") */
} xt_report_input;

/* Reads dir/summary.json (required) and dir/cases.jsonl (optional: *cases is NULL when the file
 * does not exist). The caller frees both with cJSON_Delete. */
xt_status xt_report_load(const char *dir, cJSON **summary, cJSON **cases, xt_error *err);

/* Builds the page; on XT_OK *html is a NUL-terminated string the caller frees with free(). */
xt_status xt_report_html(const xt_report_input *in, char **html, xt_error *err);

/* xt_report_load + xt_report_html, written to out_path ("-": stdout). *bytes: the page's size
 * (may be NULL). */
xt_status xt_report_write(const char *dir, const char *out_path, size_t *bytes, xt_error *err);

#endif
