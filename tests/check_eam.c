/* check_eam: the Epipolar Attention Module against the PyTorch reference
 * (fixtures/method/eam.h5: O and the gradients of sum(O * R)), a gradcheck,
 * empty query rows, the fusion alternatives and the attention-map helper;
 * the sparse attention path against the dense one (fixtures and random cases). */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/autograd.h"
#include "mvead/method/eam.h"
#include "tensor/error.h"
#include "tests/fixtures.h"

static mvt_tensor *read_tensor(hid_t loc, const char *path, mvt_dtype dt) { return fx_read_tensor(loc, path, dt); }

static bool compare_tensor_atol(hid_t loc, const char *path, const mvt_tensor *t, double rtol, double atol,
                                const char *what) {
    return fx_compare_tensor(what, loc, path, t, rtol, atol);
}

static bool compare_tensor(hid_t loc, const char *path, const mvt_tensor *t, double rtol, const char *what) {
    return fx_compare_tensor(what, loc, path, t, rtol, 0.0);
}

static double group_max_abs(hid_t loc, const char *path) { return fx_group_max_abs(loc, path); }

/* Loads the module's parameters from <case>/params (init_copy path). */
static void load_eam(hid_t g, int heads, mvt_dtype dt, mvead_eam *m) {
    mvt_tensor *t[MVEAD_EAM_NPARAMS];
    for (int i = 0; i < MVEAD_EAM_NPARAMS; i++) {
        char path[64];
        snprintf(path, sizeof path, "params/%s", mvead_eam_param_names[i]);
        t[i] = read_tensor(g, path, MVT_F64);
        ck_assert_msg(t[i] != NULL, "missing %s", path);
    }
    mvead_eam_weights w = {t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8], t[9]};
    ck_assert_int_eq(mvead_eam_init_copy(m, heads, dt, &w, NULL), 0);
    for (int i = 0; i < MVEAD_EAM_NPARAMS; i++) mvt_release(t[i]);
}

static uint8_t *read_support(hid_t g, int64_t *shape) {
    int nd;
    double *d = fx_read(g, "support_mask", &nd, shape);
    ck_assert_msg(d && nd == 3, "support_mask must be [V, N, (V-1)N]");
    int64_t n = fx_numel(nd, shape);
    uint8_t *s = malloc((size_t)n);
    for (int64_t i = 0; i < n; i++) s[i] = d[i] != 0;
    free(d);
    return s;
}

/* One fixture case in dtype dt, optionally as a batch of two copies of the sample. */
static void run_case(hid_t f, const char *name, mvt_dtype dt, bool batch2) {
    hid_t g = H5Gopen2(f, name, H5P_DEFAULT);
    ck_assert(g >= 0);
    int heads = (int)fx_attr_f64(f, name, "heads");
    double rtol = dt == MVT_F64 ? 1e-9 : 1e-4;
    /* The gradient of bk is exactly zero (softmax is invariant to a per-query
     * shift of the scores), so its reference is rounding noise: gradients are
     * also accepted within rtol * 1e-3 * the case's largest parameter gradient. */
    double gatol = rtol * 1e-3 * group_max_abs(g, "grad_params");
    mvead_eam m;
    load_eam(g, heads, dt, &m);
    int64_t sshape[3];
    uint8_t *support = read_support(g, sshape);
    int V = (int)sshape[0], N = (int)sshape[1];
    mvt_tensor *mask = mvead_attn_mask_from_support(support, V, N, dt);
    mvt_tensor *z = read_tensor(g, "Z", dt), *r = read_tensor(g, "R", dt);
    ck_assert_int_eq(z->shape[0], V);
    ck_assert_int_eq(z->shape[1], N);
    if (batch2) {   /* the same sample twice: [2, V, N, D]; the gradient doubles */
        const mvt_tensor *zz[2] = {z, z}, *rr[2] = {r, r};
        mvt_tensor *z1 = mvt_unsqueeze(z, 0), *r1 = mvt_unsqueeze(r, 0);
        zz[0] = zz[1] = z1;
        rr[0] = rr[1] = r1;
        mvt_tensor *zb = mvt_concat(zz, 2, 0), *rb = mvt_concat(rr, 2, 0);
        mvt_release(z1); mvt_release(r1); mvt_release(z); mvt_release(r);
        z = zb;
        r = rb;
    }
    mva_var *Z = mva_leaf(z, true, "Z");
    mva_var *O = mvead_eam_forward(&m, Z, mask);
    char what[128];
    if (batch2) {
        for (int i = 0; i < 2; i++) {
            mvt_tensor *oi = mvt_select(O->value, 0, i);
            snprintf(what, sizeof what, "%s O[%d] batched %s", name, i, mvt_dtype_name(dt));
            ck_assert(compare_tensor(g, "O", oi, rtol, what));
            mvt_release(oi);
        }
    } else {
        snprintf(what, sizeof what, "%s O %s", name, mvt_dtype_name(dt));
        ck_assert(compare_tensor(g, "O", O->value, rtol, what));
    }
    ck_assert(mvt_all_finite(O->value));
    mva_backward(O, r);
    if (batch2) {   /* halve, so the stored single-sample gradients apply */
        for (int i = 0; i < MVEAD_EAM_NPARAMS; i++) {
            mva_var *p[MVEAD_EAM_NPARAMS];
            mvead_eam_params(&m, p);
            mvt_tensor *h = mvt_scale(p[i]->grad, 0.5);
            snprintf(what, sizeof what, "%s grad %s batched %s", name, mvead_eam_param_names[i], mvt_dtype_name(dt));
            char path[64];
            snprintf(path, sizeof path, "grad_params/%s", mvead_eam_param_names[i]);
            ck_assert(compare_tensor_atol(g, path, h, rtol, gatol, what));
            mvt_release(h);
        }
        mvt_tensor *gz = mvt_select(Z->grad, 0, 1);
        snprintf(what, sizeof what, "%s grad_Z[1] batched %s", name, mvt_dtype_name(dt));
        ck_assert(compare_tensor(g, "grad_Z", gz, rtol, what));
        mvt_release(gz);
    } else {
        snprintf(what, sizeof what, "%s grad_Z %s", name, mvt_dtype_name(dt));
        ck_assert(compare_tensor(g, "grad_Z", Z->grad, rtol, what));
        mva_var *p[MVEAD_EAM_NPARAMS];
        mvead_eam_params(&m, p);
        for (int i = 0; i < MVEAD_EAM_NPARAMS; i++) {
            char path[64];
            snprintf(path, sizeof path, "grad_params/%s", mvead_eam_param_names[i]);
            snprintf(what, sizeof what, "%s grad %s %s", name, mvead_eam_param_names[i], mvt_dtype_name(dt));
            ck_assert_msg(p[i]->grad != NULL, "no gradient for %s", mvead_eam_param_names[i]);
            ck_assert(compare_tensor_atol(g, path, p[i]->grad, rtol, gatol, what));
        }
    }
    /* Rows with no kept key: O = Z + bo exactly (zero attention term). */
    int64_t row_len = (int64_t)(V - 1) * N;
    if (!batch2) {
        mvt_tensor *o64 = mvt_empty(MVT_F64, O->value->ndim, O->value->shape);
        mvt_tensor *z64 = mvt_empty(MVT_F64, Z->value->ndim, Z->value->shape);
        mvt_tensor *b64 = mvt_empty(MVT_F64, 1, m.bo->value->shape);
        mvt_copy_(o64, O->value); mvt_copy_(z64, Z->value); mvt_copy_(b64, m.bo->value);
        int64_t D = z64->shape[2];
        for (int64_t row = 0; row < (int64_t)V * N; row++) {
            bool empty = true;
            for (int64_t c = 0; c < row_len; c++) if (support[row * row_len + c]) { empty = false; break; }
            if (!empty) continue;
            for (int64_t c = 0; c < D; c++) {
                double want = mvt_f64(z64)[row * D + c] + mvt_f64(b64)[c];
                ck_assert_msg(fabs(mvt_f64(o64)[row * D + c] - want) <= (dt == MVT_F64 ? 1e-12 : 1e-5) * (1 + fabs(want)),
                              "%s: empty row %lld is not Z + bo", name, (long long)row);
            }
        }
        mvt_release(o64); mvt_release(z64); mvt_release(b64);
    }
    mva_tape_clear();
    mva_leaf_free(Z);
    mvt_release(r);
    mvt_release(mask);
    free(support);
    mvead_eam_free(&m);
    H5Gclose(g);
}

static void run_all_cases(mvt_dtype dt, bool batch2) {
    hid_t f = fx_open("method/eam.h5");
    if (f < 0) return;
    char **names;
    int n = fx_list(f, ".", &names);
    ck_assert_int_gt(n, 0);
    for (int i = 0; i < n; i++) run_case(f, names[i], dt, batch2);
    fx_free_list(names, n);
    fx_close(f);
}

START_TEST(test_fixture_f64) { run_all_cases(MVT_F64, false); }
END_TEST
START_TEST(test_fixture_f32) { run_all_cases(MVT_F32, false); }
END_TEST
START_TEST(test_fixture_batched_f64) { run_all_cases(MVT_F64, true); }
END_TEST

/* The emptyrows case really has empty rows (so the check above bites). */
START_TEST(test_fixture_has_empty_rows) {
    hid_t f = fx_open("method/eam.h5");
    if (f < 0) return;
    if (!fx_has(f, "v3_h1_emptyrows")) { fx_close(f); return; }
    hid_t g = H5Gopen2(f, "v3_h1_emptyrows", H5P_DEFAULT);
    int64_t s[3];
    uint8_t *sup = read_support(g, s);
    int empty = 0;
    for (int64_t row = 0; row < s[0] * s[1]; row++) {
        int any = 0;
        for (int64_t c = 0; c < s[2]; c++) any |= sup[row * s[2] + c];
        empty += !any;
    }
    ck_assert_int_gt(empty, 0);
    free(sup);
    H5Gclose(g);
    fx_close(f);
}
END_TEST

/* ---- tiny random module ---- */

typedef struct { int heads; const mvt_tensor *mask; } eam_ctx;

/* inputs: Z then the 10 parameters. */
static mva_var *eam_fn(mva_var *const *in, int n, void *ctx) {
    (void)n;
    eam_ctx *c = ctx;
    mvead_eam m = {.dim = (int)in[0]->value->shape[2], .heads = c->heads, .dtype = MVT_F64,
                   .ln_w = in[1], .ln_b = in[2], .wq = in[3], .bq = in[4], .wk = in[5],
                   .bk = in[6], .wv = in[7], .bv = in[8], .wo = in[9], .bo = in[10]};
    return mvead_eam_forward(&m, in[0], c->mask);
}

/* Random support mask with every fourth query row empty. */
static uint8_t *random_support(int V, int N, mvt_rng *rng) {
    int64_t row_len = (int64_t)(V - 1) * N;
    uint8_t *s = malloc((size_t)(V * N * row_len));
    for (int64_t row = 0; row < (int64_t)V * N; row++)
        for (int64_t c = 0; c < row_len; c++)
            s[row * row_len + c] = (row % 4 == 3) ? 0 : (mvt_rng_uniform(rng) < 0.5);
    return s;
}

START_TEST(test_gradcheck) {
    int V = 3, N = 4, D = 8, heads = 2;
    mvt_rng rng;
    mvt_rng_seed(&rng, 7);
    mvead_eam m;
    ck_assert_int_eq(mvead_eam_init_random(&m, D, heads, MVT_F64, 3), 0);
    /* LN affine away from (1, 0) so its gradient is exercised too */
    mvt_fill_normal(m.ln_w->value, &rng, 1.0, 0.3);
    mvt_fill_normal(m.ln_b->value, &rng, 0.0, 0.3);
    uint8_t *sup = random_support(V, N, &rng);
    mvt_tensor *mask = mvead_attn_mask_from_support(sup, V, N, MVT_F64);
    int64_t zs[3] = {V, N, D};
    mvt_tensor *z = mvt_empty(MVT_F64, 3, zs);
    mvt_fill_normal(z, &rng, 0.0, 1.0);
    mva_var *in[11];
    in[0] = mva_leaf(z, true, "Z");
    mva_var *p[MVEAD_EAM_NPARAMS];
    mvead_eam_params(&m, p);
    for (int i = 0; i < MVEAD_EAM_NPARAMS; i++) in[1 + i] = p[i];
    eam_ctx ctx = {heads, mask};
    mva_gradcheck_report r = mva_gradcheck(eam_fn, in, 11, &ctx, 1e-6, 1e-7, 1e-5, 11);
    ck_assert_msg(r.ok, "eam gradcheck: %s (input %d, index %lld: %g vs %g)", r.message, r.worst_input,
                  (long long)r.worst_index, r.analytic, r.numeric);
    mva_tape_clear();
    mva_leaf_free(in[0]);
    mvt_release(mask);
    free(sup);
    mvead_eam_free(&m);
}
END_TEST

/* A fully empty mask: O = Z + bo everywhere, gradients finite and zero through attention. */
START_TEST(test_all_rows_empty) {
    int V = 2, N = 4, D = 8;
    mvead_eam m;
    ck_assert_int_eq(mvead_eam_init_random(&m, D, 4, MVT_F64, 5), 0);
    int64_t ms[2] = {V * N, V * N}, zs[3] = {V, N, D};
    mvt_tensor *mask = mvt_zeros(MVT_F64, 2, ms);
    mvt_rng rng;
    mvt_rng_seed(&rng, 1);
    mvt_tensor *z = mvt_empty(MVT_F64, 3, zs);
    mvt_fill_normal(z, &rng, 0, 1);
    mva_var *Z = mva_leaf(z, true, "Z");
    mva_var *O = mvead_eam_forward(&m, Z, mask);
    mvt_tensor *want = mvt_add(Z->value, m.bo->value);
    ck_assert(mvt_max_abs_diff(O->value, want, NULL) == 0.0);
    mvt_tensor *seed = mvt_full(MVT_F64, 3, zs, 1.0);
    mva_backward(O, seed);
    ck_assert(mvt_all_finite(Z->grad));
    ck_assert(m.wq->grad == NULL || mvt_max_abs(m.wq->grad) == 0.0);
    ck_assert(m.wv->grad == NULL || mvt_max_abs(m.wv->grad) == 0.0);
    ck_assert(mvt_max_abs(m.wo->grad) == 0.0);
    mvt_release(seed);
    mvt_release(want);
    mva_tape_clear();
    mva_leaf_free(Z);
    mvt_release(mask);
    mvead_eam_free(&m);
}
END_TEST

START_TEST(test_masks_and_modes) {
    int V = 3, h = 2, w = 3, N = h * w, D = 8;
    mvt_rng rng;
    mvt_rng_seed(&rng, 9);
    uint8_t *sup = random_support(V, N, &rng);
    mvt_tensor *M = mvead_attn_mask_from_support(sup, V, N, MVT_F64);
    int64_t VN = V * N, row_len = (V - 1) * N;
    for (int a = 0; a < V; a++)
        for (int j = 0; j < N; j++)
            for (int b = 0; b < V; b++)
                for (int k = 0; k < N; k++) {
                    int64_t idx[2] = {a * N + j, b * N + k};
                    double want = b == a ? 0 : sup[(a * N + j) * row_len + (b - (b > a)) * N + k];
                    ck_assert(mvt_get(M, idx) == want);
                }
    mvt_tensor *F = mvead_attn_mask_full(V, N, MVT_F32);
    for (int64_t r = 0; r < VN; r++)
        for (int64_t c = 0; c < VN; c++) {
            int64_t idx[2] = {r, c};
            ck_assert(mvt_get(F, idx) == ((r / N) != (c / N) ? 1.0 : 0.0));
        }

    /* fusion none is the identity; full equals the forward with the all-ones mask */
    mvead_eam m;
    ck_assert_int_eq(mvead_eam_init_random(&m, D, 2, MVT_F64, 4), 0);
    int64_t zs[4] = {2, V, N, D};
    mvt_tensor *z = mvt_empty(MVT_F64, 4, zs);
    mvt_fill_normal(z, &rng, 0, 1);
    mva_var *Z = mva_leaf(z, false, "Z");
    mvead_fusion_opts o;
    mvead_fusion_opts_default(&o);
    ck_assert_int_eq(o.mode, MVEAD_FUSION_EAM);
    o.mode = MVEAD_FUSION_NONE;
    ck_assert_ptr_eq(mvead_fuse(&m, &o, Z, NULL), Z);
    ck_assert_ptr_null(mvead_fusion_static_mask(&o, NULL, V, N, MVT_F64));
    o.mode = MVEAD_FUSION_FULL;
    mvt_tensor *fm = mvead_fusion_static_mask(&o, NULL, V, N, MVT_F64);
    mva_var *a = mvead_fuse(&m, &o, Z, fm);
    mvt_tensor *F64 = mvead_attn_mask_full(V, N, MVT_F64);
    mva_var *b = mvead_eam_forward(&m, Z, F64);
    ck_assert(mvt_max_abs_diff(a->value, b->value, NULL) == 0.0);
    o.mode = MVEAD_FUSION_EAM;
    ck_assert_ptr_null(mvead_fusion_static_mask(&o, NULL, V, N, MVT_F64));
    ck_assert(strstr(mv_error_last(), "support") != NULL);

    /* mvas, n_win 2 on the 2 x 3 grid: padded to 2 x 4, windows of 1 x 2
     * cells: {0,1} {2,pad} {3,4} {5,pad}. top-1 over the windows of both
     * supports jointly: each query row keeps the real patches of one window
     * (2 or 1), all in one support view */
    o.mode = MVEAD_FUSION_MVAS;
    o.h = h; o.w = w; o.mvas_window = 2; o.mvas_topk = 1;
    mva_var *c = mvead_fuse(&m, &o, Z, NULL);
    ck_assert(mvt_all_finite(c->value));
    mvt_tensor *mm = mvead_attn_mask_mvas(Z->value, h, w, 2, 1, MVT_F64);
    ck_assert_int_eq(mm->ndim, 4);
    ck_assert_int_eq(mm->shape[0], 2);
    for (int64_t i = 0; i < 2; i++)
        for (int64_t r = 0; r < VN; r++) {
            int kept = 0, views = 0;
            for (int bv = 0; bv < V; bv++) {
                int kv = 0;
                for (int k = 0; k < N; k++) {
                    int64_t idx[4] = {i, 0, r, bv * N + k};
                    kv += mvt_get(mm, idx) != 0;
                }
                if (bv == r / N) ck_assert_int_eq(kv, 0);
                kept += kv;
                views += kv > 0;
            }
            ck_assert_msg((kept == 2 || kept == 1) && views == 1, "mvas kept %d patches in %d views", kept, views);
        }
    /* the best-matching window of any support is selected: view 0's window
     * q carries feature q, view 1's window q feature 3 - q, view 2 nothing;
     * query window 0 of view 0 matches view 1's window 3 = patch 5 alone */
    int64_t s3[3] = {V, N, D};
    mvt_tensor *z3 = mvt_zeros(MVT_F64, 3, s3);
    for (int v = 0; v < 2; v++)
        for (int j = 0; j < N; j++) {
            int wq = (j / w) * 2 + (j % w) / 2;
            int64_t idx[3] = {v, j, v == 0 ? wq : 3 - wq};
            mvt_set(z3, idx, 1.0);
        }
    mvt_tensor *m3 = mvead_attn_mask_mvas(z3, h, w, 2, 1, MVT_F64);
    int64_t q0[2] = {0, 1 * N + 5}, q1[2] = {0, 1 * N + 0};   /* query patch 0 of view 0 */
    ck_assert(mvt_get(m3, q0) == 1.0);
    ck_assert(mvt_get(m3, q1) == 0.0);

    /* attention map: a distribution over the kept keys of other views */
    mvt_tensor *zs0 = mvt_select(Z->value, 0, 0);
    mvt_tensor *att = mvead_eam_attention(&m, zs0, M, 1, 2);
    ck_assert_int_eq(att->ndim, 3);
    ck_assert_int_eq(att->shape[0], 2);
    for (int hh = 0; hh < 2; hh++) {
        double sum = 0;
        for (int v = 0; v < V; v++)
            for (int k = 0; k < N; k++) {
                int64_t idx[3] = {hh, v, k}, mi[2] = {1 * N + 2, v * N + k};
                double p = mvt_get(att, idx);
                if (mvt_get(M, mi) == 0) ck_assert(p == 0.0);
                sum += p;
            }
        ck_assert(fabs(sum - 1.0) < 1e-12);
    }
    mvt_release(att);
    mvt_release(zs0);

    mvt_release(m3); mvt_release(z3); mvt_release(mm); mvt_release(F64); mvt_release(fm);
    mvt_release(F); mvt_release(M);
    mva_tape_clear();
    mva_leaf_free(Z);
    mvead_eam_free(&m);
    free(sup);
}
END_TEST

/* The attention map agrees with the forward: with Wv = I, bv = 0, Wo = I, bo = 0
 * and LN = identity-ish, O - Z of the query equals sum_k p_k LN(Z)_k per head block. */
/* MVAS as MVAD selects: every case of mvas.h5 (any V, grid, D, n_win, topk
 * the file states), the mask equal to the stored support mask exactly, also
 * through the batched path. */
START_TEST(test_mvas_fixture) {
    hid_t f = fx_open("method/mvas.h5");
    if (f < 0) return;
    char **names;
    int ncase = fx_list(f, "/", &names), checked = 0;
    for (int ci = 0; ci < ncase; ci++) {
        const char *g = names[ci];
        int V = (int)fx_attr_f64(f, g, "V"), h = (int)fx_attr_f64(f, g, "h"), w = (int)fx_attr_f64(f, g, "w");
        int n_win = (int)fx_attr_f64(f, g, "n_win"), topk = (int)fx_attr_f64(f, g, "topk"), N = h * w;
        char p[256];
        snprintf(p, sizeof p, "%s/Z", g);
        mvt_tensor *Z = read_tensor(f, p, MVT_F64);
        ck_assert_msg(Z && Z->ndim == 3 && Z->shape[0] == V && Z->shape[1] == N, "%s: Z", g);
        snprintf(p, sizeof p, "%s/support_mask", g);
        int nd;
        int64_t shape[8];
        int64_t *sup64 = fx_read_i64(f, p, &nd, shape);
        ck_assert_msg(sup64 && fx_numel(nd, shape) == (int64_t)V * N * (V - 1) * N, "%s: support_mask", g);
        int64_t ns = fx_numel(nd, shape);
        uint8_t *sup = malloc((size_t)ns);
        for (int64_t k = 0; k < ns; k++) sup[k] = sup64[k] != 0;
        mvt_tensor *want = mvead_attn_mask_from_support(sup, V, N, MVT_F64);
        mvt_tensor *got = mvead_attn_mask_mvas(Z, h, w, n_win, topk, MVT_F64);
        int64_t VN = (int64_t)V * N, bad = 0;
        for (int64_t k = 0; k < VN * VN; k++) bad += mvt_f64(got)[k] != mvt_f64(want)[k];
        ck_assert_msg(bad == 0, "%s: %lld of %lld mask entries differ", g, (long long)bad, (long long)(VN * VN));
        /* batched: [1, V, N, D] -> [1, 1, VN, VN], the same mask */
        int64_t s4[4] = {1, V, N, Z->shape[2]};
        mvt_tensor *Zb = mvt_reshape(Z, 4, s4);
        mvt_tensor *gb = mvead_attn_mask_mvas(Zb, h, w, n_win, topk, MVT_F64);
        ck_assert(!memcmp(mvt_f64(gb), mvt_f64(want), sizeof(double) * (size_t)(VN * VN)));
        mvt_release(gb); mvt_release(Zb); mvt_release(got); mvt_release(want); mvt_release(Z);
        free(sup); free(sup64);
        checked++;
    }
    fx_free_list(names, ncase);
    fx_close(f);
    ck_assert_int_gt(checked, 0);
}
END_TEST

START_TEST(test_attention_matches_forward) {
    int V = 2, N = 3, D = 4, H = 2;
    mvead_eam m;
    ck_assert_int_eq(mvead_eam_init_random(&m, D, H, MVT_F64, 8), 0);
    mvt_fill(m.wv->value, 0); mvt_fill(m.bv->value, 0); mvt_fill(m.wo->value, 0); mvt_fill(m.bo->value, 0);
    for (int i = 0; i < D; i++) {
        int64_t idx[2] = {i, i};
        mvt_set(m.wv->value, idx, 1.0);
        mvt_set(m.wo->value, idx, 1.0);
    }
    mvt_rng rng;
    mvt_rng_seed(&rng, 2);
    int64_t zs[3] = {V, N, D};
    mvt_tensor *z = mvt_empty(MVT_F64, 3, zs);
    mvt_fill_normal(z, &rng, 0, 1);
    mvt_tensor *mask = mvead_attn_mask_full(V, N, MVT_F64);
    mva_var *Z = mva_leaf(z, false, "Z");
    bool prev = mva_set_grad_enabled(false);
    mva_var *O = mvead_eam_forward(&m, Z, mask);
    mva_set_grad_enabled(prev);
    mvt_tensor *y = mvt_layernorm(Z->value, m.ln_w->value, m.ln_b->value, MVEAD_EAM_LN_EPS, NULL, NULL);
    int qv = 1, qj = 2;
    mvt_tensor *att = mvead_eam_attention(&m, Z->value, mask, qv, qj);
    for (int c = 0; c < D; c++) {
        int hh = c / (D / H);
        double want = 0;
        for (int v = 0; v < V; v++)
            for (int k = 0; k < N; k++) {
                int64_t ai[3] = {hh, v, k}, yi[3] = {v, k, c};
                want += mvt_get(att, ai) * mvt_get(y, yi);
            }
        int64_t oi[3] = {qv, qj, c};
        ck_assert(fabs(mvt_get(O->value, oi) - mvt_get(Z->value, oi) - want) < 1e-12);
    }
    mvt_release(att); mvt_release(y); mvt_release(mask);
    mva_tape_clear();
    mva_leaf_free(Z);
    mvead_eam_free(&m);
}
END_TEST

START_TEST(test_init_and_errors) {
    mvead_eam a, b;
    ck_assert_int_eq(mvead_eam_init_random(&a, 16, 4, MVT_F32, 42), 0);
    ck_assert_int_eq(mvead_eam_init_random(&b, 16, 4, MVT_F32, 42), 0);
    mva_var *pa[MVEAD_EAM_NPARAMS], *pb[MVEAD_EAM_NPARAMS];
    mvead_eam_params(&a, pa);
    mvead_eam_params(&b, pb);
    for (int i = 0; i < MVEAD_EAM_NPARAMS; i++) {
        ck_assert(pa[i]->requires_grad && pa[i]->is_leaf);
        ck_assert(mvt_max_abs_diff(pa[i]->value, pb[i]->value, NULL) == 0.0);
        if (i >= 2) ck_assert(mvt_max_abs(pa[i]->value) <= 0.25 + 1e-7);   /* 1/sqrt(16) */
    }
    int64_t one = 16;
    mvt_tensor *ones = mvt_full(MVT_F32, 1, &one, 1.0);
    ck_assert(mvt_max_abs_diff(a.ln_w->value, ones, NULL) == 0.0);
    ck_assert(mvt_max_abs(a.ln_b->value) == 0.0);
    mvt_release(ones);
    mvead_eam_free(&b);
    ck_assert_int_eq(mvead_eam_init_random(&b, 15, 4, MVT_F32, 1), -1);
    ck_assert(strstr(mv_error_last(), "heads") != NULL);

    /* copy with a wrong shape names the field */
    int64_t s2[2] = {16, 16}, s1 = 16, bad = 8;
    mvt_tensor *W = mvt_zeros(MVT_F32, 2, s2), *v = mvt_zeros(MVT_F32, 1, &s1), *vb = mvt_zeros(MVT_F32, 1, &bad);
    mvead_eam_weights w = {v, v, W, v, W, vb, W, v, W, v};
    mvead_eam c;
    ck_assert_int_eq(mvead_eam_init_copy(&c, 4, MVT_F64, &w, NULL), -1);
    ck_assert(strstr(mv_error_last(), "bk") != NULL);
    w.bk = v;
    /* layer scale folds into wo rows and bo */
    mvt_tensor *gamma = mvt_full(MVT_F32, 1, &s1, 0.5);
    mvt_fill(W, 2.0);
    mvt_fill(v, 4.0);
    ck_assert_int_eq(mvead_eam_init_copy(&c, 4, MVT_F64, &w, gamma), 0);
    ck_assert_int_eq(c.dtype, MVT_F64);
    int64_t i00[2] = {3, 5}, i0 = 7;
    ck_assert(mvt_get(c.wo->value, i00) == 1.0 && mvt_get(c.bo->value, &i0) == 2.0);
    ck_assert(mvt_get(c.wq->value, i00) == 2.0 && mvt_get(c.bq->value, &i0) == 4.0);
    /* copies, not views of the source */
    mvt_fill(W, 0.0);
    ck_assert(mvt_get(c.wq->value, i00) == 2.0);
    mvead_fusion fm;
    ck_assert_int_eq(mvead_fusion_parse("mvas", &fm), 0);
    ck_assert_int_eq(fm, MVEAD_FUSION_MVAS);
    ck_assert_int_eq(mvead_fusion_parse("epi", &fm), -1);
    ck_assert_str_eq(mvead_fusion_name(MVEAD_FUSION_FULL), "full");
    mvt_release(W); mvt_release(v); mvt_release(vb); mvt_release(gamma);
    mvead_eam_free(&a); mvead_eam_free(&b); mvead_eam_free(&c);
}
END_TEST

/* ---- sparse attention = dense attention -----------------------------------------
 * The same module, input and projection R through both paths (--attention):
 * O and the gradients of sum(O * R) w.r.t. Z and every parameter within tol
 * of the largest reference entry (1e-12 f64, 1e-5 f32). */

static double max_abs(const mvt_tensor *t) {
    double mb = 0;
    mvt_tensor *b64 = mvt_to_dtype(t, MVT_F64);
    for (int64_t i = 0; i < mvt_numel(b64); i++) mb = fmax(mb, fabs(mvt_f64(b64)[i]));
    mvt_release(b64);
    return mb;
}

/* max |a - b| over max(max |b|, floor); the floor keeps a gradient that is
 * exactly zero in exact arithmetic (bk's: softmax ignores a per-query shift)
 * from being compared as pure rounding noise against itself. */
static double scaled_err(const mvt_tensor *a, const mvt_tensor *b, double floor) {
    double mb = fmax(max_abs(b), floor);
    double e = mvt_max_abs_diff(a, b, NULL);
    return isfinite(e) ? (mb > 0 ? e / mb : e) : INFINITY;
}

/* Runs fusion fo (its attention field picks the path) on z; out[0] = O,
 * out[1] = grad_Z, out[2 + i] = grad of parameter i (new references). */
static void fuse_with_grads(const mvead_eam *m, const mvead_fusion_opts *fo, const mvt_tensor *z,
                            const mvt_tensor *mask, uint64_t seed, mvt_tensor *out[2 + MVEAD_EAM_NPARAMS]) {
    mva_var *p[MVEAD_EAM_NPARAMS];
    mvead_eam_params(m, p);
    for (int i = 0; i < MVEAD_EAM_NPARAMS; i++) mva_zero_grad(p[i]);
    mva_var *Z = mva_leaf(mvt_clone(z), true, "Z");
    mva_var *O = mvead_fuse(m, fo, Z, mask);
    mvt_rng rng;
    mvt_rng_seed(&rng, seed);
    mvt_tensor *R = mvt_empty(z->dtype, z->ndim, z->shape);
    mvt_fill_uniform(R, &rng, -1, 1);
    mva_backward(O, R);
    out[0] = mvt_retain(O->value);
    out[1] = mvt_retain(Z->grad);
    for (int i = 0; i < MVEAD_EAM_NPARAMS; i++) out[2 + i] = mvt_clone(p[i]->grad);
    mva_tape_clear();
    mva_leaf_free(Z);
    mvt_release(R);
}

static void sparse_vs_dense(const char *what, const mvead_eam *m, mvead_fusion_opts fo, const mvt_tensor *z,
                            const mvt_tensor *mask) {
    double tol = m->dtype == MVT_F64 ? 1e-12 : 1e-5;
    mvt_tensor *a[2 + MVEAD_EAM_NPARAMS], *b[2 + MVEAD_EAM_NPARAMS];
    fo.attention = MVEAD_ATTN_SPARSE;
    fuse_with_grads(m, &fo, z, mask, 5, a);
    fo.attention = MVEAD_ATTN_DENSE;
    fuse_with_grads(m, &fo, z, mask, 5, b);
    double gmax = 0;   /* as the fixture comparisons: parameter gradients also within 1e-3 of the largest */
    for (int i = 2; i < 2 + MVEAD_EAM_NPARAMS; i++) gmax = fmax(gmax, max_abs(b[i]));
    for (int i = 0; i < 2 + MVEAD_EAM_NPARAMS; i++) {
        /* bk's gradient is zero in exact arithmetic: both sides are rounding noise of the
         * size of the other gradients' */
        bool bk = i >= 2 && !strcmp(mvead_eam_param_names[i - 2], "bk");
        double e = scaled_err(a[i], b[i], bk ? gmax : i >= 2 ? 1e-3 * gmax : 0);
        ck_assert_msg(e <= tol, "%s %s: sparse %s differs from dense by %g of its largest entry (tol %g)", what,
                      mvt_dtype_name(m->dtype), i == 0 ? "O" : i == 1 ? "grad Z" : mvead_eam_param_names[i - 2], e, tol);
        mvt_release(a[i]);
        mvt_release(b[i]);
    }
}

START_TEST(test_sparse_equals_dense_fixtures) {
    hid_t f = fx_open("method/eam.h5");
    if (f < 0) return;
    char **names;
    int n = fx_list(f, ".", &names);
    ck_assert_int_gt(n, 0);
    mvt_dtype dts[2] = {MVT_F64, MVT_F32};
    for (int c = 0; c < n; c++)
        for (int t = 0; t < 2; t++) {
            hid_t g = H5Gopen2(f, names[c], H5P_DEFAULT);
            mvead_eam m;
            load_eam(g, (int)fx_attr_f64(f, names[c], "heads"), dts[t], &m);
            int64_t sshape[3];
            uint8_t *support = read_support(g, sshape);
            mvt_tensor *mask = mvead_attn_mask_from_support(support, (int)sshape[0], (int)sshape[1], dts[t]);
            mvt_tensor *z = read_tensor(g, "Z", dts[t]);
            mvead_fusion_opts fo;
            mvead_fusion_opts_default(&fo);
            sparse_vs_dense(names[c], &m, fo, z, mask);
            mvt_release(z);
            mvt_release(mask);
            free(support);
            mvead_eam_free(&m);
            H5Gclose(g);
        }
    fx_free_list(names, n);
    fx_close(f);
}
END_TEST

/* Random cases: B 1 and 3, epipolar-like random masks with empty rows, full
 * fusion, mvas (one mask per sample). */
START_TEST(test_sparse_equals_dense_random) {
    int V = 3, h = 4, w = 5, N = h * w, D = 16;
    mvt_dtype dts[2] = {MVT_F64, MVT_F32};
    for (int t = 0; t < 2; t++)
        for (int B = 1; B <= 3; B += 2) {
            mvt_rng rng;
            mvt_rng_seed(&rng, 31 + (uint64_t)B);
            mvead_eam m;
            ck_assert_int_eq(mvead_eam_init_random(&m, D, 4, dts[t], 8), 0);
            int64_t zs[4] = {B, V, N, D};
            mvt_tensor *z = mvt_empty(dts[t], 4, zs);
            mvt_fill_normal(z, &rng, 0, 1);
            uint8_t *sup = random_support(V, N, &rng);
            mvead_fusion_opts fo;
            mvead_fusion_opts_default(&fo);
            mvt_tensor *mask = mvead_fusion_static_mask(&fo, sup, V, N, dts[t]);
            sparse_vs_dense("random eam mask", &m, fo, z, mask);
            mvt_release(mask);
            fo.mode = MVEAD_FUSION_FULL;
            mask = mvead_fusion_static_mask(&fo, NULL, V, N, dts[t]);
            sparse_vs_dense("full", &m, fo, z, mask);
            mvt_release(mask);
            fo.mode = MVEAD_FUSION_MVAS;
            fo.h = h; fo.w = w; fo.mvas_window = 2; fo.mvas_topk = 2;
            sparse_vs_dense("mvas", &m, fo, z, NULL);
            free(sup);
            mvt_release(z);
            mvead_eam_free(&m);
        }
}
END_TEST

START_TEST(test_attention_names) {
    mvead_attention a;
    ck_assert_int_eq(mvead_attention_parse("dense", &a), 0);
    ck_assert_int_eq(a, MVEAD_ATTN_DENSE);
    ck_assert_int_eq(mvead_attention_parse("sparse", &a), 0);
    ck_assert_int_eq(a, MVEAD_ATTN_SPARSE);
    ck_assert_int_eq(mvead_attention_parse("flash", &a), -1);
    ck_assert_str_eq(mvead_attention_name(MVEAD_ATTN_DENSE), "dense");
    mvead_fusion_opts fo;
    mvead_fusion_opts_default(&fo);
    ck_assert_int_eq(fo.attention, MVEAD_ATTN_SPARSE);
}
END_TEST

static Suite *eam_suite(void) {
    Suite *s = suite_create("eam");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_fixture_f64);
    tcase_add_test(tc, test_fixture_f32);
    tcase_add_test(tc, test_fixture_batched_f64);
    tcase_add_test(tc, test_fixture_has_empty_rows);
    tcase_add_test(tc, test_gradcheck);
    tcase_add_test(tc, test_all_rows_empty);
    tcase_add_test(tc, test_masks_and_modes);
    tcase_add_test(tc, test_mvas_fixture);
    tcase_add_test(tc, test_attention_matches_forward);
    tcase_add_test(tc, test_init_and_errors);
    tcase_add_test(tc, test_sparse_equals_dense_fixtures);
    tcase_add_test(tc, test_sparse_equals_dense_random);
    tcase_add_test(tc, test_attention_names);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(eam_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
