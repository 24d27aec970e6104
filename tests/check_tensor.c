/* Tests of the tensor library: every kernel in f32 and f64 against a naive
 * reference on random shapes (broadcasting, transposed and non-contiguous
 * views), views sharing storage, the pool reaching a no-malloc steady state,
 * and bitwise determinism across thread counts. */
#include "config.h"
#include "tensor/tensor.h"
#include "tests/fixtures.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const mvt_dtype DTYPES[2] = {MVT_F32, MVT_F64};

/* tolerance relative to the magnitude of the reference */
static double tol_for(mvt_dtype dt, double scale) { return (dt == MVT_F32 ? 2e-5 : 1e-12) * (scale > 1 ? scale : 1); }

static mvt_tensor *rnd(mvt_dtype dt, int nd, const int64_t *shape, uint64_t seed) {
    mvt_rng r;
    mvt_rng_seed(&r, seed);
    mvt_tensor *t = mvt_empty(dt, nd, shape);
    mvt_fill_uniform(t, &r, -1, 1);
    return t;
}

#define SH(...) ((const int64_t[]){__VA_ARGS__})
#define NDIM(...) ((int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)))
#define RND(dt, seed, ...) rnd(dt, NDIM(__VA_ARGS__), SH(__VA_ARGS__), seed)

static void expect_close(const char *what, const mvt_tensor *got, const mvt_tensor *ref, double tol) {
    char s1[128], s2[128];
    ck_assert_msg(mvt_same_shape(got, ref), "%s: shape %s vs %s", what, mvt_shape_str(got, s1, sizeof s1),
                  mvt_shape_str(ref, s2, sizeof s2));
    int64_t where;
    double d = mvt_max_abs_diff(got, ref, &where);
    ck_assert_msg(d <= tol, "%s (%s): max diff %g at %lld > tol %g", what, mvt_dtype_name(got->dtype), d,
                  (long long)where, tol);
}

/* element flat i of t in row-major order (any strides) */
static double at(const mvt_tensor *t, int64_t i) {
    return mvt_load(mvt_data(t), t->dtype, mvt_offset_of(t->ndim, t->shape, t->stride, i));
}

/* A non-contiguous tensor with the given logical shape (2-D+): the transpose
 * of a contiguous tensor with the last two dims swapped. */
static mvt_tensor *rnd_transposed(mvt_dtype dt, int nd, const int64_t *shape, uint64_t seed) {
    int64_t s[MVT_MAX_DIMS];
    memcpy(s, shape, sizeof(int64_t) * nd);
    s[nd - 1] = shape[nd - 2];
    s[nd - 2] = shape[nd - 1];
    mvt_tensor *base = rnd(dt, nd, s, seed);
    mvt_tensor *t = mvt_transpose(base, -1, -2);
    mvt_release(base);
    return t;
}

/* ---- views --------------------------------------------------------------- */

START_TEST(test_views) {
    for (int k = 0; k < 2; k++) {
        mvt_dtype dt = DTYPES[k];
        mvt_tensor *a = RND(dt, 1, 2, 3, 4);
        mvt_tensor *v = mvt_view(a, 2, SH(6, -1));
        ck_assert_ptr_nonnull(v);
        ck_assert_ptr_eq(v->storage, a->storage);
        ck_assert_int_eq(v->shape[1], 4);
        mvt_set(v, SH(5, 3), 42.0);
        ck_assert(mvt_get(a, SH(1, 2, 3)) == 42.0);

        mvt_tensor *p = mvt_permute(a, (int[]){2, 0, 1});
        ck_assert_ptr_eq(p->storage, a->storage);
        ck_assert_int_eq(p->shape[0], 4);
        ck_assert(mvt_get(p, SH(3, 1, 2)) == 42.0);
        ck_assert(!mvt_is_contiguous(p));
        /* a permuted tensor cannot be flattened as a view; reshape copies */
        ck_assert_ptr_null(mvt_view(p, 1, SH(-1)));
        mvt_tensor *r = mvt_reshape(p, 1, SH(-1));
        ck_assert_ptr_ne(r->storage, a->storage);
        for (int64_t i = 0; i < 24; i++) ck_assert(at(r, i) == at(p, i));

        mvt_tensor *n = mvt_narrow(a, 2, 2, 2);
        ck_assert_ptr_eq(n->storage, a->storage);
        ck_assert(mvt_get(n, SH(1, 2, 1)) == 42.0);
        mvt_tensor *s = mvt_select(a, 1, 2);
        ck_assert_int_eq(s->ndim, 2);
        ck_assert(mvt_get(s, SH(1, 3)) == 42.0);
        mvt_tensor *u = mvt_unsqueeze(s, 1);
        ck_assert_int_eq(u->ndim, 3);
        ck_assert_int_eq(u->shape[1], 1);
        ck_assert(mvt_get(u, SH(1, 0, 3)) == 42.0);
        mvt_tensor *e = mvt_expand(u, 3, SH(2, 5, 4));
        ck_assert_ptr_eq(e->storage, a->storage);
        ck_assert(mvt_get(e, SH(1, 4, 3)) == 42.0);
        ck_assert(e->stride[1] == 0);
        mvt_tensor *t = mvt_transpose(a, 0, 2);
        ck_assert(mvt_get(t, SH(3, 2, 1)) == 42.0);
        /* a view of a narrowed tensor keeps strides */
        mvt_tensor *n2 = mvt_narrow(a, 0, 1, 1);
        mvt_tensor *v2 = mvt_view(n2, 2, SH(3, 4));
        ck_assert_ptr_nonnull(v2);
        ck_assert(mvt_get(v2, SH(2, 3)) == 42.0);
        /* contiguous() retains contiguous tensors, copies others */
        mvt_tensor *c1 = mvt_contiguous(a), *c2 = mvt_contiguous(t);
        ck_assert_ptr_eq(c1, a);
        ck_assert_ptr_ne(c2->storage, a->storage);
        ck_assert(mvt_is_contiguous(c2));
        expect_close("contiguous", c2, t, 0);
        mvt_tensor *d = mvt_to_dtype(t, k ? MVT_F32 : MVT_F64);
        expect_close("to_dtype", d, t, 1e-6);
        mvt_tensor *ts[] = {v, p, r, n, s, u, e, t, n2, v2, c1, c2, d};
        for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) mvt_release(ts[i]);
        mvt_release(a);
    }
    mvt_tensor *f = mvt_full(MVT_I64, 2, SH(2, 2), 7);
    ck_assert(mvt_i64(f)[3] == 7);
    char buf[64];
    ck_assert_str_eq(mvt_shape_str(f, buf, sizeof buf), "[2, 2] i64");
    mvt_release(f);
}
END_TEST

START_TEST(test_copy_broadcast) {
    for (int k = 0; k < 2; k++) {
        mvt_dtype dt = DTYPES[k];
        mvt_tensor *src = RND(dt, 2, 1, 5);
        mvt_tensor *big = mvt_zeros(dt, 3, SH(4, 3, 10));
        mvt_tensor *dst = mvt_narrow(big, 2, 2, 5);   /* non-contiguous destination */
        mvt_copy_(dst, src);
        for (int64_t i = 0; i < 4; i++)
            for (int64_t j = 0; j < 3; j++)
                for (int64_t c = 0; c < 10; c++) {
                    double want = (c >= 2 && c < 7) ? mvt_get(src, SH(0, c - 2)) : 0.0;
                    ck_assert(mvt_get(big, SH(i, j, c)) == want);
                }
        mvt_release(src);
        mvt_release(dst);
        mvt_release(big);
    }
}
END_TEST

/* ---- matmul / gemm --------------------------------------------------------- */

START_TEST(test_matmul) {
    for (int k = 0; k < 2; k++) {
        mvt_dtype dt = DTYPES[k];
        for (int trial = 0; trial < 8; trial++) {
            mvt_rng r;
            mvt_rng_seed(&r, 100 + trial);
            int64_t M = 1 + mvt_rng_next(&r) % 37, K = 1 + mvt_rng_next(&r) % 29, N = 1 + mvt_rng_next(&r) % 33;
            mvt_tensor *a = NULL, *b = NULL;
            switch (trial) {
            case 0: a = RND(dt, 1, M, K); b = RND(dt, 2, K, N); break;
            case 1: a = rnd_transposed(dt, 2, SH(M, K), 3); b = RND(dt, 4, K, N); break;
            case 2: a = RND(dt, 5, M, K); b = rnd_transposed(dt, 2, SH(K, N), 6); break;
            case 3: a = rnd_transposed(dt, 3, SH(3, M, K), 7); b = rnd_transposed(dt, 3, SH(3, K, N), 8); break;
            case 4: a = RND(dt, 9, 2, 3, M, K); b = RND(dt, 10, 3, K, N); break;       /* batch broadcast */
            case 5: a = RND(dt, 11, 4, M, K); b = RND(dt, 12, K, N); break;            /* folded into M */
            case 6: {                                                                 /* strided rows (lda > K) */
                mvt_tensor *base = RND(dt, 13, 2, M, K + 5);
                a = mvt_narrow(base, 2, 2, K);
                mvt_release(base);
                mvt_tensor *bb = RND(dt, 14, 1, K, N);
                b = mvt_expand(bb, 3, SH(2, K, N));                                   /* stride-0 batch */
                mvt_release(bb);
                break;
            }
            default: {                                                                /* permuted batch, vectors */
                mvt_tensor *base = RND(dt, 15, M, 3, K);
                a = mvt_permute(base, (int[]){1, 0, 2});
                mvt_release(base);
                b = RND(dt, 16, K);
                break;
            }
            }
            mvt_tensor *c = mvt_matmul(a, b), *ref = mvt_ref_matmul(a, b);
            ck_assert(mvt_is_contiguous(c));
            char what[64];
            snprintf(what, sizeof what, "matmul trial %d", trial);
            expect_close(what, c, ref, tol_for(dt, (double)K));
            mvt_release(a); mvt_release(b); mvt_release(c); mvt_release(ref);
        }
        /* transposed views go to BLAS as transposes: the only storage taken is the output's */
        mvt_tensor *base = RND(dt, 17, 40, 30), *bt = mvt_transpose(base, 0, 1), *a2 = RND(dt, 18, 20, 30);
        mvt_pool_stats s0 = mvt_pool_get_stats();
        mvt_tensor *c2 = mvt_matmul(a2, bt);
        mvt_tensor *c3 = mvt_matmul(bt, base);   /* [30, 40] x [40, 30]: both operands views of one storage */
        mvt_pool_stats s1 = mvt_pool_get_stats();
        ck_assert_msg(s1.mallocs + s1.reuses - s0.mallocs - s0.reuses == 2, "matmul copied an operand");
        mvt_tensor *r2 = mvt_ref_matmul(a2, bt), *r3 = mvt_ref_matmul(bt, base);
        expect_close("matmul transposed b", c2, r2, tol_for(dt, 30));
        expect_close("matmul transposed a", c3, r3, tol_for(dt, 40));
        mvt_release(base); mvt_release(bt); mvt_release(a2); mvt_release(c2); mvt_release(c3);
        mvt_release(r2); mvt_release(r3);
        /* empty inner dim gives zeros */
        mvt_tensor *e1 = mvt_zeros(dt, 2, SH(3, 0)), *e2 = mvt_zeros(dt, 2, SH(0, 4));
        mvt_tensor *e3 = mvt_matmul(e1, e2);
        ck_assert(e3->shape[0] == 3 && e3->shape[1] == 4 && mvt_max_abs(e3) == 0);
        mvt_release(e1); mvt_release(e2); mvt_release(e3);
        /* vector @ matrix */
        mvt_tensor *v = RND(dt, 20, 7), *m = RND(dt, 21, 7, 5);
        mvt_tensor *c = mvt_matmul(v, m), *ref = mvt_ref_matmul(v, m);
        ck_assert_int_eq(c->ndim, 1);
        expect_close("vec@mat", c, ref, tol_for(dt, 7));
        mvt_release(v); mvt_release(m); mvt_release(c); mvt_release(ref);
    }
}
END_TEST

START_TEST(test_gemm) {
    for (int k = 0; k < 2; k++) {
        mvt_dtype dt = DTYPES[k];
        for (int t = 0; t < 8; t++) {
            bool ta = t & 1, tb = t & 2, batched = t & 4;
            int64_t M = 13, K = 9, N = 11, B = 3;
            mvt_tensor *a, *b, *c;
            if (batched) {
                /* trans_a with a transposed view: the two cancel to NoTrans in BLAS */
                a = ta ? rnd_transposed(dt, 3, SH(B, K, M), 30 + t) : RND(dt, 30 + t, B, M, K);
                b = tb ? RND(dt, 40 + t, B, N, K) : rnd_transposed(dt, 3, SH(B, K, N), 40 + t);
                c = RND(dt, 50 + t, B, M, N);
            } else {
                a = ta ? RND(dt, 30 + t, K, M) : RND(dt, 30 + t, M, K);
                b = tb ? rnd_transposed(dt, 2, SH(N, K), 40 + t) : RND(dt, 40 + t, K, N);
                c = RND(dt, 50 + t, M, N);
            }
            mvt_tensor *c0 = mvt_clone(c);
            mvt_gemm(ta, tb, 0.5, a, b, -2.0, c);
            mvt_tensor *oa = ta ? mvt_transpose(a, -1, -2) : mvt_retain(a);
            mvt_tensor *ob = tb ? mvt_transpose(b, -1, -2) : mvt_retain(b);
            mvt_tensor *p = mvt_ref_matmul(oa, ob);
            for (int64_t i = 0; i < mvt_numel(c); i++) {
                double want = 0.5 * at(p, i) - 2.0 * at(c0, i);
                ck_assert_msg(fabs(at(c, i) - want) <= tol_for(dt, 10), "gemm t=%d i=%lld: %g vs %g", t,
                              (long long)i, at(c, i), want);
            }
            mvt_release(a); mvt_release(b); mvt_release(c); mvt_release(c0);
            mvt_release(oa); mvt_release(ob); mvt_release(p);
        }
    }
}
END_TEST

START_TEST(test_pairwise_sqdist) {
    for (int k = 0; k < 2; k++) {
        mvt_dtype dt = DTYPES[k];
        mvt_tensor *a = RND(dt, 60, 17, 8), *b = RND(dt, 61, 23, 8);
        mvt_tensor *d = mvt_pairwise_sqdist(a, b), *ref = mvt_ref_pairwise_sqdist(a, b);
        expect_close("pairwise_sqdist", d, ref, tol_for(dt, 8));
        mvt_tensor *self = mvt_pairwise_sqdist(a, a);
        for (int64_t i = 0; i < 17; i++) ck_assert(mvt_get(self, SH(i, i)) >= 0);
        mvt_release(a); mvt_release(b); mvt_release(d); mvt_release(ref); mvt_release(self);
    }
}
END_TEST

/* ---- elementwise ------------------------------------------------------------ */

static double ref_binop(mvt_binop op, double x, double y) {
    switch (op) {
    case MVT_ADD: return x + y;
    case MVT_SUB: return x - y;
    case MVT_MUL: return x * y;
    case MVT_DIV: return x / y;
    case MVT_MAXIMUM: return x > y ? x : y;
    }
    return 0;
}

/* naive broadcasting: index each operand by the output's multi-index */
static double bcast_at(const mvt_tensor *t, int ond, const int64_t *oshape, int64_t flat) {
    int64_t idx[MVT_MAX_DIMS];
    for (int d = ond - 1; d >= 0; d--) { idx[d] = flat % oshape[d]; flat /= oshape[d]; }
    int64_t ti[MVT_MAX_DIMS];
    int lead = ond - t->ndim;
    for (int d = 0; d < t->ndim; d++) ti[d] = t->shape[d] == 1 ? 0 : idx[d + lead];
    return mvt_get(t, ti);
}

START_TEST(test_binary) {
    for (int k = 0; k < 2; k++) {
        mvt_dtype dt = DTYPES[k];
        for (int trial = 0; trial < 5; trial++) {
            mvt_tensor *a, *b;
            switch (trial) {
            case 0: a = RND(dt, 70, 3, 4, 5); b = RND(dt, 71, 3, 4, 5); break;
            case 1: a = RND(dt, 72, 3, 1, 5); b = RND(dt, 73, 4, 1); break;
            case 2: a = rnd_transposed(dt, 3, SH(2, 6, 7), 74); b = RND(dt, 75, 7); break;
            case 3: a = mvt_scalar(dt, 0.75); b = rnd_transposed(dt, 2, SH(40, 300), 76); break;  /* large */
            default: {
                mvt_tensor *base = RND(dt, 77, 5, 9, 8);
                a = mvt_narrow(base, 1, 2, 5);
                mvt_release(base);
                b = RND(dt, 78, 5, 1, 1);
                break;
            }
            }
            for (int op = MVT_ADD; op <= MVT_MAXIMUM; op++) {
                mvt_tensor *c = mvt_binary((mvt_binop)op, a, b);
                for (int64_t i = 0; i < mvt_numel(c); i++) {
                    double want = ref_binop((mvt_binop)op, bcast_at(a, c->ndim, c->shape, i),
                                            bcast_at(b, c->ndim, c->shape, i));
                    ck_assert_msg(fabs(at(c, i) - want) <= tol_for(dt, fabs(want)), "binary op %d trial %d at %lld",
                                  op, trial, (long long)i);
                }
                mvt_release(c);
            }
            mvt_release(a);
            mvt_release(b);
        }
        /* axpy_ into a non-contiguous destination with a broadcast source */
        mvt_tensor *base = RND(dt, 79, 6, 10), *src = RND(dt, 80, 6, 1);
        mvt_tensor *before = mvt_clone(base);
        mvt_tensor *dst = mvt_narrow(base, 1, 3, 4);
        mvt_axpy_(dst, -1.5, src);
        for (int64_t i = 0; i < 6; i++)
            for (int64_t j = 0; j < 10; j++) {
                double want = mvt_get(before, SH(i, j)) + ((j >= 3 && j < 7) ? -1.5 * mvt_get(src, SH(i, 0)) : 0);
                ck_assert(fabs(mvt_get(base, SH(i, j)) - want) <= tol_for(dt, 1));
            }
        mvt_release(base); mvt_release(src); mvt_release(before); mvt_release(dst);
    }
}
END_TEST

static double ref_unop(mvt_unop op, double x) {
    switch (op) {
    case MVT_NEG: return -x;
    case MVT_EXP: return exp(x);
    case MVT_LOG: return log(x);
    case MVT_SQRT: return sqrt(x);
    case MVT_TANH: return tanh(x);
    case MVT_GELU: return 0.5 * x * (1 + erf(x / sqrt(2.0)));
    case MVT_SQUARE: return x * x;
    case MVT_ABS: return fabs(x);
    case MVT_RECIP: return 1 / x;
    }
    return 0;
}

START_TEST(test_unary) {
    for (int k = 0; k < 2; k++) {
        mvt_dtype dt = DTYPES[k];
        mvt_tensor *x = rnd_transposed(dt, 3, SH(3, 50, 70), 90);
        mvt_tensor *pos = mvt_unary(MVT_ABS, x);
        mvt_tensor *xp = mvt_add_scalar(pos, 0.1);
        for (int op = MVT_NEG; op <= MVT_RECIP; op++) {
            bool needs_pos = op == MVT_LOG || op == MVT_SQRT || op == MVT_RECIP;
            const mvt_tensor *in = needs_pos ? xp : x;
            mvt_tensor *y = mvt_unary((mvt_unop)op, in);
            for (int64_t i = 0; i < mvt_numel(y); i++) {
                double want = ref_unop((mvt_unop)op, at(in, i));
                ck_assert_msg(fabs(at(y, i) - want) <= tol_for(dt, fabs(want)) * 2, "unary %d at %lld: %g vs %g", op,
                              (long long)i, at(y, i), want);
            }
            mvt_release(y);
        }
        mvt_tensor *s = mvt_scale(x, 3.0), *g = mvt_gelu(x), *dy = RND(dt, 91, 3, 50, 70);
        mvt_tensor *dx = mvt_gelu_backward(x, dy);
        for (int64_t i = 0; i < mvt_numel(x); i++) {
            double xi = at(x, i);
            ck_assert(fabs(at(s, i) - 3 * xi) <= tol_for(dt, 3));
            ck_assert(fabs(at(g, i) - ref_unop(MVT_GELU, xi)) <= tol_for(dt, 1));
            /* derivative by central differences of the exact GELU in f64 */
            double h = 1e-5, fd = (ref_unop(MVT_GELU, xi + h) - ref_unop(MVT_GELU, xi - h)) / (2 * h);
            ck_assert_msg(fabs(at(dx, i) - at(dy, i) * fd) <= 1e-6 + tol_for(dt, 1), "gelu backward at %lld",
                          (long long)i);
        }
        mvt_release(x); mvt_release(pos); mvt_release(xp); mvt_release(s); mvt_release(g);
        mvt_release(dy); mvt_release(dx);
    }
}
END_TEST

/* ---- reductions --------------------------------------------------------------- */

START_TEST(test_reduce) {
    for (int k = 0; k < 2; k++) {
        mvt_dtype dt = DTYPES[k];
        mvt_tensor *x = rnd_transposed(dt, 3, SH(5, 300, 7), 100);
        for (int axis = -3; axis < 3; axis++) {
            int ax = axis < 0 ? axis + 3 : axis;
            for (int keep = 0; keep < 2; keep++) {
                mvt_tensor *am = NULL, *an = NULL;
                mvt_tensor *s = mvt_sum(x, axis, keep), *m = mvt_mean(x, axis, keep);
                mvt_tensor *mx = mvt_max(x, axis, keep, &am), *mn = mvt_min(x, axis, keep, &an);
                ck_assert_int_eq(s->ndim, keep ? 3 : 2);
                ck_assert_int_eq(am->dtype, MVT_I64);
                int64_t n = x->shape[ax], other[2];
                int oi = 0;
                for (int d = 0; d < 3; d++) if (d != ax) other[oi++] = x->shape[d];
                for (int64_t p = 0; p < other[0]; p++)
                    for (int64_t q = 0; q < other[1]; q++) {
                        double acc = 0, best = -INFINITY, worst = INFINITY;
                        int64_t bi = 0, wi = 0;
                        for (int64_t j = 0; j < n; j++) {
                            int64_t idx[3];
                            int o = 0;
                            for (int d = 0; d < 3; d++) idx[d] = d == ax ? j : (o++ == 0 ? p : q);
                            double v = mvt_get(x, idx);
                            acc += v;
                            if (v > best) { best = v; bi = j; }
                            if (v < worst) { worst = v; wi = j; }
                        }
                        int64_t flat = p * other[1] + q;
                        ck_assert(fabs(at(s, flat) - acc) <= tol_for(dt, (double)n));
                        ck_assert(fabs(at(m, flat) - acc / n) <= tol_for(dt, 1));
                        ck_assert(at(mx, flat) == best && at(am, flat) == (double)bi);
                        ck_assert(at(mn, flat) == worst && at(an, flat) == (double)wi);
                    }
                mvt_release(s); mvt_release(m); mvt_release(mx); mvt_release(mn); mvt_release(am); mvt_release(an);
            }
        }
        /* ties resolve to the lowest index */
        mvt_tensor *t = mvt_from_data(MVT_F64, 1, SH(5), (double[]){1, 3, 2, 3, 3});
        mvt_tensor *tt = mvt_to_dtype(t, dt), *ai = NULL;
        mvt_tensor *tm = mvt_max(tt, 0, false, &ai);
        ck_assert(mvt_item(tm) == 3 && mvt_i64(ai)[0] == 1);
        mvt_release(t); mvt_release(tt); mvt_release(ai); mvt_release(tm);
        /* sum_all and sum_to_shape */
        mvt_tensor *sa = mvt_sum_all(x);
        double acc = 0;
        for (int64_t i = 0; i < mvt_numel(x); i++) acc += at(x, i);
        ck_assert(fabs(mvt_item(sa) - acc) <= tol_for(dt, 100));
        mvt_tensor *st = mvt_sum_to_shape(x, 2, SH(1, 7));
        ck_assert_int_eq(st->ndim, 2);
        for (int64_t c = 0; c < 7; c++) {
            double cs = 0;
            for (int64_t i = 0; i < 5; i++)
                for (int64_t j = 0; j < 300; j++) cs += mvt_get(x, SH(i, j, c));
            ck_assert(fabs(mvt_get(st, SH(0, c)) - cs) <= tol_for(dt, 100));
        }
        mvt_tensor *same = mvt_sum_to_shape(x, 3, x->shape);
        expect_close("sum_to_shape identity", same, x, 0);
        mvt_release(sa); mvt_release(st); mvt_release(same); mvt_release(x);
    }
}
END_TEST

/* ---- softmax ------------------------------------------------------------------ */

START_TEST(test_softmax) {
    for (int k = 0; k < 2; k++) {
        mvt_dtype dt = DTYPES[k];
        mvt_tensor *x = rnd_transposed(dt, 3, SH(4, 6, 33), 110);
        mvt_tensor *xs = mvt_scale(x, 8.0);
        /* mask [6, 33] broadcast over the batch, i64, with row 2 fully masked */
        mvt_tensor *mask = mvt_zeros(MVT_I64, 2, SH(6, 33));
        mvt_rng r;
        mvt_rng_seed(&r, 111);
        for (int64_t i = 0; i < 6; i++)
            for (int64_t j = 0; j < 33; j++) mvt_i64(mask)[i * 33 + j] = (i != 2) && (mvt_rng_uniform(&r) < 0.6 || j == i);
        for (int masked = 0; masked < 2; masked++) {
            const mvt_tensor *m = masked ? mask : NULL;
            mvt_tensor *y = mvt_softmax(xs, m), *ref = mvt_ref_softmax(xs, m);
            ck_assert(mvt_all_finite(y));
            expect_close("softmax", y, ref, tol_for(dt, 1));
            /* rows sum to 1 except the fully masked row, which is all zeros */
            for (int64_t b = 0; b < 4; b++)
                for (int64_t i = 0; i < 6; i++) {
                    double s = 0;
                    for (int64_t j = 0; j < 33; j++) {
                        double v = mvt_get(y, SH(b, i, j));
                        if (masked && !mvt_i64(mask)[i * 33 + j]) ck_assert(v == 0);
                        s += v;
                    }
                    if (masked && i == 2) ck_assert(s == 0);
                    else ck_assert(fabs(s - 1) <= tol_for(dt, 33));
                }
            /* backward: dx = y (dy - sum(dy y)) */
            mvt_tensor *dy = RND(dt, 112, 4, 6, 33);
            mvt_tensor *dx = mvt_softmax_backward(y, dy);
            for (int64_t row = 0; row < 24; row++) {
                double s = 0;
                for (int64_t j = 0; j < 33; j++) s += at(dy, row * 33 + j) * at(y, row * 33 + j);
                for (int64_t j = 0; j < 33; j++) {
                    double want = at(y, row * 33 + j) * (at(dy, row * 33 + j) - s);
                    ck_assert(fabs(at(dx, row * 33 + j) - want) <= tol_for(dt, 1));
                }
            }
            mvt_release(y); mvt_release(ref); mvt_release(dy); mvt_release(dx);
        }
        /* -inf entries and an all-(-inf) row never give NaN */
        mvt_tensor *ni = mvt_full(dt, 2, SH(2, 4), -INFINITY);
        mvt_set(ni, SH(1, 2), 0.5);
        mvt_tensor *yn = mvt_softmax(ni, NULL);
        ck_assert(mvt_all_finite(yn));
        ck_assert(mvt_get(yn, SH(0, 0)) == 0 && mvt_get(yn, SH(1, 2)) == 1);
        mvt_release(ni); mvt_release(yn);
        mvt_release(x); mvt_release(xs); mvt_release(mask);
    }
}
END_TEST

/* ---- layernorm ------------------------------------------------------------------- */

START_TEST(test_layernorm) {
    for (int k = 0; k < 2; k++) {
        mvt_dtype dt = DTYPES[k];
        int64_t R0 = 3, R1 = 5, D = 24;
        mvt_tensor *x = rnd_transposed(dt, 3, SH(R0, R1, D), 120);
        mvt_tensor *w = RND(dt, 121, D), *b = RND(dt, 122, D);
        mvt_tensor *mean = NULL, *rstd = NULL;
        mvt_tensor *y = mvt_layernorm(x, w, b, 1e-6, &mean, &rstd);
        mvt_tensor *ref = mvt_ref_layernorm(x, w, b, 1e-6);
        expect_close("layernorm", y, ref, tol_for(dt, 4));
        ck_assert_int_eq(mean->ndim, 2);
        mvt_tensor *y2 = mvt_layernorm(x, NULL, NULL, 1e-5, NULL, NULL), *ref2 = mvt_ref_layernorm(x, NULL, NULL, 1e-5);
        expect_close("layernorm no affine", y2, ref2, tol_for(dt, 4));
        /* backward against central differences of L = sum(y * g) in f64; accumulates into dx/dw/db */
        mvt_tensor *g = RND(dt, 123, R0, R1, D);
        mvt_tensor *dx = mvt_full(dt, 3, SH(R0, R1, D), 1.0), *dw = mvt_full(dt, 1, SH(D), 1.0),
                   *db = mvt_full(dt, 1, SH(D), 1.0);
        mvt_layernorm_backward(g, x, w, mean, rstd, dx, dw, db);
        mvt_tensor *x64 = mvt_to_dtype(x, MVT_F64), *w64 = mvt_to_dtype(w, MVT_F64), *b64 = mvt_to_dtype(b, MVT_F64);
        mvt_tensor *g64 = mvt_to_dtype(g, MVT_F64);
        const double h = 1e-6;
        mvt_tensor *params[3] = {x64, w64, b64}, *grads[3] = {dx, dw, db};
        for (int pi = 0; pi < 3; pi++) {
            mvt_tensor *p = params[pi];
            for (int64_t i = 0; i < mvt_numel(p); i += (pi == 0 ? 7 : 1)) {
                double *v = mvt_f64(p) + i, old = *v, lp, lm;
                *v = old + h;
                mvt_tensor *yp = mvt_ref_layernorm(x64, w64, b64, 1e-6);
                *v = old - h;
                mvt_tensor *ym = mvt_ref_layernorm(x64, w64, b64, 1e-6);
                *v = old;
                lp = lm = 0;
                for (int64_t j = 0; j < mvt_numel(yp); j++) {
                    lp += at(yp, j) * at(g64, j);
                    lm += at(ym, j) * at(g64, j);
                }
                double fd = (lp - lm) / (2 * h);
                double got = at(grads[pi], i) - 1.0;
                ck_assert_msg(fabs(got - fd) <= (dt == MVT_F32 ? 2e-4 : 1e-6) * (1 + fabs(fd)),
                              "layernorm backward param %d at %lld: %g vs %g", pi, (long long)i, got, fd);
                mvt_release(yp);
                mvt_release(ym);
            }
        }
        mvt_tensor *ts[] = {x, w, b, mean, rstd, y, ref, y2, ref2, g, dx, dw, db, x64, w64, b64, g64};
        for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) mvt_release(ts[i]);
    }
}
END_TEST

/* ---- concat / index ops / im2col -------------------------------------------------- */

START_TEST(test_concat_index) {
    for (int k = 0; k < 2; k++) {
        mvt_dtype dt = DTYPES[k];
        mvt_tensor *a = RND(dt, 130, 2, 3, 4), *b = rnd_transposed(dt, 3, SH(2, 5, 4), 131);
        const mvt_tensor *ts[2] = {a, b};
        mvt_tensor *c = mvt_concat(ts, 2, 1);
        ck_assert_int_eq(c->shape[1], 8);
        for (int64_t i = 0; i < 2; i++)
            for (int64_t j = 0; j < 8; j++)
                for (int64_t l = 0; l < 4; l++)
                    ck_assert(mvt_get(c, SH(i, j, l)) == (j < 3 ? mvt_get(a, SH(i, j, l)) : mvt_get(b, SH(i, j - 3, l))));
        mvt_tensor *idx = mvt_from_data(MVT_I64, 1, SH(5), (int64_t[]){7, 0, 3, 3, 1});
        mvt_tensor *s = mvt_index_select(c, 1, idx);
        ck_assert_int_eq(s->shape[1], 5);
        for (int64_t i = 0; i < 2; i++)
            for (int64_t j = 0; j < 5; j++)
                for (int64_t l = 0; l < 4; l++)
                    ck_assert(mvt_get(s, SH(i, j, l)) == mvt_get(c, SH(i, mvt_i64(idx)[j], l)));
        /* index_add_: repeated index 3 accumulates */
        mvt_tensor *dst = mvt_zeros(dt, 3, SH(2, 8, 4));
        mvt_index_add_(dst, 1, idx, s);
        mvt_index_add_(dst, 1, idx, s);
        for (int64_t i = 0; i < 2; i++)
            for (int64_t j = 0; j < 8; j++)
                for (int64_t l = 0; l < 4; l++) {
                    double want = 0;
                    for (int64_t q = 0; q < 5; q++)
                        if (mvt_i64(idx)[q] == j) want += 2 * mvt_get(s, SH(i, q, l));
                    ck_assert(fabs(mvt_get(dst, SH(i, j, l)) - want) <= tol_for(dt, 4));
                }
        /* last-axis index ops */
        mvt_tensor *idx2 = mvt_from_data(MVT_I64, 1, SH(2), (int64_t[]){3, 0});
        mvt_tensor *s2 = mvt_index_select(a, -1, idx2);
        ck_assert(mvt_get(s2, SH(1, 2, 0)) == mvt_get(a, SH(1, 2, 3)));
        mvt_tensor *ts2[] = {a, b, c, idx, s, dst, idx2, s2};
        for (size_t i = 0; i < sizeof ts2 / sizeof *ts2; i++) mvt_release(ts2[i]);
    }
}
END_TEST

START_TEST(test_im2col) {
    for (int k = 0; k < 2; k++) {
        mvt_dtype dt = DTYPES[k];
        int64_t B = 2, C = 3, H = 12, W = 8;
        int P = 4;
        mvt_tensor *img = RND(dt, 140, B, C, H, W);
        mvt_tensor *cols = mvt_im2col(img, P);
        int64_t gw = W / P;
        ck_assert(cols->shape[1] == (H / P) * gw && cols->shape[2] == C * P * P);
        for (int64_t b = 0; b < B; b++)
            for (int64_t q = 0; q < cols->shape[1]; q++)
                for (int64_t c = 0; c < C; c++)
                    for (int64_t ky = 0; ky < P; ky++)
                        for (int64_t kx = 0; kx < P; kx++)
                            ck_assert(mvt_get(cols, SH(b, q, c * P * P + ky * P + kx)) ==
                                      mvt_get(img, SH(b, c, (q / gw) * P + ky, (q % gw) * P + kx)));
        /* adjoint: <im2col(x), g> == <x, col2im(g)> */
        mvt_tensor *g = RND(dt, 141, B, cols->shape[1], C * P * P);
        mvt_tensor *back = mvt_col2im(g, B, C, H, W, P);
        double l = 0, r = 0;
        for (int64_t i = 0; i < mvt_numel(g); i++) l += at(cols, i) * at(g, i);
        for (int64_t i = 0; i < mvt_numel(img); i++) r += at(img, i) * at(back, i);
        ck_assert(fabs(l - r) <= tol_for(dt, 100));
        mvt_release(img); mvt_release(cols); mvt_release(g); mvt_release(back);
    }
}
END_TEST

/* ---- resize ------------------------------------------------------------------------ */

/* PyTorch's cubic convolution weights written out for a fraction t in [0, 1) */
static void torch_cubic_coeffs(double t, double c[4]) {
    const double A = -0.75;
    double x;
    x = t + 1; c[0] = ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
    x = t;     c[1] = ((A + 2) * x - (A + 3)) * x * x + 1;
    x = 1 - t; c[2] = ((A + 2) * x - (A + 3)) * x * x + 1;
    x = 2 - t; c[3] = ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
}

START_TEST(test_resize_hand) {
    /* 1-D row [1, 4] -> [1, 6], values v = {1, 2, 4, 8}: check a few outputs by hand */
    double v[4] = {1, 2, 4, 8};
    for (int k = 0; k < 2; k++) {
        mvt_dtype dt = DTYPES[k];
        mvt_tensor *x64 = mvt_from_data(MVT_F64, 2, SH(1, 4), v);
        mvt_tensor *x = mvt_to_dtype(x64, dt);
        double tol = dt == MVT_F32 ? 1e-5 : 1e-12;
        /* bicubic, half-pixel: dst 0 -> src = 0.5 * 4/6 - 0.5 = -1/6: floor -1, t = 5/6,
         * taps -2, -1, 0, 1 clamped to 0, 0, 0, 1 */
        mvt_tensor *y = mvt_resize(x, 1, 6, MVT_BICUBIC, false, 0, 0);
        double c[4];
        torch_cubic_coeffs(5.0 / 6.0, c);
        double want0 = c[0] * v[0] + c[1] * v[0] + c[2] * v[0] + c[3] * v[1];
        ck_assert_msg(fabs(mvt_get(y, SH(0, 0)) - want0) <= tol, "bicubic dst0 %g vs %g", mvt_get(y, SH(0, 0)), want0);
        /* dst 5 -> src = 5.5 * 2/3 - 0.5 = 3.1666: floor 3, t = 1/6, taps 2, 3, 4->3, 5->3 */
        torch_cubic_coeffs(1.0 / 6.0, c);
        double want5 = c[0] * v[2] + c[1] * v[3] + c[2] * v[3] + c[3] * v[3];
        ck_assert(fabs(mvt_get(y, SH(0, 5)) - want5) <= tol);
        mvt_release(y);
        /* bilinear, half-pixel: dst 0 -> src -1/6 clamped to 0 -> v0; dst 2 -> src 7/6 */
        y = mvt_resize(x, 1, 6, MVT_BILINEAR, false, 0, 0);
        ck_assert(fabs(mvt_get(y, SH(0, 0)) - v[0]) <= tol);
        double l = 2.5 * 4.0 / 6.0 - 0.5 - 1;
        ck_assert(fabs(mvt_get(y, SH(0, 2)) - ((1 - l) * v[1] + l * v[2])) <= tol);
        ck_assert(fabs(mvt_get(y, SH(0, 5)) - v[3]) <= tol);   /* src 3.1666 -> index 3, no right tap */
        mvt_release(y);
        /* bilinear, align_corners: dst 2 -> src 2 * 3/5 = 1.2 */
        y = mvt_resize(x, 1, 6, MVT_BILINEAR, true, 0, 0);
        ck_assert(fabs(mvt_get(y, SH(0, 2)) - (0.8 * v[1] + 0.2 * v[2])) <= tol);
        ck_assert(fabs(mvt_get(y, SH(0, 5)) - v[3]) <= tol);
        mvt_release(y);
        /* bicubic with scale factor 1.7 (out = floor(4 * 1.7) = 6): src = (dst + 0.5)/1.7 - 0.5 */
        y = mvt_resize(x, 1, 6, MVT_BICUBIC, false, 1.0, 1.7);
        double s3 = 3.5 / 1.7 - 0.5;
        int64_t f3 = (int64_t)floor(s3);
        torch_cubic_coeffs(s3 - f3, c);
        double want3 = 0;
        for (int t = 0; t < 4; t++) {
            int64_t j = f3 - 1 + t;
            want3 += c[t] * v[j < 0 ? 0 : j > 3 ? 3 : j];
        }
        ck_assert_msg(fabs(mvt_get(y, SH(0, 3)) - want3) <= tol, "bicubic scale %g vs %g", mvt_get(y, SH(0, 3)), want3);
        mvt_release(y);
        /* nearest: 4 -> 6, dst 5 -> floor(5 * 4/6) = 3 */
        y = mvt_resize(x, 1, 6, MVT_NEAREST, false, 0, 0);
        ck_assert(mvt_get(y, SH(0, 5)) == v[3] && mvt_get(y, SH(0, 1)) == v[0] && mvt_get(y, SH(0, 2)) == v[1]);
        mvt_release(y);
        mvt_release(x);
        mvt_release(x64);
    }
}
END_TEST

START_TEST(test_resize) {
    struct { int64_t H, W, oh, ow; mvt_resample_mode mode; bool ac; double sh, sw; } cases[] = {
        {5, 7, 9, 4, MVT_BICUBIC, false, 0, 0},   {5, 7, 9, 4, MVT_BICUBIC, true, 0, 0},
        {16, 16, 37, 23, MVT_BICUBIC, false, 0, 0}, {6, 6, 10, 10, MVT_BICUBIC, false, 10.1 / 6, 10.1 / 6},
        {5, 7, 9, 4, MVT_BILINEAR, false, 0, 0},  {5, 7, 9, 4, MVT_BILINEAR, true, 0, 0},
        {8, 8, 3, 3, MVT_BILINEAR, false, 0, 0},  {4, 6, 8, 9, MVT_BILINEAR, false, 2.0, 1.5},
        {5, 7, 9, 4, MVT_NEAREST, false, 0, 0},   {4, 4, 8, 8, MVT_NEAREST, false, 0, 0},
    };
    for (int k = 0; k < 2; k++) {
        mvt_dtype dt = DTYPES[k];
        for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
            int64_t H = cases[ci].H, W = cases[ci].W, oh = cases[ci].oh, ow = cases[ci].ow;
            mvt_tensor *x = rnd_transposed(dt, 4, SH(2, 3, H, W), 150 + ci);
            mvt_tensor *y = mvt_resize(x, oh, ow, cases[ci].mode, cases[ci].ac, cases[ci].sh, cases[ci].sw);
            mvt_tensor *ref = mvt_ref_resize(x, oh, ow, cases[ci].mode, cases[ci].ac, cases[ci].sh, cases[ci].sw);
            char what[64];
            snprintf(what, sizeof what, "resize case %zu", ci);
            expect_close(what, y, ref, tol_for(dt, 4));
            /* adjoint: <resize(x), g> == <x, resize_backward(g)> */
            mvt_tensor *g = RND(dt, 160 + ci, 2, 3, oh, ow);
            mvt_tensor *dx = mvt_resize_backward(g, H, W, cases[ci].mode, cases[ci].ac, cases[ci].sh, cases[ci].sw);
            ck_assert(dx->shape[2] == H && dx->shape[3] == W);
            double l = 0, r = 0;
            for (int64_t i = 0; i < mvt_numel(g); i++) l += at(y, i) * at(g, i);
            for (int64_t i = 0; i < mvt_numel(x); i++) r += at(x, i) * at(dx, i);
            ck_assert_msg(fabs(l - r) <= tol_for(dt, 100), "resize adjoint case %zu: %g vs %g", ci, l, r);
            mvt_release(x); mvt_release(y); mvt_release(ref); mvt_release(g); mvt_release(dx);
        }
    }
}
END_TEST

/* PyTorch's own output (memory_bank.h5: bilinear, align_corners=False, f64) */
START_TEST(test_resize_fixture) {
    hid_t f = fx_open("method/memory_bank.h5");
    if (f < 0) return;
    int nd_g, nd_u;
    int64_t sg[8], su[8];
    double *grid = fx_read(f, "anomaly_map/patch_grid", &nd_g, sg);
    double *up = fx_read(f, "anomaly_map/upsampled", &nd_u, su);
    ck_assert(grid && up && nd_g == 2 && nd_u == 2);
    mvt_tensor *x = mvt_from_data(MVT_F64, 2, sg, grid);
    mvt_tensor *y = mvt_resize(x, su[0], su[1], MVT_BILINEAR, false, 0, 0);
    ck_assert(fx_compare("bilinear upsampling vs PyTorch", mvt_f64(y), up, su[0] * su[1], 1e-12, 1e-12, 1));
    mvt_tensor *x32 = mvt_to_dtype(x, MVT_F32);
    mvt_tensor *y32 = mvt_resize(x32, su[0], su[1], MVT_BILINEAR, false, 0, 0);
    ck_assert(fx_compare_f32("bilinear upsampling f32 vs PyTorch", mvt_f32(y32), up, su[0] * su[1], 1e-5, 1e-6, 1));
    mvt_release(x); mvt_release(y); mvt_release(x32); mvt_release(y32);
    free(grid);
    free(up);
    fx_close(f);
}
END_TEST

/* ---- pool / arena --------------------------------------------------------------------- */

static void some_ops(void) {
    mvt_tensor *a = RND(MVT_F32, 1, 33, 17), *b = RND(MVT_F32, 2, 17, 9);
    mvt_tensor *c = mvt_matmul(a, b), *s = mvt_softmax(c, NULL), *t = mvt_transpose(s, 0, 1);
    mvt_tensor *u = mvt_contiguous(t), *v = mvt_sum(u, 0, false), *w = mvt_gelu(c);
    mvt_tensor *ts[] = {a, b, c, s, t, u, v, w};
    for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) mvt_release(ts[i]);
}

START_TEST(test_pool) {
    for (int i = 0; i < 2; i++) some_ops();   /* warm-up */
    mvt_pool_stats s0 = mvt_pool_get_stats();
    for (int i = 0; i < 5; i++) some_ops();
    mvt_pool_stats s1 = mvt_pool_get_stats();
    ck_assert_msg(s1.mallocs == s0.mallocs, "steady state malloc'd %llu new blocks",
                  (unsigned long long)(s1.mallocs - s0.mallocs));
    ck_assert(s1.reuses > s0.reuses);
    ck_assert(s1.live_bytes == s0.live_bytes);
    ck_assert(s1.peak_bytes >= s1.live_bytes);
    mvt_pool_trim();
    ck_assert(mvt_pool_get_stats().cached_bytes == 0);
    /* storage is 64-byte aligned */
    mvt_tensor *t = mvt_empty(MVT_F64, 1, SH(3));
    ck_assert(((uintptr_t)mvt_data(t) & 63) == 0);
    mvt_release(t);

    mvt_arena *ar = mvt_arena_new(1000);
    void *p = mvt_arena_alloc(ar, 10);
    ck_assert(((uintptr_t)p & 63) == 0);
    size_t m = mvt_arena_mark(ar);
    void *q = mvt_arena_alloc(ar, 100);
    ck_assert(((uintptr_t)q & 63) == 0 && q != p);
    ck_assert_ptr_null(mvt_arena_alloc(ar, 2000));
    mvt_arena_reset(ar, m);
    ck_assert_ptr_eq(mvt_arena_alloc(ar, 100), q);
    mvt_arena_free(ar);
}
END_TEST

/* ---- determinism ------------------------------------------------------------------------ */

#define NDET 14

static void det_run(mvt_tensor **outs) {
    mvt_tensor *a = RND(MVT_F32, 200, 300, 200), *b = RND(MVT_F32, 201, 250, 200);
    mvt_tensor *bt = mvt_transpose(b, 0, 1);
    outs[0] = mvt_matmul(a, bt);
    mvt_tensor *q = RND(MVT_F64, 202, 12, 65, 32), *kk = RND(MVT_F64, 203, 12, 65, 32);
    mvt_tensor *kt = mvt_transpose(kk, 1, 2);
    outs[1] = mvt_matmul(q, kt);                 /* many small gemms spread over threads */
    mvt_tensor *mask = mvt_full(MVT_F32, 2, SH(65, 65), 1.0);
    mvt_set(mask, SH(3, 4), 0);
    outs[2] = mvt_softmax(outs[1], mask);
    mvt_tensor *x = RND(MVT_F32, 204, 300, 768), *w = RND(MVT_F32, 205, 768), *bb = RND(MVT_F32, 206, 768);
    mvt_tensor *mean, *rstd;
    outs[3] = mvt_layernorm(x, w, bb, 1e-6, &mean, &rstd);
    mvt_tensor *dy = RND(MVT_F32, 207, 300, 768);
    outs[4] = mvt_zeros_like(x);
    outs[5] = mvt_zeros_like(w);
    outs[6] = mvt_zeros_like(w);
    mvt_layernorm_backward(dy, x, w, mean, rstd, outs[4], outs[5], outs[6]);
    outs[7] = mvt_gelu_backward(x, dy);
    outs[8] = mvt_sum(x, 0, false);
    outs[9] = mvt_sum_all(x);
    mvt_tensor *img = RND(MVT_F32, 208, 3, 40, 37);
    outs[10] = mvt_resize(img, 91, 77, MVT_BICUBIC, false, 0, 0);
    outs[11] = mvt_resize_backward(outs[10], 40, 37, MVT_BICUBIC, false, 0, 0);
    outs[12] = mvt_pairwise_sqdist(a, b);
    mvt_tensor *idx = mvt_zeros(MVT_I64, 1, SH(300));
    for (int i = 0; i < 300; i++) mvt_i64(idx)[i] = (i * 7) % 50;
    outs[13] = mvt_zeros(MVT_F32, 2, SH(50, 768));
    mvt_index_add_(outs[13], 0, idx, x);
    mvt_tensor *ts[] = {a, b, bt, q, kk, kt, mask, x, w, bb, mean, rstd, dy, img, idx};
    for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) mvt_release(ts[i]);
}

START_TEST(test_determinism) {
    int saved = mvt_get_num_threads();
    mvt_tensor *o1[NDET], *o2[NDET];
    mvt_set_num_threads(1);
    det_run(o1);
    mvt_set_num_threads(2);
    det_run(o2);
    mvt_set_num_threads(saved);
    for (int i = 0; i < NDET; i++) {
        ck_assert(mvt_same_shape(o1[i], o2[i]));
        size_t n = (size_t)mvt_numel(o1[i]) * mvt_dtype_size(o1[i]->dtype);
        ck_assert_msg(memcmp(mvt_data(o1[i]), mvt_data(o2[i]), n) == 0, "output %d differs between 1 and 2 threads", i);
        mvt_release(o1[i]);
        mvt_release(o2[i]);
    }
}
END_TEST

START_TEST(test_rng) {
    mvt_rng a, b;
    mvt_rng_seed(&a, 5);
    mvt_rng_seed(&b, 5);
    for (int i = 0; i < 10; i++) ck_assert(mvt_rng_next(&a) == mvt_rng_next(&b));
    double s = 0, s2 = 0;
    for (int i = 0; i < 20000; i++) {
        double z = mvt_rng_normal(&a);
        s += z;
        s2 += z * z;
        double u = mvt_rng_uniform(&b);
        ck_assert(u >= 0 && u < 1);
    }
    ck_assert(fabs(s / 20000) < 0.05 && fabs(s2 / 20000 - 1) < 0.05);
}
END_TEST

static Suite *tensor_suite(void) {
    Suite *s = suite_create("tensor");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_views);
    tcase_add_test(tc, test_copy_broadcast);
    tcase_add_test(tc, test_matmul);
    tcase_add_test(tc, test_gemm);
    tcase_add_test(tc, test_pairwise_sqdist);
    tcase_add_test(tc, test_binary);
    tcase_add_test(tc, test_unary);
    tcase_add_test(tc, test_reduce);
    tcase_add_test(tc, test_softmax);
    tcase_add_test(tc, test_layernorm);
    tcase_add_test(tc, test_concat_index);
    tcase_add_test(tc, test_im2col);
    tcase_add_test(tc, test_resize_hand);
    tcase_add_test(tc, test_resize);
    tcase_add_test(tc, test_resize_fixture);
    tcase_add_test(tc, test_pool);
    tcase_add_test(tc, test_determinism);
    tcase_add_test(tc, test_rng);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(tensor_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
