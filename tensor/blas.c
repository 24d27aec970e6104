/* Matrix products through OpenBLAS: matmul with numpy batch broadcasting,
 * gemm with explicit transposes, pairwise squared distances, and their naive
 * references. A view whose last two dims are transposed (unit stride in the
 * row dim) is passed to BLAS as a transpose, never copied.
 * Determinism: a multi-threaded OpenBLAS call does NOT give the same bits as
 * a single-threaded one (0.3.21 on Zen: its edge kernels depend on the thread
 * partition). So we never let BLAS thread: C is cut into a few slabs whose
 * number and bounds depend only on the shapes, each slab is one
 * single-threaded BLAS call, and the slabs (and batch entries) are spread
 * over OpenMP threads. Slabs rather than the former grid of 256 x 256
 * tiles: every extra call repacks an operand (that grid took 1.08-1.17x the
 * raw sgemm time at one thread) and an odd tile count left a thread idle;
 * 2-4 slabs cost one to three extra packs of the operand that is cheaper
 * to repack. */
#include "config.h"
#include "tensor/tensor.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

/* The fixed gemm partition: a product of at least SPLIT_FLOPS is cut along M
 * or N into 2, 4, 8 or 16 slabs (a power of two balances any power-of-two
 * thread count), each at least SLAB_MIN wide; slab bounds are multiples of
 * SLAB_ALIGN so that only the last slab meets BLAS's edge kernels. */
#define SPLIT_FLOPS (1 << 22)
#define SLAB_MIN 768
#define SLAB_ALIGN 32
#define SLAB_MAX 16

static int get_blas_threads(void) {
#ifdef HAVE_OPENBLAS_SET_NUM_THREADS
    return openblas_get_num_threads();
#else
    return 1;
#endif
}

static void set_blas_threads(int n) {
#ifdef HAVE_OPENBLAS_SET_NUM_THREADS
    openblas_set_num_threads(n);
#else
    (void)n;
#endif
}

/* How BLAS can read the last two dims [rows, cols] of t: row-major (trans =
 * false, element (r, c) at r*ld + c) or column-major (trans = true, at c*ld + r). */
static bool blas_layout(const mvt_tensor *t, bool *trans, int64_t *ld) {
    int nd = t->ndim;
    int64_t rows = t->shape[nd - 2], cols = t->shape[nd - 1];
    int64_t sr = t->stride[nd - 2], sc = t->stride[nd - 1];
    int64_t mc = cols > 1 ? cols : 1, mr = rows > 1 ? rows : 1;
    if ((cols == 1 || sc == 1) && (rows == 1 || sr >= mc)) {
        *trans = false;
        *ld = rows == 1 ? mc : sr;
        return true;
    }
    if ((rows == 1 || sr == 1) && (cols == 1 || sc >= mr)) {
        *trans = true;
        *ld = cols == 1 ? mr : sc;
        return true;
    }
    return false;
}

/* Returns t itself (retained) if BLAS can read it, else a contiguous copy. */
static mvt_tensor *blas_operand(const mvt_tensor *t, bool *trans, int64_t *ld) {
    if (blas_layout(t, trans, ld)) return mvt_retain((mvt_tensor *)t);
    mvt_tensor *c = mvt_clone(t);
    bool ok = blas_layout(c, trans, ld);
    MVT_ASSERT(ok, "contiguous tensor not BLAS-readable");
    return c;
}

/* C[M,N] (row-major, ldc) = alpha op(A) op(B) + beta C */
static void gemm_raw(mvt_dtype dt, bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha,
                     const void *A, int64_t lda, const void *B, int64_t ldb, double beta, void *C, int64_t ldc) {
    if (M == 0 || N == 0) return;
    enum CBLAS_TRANSPOSE TA = ta ? CblasTrans : CblasNoTrans, TB = tb ? CblasTrans : CblasNoTrans;
    if (dt == MVT_F32)
        cblas_sgemm(CblasRowMajor, TA, TB, (int)M, (int)N, (int)K, (float)alpha, A, (int)lda, B, (int)ldb,
                    (float)beta, C, (int)ldc);
    else
        cblas_dgemm(CblasRowMajor, TA, TB, (int)M, (int)N, (int)K, alpha, A, (int)lda, B, (int)ldb, beta, C,
                    (int)ldc);
}

typedef struct {
    mvt_dtype dt;
    bool ta, tb;
    int64_t M, N, K, lda, ldb, ldc;
    double alpha, beta;
    const char *pa, *pb;
    char *pc;
    int nbd;                          /* batch dims */
    int64_t bshape[MVT_MAX_DIMS];
    int64_t astride[MVT_MAX_DIMS], bstride[MVT_MAX_DIMS];   /* per batch dim, elements (0 = broadcast) */
    int64_t cbatch;                   /* elements between C matrices */
} batched_gemm;

/* Slabs of one product [M, N] += [M, K] [K, N]: *tm along M, *tn along N (one of them 1).
 * Cutting M repacks B (K x N) once per extra slab, cutting N repacks A (M x K):
 * cut the dimension whose cost is smaller. Depends on the shapes only. */
static void slab_counts(int64_t M, int64_t N, int64_t K, int64_t *tm, int64_t *tn) {
    *tm = *tn = 1;
    if (2.0 * (double)M * (double)N * (double)K < SPLIT_FLOPS) return;
    bool cut_m = N <= M;
    int64_t ext = cut_m ? M : N;
    if (ext < 2 * SLAB_ALIGN) return;
    int64_t s = 2;
    while (s * 2 <= SLAB_MAX && ext / (s * 2) >= SLAB_MIN) s *= 2;
    *(cut_m ? tm : tn) = s;
}

static void run_batched(const batched_gemm *g) {
    int64_t nb = 1;
    for (int d = 0; d < g->nbd; d++) nb *= g->bshape[d];
    if (nb == 0 || g->M == 0 || g->N == 0) return;
    size_t es = mvt_dtype_size(g->dt);
    /* Fixed slabs (shapes only): every slab is one single-threaded BLAS call,
     * slabs spread statically over OpenMP threads. */
    bool many = nb >= 8;   /* enough batch entries to spread: keep each matrix whole */
    int64_t tm = 1, tn = 1;
    if (!many) slab_counts(g->M, g->N, g->K, &tm, &tn);
    int64_t mb = (g->M + tm - 1) / tm, nbk = (g->N + tn - 1) / tn;
    if (tm > 1) mb = (mb + SLAB_ALIGN - 1) / SLAB_ALIGN * SLAB_ALIGN;
    if (tn > 1) nbk = (nbk + SLAB_ALIGN - 1) / SLAB_ALIGN * SLAB_ALIGN;
    tm = (g->M + mb - 1) / mb;   /* rounding up can leave the last slab empty */
    tn = (g->N + nbk - 1) / nbk;
    int64_t ntasks = nb * tm * tn;
    int nt = mvt_get_num_threads();
    bool par = ntasks > 1 && nt > 1;
    int prev = get_blas_threads();
    if (prev != 1) set_blas_threads(1);   /* always: a threaded BLAS call would change the bits */
#pragma omp parallel for schedule(static) if (par)
    for (int64_t task = 0; task < ntasks; task++) {
        int64_t i = task / (tm * tn), ti = (task / tn) % tm, tj = task % tn;
        int64_t i0 = ti * mb, j0 = tj * nbk;
        int64_t m = g->M - i0 < mb ? g->M - i0 : mb, n = g->N - j0 < nbk ? g->N - j0 : nbk;
        int64_t oa = mvt_offset_of(g->nbd, g->bshape, g->astride, i) + (g->ta ? i0 : i0 * g->lda);
        int64_t ob = mvt_offset_of(g->nbd, g->bshape, g->bstride, i) + (g->tb ? j0 * g->ldb : j0);
        gemm_raw(g->dt, g->ta, g->tb, m, n, g->K, g->alpha, g->pa + oa * (int64_t)es, g->lda,
                 g->pb + ob * (int64_t)es, g->ldb, g->beta,
                 g->pc + (i * g->cbatch + i0 * g->ldc + j0) * (int64_t)es, g->ldc);
    }
    if (prev != 1) set_blas_threads(prev);
}

mvt_tensor *mvt_matmul(const mvt_tensor *a_in, const mvt_tensor *b_in) {
    MVT_ASSERT(a_in->dtype == b_in->dtype && (a_in->dtype == MVT_F32 || a_in->dtype == MVT_F64),
               "matmul: dtypes %s, %s", mvt_dtype_name(a_in->dtype), mvt_dtype_name(b_in->dtype));
    MVT_ASSERT(a_in->ndim >= 1 && b_in->ndim >= 1, "matmul: scalar operand");
    bool squeeze_m = a_in->ndim == 1, squeeze_n = b_in->ndim == 1;
    mvt_tensor *a = squeeze_m ? mvt_unsqueeze(a_in, 0) : mvt_retain((mvt_tensor *)a_in);
    mvt_tensor *b = squeeze_n ? mvt_unsqueeze(b_in, 1) : mvt_retain((mvt_tensor *)b_in);
    int64_t M = a->shape[a->ndim - 2], K = a->shape[a->ndim - 1], N = b->shape[b->ndim - 1];
    char sa[128], sb[128];
    MVT_ASSERT(b->shape[b->ndim - 2] == K, "matmul: %s x %s inner dims differ", mvt_shape_str(a_in, sa, sizeof sa),
               mvt_shape_str(b_in, sb, sizeof sb));
    int nbd;
    int64_t bshape[MVT_MAX_DIMS];
    MVT_ASSERT(mvt_broadcast_shapes(a->ndim - 2, a->shape, b->ndim - 2, b->shape, &nbd, bshape),
               "matmul: batch dims of %s and %s do not broadcast", mvt_shape_str(a_in, sa, sizeof sa),
               mvt_shape_str(b_in, sb, sizeof sb));
    MVT_ASSERT(nbd + 2 <= MVT_MAX_DIMS, "matmul: too many dims");
    int64_t oshape[MVT_MAX_DIMS];
    for (int d = 0; d < nbd; d++) oshape[d] = bshape[d];
    oshape[nbd] = M;
    oshape[nbd + 1] = N;
    mvt_tensor *out = mvt_empty(a->dtype, nbd + 2, oshape);
    int64_t nb = 1;
    for (int d = 0; d < nbd; d++) nb *= bshape[d];

    bool b_shared = true;   /* every batch uses the same b matrix */
    for (int d = 0; d < b->ndim - 2; d++)
        if (b->shape[d] != 1) b_shared = false;
    bool a_full = a->ndim - 2 == nbd;
    for (int d = 0; a_full && d < nbd; d++)
        if (a->shape[d] != bshape[d]) a_full = false;

    batched_gemm g = {0};
    g.dt = a->dtype;
    g.alpha = 1.0;
    g.beta = 0.0;
    g.M = M; g.N = N; g.K = K;
    g.ldc = N > 1 ? N : 1;
    g.cbatch = M * N;
    g.pc = mvt_data(out);
    mvt_tensor *ua = NULL, *ub = NULL;

    /* Linear-layer case [..., M, K] @ [K, N]: fold the batch into M (one big gemm). */
    mvt_tensor *a2 = NULL;
    if (nb > 1 && b_shared && a_full) {
        int64_t s2[2] = {-1, K};
        a2 = mvt_view(a, 2, s2);
        bool t;
        int64_t ld;
        if (a2 && !(blas_layout(a2, &t, &ld) && !t)) { mvt_release(a2); a2 = NULL; }
    }
    if (a2) {
        ua = blas_operand(a2, &g.ta, &g.lda);
        mvt_tensor *b2 = mvt_view(b, 2, (int64_t[]){K, N});
        if (!b2) b2 = mvt_reshape(b, 2, (int64_t[]){K, N});
        ub = blas_operand(b2, &g.tb, &g.ldb);
        mvt_release(b2);
        mvt_release(a2);
        g.M = M * nb;
        g.nbd = 0;
        g.pa = mvt_data(ua);
        g.pb = mvt_data(ub);
        run_batched(&g);
    } else {
        ua = blas_operand(a, &g.ta, &g.lda);
        ub = blas_operand(b, &g.tb, &g.ldb);
        g.nbd = nbd;
        for (int d = 0; d < nbd; d++) {
            g.bshape[d] = bshape[d];
            int da = d - (nbd - (ua->ndim - 2)), db = d - (nbd - (ub->ndim - 2));
            g.astride[d] = (da >= 0 && ua->shape[da] == bshape[d]) ? ua->stride[da] : 0;
            g.bstride[d] = (db >= 0 && ub->shape[db] == bshape[d]) ? ub->stride[db] : 0;
        }
        g.pa = mvt_data(ua);
        g.pb = mvt_data(ub);
        run_batched(&g);
    }
    if (K == 0) mvt_fill(out, 0);   /* BLAS leaves C alone when K = 0 on some builds */
    mvt_release(ua);
    mvt_release(ub);
    mvt_release(a);
    mvt_release(b);
    if (squeeze_m || squeeze_n) {
        int64_t s[MVT_MAX_DIMS];
        int n = 0;
        for (int d = 0; d < nbd; d++) s[n++] = bshape[d];
        if (!squeeze_m) s[n++] = M;
        if (!squeeze_n) s[n++] = N;
        mvt_tensor *v = mvt_view(out, n, s);
        mvt_release(out);
        out = v;
    }
    return out;
}

void mvt_gemm(bool trans_a, bool trans_b, double alpha, const mvt_tensor *a, const mvt_tensor *b, double beta,
              mvt_tensor *c) {
    MVT_ASSERT(a->dtype == b->dtype && a->dtype == c->dtype && (c->dtype == MVT_F32 || c->dtype == MVT_F64),
               "gemm: dtypes differ or unsupported");
    MVT_ASSERT(mvt_is_contiguous(c), "gemm: c must be contiguous");
    MVT_ASSERT((a->ndim == 2 && b->ndim == 2 && c->ndim == 2) ||
                   (a->ndim == 3 && b->ndim == 3 && c->ndim == 3 && a->shape[0] == b->shape[0] &&
                    a->shape[0] == c->shape[0]),
               "gemm: expects 2-D operands or 3-D with equal batch");
    int nd = a->ndim;
    int64_t M = trans_a ? a->shape[nd - 1] : a->shape[nd - 2];
    int64_t K = trans_a ? a->shape[nd - 2] : a->shape[nd - 1];
    int64_t Kb = trans_b ? b->shape[nd - 1] : b->shape[nd - 2];
    int64_t N = trans_b ? b->shape[nd - 2] : b->shape[nd - 1];
    char s1[128], s2[128], s3[128];
    MVT_ASSERT(K == Kb && c->shape[nd - 2] == M && c->shape[nd - 1] == N, "gemm: shapes %s, %s -> %s do not match",
               mvt_shape_str(a, s1, sizeof s1), mvt_shape_str(b, s2, sizeof s2), mvt_shape_str(c, s3, sizeof s3));
    batched_gemm g = {0};
    bool la, lb;
    mvt_tensor *ua = blas_operand(a, &la, &g.lda), *ub = blas_operand(b, &lb, &g.ldb);
    g.dt = c->dtype;
    g.ta = la != trans_a;
    g.tb = lb != trans_b;
    g.M = M; g.N = N; g.K = K;
    g.alpha = alpha;
    g.beta = beta;
    g.ldc = N > 1 ? N : 1;
    g.cbatch = M * N;
    g.pa = mvt_data(ua);
    g.pb = mvt_data(ub);
    g.pc = mvt_data(c);
    if (nd == 3) {
        g.nbd = 1;
        g.bshape[0] = a->shape[0];
        g.astride[0] = ua->stride[0];
        g.bstride[0] = ub->stride[0];
    }
    if (K == 0 && beta != 1.0) {
        /* scale c ourselves: BLAS implementations differ on K = 0 */
        if (beta == 0.0) mvt_fill(c, 0);
        else {
            mvt_tensor *t = mvt_scale(c, beta);
            mvt_copy_(c, t);
            mvt_release(t);
        }
    } else {
        run_batched(&g);
    }
    mvt_release(ua);
    mvt_release(ub);
}

/* ---- pairwise squared distances ---------------------------------------- */

static void row_sqnorms(const mvt_tensor *x, double *out) {
    int64_t R = x->shape[0], D = x->shape[1];
    const void *p = mvt_data(x);
    bool f32 = x->dtype == MVT_F32;
#pragma omp parallel for schedule(static) if (R * D > 32768)
    for (int64_t i = 0; i < R; i++) {
        double s = 0;
        if (f32) { const float *r = (const float *)p + i * D; for (int64_t k = 0; k < D; k++) s += (double)r[k] * r[k]; }
        else { const double *r = (const double *)p + i * D; for (int64_t k = 0; k < D; k++) s += r[k] * r[k]; }
        out[i] = s;
    }
}

mvt_tensor *mvt_pairwise_sqdist(const mvt_tensor *a_in, const mvt_tensor *b_in) {
    MVT_ASSERT(a_in->ndim == 2 && b_in->ndim == 2 && a_in->shape[1] == b_in->shape[1] && a_in->dtype == b_in->dtype,
               "pairwise_sqdist: expects a [M, D], b [N, D] of one dtype");
    mvt_tensor *a = mvt_contiguous(a_in), *b = mvt_contiguous(b_in);
    int64_t M = a->shape[0], N = b->shape[0];
    mvt_tensor *out = mvt_empty(a->dtype, 2, (int64_t[]){M, N});
    mvt_gemm(false, true, -2.0, a, b, 0.0, out);
    mvt_tensor *na = mvt_empty(MVT_F64, 1, &M), *nb = mvt_empty(MVT_F64, 1, &N);
    double *pa = mvt_f64(na), *pb = mvt_f64(nb);
    row_sqnorms(a, pa);
    row_sqnorms(b, pb);
    void *po = mvt_data(out);
    bool f32 = out->dtype == MVT_F32;
#pragma omp parallel for schedule(static) if (M * N > 32768)
    for (int64_t i = 0; i < M; i++) {
        for (int64_t j = 0; j < N; j++) {
            if (f32) {
                float *o = (float *)po + i * N;
                double v = (double)o[j] + pa[i] + pb[j];
                o[j] = v > 0 ? (float)v : 0.0f;
            } else {
                double *o = (double *)po + i * N;
                double v = o[j] + pa[i] + pb[j];
                o[j] = v > 0 ? v : 0.0;
            }
        }
    }
    mvt_release(na);
    mvt_release(nb);
    mvt_release(a);
    mvt_release(b);
    return out;
}

/* ---- references ---------------------------------------------------------- */

mvt_tensor *mvt_ref_matmul(const mvt_tensor *a_in, const mvt_tensor *b_in) {
    bool squeeze_m = a_in->ndim == 1, squeeze_n = b_in->ndim == 1;
    mvt_tensor *a = squeeze_m ? mvt_unsqueeze(a_in, 0) : mvt_retain((mvt_tensor *)a_in);
    mvt_tensor *b = squeeze_n ? mvt_unsqueeze(b_in, 1) : mvt_retain((mvt_tensor *)b_in);
    int64_t M = a->shape[a->ndim - 2], K = a->shape[a->ndim - 1], N = b->shape[b->ndim - 1];
    MVT_ASSERT(b->shape[b->ndim - 2] == K, "ref_matmul: inner dims differ");
    int nbd;
    int64_t s[MVT_MAX_DIMS];
    MVT_ASSERT(mvt_broadcast_shapes(a->ndim - 2, a->shape, b->ndim - 2, b->shape, &nbd, s), "ref_matmul: batch");
    s[nbd] = M;
    s[nbd + 1] = N;
    int64_t sa_[MVT_MAX_DIMS], sb_[MVT_MAX_DIMS];
    for (int d = 0; d < nbd; d++) { sa_[d] = s[d]; sb_[d] = s[d]; }
    sa_[nbd] = M; sa_[nbd + 1] = K;
    sb_[nbd] = K; sb_[nbd + 1] = N;
    mvt_tensor *ea = mvt_expand(a, nbd + 2, sa_);
    mvt_tensor *eb = mvt_expand(b, nbd + 2, sb_);
    mvt_tensor *out = mvt_empty(a->dtype, nbd + 2, s);
    int64_t nb = 1;
    for (int d = 0; d < nbd; d++) nb *= s[d];
    const void *pa = mvt_data(ea), *pb = mvt_data(eb);
    void *po = mvt_data(out);
    int64_t idx = 0;
    for (int64_t bi = 0; bi < nb; bi++) {
        int64_t oa = mvt_offset_of(nbd, s, ea->stride, bi), ob = mvt_offset_of(nbd, s, eb->stride, bi);
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double acc = 0;
                for (int64_t k = 0; k < K; k++)
                    acc += mvt_load(pa, ea->dtype, oa + i * ea->stride[nbd] + k * ea->stride[nbd + 1]) *
                           mvt_load(pb, eb->dtype, ob + k * eb->stride[nbd] + j * eb->stride[nbd + 1]);
                mvt_store(po, out->dtype, idx++, acc);
            }
    }
    mvt_release(ea);
    mvt_release(eb);
    mvt_release(a);
    mvt_release(b);
    if (squeeze_m || squeeze_n) {
        int64_t v[MVT_MAX_DIMS];
        int n = 0;
        for (int d = 0; d < nbd; d++) v[n++] = s[d];
        if (!squeeze_m) v[n++] = M;
        if (!squeeze_n) v[n++] = N;
        mvt_tensor *r = mvt_view(out, n, v);
        mvt_release(out);
        out = r;
    }
    return out;
}

mvt_tensor *mvt_ref_pairwise_sqdist(const mvt_tensor *a, const mvt_tensor *b) {
    int64_t M = a->shape[0], N = b->shape[0], D = a->shape[1];
    mvt_tensor *out = mvt_empty(a->dtype, 2, (int64_t[]){M, N});
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0;
            for (int64_t k = 0; k < D; k++) {
                double d = mvt_get(a, (int64_t[]){i, k}) - mvt_get(b, (int64_t[]){j, k});
                s += d * d;
            }
            mvt_set(out, (int64_t[]){i, j}, s);
        }
    return out;
}
