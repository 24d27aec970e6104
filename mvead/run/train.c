/* train: EAM pre-training on the feature cache, the run's checkpoint, and
 * the pieces the later stages share (paths, support mask, fused features). */
#include "mvead/run/pipeline.h"
#include "data/cache.h"
#include "data/h5io.h"
#include "mvead/geometry/calibration.h"
#include "mvead/geometry/epipolar.h"
#include "mvead/run/mpi.h"
#include "mvead/method/objective.h"
#include "mvead/run/progress.h"
#include "mvead/run/scratch.h"
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
    free(s->log_grad_norm);
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

static int log_append(mvead_state *s, double pos, double neg, double total, double grad_norm, int64_t epoch) {
    int64_t n = s->steps + 1;
    double *a = realloc(s->log_pos, sizeof(double) * n), *b = a ? realloc(s->log_neg, sizeof(double) * n) : NULL;
    if (a) s->log_pos = a;
    if (b) s->log_neg = b;
    double *t = b ? realloc(s->log_total, sizeof(double) * n) : NULL;
    if (t) s->log_total = t;
    double *g = t ? realloc(s->log_grad_norm, sizeof(double) * n) : NULL;
    if (g) s->log_grad_norm = g;
    int64_t *e = g ? realloc(s->log_epoch, sizeof(int64_t) * n) : NULL;
    if (!e) return mv_error("out of memory for the loss log");
    s->log_epoch = e;
    s->log_pos[s->steps] = pos;
    s->log_neg[s->steps] = neg;
    s->log_total[s->steps] = total;
    s->log_grad_norm[s->steps] = grad_norm;
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
    rc |= mvh5_attr_set_str(f, ".", "attention", c->attention);
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
        rc |= mvh5_write_f64(f, "log/grad_norm", 1, sh, s->steps ? s->log_grad_norm : &zero);
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
    mvt_tensor *lp = NULL, *ln = NULL, *lt = NULL, *le = NULL, *lg = NULL;
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
    lg = mvh5_read_tensor(f, "log/grad_norm", MVT_F64, 1, sh, path);
    if (!lg) goto done;
    for (int64_t i = 0; i < steps; i++)
        if (log_append(s, mvt_f64(lp)[i], mvt_f64(ln)[i], mvt_f64(lt)[i], mvt_f64(lg)[i], mvt_i64(le)[i])) goto done;
    rc = 0;
done:
    mvt_release(lp);
    mvt_release(ln);
    mvt_release(lt);
    mvt_release(le);
    mvt_release(lg);
    H5Fclose(f);
    if (rc) mvead_state_free(s);
    return rc;
}

static int write_loss_csv(const char *path, const mvead_state *s) {
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *fp = fopen(tmp, "w");
    if (!fp) return mv_error("%s: cannot write: %s", tmp, strerror(errno));
    fprintf(fp, "step,epoch,pos,neg,total,grad_norm\n");
    for (int64_t i = 0; i < s->steps; i++)
        fprintf(fp, "%lld,%lld,%.9g,%.9g,%.9g,%.9g\n", (long long)i, (long long)s->log_epoch[i], s->log_pos[i], s->log_neg[i],
                s->log_total[i], s->log_grad_norm[i]);
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

/* The EAM a run starts from: copy of backbone block layer+1, or random with
 * the backbone's head count. train and grads (before training) both call it. */
int mvead_eam_init_for_run(const mvead_config *c, int D, mvead_eam *m) {
    int heads = 0;
    mvead_eam_weights src;
    void *keep = NULL;
    if (!strcmp(c->init, "random")) {
        /* heads follow the backbone when it is known; otherwise a divisor of D */
        if (mvead_backbone_copy_weights(c, D, &heads, &src, &keep) == 0) mvead_backbone_release(keep);
        else {
            mv_error_clear();
            heads = D % 12 == 0 ? 12 : D % 8 == 0 ? 8 : D % 4 == 0 ? 4 : 1;
        }
        return mvead_eam_init_random(m, D, heads, MVT_F32, c->seed);
    }
    if (mvead_backbone_copy_weights(c, D, &heads, &src, &keep)) return mv_error_prefix("--init copy");
    int rc = mvead_eam_init_copy(m, heads, MVT_F32, &src, NULL);
    mvead_backbone_release(keep);
    return rc;
}

static int fusion_setup(const mvead_config *c, const mvead_paths *p, const mvd_cache_info *in,
                        mvead_fusion_opts *fo, mvt_tensor **static_mask) {
    mvead_fusion_opts_default(fo);
    if (mvead_fusion_parse(c->fusion, &fo->mode) || mvead_attention_parse(c->attention, &fo->attention)) return -1;
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

/* ---- fused features of the training set ---------------------------------------------- */

/* Sample i's features [V][N][D] into the view-major all[V][S*N][D]. */
static int scatter_view_major(const float *sample, int64_t i, int64_t S, int V, int N, int D, mvead_scratch *all) {
    for (int v = 0; v < V; v++) {
        size_t off = ((size_t)v * S * N + (size_t)i * N) * D;
        memcpy(all->data + off, sample + (size_t)v * N * D, sizeof(float) * N * D);
        if (mvead_scratch_writeback(all, off * sizeof(float), sizeof(float) * N * D)) return -1;
    }
    return 0;
}

/* Under MPI each rank fuses a contiguous block of the samples and rank 0
 * receives them rank by rank, one sample per message, into their places
 * (rank order = sample order, so `all` is bitwise what one process builds);
 * rank 0 never holds more than `all` and one sample, the others their block.
 * One process scatters each sample straight into `all`. */
int mvead_fuse_training_set(const mvead_state *st, const mvead_fusion_opts *fo, const mvt_tensor *static_mask,
                            mvd_cache *cache, double memory_mb, const char *dir, const char *label, mvead_scratch *all) {
    const mvd_cache_info *in = &cache->info;
    int V = (int)in->V, N = (int)in->N, D = (int)in->D, R = mvead_mpi_rank(), P = mvead_mpi_size();
    int64_t S = in->S, lo, hi;
    size_t per = (size_t)V * N * D;
    bool shared = P > 1;
    memset(all, 0, sizeof *all);
    mvead_mpi_block(S, &lo, &hi);
    float *z = malloc(sizeof(float) * per), *o = malloc(sizeof(float) * per);
    float *mine = shared && R > 0 ? malloc(sizeof(float) * per * (size_t)(hi - lo) + 1) : NULL;
    int64_t bad = !z || !o || (shared && R > 0 && !mine);
    if (bad) mv_error("%s: out of memory for %lld fused samples", label, (long long)(shared ? hi - lo : 1));
    else if (R == 0) {
        bad = mvead_scratch_alloc(all, (size_t)S * per, mvead_memory_budget(memory_mb), dir, label);
        if (!bad && all->mapped)
            mvead_log("%s: %.1f MiB of fused features over --memory_mb: in a scratch file in %s", label, all->n * 4.0 / 1048576.0, dir);
    }
    mvead_progress pr;
    mvead_progress_start(&pr, label, hi - lo);
    for (int64_t i = lo; !bad && i < hi; i++) {
        float *dst = mine ? mine + (size_t)(i - lo) * per : o;
        bad = mvd_cache_read(cache, i, z) || mvead_fuse_sample(st, fo, static_mask, z, V, N, D, dst);
        if (!bad && !mine) bad = scatter_view_major(o, i, S, V, N, D, all);
        mvead_progress_update(&pr, i - lo + 1, NULL);
    }
    mvead_progress_finish(&pr);
    free(z);
    int64_t any_bad = bad;
    mvead_mpi_allreduce_max_i64(&any_bad, 1);   /* nobody starts sending if a rank failed */
    if (any_bad) {
        free(o);
        free(mine);
        mvead_scratch_free(all);
        return bad ? -1 : mv_error("%s: another rank failed fusing its samples (see its message)", label);
    }
    int e = 0;
    if (shared && R > 0) {
        for (int64_t i = lo; i < hi && !e; i++) e = mvead_mpi_send(mine + (size_t)(i - lo) * per, sizeof(float) * per, 0, 7);
    } else if (shared) {
        for (int r = 1; r < P && !e; r++) {
            int64_t rlo, rhi;
            mvead_mpi_block_of(S, r, P, &rlo, &rhi);
            for (int64_t i = rlo; i < rhi && !e; i++) {
                e = mvead_mpi_recv(o, sizeof(float) * per, r, 7);
                if (!e && scatter_view_major(o, i, S, V, N, D, all)) e = -2;   /* rank 0 fails; main ends the job */
            }
        }
    }
    free(o);
    free(mine);
    if (e) {
        mvead_scratch_free(all);
        return e == -2 ? -1 : mv_error("%s: sending the fused samples to rank 0 failed", label);
    }
    return 0;
}

/* Centres from the initial EAM outputs of every training patch: the fused
 * training set (mvead_fuse_training_set) on rank 0, in memory or in a
 * scratch file in the run folder past --memory_mb, k-means there, the
 * centres broadcast. */
mvt_tensor *mvead_centers_for_run(const mvead_config *c, const mvead_objective_opts *oo, mvd_cache *cache,
                                  const mvead_state *st, const mvead_fusion_opts *fo, const mvt_tensor *mask) {
    const mvd_cache_info *in = &cache->info;
    int V = (int)in->V, N = (int)in->N, D = (int)in->D;
    int64_t S = in->S;
    bool root = mvead_mpi_rank() == 0;
    mvead_scratch feats;
    char dir[1024];
    if (mvead_run_dir(c, dir, sizeof dir, true) ||
        mvead_fuse_training_set(st, fo, mask, cache, c->memory_mb, dir, "centres", &feats)) return NULL;
    int64_t cshape[3] = {0, 0, 0};
    mvt_tensor *centers = NULL;
    if (root) {
        centers = mvead_centers_init_f32(oo->kind, feats.data, V, S * N, D, oo->K, oo->lloyd_iters, c->seed);
        if (centers) memcpy(cshape, centers->shape, sizeof cshape);
    }
    mvead_scratch_free(&feats);
    if (mvead_mpi_size() == 1) return centers;
    mvead_mpi_bcast(cshape, sizeof cshape, 0);
    if (!cshape[0]) {
        if (!root) mv_error("train: rank 0 failed computing the centres (see its message)");
        return NULL;
    }
    if (!centers) centers = mvt_zeros(MVT_F64, 3, cshape);
    mvead_mpi_bcast(mvt_f64(centers), sizeof(double) * (size_t)mvt_numel(centers), 0);
    return centers;
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
    if (fusion_setup(c, &p, in, &fo, &static_mask)) goto done;

    bool trainable = fo.mode != MVEAD_FUSION_NONE && oo.kind != MVEAD_OBJ_NONE;
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
        if (fo.mode != MVEAD_FUSION_NONE) {
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
        if (R == 0 && (mvead_checkpoint_save(p.checkpoint, c, &st, opt) || write_loss_csv(p.loss_csv, &st))) goto done;
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
    mvead_progress_update(&pr, (int64_t)st.epochs_done * steps_per_epoch, NULL);
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
            if (log_append(&st, pos, neg, total, grad_norm, epoch)) goto done;
            char extra[96];
            snprintf(extra, sizeof extra, "ep %d loss %.4f (pos %.4f neg %.4f) |g| %.3g", epoch + 1, total, pos, neg, grad_norm);
            mvead_progress_update(&pr, (int64_t)epoch * steps_per_epoch + b0 / c->batch + 1, extra);
        }
        st.epochs_done = epoch + 1;
        if (R == 0 && (mvead_checkpoint_save(p.checkpoint, c, &st, opt) || write_loss_csv(p.loss_csv, &st))) goto done;
        if (getenv("MVEAD_TEST_DIE_AFTER_EPOCH") && atoi(getenv("MVEAD_TEST_DIE_AFTER_EPOCH")) == epoch + 1) {
            /* fault injection for the resume tests: die like a SIGKILL, right after a checkpoint */
            _exit(137);
        }
    }
    mvead_progress_finish(&pr);
    if (R == 0 && (st.epochs_done == 0 || c->epochs == st.epochs_done)) {
        if (mvead_checkpoint_save(p.checkpoint, c, &st, opt) || write_loss_csv(p.loss_csv, &st)) goto done;
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
