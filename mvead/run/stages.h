/* stages: the pipeline of an experiment, each stage one `mvead` subcommand
 * and each resumable from the files of the previous one (mvead/run/paths.h
 * names them):
 *
 *   extract  dataset -> <cache>/{train,test}.h5          (frozen backbone features)
 *   train    train.h5 + calibration -> checkpoint.h5     (EAM pre-training, MCP+Reg)
 *   bank     train.h5 + checkpoint -> bank.h5            (fused features, coreset)
 *   eval     test.h5 + checkpoint + bank -> scores.h5, metrics.json, heatmaps
 *   report   metrics.json + scores.h5 -> report.html, report.md
 *
 * Each returns 0 or -1 with mv_error set. */
#ifndef MVEAD_RUN_STAGES_H
#define MVEAD_RUN_STAGES_H

#include "mvead/run/run_config.h"

#define MVEAD_SCORES_FORMAT 1

int mvead_stage_extract(const mvead_config *c);
int mvead_stage_train(const mvead_config *c, bool resume);
int mvead_stage_bank(const mvead_config *c);
int mvead_stage_eval(const mvead_config *c);
int mvead_stage_report(const mvead_config *c);

/* Several runs side by side: a table on stdout, and compare.html and
 * compare.md in out_dir (mvead/run/compare.c). */
int mvead_report_compare(const char *const *run_dirs, int n, const char *out_dir);

#endif
