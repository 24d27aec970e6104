/* grads: every gradient of one batch of the run's pre-training objective,
 * for debugging training. The batch is the first B samples of the training
 * cache with negatives drawn from --seed; the module is the run's current
 * EAM (checkpoint.h5) or, before training, the one `train` would start from.
 * pos, neg and total are backpropagated through three separate graphs and
 * written to an HDF5 file (default <run>/grads.h5):
 *   grad/{pos,neg,total}/<param>   same shapes as the EAM parameters
 *   norms [3, 10] f64              L2 norms, rows pos, neg, total
 *   neg_view, neg_patch [B]        the drawn negatives
 *   attrs loss_pos, loss_neg, loss_total, lambda, batch, source, ...
 * --gradcheck converts the module and one sample to float64 and compares the
 * total's backward with a 4-point central-difference stencil on every
 * parameter element (or a seeded random subset when that would be slow);
 * exit 1 when the worst relative error exceeds 1e-6. Called by mvead/cli/main.c. */
#include "autograd/autograd.h"
#include "data/cache.h"
#include "data/h5io.h"
#include "mvead/cli/commands.h"
#include "mvead/cli/exit_codes.h"
#include "mvead/cli/options.h"
#include "mvead/method/eam.h"
#include "mvead/method/objective.h"
#include "mvead/run/checkpoint.h"
#include "mvead/run/run_config.h"
#include "mvead/run/fuse.h"
#include "mvead/run/init.h"
#include "mvead/run/mpi.h"
#include "mvead/run/paths.h"
#include "mvead/run/progress.h"
#include "tensor/error.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GRADS_FORMAT 1
#define GC_TOLERANCE 1e-6
/* Relative error |a - n| / max(|a|, |n|, GC_FLOOR): below GC_FLOOR an entry
 * is judged by its absolute error (the stencil's rounding is ~1e-12 there;
 * bk's true gradient is 0: softmax is invariant to it). */
#define GC_FLOOR 1e-4
#define GC_STEP 1e-3
#define GC_SUBSET_PER_PARAM 8   /* default of --gradcheck_n */
#define GC_FULL_BUDGET_S 20.0

static const char *const GRADS_OPTS[] = {"name", "runs", "cache", "batch", "seed", "threads", "quiet", "calib", "attention", NULL};
static const char *const WHICH[3] = {"pos", "neg", "total"};

/* Parses the command line on top of the run's config.json. Returns -1 to
 * continue, else the exit code. */
static int parse_on_run_config(int argc, char **argv, mvead_config *c) {
    const char *summary =
        "Gradients of one batch of the run's objective (pos, neg and total, each through its own\n"
        "graph) w.r.t. every EAM parameter, with a per-parameter norm table; optional gradcheck.\n"
        "Synopsis: mvead grads --name RUN [--runs R] [--batch B] [--gradcheck] [--out FILE]";
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            mvead_config_usage("grads", summary, GRADS_OPTS);
            printf("  --%-15s %s\n  --%-15s %s\n", "gradcheck",
                   "float64 finite-difference check of the total's gradient (exit 1 if worst rel. error > 1e-6)",
                   "out FILE", "output HDF5 [default: <run>/grads.h5]");
            printf("  --%-15s %s [default: %d]\n", "gradcheck_n N",
                   "elements checked per parameter when checking all of them would take long", GC_SUBSET_PER_PARAM);
            return 0;
        }
    char *pos[1];
    int np, r = mvead_config_parse_run(c, "grads", summary, GRADS_OPTS, argc, argv, pos, 0, &np, true);
    if (r == -2) return mvead_cli_fail("grads");
    if (r < 0) {
        fprintf(stderr, "%s\n", mv_error_last());
        return MVEAD_EXIT_USAGE;
    }
    mvead_cli_apply_runtime(c);
    return -1;
}

static double tensor_norm(const mvt_tensor *t) {
    if (!t) return NAN;
    double s = 0;
    int64_t n = mvt_numel(t);
    mvt_tensor *c = mvt_contiguous(t);
    for (int64_t i = 0; i < n; i++) {
        double x = mvt_load(mvt_data(c), c->dtype, i);
        s += x * x;
    }
    mvt_release(c);
    return sqrt(s);
}

/* ---- gradcheck ---------------------------------------------------------------- */

typedef struct {
    const mvead_objective_opts *oo;
    const mvead_eam *m;
    const mvead_fusion_opts *fo;
    const mvt_tensor *mask, *centers, *Z;
    const int64_t *nv, *np;
} gc_ctx;

/* Total loss of the float64 problem without a graph. */
static double gc_loss(const gc_ctx *g) {
    bool prev = mva_set_grad_enabled(false);
    size_t mark = mva_tape_mark();
    mva_var *Z = mva_const(mvt_retain((mvt_tensor *)g->Z));
    mvead_loss L;
    double v = NAN;
    if (!mvead_objective_forward(g->oo, g->m, g->fo, Z, g->mask, g->centers, g->nv, g->np, &L)) v = mvt_item(L.total->value);
    mva_tape_reset(mark);
    mva_set_grad_enabled(prev);
    return v;
}

/* Worst relative error over the checked elements; -1 on failure. */
static int gradcheck(const mvead_config *c, int per_param, const mvead_objective_opts *oo, const mvead_state *st, const mvead_fusion_opts *fo,
                     const mvt_tensor *mask32, const float *z0, int V, int N, int D, int64_t nv0, int64_t np0, double *worst_out) {
    mvead_eam m64;
    mva_var *p32[MVEAD_EAM_NPARAMS];
    mvead_eam_params(&st->eam, p32);
    mvead_eam_weights src = {p32[0]->value, p32[1]->value, p32[2]->value, p32[3]->value, p32[4]->value,
                             p32[5]->value, p32[6]->value, p32[7]->value, p32[8]->value, p32[9]->value};
    if (mvead_eam_init_copy(&m64, st->eam.heads, MVT_F64, &src, NULL)) return -1;
    mva_var *p[MVEAD_EAM_NPARAMS];
    mvead_eam_params(&m64, p);
    int64_t shp[4] = {1, V, N, D};
    mvt_tensor *z32 = mvt_from_data(MVT_F32, 4, shp, z0);
    mvt_tensor *Z = mvt_to_dtype(z32, MVT_F64);
    mvt_release(z32);
    mvt_tensor *mask = mask32 ? mvt_to_dtype(mask32, MVT_F64) : NULL;
    gc_ctx g = {oo, &m64, fo, mask, st->centers, Z, &nv0, &np0};

    /* analytic */
    for (int i = 0; i < MVEAD_EAM_NPARAMS; i++) mva_zero_grad(p[i]);
    mva_var *Zv = mva_const(mvt_retain(Z));
    mvead_loss L;
    int rc = -1;
    if (mvead_objective_forward(oo, &m64, fo, Zv, mask, st->centers, &nv0, &np0, &L)) goto done;
    mva_backward(L.total, NULL);
    mva_tape_clear();

    /* how many elements: all when it fits the time budget */
    double t0 = mvead_now();
    double base = gc_loss(&g);
    double t_eval = mvead_now() - t0;
    int64_t total = 0;
    for (int i = 0; i < MVEAD_EAM_NPARAMS; i++) total += mvt_numel(p[i]->value);
    bool all = 4.0 * (double)total * t_eval < GC_FULL_BUDGET_S;
    printf("gradcheck: float64, 1 sample, loss %.12g; %s of %lld parameter elements (4-point stencil, h = %g)\n", base,
           all ? "all" : "a seeded random subset", (long long)total, GC_STEP);
    mvt_rng rng;
    mvt_rng_seed(&rng, c->seed ^ 0x9e3779b97f4a7c15ull);
    double worst = 0;
    int w_param = 0;
    int64_t w_idx = 0, checked = 0;
    double w_a = 0, w_n = 0;
    printf("%-6s %9s %12s %12s\n", "param", "checked", "max |grad|", "worst rel");
    for (int i = 0; i < MVEAD_EAM_NPARAMS; i++) {
        int64_t n = mvt_numel(p[i]->value);
        double *w = mvt_f64(p[i]->value);
        mvt_tensor *gt = p[i]->grad ? mvt_contiguous(p[i]->grad) : NULL;
        int64_t count = all ? n : (n < per_param ? n : per_param);
        /* the largest-gradient element is always among the checked ones */
        int64_t arg = 0;
        double gmax = 0;
        for (int64_t k = 0; k < n; k++) {
            double a = gt ? fabs(mvt_f64(gt)[k]) : 0;
            if (a > gmax) gmax = a, arg = k;
        }
        double pw = 0;
        for (int64_t t = 0; t < count; t++) {
            int64_t k = all ? t : (t == 0 ? arg : (int64_t)(mvt_rng_next(&rng) % (uint64_t)n));
            double orig = w[k], f[4];
            const double off[4] = {-2, -1, 1, 2};
            for (int s = 0; s < 4; s++) {
                w[k] = orig + off[s] * GC_STEP;
                f[s] = gc_loss(&g);
            }
            w[k] = orig;
            double num = (f[0] - 8 * f[1] + 8 * f[2] - f[3]) / (12 * GC_STEP);
            double ana = gt ? mvt_f64(gt)[k] : 0;
            double den = fmax(fmax(fabs(ana), fabs(num)), GC_FLOOR);
            double rel = fabs(ana - num) / den;
            if (!isfinite(rel)) rel = INFINITY;
            if (rel > pw) pw = rel;
            if (checked == 0 || rel > worst) worst = rel, w_param = i, w_idx = k, w_a = ana, w_n = num;
            checked++;
        }
        printf("%-6s %9lld %12.4g %12.3g\n", mvead_eam_param_names[i], (long long)count, gmax, pw);
        mvt_release(gt);
    }
    printf("gradcheck: %lld elements, worst relative error %.3g at %s[%lld] (analytic %.12g, numeric %.12g): %s (tolerance %g)\n",
           (long long)checked, worst, mvead_eam_param_names[w_param], (long long)w_idx, w_a, w_n,
           worst <= GC_TOLERANCE ? "ok" : "FAILED", GC_TOLERANCE);
    *worst_out = worst;
    rc = 0;
done:
    mva_tape_clear();
    mvt_release(Z);
    mvt_release(mask);
    mvead_eam_free(&m64);
    return rc;
}

/* ---- the command ---------------------------------------------------------------- */

int mvead_cmd_grads(int argc, char **argv) {
    const char *out = NULL;
    bool do_gc = false;
    int gc_n = GC_SUBSET_PER_PARAM;
    char **args = malloc(sizeof(char *) * (size_t)(argc + 1));
    int na = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--gradcheck")) do_gc = true;
        else if (!strcmp(argv[i], "--out")) {
            if (i + 1 >= argc) { fprintf(stderr, "mvead grads: --out needs a file\n"); free(args); return MVEAD_EXIT_USAGE; }
            out = argv[++i];
        } else if (!strncmp(argv[i], "--out=", 6)) out = argv[i] + 6;
        else if (!strcmp(argv[i], "--gradcheck_n") || !strcmp(argv[i], "--gradcheck-n")) {
            char *end;
            long v = i + 1 < argc ? strtol(argv[i + 1], &end, 10) : 0;
            if (i + 1 >= argc || !*argv[i + 1] || *end || v < 1 || v > 1000000) {
                fprintf(stderr, "mvead grads: --gradcheck_n expects an integer in [1, 1000000]\n");
                free(args);
                return MVEAD_EXIT_USAGE;
            }
            gc_n = (int)v;
            i++;
        }
        else args[na++] = argv[i];
    }
    mvead_config c;
    int r = parse_on_run_config(na, args, &c);
    free(args);
    if (r >= 0) return r;

    int rc = 1;
    mvead_paths p;
    mvd_cache *cache = NULL;
    mvead_state st = {0};
    mvt_tensor *mask = NULL, *centers32 = NULL, *grads[3][MVEAD_EAM_NPARAMS] = {{0}};
    float *zbuf = NULL;
    int64_t *nv = NULL, *npt = NULL;
    mvd_h5_writer w = {.file = -1};
    char source[128], outpath[1200];
    if (mvead_paths_init(&c, &p, false)) goto fail;
    if (!(cache = mvd_cache_open(p.train_cache))) { mv_error_prefix("grads (run `mvead extract` first)"); goto fail; }
    const mvd_cache_info *in = &cache->info;
    int V = (int)in->V, N = (int)in->N, D = (int)in->D;
    mvead_objective_opts oo;
    mvead_objective_opts_default(&oo);
    if (mvead_objective_parse(c.objective, &oo.kind)) goto fail;
    oo.K = oo.kind == MVEAD_OBJ_DEEPSVDD ? 1 : c.centers;
    oo.n_k = c.n_k;
    oo.lambda = c.lambda;
    mvead_fusion_opts fo;
    if (mvead_pipeline_fusion(&c, &p, in, &fo, &mask)) goto fail;
    if (!mvead_fusion_attends(fo.mode) || oo.kind == MVEAD_OBJ_NONE) {
        mv_error("run %s has fusion %s and objective %s: there is nothing to differentiate", p.run, c.fusion, c.objective);
        goto fail;
    }
    if (access(p.checkpoint, F_OK) == 0) {
        if (mvead_checkpoint_load(p.checkpoint, &st, NULL)) goto fail;
        if (!st.has_eam || !st.centers) { mv_error("%s: no EAM or centres in the checkpoint", p.checkpoint); goto fail; }
        snprintf(source, sizeof source, "checkpoint after %d epochs", st.epochs_done);
    } else {
        if (mvead_eam_init_for_run(&c, D, &st.eam)) goto fail;
        st.has_eam = true;
        /* under mpirun grads runs on rank 0 alone: no collectives with the idle ranks */
        bool was_local = mvead_mpi_set_local(true);
        st.centers = mvead_centers_for_run(&c, &oo, cache, &st, &fo, mask);
        mvead_mpi_set_local(was_local);
        if (!st.centers) goto fail;
        snprintf(source, sizeof source, "initialisation (no checkpoint)");
    }
    if (st.centers->ndim != 3 || st.centers->shape[0] != V || st.centers->shape[2] != D) {
        mv_error("%s: centres do not match the cache's %d views x %d dims", p.checkpoint, V, D);
        goto fail;
    }
    centers32 = mvt_to_dtype(st.centers, MVT_F32);
    int B = (int)(in->S < c.batch ? in->S : c.batch);
    zbuf = malloc(sizeof(float) * (size_t)B * V * N * D);
    nv = malloc(sizeof(int64_t) * (size_t)B);
    npt = malloc(sizeof(int64_t) * (size_t)B);
    for (int i = 0; i < B; i++)
        if (mvd_cache_read(cache, i, zbuf + (size_t)i * V * N * D)) goto fail;
    mvt_rng rng;
    mvt_rng_seed(&rng, c.seed);
    mvead_draw_negatives(&rng, B, V, N, nv, npt);

    mva_var *pp[MVEAD_EAM_NPARAMS];
    mvead_eam_params(&st.eam, pp);
    double loss[3] = {NAN, NAN, NAN};
    int64_t shp[4] = {B, V, N, D};
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < MVEAD_EAM_NPARAMS; i++) mva_zero_grad(pp[i]);
        mva_var *Z = mva_const(mvt_from_data(MVT_F32, 4, shp, zbuf));
        mvead_loss L;
        if (mvead_objective_forward(&oo, &st.eam, &fo, Z, mask, centers32, nv, npt, &L)) { mva_tape_clear(); goto fail; }
        mva_var *root = k == 0 ? L.pos : k == 1 ? L.neg : L.total;
        if (root) {
            loss[k] = mvt_item(root->value);
            mva_backward(root, NULL);
            for (int i = 0; i < MVEAD_EAM_NPARAMS; i++)
                grads[k][i] = pp[i]->grad ? mvt_clone(pp[i]->grad) : mvt_zeros_like(pp[i]->value);
        }
        mva_tape_clear();
    }
    for (int i = 0; i < MVEAD_EAM_NPARAMS; i++) mva_zero_grad(pp[i]);

    /* file */
    if (out) snprintf(outpath, sizeof outpath, "%s", out);
    else snprintf(outpath, sizeof outpath, "%s", p.grads);
    if (mvd_h5_create(&w, outpath, "grads", GRADS_FORMAT)) goto fail;
    double norms[3 * MVEAD_EAM_NPARAMS];
    int e = 0;
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < MVEAD_EAM_NPARAMS; i++) {
            norms[k * MVEAD_EAM_NPARAMS + i] = tensor_norm(grads[k][i]);
            if (!grads[k][i]) continue;
            char name[96];
            snprintf(name, sizeof name, "grad/%s/%s", WHICH[k], mvead_eam_param_names[i]);
            e |= mvd_h5_write_tensor(w.file, name, grads[k][i]);
        }
    int64_t s2[2] = {3, MVEAD_EAM_NPARAMS}, s1[1] = {B};
    e = e || mvd_h5_write_f64(w.file, "norms", 2, s2, norms) || mvd_h5_write_i64(w.file, "neg_view", 1, s1, nv) ||
        mvd_h5_write_i64(w.file, "neg_patch", 1, s1, npt) || mvd_h5_attr_set_double(w.file, ".", "loss_pos", loss[0]) ||
        mvd_h5_attr_set_double(w.file, ".", "loss_neg", loss[1]) || mvd_h5_attr_set_double(w.file, ".", "loss_total", loss[2]) ||
        mvd_h5_attr_set_double(w.file, ".", "lambda", c.lambda) || mvd_h5_attr_set_int(w.file, ".", "batch", B) ||
        mvd_h5_attr_set_int(w.file, ".", "seed", (int64_t)c.seed) || mvd_h5_attr_set_str(w.file, ".", "source", source) ||
        mvd_h5_attr_set_str(w.file, ".", "objective", c.objective) || mvd_h5_attr_set_str(w.file, ".", "fusion", c.fusion) ||
        mvd_h5_attr_set_str(w.file, ".", "norms_rows", "pos,neg,total") ||
        mvd_h5_attr_set_str(w.file, ".", "batch_samples", "the first `batch` samples of the training cache");
    if (e) { mv_error_prefix("%s: writing gradients", outpath); goto fail; }
    if (mvd_h5_commit(&w)) goto fail;
    w.file = -1;

    /* table; total = pos + lambda * neg is checked on the way */
    printf("grads: %s, %s / %s, batch of %d (first samples of %s), %s\n", p.run, c.fusion, c.objective, B, p.train_cache, source);
    printf("loss: pos %.8g  neg %.8g  total %.8g  (lambda %g)\n", loss[0], loss[1], loss[2], c.lambda);
    printf("%-6s %-12s %12s %12s %12s %12s %12s\n", "param", "shape", "|w|", "|g pos|", "|g neg|", "|g total|",
           oo.kind == MVEAD_OBJ_MCP_REG ? "sum check" : "");
    double worst_sum = 0, all_total = 0;
    for (int i = 0; i < MVEAD_EAM_NPARAMS; i++) all_total += norms[2 * MVEAD_EAM_NPARAMS + i] * norms[2 * MVEAD_EAM_NPARAMS + i];
    all_total = sqrt(all_total);
    for (int i = 0; i < MVEAD_EAM_NPARAMS; i++) {
        char sh[48];
        const mvt_tensor *v = pp[i]->value;
        if (v->ndim == 2) snprintf(sh, sizeof sh, "[%lld, %lld]", (long long)v->shape[0], (long long)v->shape[1]);
        else snprintf(sh, sizeof sh, "[%lld]", (long long)v->shape[0]);
        printf("%-6s %-12s %12.5g %12.5g %12.5g %12.5g", mvead_eam_param_names[i], sh, tensor_norm(v), norms[i],
               norms[MVEAD_EAM_NPARAMS + i], norms[2 * MVEAD_EAM_NPARAMS + i]);
        if (grads[0][i] && grads[1][i] && grads[2][i]) {
            /* |g_total - (g_pos + lambda g_neg)| relative to the whole gradient's
             * norm: the three graphs agree up to float32 rounding */
            mvt_tensor *sum = mvt_clone(grads[0][i]);
            mvt_axpy_(sum, c.lambda, grads[1][i]);
            mvt_tensor *diff = mvt_sub(sum, grads[2][i]);
            double d = tensor_norm(diff);
            double rel = all_total > 0 ? d / all_total : d;
            if (rel > worst_sum) worst_sum = rel;
            printf(" %12.3g", rel);
            mvt_release(diff);
            mvt_release(sum);
        }
        printf("\n");
    }
    if (oo.kind == MVEAD_OBJ_MCP_REG)
        printf("sum check: worst |g_total - (g_pos + lambda g_neg)| / |g_total (all params)| = %.3g\n", worst_sum);
    printf("grads: -> %s\n", outpath);
    rc = 0;
    if (do_gc) {
        double worst;
        if (gradcheck(&c, gc_n, &oo, &st, &fo, mask, zbuf, V, N, D, nv[0], npt[0], &worst)) goto fail;
        rc = worst <= GC_TOLERANCE ? 0 : 1;
    }
    goto done;
fail:
    fprintf(stderr, "mvead grads: error: %s\n", mv_error_last());
    rc = 1;
done:
    if (w.file >= 0) mvd_h5_abort(&w);
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < MVEAD_EAM_NPARAMS; i++) mvt_release(grads[k][i]);
    mvt_release(mask);
    mvt_release(centers32);
    mvead_state_free(&st);
    if (cache) mvd_cache_close(cache);
    free(zbuf);
    free(nv);
    free(npt);
    return rc;
}
