/* ops_attention: block-sparse masked multi-head attention, one op (forward,
 * backward dQ dK dV), and the compressed mask index it runs on.
 *
 * Why: a (T x T) masked attention whose mask keeps a small share of the keys
 * (EAM's epipolar bands keep about 3/16 of the other views' patches) spends
 * nearly all of its dense cost on scores the softmax then throws away, and
 * holds B heads T^2 probabilities for the backward. Here the query rows are
 * cut in blocks of MVA_ATTN_QBLOCK; the index lists, per block, the union of
 * the keys any of its rows keeps, plus each row's exact mask as an additive bias. A
 * block's keys are gathered into one contiguous [nk, d] panel per head, so
 * the scores and the products stay GEMM-shaped (QB x nk x d). Nothing of
 * size T^2 is stored: the forward keeps the log-sum-exp of each row and the
 * backward recomputes the block's probabilities from it (flash-attention
 * style). A block whose union is all T keys with every bit set runs straight
 * on K and V (no gather, no mask): the dense path.
 *
 * Determinism: one task per (sample, head group), its blocks in a fixed order,
 * single-threaded BLAS calls; a task writes only its heads' columns of its
 * sample's rows (forward output and dQ, dK, dV alike), so results do not
 * depend on the thread count. Softmax sums are taken in double as in
 * mvt_softmax. A row with no kept key gives zeros and no gradient. */
#include "config.h"
#include "autograd/op.h"
#include "tensor/vecmath.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- the index ------------------------------------------------------------------------
 * An I64 tensor (so it is refcounted and a node can keep it in saved[]):
 *   [0] magic  [1] S masks  [2] T  [3] QB  [4] nqb blocks  [5] kept pairs  [6] computed pairs
 *   [7] largest nk
 *   then S * nqb records of 4: key offset (in int64 words), nk, bias offset (bytes from the
 *   start of the data), flags (1: every key of the union kept by every row, 2: the keys are 0..T-1)
 *   then the key lists (int64), then the biases (QB * nk floats per block, row-major: 0 where
 *   the row keeps the key, -inf where not; a score block starts from them, so the mask costs
 *   no pass of its own). */
#define IDX_MAGIC 0x4d56414958303031LL
#define IDX_HDR 8
#define IDX_REC 4
#define FLAG_FULL 1
#define FLAG_ALLKEYS 2

static inline bool keep_at(const void *m, mvt_dtype dt, int64_t off) {
    return dt == MVT_F32 ? ((const float *)m)[off] != 0
         : dt == MVT_F64 ? ((const double *)m)[off] != 0 : ((const int64_t *)m)[off] != 0;
}

mvt_tensor *mva_attn_index(const mvt_tensor *mask) {
    MVT_ASSERT(mask && mask->ndim >= 2 && mask->shape[mask->ndim - 1] == mask->shape[mask->ndim - 2],
               "mva_attn_index: mask must be [T, T] or [S, (1,) T, T]");
    int64_t T = mask->shape[mask->ndim - 1], S = mvt_numel(mask) / (T * T > 0 ? T * T : 1);
    MVT_ASSERT(T > 0 && S > 0, "mva_attn_index: empty mask");
    mvt_tensor *mc = mvt_contiguous(mask);
    const void *m = mvt_data(mc);
    mvt_dtype dt = mc->dtype;
    int64_t QB = MVA_ATTN_QBLOCK, nqb = (T + QB - 1) / QB, nrec = S * nqb;
    /* pass 1: per block the union size (a key is in the union when any row keeps it) */
    int64_t *nk = calloc((size_t)nrec, sizeof *nk);
    uint8_t *in = malloc((size_t)T);
    MVT_ASSERT(nk && in, "mva_attn_index: out of memory");
    int64_t total_keys = 0, total_bits = 0, kept = 0, maxnk = 0;
    for (int64_t s = 0; s < S; s++)
        for (int64_t qb = 0; qb < nqb; qb++) {
            memset(in, 0, (size_t)T);
            int64_t r1 = (qb + 1) * QB < T ? (qb + 1) * QB : T;
            for (int64_t r = qb * QB; r < r1; r++) {
                int64_t base = (s * T + r) * T;
                for (int64_t j = 0; j < T; j++)
                    if (keep_at(m, dt, base + j)) { in[j] = 1; kept++; }
            }
            int64_t c = 0;
            for (int64_t j = 0; j < T; j++) c += in[j];
            nk[s * nqb + qb] = c;
            total_keys += c;
            total_bits += QB * c;
            if (c > maxnk) maxnk = c;
        }
    int64_t words = IDX_HDR + IDX_REC * nrec + total_keys + (total_bits * (int64_t)sizeof(float) + 7) / 8;
    mvt_tensor *idx = mvt_zeros(MVT_I64, 1, &words);
    int64_t *w = mvt_i64(idx);
    uint8_t *bytes = (uint8_t *)w;
    w[0] = IDX_MAGIC; w[1] = S; w[2] = T; w[3] = QB; w[4] = nqb; w[5] = kept; w[6] = total_bits; w[7] = maxnk;
    int64_t koff = IDX_HDR + IDX_REC * nrec, boff = (koff + total_keys) * 8;
    /* pass 2: the key lists and the biases */
    for (int64_t s = 0; s < S; s++)
        for (int64_t qb = 0; qb < nqb; qb++) {
            int64_t *rec = w + IDX_HDR + IDX_REC * (s * nqb + qb), c = nk[s * nqb + qb];
            int64_t r0 = qb * QB, r1 = (qb + 1) * QB < T ? (qb + 1) * QB : T;
            memset(in, 0, (size_t)T);
            for (int64_t r = r0; r < r1; r++)
                for (int64_t j = 0; j < T; j++)
                    if (keep_at(m, dt, (s * T + r) * T + j)) in[j] = 1;
            int64_t *keys = w + koff, n = 0;
            for (int64_t j = 0; j < T; j++)
                if (in[j]) keys[n++] = j;
            float *bias = (float *)(bytes + boff);
            int64_t ones = 0;
            for (int64_t r = r0; r < r1; r++)
                for (int64_t i = 0; i < c; i++) {
                    bool b = keep_at(m, dt, (s * T + r) * T + keys[i]);
                    bias[(r - r0) * c + i] = b ? 0.0f : -INFINITY;
                    ones += b;
                }
            bool full = ones == (r1 - r0) * c;
            rec[0] = koff;
            rec[1] = c;
            rec[2] = boff;
            rec[3] = (full ? FLAG_FULL : 0) | (c == T ? FLAG_ALLKEYS : 0);
            koff += c;
            boff += QB * c * (int64_t)sizeof(float);
        }
    free(nk);
    free(in);
    mvt_release(mc);
    return idx;
}

static void check_index(const mvt_tensor *idx) {
    MVT_ASSERT(idx && idx->dtype == MVT_I64 && idx->ndim == 1 && idx->shape[0] >= IDX_HDR &&
                   mvt_i64(idx)[0] == IDX_MAGIC,
               "mva_sparse_attention: the index must come from mva_attn_index");
}

double mva_attn_index_density(const mvt_tensor *idx) {
    check_index(idx);
    const int64_t *w = mvt_i64(idx);
    return (double)w[6] / ((double)w[1] * (double)w[2] * (double)w[2]);
}

int64_t mva_attn_index_masks(const mvt_tensor *idx) {
    check_index(idx);
    return mvt_i64(idx)[1];
}

/* ---- kernels ----------------------------------------------------------------------------- */

static inline void gemm_f32(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const float *A,
                            int64_t lda, const float *B, int64_t ldb, double beta, float *C, int64_t ldc) {
    if (M == 0 || N == 0) return;
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)M, (int)N,
                (int)K, (float)alpha, A, (int)lda, B, (int)ldb, (float)beta, C, (int)ldc);
}
static inline void gemm_f64(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const double *A,
                            int64_t lda, const double *B, int64_t ldb, double beta, double *C, int64_t ldc) {
    if (M == 0 || N == 0) return;
    cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)M, (int)N,
                (int)K, alpha, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
}

/* Geometry of one call: q/k/v/out are [B, T, D] contiguous, head h owns columns
 * h*d .. h*d+d. A task is one sample and one group of G consecutive heads (G
 * the largest divisor of H up to 4, fixed by the shapes): the heads of a group
 * share the block's key union, so one gather of G*d contiguous floats per key
 * serves all of them. */
typedef struct {
    int64_t B, T, D, H, d, G;
    double scale;
    const int64_t *w;      /* index words */
    const uint8_t *bytes;  /* the same, as bytes */
} attn_geom;

static int64_t head_group(int64_t H) {
    for (int64_t g = H < 4 ? H : 4; g > 1; g--)
        if (H % g == 0) return g;
    return 1;
}

/* Block record of sample b's mask, query block qb. */
static inline const int64_t *block_rec(const attn_geom *g, int64_t b, int64_t qb) {
    int64_t s = g->w[1] == 1 ? 0 : b;
    return g->w + IDX_HDR + IDX_REC * (s * g->w[4] + qb);
}

/* The score block S [m, nk] starts as the block's bias (0 kept, -inf masked) and
 * the GEMM adds scale Q K^T on top (beta 1); a block every row of which keeps
 * its whole union needs no bias (beta 0). */
#define DEF_SCORE_INIT(NAME, T_)                                                                     \
    static double NAME(T_ *S, const float *bias, bool full, int64_t m, int64_t nk) {                 \
        if (full) return 0.0;                                                                        \
        for (int64_t i = 0; i < m * nk; i++) S[i] = (T_)bias[i];                                     \
        return 1.0;                                                                                  \
    }
DEF_SCORE_INIT(score_init_f32, float)
DEF_SCORE_INIT(score_init_f64, double)

/* Row softmax of the scores sr [nk] (masked keys at -inf), in place; returns
 * the row's log-sum-exp (0 for a row with no kept key, whose probabilities are
 * all zero). f32 runs on the vecmath kernels (SLEEF exp, sums in double) like
 * mvt_softmax; f64 on libm. */
static float row_softmax_f32(float *sr, int64_t nk) {
    double l = mvv_get()->softmax_row_lse(sr, nk);
    return l == -INFINITY ? 0.0f : (float)l;
}
static double row_softmax_f64(double *sr, int64_t nk) {
    double mx = -INFINITY;
    for (int64_t i = 0; i < nk; i++)
        if (sr[i] > mx) mx = sr[i];
    if (mx == -INFINITY) { /* no kept key: zero row, never NaN */
        for (int64_t i = 0; i < nk; i++) sr[i] = 0;
        return 0;
    }
    double sum = 0;
    for (int64_t i = 0; i < nk; i++) {
        double e = exp(sr[i] - mx);
        sr[i] = e;
        sum += e;
    }
    double inv = 1.0 / sum;
    for (int64_t i = 0; i < nk; i++) sr[i] *= inv;
    return mx + log(sum);
}
/* P = exp(S - lse) (masked keys at -inf give 0): the forward's probabilities. */
static void row_probs_f32(float *sr, float l, int64_t nk) { mvv_get()->sub_exp(sr, sr, l, nk); }
static void row_probs_f64(double *sr, double l, int64_t nk) {
    for (int64_t i = 0; i < nk; i++) sr[i] = exp(sr[i] - l);
}
/* dS = P (dP - s) in place of dP, and dst += src */
static void row_ds_f32(float *dp, const float *p, float s, int64_t nk) { mvv_get()->mul_sub(dp, p, s, nk); }
static void row_ds_f64(double *dp, const double *p, double s, int64_t nk) {
    for (int64_t i = 0; i < nk; i++) dp[i] = p[i] * (dp[i] - s);
}
static void add_to_f32(float *dst, const float *src, int64_t n) { mvv_get()->add_to(dst, src, n); }
static void add_to_f64(double *dst, const double *src, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] += src[i];
}

/* sum_c a_c b_c over one head's d columns, in double, four chains in a fixed order */
#define DEF_ROWDOT(NAME, T_)                                                                         \
    static double NAME(const T_ *a, const T_ *b, int64_t d) {                                        \
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;                                                       \
        int64_t c = 0;                                                                               \
        for (; c + 4 <= d; c += 4) {                                                                 \
            s0 += (double)a[c] * b[c];                                                               \
            s1 += (double)a[c + 1] * b[c + 1];                                                       \
            s2 += (double)a[c + 2] * b[c + 2];                                                       \
            s3 += (double)a[c + 3] * b[c + 3];                                                       \
        }                                                                                            \
        for (; c < d; c++) s0 += (double)a[c] * b[c];                                                \
        return (s0 + s1) + (s2 + s3);                                                                \
    }
DEF_ROWDOT(rowdot_f32, float)
DEF_ROWDOT(rowdot_f64, double)

/* The block's key panels of one head group: Kg, Vg [nk, G d] from rows keys[] of
 * the sample's k, v (columns c0 .. c0 + G d). */
#define GATHER(T_, dst, src, keys, nk, D, W)                                                        \
    for (int64_t i_ = 0; i_ < (nk); i_++) memcpy((dst) + i_ * (W), (src) + (keys)[i_] * (D), sizeof(T_) * (size_t)(W))

/* Forward of one (sample, head group): O rows and the log-sum-exp of every row.
 * Per block: S = scale Q_blk K_u^T over the union u (gathered panel), keep
 * bias, row softmax (sums in double), O_blk = P V_u, head by head. */
#define DEF_ATTN_FWD(NAME, T_, GEMM, SCORE_INIT, ROW_SOFTMAX)                                        \
    static void NAME(const attn_geom *g, int64_t b, int64_t hg, const T_ *q, const T_ *k, const T_ *v, \
                     T_ *o, T_ *lse, T_ *ws) {                                                        \
        int64_t T = g->T, D = g->D, d = g->d, G = g->G, W = G * d, QB = g->w[3], nqb = g->w[4];       \
        int64_t maxnk = g->w[7];                                                                     \
        T_ *Kg = ws, *Vg = Kg + maxnk * W, *S = Vg + maxnk * W;                                      \
        int64_t off = b * T * D + hg * W;                                                            \
        const T_ *qb0 = q + off, *kb0 = k + off, *vb0 = v + off;                                     \
        T_ *ob0 = o + off;                                                                           \
        for (int64_t qb = 0; qb < nqb; qb++) {                                                       \
            const int64_t *rec = block_rec(g, b, qb);                                                \
            int64_t r0 = qb * QB, m = T - r0 < QB ? T - r0 : QB, nk = rec[1];                        \
            const int64_t *keys = g->w + rec[0];                                                     \
            const float *bias = (const float *)(g->bytes + rec[2]);                                  \
            if (nk == 0) {                                                                           \
                for (int64_t r = 0; r < m; r++) {                                                    \
                    memset(ob0 + (r0 + r) * D, 0, sizeof(T_) * (size_t)W);                          \
                    for (int64_t h = 0; h < G; h++) lse[((b * g->H + hg * G + h) * T) + r0 + r] = 0;  \
                }                                                                                    \
                continue;                                                                            \
            }                                                                                        \
            const T_ *Kp = kb0, *Vp = vb0;                                                           \
            int64_t ld = D;                                                                          \
            if (!(rec[3] & FLAG_ALLKEYS)) {                                                          \
                GATHER(T_, Kg, kb0, keys, nk, D, W);                                                 \
                GATHER(T_, Vg, vb0, keys, nk, D, W);                                                 \
                Kp = Kg; Vp = Vg; ld = W;                                                            \
            }                                                                                        \
            bool full = rec[3] & FLAG_FULL;                                                          \
            for (int64_t h = 0; h < G; h++) {                                                        \
                T_ *lseb = lse + (b * g->H + hg * G + h) * T;                                        \
                double beta = SCORE_INIT(S, bias, full, m, nk);                                      \
                GEMM(false, true, m, nk, d, g->scale, qb0 + r0 * D + h * d, D, Kp + h * d, ld, beta, S, nk); \
                for (int64_t r = 0; r < m; r++) lseb[r0 + r] = ROW_SOFTMAX(S + r * nk, nk);          \
                GEMM(false, false, m, d, nk, 1.0, S, nk, Vp + h * d, ld, 0.0, ob0 + r0 * D + h * d, D); \
            }                                                                                        \
        }                                                                                            \
    }

/* Backward of one (sample, head group), per block and head (P recomputed from the saved lse):
 *   dP = dO_blk V_u^T,  dS = P (dP - rowsum(dO O)),  dQ_blk += scale dS K_u,
 *   dK_u += scale dS^T Q_blk,  dV_u += P^T dO_blk  (the group's panels, scattered
 *   back to the union's rows once per block). */
#define DEF_ATTN_BWD(NAME, T_, GEMM, SCORE_INIT, ROW_PROBS, ROW_DS, ROWDOT, ADD_TO)               \
    static void NAME(const attn_geom *g, int64_t b, int64_t hg, const T_ *q, const T_ *k, const T_ *v, \
                     const T_ *o, const T_ *lse, const T_ *dy, T_ *dq, T_ *dk, T_ *dv, T_ *ws) {       \
        int64_t T = g->T, D = g->D, d = g->d, G = g->G, W = G * d, QB = g->w[3], nqb = g->w[4];       \
        int64_t maxnk = g->w[7];                                                                     \
        T_ *Kg = ws, *Vg = Kg + maxnk * W, *S = Vg + maxnk * W, *dP = S + QB * maxnk;                 \
        T_ *dKg = dP + QB * maxnk, *dVg = dKg + maxnk * W;                                           \
        int64_t off = b * T * D + hg * W;                                                            \
        for (int64_t qb = 0; qb < nqb; qb++) {                                                       \
            const int64_t *rec = block_rec(g, b, qb);                                                \
            int64_t r0 = qb * QB, m = T - r0 < QB ? T - r0 : QB, nk = rec[1];                        \
            if (nk == 0) continue;                                                                   \
            const int64_t *keys = g->w + rec[0];                                                     \
            const float *bias = (const float *)(g->bytes + rec[2]);                                  \
            bool allk = rec[3] & FLAG_ALLKEYS, full = rec[3] & FLAG_FULL;                            \
            const T_ *Kp = k + off, *Vp = v + off;                                                   \
            int64_t ld = D;                                                                          \
            if (!allk) {                                                                             \
                GATHER(T_, Kg, k + off, keys, nk, D, W);                                             \
                GATHER(T_, Vg, v + off, keys, nk, D, W);                                             \
                Kp = Kg; Vp = Vg; ld = W;                                                            \
            }                                                                                        \
            T_ *dKp = !dk ? NULL : allk ? dk + off : dKg, *dVp = !dv ? NULL : allk ? dv + off : dVg;    \
            int64_t ldg = allk ? D : W;                                                              \
            double beta = allk ? 1.0 : 0.0;                                                          \
            for (int64_t h = 0; h < G; h++) {                                                        \
                const T_ *lseb = lse + (b * g->H + hg * G + h) * T;                                  \
                int64_t hc = h * d;                                                                  \
                const T_ *Qb = q + off + r0 * D + hc, *dOb = dy + off + r0 * D + hc;                 \
                double sbeta = SCORE_INIT(S, bias, full, m, nk);                                     \
                GEMM(false, true, m, nk, d, g->scale, Qb, D, Kp + hc, ld, sbeta, S, nk);             \
                GEMM(false, true, m, nk, d, 1.0, dOb, D, Vp + hc, ld, 0.0, dP, nk);                  \
                for (int64_t r = 0; r < m; r++) {                                                    \
                    T_ *sr = S + r * nk, *pr = dP + r * nk;                                          \
                    T_ s = (T_)ROWDOT(o + off + (r0 + r) * D + hc, dOb + r * D, d);                 \
                    ROW_PROBS(sr, lseb[r0 + r], nk);   /* S: P */                                    \
                    ROW_DS(pr, sr, s, nk);             /* dP: dS */                                  \
                }                                                                                    \
                if (dq) GEMM(false, false, m, d, nk, g->scale, dP, nk, Kp + hc, ld, 1.0, dq + off + r0 * D + hc, D); \
                if (dKp) GEMM(true, false, nk, d, m, g->scale, dP, nk, Qb, D, beta, dKp + hc, ldg);  \
                if (dVp) GEMM(true, false, nk, d, m, 1.0, S, nk, dOb, D, beta, dVp + hc, ldg);       \
            }                                                                                        \
            if (allk) continue;                                                                      \
            for (int64_t i = 0; i < nk; i++) {                                                       \
                if (dk) ADD_TO(dk + off + keys[i] * D, dKg + i * W, W);                              \
                if (dv) ADD_TO(dv + off + keys[i] * D, dVg + i * W, W);                              \
            }                                                                                        \
        }                                                                                            \
    }

DEF_ATTN_FWD(attn_fwd_f32, float, gemm_f32, score_init_f32, row_softmax_f32)
DEF_ATTN_FWD(attn_fwd_f64, double, gemm_f64, score_init_f64, row_softmax_f64)
DEF_ATTN_BWD(attn_bwd_f32, float, gemm_f32, score_init_f32, row_probs_f32, row_ds_f32, rowdot_f32, add_to_f32)
DEF_ATTN_BWD(attn_bwd_f64, double, gemm_f64, score_init_f64, row_probs_f64, row_ds_f64, rowdot_f64, add_to_f64)

/* Workspace elements of one task (forward needs a prefix of it). */
static int64_t ws_elems(const attn_geom *g) {
    int64_t nk = g->w[7] > 0 ? g->w[7] : 1, QB = g->w[3];
    return 4 * nk * g->G * g->d + 2 * QB * nk;
}

/* ---- the op -------------------------------------------------------------------------------- */
/* q, k, v [B, T, H d] -> y [B, T, H d]; saved: [0] the index, [1] lse [B, H, T]. */
mva_var *mva_sparse_attention(mva_var *q, mva_var *k, mva_var *v, const mvt_tensor *index, int heads, double scale) {
    MVT_ASSERT(q && k && v, "autograd: NULL input to sparse_attention");
    check_index(index);
    const mvt_tensor *Q = q->value;
    MVT_ASSERT(Q->ndim == 3 && mvt_same_shape(Q, k->value) && mvt_same_shape(Q, v->value),
               "mva_sparse_attention: q, k, v must be [B, T, D] of one shape");
    MVT_ASSERT(Q->dtype == k->value->dtype && Q->dtype == v->value->dtype &&
                   (Q->dtype == MVT_F32 || Q->dtype == MVT_F64),
               "mva_sparse_attention: q, k, v must share one float dtype");
    const int64_t *w = mvt_i64(index);
    MVT_ASSERT(w[2] == Q->shape[1], "mva_sparse_attention: index is for T = %lld, q has T = %lld", (long long)w[2],
               (long long)Q->shape[1]);
    MVT_ASSERT(w[1] == 1 || w[1] == Q->shape[0], "mva_sparse_attention: index holds %lld masks for a batch of %lld",
               (long long)w[1], (long long)Q->shape[0]);
    MVT_ASSERT(heads > 0 && Q->shape[2] % heads == 0, "mva_sparse_attention: D = %lld not a multiple of %d heads",
               (long long)Q->shape[2], heads);
    mva_var *in[3] = {q, k, v};
    mva_op_params p = {0};
    p.idx = index;
    p.ndim = heads;
    p.s = scale;
    return mva_apply(MVA_OP_SPARSE_ATTENTION, in, 3, &p);
}

static attn_geom geom_of(const mva_node *n, const mvt_tensor *Q, const mvt_tensor *index) {
    attn_geom g;
    g.B = Q->shape[0];
    g.T = Q->shape[1];
    g.D = Q->shape[2];
    g.H = n->p.ndim;
    g.d = g.D / g.H;
    g.G = head_group(g.H);
    g.scale = n->p.s;
    g.w = mvt_i64(index);
    g.bytes = (const uint8_t *)g.w;
    return g;
}

/* Every (sample, head) task of a forward (bwd false: t = q k v y lse) or a backward
 * (t = q k v o lse dy dq dk dv, a NULL gradient is not computed). */
#define PTR(T_, x) ((x) ? (T_ *)mvt_data(x) : NULL)
static void run_tasks(const attn_geom *g, bool bwd, mvt_tensor *const *t) {
    int64_t ngroups = g->H / g->G, ntask = g->B * ngroups, wsz = ws_elems(g);
    int prev = mvt_blas_threads_single();   /* BLAS must not thread inside a task */
    bool f32 = t[0]->dtype == MVT_F32;
    /* dynamic: tasks differ in cost (each view's bands), and a task's outputs depend on
     * nothing but its inputs, so which thread runs it cannot change a bit */
#pragma omp parallel for schedule(dynamic, 1) if (ntask > 1 && mvt_get_num_threads() > 1)
    for (int64_t i = 0; i < ntask; i++) {
        int64_t b = i / ngroups, h = i % ngroups;
        void *ws = malloc((size_t)wsz * (f32 ? sizeof(float) : sizeof(double)));
        MVT_ASSERT(ws != NULL, "sparse_attention: out of memory for a task's workspace");
        if (!bwd && f32) attn_fwd_f32(g, b, h, PTR(float, t[0]), PTR(float, t[1]), PTR(float, t[2]), PTR(float, t[3]),
                                      PTR(float, t[4]), ws);
        else if (!bwd) attn_fwd_f64(g, b, h, PTR(double, t[0]), PTR(double, t[1]), PTR(double, t[2]),
                                    PTR(double, t[3]), PTR(double, t[4]), ws);
        else if (f32) attn_bwd_f32(g, b, h, PTR(float, t[0]), PTR(float, t[1]), PTR(float, t[2]), PTR(float, t[3]),
                                   PTR(float, t[4]), PTR(float, t[5]), PTR(float, t[6]), PTR(float, t[7]),
                                   PTR(float, t[8]), ws);
        else attn_bwd_f64(g, b, h, PTR(double, t[0]), PTR(double, t[1]), PTR(double, t[2]), PTR(double, t[3]),
                          PTR(double, t[4]), PTR(double, t[5]), PTR(double, t[6]), PTR(double, t[7]),
                          PTR(double, t[8]), ws);
        free(ws);
    }
    mvt_blas_threads_restore(prev);
}

mvt_tensor *mva_fwd_sparse_attention(mva_node *n, mvt_tensor *const *x) {
    mvt_tensor *q = mvt_contiguous(x[0]), *k = mvt_contiguous(x[1]), *v = mvt_contiguous(x[2]);
    attn_geom g = geom_of(n, q, n->p.idx);
    mvt_tensor *y = mvt_empty(q->dtype, 3, q->shape);
    int64_t ls[3] = {g.B, g.H, g.T};
    mvt_tensor *lse = mvt_empty(q->dtype, 3, ls);
    mvt_tensor *t[5] = {q, k, v, y, lse};
    run_tasks(&g, false, t);
    n->saved[0] = mvt_retain((mvt_tensor *)n->p.idx);
    n->saved[1] = lse;
    mvt_release(q);
    mvt_release(k);
    mvt_release(v);
    return y;
}

void mva_bwd_sparse_attention(mva_node *n, const mvt_tensor *dy) {
    mva_var *qv = n->inputs[0], *kv = n->inputs[1], *vv = n->inputs[2];
    if (!mva_needs_grad(qv) && !mva_needs_grad(kv) && !mva_needs_grad(vv)) return;
    mvt_tensor *q = mvt_contiguous(qv->value), *k = mvt_contiguous(kv->value), *v = mvt_contiguous(vv->value);
    mvt_tensor *o = mvt_contiguous(n->out->value), *g_dy = mvt_contiguous(dy);
    attn_geom g = geom_of(n, q, n->saved[0]);
    /* gradient buffers are contiguous; the kernels add into them (beta 1) */
    mvt_tensor *t[9] = {q, k, v, o, n->saved[1], g_dy, mva_needs_grad(qv) ? mva_grad_buf(qv) : NULL,
                        mva_needs_grad(kv) ? mva_grad_buf(kv) : NULL, mva_needs_grad(vv) ? mva_grad_buf(vv) : NULL};
    run_tasks(&g, true, t);
    mvt_release(q);
    mvt_release(k);
    mvt_release(v);
    mvt_release(o);
    mvt_release(g_dy);
}
