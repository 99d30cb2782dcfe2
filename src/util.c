/* src/util.h. */
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

xt_status xt_read_file(const char *path, bool missing_ok, char **out, size_t *len,
                       xt_error *err)
{
    *out = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (missing_ok && errno == ENOENT) return XT_OK;
        return xt_error_set(err, XT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (cap - n < 65536 + 1) {
            size_t ncap = cap ? 2 * cap : 1 << 17;
            char *p = ncap > cap ? realloc(buf, ncap) : NULL;
            if (!p) {
                free(buf);
                fclose(f);
                return xt_error_set(err, XT_ERR_NO_MEMORY, "%s: out of host memory after %zu bytes",
                                    path, n);
            }
            buf = p;
            cap = ncap;
        }
        errno = 0;
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(f), saved = errno;
    fclose(f);
    if (bad) {
        free(buf);
        return xt_error_set(err, XT_ERR_IO, "%s: cannot read: %s", path, strerror(saved));
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return XT_OK;
}

double xt_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
