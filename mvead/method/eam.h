/* eam: the Epipolar Attention Module and its fusion alternatives (none, full,
 * mvas) for the ablation. One module is shared by all views; for every
 * reference view a it attends from the patches of a to the patches of the
 * other views allowed by a mask, and adds the result to its input:
 *
 *     Y = LN(Z)                          (eps 1e-6, over the channel axis)
 *     Q = Y Wq^T + bq,  K = Y Wk^T + bk,  Vv = Y Wv^T + bv
 *     per head h (d = D / heads): A = softmax over the kept keys of Q_h K_h^T / sqrt(d)
 *     O = Z + concat_h(A Vv_h) Wo^T + bo
 *
 * The keys of reference view a are all supports b != a jointly (one softmax);
 * a query row with no kept key gets a zero attention term (O = Z + bo there)
 * and a zero gradient through the attention, never NaN.
 *
 * Implementation: all V*N queries attend over all V*N keys of the sample with
 * a (VN x VN) mask whose own-view blocks are zero; this is the reference
 * formulation (per view a, concatenated supports) up to summation order.
 * Two ways to compute it (--attention): `dense` materialises the masked
 * (VN x VN) scores per head (the reference path); `sparse` (default) runs the
 * block-sparse op mva_sparse_attention over a compressed index of the mask,
 * built once per mask, and computes only the kept keys' scores.
 *
 * Called by the objective (mvead/method/objective.h), the trainer and the scoring
 * commands (EAM outputs feed the memory banks). Includes tensor/ and
 * autograd/ only; `copy` init takes plain tensors so nn/vit is not needed.
 */
#ifndef MVEAD_EAM_H
#define MVEAD_EAM_H

#include <stdint.h>
#include "autograd/autograd.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MVEAD_EAM_NPARAMS 10
#define MVEAD_EAM_LN_EPS 1e-6

/* Names in the fixtures / checkpoints, in the order of mvead_eam_params(). */
extern const char *const mvead_eam_param_names[MVEAD_EAM_NPARAMS];

typedef struct {
    int dim;              /* D */
    int heads;            /* D % heads == 0 */
    mvt_dtype dtype;      /* MVT_F32 or MVT_F64 */
    /* Leaves owned by the module (requires_grad). Linear weights are [out, in] = [D, D]. */
    mva_var *ln_w, *ln_b;   /* [D] */
    mva_var *wq, *bq;       /* [D, D], [D] */
    mva_var *wk, *bk;
    mva_var *wv, *bv;
    mva_var *wo, *bo;
} mvead_eam;

/* Source tensors for `copy` init (or for loading a checkpoint / fixture):
 * backbone block k+1's norm1 (weight, bias), attention query/key/value and
 * attention.output.dense, in that order of the fields. Any float dtype. */
typedef struct {
    const mvt_tensor *ln_w, *ln_b, *wq, *bq, *wk, *bk, *wv, *bv, *wo, *bo;
} mvead_eam_weights;

/* Both inits overwrite *m (free a module held there first with mvead_eam_free);
 * on failure *m is left empty (safe to free). */

/* Random init, as PyTorch's defaults for nn.Linear / nn.LayerNorm:
 * W, b ~ U(-1/sqrt(D), 1/sqrt(D)) (kaiming_uniform a = sqrt 5 and the bias
 * rule), LN weight 1, bias 0. Seeded, deterministic. Returns -1 (mv_error)
 * on bad D/heads/dtype. */
int mvead_eam_init_random(mvead_eam *m, int dim, int heads, mvt_dtype dtype, uint64_t seed);

/* Copies the given tensors (converted to dtype). ls_gamma (NULL: none) is an
 * optional LayerScale [D] folded into wo and bo (wo rows and bo scaled), for
 * a copy that reproduces the backbone block's residual branch; method.md's
 * `copy` takes the weights as they are (pass NULL). Returns -1 (mv_error
 * naming the field) on missing tensors or wrong shapes. */
int mvead_eam_init_copy(mvead_eam *m, int heads, mvt_dtype dtype,
                        const mvead_eam_weights *src, const mvt_tensor *ls_gamma);

void mvead_eam_free(mvead_eam *m);

/* The 10 leaves in mvead_eam_param_names order (for the optimiser / checkpoint). */
void mvead_eam_params(const mvead_eam *m, mva_var *out[MVEAD_EAM_NPARAMS]);

/* ---- attention masks (plain tensors, nonzero = keep, never differentiated) ---- */

/* support [V][N][(V-1)N] (row a lists supports b != a in increasing order,
 * as mvg_support_mask and the fixtures write it) -> [VN, VN] mask of dtype
 * dt with M[a*N + j, b*N + k] = support[a][j][(b - (b > a)) * N + k] and zero
 * own-view blocks. */
mvt_tensor *mvead_attn_mask_from_support(const uint8_t *support, int V, int N, mvt_dtype dt);
/* `full` fusion: every patch of every other view. [VN, VN]. */
mvt_tensor *mvead_attn_mask_full(int V, int N, mvt_dtype dt);

/* `mvas` fusion, as MVAD's MVAS selects (method.md): each view's h x w grid
 * is zero-padded at the bottom/right to a multiple of n_win and split into
 * n_win x n_win windows (win is that COUNT per side, not a side length); a
 * window's descriptor is the mean of its cells, padding included. For each
 * query window of view a: logits (q / sqrt(D)) . k over the windows of ALL
 * support views b != a jointly (views in increasing order), one top-k (ties
 * to the lower index); every patch of the query window attends to every real
 * patch of the kept windows. Z: [V, N, D] or [B, V, N, D] value (no
 * gradient). Returns [VN, VN] or [B, 1, VN, VN]. */
mvt_tensor *mvead_attn_mask_mvas(const mvt_tensor *Z, int h, int w, int win, int topk, mvt_dtype dt);

/* ---- forward ---------------------------------------------------------------- */

/* Z [B, V, N, D] or [V, N, D] -> O of the same shape. mask: [VN, VN] shared by
 * the batch, or [B, 1, VN, VN] per sample (mvas). Differentiable w.r.t. Z and
 * every parameter. The dense reference path. */
mva_var *mvead_eam_forward(const mvead_eam *m, mva_var *Z, const mvt_tensor *mask);

/* How the attention is computed: the one table of the choices (the first is
 * the default). */
#define MVEAD_ATTENTIONS(X)                                                                  \
    X(SPARSE, "sparse") /* block-sparse over the mask's kept keys, incremental negatives */ \
    X(DENSE,  "dense")  /* (VN x VN) masked scores: the reference */
typedef enum {
#define MVEAD_ATTN_ENUM(id, name) MVEAD_ATTN_##id,
    MVEAD_ATTENTIONS(MVEAD_ATTN_ENUM)
#undef MVEAD_ATTN_ENUM
    MVEAD_ATTN_COUNT
} mvead_attention;
/* "sparse|dense": the names, for option tables and messages. */
#define MVEAD_ATTN_NAME_ROW(id, name) "|" name
#define MVEAD_ATTENTION_CHOICES (MVEAD_ATTENTIONS(MVEAD_ATTN_NAME_ROW) + 1)
/* A name of MVEAD_ATTENTION_CHOICES -> enum; -1 (mv_error) on anything else. */
int mvead_attention_parse(const char *s, mvead_attention *out);
const char *mvead_attention_name(mvead_attention a);

/* What the incremental negative pass (objective.c) reuses of a forward: the
 * input as [B, VN, D], the projections q, k, v [B, VN, D] (q not yet scaled
 * by 1/sqrt(d)) and the output before the reshape, [B, VN, D]. Tape vars. */
typedef struct {
    mva_var *z3, *q, *k, *v, *out3;
} mvead_eam_trace;

/* mvead_eam_forward through either attention; trace (NULL: not wanted) gets
 * the intermediates. The sparse path builds the mask's index once and keeps it
 * for later calls with the same mask (a few masks are remembered, by identity
 * and content); cache_index false (a mask made for one call, e.g. mvas) builds
 * it for this call only. */
mva_var *mvead_eam_forward_attn(const mvead_eam *m, mva_var *Z, const mvt_tensor *mask, mvead_attention att,
                                bool cache_index, mvead_eam_trace *trace);

/* The fusion modes, one row each: id, the name the CLI, config.json and the
 * docs use, and the mode's attention mask:
 *   mask      builds it (eam.c; NULL: no attention, O = Z);
 *   per_call  the mask depends on Z and is rebuilt every call (else it is
 *             built once per run: mvead_fusion_static_mask);
 *   epipolar  the mask needs the calibration's support mask.
 * A new mode is a row here and its mask function. */
#define MVEAD_FUSION_MODES(X) \
    /* id    name    mask             per_call  epipolar */ \
    X(NONE, "none", NULL,             false,    false) /* identity O = Z */ \
    X(FULL, "full", fusion_mask_full, false,    false) /* all-ones cross-view mask */ \
    X(EAM,  "eam",  fusion_mask_eam,  false,    true)  /* epipolar band */ \
    X(MVAS, "mvas", fusion_mask_mvas, true,     false) /* semantic window selection (MVAD) */

typedef enum {
#define MVEAD_FUSION_ENUM(id, name, mask, per_call, epipolar) MVEAD_FUSION_##id,
    MVEAD_FUSION_MODES(MVEAD_FUSION_ENUM)
#undef MVEAD_FUSION_ENUM
    MVEAD_FUSION_COUNT
} mvead_fusion;

/* "none|full|eam|mvas": the names, for option tables and messages. */
#define MVEAD_FUSION_NAME_ROW(id, name, mask, per_call, epipolar) "|" name
#define MVEAD_FUSION_CHOICES (MVEAD_FUSION_MODES(MVEAD_FUSION_NAME_ROW) + 1)

typedef struct {
    mvead_fusion mode;
    int h, w;          /* patch grid, h * w = N (mvas) */
    int mvas_window;   /* n_win: windows per side of the padded grid (default 6, MVAD's) */
    int mvas_topk;     /* windows kept per query window, over all supports jointly (default 4) */
    mvead_attention attention;   /* how the attention is computed (default sparse) */
} mvead_fusion_opts;

void mvead_fusion_opts_default(mvead_fusion_opts *o);   /* EAM, n_win 6, topk 4, sparse */
/* A name of MVEAD_FUSION_CHOICES -> enum; -1 (mv_error) on anything else. */
int mvead_fusion_parse(const char *s, mvead_fusion *out);
const char *mvead_fusion_name(mvead_fusion f);
/* Whether the mode attends at all (false: O = Z, nothing to train). */
bool mvead_fusion_attends(mvead_fusion f);
/* Whether its mask needs the calibration (the epipolar support mask). */
bool mvead_fusion_needs_calibration(mvead_fusion f);
/* Whether its mask depends on Z (rebuilt every call, never static). */
bool mvead_fusion_per_call(mvead_fusion f);
/* The mask of a per-call mode for Z [V, N, D] (one sample: [VN, VN]) or
 * [B, V, N, D] ([B, 1, VN, VN]); NULL + mv_error for other modes. */
mvt_tensor *mvead_fusion_call_mask(const mvead_fusion_opts *o, const mvt_tensor *Z, mvt_dtype dt);

/* Mask that does not depend on Z: FULL and EAM (support required for EAM);
 * NULL for NONE and MVAS (nothing fixed to build). NULL + mv_error when EAM
 * has no support mask. */
mvt_tensor *mvead_fusion_static_mask(const mvead_fusion_opts *o, const uint8_t *support,
                                     int V, int N, mvt_dtype dt);

/* Fused features for any mode: NONE returns Z itself, FULL/EAM use
 * static_mask (from mvead_fusion_static_mask), MVAS builds its mask from
 * Z->value. Same shapes as mvead_eam_forward. */
mva_var *mvead_fuse(const mvead_eam *m, const mvead_fusion_opts *o, mva_var *Z,
                    const mvt_tensor *static_mask);

/* Attention weights of one query patch (visualisation): Z [V, N, D] value,
 * mask [VN, VN] (for mvas: mvead_attn_mask_mvas of this Z). Returns [heads, V, N]
 * probabilities (own view zero; a row with no kept key is all zero). Runs
 * without recording a graph. */
mvt_tensor *mvead_eam_attention(const mvead_eam *m, const mvt_tensor *Z, const mvt_tensor *mask,
                                int view, int patch);

#ifdef __cplusplus
}
#endif
#endif
