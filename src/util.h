/* Small host helpers the library's modules share: whole-file reading and a monotonic clock. */
#ifndef XT_UTIL_H
#define XT_UTIL_H

#include <stdbool.h>
#include <stddef.h>

#include "expertrace/status.h"

/* Reads the whole file at path into *out, NUL-terminated (*len excludes the NUL; the caller
 * frees *out). A file that does not exist is XT_OK with *out NULL when missing_ok, else an
 * error; open and read failures are XT_ERR_IO naming the path and the system's reason. */
xt_status xt_read_file(const char *path, bool missing_ok, char **out, size_t *len,
                       xt_error *err);

/* Seconds on the monotonic clock, for durations. */
double xt_now_s(void);

#endif
