/* check_objective: MCP / MCP+Reg / DeepSVDD losses against the PyTorch
 * reference (fixtures/method/losses.h5), a gradcheck of the whole MCP+Reg
 * objective, and the centre initialisation; the sparse path (incremental
 * negative pass) against the dense one. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/autograd.h"
#include "mvead/method/eam.h"
#include "mvead/method/objective.h"
#include "tensor/error.h"
#include "tests/fixtures.h"

static mvt_tensor *read_tensor(hid_t loc, const char *path) {
    mvt_tensor *t = fx_read_tensor(loc, path, MVT_F64);
    ck_assert_msg(t != NULL, "missing dataset %s", path);
    return t;
}

static bool compare_tensor_atol(hid_t loc, const char *path, const mvt_tensor *t, double rtol, double atol,
                                const char *what) {
    return fx_compare_tensor(what, loc, path, t, rtol, atol);
}

static bool compare_tensor(hid_t loc, const char *path, const mvt_tensor *t, double rtol, const char *what) {
    return fx_compare_tensor(what, loc, path, t, rtol, 0.0);
}

static double group_max_abs(hid_t loc, const char *path) { return fx_group_max_abs(loc, path); }

static bool compare_scalar(hid_t loc, const char *path, const mva_var *v, double rtol, const char *what) {
    ck_assert_msg(v != NULL, "%s: no var", what);
    return compare_tensor(loc, path, v->value, rtol, what);
}

/* Support mask [V][N][(V-1)N] from F (V,V,3,3) as ref.py: distance of patch k's
 * centre in b to l_b = F_ab^T p_a <= delta P; (l1, l2) = 0 keeps everything.
 * Written here so this test does not depend on mvead/epipolar. */
static uint8_t *support_from_F(const double *F, int V, int h, int w, int P, double delta) {
    int N = h * w;
    int64_t row_len = (int64_t)(V - 1) * N;
    uint8_t *out = malloc((size_t)(V * N * row_len));
    for (int a = 0; a < V; a++)
        for (int j = 0; j < N; j++) {
            double pa[3] = {(j % w + 0.5) * P, (j / w + 0.5) * P, 1.0};
            int s = 0;
            for (int b = 0; b < V; b++) {
                if (b == a) continue;
                const double *f = F + ((int64_t)a * V + b) * 9;
                double l[3];
                for (int c = 0; c < 3; c++) l[c] = pa[0] * f[0 * 3 + c] + pa[1] * f[1 * 3 + c] + pa[2] * f[2 * 3 + c];
                double n = sqrt(l[0] * l[0] + l[1] * l[1]);
                for (int k = 0; k < N; k++) {
                    double x = (k % w + 0.5) * P, y = (k / w + 0.5) * P;
                    double d = n < 1e-12 ? 0.0 : fabs(l[0] * x + l[1] * y + l[2]) / n;
                    out[((int64_t)a * N + j) * row_len + (int64_t)s * N + k] = d <= delta * P;
                }
                s++;
            }
        }
    return out;
}

/* The EAM of the group's params/ in dtype dt. */
static void load_fixture_eam(hid_t g, int heads, mvt_dtype dt, mvead_eam *m) {
    mvt_tensor *t[MVEAD_EAM_NPARAMS];
    for (int i = 0; i < MVEAD_EAM_NPARAMS; i++) {
        char path[64];
        snprintf(path, sizeof path, "params/%s", mvead_eam_param_names[i]);
        t[i] = read_tensor(g, path);
    }
    mvead_eam_weights wts = {t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8], t[9]};
    ck_assert_int_eq(mvead_eam_init_copy(m, heads, dt, &wts, NULL), 0);
    for (int i = 0; i < MVEAD_EAM_NPARAMS; i++) mvt_release(t[i]);
}

START_TEST(test_mcp_reg_fixture) {
    hid_t f = fx_open("method/losses.h5");
    if (f < 0) return;
    hid_t g = H5Gopen2(f, "mcp_reg", H5P_DEFAULT);
    int B = (int)fx_attr_f64(g, ".", "B"), V = (int)fx_attr_f64(g, ".", "V");
    int H = (int)fx_attr_f64(g, ".", "H"), W = (int)fx_attr_f64(g, ".", "W"), P = (int)fx_attr_f64(g, ".", "P");
    int heads = (int)fx_attr_f64(g, ".", "heads"), n_k = (int)fx_attr_f64(g, ".", "n_k");
    double lam = fx_attr_f64(g, ".", "lam"), delta = fx_attr_f64(g, ".", "delta");
    int h = H / P, w = W / P, N = h * w;

    mvead_eam m;
    load_fixture_eam(g, heads, MVT_F64, &m);

    mvt_tensor *F = read_tensor(g, "F");
    uint8_t *sup = support_from_F(mvt_f64(F), V, h, w, P, delta);
    mvt_tensor *z = read_tensor(g, "Z");
    ck_assert_int_eq(z->shape[0], B);
    ck_assert_int_eq(z->shape[2], N);
    mvt_tensor *C = read_tensor(g, "centers");
    int nd;
    int64_t shp[8];
    int64_t *nv = fx_read_i64(g, "neg_view", &nd, shp), *np = fx_read_i64(g, "neg_patch", &nd, shp);
    ck_assert(nv && np);

    mvead_fusion_opts fo;
    mvead_fusion_opts_default(&fo);
    fo.h = h; fo.w = w;
    mvt_tensor *mask = mvead_fusion_static_mask(&fo, sup, V, N, MVT_F64);
    mvead_objective_opts oo;
    mvead_objective_opts_default(&oo);
    oo.K = (int)C->shape[1];
    oo.n_k = n_k;
    oo.lambda = lam;
    mva_var *Z = mva_leaf(z, false, "Z");
    mvead_loss L;
    ck_assert_int_eq(mvead_objective_forward(&oo, &m, &fo, Z, mask, C, nv, np, &L), 0);
    ck_assert(compare_scalar(g, "pos", L.pos, 1e-9, "mcp_reg pos"));
    ck_assert(compare_scalar(g, "neg", L.neg, 1e-9, "mcp_reg neg"));
    ck_assert(compare_scalar(g, "total", L.total, 1e-9, "mcp_reg total"));
    mva_backward(L.total, NULL);
    /* grad bk is exactly zero (see check_eam): accept rounding noise relative to the largest gradient */
    double gatol = 1e-12 * group_max_abs(g, "grad_params");
    mva_var *p[MVEAD_EAM_NPARAMS];
    mvead_eam_params(&m, p);
    for (int i = 0; i < MVEAD_EAM_NPARAMS; i++) {
        char path[64], what[64];
        snprintf(path, sizeof path, "grad_params/%s", mvead_eam_param_names[i]);
        snprintf(what, sizeof what, "mcp_reg grad %s", mvead_eam_param_names[i]);
        ck_assert_msg(p[i]->grad != NULL, "no gradient for %s", mvead_eam_param_names[i]);
        ck_assert(compare_tensor_atol(g, path, p[i]->grad, 1e-9, gatol, what));
    }
    mva_tape_clear();

    /* pos and neg are separate vars: grad(total) = grad(pos) + lam grad(neg) */
    mvt_tensor *gt = mvt_clone(m.wq->grad);
    mvt_tensor *gp = NULL, *gn = NULL;
    for (int term = 0; term < 2; term++) {
        for (int i = 0; i < MVEAD_EAM_NPARAMS; i++) mva_zero_grad(p[i]);
        ck_assert_int_eq(mvead_objective_forward(&oo, &m, &fo, Z, mask, C, nv, np, &L), 0);
        mva_backward(term == 0 ? L.pos : L.neg, NULL);
        if (term == 0) gp = mvt_clone(m.wq->grad); else gn = mvt_clone(m.wq->grad);
        mva_tape_clear();
    }
    mvt_axpy_(gp, lam, gn);
    ck_assert(mvt_max_abs_diff(gp, gt, NULL) <= 1e-12 * (1 + mvt_max_abs(gt)));
    ck_assert(mvt_max_abs(gn) > 0);

    /* plain MCP: total is pos, no neg */
    oo.kind = MVEAD_OBJ_MCP;
    ck_assert_int_eq(mvead_objective_forward(&oo, &m, &fo, Z, mask, C, NULL, NULL, &L), 0);
    ck_assert_ptr_null(L.neg);
    ck_assert_ptr_eq(L.total, L.pos);
    ck_assert(compare_scalar(g, "pos", L.pos, 1e-9, "mcp pos"));
    mva_tape_clear();

    mvt_release(gt); mvt_release(gp); mvt_release(gn);
    mva_leaf_free(Z);
    free(nv); free(np); free(sup);
    mvt_release(F); mvt_release(C); mvt_release(mask);
    mvead_eam_free(&m);
    H5Gclose(g);
    fx_close(f);
}
END_TEST

START_TEST(test_multi_center_fixture) {
    hid_t f = fx_open("method/losses.h5");
    if (f < 0) return;
    mva_var *O = mva_leaf(read_tensor(f, "multi_center/O"), true, "O");
    mvt_tensor *C = read_tensor(f, "multi_center/centers");
    mva_var *loss = mvead_multi_center_loss(O, C);
    ck_assert(compare_scalar(f, "multi_center/loss", loss, 1e-9, "multi_center loss"));
    mva_backward(loss, NULL);
    ck_assert(compare_tensor(f, "multi_center/grad_O", O->grad, 1e-9, "multi_center grad_O"));
    mva_tape_clear();
    /* float32 path */
    mvt_tensor *o32 = mvt_to_dtype(O->value, MVT_F32);
    mva_var *O32 = mva_leaf(o32, true, "O32");
    mva_var *l32 = mvead_multi_center_loss(O32, C);
    ck_assert(compare_scalar(f, "multi_center/loss", l32, 1e-5, "multi_center loss f32"));
    mva_backward(l32, NULL);
    ck_assert(compare_tensor(f, "multi_center/grad_O", O32->grad, 1e-4, "multi_center grad_O f32"));
    mva_tape_clear();
    mva_leaf_free(O32);
    mva_leaf_free(O);
    mvt_release(C);
    fx_close(f);
}
END_TEST

START_TEST(test_negative_fixture) {
    hid_t f = fx_open("method/losses.h5");
    if (f < 0) return;
    mva_var *negs = mva_leaf(read_tensor(f, "negative/negs"), true, "negs");
    mvt_tensor *C = read_tensor(f, "negative/centers");
    int nd;
    int64_t shp[8];
    int64_t *views = fx_read_i64(f, "negative/views", &nd, shp);
    ck_assert(views != NULL);
    ck_assert_int_eq(shp[0], negs->value->shape[0]);
    mva_var *loss = mvead_negative_loss(negs, views, C);
    ck_assert(compare_scalar(f, "negative/loss", loss, 1e-9, "negative loss"));
    mva_backward(loss, NULL);
    ck_assert(compare_tensor(f, "negative/grad_negs", negs->grad, 1e-9, "negative grad_negs"));
    mva_tape_clear();
    free(views);
    mva_leaf_free(negs);
    mvt_release(C);
    fx_close(f);
}
END_TEST

/* ---- gradcheck of the whole MCP+Reg objective w.r.t. the EAM parameters ---- */

typedef struct {
    int heads;
    mva_var *Z;
    const mvt_tensor *mask, *C;
    const int64_t *nv, *np;
    mvead_objective_opts oo;
    mvead_fusion_opts fo;
} obj_ctx;

static mva_var *objective_fn(mva_var *const *in, int n, void *ctx) {
    (void)n;
    obj_ctx *c = ctx;
    mvead_eam m = {.dim = (int)in[2]->value->shape[0], .heads = c->heads, .dtype = MVT_F64,
                   .ln_w = in[0], .ln_b = in[1], .wq = in[2], .bq = in[3], .wk = in[4],
                   .bk = in[5], .wv = in[6], .bv = in[7], .wo = in[8], .bo = in[9]};
    mvead_loss L;
    ck_assert_int_eq(mvead_objective_forward(&c->oo, &m, &c->fo, c->Z, c->mask, c->C, c->nv, c->np, &L), 0);
    return L.total;
}

START_TEST(test_gradcheck_mcp_reg) {
    int B = 2, V = 3, h = 2, w = 2, N = h * w, D = 8, K = 3;
    mvt_rng rng;
    mvt_rng_seed(&rng, 123);
    mvead_eam m;
    ck_assert_int_eq(mvead_eam_init_random(&m, D, 2, MVT_F64, 17), 0);
    mvt_fill_normal(m.ln_w->value, &rng, 1.0, 0.3);
    mvt_fill_normal(m.ln_b->value, &rng, 0.0, 0.3);
    int64_t row_len = (int64_t)(V - 1) * N;
    uint8_t *sup = malloc((size_t)(V * N * row_len));
    for (int64_t i = 0; i < V * N * row_len; i++) sup[i] = mvt_rng_uniform(&rng) < 0.6;
    int64_t zs[4] = {B, V, N, D}, cs[3] = {V, K, D};
    mvt_tensor *z = mvt_empty(MVT_F64, 4, zs), *C = mvt_empty(MVT_F64, 3, cs);
    mvt_fill_normal(z, &rng, 0, 1);
    mvt_fill_normal(C, &rng, 0, 1);
    int64_t nv[2], np[2];
    mvead_draw_negatives(&rng, B, V, N, nv, np);
    obj_ctx ctx = {.heads = 2, .C = C, .nv = nv, .np = np};
    mvead_objective_opts_default(&ctx.oo);
    ctx.oo.K = K;
    ctx.oo.lambda = 0.5;   /* weigh the negative term more than the default, for the check */
    mvead_fusion_opts_default(&ctx.fo);
    ctx.fo.h = h; ctx.fo.w = w;
    mvt_tensor *mask = mvead_fusion_static_mask(&ctx.fo, sup, V, N, MVT_F64);
    ctx.mask = mask;
    ctx.Z = mva_leaf(z, false, "Z");
    mva_var *p[MVEAD_EAM_NPARAMS];
    mvead_eam_params(&m, p);
    mva_gradcheck_report r = mva_gradcheck(objective_fn, p, MVEAD_EAM_NPARAMS, &ctx, 1e-6, 1e-8, 1e-5, 5);
    ck_assert_msg(r.ok, "mcp_reg gradcheck: %s (input %d, index %lld: %g vs %g)", r.message, r.worst_input,
                  (long long)r.worst_index, r.analytic, r.numeric);
    mva_tape_clear();
    mva_leaf_free(ctx.Z);
    mvt_release(C);
    mvt_release(mask);
    free(sup);
    mvead_eam_free(&m);
}
END_TEST

START_TEST(test_centres) {
    /* three well separated blobs per view: k-means finds their means */
    int V = 2, M = 60, D = 3, K = 3;
    int64_t fs[3] = {V, M, D};
    mvt_tensor *x = mvt_empty(MVT_F64, 3, fs);
    mvt_rng rng;
    mvt_rng_seed(&rng, 4);
    double *xd = mvt_f64(x);
    for (int v = 0; v < V; v++)
        for (int i = 0; i < M; i++)
            for (int d = 0; d < D; d++)
                xd[((int64_t)v * M + i) * D + d] = (d == i % K ? 10.0 * (v + 1) : 0.0) + 0.1 * mvt_rng_normal(&rng);
    mvt_tensor *C = mvead_centers_init(MVEAD_OBJ_MCP_REG, x, K, 20, 1);
    ck_assert_ptr_nonnull(C);
    ck_assert_int_eq(C->shape[0], V);
    ck_assert_int_eq(C->shape[1], K);
    for (int v = 0; v < V; v++)
        for (int blob = 0; blob < K; blob++) {
            /* the blob's mean, and the nearest centre to it */
            double mean[3] = {0, 0, 0};
            int cnt = 0;
            for (int i = blob; i < M; i += K, cnt++)
                for (int d = 0; d < D; d++) mean[d] += xd[((int64_t)v * M + i) * D + d];
            double best = 1e300;
            for (int k = 0; k < K; k++) {
                double s = 0;
                for (int d = 0; d < D; d++) {
                    int64_t idx[3] = {v, k, d};
                    double t = mvt_get(C, idx) - mean[d] / cnt;
                    s += t * t;
                }
                if (s < best) best = s;
            }
            ck_assert_msg(best < 1e-20, "blob %d of view %d not recovered (%g)", blob, v, best);
        }
    mvt_tensor *C2 = mvead_centers_init(MVEAD_OBJ_MCP, x, K, 20, 1);
    ck_assert(mvt_max_abs_diff(C, C2, NULL) == 0.0);   /* seeded */
    /* deepsvdd: one centre, the mean */
    mvt_tensor *S = mvead_centers_init(MVEAD_OBJ_DEEPSVDD, x, 20, 0, 0);
    ck_assert_int_eq(S->shape[1], 1);
    mvt_tensor *mean = mvt_mean(x, 1, true);
    ck_assert(mvt_max_abs_diff(S, mean, NULL) < 1e-12);
    /* too few patches */
    ck_assert_ptr_null(mvead_centers_init(MVEAD_OBJ_MCP, x, M + 1, 5, 0));
    ck_assert(strstr(mv_error_last(), "K") != NULL);
    mvt_release(mean); mvt_release(S); mvt_release(C2); mvt_release(C); mvt_release(x);
}
END_TEST

/* ---- sparse path (incremental negatives) = dense path --------------------------
 * The whole MCP+Reg objective through --attention sparse (with a static mask:
 * the incremental negative pass) and dense (two full passes): total, pos and
 * neg within tol relative, the same negatives, and every gradient (the EAM
 * parameters and Z) within tol of its largest entry (1e-12 f64, 1e-5 f32). */

static double max_abs_of(const mvt_tensor *t) { return t ? mvt_max_abs(t) : 0; }

typedef struct {
    double loss[3];
    mvt_tensor *rows, *grad[MVEAD_EAM_NPARAMS + 1];   /* params, then Z */
} obj_run;

static obj_run run_objective(const mvead_objective_opts *oo, const mvead_eam *m, mvead_fusion_opts fo,
                             mvead_attention att, const mvt_tensor *z, const mvt_tensor *mask, const mvt_tensor *C,
                             const int64_t *nv, const int64_t *np) {
    obj_run r = {{0}, NULL, {NULL}};
    mva_var *p[MVEAD_EAM_NPARAMS];
    mvead_eam_params(m, p);
    for (int i = 0; i < MVEAD_EAM_NPARAMS; i++) mva_zero_grad(p[i]);
    fo.attention = att;
    mva_var *Z = mva_leaf(mvt_clone(z), true, "Z");
    mvead_loss L;
    ck_assert_int_eq(mvead_objective_forward(oo, m, &fo, Z, mask, C, nv, np, &L), 0);
    r.loss[0] = mvt_item(L.total->value);
    r.loss[1] = mvt_item(L.pos->value);
    r.loss[2] = mvt_item(L.neg->value);
    r.rows = mvt_retain(L.neg_rows->value);
    mva_backward(L.total, NULL);
    for (int i = 0; i < MVEAD_EAM_NPARAMS; i++) r.grad[i] = p[i]->grad ? mvt_clone(p[i]->grad) : NULL;
    r.grad[MVEAD_EAM_NPARAMS] = mvt_retain(Z->grad);
    mva_tape_clear();
    mva_leaf_free(Z);
    return r;
}

static void obj_run_free(obj_run *r) {
    mvt_release(r->rows);
    for (int i = 0; i <= MVEAD_EAM_NPARAMS; i++) mvt_release(r->grad[i]);
}

static void objective_sparse_vs_dense(const char *what, const mvead_objective_opts *oo, const mvead_eam *m,
                                      mvead_fusion_opts fo, const mvt_tensor *z, const mvt_tensor *mask,
                                      const mvt_tensor *C, const int64_t *nv, const int64_t *np) {
    double tol = m->dtype == MVT_F64 ? 1e-12 : 1e-5;
    obj_run a = run_objective(oo, m, fo, MVEAD_ATTN_SPARSE, z, mask, C, nv, np);
    obj_run b = run_objective(oo, m, fo, MVEAD_ATTN_DENSE, z, mask, C, nv, np);
    const char *ln[3] = {"total", "pos", "neg"};
    for (int k = 0; k < 3; k++)
        ck_assert_msg(fabs(a.loss[k] - b.loss[k]) <= tol * fabs(b.loss[k]), "%s %s: sparse %s %.17g, dense %.17g",
                      what, mvt_dtype_name(m->dtype), ln[k], a.loss[k], b.loss[k]);
    ck_assert_int_eq(mvt_numel(a.rows), mvt_numel(b.rows));
    for (int64_t i = 0; i < mvt_numel(a.rows); i++)
        ck_assert_msg(mvt_i64(a.rows)[i] == mvt_i64(b.rows)[i], "%s: negative %lld is row %lld (sparse), %lld (dense)",
                      what, (long long)i, (long long)mvt_i64(a.rows)[i], (long long)mvt_i64(b.rows)[i]);
    double gmax = 0;
    for (int i = 0; i < MVEAD_EAM_NPARAMS; i++) gmax = fmax(gmax, max_abs_of(b.grad[i]));
    for (int i = 0; i <= MVEAD_EAM_NPARAMS; i++) {
        const char *name = i < MVEAD_EAM_NPARAMS ? mvead_eam_param_names[i] : "Z";
        ck_assert_msg((a.grad[i] != NULL) == (b.grad[i] != NULL), "%s: gradient of %s on one path only", what, name);
        if (!b.grad[i]) continue;
        /* bk's gradient is zero in exact arithmetic (rounding noise on both sides) */
        double floor = !strcmp(name, "bk") ? gmax : i < MVEAD_EAM_NPARAMS ? 1e-3 * gmax : 0;
        double scale = fmax(max_abs_of(b.grad[i]), floor), e = mvt_max_abs_diff(a.grad[i], b.grad[i], NULL);
        ck_assert_msg(isfinite(e) && e <= tol * scale, "%s %s: gradient of %s differs by %g of %g (tol %g)", what,
                      mvt_dtype_name(m->dtype), name, e, scale, tol);
    }
    obj_run_free(&a);
    obj_run_free(&b);
}

START_TEST(test_sparse_equals_dense_fixture) {
    hid_t f = fx_open("method/losses.h5");
    if (f < 0) return;
    hid_t g = H5Gopen2(f, "mcp_reg", H5P_DEFAULT);
    int V = (int)fx_attr_f64(g, ".", "V"), H = (int)fx_attr_f64(g, ".", "H"), W = (int)fx_attr_f64(g, ".", "W");
    int P = (int)fx_attr_f64(g, ".", "P"), heads = (int)fx_attr_f64(g, ".", "heads");
    int h = H / P, w = W / P, N = h * w;
    mvt_dtype dts[2] = {MVT_F64, MVT_F32};
    for (int t = 0; t < 2; t++) {
        mvead_eam m;
        load_fixture_eam(g, heads, dts[t], &m);
        mvt_tensor *F = read_tensor(g, "F"), *z64 = read_tensor(g, "Z"), *C = read_tensor(g, "centers");
        mvt_tensor *z = mvt_to_dtype(z64, dts[t]);
        uint8_t *sup = support_from_F(mvt_f64(F), V, h, w, P, fx_attr_f64(g, ".", "delta"));
        int nd;
        int64_t shp[8];
        int64_t *nv = fx_read_i64(g, "neg_view", &nd, shp), *np = fx_read_i64(g, "neg_patch", &nd, shp);
        mvead_fusion_opts fo;
        mvead_fusion_opts_default(&fo);
        fo.h = h; fo.w = w;
        mvt_tensor *mask = mvead_fusion_static_mask(&fo, sup, V, N, dts[t]);
        mvead_objective_opts oo;
        mvead_objective_opts_default(&oo);
        oo.K = (int)C->shape[1];
        oo.n_k = (int)fx_attr_f64(g, ".", "n_k");
        oo.lambda = fx_attr_f64(g, ".", "lam");
        objective_sparse_vs_dense("losses.h5 mcp_reg", &oo, &m, fo, z, mask, C, nv, np);
        oo.n_k = N;   /* every row of every other view: most have change 0 */
        objective_sparse_vs_dense("losses.h5 mcp_reg, n_k = N", &oo, &m, fo, z, mask, C, nv, np);
        mvt_release(F); mvt_release(z64); mvt_release(z); mvt_release(C); mvt_release(mask);
        free(sup); free(nv); free(np);
        mvead_eam_free(&m);
    }
    H5Gclose(g);
    fx_close(f);
}
END_TEST

/* Random cases: B 1 and 3; sparse random masks with empty rows (n_k above the
 * number of rows that change), full fusion, mvas (per-sample masks: the
 * second pass stays whole, through the sparse op). */
START_TEST(test_sparse_equals_dense_random) {
    int V = 3, h = 4, w = 5, N = h * w, D = 16, K = 3;
    mvt_dtype dts[2] = {MVT_F64, MVT_F32};
    for (int t = 0; t < 2; t++)
        for (int B = 1; B <= 3; B += 2) {
            mvt_rng rng;
            mvt_rng_seed(&rng, 100 + (uint64_t)B + 10 * (uint64_t)t);
            mvead_eam m;
            ck_assert_int_eq(mvead_eam_init_random(&m, D, 4, dts[t], 3 + (uint64_t)B), 0);
            int64_t zs[4] = {B, V, N, D}, cs[3] = {V, K, D};
            mvt_tensor *z = mvt_empty(dts[t], 4, zs), *C = mvt_empty(MVT_F64, 3, cs);
            mvt_fill_normal(z, &rng, 0, 1);
            mvt_fill_normal(C, &rng, 0, 1);
            int64_t nv[3], np[3];
            mvead_draw_negatives(&rng, B, V, N, nv, np);
            int64_t row_len = (int64_t)(V - 1) * N;
            uint8_t *sup = malloc((size_t)(V * N * row_len));
            for (int64_t r = 0; r < (int64_t)V * N; r++)   /* every 4th row empty, 15% of the rest */
                for (int64_t c = 0; c < row_len; c++) sup[r * row_len + c] = r % 4 != 3 && mvt_rng_uniform(&rng) < 0.15;
            mvead_objective_opts oo;
            mvead_objective_opts_default(&oo);
            oo.K = K;
            mvead_fusion_opts fo;
            mvead_fusion_opts_default(&fo);
            fo.h = h; fo.w = w; fo.mvas_window = 2; fo.mvas_topk = 2;
            mvt_tensor *mask = mvead_fusion_static_mask(&fo, sup, V, N, dts[t]);
            for (int n_k = 1; n_k <= 7; n_k += 6) {
                oo.n_k = n_k;
                objective_sparse_vs_dense("random eam mask", &oo, &m, fo, z, mask, C, nv, np);
            }
            mvt_release(mask);
            fo.mode = MVEAD_FUSION_FULL;
            mask = mvead_fusion_static_mask(&fo, NULL, V, N, dts[t]);
            objective_sparse_vs_dense("full", &oo, &m, fo, z, mask, C, nv, np);
            mvt_release(mask);
            fo.mode = MVEAD_FUSION_MVAS;
            objective_sparse_vs_dense("mvas", &oo, &m, fo, z, NULL, C, nv, np);
            free(sup);
            mvt_release(z);
            mvt_release(C);
            mvead_eam_free(&m);
        }
}
END_TEST

START_TEST(test_options_and_errors) {
    mvead_objective_kind k;
    ck_assert_int_eq(mvead_objective_parse("mcp+reg", &k), 0);
    ck_assert_int_eq(k, MVEAD_OBJ_MCP_REG);
    ck_assert_int_eq(mvead_objective_parse("deepsvdd", &k), 0);
    ck_assert_int_eq(k, MVEAD_OBJ_DEEPSVDD);
    ck_assert_int_eq(mvead_objective_parse("svdd", &k), -1);
    ck_assert_str_eq(mvead_objective_name(MVEAD_OBJ_MCP), "mcp");
    mvead_objective_opts o;
    mvead_objective_opts_default(&o);
    ck_assert_int_eq(o.K, 20);
    ck_assert_int_eq(o.n_k, 1);
    ck_assert(o.lambda == 0.1);

    mvt_rng rng;
    mvt_rng_seed(&rng, 3);
    int64_t nv[64], np[64];
    mvead_draw_negatives(&rng, 64, 5, 7, nv, np);
    int seen_v[5] = {0};
    for (int i = 0; i < 64; i++) {
        ck_assert(nv[i] >= 0 && nv[i] < 5 && np[i] >= 0 && np[i] < 7);
        seen_v[nv[i]] = 1;
    }
    for (int v = 0; v < 5; v++) ck_assert(seen_v[v]);

    /* wrong centres and kind none are reported, not crashed on */
    mvead_eam m;
    ck_assert_int_eq(mvead_eam_init_random(&m, 4, 1, MVT_F64, 1), 0);
    int64_t zs[4] = {1, 2, 3, 4}, cs[3] = {3, 2, 4};
    mva_var *Z = mva_leaf(mvt_zeros(MVT_F64, 4, zs), false, "Z");
    mvt_tensor *C = mvt_zeros(MVT_F64, 3, cs);
    mvead_fusion_opts fo;
    mvead_fusion_opts_default(&fo);
    fo.mode = MVEAD_FUSION_FULL;
    mvt_tensor *mask = mvead_fusion_static_mask(&fo, NULL, 2, 3, MVT_F64);
    mvead_loss L;
    ck_assert_int_eq(mvead_objective_forward(&o, &m, &fo, Z, mask, C, nv, np, &L), -1);
    ck_assert(strstr(mv_error_last(), "centres") != NULL);
    o.kind = MVEAD_OBJ_NONE;
    ck_assert_int_eq(mvead_objective_forward(&o, &m, &fo, Z, mask, C, nv, np, &L), -1);
    /* mcp_reg with zero features: finite values (distance eps, LN of a zero row) */
    int64_t cs2[3] = {2, 2, 4};
    mvt_tensor *C2 = mvt_full(MVT_F64, 3, cs2, 0.5);
    o.kind = MVEAD_OBJ_MCP_REG;
    int64_t v1[1] = {1}, p1[1] = {2};
    ck_assert_int_eq(mvead_objective_forward(&o, &m, &fo, Z, mask, C2, v1, p1, &L), 0);
    ck_assert(mvt_all_finite(L.total->value));
    mva_backward(L.total, NULL);
    ck_assert(mvt_all_finite(m.wq->grad) && mvt_all_finite(m.bo->grad));
    mva_tape_clear();
    mva_leaf_free(Z);
    mvt_release(C); mvt_release(C2); mvt_release(mask);
    mvead_eam_free(&m);
}
END_TEST

static Suite *objective_suite(void) {
    Suite *s = suite_create("objective");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_mcp_reg_fixture);
    tcase_add_test(tc, test_multi_center_fixture);
    tcase_add_test(tc, test_negative_fixture);
    tcase_add_test(tc, test_gradcheck_mcp_reg);
    tcase_add_test(tc, test_centres);
    tcase_add_test(tc, test_options_and_errors);
    tcase_add_test(tc, test_sparse_equals_dense_fixture);
    tcase_add_test(tc, test_sparse_equals_dense_random);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(objective_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
