/* objective: the EAM pre-training losses — multi-centre positive loss (MCP),
 * synthetic multi-view negatives (Reg), DeepSVDD (one centre, the mean) — and
 * the initialisation of the centres.
 *
 *   pos   = mean over every patch (i, v, j) of min_k ||O_ivj - C_vk||_2
 *   negs_i: draw (b, k); Zm = Z_i with Z_i[b, k] = 0; Om = EAM(Zm);
 *           {Om[b, k]} U, for each view a != b, the n_k patches j of a with the
 *           largest ||O_ia j - Om_ia j||_2 (no-grad selection, ties -> lower j),
 *           taken from Om
 *   neg_i = sum over negatives z of view v of -log(mean_k ||z - C_vk||_2)
 *   total = pos + lambda * (1/B) sum_i neg_i
 *
 * Centres are constants (never differentiated). Called by the trainer
 * (mvead/run/train.c) and the tests. Includes tensor/, autograd/ and mvead/method/eam.h.
 */
#ifndef MVEAD_OBJECTIVE_H
#define MVEAD_OBJECTIVE_H

#include <stdint.h>
#include "autograd/autograd.h"
#include "mvead/method/eam.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The pre-training objectives, one row each: id and the name the CLI,
 * config.json and the docs use. A new objective is a row here and its case
 * in mvead_objective (objective.c). */
#define MVEAD_OBJECTIVES(X) \
    X(NONE,     "none")     /* no training (e.g. `copy` init as is) */ \
    X(DEEPSVDD, "deepsvdd") /* pos with K = 1, centre = mean of the initial EAM outputs */ \
    X(MCP,      "mcp")      /* pos with K centres from k-means */ \
    X(MCP_REG,  "mcp+reg")  /* pos + lambda * neg */

typedef enum {
#define MVEAD_OBJ_ENUM(id, name) MVEAD_OBJ_##id,
    MVEAD_OBJECTIVES(MVEAD_OBJ_ENUM)
#undef MVEAD_OBJ_ENUM
    MVEAD_OBJ_COUNT
} mvead_objective_kind;

/* "none|deepsvdd|mcp|mcp+reg": the names, for option tables and messages. */
#define MVEAD_OBJ_NAME_ROW(id, name) "|" name
#define MVEAD_OBJECTIVE_CHOICES (MVEAD_OBJECTIVES(MVEAD_OBJ_NAME_ROW) + 1)

typedef struct {
    mvead_objective_kind kind;
    int K;              /* centres per view (default 20; deepsvdd uses 1) */
    int n_k;            /* negatives per other view (default 1) */
    double lambda;      /* weight of the negative term (default 0.1) */
    int lloyd_iters;    /* Lloyd iterations after k-means++ (default 50) */
} mvead_objective_opts;

void mvead_objective_opts_default(mvead_objective_opts *o);   /* MCP_REG, K 20, n_k 1, 0.1, 50 */
/* A name of MVEAD_OBJECTIVE_CHOICES -> enum; -1 (mv_error) otherwise. */
int mvead_objective_parse(const char *s, mvead_objective_kind *out);
const char *mvead_objective_name(mvead_objective_kind k);

/* ---- losses (vars on the tape) -------------------------------------------------- */

/* O [B, V, N, D] (or [V, N, D]), centers [V, K, D] -> scalar pos loss. */
mva_var *mvead_multi_center_loss(mva_var *O, const mvt_tensor *centers);

/* negs [M, D], views[M] in [0, V), centers [V, K, D] ->
 * scalar sum_m -log(mean_k ||negs_m - C_{views_m} k||_2) (a sum, not a mean). */
mva_var *mvead_negative_loss(mva_var *negs, const int64_t *views, const mvt_tensor *centers);

/* Uniform draw of the support view b in [0, V) and patch k in [0, N) per sample. */
void mvead_draw_negatives(mvt_rng *rng, int B, int V, int N, int64_t *neg_view, int64_t *neg_patch);

typedef struct {
    mva_var *total;   /* scalar; the value to backpropagate */
    mva_var *pos;     /* scalar */
    mva_var *neg;     /* scalar (1/B) sum_i neg_i, NULL unless MCP_REG */
    mva_var *O;       /* fused features [B, V, N, D] (a by-product, e.g. for logging) */
    mva_var *neg_rows;   /* MCP_REG: constant I64 [B (1 + (V-1) n_k)], the negatives as rows
                            (i V + v) N + j of the batch, per sample Om[b, k] first, then
                            n_k per other view in view order, most altered first */
} mvead_loss;

/* The whole objective on a batch Z [B, V, N, D] through the fusion f (static
 * mask as for mvead_fuse). With f's sparse attention and a static mask (eam,
 * full) the negatives' pass is incremental (see objective.c): the same loss,
 * negatives and gradients as the dense second pass, at a fraction of its cost. For MCP_REG, neg_view/neg_patch[B] give the drawn
 * (b, k) (see mvead_draw_negatives; tests pass the stored ones). Results are
 * tape vars (keep values with mvt_retain before mva_tape_clear). Returns -1
 * (mv_error) on inconsistent shapes or kind NONE. */
int mvead_objective_forward(const mvead_objective_opts *o, const mvead_eam *m,
                            const mvead_fusion_opts *f, mva_var *Z, const mvt_tensor *static_mask,
                            const mvt_tensor *centers, const int64_t *neg_view,
                            const int64_t *neg_patch, mvead_loss *out);

/* ---- centres ------------------------------------------------------------------ */

/* feats [V, M, D] (EAM outputs of the training patches of each view, any float
 * dtype) -> centres [V, K, D] f64: DEEPSVDD the per-view mean (K = 1); MCP and
 * MCP_REG k-means per view through mvs_kmeans_f64 (mvead/scoring/kmeans.h: k-means++
 * seeded with seed + v, then up to `iters` Lloyd steps; an empty cluster keeps
 * its centre). NULL + mv_error when M < K. */
mvt_tensor *mvead_centers_init(mvead_objective_kind kind, const mvt_tensor *feats, int K, int iters,
                               uint64_t seed);
/* The same from a plain [V][M][D] f32 array (e.g. a mvead/run/scratch.h buffer);
 * only one view at a time is held in float64. */
mvt_tensor *mvead_centers_init_f32(mvead_objective_kind kind, const float *feats, int64_t V, int64_t M, int64_t D,
                                   int K, int iters, uint64_t seed);

#ifdef __cplusplus
}
#endif
#endif
