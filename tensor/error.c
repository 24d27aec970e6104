#include "tensor/error.h"
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char mv_err_buf[2048];

int mv_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(mv_err_buf, sizeof mv_err_buf, fmt, ap);
    va_end(ap);
    return -1;
}

int mv_error_prefix(const char *fmt, ...) {
    char prev[sizeof mv_err_buf], ctx[512];
    memcpy(prev, mv_err_buf, sizeof prev);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx, sizeof ctx, fmt, ap);
    va_end(ap);
    snprintf(mv_err_buf, sizeof mv_err_buf, "%s: %s", ctx, prev);
    return -1;
}

const char *mv_error_last(void) { return mv_err_buf[0] ? mv_err_buf : "unknown error"; }
void mv_error_clear(void) { mv_err_buf[0] = 0; }
