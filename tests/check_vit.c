/* Tests for nn/vit: parity with HuggingFace Dinov2Model on every fixture
 * dir dinov2_* under $MVEAD_FIXTURES (forward hidden states, last hidden
 * state, gradients w.r.t. pixels and every parameter; float32 and float64
 * models), the torch-hub interpolation mode (reference_hub.h5), torch-hub key
 * names, HDF5 weights, plus fixture-free checks on a tiny random model
 * (finite-difference gradients, registers, mask token, batching, features). */
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nn/safetensors.h"
#include "nn/vit.h"
#include "tensor/error.h"
#include "tests/fixtures.h"

/* ---- helpers ----------------------------------------------------------------- */

/* Names of the fixture dirs dinov2_* holding model.safetensors + reference.h5. */
static int list_model_dirs(char ***out) {
    *out = NULL;
    DIR *d = opendir(fx_dir());
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "dinov2_", 7)) continue;
        char rel[512];
        snprintf(rel, sizeof rel, "%s/reference.h5", e->d_name);
        if (!fx_exists(rel)) continue;
        snprintf(rel, sizeof rel, "%s/model.safetensors", e->d_name);
        if (!fx_exists(rel)) continue;
        *out = realloc(*out, (size_t)(n + 1) * sizeof **out);
        (*out)[n++] = strdup(e->d_name);
    }
    closedir(d);
    return n;
}

static void free_list(char **l, int n) {
    for (int i = 0; i < n; i++) free(l[i]);
    free(l);
}

static mvn_vit *load_fixture_model(const char *dir, mvt_dtype dt) {
    char rel[512], st[4096];
    snprintf(rel, sizeof rel, "%s/model.safetensors", dir);
    snprintf(st, sizeof st, "%s", fx_path(rel));
    mvn_vit *m = mvn_vit_load(st, NULL, dt);   /* config.json next to the file */
    ck_assert_msg(m != NULL, "%s: %s", dir, mv_error_last());
    return m;
}

/* Reads dataset `path` of loc as a tensor of dtype dt. */
static mvt_tensor *read_tensor(hid_t loc, const char *path, mvt_dtype dt) {
    int nd;
    int64_t shape[8];
    double *v = fx_read(loc, path, &nd, shape);
    ck_assert_msg(v != NULL, "dataset %s missing", path);
    mvt_tensor *t64 = mvt_from_data(MVT_F64, nd, shape, v);
    free(v);
    mvt_tensor *t = mvt_to_dtype(t64, dt);
    mvt_release(t64);
    return t;
}

/* Compares a tensor with reference dataset `path`: |got - ref| <= atol + rtol * max|ref|. */
static bool compare_ds(const char *what, const mvt_tensor *got, hid_t loc, const char *path, double rtol, double atol) {
    int nd;
    int64_t shape[8];
    double *ref = fx_read(loc, path, &nd, shape);
    ck_assert_msg(ref != NULL, "%s: dataset %s missing", what, path);
    ck_assert_msg(nd == got->ndim, "%s: rank %d vs reference %d", what, got->ndim, nd);
    for (int d = 0; d < nd; d++) ck_assert_msg(shape[d] == got->shape[d], "%s: dim %d is %lld, reference %lld", what, d, (long long)got->shape[d], (long long)shape[d]);
    mvt_tensor *c = mvt_to_dtype(got, MVT_F64);
    mvt_tensor *cc = mvt_contiguous(c);
    bool ok = fx_compare(what, mvt_f64(cc), ref, fx_numel(nd, shape), rtol, atol, 1);
    mvt_release(cc);
    mvt_release(c);
    free(ref);
    return ok;
}

static bool case_interpolates(const mvn_vit *m, const mvt_tensor *px) {
    int64_t M = mvn_config_grid(&m->cfg), P = m->cfg.patch_size;
    return !(px->shape[2] / P == M && px->shape[3] / P == M);
}

/* ---- forward parity -------------------------------------------------------------- */

/* Forward of every case of `ref_file` (reference.h5 or reference_hub.h5) in dtype dt. */
static void check_forward_file(const char *dir, const char *ref_file, mvt_dtype dt, mvn_pos_interp mode) {
    char rel[512];
    snprintf(rel, sizeof rel, "%s/%s", dir, ref_file);
    hid_t f = fx_open(rel);
    if (f < 0) return;
    mvn_vit *m = load_fixture_model(dir, dt);
    m->cfg.pos_interp = mode;
    int L = m->cfg.num_hidden_layers;
    char **cases;
    int nc = fx_list(f, "/", &cases);
    ck_assert_msg(nc > 0, "%s: no cases", rel);
    bool prev = mva_set_grad_enabled(false);
    bool all_ok = true;
    for (int ci = 0; ci < nc; ci++) {
        hid_t g = H5Gopen2(f, cases[ci], H5P_DEFAULT);
        mvt_tensor *px = read_tensor(g, "pixel_values", dt);
        bool interp = case_interpolates(m, px);
        /* float64: 1e-9 rel (native grid), 1e-5 where the float32 interpolation enters;
         * float32: 1e-4 x (1 + max|ref|) */
        double rtol = dt == MVT_F64 ? (interp ? 1e-5 : 1e-9) : 1e-4;
        double atol = dt == MVT_F64 ? 0.0 : 1e-4;
        mva_var **hs = calloc((size_t)L + 1, sizeof *hs);
        mva_var *last = NULL;
        ck_assert_msg(mvn_vit_forward(m, mva_const(px), NULL, L, hs, &last) == 0, "%s", mv_error_last());
        for (int i = 0; i <= L; i++) {
            char ds[64], what[700];
            snprintf(ds, sizeof ds, "hidden_states_%d", i);
            snprintf(what, sizeof what, "%s/%s %s (%s)", rel, cases[ci], ds, dt == MVT_F64 ? "f64" : "f32");
            all_ok &= compare_ds(what, hs[i]->value, g, ds, rtol, atol);
        }
        char what[700];
        snprintf(what, sizeof what, "%s/%s last_hidden_state (%s)", rel, cases[ci], dt == MVT_F64 ? "f64" : "f32");
        all_ok &= compare_ds(what, last->value, g, "last_hidden_state", rtol, atol);
        free(hs);
        mva_tape_clear();
        H5Gclose(g);
    }
    mva_set_grad_enabled(prev);
    fx_free_list(cases, nc);
    fx_close(f);
    mvn_vit_free(m);
    ck_assert_msg(all_ok, "%s: forward mismatch (%s), see above", rel, dt == MVT_F64 ? "f64" : "f32");
}

START_TEST(test_forward_f64) {
    char **dirs;
    int n = list_model_dirs(&dirs);
    if (!n) { fprintf(stderr, "\n*** SKIP: no dinov2_* fixtures in %s ***\n\n", fx_dir()); return; }
    for (int i = 0; i < n; i++) check_forward_file(dirs[i], "reference.h5", MVT_F64, MVN_POS_SIZE);
    free_list(dirs, n);
}
END_TEST

START_TEST(test_forward_f32) {
    char **dirs;
    int n = list_model_dirs(&dirs);
    if (!n) { fprintf(stderr, "\n*** SKIP: no dinov2_* fixtures in %s ***\n\n", fx_dir()); return; }
    for (int i = 0; i < n; i++) check_forward_file(dirs[i], "reference.h5", MVT_F32, MVN_POS_SIZE);
    free_list(dirs, n);
}
END_TEST

START_TEST(test_forward_hub_mode) {
    char **dirs;
    int n = list_model_dirs(&dirs), found = 0;
    for (int i = 0; i < n; i++) {
        char rel[512];
        snprintf(rel, sizeof rel, "%s/reference_hub.h5", dirs[i]);
        if (!fx_exists(rel)) continue;
        found++;
        check_forward_file(dirs[i], "reference_hub.h5", MVT_F64, MVN_POS_HUB);
    }
    if (!found) fprintf(stderr, "\n*** SKIP: no dinov2_*/reference_hub.h5 in %s ***\n\n", fx_dir());
    free_list(dirs, n);
}
END_TEST

/* ---- backward parity ----------------------------------------------------------------- */

static void check_backward(const char *dir, mvt_dtype dt) {
    char rel[512];
    snprintf(rel, sizeof rel, "%s/reference.h5", dir);
    hid_t f = fx_open(rel);
    if (f < 0) return;
    mvn_vit *m = load_fixture_model(dir, dt);
    mvn_vit_set_requires_grad(m, true);
    ck_assert(fx_has_attr(f, ".", "grad_layer"));
    int gl = (int)fx_attr_f64(f, ".", "grad_layer");
    ck_assert(gl >= 0 && gl <= m->cfg.num_hidden_layers);
    char **cases;
    int nc = fx_list(f, "/", &cases);
    bool prev = mva_set_grad_enabled(true);
    bool all_ok = true;
    const char *tag = dt == MVT_F64 ? "f64" : "f32";
    for (int ci = 0; ci < nc; ci++) {
        hid_t g = H5Gopen2(f, cases[ci], H5P_DEFAULT);
        mva_var *px = mva_leaf(read_tensor(g, "pixel_values", dt), true, "pixel_values");
        bool interp = case_interpolates(m, px->value);
        double rtol = dt == MVT_F64 ? (interp ? 1e-5 : 1e-8) : 1e-3;
        for (int i = 0; i < m->n_params; i++) mva_zero_grad(m->params[i]);
        mva_var **hs = calloc((size_t)gl + 1, sizeof *hs);
        /* stops after block gl: the blocks after it are never run */
        ck_assert_msg(mvn_vit_forward(m, px, NULL, gl, hs, NULL) == 0, "%s", mv_error_last());
        mva_var *R = mva_const(read_tensor(g, "loss_weights_R", dt));
        mva_var *loss = mva_sum_all(mva_mul(hs[gl], R));
        double ref_loss = 0;
        {
            int nd; int64_t sh[8];
            double *l = fx_read(g, "loss", &nd, sh);
            ck_assert_ptr_nonnull(l);
            ref_loss = l[0];
            free(l);
        }
        double lt = dt == MVT_F64 ? (interp ? 1e-5 : 1e-9) : 1e-3;
        ck_assert_msg(fabs(mvt_item(loss->value) - ref_loss) <= lt * (1 + fabs(ref_loss)),
                      "%s/%s loss %.17g vs %.17g", rel, cases[ci], mvt_item(loss->value), ref_loss);
        mva_backward(loss, NULL);
        char what[800];
        snprintf(what, sizeof what, "%s/%s grad_pixel_values (%s)", rel, cases[ci], tag);
        ck_assert_ptr_nonnull(px->grad);
        all_ok &= compare_ds(what, px->grad, g, "grad_pixel_values", rtol, 0.0);
        char **pn;
        int np = fx_list(g, "grad_params", &pn);
        ck_assert_msg(np > 0, "%s/%s: no grad_params", rel, cases[ci]);
        /* Some gradients are mathematically zero (the key bias: softmax does
         * not change when a row of scores shifts), so their reference is pure
         * round-off and "relative to the tensor's max" means nothing there: an
         * absolute floor of 1e-3 x rtol x the largest parameter gradient
         * covers them (every other tensor's max is far above that floor). */
        double gscale = 0;
        for (int k = 0; k < np; k++) {
            char ds[256];
            int nd; int64_t sh[8];
            snprintf(ds, sizeof ds, "grad_params/%s", pn[k]);
            double *r = fx_read(g, ds, &nd, sh);
            for (int64_t j = 0; j < fx_numel(nd, sh); j++) gscale = fmax(gscale, fabs(r[j]));
            free(r);
        }
        for (int k = 0; k < np; k++) {
            mva_var *p = mvn_vit_param(m, pn[k]);
            ck_assert_msg(p != NULL, "%s: reference has a gradient for unknown parameter %s", rel, pn[k]);
            char ds[256];
            snprintf(ds, sizeof ds, "grad_params/%s", pn[k]);
            snprintf(what, sizeof what, "%s/%s %s (%s)", rel, cases[ci], ds, tag);
            if (!p->grad) {
                /* never reached: must be zero in the reference too */
                int nd; int64_t sh[8];
                double *r = fx_read(g, ds, &nd, sh);
                for (int64_t j = 0; j < fx_numel(nd, sh); j++) ck_assert_msg(r[j] == 0.0, "%s: no gradient computed", what);
                free(r);
                continue;
            }
            all_ok &= compare_ds(what, p->grad, g, ds, rtol, 1e-3 * rtol * gscale);
        }
        /* parameters without a reference gradient (later blocks, final norm,
         * mask token) must not have received any */
        for (int i = 0; i < m->n_params; i++) {
            bool listed = false;
            for (int k = 0; k < np && !listed; k++) listed = strcmp(pn[k], m->param_names[i]) == 0;
            if (!listed && m->params[i]->grad)
                ck_assert_msg(mvt_max_abs(m->params[i]->grad) == 0.0, "%s: %s got a gradient the reference lacks", rel, m->param_names[i]);
        }
        fx_free_list(pn, np);
        free(hs);
        mva_tape_clear();
        mva_leaf_free(px);
        H5Gclose(g);
    }
    mva_set_grad_enabled(prev);
    fx_free_list(cases, nc);
    fx_close(f);
    mvn_vit_free(m);
    ck_assert_msg(all_ok, "%s: gradient mismatch (%s), see above", rel, tag);
}

START_TEST(test_backward_f64) {
    char **dirs;
    int n = list_model_dirs(&dirs);
    if (!n) { fprintf(stderr, "\n*** SKIP: no dinov2_* fixtures in %s ***\n\n", fx_dir()); return; }
    for (int i = 0; i < n; i++) check_backward(dirs[i], MVT_F64);
    free_list(dirs, n);
}
END_TEST

START_TEST(test_backward_f32) {
    char **dirs;
    int n = list_model_dirs(&dirs);
    if (!n) { fprintf(stderr, "\n*** SKIP: no dinov2_* fixtures in %s ***\n\n", fx_dir()); return; }
    for (int i = 0; i < n; i++) check_backward(dirs[i], MVT_F32);
    free_list(dirs, n);
}
END_TEST

/* ---- other weight sources give the same model ------------------------------------------ */

/* hidden_states[L] of the first case of dir's reference.h5 through model m. */
static mvt_tensor *first_case_output(mvn_vit *m, const char *dir) {
    char rel[512];
    snprintf(rel, sizeof rel, "%s/reference.h5", dir);
    hid_t f = fx_open(rel);
    ck_assert(f >= 0);
    char **cases;
    int nc = fx_list(f, "/", &cases);
    hid_t g = H5Gopen2(f, cases[0], H5P_DEFAULT);
    mvt_tensor *px = read_tensor(g, "pixel_values", m->dtype);
    H5Gclose(g);
    fx_free_list(cases, nc);
    fx_close(f);
    mvt_tensor *out = mvn_vit_features(m, px, m->cfg.num_hidden_layers, true);
    ck_assert_msg(out != NULL, "%s", mv_error_last());
    mvt_release(px);
    return out;
}

/* Writes m's parameters under torch-hub names (mvn_state_hf_to_hub; the
 * names themselves are checked in check_safetensors). */
static void write_hub_safetensors(const mvn_vit *m, const char *path) {
    mvn_state *h = mvn_state_new();
    for (int i = 0; i < m->n_params; i++) mvn_state_put(h, m->param_names[i], mvt_retain(m->params[i]->value));
    ck_assert_msg(mvn_state_hf_to_hub(h, "model") == 0, "%s", mv_error_last());
    ck_assert_msg(mvn_st_write(path, h->n, (const char *const *)h->names, (const mvt_tensor *const *)h->tensors, MVN_ST_F32) == 0,
                  "%s", mv_error_last());
    mvn_state_free(h);
}

START_TEST(test_hub_names_and_h5_same_model) {
    char **dirs;
    int n = list_model_dirs(&dirs);
    if (!n) { fprintf(stderr, "\n*** SKIP: no dinov2_* fixtures in %s ***\n\n", fx_dir()); return; }
    char tmp[256];
    snprintf(tmp, sizeof tmp, "/tmp/check_vit.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmp));
    for (int i = 0; i < n; i++) {
        mvn_vit *m = load_fixture_model(dirs[i], MVT_F64);
        mvt_tensor *ref = first_case_output(m, dirs[i]);
        char hub[512], h5[512], cfg[4096], rel[512];
        snprintf(hub, sizeof hub, "%s/hub.safetensors", tmp);
        snprintf(h5, sizeof h5, "%s/w.h5", tmp);
        snprintf(rel, sizeof rel, "%s/config.json", dirs[i]);
        snprintf(cfg, sizeof cfg, "%s", fx_path(rel));
        write_hub_safetensors(m, hub);
        mvn_vit *mh = mvn_vit_load(hub, cfg, MVT_F64);
        ck_assert_msg(mh != NULL, "%s", mv_error_last());
        mvt_tensor *out = first_case_output(mh, dirs[i]);
        ck_assert_msg(mvt_max_abs_diff(out, ref, NULL) == 0.0, "%s: hub-named weights give a different model", dirs[i]);
        mvt_release(out);
        ck_assert_msg(mvn_vit_save(m, h5) == 0, "%s", mv_error_last());
        mvn_vit *m5 = mvn_vit_load(h5, NULL, MVT_F64);
        ck_assert_msg(m5 != NULL, "%s", mv_error_last());
        out = first_case_output(m5, dirs[i]);
        ck_assert_msg(mvt_max_abs_diff(out, ref, NULL) == 0.0, "%s: HDF5 weights give a different model", dirs[i]);
        mvt_release(out);
        mvt_release(ref);
        mvn_vit_free(m5);
        mvn_vit_free(mh);
        mvn_vit_free(m);
        unlink(hub);
        unlink(h5);
    }
    rmdir(tmp);
    free_list(dirs, n);
}
END_TEST

/* ---- fixture-free checks on a tiny random model ---------------------------------------- */

static mvn_vit *tiny_model(bool swiglu, int regs, uint64_t seed) {
    mvn_vit_config c;
    mvn_config_defaults(&c);
    c.hidden_size = 8; c.num_attention_heads = 2; c.num_hidden_layers = 2; c.patch_size = 2;
    c.image_size = 4; c.use_swiglu_ffn = swiglu; c.num_register_tokens = regs; c.layerscale_value = 0.7;
    mvn_vit *m = mvn_vit_new_random(&c, MVT_F64, seed);
    ck_assert_msg(m != NULL, "%s", mv_error_last());
    /* non-trivial norms, biases and tokens so that every path matters */
    mvt_rng r;
    mvt_rng_seed(&r, seed + 100);
    for (int i = 0; i < m->n_params; i++) {
        mvt_tensor *v = m->params[i]->value;
        if (v->ndim == 1) mvt_fill_normal(v, &r, strstr(m->param_names[i], "weight") ? 1.0 : 0.0, 0.3);
        if (strstr(m->param_names[i], "_token") || strstr(m->param_names[i], "position")) mvt_fill_normal(v, &r, 0.0, 0.5);
    }
    return m;
}

static double loss_of(mvn_vit *m, mva_var *px, const mvt_tensor *R, int nb) {
    mva_var **hs = calloc((size_t)nb + 1, sizeof *hs);
    mva_var *last;
    ck_assert(mvn_vit_forward(m, px, NULL, nb, hs, &last) == 0);
    double l = mvt_item(mva_sum_all(mva_mul(last, mva_const(mvt_retain((mvt_tensor *)R))))->value);
    free(hs);
    return l;
}

/* Central differences on a few elements of every parameter and of the pixels. */
static void finite_difference_check(bool swiglu, int regs, int H, int W, double eps, double tol) {
    mvn_vit *m = tiny_model(swiglu, regs, 5 + (uint64_t)regs);
    mvn_vit_set_requires_grad(m, true);
    int64_t ps[4] = {2, 3, H, W};
    mvt_rng r;
    mvt_rng_seed(&r, 42);
    mvt_tensor *pv = mvt_empty(MVT_F64, 4, ps);
    mvt_fill_normal(pv, &r, 0.0, 1.0);
    mva_var *px = mva_leaf(pv, true, "px");
    int nb = 2;
    int64_t N = 1 + regs + (H / 2) * (W / 2);
    int64_t rs[3] = {2, N, 8};
    mvt_tensor *R = mvt_empty(MVT_F64, 3, rs);
    mvt_fill_normal(R, &r, 0.0, 1.0);
    bool prev = mva_set_grad_enabled(true);
    mva_var **hs = calloc((size_t)nb + 1, sizeof *hs);
    mva_var *last;   /* through the final LayerNorm, so every parameter matters */
    ck_assert(mvn_vit_forward(m, px, NULL, nb, hs, &last) == 0);
    ck_assert_int_eq(hs[nb]->value->shape[1], N);
    mva_backward(mva_sum_all(mva_mul(last, mva_const(mvt_retain(R)))), NULL);
    free(hs);
    mva_tape_clear();
    mva_set_grad_enabled(false);
    bool interp = H != 4 || W != 4;
    double loss0 = loss_of(m, px, R, nb);
    mva_tape_clear();
    int n_in = m->n_params + 1;
    for (int i = 0; i < n_in; i++) {
        mva_var *v = i < m->n_params ? m->params[i] : px;
        if (i < m->n_params && strstr(m->param_names[i], "mask_token")) continue;   /* unused without bool_masked_pos */
        ck_assert_msg(v->grad != NULL, "%s: no gradient", v->name);
        double gmax = mvt_max_abs(v->grad);
        /* round-off of the two losses divided by the step (f64, or the float32
         * position-embedding interpolation when the grid is not the native one) */
        double noise = fabs(loss0) * (interp ? 1e-6 : 1e-14) / eps;
        int64_t n = mvt_numel(v->value);
        double *x = mvt_f64(v->value);
        const double *g = mvt_f64(v->grad);
        for (int k = 0; k < 3; k++) {
            int64_t j = (int64_t)(mvt_rng_uniform(&r) * (double)n);
            double orig = x[j];
            x[j] = orig + eps;
            double lp = loss_of(m, px, R, nb);
            mva_tape_clear();
            x[j] = orig - eps;
            double lm = loss_of(m, px, R, nb);
            mva_tape_clear();
            x[j] = orig;
            double num = (lp - lm) / (2 * eps);
            ck_assert_msg(fabs(num - g[j]) <= tol * gmax + noise, "%s[%lld]: analytic %.10g numeric %.10g (max|grad| %.3g)",
                          v->name, (long long)j, g[j], num, gmax);
        }
    }
    mva_set_grad_enabled(prev);
    mva_leaf_free(px);
    mvt_release(R);
    mvn_vit_free(m);
}

START_TEST(test_finite_differences) {
    finite_difference_check(false, 0, 4, 4, 1e-6, 1e-6);   /* native grid: pure float64 */
    finite_difference_check(true, 2, 4, 4, 1e-6, 1e-6);    /* SwiGLU + registers */
    /* interpolated grid: the float32 interpolation adds noise ~1e-7, so a wide step */
    finite_difference_check(true, 1, 6, 8, 1e-3, 2e-3);
}
END_TEST

START_TEST(test_registers_mask_and_batch) {
    mvn_vit *m = tiny_model(false, 3, 9);
    bool prev = mva_set_grad_enabled(false);
    int64_t ps[4] = {2, 3, 6, 4};   /* non-square: h = 3, w = 2 */
    mvt_rng r;
    mvt_rng_seed(&r, 1);
    mvt_tensor *pv = mvt_empty(MVT_F64, 4, ps);
    mvt_fill_normal(pv, &r, 0.0, 1.0);
    int64_t ms[2] = {2, 6};
    mvt_tensor *mask = mvt_zeros(MVT_F64, 2, ms);
    int64_t i0[2] = {0, 4}, i1[2] = {1, 0};
    mvt_set(mask, i0, 1.0);
    mvt_set(mask, i1, 1.0);
    mva_var *hs[3];
    ck_assert(mvn_vit_forward(m, mva_const(mvt_retain(pv)), mask, 2, hs, NULL) == 0);
    ck_assert_int_eq(hs[0]->value->shape[1], 1 + 3 + 6);
    /* embeddings: [CLS + pos0, registers, patches + pos]; a masked patch is mask_token + pos */
    mva_var *pos = mvn_vit_pos_embed(m, 3, 2);
    for (int64_t d = 0; d < 8; d++) {
        int64_t e[3] = {0, 1 + 3 + 4, d}, pp[3] = {0, 1 + 4, d}, mt[2] = {0, d};
        double want = mvt_get(m->mask_token->value, mt) + mvt_get(pos->value, pp);
        ck_assert(fabs(mvt_get(hs[0]->value, e) - want) < 1e-12);
        int64_t e2[3] = {1, 1 + 3 + 0, d}, pp2[3] = {0, 1, d};
        ck_assert(fabs(mvt_get(hs[0]->value, e2) - (mvt_get(m->mask_token->value, mt) + mvt_get(pos->value, pp2))) < 1e-12);
        int64_t reg[3] = {1, 1 + 2, d}, rt[3] = {0, 2, d};
        ck_assert(mvt_get(hs[0]->value, reg) == mvt_get(m->register_tokens->value, rt));   /* registers get no pos */
        int64_t cls[3] = {1, 0, d}, ct[3] = {0, 0, d}, p0[3] = {0, 0, d};
        ck_assert(fabs(mvt_get(hs[0]->value, cls) - (mvt_get(m->cls_token->value, ct) + mvt_get(m->pos_embed->value, p0))) < 1e-12);
    }
    mvt_tensor *batched = mvt_retain(hs[2]->value);
    mva_tape_clear();
    /* each image alone gives the same rows (batch independence) */
    for (int b = 0; b < 2; b++) {
        mvt_tensor *one = mvt_narrow(pv, 0, b, 1), *onec = mvt_contiguous(one);
        mvt_tensor *mk = mvt_narrow(mask, 0, b, 1), *mkc = mvt_contiguous(mk);
        ck_assert(mvn_vit_forward(m, mva_const(mvt_retain(onec)), mkc, 2, hs, NULL) == 0);
        mvt_tensor *row = mvt_narrow(batched, 0, b, 1);
        ck_assert(mvt_max_abs_diff(row, hs[2]->value, NULL) <= 1e-12 * (1 + mvt_max_abs(row)));
        mvt_release(row);
        mvt_release(one); mvt_release(onec); mvt_release(mk); mvt_release(mkc);
        mva_tape_clear();
    }
    /* features = patch rows of hidden_states[k], the tape left as found */
    size_t before = mva_tape_size();
    mvt_tensor *feat = mvn_vit_features(m, pv, 2, false);
    ck_assert_ptr_nonnull(feat);
    ck_assert_int_eq(mva_tape_size(), before);
    ck_assert_int_eq(feat->ndim, 3); ck_assert_int_eq(feat->shape[1], 6); ck_assert_int_eq(feat->shape[2], 8);
    mvt_tensor *nomask;
    ck_assert(mvn_vit_forward(m, mva_const(mvt_retain(pv)), NULL, 2, hs, NULL) == 0);
    nomask = mvt_narrow(hs[2]->value, 1, 4, 6);
    ck_assert(mvt_max_abs_diff(nomask, feat, NULL) == 0.0);
    mvt_release(nomask);
    mvt_release(feat);
    mva_tape_clear();
    /* f32 pixels into an f64 model through the features helper */
    mvt_tensor *p32 = mvt_to_dtype(pv, MVT_F32);
    feat = mvn_vit_features(m, p32, 1, true);
    ck_assert_ptr_nonnull(feat);
    ck_assert_int_eq(feat->dtype, MVT_F64);
    mvt_release(feat);
    mvt_release(p32);
    /* errors name what is wrong and never crash */
    int64_t bad[4] = {1, 3, 5, 4};
    mvt_tensor *pb = mvt_zeros(MVT_F64, 4, bad);
    ck_assert_int_eq(mvn_vit_forward(m, mva_const(pb), NULL, 1, NULL, NULL), -1);
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "multiples of the patch"));
    int64_t bad2[4] = {1, 1, 4, 4};
    ck_assert_int_eq(mvn_vit_forward(m, mva_const(mvt_zeros(MVT_F64, 4, bad2)), NULL, 1, NULL, NULL), -1);
    ck_assert_int_eq(mvn_vit_forward(m, mva_const(mvt_retain(pv)), NULL, 3, NULL, NULL), -1);
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "blocks"));
    ck_assert_ptr_null(mvn_vit_features(m, pv, 7, false));
    mvt_tensor *pf = mvt_to_dtype(pv, MVT_F32);
    ck_assert_int_eq(mvn_vit_forward(m, mva_const(pf), NULL, 1, NULL, NULL), -1);
    mva_tape_clear();
    mvt_release(mask);
    mvt_release(batched);
    mvt_release(pv);
    mva_set_grad_enabled(prev);
    mvn_vit_free(m);
}
END_TEST

START_TEST(test_inference_frees_intermediates) {
    /* no-grad forward keeps only the block outputs on the tape */
    mvn_vit *m = tiny_model(true, 0, 3);
    bool prev = mva_set_grad_enabled(false);
    int64_t ps[4] = {1, 3, 4, 4};
    mvt_tensor *pv = mvt_zeros(MVT_F64, 4, ps);
    size_t before = mva_tape_size();
    mva_var *hs[3];
    ck_assert(mvn_vit_forward(m, mva_const(pv), NULL, 2, hs, NULL) == 0);
    ck_assert_int_le(mva_tape_size() - before, 1 + 3);
    mva_tape_clear();
    mva_set_grad_enabled(prev);
    mvn_vit_free(m);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("vit");
    TCase *tc = tcase_create("fixtures");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_forward_f64);
    tcase_add_test(tc, test_forward_f32);
    tcase_add_test(tc, test_forward_hub_mode);
    tcase_add_test(tc, test_backward_f64);
    tcase_add_test(tc, test_backward_f32);
    tcase_add_test(tc, test_hub_names_and_h5_same_model);
    suite_add_tcase(s, tc);
    TCase *tl = tcase_create("local");
    tcase_set_timeout(tl, 120);
    tcase_add_test(tl, test_finite_differences);
    tcase_add_test(tl, test_registers_mask_and_batch);
    tcase_add_test(tl, test_inference_frees_intermediates);
    suite_add_tcase(s, tl);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
