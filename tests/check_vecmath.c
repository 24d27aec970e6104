/* Accuracy of the f32 vector kernels (tensor/vecmath.h) against f64
 * references, for every ISA level this CPU runs: each result within 2e-6
 * relative or 1e-7 absolute of the f64 value, NaN exactly where the
 * reference is NaN, infinity where the reference (rounded to f32) is. The sweep covers exp near +-88 (and
 * past, into overflow and denormal results), erf tails, denormal inputs, -inf
 * masked logits, fully masked rows, NaN and Inf inputs, row lengths around
 * the vector widths. The public f32 kernels (softmax with scale and mask,
 * LayerNorm, GELU, exp) are checked the same way and for equal bits at 1 and
 * 2 threads. */
#include "config.h"
#include "tensor/tensor.h"
#include "tensor/vecmath.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REL 2e-6
#define ABS 1e-7

static const mvv_table *g_lv[3];
static int g_nlv;

/* worst violation so far, for the failure message */
typedef struct {
    const char *what;
    long bad;
    double x, got, want;
} acc;

static void check_one(acc *a, double x, float got, double want) {
    bool ok;
    if (isnan(want)) ok = isnan(got);
    else if (isinf((float)want)) ok = got == (float)want;   /* past FLT_MAX: f32's answer is inf */
    else ok = isfinite(got) && (fabs(got - want) <= ABS || fabs(got - want) <= REL * fabs(want));
    if (!ok && a->bad++ == 0) { a->x = x; a->got = got; a->want = want; }
}

static void report(const acc *a, const char *isa) {
    ck_assert_msg(a->bad == 0, "%s [%s]: %ld elements off, first at x=%.9g: got %.9g want %.9g", a->what, isa,
                  a->bad, a->x, (double)a->got, a->want);
}

/* The sweep of scalar inputs: a dense grid, the edges, denormals, specials. */
static int64_t sweep(float *x, int64_t cap) {
    int64_t n = 0;
    for (int i = 0; i <= 40000 && n < cap; i++) x[n++] = -110.0f + 220.0f * (float)i / 40000.0f;
    const float edge[] = {88.0f, 88.3f, 88.37f, 88.72f, 88.73f, 89.0f, -87.0f, -87.33f, -87.34f, -88.0f, -88.72f,
                          -100.0f, -103.9f, -104.0f, -150.0f, 1e-38f, 1.17549435e-38f, 1e-40f, -1e-40f, 1e-45f,
                          -1e-45f, 0.0f, -0.0f, 3.0e-8f, -3.0e-8f, 1e-20f, 0.5f, -0.5f, 1.0f, -1.0f, 2.5f, -2.5f,
                          3.9f, -3.9f, 4.0f, -4.0f, 5.5f, -5.5f, 9.0f, -9.0f, 12.5f, -12.5f, 13.3f, -13.3f,
                          14.0f, -14.0f, 1e10f, -1e10f, 3.4e38f, -3.4e38f, INFINITY, -INFINITY, NAN};
    for (size_t i = 0; i < sizeof edge / sizeof *edge && n < cap; i++) x[n++] = edge[i];
    for (int e = -149; e <= 7 && n < cap; e++) { x[n++] = ldexpf(1.3f, e); x[n++] = -ldexpf(1.3f, e); }
    return n;
}

static double gelu_ref(double x) { return 0.5 * x * (1.0 + erf(x * 0.70710678118654752440)); }
static double dgelu_ref(double x) {
    return 0.5 * (1.0 + erf(x * 0.70710678118654752440)) + x * 0.39894228040143267794 * exp(-0.5 * x * x);
}

START_TEST(test_unary) {
    enum { CAP = 41000 };
    float *x = malloc(CAP * sizeof *x), *y = malloc(CAP * sizeof *y), *g = malloc(CAP * sizeof *g);
    float *yg = malloc(CAP * sizeof *yg);
    int64_t n = sweep(x, CAP);
    for (int64_t i = 0; i < n; i++) g[i] = (float)(1.0 - 0.37 * (double)(i % 7));   /* upstream gradient */
    for (int l = 0; l < g_nlv; l++) {
        const mvv_table *t = g_lv[l];
        /* odd offsets and lengths: tails of every size go through the padded path */
        for (int64_t off = 0; off < 3; off++) {
            int64_t m = n - off;
            acc ae = {.what = "exp"}, at = {.what = "tanh"}, ag = {.what = "gelu"}, ab = {.what = "gelu_bwd"},
                ay = {.what = "gelu_bwd_y"};
            t->vexp(y, x + off, m);
            for (int64_t i = 0; i < m; i++) check_one(&ae, x[off + i], y[i], exp((double)x[off + i]));
            t->vtanh(y, x + off, m);
            for (int64_t i = 0; i < m; i++) check_one(&at, x[off + i], y[i], tanh((double)x[off + i]));
            t->gelu(y, x + off, m);
            for (int64_t i = 0; i < m; i++) check_one(&ag, x[off + i], y[i], gelu_ref(x[off + i]));
            t->gelu_bwd(y, x + off, g + off, m);
            for (int64_t i = 0; i < m; i++) check_one(&ab, x[off + i], y[i], g[off + i] * dgelu_ref(x[off + i]));
            /* from the forward's own output, as the autograd op calls it */
            t->gelu(yg, x + off, m);
            t->gelu_bwd_y(y, x + off, yg, g + off, m);
            for (int64_t i = 0; i < m; i++) check_one(&ay, x[off + i], y[i], g[off + i] * dgelu_ref(x[off + i]));
            report(&ae, t->name);
            report(&at, t->name);
            report(&ag, t->name);
            report(&ab, t->name);
            report(&ay, t->name);
            /* the attention's row passes: exp(x - c), p (d - s) (both against f64), d += s exactly */
            acc as = {.what = "sub_exp"}, am = {.what = "mul_sub"};
            t->sub_exp(y, x + off, 1.5f, m);
            for (int64_t i = 0; i < m; i++) check_one(&as, x[off + i], y[i], exp((double)(x[off + i] - 1.5f)));
            for (int64_t i = 0; i < m; i++) yg[i] = g[off + i];
            t->mul_sub(yg, x + off, 0.25f, m);
            for (int64_t i = 0; i < m; i++)
                check_one(&am, x[off + i], yg[i], (double)x[off + i] * (double)(g[off + i] - 0.25f));
            for (int64_t i = 0; i < m; i++) y[i] = g[off + i];
            t->add_to(y, x + off, m);
            for (int64_t i = 0; i < m; i++)
                ck_assert_msg(isnan(x[off + i]) ? isnan(y[i]) : y[i] == g[off + i] + x[off + i],
                              "add_to [%s]: element %lld", t->name, (long long)i);
            report(&as, t->name);
            report(&am, t->name);
        }
    }
    free(x);
    free(y);
    free(yg);
    free(g);
}
END_TEST

/* f64 softmax of logits z (-inf = masked): probabilities, zeros if nothing finite to attend to */
static void softmax_ref(const float *z, double *p, int64_t n) {
    double mx = -INFINITY;
    for (int64_t j = 0; j < n; j++) if (z[j] > mx) mx = z[j];
    double s = 0;
    for (int64_t j = 0; j < n; j++) s += mx > -INFINITY ? exp((double)z[j] - mx) : 0.0;
    for (int64_t j = 0; j < n; j++) p[j] = mx > -INFINITY ? exp((double)z[j] - mx) / s : 0.0;
}

/* row kinds of the softmax sweep */
static void fill_row(float *z, int64_t n, int kind, mvt_rng *r) {
    for (int64_t j = 0; j < n; j++) z[j] = (float)(mvt_rng_uniform(r) * 20.0 - 10.0);
    switch (kind) {
    case 0: break;                                                              /* plain */
    case 1: for (int64_t j = 0; j < n; j += 3) z[j] = -INFINITY; break;          /* masked */
    case 2: for (int64_t j = 0; j < n; j++) z[j] = -INFINITY; break;             /* fully masked */
    case 3: for (int64_t j = 0; j < n; j++) z[j] += j % 2 ? 88.0f : -88.0f; break;   /* spread near +-88 */
    case 4: for (int64_t j = 0; j < n; j++) z[j] = -100.0f - (float)j; break;    /* far below 0 */
    case 5: z[n / 2] = NAN; break;
    case 6: z[n - 1] = INFINITY; break;
    case 7: for (int64_t j = 0; j < n; j++) z[j] = j == n - 1 ? 1.0f : -INFINITY; break;   /* one kept, last */
    case 8: for (int64_t j = 0; j < n; j++) z[j] = 1e-41f * (float)j; break;     /* denormal logits */
    }
}

START_TEST(test_softmax_rows) {
    const int64_t lens[] = {1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 64, 257, 1000};
    float z[1000], y[1000], g[1000], dx[1000];
    double p[1000];
    for (int l = 0; l < g_nlv; l++) {
        const mvv_table *t = g_lv[l];
        acc af = {.what = "softmax_row"}, ab = {.what = "softmax_bwd_row"}, asc = {.what = "softmax_row_scaled"};
        mvt_rng r;
        mvt_rng_seed(&r, 5);
        for (size_t li = 0; li < sizeof lens / sizeof *lens; li++) {
            int64_t n = lens[li];
            for (int kind = 0; kind <= 8; kind++) {
                fill_row(z, n, kind, &r);
                softmax_ref(z, p, n);
                memcpy(y, z, (size_t)n * sizeof *y);
                t->softmax_row(y, n);
                for (int64_t j = 0; j < n; j++) check_one(&af, z[j], y[j], p[j]);
                /* the scaled variant reads z itself: against the f64 softmax of the f32 products */
                {
                    float zs[1000];
                    double ps[1000];
                    for (int64_t j = 0; j < n; j++) zs[j] = z[j] * 0.37f;
                    softmax_ref(zs, ps, n);
                    t->softmax_row_scaled(dx, z, 0.37f, n);
                    for (int64_t j = 0; j < n; j++) check_one(&asc, z[j], dx[j], ps[j]);
                    if (kind == 2) for (int64_t j = 0; j < n; j++) ck_assert(dx[j] == 0.0f);
                }
                /* the log-sum-exp variant: the same bits, and lse = max + log sum exp(z - max) */
                memcpy(dx, z, (size_t)n * sizeof *dx);
                double lse = t->softmax_row_lse(dx, n);
                ck_assert_msg(memcmp(dx, y, (size_t)n * sizeof *y) == 0, "softmax_row_lse [%s]: other bits", t->name);
                double mx = -INFINITY, se = 0;
                for (int64_t j = 0; j < n; j++) if (z[j] > mx) mx = z[j];
                for (int64_t j = 0; j < n; j++) se += mx > -INFINITY ? exp((double)z[j] - mx) : 0.0;
                double want = mx > -INFINITY ? mx + log(se) : -INFINITY;
                if (isnan(want)) ck_assert_msg(isnan(lse), "softmax_row_lse [%s]: %g, want NaN", t->name, lse);
                else if (isinf(want)) ck_assert_msg(lse == want, "softmax_row_lse [%s]: %g, want %g", t->name, lse, want);
                else ck_assert_msg(fabs(lse - want) <= 1e-6 * (1 + fabs(want)), "softmax_row_lse [%s] n %lld kind %d: "
                                   "%.9g, want %.9g", t->name, (long long)n, kind, lse, want);
                if (kind == 2) for (int64_t j = 0; j < n; j++) ck_assert(y[j] == 0.0f);   /* never NaN */
                /* backward from the f32 probabilities: dx = y (g - sum g y) */
                double s = 0;
                for (int64_t j = 0; j < n; j++) { g[j] = (float)(mvt_rng_uniform(&r) * 2 - 1); s += (double)g[j] * y[j]; }
                t->softmax_bwd_row(y, g, dx, n);
                for (int64_t j = 0; j < n; j++) check_one(&ab, g[j], dx[j], y[j] * (g[j] - (double)(float)s));
            }
        }
        report(&af, t->name);
        report(&ab, t->name);
        report(&asc, t->name);
    }
}
END_TEST

/* LayerNorm of rows with awkward statistics, against two-pass f64 (n = 1100:
 * past the backward's row buffer, LN_ROW_BUF) */
START_TEST(test_layernorm_rows) {
    enum { N = 1100 };
    const int64_t lens[] = {1, 5, 16, 17, 100, 768, 800, N};
    float x[N], w[N], b[N], y[N], dy[N], dx[N], dx2[N];
    double aw[N], ab[N], aw2[N], ab2[N], wd[N], bd[N];
    for (int l = 0; l < g_nlv; l++) {
        const mvv_table *t = g_lv[l];
        acc af = {.what = "ln_row"}, ad = {.what = "ln_bwd_row"}, aw_ = {.what = "ln_bwd_row dw"},
            ab_ = {.what = "ln_bwd_row db"};
        mvt_rng r;
        mvt_rng_seed(&r, 9);
        for (size_t li = 0; li < sizeof lens / sizeof *lens; li++) {
            int64_t n = lens[li];
            for (int kind = 0; kind < 7; kind++) {
                for (int64_t j = 0; j < n; j++) {
                    double u = mvt_rng_uniform(&r) * 2 - 1;
                    x[j] = (float)(kind == 1 ? 1000.0 + u : kind == 2 ? 1e-3 * u : kind == 3 ? 1e-39 * u
                                 : kind == 6 ? 1e4 + 1e-2 * u : 3 * u);   /* 6: mean/std ~ 1e6 */
                    w[j] = (float)(mvt_rng_uniform(&r) * 2 - 1);
                    b[j] = (float)(mvt_rng_uniform(&r) - 0.5);
                    dy[j] = (float)(mvt_rng_uniform(&r) * 2 - 1);
                }
                if (kind == 1) x[0] = 1e4f;    /* the shift point far from the mean */
                if (kind == 4) x[n / 2] = NAN;
                if (kind == 5) x[n - 1] = INFINITY;
                double eps = 1e-6, s = 0, v = 0;
                for (int64_t j = 0; j < n; j++) s += x[j];
                double mu = s / (double)n;
                for (int64_t j = 0; j < n; j++) v += ((double)x[j] - mu) * ((double)x[j] - mu);
                double rs = 1.0 / sqrt(v / (double)n + eps), gmu, grs;
                for (int64_t j = 0; j < n; j++) { wd[j] = w[j]; bd[j] = b[j]; }
                t->ln_row(x, wd, bd, y, n, eps, &gmu, &grs);
                for (int64_t j = 0; j < n; j++) check_one(&af, x[j], y[j], ((double)x[j] - mu) * rs * w[j] + b[j]);
                if (isfinite(mu)) {
                    ck_assert_msg(fabs(gmu - mu) <= 1e-12 * fabs(mu) + 1e-14 && fabs(grs - rs) <= 1e-10 * rs,
                                  "ln_row [%s] stats: mean %.17g vs %.17g, rstd %.17g vs %.17g", t->name, gmu, mu,
                                  grs, rs);
                }
                /* backward with the exact statistics: both sides see the same mu, rs */
                double m1 = 0, m2 = 0;
                for (int64_t j = 0; j < n; j++) {
                    double gj = (double)dy[j] * w[j];
                    m1 += gj;
                    m2 += gj * ((double)x[j] - mu) * rs;
                }
                m1 /= (double)n;
                m2 /= (double)n;
                memset(dx, 0, sizeof dx);
                memset(aw, 0, sizeof aw);
                memset(ab, 0, sizeof ab);
                t->ln_bwd_row(dy, x, wd, mu, rs, dx, aw, ab, n);
                t->ln_bwd_row(dy, x, wd, mu, rs, NULL, aw, ab, n);   /* accumulates; dx not wanted */
                for (int64_t j = 0; j < n; j++) {
                    double xh = ((double)x[j] - mu) * rs;
                    check_one(&ad, x[j], dx[j], rs * ((double)dy[j] * w[j] - m1 - xh * m2));
                    check_one(&aw_, x[j], (float)aw[j], 2 * dy[j] * xh);
                    check_one(&ab_, x[j], (float)ab[j], 2.0 * dy[j]);
                }
                /* each output alone gives the same bits as all three together */
                memset(dx2, 0, sizeof dx2);
                memset(aw2, 0, sizeof aw2);
                memset(ab2, 0, sizeof ab2);
                t->ln_bwd_row(dy, x, wd, mu, rs, dx2, NULL, NULL, n);
                t->ln_bwd_row(dy, x, wd, mu, rs, NULL, aw2, NULL, n);
                t->ln_bwd_row(dy, x, wd, mu, rs, NULL, aw2, NULL, n);
                t->ln_bwd_row(dy, x, wd, mu, rs, NULL, NULL, ab2, n);
                t->ln_bwd_row(dy, x, wd, mu, rs, NULL, NULL, ab2, n);
                ck_assert_msg(memcmp(dx, dx2, (size_t)n * sizeof *dx) == 0 &&
                                  memcmp(aw, aw2, (size_t)n * sizeof *aw) == 0 &&
                                  memcmp(ab, ab2, (size_t)n * sizeof *ab) == 0,
                              "ln_bwd_row [%s] n %lld: an output alone differs from all three together", t->name,
                              (long long)n);
                /* without a weight: g = dy */
                double n1 = 0, n2 = 0;
                for (int64_t j = 0; j < n; j++) {
                    n1 += dy[j];
                    n2 += dy[j] * ((double)x[j] - mu) * rs;
                }
                n1 /= (double)n;
                n2 /= (double)n;
                memset(dx2, 0, sizeof dx2);
                t->ln_bwd_row(dy, x, NULL, mu, rs, dx2, NULL, NULL, n);
                for (int64_t j = 0; j < n; j++)
                    check_one(&ad, x[j], dx2[j], rs * ((double)dy[j] - n1 - ((double)x[j] - mu) * rs * n2));
            }
        }
        report(&af, t->name);
        report(&ad, t->name);
        report(&aw_, t->name);
        report(&ab_, t->name);
    }
}
END_TEST

static void check_tensor(const char *what, const mvt_tensor *got, const mvt_tensor *want) {
    ck_assert(mvt_same_shape(got, want));
    acc a = {.what = what};
    int64_t n = mvt_numel(got);
    mvt_tensor *g = mvt_contiguous(got), *w = mvt_contiguous(want);
    for (int64_t i = 0; i < n; i++) check_one(&a, (double)i, (float)mvt_load(mvt_data(g), g->dtype, i),
                                              mvt_load(mvt_data(w), w->dtype, i));
    mvt_release(g);
    mvt_release(w);
    report(&a, mvv_get()->name);
}

static bool same_bits(const mvt_tensor *a, const mvt_tensor *b) {
    return mvt_numel(a) == mvt_numel(b) && memcmp(mvt_data(a), mvt_data(b), (size_t)mvt_numel(a) * 4) == 0;
}

/* The public f32 kernels: scaled + masked softmax (masks of each dtype, a
 * fully masked row, broadcast), LayerNorm, GELU, exp; against the f64
 * references, and the same bits at 1 and 2 threads. */
START_TEST(test_public) {
    mvt_rng r;
    mvt_rng_seed(&r, 3);
    int64_t s[3] = {6, 37, 257};
    mvt_tensor *x = mvt_empty(MVT_F32, 3, s);
    mvt_fill_uniform(x, &r, -30, 30);
    mvt_tensor *x64 = mvt_to_dtype(x, MVT_F64);
    const mvt_dtype mdts[3] = {MVT_F32, MVT_F64, MVT_I64};
    for (int k = 0; k < 4; k++) {   /* k = 3: no mask (the ViT's scaled rows, read straight from x) */
        mvt_tensor *mask = k == 3 ? NULL : mvt_empty(mdts[k], 2, (int64_t[]){37, 257});   /* broadcast over the batch */
        for (int64_t i = 0; mask && i < 37; i++)
            for (int64_t j = 0; j < 257; j++) mvt_set(mask, (int64_t[]){i, j}, i == 5 ? 0 : (i + j) % 4 != 0);
        mvt_tensor *want = mvt_ref_softmax_scaled(x64, 0.125, mask);
        mvt_set_num_threads(1);
        mvt_tensor *y1 = mvt_softmax_scaled(x, 0.125, mask);
        mvt_set_num_threads(2);
        mvt_tensor *y2 = mvt_softmax_scaled(x, 0.125, mask);
        check_tensor("softmax_scaled", y1, want);
        ck_assert_msg(same_bits(y1, y2), "softmax: 1 and 2 threads differ");
        for (int64_t j = 0; mask && j < 257; j++) ck_assert(mvt_get(y1, (int64_t[]){2, 5, j}) == 0.0);   /* masked row */
        mvt_release(mask); mvt_release(want); mvt_release(y1); mvt_release(y2);
    }
    int64_t ls[2] = {300, 768};
    mvt_tensor *lx = mvt_empty(MVT_F32, 2, ls), *lw = mvt_empty(MVT_F32, 1, ls + 1), *lb = mvt_empty(MVT_F32, 1, ls + 1);
    mvt_fill_uniform(lx, &r, 5, 7);
    mvt_fill_uniform(lw, &r, -1, 1);
    mvt_fill_uniform(lb, &r, -1, 1);
    mvt_tensor *lx64 = mvt_to_dtype(lx, MVT_F64), *lw64 = mvt_to_dtype(lw, MVT_F64), *lb64 = mvt_to_dtype(lb, MVT_F64);
    mvt_tensor *lwant = mvt_ref_layernorm(lx64, lw64, lb64, 1e-6);
    mvt_set_num_threads(1);
    mvt_tensor *l1 = mvt_layernorm(lx, lw, lb, 1e-6, NULL, NULL);
    mvt_set_num_threads(2);
    mvt_tensor *l2 = mvt_layernorm(lx, lw, lb, 1e-6, NULL, NULL);
    check_tensor("layernorm", l1, lwant);
    ck_assert_msg(same_bits(l1, l2), "layernorm: 1 and 2 threads differ");
    /* GELU and exp on a strided view go through the gather path: same bits as contiguous */
    mvt_tensor *gx = mvt_empty(MVT_F32, 2, (int64_t[]){257, 300});
    mvt_fill_uniform(gx, &r, -12, 12);
    mvt_tensor *gt = mvt_transpose(gx, 0, 1), *gc = mvt_contiguous(gt);
    mvt_tensor *ga = mvt_gelu(gt), *gb = mvt_gelu(gc), *gac = mvt_contiguous(ga);
    ck_assert_msg(same_bits(gac, gb), "gelu: strided and contiguous differ");
    mvt_tensor *gc64 = mvt_to_dtype(gc, MVT_F64), *gwant = mvt_gelu(gc64);
    check_tensor("gelu", gb, gwant);
    mvt_tensor *ea = mvt_unary(MVT_EXP, gc), *e64 = mvt_unary(MVT_EXP, gc64);
    check_tensor("exp", ea, e64);
    mvt_tensor *ts[] = {x, x64, lx, lw, lb, lx64, lw64, lb64, lwant, l1, l2, gx, gt, gc, ga, gac, gb, gc64, gwant, ea, e64};
    for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) mvt_release(ts[i]);
}
END_TEST

static Suite *vecmath_suite(void) {
    Suite *s = suite_create("vecmath");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_unary);
    tcase_add_test(tc, test_softmax_rows);
    tcase_add_test(tc, test_layernorm_rows);
    tcase_add_test(tc, test_public);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    g_nlv = mvv_levels(g_lv);
    printf("vecmath: ISA levels:");
    for (int i = 0; i < g_nlv; i++) printf(" %s", g_lv[i]->name);
    printf(" (kernels use %s)\n", mvv_get()->name);
    SRunner *sr = srunner_create(vecmath_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
