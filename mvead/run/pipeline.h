/* pipeline: the stages of an experiment, each one `mvead` subcommand and
 * each resumable from the files of the previous one:
 *
 *   extract  dataset -> <cache>/{train,test}.h5          (frozen backbone features)
 *   train    train.h5 + calibration -> checkpoint.h5     (EAM pre-training, MCP+Reg)
 *   bank     train.h5 + checkpoint -> bank.h5            (fused features, coreset)
 *   eval     test.h5 + checkpoint + bank -> scores.h5, metrics.json, heatmaps
 *
 * Run layout: <runs>/<name>/{config.json, train.log, loss.csv, checkpoint.h5,
 * bank.h5, scores.h5, metrics.json, heatmaps/, report.html, report.md}.
 * The cache lives in <runs>/<name>/features unless --cache points elsewhere
 * (ablations share one). Called by mvead/cli/main.c.
 */
#ifndef MVEAD_PIPELINE_H
#define MVEAD_PIPELINE_H

#include "autograd/autograd.h"
#include "mvead/cli/options.h"
#include "mvead/run/scratch.h"
#include "mvead/method/eam.h"
#include "mvead/method/objective.h"
#include "nn/adamw.h"
#include "nn/vit.h"
#include "data/cache.h"

#define MVEAD_CHECKPOINT_FORMAT 1
#define MVEAD_BANK_FORMAT 1
#define MVEAD_SCORES_FORMAT 1

/* Paths derived from the config. */
typedef struct {
    char run[1024];
    char cache[1024];          /* folder of train.h5 / test.h5 */
    char train_cache[1100], test_cache[1100];
    char checkpoint[1100], bank[1100], scores[1100], metrics[1100], loss_csv[1100];
    char calib[1024];
} mvead_paths;
int mvead_paths_init(const mvead_config *c, mvead_paths *p, bool mkdirs);

/* The trained (or initial) state of a run. */
typedef struct {
    bool has_eam;              /* false for fusion none */
    mvead_eam eam;
    mvt_tensor *centers;       /* [V, K, D] f64, NULL for objective none */
    int epochs_done;
    int64_t steps;
    double *log_pos, *log_neg, *log_total;   /* per step */
    double *log_grad_norm;                   /* per step: L2 norm of the whole gradient */
    int64_t *log_epoch;
} mvead_state;

void mvead_state_free(mvead_state *s);
int mvead_checkpoint_save(const char *path, const mvead_config *c, const mvead_state *s, const mvn_adamw *opt);
/* Loads the state (and the optimiser moments when opt is non-NULL). */
int mvead_checkpoint_load(const char *path, mvead_state *s, mvn_adamw *opt);

/* Support mask [V][N][(V-1)N] for the cache's grid, from the calibration. */
uint8_t *mvead_support_mask(const mvead_config *c, const char *calib_path, int V, int H, int W, int P);

/* Fusion options and the static attention mask (EAM: from the calibration;
 * full: all-ones; none/mvas: NULL) for the cache's grid. */
int mvead_pipeline_fusion(const mvead_config *c, const mvead_paths *p, const mvd_cache_info *in,
                          mvead_fusion_opts *fo, mvt_tensor **static_mask);

/* The frozen backbone named by c->backbone (preset with random weights,
 * `tiny`, or a weights file); *hash identifies its weights. */
mvn_vit *mvead_backbone_load(const mvead_config *c, char *hash, size_t hash_n);

/* Memory banks as eval and predict use them (mvead/run/scoremaps.c): every bank
 * of bank.h5 (1 pooled or V per view), or with shard this MPI rank's block of
 * rows. hash (NULL: unchecked) must equal the bank's backbone hash. */
typedef struct {
    int count;
    float **rows;    /* [count][n[i] * D] */
    int64_t *n;
} mvead_banks;
int mvead_banks_load(const char *path, int D, int V, const char *hash, bool shard, mvead_banks *b);
void mvead_banks_free(mvead_banks *b);   /* idempotent */
/* PNG: the image beside the map blended over it (jet, lo..hi), at H x W; the
 * ground-truth outline in white when mask is non-NULL. */
int mvead_heatmap_overlay(const char *out, const char *image_path, const float *map, const uint8_t *mask, int H, int W,
                          double lo, double hi);

/* Stages. Each returns 0 or -1 with mv_error set. */
int mvead_stage_extract(const mvead_config *c);
int mvead_stage_train(const mvead_config *c, bool resume);
int mvead_stage_bank(const mvead_config *c);
int mvead_stage_eval(const mvead_config *c);
int mvead_stage_report(const mvead_config *c);

/* Backbone block (layer + 1) weights for `copy` init: fills src with borrowed
 * tensors kept alive in *keep (free with mvn_state_free-like release). */
int mvead_backbone_copy_weights(const mvead_config *c, int dim_expected, int *heads,
                                mvead_eam_weights *src, void **keep);
void mvead_backbone_release(void *keep);

/* Fused features (no grad) of one sample's Z [V, N, D] f32 -> out [V*N*D]. */
int mvead_fuse_sample(const mvead_state *s, const mvead_fusion_opts *f, const mvt_tensor *static_mask,
                      const float *z, int V, int N, int D, float *out);

/* Fused features (no grad) of every training sample of the cache in the
 * view-major layout all[V][S*N][D] (row i*N + j of view v = patch j of
 * sample i), the layout of the per-view banks and of the centres' k-means.
 * On rank 0 `all` is allocated here (S V N D floats: in memory up to
 * memory_mb, see mvead_memory_budget, else a scratch file under dir, written
 * back as it fills; the caller frees it with mvead_scratch_free); on the
 * other ranks it stays empty. Under MPI (collective) each rank fuses a
 * contiguous block of the samples and sends them to rank 0: bitwise the
 * one-process result. `label` names the progress line, the log and errors.
 * Returns 0, or -1 (mv_error, `all` freed) on every rank when any rank
 * failed. Called by train (centres) and bank. */
int mvead_fuse_training_set(const mvead_state *st, const mvead_fusion_opts *fo, const mvt_tensor *static_mask,
                            mvd_cache *cache, double memory_mb, const char *dir, const char *label, mvead_scratch *all);

/* The EAM a run starts from (--init copy: backbone block layer+1; random:
 * seeded, with the backbone's head count). Called by train and by grads
 * before any training. */
int mvead_eam_init_for_run(const mvead_config *c, int D, mvead_eam *m);

/* The run's initial centres [V, K, D] f64: k-means (deepsvdd: the mean) of
 * st's fused outputs of every training patch, seeded with c->seed; under
 * MPI (collective) computed on rank 0 and broadcast. NULL + mv_error on
 * failure. Called by train and by grads before any training. */
mvt_tensor *mvead_centers_for_run(const mvead_config *c, const mvead_objective_opts *oo, mvd_cache *cache,
                                  const mvead_state *st, const mvead_fusion_opts *fo, const mvt_tensor *mask);
#endif
