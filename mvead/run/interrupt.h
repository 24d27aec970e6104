/* interrupt: SIGINT and SIGTERM stop a stage at its next safe point (after a
 * checkpoint, a cache sample, a scored sample) instead of killing it mid-write.
 * The stage command installs the handler; the stages poll mvead_interrupted()
 * and fail with a message that says what was kept and how to go on; the
 * command exits 128 + the signal (130, 143). A second signal kills at once. */
#ifndef MVEAD_RUN_INTERRUPT_H
#define MVEAD_RUN_INTERRUPT_H

void mvead_interrupt_install(void);
/* The signal received (SIGINT, SIGTERM), or 0. */
int mvead_interrupted(void);
/* At a safe point: 0 when no signal came, else -1 with mv_error
 * "interrupted (SIGINT) <what>" (what: kept files, how to go on). One
 * process only: under MPI the ranks would stop at different points, so
 * there the signal keeps its default action. */
int mvead_interrupt_check(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
