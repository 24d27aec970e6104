/* commands: the subcommands that live outside mvead/cli/main.c (report, predict,
 * ablate, grads) and helpers shared by several commands. Each cmd_ function
 * takes the arguments after the subcommand name and returns the exit code
 * (0 ok, 1 failure with a message on stderr, 2 usage error). */
#ifndef MVEAD_COMMANDS_H
#define MVEAD_COMMANDS_H
#include "mvead/geometry/calibration.h"
#include "mvead/cli/options.h"
#include "mvead/geometry/epipolar.h"

int mvead_cmd_predict(int argc, char **argv);
int mvead_cmd_ablate(int argc, char **argv);
int mvead_cmd_grads(int argc, char **argv);
/* Picture of the EAM attention of one query patch over the support views (mvead/cli/attention_cmd.c). */
int mvead_cmd_attention(int argc, char **argv);

/* report.html + report.md for the run named by c (needs metrics.json, scores.h5). */
int mvead_stage_report(const mvead_config *c);
/* Prints a side-by-side metrics table of run directories to stdout. */
int mvead_report_compare(const char *const *run_dirs, int n);

/* Automatic calibration from a feature cache (train split): mutual nearest
 * neighbours between the patch features of views a and b of each sample,
 * patch centres as correspondences, RANSAC per pair. */
int mvead_calibrate_from_cache(const char *cache_path, const mvg_ransac_opts *o, mvg_calibration *out);
#endif
