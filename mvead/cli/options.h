/* config: every option of every `mvead` subcommand in one table, settable
 * from the command line and from a JSON config file, and written back next
 * to a run's outputs (runs/<name>/config.json) so any result can be
 * reproduced from its directory. Called by the subcommands in mvead/cmd_*.c.
 */
#ifndef MVEAD_OPTIONS_H
#define MVEAD_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct mvead_config {
    /* run layout */
    char name[128];          /* run name: outputs go to <runs>/<name>/ */
    char runs[512];          /* runs root */
    char data[512];          /* dataset root (contains realiad_1024/ and realiad_jsons/) */
    char cache[512];         /* feature cache folder (default <runs>/<name>/features) */
    char categories[1024];   /* "all" or a comma list; one category = single-class setting */
    uint64_t seed;
    int threads;             /* 0: OpenMP default */
    bool quiet;
    /* backbone and features */
    char backbone[512];      /* tiny | vits14 | vitb14 | vitl14 | vitg14 | file.safetensors | file.h5 */
    int layer;               /* 1-based block whose output is the feature */
    int image_size;          /* network input H = W */
    bool final_norm;         /* apply the backbone's final LayerNorm to the features */
    char pos_interp[16];     /* size | hub */
    char cache_dtype[16];    /* float32 | float16 */
    int extract_batch;       /* images per backbone forward */
    /* geometry */
    char calib[512];         /* calibration JSON (default <data>/calibration.json) */
    double delta;            /* epipolar band half-width in patches */
    /* EAM and pre-training */
    char fusion[16];         /* eam | full | mvas | none */
    char attention[16];      /* sparse | dense: how the EAM attention is computed */
    char init[16];           /* copy | random */
    char objective[16];      /* mcp+reg | mcp | deepsvdd | none */
    int centers;             /* K per view */
    int n_k;                 /* extra negatives per other view */
    double lambda;           /* weight of the negative term */
    int epochs, batch;
    double lr, wd;
    int mvas_window, mvas_topk;
    /* memory bank and scoring */
    char bank_mode[16];      /* per-view | pooled */
    double coreset_ratio;
    char coreset_mode[16];   /* exact | approx */
    double memory_mb;        /* fused training features in memory up to this (0: half the RAM), else a scratch file */
    double sigma;            /* anomaly-map blur */
    bool heatmaps;           /* write per-view heatmap overlays during eval */
    bool resume;             /* continue an interrupted train/extract */
    char nan_policy[8];      /* stop | skip: what a non-finite loss or gradient does */
} mvead_config;

void mvead_config_defaults(mvead_config *c);

/* Option names that a command accepts are listed in a NULL-terminated array.
 * Parses argv (after the subcommand): --opt value, --opt=value, --flag,
 * --no-flag, --config FILE (applied first, then the command line), --help.
 * Positional arguments are returned in pos[] (up to max_pos).
 * Returns 0 ok, 1 if --help was printed, -1 on error (mv_error set). */
int mvead_config_parse(mvead_config *c, const char *cmd, const char *summary,
                       const char *const *accepted, int argc, char **argv,
                       char **pos, int max_pos, int *n_pos);
/* As mvead_config_parse, for commands that act on a run: when
 * <runs>/<name>/config.json exists, the run's options are the base and the
 * command line (and --config) override them. How to run (--resume, --quiet,
 * --threads) is never inherited, and runs/name stay those of the command line
 * (a run folder may have been moved). require_run: a missing config.json is
 * an error naming it. Returns as mvead_config_parse (0, 1 for --help, -1 for
 * a bad option), and -2 when the run's config.json is missing (require_run)
 * or unreadable: a failure of the command, not of its usage. */
int mvead_config_parse_run(mvead_config *c, const char *cmd, const char *summary, const char *const *accepted,
                           int argc, char **argv, char **pos, int max_pos, int *n_pos, bool require_run);
/* Loads a JSON config (keys = option names; unknown key is an error). */
int mvead_config_load_json(mvead_config *c, const char *path);
/* Writes all options as JSON (atomically). */
int mvead_config_write_json(const mvead_config *c, const char *path);
/* Prints the usage of a command to stdout. */
void mvead_config_usage(const char *cmd, const char *summary, const char *const *accepted);

/* <runs>/<name> into buf; creates it (and parents) when mk is true. */
int mvead_run_dir(const mvead_config *c, char *buf, int n, bool mk);
int mvead_mkdirs(const char *path);

#endif
