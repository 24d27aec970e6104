/* error: the project's one error channel for user-facing failures (bad files,
 * bad options, bad shapes in input data). A failing function sets a message
 * naming the file/object and what was expected, and returns an error status
 * (-1) or NULL; the command prints mv_error_last() and exits non-zero.
 * Thread-local, so loader threads do not clobber each other. */
#ifndef MVEAD_ERROR_H
#define MVEAD_ERROR_H
#ifdef __cplusplus
extern "C" {
#endif
/* Sets the message (printf format). Returns -1 so callers can `return mv_error(...)`. */
int mv_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prepends context: "ctx: previous message". Returns -1. */
int mv_error_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *mv_error_last(void);
void mv_error_clear(void);
#ifdef __cplusplus
}
#endif
#endif
