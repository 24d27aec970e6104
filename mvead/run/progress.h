/* progress: a progress bar with rate and ETA on a terminal, plain line logs
 * (about every 10%) when stderr is not a terminal, nothing when quiet.
 * Used by every long loop of the mvead command (extract, train, bank, eval). */
#ifndef MVEAD_PROGRESS_H
#define MVEAD_PROGRESS_H
#include <stdbool.h>
#include <stdint.h>

typedef struct {
    char label[64];
    int64_t total, done, base;   /* base: where a resumed loop started (not counted in the rate) */
    double t0, last_draw;
    int last_decile;
    bool tty, quiet;
    char extra[96];
} mvead_progress;

void mvead_progress_set_quiet(bool quiet);   /* global default for new bars */
void mvead_progress_start(mvead_progress *p, const char *label, int64_t total);
/* Sets the count; extra (may be NULL) is shown after the bar (e.g. "loss 0.123"). */
void mvead_progress_update(mvead_progress *p, int64_t done, const char *extra);
void mvead_progress_finish(mvead_progress *p);
/* A loop resumed at done: the count starts there, the rate counts only this run's items. */
void mvead_progress_resume(mvead_progress *p, int64_t done);
double mvead_now(void);   /* monotonic seconds */
/* Peak resident memory of this process so far, in MiB (stage summaries report it). */
double mvead_peak_rss_mib(void);
/* Log line to stderr unless quiet. */
void mvead_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#endif
