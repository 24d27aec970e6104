/* train: EAM pre-training on the feature cache (the train stage). */
#include "autograd/autograd.h"
#include "data/cache.h"
#include "data/h5io.h"
#include "mvead/geometry/calibration.h"
#include "mvead/geometry/epipolar.h"
#include "mvead/method/eam.h"
#include "mvead/method/objective.h"
#include "mvead/run/checkpoint.h"
#include "mvead/run/run_config.h"
#include "mvead/run/fuse.h"
#include "mvead/run/init.h"
#include "mvead/run/mpi.h"
#include "mvead/run/interrupt.h"
#include <signal.h>
#include "mvead/run/paths.h"
#include "mvead/run/progress.h"
#include "mvead/run/scratch.h"
#include "mvead/run/stages.h"
#include "nn/adamw.h"
#include "tensor/error.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- training ------------------------------------------------------------------ */

static void permutation(mvt_rng *r, int64_t n, int64_t *idx) {
    for (int64_t i = 0; i < n; i++) idx[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(mvt_rng_next(r) % (uint64_t)(i + 1));
        int64_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

/* ---- one step's gradient, per sample ---------------------------------------------------
 * The objective is separable over the samples of a batch: pos is the mean
 * over all B V N patches, i.e. sum_i (1/B) pos_i with pos_i the mean over
 * sample i's V N patches, and neg = (1/B) sum_i neg_i. So the batch gradient
 * is g = sum_i g_i with g_i the gradient of (1/B) (pos_i + lambda neg_i),
 * computed on a graph of sample i alone. The trainer always works this way,
 * in one process too, and adds g_0 + g_1 + ... + g_{B-1} in sample order
 * with one function (add_sample): under mpirun each rank computes the g_i of
 * its contiguous block of the GLOBAL batch, rank 0 receives them in sample
 * order and adds them exactly as one process does, and broadcasts the sum.
 * The result is bitwise the one-process gradient for any number of ranks;
 * the logged losses are summed the same way. Every rank draws the same
 * permutation and negatives for the whole batch (one RNG stream per epoch). */

#define TAG_SAMPLE_PART 7301
#define TAG_SAMPLE_GRAD 7302

/* A sample's share of the step besides its gradient: (1/B) times its pos,
 * neg and total, and which parameters the backward reached. Sent as bytes
 * between ranks (the ranks of a job run the same build). */
typedef struct {
    double loss[3];
    int64_t has[MVEAD_EAM_NPARAMS];
} sample_part;

typedef struct {
    const mvead_objective_opts *oo;
    const mvead_eam *eam;
    const mvead_fusion_opts *fo;
    const mvt_tensor *static_mask, *centers;   /* centres [V, K, D] f32 */
    mva_var *params[MVEAD_EAM_NPARAMS];
    int V, N, D;
    int64_t n_grad;                            /* parameter elements, all tensors */
} step_ctx;

static void drop_grads(mva_var *const *p) {
    for (int k = 0; k < MVEAD_EAM_NPARAMS; k++) {
        mvt_release(p[k]->grad);
        p[k]->grad = NULL;
    }
}

/* Gradient g[n_grad] (flat, parameters in mvead_eam_params order) of sample
 * z [V, N, D]'s share (1/B) total_i of the batch objective, with its drawn
 * negative (nv, np). A non-finite loss skips the backward (g = 0): the
 * step's summed loss is then non-finite and --nan_policy decides. */
static int sample_gradient(const step_ctx *s, const float *z, int64_t nv, int64_t np, int B, float *g, sample_part *part) {
    drop_grads(s->params);
    int64_t shp[4] = {1, s->V, s->N, s->D};
    mva_var *Z = mva_const(mvt_from_data(MVT_F32, 4, shp, z));
    mvead_loss L;
    if (mvead_objective_forward(s->oo, s->eam, s->fo, Z, s->static_mask, s->centers, &nv, &np, &L)) {
        mva_tape_clear();
        return -1;
    }
    double share = 1.0 / (double)B;
    part->loss[0] = mvt_item(L.pos->value) * share;
    part->loss[1] = L.neg ? mvt_item(L.neg->value) * share : 0;
    part->loss[2] = mvt_item(L.total->value) * share;
    if (isfinite(part->loss[2])) mva_backward(mva_scale(L.total, share), NULL);
    mva_tape_clear();
    int64_t off = 0;
    for (int k = 0; k < MVEAD_EAM_NPARAMS; k++) {
        const mva_var *p = s->params[k];
        int64_t n = mvt_numel(p->value);
        part->has[k] = p->grad != NULL;
        if (p->grad) {
            mvt_tensor *c = mvt_contiguous(p->grad);
            memcpy(g + off, mvt_f32(c), sizeof(float) * (size_t)n);
            mvt_release(c);
        } else memset(g + off, 0, sizeof(float) * (size_t)n);
        off += n;
    }
    drop_grads(s->params);
    return 0;
}

/* sum += sample: THE summation of a step (float adds in sample order). */
static void add_sample(float *acc, sample_part *sum, const float *g, const sample_part *part, int64_t n) {
    for (int64_t j = 0; j < n; j++) acc[j] += g[j];
    for (int k = 0; k < 3; k++) sum->loss[k] += part->loss[k];
    for (int k = 0; k < MVEAD_EAM_NPARAMS; k++) sum->has[k] |= part->has[k];
}

/* Buffers of the per-sample steps: g one sample's gradient, acc the sum
 * (every rank after the broadcast), held[Bmax n_grad] + parts[Bmax] the
 * gradients a rank > 0 computes before sending them to rank 0. */
typedef struct {
    float *z, *g, *acc, *held;
    sample_part *parts;
} step_bufs;

/* The gradient of the global batch samples[0..B) (negatives nv/np[B]) in
 * acc and sum, identical on every rank and bitwise the one-process result.
 * Returns -1 (mv_error) on a read or objective failure on this rank (main
 * then ends the job). */
static int batch_gradient(const step_ctx *s, mvd_cache *cache, const int64_t *samples, int B, const int64_t *nv,
                          const int64_t *np, step_bufs *b, sample_part *sum) {
    int R = mvead_mpi_rank(), P = mvead_mpi_size();
    int64_t n = s->n_grad;
    memset(b->acc, 0, sizeof(float) * (size_t)n);
    memset(sum, 0, sizeof *sum);
    int64_t lo = 0, hi = B;
    if (P > 1) mvead_mpi_block_of(B, R, P, &lo, &hi);
    for (int64_t i = lo; i < hi; i++) {
        /* rank 0's block comes first in sample order: add as they come; the
         * other ranks keep theirs for rank 0 */
        float *g = R == 0 ? b->g : b->held + (size_t)(i - lo) * n;
        sample_part *part = R == 0 ? &b->parts[0] : &b->parts[i - lo];
        if (mvd_cache_read(cache, samples[i], b->z) || sample_gradient(s, b->z, nv[i], np[i], B, g, part)) return -1;
        if (R == 0) add_sample(b->acc, sum, g, part, n);
    }
    if (P == 1) return 0;
    if (R > 0) {
        for (int64_t i = lo; i < hi; i++)
            if (mvead_mpi_send(&b->parts[i - lo], sizeof(sample_part), 0, TAG_SAMPLE_PART) ||
                mvead_mpi_send(b->held + (size_t)(i - lo) * n, sizeof(float) * (size_t)n, 0, TAG_SAMPLE_GRAD)) return -1;
    } else {
        for (int r = 1; r < P; r++) {
            int64_t rlo, rhi;
            mvead_mpi_block_of(B, r, P, &rlo, &rhi);
            for (int64_t i = rlo; i < rhi; i++) {
                if (mvead_mpi_recv(&b->parts[0], sizeof(sample_part), r, TAG_SAMPLE_PART) ||
                    mvead_mpi_recv(b->g, sizeof(float) * (size_t)n, r, TAG_SAMPLE_GRAD)) return -1;
                add_sample(b->acc, sum, b->g, &b->parts[0], n);
            }
        }
    }
    if (mvead_mpi_bcast(sum, sizeof *sum, 0) || mvead_mpi_bcast(b->acc, sizeof(float) * (size_t)n, 0)) return -1;
    return 0;
}

/* The summed gradient into the parameters' .grad (a parameter no sample
 * reached keeps none: AdamW skips it). Returns whether loss and gradient
 * are finite (the same answer on every rank). */
static bool set_grads(const step_ctx *s, const float *acc, const sample_part *sum, double *grad_norm,
                      const char **bad_tensor) {
    bool finite = isfinite(sum->loss[2]);
    *bad_tensor = finite ? NULL : "loss";
    double sq = 0;   /* in parameter order: the same on every rank and thread count */
    int64_t off = 0;
    for (int k = 0; k < MVEAD_EAM_NPARAMS; k++) {
        mva_var *p = s->params[k];
        int64_t n = mvt_numel(p->value);
        for (int64_t j = 0; j < n; j++) {
            double g = acc[off + j];
            if (!isfinite(g) && !*bad_tensor) { *bad_tensor = mvead_eam_param_names[k]; finite = false; }
            sq += g * g;
        }
        mvt_release(p->grad);
        p->grad = sum->has[k] ? mvt_from_data(MVT_F32, p->value->ndim, p->value->shape, acc + off) : NULL;
        off += n;
    }
    *grad_norm = sqrt(sq);
    return finite;
}

int mvead_stage_train(const mvead_config *c, bool resume) {
    mvead_paths p;
    if (mvead_paths_init(c, &p, true)) return -1;
    mvd_cache *cache = mvd_cache_open(p.train_cache);
    if (!cache) return mv_error_prefix("train (run `mvead extract` first)");
    const mvd_cache_info *in = &cache->info;
    int V = (int)in->V, N = (int)in->N, D = (int)in->D;
    int64_t S = in->S;
    int rc = -1;
    mvead_state st = {0};
    mvn_adamw *opt = NULL;
    mvt_tensor *static_mask = NULL, *centers32 = NULL;
    int64_t *order = NULL, *nv = NULL, *np = NULL;
    step_bufs sb = {0};
    int R = mvead_mpi_rank(), ranks = mvead_mpi_size();
    /* attention-score gradients are the largest buffers of a step; only the leaves' are needed */
    bool keep_prev = mva_set_keep_intermediate_grads(false);
    mvead_fusion_opts fo;
    mvead_objective_opts oo;
    mvead_objective_opts_default(&oo);
    if (mvead_objective_parse(c->objective, &oo.kind)) goto done;
    oo.K = oo.kind == MVEAD_OBJ_DEEPSVDD ? 1 : c->centers;
    oo.n_k = c->n_k;
    oo.lambda = c->lambda;
    if (S < 1) { mv_error("%s: no training samples", p.train_cache); goto done; }
    if (mvead_pipeline_fusion(c, &p, in, &fo, &static_mask)) goto done;

    bool trainable = mvead_fusion_attends(fo.mode) && oo.kind != MVEAD_OBJ_NONE;
    bool have_ckpt = access(p.checkpoint, F_OK) == 0;
    order = malloc(sizeof(int64_t) * (size_t)S);
    nv = malloc(sizeof(int64_t) * (size_t)c->batch);
    np = malloc(sizeof(int64_t) * (size_t)c->batch);
    if (!order || !nv || !np) { mv_error("train: out of memory"); goto done; }

    if (resume && have_ckpt) {
        /* The optimiser needs the parameters first: load the state, then the moments. */
        if (mvead_checkpoint_load(p.checkpoint, &st, NULL)) goto done;
        if (st.has_eam) {
            mva_var *pp[MVEAD_EAM_NPARAMS];
            mvead_eam_params(&st.eam, pp);
            opt = mvn_adamw_new(pp, MVEAD_EAM_NPARAMS);
            mvead_state tmp;
            if (mvead_checkpoint_load(p.checkpoint, &tmp, opt)) goto done;
            mvead_state_free(&tmp);
        }
        mvead_log("train: resuming %s at epoch %d/%d", p.checkpoint, st.epochs_done, c->epochs);
    } else {
        if (mvead_fusion_attends(fo.mode)) {
            if (mvead_eam_init_for_run(c, D, &st.eam)) goto done;
            st.has_eam = true;
            mva_var *pp[MVEAD_EAM_NPARAMS];
            mvead_eam_params(&st.eam, pp);
            opt = mvn_adamw_new(pp, MVEAD_EAM_NPARAMS);
        }
        if (trainable) {
            /* Centres from the EAM outputs of all training patches at initialisation. */
            st.centers = mvead_centers_for_run(c, &oo, cache, &st, &fo, static_mask);
            if (!st.centers) goto done;
        }
    }
    if (opt) {
        opt->lr = c->lr;
        opt->weight_decay = c->wd;
    }
    if (!trainable) {
        mvead_log("train: nothing to train (fusion %s, objective %s): writing the initial state", c->fusion, c->objective);
        st.epochs_done = c->epochs;
        if (R == 0 && (mvead_checkpoint_save(p.checkpoint, c, &st, opt) || mvead_state_write_loss_csv(p.loss_csv, &st))) goto done;
        rc = 0;
        goto done;
    }
    centers32 = mvt_to_dtype(st.centers, MVT_F32);
    step_ctx sc = {&oo, &st.eam, &fo, static_mask, centers32, {0}, V, N, D, 0};
    mvead_eam_params(&st.eam, sc.params);
    for (int k = 0; k < MVEAD_EAM_NPARAMS; k++) sc.n_grad += mvt_numel(sc.params[k]->value);
    /* a rank > 0 holds the gradients of its block of a batch until rank 0 takes them */
    int64_t held = 0;
    if (R > 0) {
        int64_t lo, hi;
        mvead_mpi_block_of(c->batch, R, ranks, &lo, &hi);
        held = hi - lo;
    }
    size_t gbytes = sizeof(float) * (size_t)sc.n_grad;
    sb.z = malloc(sizeof(float) * (size_t)V * N * D);
    sb.g = malloc(gbytes);
    sb.acc = malloc(gbytes);
    sb.held = malloc(gbytes * (size_t)held + 1);
    sb.parts = malloc(sizeof(sample_part) * (size_t)(held + 1));
    if (!sb.z || !sb.g || !sb.acc || !sb.held || !sb.parts) {
        mv_error("train: out of memory for the gradients of %lld samples x %lld parameters", (long long)held + 2,
                 (long long)sc.n_grad);
        goto done;
    }
    int64_t steps_per_epoch = (S + c->batch - 1) / c->batch;
    mvead_progress pr;
    mvead_progress_start(&pr, "train", (int64_t)c->epochs * steps_per_epoch);
    mvead_progress_resume(&pr, (int64_t)st.epochs_done * steps_per_epoch);
    for (int epoch = st.epochs_done; epoch < c->epochs; epoch++) {
        /* Per-epoch stream: a resumed run draws exactly what an uninterrupted one would. */
        mvt_rng rng;
        mvt_rng_seed(&rng, c->seed * 1000003ull + (uint64_t)epoch);
        permutation(&rng, S, order);
        for (int64_t b0 = 0; b0 < S; b0 += c->batch) {
            int B = (int)(S - b0 < c->batch ? S - b0 : c->batch);
            mvead_draw_negatives(&rng, B, V, N, nv, np);   /* the whole batch's draws on every rank */
            sample_part sum;
            if (batch_gradient(&sc, cache, order + b0, B, nv, np, &sb, &sum)) goto done;
            double grad_norm;
            const char *bad;
            bool finite = set_grads(&sc, sb.acc, &sum, &grad_norm, &bad);
            double pos = sum.loss[0], neg = sum.loss[1], total = sum.loss[2];
            int64_t step = st.steps;
            if (!finite) {
                if (!strcmp(c->nan_policy, "stop")) {
                    mv_error("train: non-finite %s%s at epoch %d step %lld (total loss %g); --nan_policy skip skips such batches",
                             strcmp(bad, "loss") ? "gradient of EAM parameter " : "", bad, epoch, (long long)step, total);
                    goto done;
                }
                mvead_log("train: skipping batch at epoch %d step %lld: non-finite %s%s", epoch, (long long)step,
                          strcmp(bad, "loss") ? "gradient of EAM parameter " : "", bad);
            } else {
                mvn_adamw_step(opt);
            }
            drop_grads(sc.params);
            if (mvead_state_log_append(&st, pos, neg, total, grad_norm, epoch)) goto done;
            char extra[96];
            snprintf(extra, sizeof extra, "ep %d loss %.4f (pos %.4f neg %.4f) |g| %.3g", epoch + 1, total, pos, neg, grad_norm);
            mvead_progress_update(&pr, (int64_t)epoch * steps_per_epoch + b0 / c->batch + 1, extra);
        }
        st.epochs_done = epoch + 1;
        if (R == 0 && (mvead_checkpoint_save(p.checkpoint, c, &st, opt) || mvead_state_write_loss_csv(p.loss_csv, &st))) goto done;
        if (getenv("MVEAD_TEST_DIE_AFTER_EPOCH") && atoi(getenv("MVEAD_TEST_DIE_AFTER_EPOCH")) == epoch + 1) {
            /* fault injection for the resume tests: die like a SIGKILL, right after a checkpoint */
            _exit(137);
        }
        if (getenv("MVEAD_TEST_SIGINT_AFTER_EPOCH") && atoi(getenv("MVEAD_TEST_SIGINT_AFTER_EPOCH")) == epoch + 1)
            raise(SIGINT);   /* for the interrupt tests: a Ctrl-C that lands in this epoch */
        if (epoch + 1 < c->epochs &&
            mvead_interrupt_check("after epoch %d of %d (checkpoint saved: %s); rerun with --resume", epoch + 1, c->epochs, p.checkpoint))
            goto done;
    }
    mvead_progress_finish(&pr);
    if (R == 0 && (st.epochs_done == 0 || c->epochs == st.epochs_done)) {
        if (mvead_checkpoint_save(p.checkpoint, c, &st, opt) || mvead_state_write_loss_csv(p.loss_csv, &st)) goto done;
    }
    mvead_log("train: %d epochs, %lld steps, final loss %.5f -> %s (peak RSS %.0f MiB)", st.epochs_done, (long long)st.steps,
              st.steps ? st.log_total[st.steps - 1] : 0.0, p.checkpoint, mvead_peak_rss_mib());
    rc = 0;
done:
    mva_tape_clear();
    mva_set_keep_intermediate_grads(keep_prev);
    if (opt) mvn_adamw_free(opt);
    mvead_state_free(&st);
    mvt_release(static_mask);
    mvt_release(centers32);
    mvd_cache_close(cache);
    free(order);
    free(nv);
    free(np);
    free(sb.z);
    free(sb.g);
    free(sb.acc);
    free(sb.held);
    free(sb.parts);
    /* Only rank 0 writes the checkpoint: nobody reads it (next stage) before it is
     * in place. A rank that failed returns at once (main ends the job): waiting
     * here could pair with another rank's collective. */
    if (ranks > 1 && (rc == 0 || R == 0)) {
        int64_t rc0 = rc;
        mvead_mpi_bcast(&rc0, sizeof rc0, 0);
        if (rc0 && !rc) rc = mv_error("train: rank 0 failed (see its message)");
    }
    return rc;
}

