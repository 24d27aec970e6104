/* history: what each successful stage of a run did, one JSON object per line
 * in <run>/history.jsonl (appended, never rewritten), so a run's folder says
 * how its files came to be. Called by the stage commands (mvead/cli) after a
 * stage succeeds, next to writing config.json. The format is documented in
 * docs/reliability.md ("Settings that are true"). */
#ifndef MVEAD_RUN_HISTORY_H
#define MVEAD_RUN_HISTORY_H

#include "mvead/run/run_config.h"

/* What a stage cost: seconds of wall time and the process's peak RSS. */
typedef struct {
    const char *stage;   /* extract | train | bank | eval | report */
    double seconds;
    double peak_rss_mib;
} mvead_history_stage;

/* Appends one line: time, argv (the whole command line: mvead, cmd, argv), mvead version and
 * git commit, the stages run with their cost, the options that differ from
 * `before` (the run's config.json before the command, or the defaults), and
 * provenance: backbone (preset, or the SHA-256 of its weights file), the
 * calibration file's SHA-256, the dataset root and the samples per split of
 * the feature caches. */
int mvead_history_append(const mvead_config *c, const mvead_config *before, const char *cmd, int argc, char **argv,
                         const mvead_history_stage *stages, int n_stages);

/* The options whose values differ between a and b, among names (NULL: all),
 * written as "--lr (0.001 -> 0.01), ..." into buf; returns how many. */
int mvead_config_diff(const mvead_config *a, const mvead_config *b, const char *const *names, char *buf, size_t n);

#endif
