/* train: EAM pre-training on the feature cache, the run's checkpoint, and
 * the pieces the later stages share (paths, support mask, fused features). */
#include "mvead/pipeline.h"
#include "data/cache.h"
#include "data/h5io.h"
#include "mvead/calibration.h"
#include "mvead/epipolar.h"
#include "mvead/mpi.h"
#include "mvead/objective.h"
#include "mvead/progress.h"
#include "tensor/error.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int mvead_paths_init(const mvead_config *c, mvead_paths *p, bool mkdirs) {
    memset(p, 0, sizeof *p);
    if (mvead_run_dir(c, p->run, sizeof p->run, mkdirs)) return -1;
    int n = c->cache[0] ? snprintf(p->cache, sizeof p->cache, "%s", c->cache)
                        : snprintf(p->cache, sizeof p->cache, "%.1000s/features", p->run);
    if (n >= (int)sizeof p->cache) return mv_error("cache path too long");
    if (mkdirs && mvead_mkdirs(p->cache)) return -1;
    snprintf(p->train_cache, sizeof p->train_cache, "%s/train.h5", p->cache);
    snprintf(p->test_cache, sizeof p->test_cache, "%s/test.h5", p->cache);
    snprintf(p->checkpoint, sizeof p->checkpoint, "%s/checkpoint.h5", p->run);
    snprintf(p->bank, sizeof p->bank, "%s/bank.h5", p->run);
    snprintf(p->scores, sizeof p->scores, "%s/scores.h5", p->run);
    snprintf(p->metrics, sizeof p->metrics, "%s/metrics.json", p->run);
    snprintf(p->loss_csv, sizeof p->loss_csv, "%s/loss.csv", p->run);
    if (c->calib[0]) snprintf(p->calib, sizeof p->calib, "%s", c->calib);
    else snprintf(p->calib, sizeof p->calib, "%s/calibration.json", c->data);
    return 0;
}

void mvead_state_free(mvead_state *s) {
    if (s->has_eam) mvead_eam_free(&s->eam);
    mvt_release(s->centers);
    free(s->log_pos);
    free(s->log_neg);
    free(s->log_total);
    free(s->log_epoch);
    memset(s, 0, sizeof *s);
}

uint8_t *mvead_support_mask(const mvead_config *c, const char *calib_path, int V, int H, int W, int P) {
    mvg_calibration cal;
    if (mvg_calibration_read_json(calib_path, &cal)) return NULL;
    if (cal.V != V) {
        mv_error("%s: calibration has %d views, the features have %d", calib_path, cal.V, V);
        return NULL;
    }
    double *F = malloc(sizeof(double) * 9 * (size_t)(V * V));
    mvg_calibration_F_for_size(&cal, W, H, F);
    int h = H / P, w = W / P, N = h * w;
    uint8_t *m = malloc((size_t)V * N * (size_t)(V - 1) * N);
    mvg_support_mask(F, V, h, w, P, c->delta, m);
    free(F);
    return m;
}

/* ---- checkpoint ------------------------------------------------------------ */

static int log_append(mvead_state *s, double pos, double neg, double total, int64_t epoch) {
    int64_t n = s->steps + 1;
    double *a = realloc(s->log_pos, sizeof(double) * n), *b = a ? realloc(s->log_neg, sizeof(double) * n) : NULL;
    if (a) s->log_pos = a;
    if (b) s->log_neg = b;
    double *t = b ? realloc(s->log_total, sizeof(double) * n) : NULL;
    if (t) s->log_total = t;
    int64_t *e = t ? realloc(s->log_epoch, sizeof(int64_t) * n) : NULL;
    if (!e) return mv_error("out of memory for the loss log");
    s->log_epoch = e;
    s->log_pos[s->steps] = pos;
    s->log_neg[s->steps] = neg;
    s->log_total[s->steps] = total;
    s->log_epoch[s->steps] = epoch;
    s->steps = n;
    return 0;
}

int mvead_checkpoint_save(const char *path, const mvead_config *c, const mvead_state *s, const mvn_adamw *opt) {
    mvh5_writer w;
    if (mvh5_create(&w, path, "checkpoint", MVEAD_CHECKPOINT_FORMAT)) return -1;
    hid_t f = w.file;
    int rc = 0;
    rc |= mvh5_attr_set_int(f, ".", "epochs_done", s->epochs_done);
    rc |= mvh5_attr_set_int(f, ".", "steps", s->steps);
    rc |= mvh5_attr_set_int(f, ".", "has_eam", s->has_eam);
    rc |= mvh5_attr_set_str(f, ".", "fusion", c->fusion);
    rc |= mvh5_attr_set_str(f, ".", "objective", c->objective);
    rc |= mvh5_attr_set_str(f, ".", "init", c->init);
    rc |= mvh5_attr_set_int(f, ".", "seed", (int64_t)c->seed);
    char tmpcfg[1200];
    snprintf(tmpcfg, sizeof tmpcfg, "%s.config.json", path);
    if (!mvead_config_write_json(c, tmpcfg)) {
        FILE *fp = fopen(tmpcfg, "rb");
        if (fp) {
            char *buf = calloc(1, 1 << 16);
            size_t n = fread(buf, 1, (1 << 16) - 1, fp);
            buf[n] = 0;
            fclose(fp);
            rc |= mvh5_attr_set_str(f, ".", "config", buf);
            free(buf);
        }
        unlink(tmpcfg);
    }
    if (s->has_eam) {
        mva_var *p[MVEAD_EAM_NPARAMS];
        mvead_eam_params(&s->eam, p);
        rc |= mvh5_attr_set_int(f, ".", "dim", s->eam.dim);
        rc |= mvh5_attr_set_int(f, ".", "heads", s->eam.heads);
        for (int i = 0; i < MVEAD_EAM_NPARAMS && !rc; i++) {
            char name[128];
            snprintf(name, sizeof name, "eam/%s", mvead_eam_param_names[i]);
            rc |= mvh5_write_tensor(f, name, p[i]->value);
            if (opt && i < opt->n) {
                snprintf(name, sizeof name, "adamw/m/%s", mvead_eam_param_names[i]);
                rc |= mvh5_write_tensor(f, name, opt->m[i]);
                snprintf(name, sizeof name, "adamw/v/%s", mvead_eam_param_names[i]);
                rc |= mvh5_write_tensor(f, name, opt->v[i]);
            }
        }
        if (opt && !rc) {
            int64_t sh[1] = {opt->n};
            rc |= mvh5_write_i64(f, "adamw/step", 1, sh, opt->step);
        }
    }
    if (s->centers && !rc) rc |= mvh5_write_tensor(f, "centers", s->centers);
    if (!rc) {
        int64_t sh[1] = {s->steps};
        double zero = 0;
        int64_t zi = 0;
        rc |= mvh5_write_f64(f, "log/pos", 1, sh, s->steps ? s->log_pos : &zero);
        rc |= mvh5_write_f64(f, "log/neg", 1, sh, s->steps ? s->log_neg : &zero);
        rc |= mvh5_write_f64(f, "log/total", 1, sh, s->steps ? s->log_total : &zero);
        rc |= mvh5_write_i64(f, "log/epoch", 1, sh, s->steps ? s->log_epoch : &zi);
    }
    if (rc) {
        mvh5_abort(&w);
        return mv_error_prefix("%s: writing checkpoint", path);
    }
    return mvh5_commit(&w);
}

int mvead_checkpoint_load(const char *path, mvead_state *s, mvn_adamw *opt) {
    int fmt;
    hid_t f = mvh5_open_read(path, "checkpoint", MVEAD_CHECKPOINT_FORMAT, &fmt);
    if (f < 0) return -1;
    memset(s, 0, sizeof *s);
    int64_t epochs, steps, has_eam, dim = 0, heads = 0;
    int rc = -1;
    mvt_tensor *lp = NULL, *ln = NULL, *lt = NULL, *le = NULL;
    if (mvh5_attr_get_int(f, ".", "epochs_done", &epochs, path) || mvh5_attr_get_int(f, ".", "steps", &steps, path) ||
        mvh5_attr_get_int(f, ".", "has_eam", &has_eam, path)) goto done;
    if (epochs < 0 || steps < 0) { mv_error("%s: negative epoch/step counters", path); goto done; }
    s->epochs_done = (int)epochs;
    if (has_eam) {
        if (mvh5_attr_get_int(f, ".", "dim", &dim, path) || mvh5_attr_get_int(f, ".", "heads", &heads, path)) goto done;
        if (dim < 1 || heads < 1 || dim % heads) { mv_error("%s: bad EAM dim %lld / heads %lld", path, (long long)dim, (long long)heads); goto done; }
        mvt_tensor *t[MVEAD_EAM_NPARAMS] = {0};
        bool ok = true;
        for (int i = 0; i < MVEAD_EAM_NPARAMS && ok; i++) {
            char name[128];
            snprintf(name, sizeof name, "eam/%s", mvead_eam_param_names[i]);
            bool is_w = mvead_eam_param_names[i][0] == 'w';
            int64_t shp[2] = {dim, dim};
            t[i] = mvh5_read_tensor(f, name, MVT_F32, is_w ? 2 : 1, shp, path);
            ok = t[i] != NULL;
        }
        if (ok) {
            mvead_eam_weights src = {t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8], t[9]};
            ok = mvead_eam_init_copy(&s->eam, (int)heads, MVT_F32, &src, NULL) == 0;
            if (ok) s->has_eam = true;
        }
        for (int i = 0; i < MVEAD_EAM_NPARAMS; i++) mvt_release(t[i]);
        if (!ok) goto done;
        if (opt) {
            mva_var *p[MVEAD_EAM_NPARAMS];
            mvead_eam_params(&s->eam, p);
            int64_t sh[1] = {MVEAD_EAM_NPARAMS};
            mvt_tensor *st = mvh5_read_tensor(f, "adamw/step", MVT_I64, 1, sh, path);
            if (!st) goto done;
            for (int i = 0; i < opt->n; i++) opt->step[i] = mvt_i64(st)[i];
            mvt_release(st);
            for (int i = 0; i < MVEAD_EAM_NPARAMS; i++) {
                char name[128];
                snprintf(name, sizeof name, "adamw/m/%s", mvead_eam_param_names[i]);
                mvt_tensor *m = mvh5_read_tensor(f, name, MVT_F32, p[i]->value->ndim, p[i]->value->shape, path);
                snprintf(name, sizeof name, "adamw/v/%s", mvead_eam_param_names[i]);
                mvt_tensor *v = m ? mvh5_read_tensor(f, name, MVT_F32, p[i]->value->ndim, p[i]->value->shape, path) : NULL;
                if (!v) { mvt_release(m); goto done; }
                mvt_copy_(opt->m[i], m);
                mvt_copy_(opt->v[i], v);
                mvt_release(m);
                mvt_release(v);
            }
        }
    }
    if (mvh5_exists(f, "centers")) {
        s->centers = mvh5_read_tensor(f, "centers", MVT_F64, 3, NULL, path);
        if (!s->centers) goto done;
    }
    int64_t sh[1] = {steps};
    lp = mvh5_read_tensor(f, "log/pos", MVT_F64, 1, sh, path);
    ln = lp ? mvh5_read_tensor(f, "log/neg", MVT_F64, 1, sh, path) : NULL;
    lt = ln ? mvh5_read_tensor(f, "log/total", MVT_F64, 1, sh, path) : NULL;
    le = lt ? mvh5_read_tensor(f, "log/epoch", MVT_I64, 1, sh, path) : NULL;
    if (!le) goto done;
    for (int64_t i = 0; i < steps; i++)
        if (log_append(s, mvt_f64(lp)[i], mvt_f64(ln)[i], mvt_f64(lt)[i], mvt_i64(le)[i])) goto done;
    rc = 0;
done:
    mvt_release(lp);
    mvt_release(ln);
    mvt_release(lt);
    mvt_release(le);
    H5Fclose(f);
    if (rc) mvead_state_free(s);
    return rc;
}

static int write_loss_csv(const char *path, const mvead_state *s) {
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *fp = fopen(tmp, "w");
    if (!fp) return mv_error("%s: cannot write: %s", tmp, strerror(errno));
    fprintf(fp, "step,epoch,pos,neg,total\n");
    for (int64_t i = 0; i < s->steps; i++)
        fprintf(fp, "%lld,%lld,%.9g,%.9g,%.9g\n", (long long)i, (long long)s->log_epoch[i], s->log_pos[i], s->log_neg[i], s->log_total[i]);
    if (fclose(fp)) return mv_error("%s: write failed", tmp);
    if (rename(tmp, path)) return mv_error("%s: cannot rename into place", path);
    return 0;
}

/* ---- fused features ------------------------------------------------------------ */

int mvead_fuse_sample(const mvead_state *s, const mvead_fusion_opts *f, const mvt_tensor *static_mask,
                      const float *z, int V, int N, int D, float *out) {
    size_t n = (size_t)V * N * D;
    if (!s->has_eam || f->mode == MVEAD_FUSION_NONE) {
        memcpy(out, z, n * sizeof(float));
        return 0;
    }
    bool prev = mva_set_grad_enabled(false);
    int64_t shape[3] = {V, N, D};
    mva_var *Z = mva_const(mvt_from_data(MVT_F32, 3, shape, z));
    mva_var *O = mvead_fuse(&s->eam, f, Z, static_mask);
    int rc = 0;
    if (!O) rc = -1;
    else {
        mvt_tensor *c = mvt_contiguous(O->value);
        memcpy(out, mvt_f32(c), n * sizeof(float));
        mvt_release(c);
    }
    mva_tape_clear();
    mva_set_grad_enabled(prev);
    return rc;
}

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

/* The EAM a run starts from: copy of backbone block layer+1, or random. */
static int init_eam(const mvead_config *c, int D, mvead_eam *m) {
    if (!strcmp(c->init, "random")) {
        int heads = 0;
        mvead_eam_weights src;
        void *keep = NULL;
        /* heads follow the backbone when it is known; otherwise a divisor of D */
        if (mvead_backbone_copy_weights(c, D, &heads, &src, &keep) == 0) mvead_backbone_release(keep);
        else {
            mv_error_clear();
            heads = D % 12 == 0 ? 12 : D % 8 == 0 ? 8 : D % 4 == 0 ? 4 : 1;
        }
        return mvead_eam_init_random(m, D, heads, MVT_F32, c->seed);
    }
    int heads = 0;
    mvead_eam_weights src;
    void *keep = NULL;
    if (mvead_backbone_copy_weights(c, D, &heads, &src, &keep)) return mv_error_prefix("--init copy");
    int rc = mvead_eam_init_copy(m, heads, MVT_F32, &src, NULL);
    mvead_backbone_release(keep);
    return rc;
}

static int fusion_setup(const mvead_config *c, const mvead_paths *p, const mvd_cache_info *in,
                        mvead_fusion_opts *fo, mvt_tensor **static_mask) {
    mvead_fusion_opts_default(fo);
    if (mvead_fusion_parse(c->fusion, &fo->mode)) return -1;
    fo->h = in->grid_h;
    fo->w = in->grid_w;
    fo->mvas_window = c->mvas_window;
    fo->mvas_topk = c->mvas_topk;
    *static_mask = NULL;
    uint8_t *support = NULL;
    if (fo->mode == MVEAD_FUSION_EAM) {
        support = mvead_support_mask(c, p->calib, (int)in->V, in->H, in->W, in->P);
        if (!support) return -1;
    }
    if (fo->mode == MVEAD_FUSION_EAM || fo->mode == MVEAD_FUSION_FULL) {
        *static_mask = mvead_fusion_static_mask(fo, support, (int)in->V, (int)in->N, MVT_F32);
        if (!*static_mask) { free(support); return -1; }
    }
    free(support);
    return 0;
}

int mvead_pipeline_fusion(const mvead_config *c, const mvead_paths *p, const mvd_cache_info *in,
                          mvead_fusion_opts *fo, mvt_tensor **static_mask) {
    return fusion_setup(c, p, in, fo, static_mask);
}

static bool params_finite(mva_var *const *p, int n, bool grads) {
    for (int i = 0; i < n; i++) {
        const mvt_tensor *t = grads ? p[i]->grad : p[i]->value;
        if (t && !mvt_all_finite(t)) return false;
    }
    return true;
}

/* ---- data parallelism (mpirun -np P mvead train) ---------------------------------
 * Every rank draws the same permutation and negatives for the GLOBAL batch of
 * B samples and computes the objective on its block [lo, hi) of Br samples.
 * The objective is a mean over the batch (pos: over the batch's patches, all
 * samples having V N of them; neg: (1/B) sum_i neg_i), so the rank's loss
 * scaled by Br / B sums over ranks to the one-process loss, and so do the
 * gradients. They are summed in rank order (mvead/mpi.h), identical on every
 * rank, and every rank takes the same AdamW step. */

/* Centres from the initial EAM outputs of every training patch: each rank
 * fuses its block of samples, rank 0 gathers them (rank order = sample order),
 * runs k-means and broadcasts the centres. One process: all samples here. */
static mvt_tensor *centers_from_cache(const mvead_config *c, const mvead_objective_opts *oo, mvd_cache *cache,
                                      const mvead_state *st, const mvead_fusion_opts *fo, const mvt_tensor *static_mask,
                                      float *zbuf) {
    const mvd_cache_info *in = &cache->info;
    int V = (int)in->V, N = (int)in->N, D = (int)in->D;
    int64_t S = in->S, lo, hi;
    size_t per = (size_t)V * N * D;
    mvead_mpi_block(S, &lo, &hi);
    float *mine = malloc(sizeof(float) * per * (size_t)(hi - lo) + 1);
    int64_t ok = mine != NULL;
    mvead_progress pr;
    mvead_progress_start(&pr, "centres", hi - lo);
    for (int64_t i = lo; ok && i < hi; i++) {
        ok = !mvd_cache_read(cache, i, zbuf) && !mvead_fuse_sample(st, fo, static_mask, zbuf, V, N, D, mine + (size_t)(i - lo) * per);
        mvead_progress_update(&pr, i - lo + 1, NULL);
    }
    mvead_progress_finish(&pr);
    /* a failure on any rank stops all of them here, before the gather */
    int64_t bad = !ok;
    mvead_mpi_allreduce_max_i64(&bad, 1);
    if (bad) {
        free(mine);
        if (ok) mv_error("train: another rank failed computing the centres (see its message)");
        return NULL;
    }
    void *all = NULL;
    if (mvead_mpi_size() > 1) {
        mvead_mpi_gather_bytes(mine, sizeof(float) * per * (size_t)(hi - lo), &all, NULL, 0);
        free(mine);
    } else all = mine;
    int64_t cshape[3] = {0, 0, 0};
    mvt_tensor *centers = NULL;
    if (mvead_mpi_rank() == 0) {
        /* samples [S][V][N][D] -> view-major [V][S N][D] */
        const float *src = all;
        int64_t shp[3] = {V, S * N, D};
        mvt_tensor *feats = mvt_empty(MVT_F32, 3, shp);
        float *fp = mvt_f32(feats);
        for (int64_t i = 0; i < S; i++)
            for (int v = 0; v < V; v++)
                memcpy(fp + ((size_t)v * S * N + (size_t)i * N) * D, src + (size_t)i * per + (size_t)v * N * D, sizeof(float) * N * D);
        centers = mvead_centers_init(oo->kind, feats, oo->K, oo->lloyd_iters, c->seed);
        mvt_release(feats);
        if (centers) memcpy(cshape, centers->shape, sizeof cshape);
    }
    free(all);
    if (mvead_mpi_size() == 1) return centers;
    mvead_mpi_bcast(cshape, sizeof cshape, 0);
    if (!cshape[0]) {
        if (mvead_mpi_rank() > 0) mv_error("train: rank 0 failed computing the centres (see its message)");
        return NULL;
    }
    if (!centers) centers = mvt_zeros(MVT_F64, 3, cshape);
    mvead_mpi_bcast(mvt_f64(centers), sizeof(double) * (size_t)mvt_numel(centers), 0);
    return centers;
}

/* Sums the ranks' shares of the gradients (into pp[i]->grad) and of the
 * logged losses (pos, neg, total) in rank order. A parameter keeps a NULL
 * gradient only if it has none on every rank (AdamW then skips it, as in one
 * process). Returns whether the summed loss and gradients are finite. */
static bool allreduce_step(mva_var *const *pp, float *gbuf, double *losses) {
    int64_t has[MVEAD_EAM_NPARAMS];
    int64_t off = 0;
    for (int i = 0; i < MVEAD_EAM_NPARAMS; i++) {
        int64_t n = mvt_numel(pp[i]->value);
        has[i] = pp[i]->grad != NULL;
        if (has[i]) {
            mvt_tensor *g = mvt_contiguous(pp[i]->grad);
            memcpy(gbuf + off, mvt_f32(g), sizeof(float) * (size_t)n);
            mvt_release(g);
        } else memset(gbuf + off, 0, sizeof(float) * (size_t)n);
        off += n;
    }
    mvead_mpi_allreduce_sum_f32(gbuf, off);
    mvead_mpi_allreduce_sum_f64(losses, 3);
    mvead_mpi_allreduce_max_i64(has, MVEAD_EAM_NPARAMS);
    off = 0;
    for (int i = 0; i < MVEAD_EAM_NPARAMS; i++) {
        const mvt_tensor *v = pp[i]->value;
        if (has[i]) {
            if (!pp[i]->grad) pp[i]->grad = mvt_zeros(v->dtype, v->ndim, v->shape);
            mvt_tensor *sum = mvt_from_data(MVT_F32, v->ndim, v->shape, gbuf + off);
            mvt_copy_(pp[i]->grad, sum);
            mvt_release(sum);
        }
        off += mvt_numel(v);
    }
    return isfinite(losses[2]) && params_finite(pp, MVEAD_EAM_NPARAMS, true);
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
    mvt_tensor *static_mask = NULL;
    float *zbuf = NULL, *obuf = NULL;
    int64_t *order = NULL, *nv = NULL, *np = NULL;
    float *gbuf = NULL;   /* flat gradients for the MPI sum */
    int R = mvead_mpi_rank(), ranks = mvead_mpi_size();
    mvead_fusion_opts fo;
    mvead_objective_opts oo;
    mvead_objective_opts_default(&oo);
    if (mvead_objective_parse(c->objective, &oo.kind)) goto done;
    oo.K = oo.kind == MVEAD_OBJ_DEEPSVDD ? 1 : c->centers;
    oo.n_k = c->n_k;
    oo.lambda = c->lambda;
    if (S < 1) { mv_error("%s: no training samples", p.train_cache); goto done; }
    if (fusion_setup(c, &p, in, &fo, &static_mask)) goto done;

    bool trainable = fo.mode != MVEAD_FUSION_NONE && oo.kind != MVEAD_OBJ_NONE;
    bool have_ckpt = access(p.checkpoint, F_OK) == 0;
    zbuf = malloc(sizeof(float) * (size_t)c->batch * V * N * D);
    obuf = malloc(sizeof(float) * (size_t)V * N * D);
    order = malloc(sizeof(int64_t) * (size_t)S);
    nv = malloc(sizeof(int64_t) * (size_t)c->batch);
    np = malloc(sizeof(int64_t) * (size_t)c->batch);

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
        if (fo.mode != MVEAD_FUSION_NONE) {
            if (init_eam(c, D, &st.eam)) goto done;
            st.has_eam = true;
            mva_var *pp[MVEAD_EAM_NPARAMS];
            mvead_eam_params(&st.eam, pp);
            opt = mvn_adamw_new(pp, MVEAD_EAM_NPARAMS);
        }
        if (trainable) {
            /* Centres from the EAM outputs of all training patches at initialisation. */
            st.centers = centers_from_cache(c, &oo, cache, &st, &fo, static_mask, zbuf);
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
        if (R == 0 && (mvead_checkpoint_save(p.checkpoint, c, &st, opt) || write_loss_csv(p.loss_csv, &st))) goto done;
        rc = 0;
        goto done;
    }
    mvt_tensor *centers32 = mvt_to_dtype(st.centers, MVT_F32);
    int64_t steps_per_epoch = (S + c->batch - 1) / c->batch;
    mvead_progress pr;
    mvead_progress_start(&pr, "train", (int64_t)c->epochs * steps_per_epoch);
    mvead_progress_update(&pr, (int64_t)st.epochs_done * steps_per_epoch, NULL);
    mva_var *pp[MVEAD_EAM_NPARAMS];
    mvead_eam_params(&st.eam, pp);
    /* attention-score gradients are the largest buffers of a step; only the leaves' are needed */
    bool keep_prev = mva_set_keep_intermediate_grads(false);
    int64_t n_grad = 0;
    for (int i = 0; i < MVEAD_EAM_NPARAMS; i++) n_grad += mvt_numel(pp[i]->value);
    if (ranks > 1 && !(gbuf = malloc(sizeof(float) * (size_t)n_grad))) {
        mv_error("train: out of memory for the %lld gradients exchanged between ranks", (long long)n_grad);
        mvt_release(centers32);
        goto done;
    }
    for (int epoch = st.epochs_done; epoch < c->epochs; epoch++) {
        /* Per-epoch stream: a resumed run draws exactly what an uninterrupted one would. */
        mvt_rng rng;
        mvt_rng_seed(&rng, c->seed * 1000003ull + (uint64_t)epoch);
        permutation(&rng, S, order);
        double ep_total = 0;
        for (int64_t b0 = 0; b0 < S; b0 += c->batch) {
            int B = (int)(S - b0 < c->batch ? S - b0 : c->batch);
            /* this rank's block of the global batch (all of it in one process) */
            int64_t lo = 0, hi = B;
            if (ranks > 1) mvead_mpi_block_of(B, R, ranks, &lo, &hi);
            int Br = (int)(hi - lo);
            for (int i = 0; i < Br; i++)
                if (mvd_cache_read(cache, order[b0 + lo + i], zbuf + (size_t)i * V * N * D)) { mvt_release(centers32); goto done; }
            mvead_draw_negatives(&rng, B, V, N, nv, np);   /* the whole batch's draws on every rank */
            mvn_adamw_zero_grad(opt);
            double total = 0, pos = 0, neg = 0;
            bool finite = true;
            if (Br > 0) {
                int64_t shp[4] = {Br, V, N, D};
                mva_var *Z = mva_const(mvt_from_data(MVT_F32, 4, shp, zbuf));
                mvead_loss L;
                if (mvead_objective_forward(&oo, &st.eam, &fo, Z, static_mask, centers32, nv + lo, np + lo, &L)) {
                    mva_tape_clear();
                    mvt_release(centers32);
                    goto done;
                }
                total = mvt_item(L.total->value);
                pos = mvt_item(L.pos->value);
                neg = L.neg ? mvt_item(L.neg->value) : 0;
                mva_var *root = L.total;
                if (ranks > 1) {
                    /* this rank's share of the batch mean */
                    double share = (double)Br / (double)B;
                    root = mva_scale(L.total, share);
                    total *= share;
                    pos *= share;
                    neg *= share;
                }
                finite = isfinite(total);
                if (finite) {
                    mva_backward(root, NULL);
                    finite = params_finite(pp, MVEAD_EAM_NPARAMS, true);
                }
                mva_tape_clear();
            }
            if (ranks > 1) {
                /* every rank sees the same sums, so all take the same decision below */
                double losses[3] = {pos, neg, total};
                finite = allreduce_step(pp, gbuf, losses);
                pos = losses[0];
                neg = losses[1];
                total = losses[2];
            }
            int64_t step = st.steps;
            if (!finite) {
                if (!strcmp(c->nan_policy, "stop")) {
                    mv_error("train: non-finite loss or gradient at epoch %d step %lld (total %g); --nan_policy skip skips such batches", epoch, (long long)step, total);
                    mvt_release(centers32);
                    goto done;
                }
                mvead_log("train: skipping batch at epoch %d step %lld: non-finite loss/gradient", epoch, (long long)step);
                mvn_adamw_zero_grad(opt);
            } else {
                mvn_adamw_step(opt);
            }
            if (log_append(&st, pos, neg, total, epoch)) { mvt_release(centers32); goto done; }
            ep_total += total * B;
            char extra[96];
            snprintf(extra, sizeof extra, "ep %d loss %.4f (pos %.4f neg %.4f)", epoch + 1, total, pos, neg);
            mvead_progress_update(&pr, (int64_t)epoch * steps_per_epoch + b0 / c->batch + 1, extra);
        }
        st.epochs_done = epoch + 1;
        if (R == 0 && (mvead_checkpoint_save(p.checkpoint, c, &st, opt) || write_loss_csv(p.loss_csv, &st))) {
            mvt_release(centers32);
            goto done;
        }
        if (getenv("MVEAD_TEST_DIE_AFTER_EPOCH") && atoi(getenv("MVEAD_TEST_DIE_AFTER_EPOCH")) == epoch + 1) {
            /* fault injection for the resume tests: die like a SIGKILL, right after a checkpoint */
            _exit(137);
        }
        (void)ep_total;
    }
    mvead_progress_finish(&pr);
    mva_set_keep_intermediate_grads(keep_prev);
    mvt_release(centers32);
    if (R == 0 && (st.epochs_done == 0 || c->epochs == st.epochs_done)) {
        if (mvead_checkpoint_save(p.checkpoint, c, &st, opt) || write_loss_csv(p.loss_csv, &st)) goto done;
    }
    mvead_log("train: %d epochs, %lld steps, final loss %.5f -> %s", st.epochs_done, (long long)st.steps,
              st.steps ? st.log_total[st.steps - 1] : 0.0, p.checkpoint);
    rc = 0;
done:
    mva_tape_clear();
    if (opt) mvn_adamw_free(opt);
    mvead_state_free(&st);
    mvt_release(static_mask);
    mvd_cache_close(cache);
    free(zbuf);
    free(obuf);
    free(order);
    free(nv);
    free(np);
    free(gbuf);
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
