/* paths: the run folder, the one place that names its files. Every stage and
 * command takes its paths from mvead_paths; nothing else builds a run's file
 * names.
 *
 *   <runs>/<name>/                 the run (mvead_run_dir)
 *     config.json                  the options it ran with (written when a stage succeeds)
 *     history.jsonl                one line per successful stage: when, command line,
 *                                  version, options changed, provenance
 *     loss.csv, checkpoint.h5      train
 *     bank.h5                      bank
 *     scores.h5, metrics.json      eval, with heatmaps/<cat>_<id>_<class>_C<v>.png
 *     anomaly_maps.h5              eval --save_maps
 *     report.html, report.md       report (report_attention.png, report_epilines.png: its pictures)
 *     compare.html, compare.md     report --compare (in the folder given by --out)
 *     grads.h5                     grads
 *     ablation.{md,csv,html}       ablate (its folder holds one run per variant)
 *     features/{train,test}.h5     extract, unless --cache names a shared folder
 */
#ifndef MVEAD_RUN_PATHS_H
#define MVEAD_RUN_PATHS_H

#include "mvead/run/run_config.h"
#include <stdbool.h>

/* The files of a run folder: field, file name. */
#define MVEAD_RUN_FILES(X) \
    X(config,       "config.json") \
    X(history,      "history.jsonl") \
    X(loss_csv,     "loss.csv") \
    X(checkpoint,   "checkpoint.h5") \
    X(bank,         "bank.h5") \
    X(scores,       "scores.h5") \
    X(metrics,      "metrics.json") \
    X(anomaly_maps, "anomaly_maps.h5") \
    X(heatmaps,     "heatmaps") \
    X(report_html,  "report.html") \
    X(report_md,    "report.md") \
    X(report_attention, "report_attention.png") \
    X(report_epilines,  "report_epilines.png") \
    X(compare_html, "compare.html") \
    X(compare_md,   "compare.md") \
    X(grads,        "grads.h5") \
    X(ablation_md,  "ablation.md") \
    X(ablation_csv, "ablation.csv") \
    X(ablation_html, "ablation.html")

typedef struct {
    char run[1024];
    char cache[1024];          /* folder of train.h5 / test.h5 */
    char train_cache[1100], test_cache[1100];
    char calib[1024];          /* --calib, else <data>/calibration.json */
#define MVEAD_RUN_FILE_FIELD(field, file) char field[1100];
    MVEAD_RUN_FILES(MVEAD_RUN_FILE_FIELD)
#undef MVEAD_RUN_FILE_FIELD
} mvead_paths;

/* Every path of the run c names; mkdirs creates the run and cache folders. */
int mvead_paths_init(const mvead_config *c, mvead_paths *p, bool mkdirs);
/* The files of the run folder dir alone (compare, ablate): no cache, no calibration. */
int mvead_paths_of_dir(const char *dir, mvead_paths *p);
/* The heatmap PNG of view v (0-based) of a test sample. */
int mvead_paths_heatmap(const mvead_paths *p, const char *category, const char *sample_id, const char *anomaly_class,
                        int v, char *buf, size_t n);

/* <runs>/<name> into buf; creates it (and parents) when mk is true. */
int mvead_run_dir(const mvead_config *c, char *buf, int n, bool mk);
int mvead_mkdirs(const char *path);

#endif
