/* Status names, exit codes and the error record (see include/expertrace/status.h). */
#include "expertrace/status.h"

#include <stdio.h>
#include <string.h>

static const char *const status_text[XT_STATUS_COUNT] = {
#define XT_STATUS_TEXT(name, text, code) [name] = text,
    XT_STATUS_LIST(XT_STATUS_TEXT)
#undef XT_STATUS_TEXT
};

static const int status_exit[XT_STATUS_COUNT] = {
#define XT_STATUS_EXIT(name, text, code) [name] = code,
    XT_STATUS_LIST(XT_STATUS_EXIT)
#undef XT_STATUS_EXIT
};

const char *xt_status_to_string(xt_status s)
{
    if ((unsigned)s >= XT_STATUS_COUNT) return "unknown status";
    return status_text[s];
}

int xt_status_exit_code(xt_status s)
{
    if ((unsigned)s >= XT_STATUS_COUNT) return 1;
    return status_exit[s];
}

xt_status xt_error_setv(xt_error *err, xt_status s, const char *fmt, va_list ap)
{
    if (!err) return s;
    err->status = s;
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    return s;
}

xt_status xt_error_set(xt_error *err, xt_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    xt_error_setv(err, s, fmt, ap);
    va_end(ap);
    return s;
}

void xt_error_prefix(xt_error *err, const char *fmt, ...)
{
    if (!err) return;
    char prefix[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    /* "prefix: old", truncated to the buffer (spelled out: snprintf("%s: %s") trips
     * -Wformat-truncation). */
    char old[XT_ERROR_MSG_BYTES];
    memcpy(old, err->msg, sizeof old);
    old[sizeof old - 1] = '\0';
    size_t cap = sizeof err->msg - 1, n = 0;
    const char *parts[3] = {prefix, ": ", old};
    for (int i = 0; i < 3; i++) {
        size_t len = strlen(parts[i]);
        if (len > cap - n) len = cap - n;
        memcpy(err->msg + n, parts[i], len);
        n += len;
    }
    err->msg[n] = '\0';
}

void xt_error_clear(xt_error *err)
{
    if (!err) return;
    err->status = XT_OK;
    err->msg[0] = '\0';
}
