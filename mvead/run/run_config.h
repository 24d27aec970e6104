/* run_config: what a run is. Every option of every `mvead` subcommand in one
 * table (mvead_options), settable from the command line (mvead/cli/options.c)
 * and from a JSON config file, and written back next to a run's outputs
 * (runs/<name>/config.json) so any result can be reproduced from its folder.
 */
#ifndef MVEAD_RUN_CONFIG_H
#define MVEAD_RUN_CONFIG_H

#include <stddef.h>

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
    char eval_size[16];      /* original | N: size of the pixel metrics (maps resized to it, masks read at it) */
    bool save_maps;          /* eval writes anomaly_maps.h5 (maps at the evaluation size) */
    bool resume;             /* continue an interrupted train/extract */
    char nan_policy[8];      /* stop | skip: what a non-finite loss or gradient does */
} mvead_config;

void mvead_config_defaults(mvead_config *c);
/* --eval_size: 0 for 'original', else N (pixel metrics at N x N); -1 with mv_error when malformed. */
int mvead_eval_size(const mvead_config *c);

/* The option table: one row per field of mvead_config. */
typedef enum { MVEAD_OPT_STR, MVEAD_OPT_INT, MVEAD_OPT_U64, MVEAD_OPT_DBL, MVEAD_OPT_BOOL } mvead_option_type;
typedef struct {
    const char *name;
    mvead_option_type type;
    size_t off, size;          /* the field in mvead_config */
    const char *help;
    const char *choices;       /* "a|b|c" or NULL */
} mvead_option;
extern const mvead_option mvead_options[];
extern const int mvead_n_options;
/* The row of an option name (dashes accepted for underscores); NULL if none. */
const mvead_option *mvead_option_find(const char *name);
/* Parses value into c's field; where names the source (command, file) in errors. */
int mvead_option_set(mvead_config *c, const mvead_option *o, const char *value, const char *where);
/* Range checks that every command relies on. */
int mvead_config_validate(const mvead_config *c);

/* Loads a JSON config (keys = option names; unknown key is an error). */
int mvead_config_load_json(mvead_config *c, const char *path);
/* Writes all options as JSON (atomically). */
int mvead_config_write_json(const mvead_config *c, const char *path);
/* All options as JSON text, as config.json holds them (malloc'd). */
char *mvead_config_to_json(const mvead_config *c);
/* As mvead_config_load_json, from text (where names its source in errors). */
int mvead_config_load_json_text(mvead_config *c, const char *text, const char *where);
#endif
