/* Status codes and the error record every library call reports through.
 *
 * Library functions never exit or abort on bad input: they return an xt_status and, when the
 * caller passed an xt_error, write a message there naming the file, field, tensor or offset at
 * fault. Only the CLI turns a status into a process exit code (xt_status_exit_code).
 */
#ifndef EXPERTRACE_STATUS_H
#define EXPERTRACE_STATUS_H

#include <stdarg.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* X(name, text, exit code): exit codes are the CLI's contract — 0 ok, 1 bad input, 2 usage,
 * 3 device error. */
#define XT_STATUS_LIST(X)                                                      \
    X(XT_OK, "ok", 0)                                                          \
    X(XT_ERR_IO, "i/o error", 1)                                               \
    X(XT_ERR_FORMAT, "malformed input", 1)                                     \
    X(XT_ERR_UNSUPPORTED, "unsupported", 1)                                    \
    X(XT_ERR_NOT_FOUND, "not found", 1)                                        \
    X(XT_ERR_TYPE, "wrong type", 1)                                            \
    X(XT_ERR_RANGE, "out of range", 1)                                         \
    X(XT_ERR_NO_MEMORY, "out of host memory", 1)                               \
    X(XT_ERR_USAGE, "usage error", 2)                                          \
    X(XT_ERR_DEVICE, "device error", 3)                                        \
    X(XT_ERR_DEVICE_MEMORY, "out of device memory", 3)                         \
    X(XT_ERR_DEVICE_LOST, "device lost", 3)

typedef enum xt_status {
#define XT_STATUS_ENUM(name, text, code) name,
    XT_STATUS_LIST(XT_STATUS_ENUM)
#undef XT_STATUS_ENUM
    XT_STATUS_COUNT
} xt_status;

#define XT_ERROR_MSG_BYTES 1024

/* Where a failing call leaves its explanation. Zero-initialise; the caller owns it. */
typedef struct xt_error {
    xt_status status;
    char msg[XT_ERROR_MSG_BYTES];
} xt_error;

const char *xt_status_to_string(xt_status s);
int xt_status_exit_code(xt_status s);

/* Records status s and a printf-style message in err (err may be NULL) and returns s, so a
 * failing path reads `return xt_error_set(err, XT_ERR_FORMAT, "%s: ...", path);`. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 3, 4)))
#endif
xt_status xt_error_set(xt_error *err, xt_status s, const char *fmt, ...);
xt_status xt_error_setv(xt_error *err, xt_status s, const char *fmt, va_list ap);

/* Prepends "prefix: " to an existing message (e.g. the file name at an outer level). */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 2, 3)))
#endif
void xt_error_prefix(xt_error *err, const char *fmt, ...);

void xt_error_clear(xt_error *err);

#ifdef __cplusplus
}
#endif

#endif
