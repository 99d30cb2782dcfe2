/* The expertrace command-line verbs. Each takes the arguments after its verb name (argv[0] is
 * the verb) and returns the process exit code: 0 ok, 1 bad input, 2 usage, 3 device error. */
#ifndef XT_CLI_H
#define XT_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "expertrace/status.h"

enum { XT_EXIT_OK = 0, XT_EXIT_INPUT = 1, XT_EXIT_USAGE = 2, XT_EXIT_DEVICE = 3 };

int xt_cmd_bench(int argc, char **argv);
int xt_cmd_compare(int argc, char **argv);
int xt_cmd_devices(int argc, char **argv);
int xt_cmd_info(int argc, char **argv);
int xt_cmd_report(int argc, char **argv);
int xt_cmd_run(int argc, char **argv);
int xt_cmd_tokenize(int argc, char **argv);
int xt_cmd_trace(int argc, char **argv);

/* A decimal unsigned 32-bit number and nothing else (no sign, no trailing characters). */
bool xt_cli_parse_u32(const char *s, uint32_t *out);

/* Prints "expertrace: <message>" for a failed library call and returns its exit code. */
int xt_cli_fail(const xt_error *err);

/* Prints "expertrace <verb>: <message>" plus a hint to stderr and returns XT_EXIT_USAGE. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 2, 3)))
#endif
int xt_cli_usage_error(const char *verb, const char *fmt, ...);

#endif
