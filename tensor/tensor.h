/* tensor: n-d arrays (<= 5 dims) of float32/float64 (and int64 indices) over
 * reference-counted, 64-byte aligned storage drawn from a caching pool, plus
 * the raw CPU kernels (OpenBLAS + OpenMP) that autograd, nn and the method use.
 * This is the lowest layer: it includes nothing of the project above it.
 *
 * Conventions
 *  - shapes/strides are in elements; a view shares storage (offset + strides).
 *  - every function returning mvt_tensor* returns a NEW reference (caller
 *    releases with mvt_release); arguments are borrowed.
 *  - kernels accept any strides (they make inputs contiguous internally when
 *    they must) and return contiguous outputs.
 *  - results are bitwise identical for any OMP_NUM_THREADS: static partitions,
 *    every reduction in a fixed order.
 *  - programming errors (shape mismatch inside the library) abort with a
 *    message via MVT_ASSERT; user-facing validation happens at file/CLI
 *    boundaries and reports through mv_error (see error.h).
 */
#ifndef MVEAD_TENSOR_H
#define MVEAD_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MVT_MAX_DIMS 5

typedef enum { MVT_F32 = 0, MVT_F64 = 1, MVT_I64 = 2 } mvt_dtype;

size_t mvt_dtype_size(mvt_dtype dt);
const char *mvt_dtype_name(mvt_dtype dt);

typedef struct mvt_storage {
    void *data;      /* 64-byte aligned */
    size_t nbytes;
    int refcount;
} mvt_storage;

typedef struct mvt_tensor {
    mvt_dtype dtype;
    int ndim;                        /* 0 = scalar */
    int64_t shape[MVT_MAX_DIMS];
    int64_t stride[MVT_MAX_DIMS];    /* elements */
    int64_t offset;                  /* elements from storage->data */
    mvt_storage *storage;
    int refcount;
} mvt_tensor;

#define MVT_ASSERT(cond, ...) \
    do { if (!(cond)) mvt_panic(__FILE__, __LINE__, __VA_ARGS__); } while (0)
void mvt_panic(const char *file, int line, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));

/* ---- threads ---------------------------------------------------------- */
/* Sets OpenMP threads for our kernels (and OpenBLAS's own count, for code
 * that calls cblas directly). The library's matmuls never let BLAS thread:
 * a multi-threaded OpenBLAS gemm is not bitwise reproducible across thread
 * counts, so C is cut into a fixed grid of tiles (from the shapes only), each
 * one single-threaded BLAS call, spread over OpenMP threads. */
void mvt_set_num_threads(int n);
int mvt_get_num_threads(void);
/* For code that calls cblas itself from OpenMP threads (kNN tiles, k-means,
 * the sparse attention's blocks): BLAS to one thread, returning the count to
 * give back to mvt_blas_threads_restore. A threaded call would change bits
 * with its partition and leave OpenBLAS workers spinning against the next
 * OpenMP region. */
/* The calling OpenMP thread's number (0 outside a parallel region), for per-thread scratch. */
int mvt_thread_num(void);
int mvt_blas_threads_single(void);
void mvt_blas_threads_restore(int prev);

/* ---- creation / lifetime ---------------------------------------------- */
mvt_tensor *mvt_empty(mvt_dtype dt, int ndim, const int64_t *shape);   /* uninitialised */
mvt_tensor *mvt_zeros(mvt_dtype dt, int ndim, const int64_t *shape);
mvt_tensor *mvt_full(mvt_dtype dt, int ndim, const int64_t *shape, double value);
mvt_tensor *mvt_from_data(mvt_dtype dt, int ndim, const int64_t *shape, const void *data); /* copies */
mvt_tensor *mvt_scalar(mvt_dtype dt, double value);
mvt_tensor *mvt_empty_like(const mvt_tensor *t);
mvt_tensor *mvt_zeros_like(const mvt_tensor *t);
mvt_tensor *mvt_retain(mvt_tensor *t);   /* returns t */
void mvt_release(mvt_tensor *t);         /* NULL ok */

int64_t mvt_numel(const mvt_tensor *t);
bool mvt_is_contiguous(const mvt_tensor *t);
bool mvt_same_shape(const mvt_tensor *a, const mvt_tensor *b);
void *mvt_data(const mvt_tensor *t);     /* pointer to element 0 (storage + offset) */
float *mvt_f32(const mvt_tensor *t);     /* asserts dtype */
double *mvt_f64(const mvt_tensor *t);
int64_t *mvt_i64(const mvt_tensor *t);
double mvt_get(const mvt_tensor *t, const int64_t *idx);   /* any dtype, any strides */
void mvt_set(mvt_tensor *t, const int64_t *idx, double v);
double mvt_item(const mvt_tensor *t);    /* numel must be 1 */
void mvt_fill(mvt_tensor *t, double v);
/* "[2, 3, 4] f32" into buf */
const char *mvt_shape_str(const mvt_tensor *t, char *buf, size_t n);

/* ---- views (share storage; return new references) --------------------- */
mvt_tensor *mvt_view(const mvt_tensor *t, int ndim, const int64_t *shape);  /* NULL if strides forbid; one dim may be -1 */
mvt_tensor *mvt_reshape(const mvt_tensor *t, int ndim, const int64_t *shape); /* view if possible, else copy */
mvt_tensor *mvt_permute(const mvt_tensor *t, const int *perm);
mvt_tensor *mvt_transpose(const mvt_tensor *t, int d0, int d1);
mvt_tensor *mvt_narrow(const mvt_tensor *t, int dim, int64_t start, int64_t len);
mvt_tensor *mvt_select(const mvt_tensor *t, int dim, int64_t index);   /* drops dim */
mvt_tensor *mvt_unsqueeze(const mvt_tensor *t, int dim);
mvt_tensor *mvt_expand(const mvt_tensor *t, int ndim, const int64_t *shape); /* stride-0 broadcast view */

/* ---- copies ------------------------------------------------------------ */
mvt_tensor *mvt_contiguous(const mvt_tensor *t);  /* retains t itself when already contiguous */
mvt_tensor *mvt_clone(const mvt_tensor *t);       /* always a fresh contiguous copy */
mvt_tensor *mvt_to_dtype(const mvt_tensor *t, mvt_dtype dt);
void mvt_copy_(mvt_tensor *dst, const mvt_tensor *src);   /* same shape (src may broadcast), converts dtype */

/* ---- storage pool ------------------------------------------------------ */
/* Storage is recycled through size-class free lists, so a steady-state
 * training step does not call malloc per op. */
typedef struct { size_t live_bytes, cached_bytes, peak_bytes; uint64_t mallocs, reuses; } mvt_pool_stats;
mvt_pool_stats mvt_pool_get_stats(void);
void mvt_pool_trim(void);   /* frees cached (unused) blocks */

/* Bump arena for scratch memory in kernels and models: mark/reset, 64-byte aligned. */
typedef struct mvt_arena mvt_arena;
mvt_arena *mvt_arena_new(size_t capacity_bytes);
void *mvt_arena_alloc(mvt_arena *a, size_t nbytes);     /* NULL when full */
size_t mvt_arena_mark(const mvt_arena *a);
void mvt_arena_reset(mvt_arena *a, size_t mark);
void mvt_arena_free(mvt_arena *a);

/* ---- kernels (f32 and f64; outputs contiguous, new references) --------- */
/* Axis arguments accept negatives (-1 = last). */

/* matmul: a [..., M, K] x b [..., K, N] -> [..., M, N]. Batch dims
 * broadcast (numpy rules). Transposed views of the last two dims are handed
 * to BLAS as transposes, never copied. */
mvt_tensor *mvt_matmul(const mvt_tensor *a, const mvt_tensor *b);
/* c = alpha * op(a) op(b) + beta * c for 2-D (or batched 3-D with equal
 * batch) contiguous-or-transposed views; c must be contiguous. */
void mvt_gemm(bool trans_a, bool trans_b, double alpha, const mvt_tensor *a,
              const mvt_tensor *b, double beta, mvt_tensor *c);

typedef enum { MVT_ADD, MVT_SUB, MVT_MUL, MVT_DIV, MVT_MAXIMUM } mvt_binop;
mvt_tensor *mvt_binary(mvt_binop op, const mvt_tensor *a, const mvt_tensor *b); /* broadcasting */
mvt_tensor *mvt_add(const mvt_tensor *a, const mvt_tensor *b);
mvt_tensor *mvt_sub(const mvt_tensor *a, const mvt_tensor *b);
mvt_tensor *mvt_mul(const mvt_tensor *a, const mvt_tensor *b);
mvt_tensor *mvt_div(const mvt_tensor *a, const mvt_tensor *b);
/* In place: dst += alpha * src (src broadcasts to dst). */
void mvt_axpy_(mvt_tensor *dst, double alpha, const mvt_tensor *src);
/* Sum src into a tensor of `shape` (reverse of broadcasting) — used by broadcasting backward. */
mvt_tensor *mvt_sum_to_shape(const mvt_tensor *src, int ndim, const int64_t *shape);

typedef enum { MVT_NEG, MVT_EXP, MVT_LOG, MVT_SQRT, MVT_TANH, MVT_GELU, MVT_SQUARE, MVT_ABS, MVT_RECIP } mvt_unop;
mvt_tensor *mvt_unary(mvt_unop op, const mvt_tensor *a);
mvt_tensor *mvt_scale(const mvt_tensor *a, double s);
mvt_tensor *mvt_add_scalar(const mvt_tensor *a, double s);
/* Exact erf GELU: 0.5 x (1 + erf(x / sqrt 2)); backward: dy * gelu'(x).
 * (f32 evaluates it as 0.5 x erfc(-x / sqrt 2), accurate in the negative tail.) */
mvt_tensor *mvt_gelu(const mvt_tensor *x);
mvt_tensor *mvt_gelu_backward(const mvt_tensor *x, const mvt_tensor *dy);
/* The same from the forward's output y = gelu(x): f32 takes Phi(x) = y / x
 * instead of a second erf (within 3 ulp); f64 ignores y. */
mvt_tensor *mvt_gelu_backward_y(const mvt_tensor *x, const mvt_tensor *y, const mvt_tensor *dy);
/* In place (contiguous x): the bits of mvt_gelu. */
void mvt_gelu_(mvt_tensor *x);
/* y = x + a * s with s [D] broadcast over the last axis (NULL: y = x + a); x, a one shape. */
mvt_tensor *mvt_add_scaled(const mvt_tensor *x, const mvt_tensor *a, const mvt_tensor *s);

mvt_tensor *mvt_sum(const mvt_tensor *a, int axis, bool keepdim);
mvt_tensor *mvt_sum_all(const mvt_tensor *a);             /* scalar */
mvt_tensor *mvt_mean(const mvt_tensor *a, int axis, bool keepdim);
/* Max along axis; *argmax (MVT_I64, same shape as result) if non-NULL. Ties -> lowest index. */
mvt_tensor *mvt_max(const mvt_tensor *a, int axis, bool keepdim, mvt_tensor **argmax);
mvt_tensor *mvt_min(const mvt_tensor *a, int axis, bool keepdim, mvt_tensor **argmin);

/* Softmax over the last axis. mask (NULL or any dtype, broadcastable to x;
 * nonzero = keep): masked entries get probability 0; a row with no kept entry
 * is all zeros (never NaN). */
mvt_tensor *mvt_softmax(const mvt_tensor *x, const mvt_tensor *mask);
/* softmax(scale * x) with the same mask rule, in one pass (attention's 1/sqrt(d)).
 * Its backward is scale * mvt_softmax_backward(y, dy). */
mvt_tensor *mvt_softmax_scaled(const mvt_tensor *x, double scale, const mvt_tensor *mask);
/* dx = y * (dy - sum(dy * y)) row-wise (zero rows stay zero). */
mvt_tensor *mvt_softmax_backward(const mvt_tensor *y, const mvt_tensor *dy);

/* LayerNorm over the last axis: x [..., D], w/b [D] (either may be NULL).
 * mean/rstd [...] are returned when the pointers are non-NULL. */
mvt_tensor *mvt_layernorm(const mvt_tensor *x, const mvt_tensor *w, const mvt_tensor *b,
                          double eps, mvt_tensor **mean, mvt_tensor **rstd);
/* Accumulates (+=) into dx, dw, db when non-NULL (contiguous, same shapes as x, w, b). */
void mvt_layernorm_backward(const mvt_tensor *dy, const mvt_tensor *x, const mvt_tensor *w,
                            const mvt_tensor *mean, const mvt_tensor *rstd,
                            mvt_tensor *dx, mvt_tensor *dw, mvt_tensor *db);

mvt_tensor *mvt_concat(const mvt_tensor *const *ts, int n, int axis);
/* out = a.index_select(axis, idx), idx MVT_I64 1-D. */
mvt_tensor *mvt_index_select(const mvt_tensor *a, int axis, const mvt_tensor *idx);
/* dst.index_add_(axis, idx, src): dst[..., idx[i], ...] += src[..., i, ...] (fixed order). */
void mvt_index_add_(mvt_tensor *dst, int axis, const mvt_tensor *idx, const mvt_tensor *src);

/* Patch extraction for a stride = kernel = P conv: img [B, C, H, W] ->
 * cols [B, (H/P)(W/P), C*P*P] with column index c*P*P + ky*P + kx (matches
 * a conv weight [O, C, P, P] reshaped to [O, C*P*P]). */
mvt_tensor *mvt_im2col(const mvt_tensor *img, int P);
/* Adjoint of im2col: cols -> img [B, C, H, W]. */
mvt_tensor *mvt_col2im(const mvt_tensor *cols, int64_t B, int64_t C, int64_t H, int64_t W, int P);

/* Resampling of the last two dims [..., H, W] -> [..., oh, ow], PyTorch
 * F.interpolate semantics. Bicubic uses A = -0.75 and clamped borders.
 * align_corners=false uses half-pixel centres; scale_h/scale_w > 0 override
 * the step (PyTorch's scale_factor path: src = (dst + 0.5) / scale - 0.5). */
typedef enum { MVT_BILINEAR, MVT_BICUBIC, MVT_NEAREST } mvt_resample_mode;
mvt_tensor *mvt_resize(const mvt_tensor *x, int64_t oh, int64_t ow, mvt_resample_mode mode,
                       bool align_corners, double scale_h, double scale_w);
/* Adjoint: dy [..., oh, ow] -> dx [..., H, W]. */
mvt_tensor *mvt_resize_backward(const mvt_tensor *dy, int64_t H, int64_t W, mvt_resample_mode mode,
                                bool align_corners, double scale_h, double scale_w);

/* Pairwise squared Euclidean distances a [M, D], b [N, D] -> [M, N] through
 * GEMM (||a||^2 + ||b||^2 - 2 a b^T, clamped at 0). */
mvt_tensor *mvt_pairwise_sqdist(const mvt_tensor *a, const mvt_tensor *b);

/* ---- naive references (tests only; plain loops, any dtype, f64 accumulation) */
mvt_tensor *mvt_ref_matmul(const mvt_tensor *a, const mvt_tensor *b);
mvt_tensor *mvt_ref_softmax(const mvt_tensor *x, const mvt_tensor *mask);
mvt_tensor *mvt_ref_softmax_scaled(const mvt_tensor *x, double scale, const mvt_tensor *mask);
mvt_tensor *mvt_ref_layernorm(const mvt_tensor *x, const mvt_tensor *w, const mvt_tensor *b, double eps);
mvt_tensor *mvt_ref_resize(const mvt_tensor *x, int64_t oh, int64_t ow, mvt_resample_mode mode,
                           bool align_corners, double scale_h, double scale_w);
mvt_tensor *mvt_ref_pairwise_sqdist(const mvt_tensor *a, const mvt_tensor *b);

/* ---- comparison helpers ------------------------------------------------ */
/* max |a - b| and the flat index where it occurs (shapes must match). */
double mvt_max_abs_diff(const mvt_tensor *a, const mvt_tensor *b, int64_t *where);
double mvt_max_abs(const mvt_tensor *a);
bool mvt_all_finite(const mvt_tensor *a);

/* ---- random numbers (deterministic, counter-based) --------------------- */
/* The one seeded stream function: splitmix64, which advances *state and
 * returns its next output. It seeds mvt_rng and is the private stream of the
 * code whose draws must depend on its own seed alone (coreset projection,
 * k-means++, RANSAC). */
static inline uint64_t mvt_splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
typedef struct { uint64_t s[4]; } mvt_rng;          /* xoshiro256** */
void mvt_rng_seed(mvt_rng *r, uint64_t seed);
uint64_t mvt_rng_next(mvt_rng *r);
double mvt_rng_uniform(mvt_rng *r);                 /* [0, 1) */
double mvt_rng_normal(mvt_rng *r);
void mvt_fill_normal(mvt_tensor *t, mvt_rng *r, double mean, double std);
void mvt_fill_uniform(mvt_tensor *t, mvt_rng *r, double lo, double hi);


/* ---- notes on threads and BLAS ------------------------------------------
 * Multi-threaded OpenBLAS is not bitwise reproducible across thread counts
 * (0.3.21: the result of an element depends on how M/N are cut). So
 * mvt_matmul/mvt_gemm never let BLAS thread: C is cut into a fixed grid of
 * tiles (about 256 x 256, depending on shapes only), each tile is one
 * single-threaded BLAS call, tiles and batch entries are spread over OpenMP
 * threads. Code calling cblas_* directly gives up that guarantee. */

/* ---- helpers for kernel writers (tensor kernels, autograd, nn) -------------- */
/* Normalises a possibly negative axis; aborts when out of range. */
int mvt_norm_axis(int axis, int ndim);
/* numpy broadcast of two shapes into out (MVT_MAX_DIMS); false if incompatible. */
bool mvt_broadcast_shapes(int na, const int64_t *sa, int nb, const int64_t *sb,
                          int *nout, int64_t *out);
/* Element offset of row-major flat index `flat` over (shape, stride). */
int64_t mvt_offset_of(int ndim, const int64_t *shape, const int64_t *stride, int64_t flat);
/* Merges adjacent dims that are contiguous in all nt stride arrays (drops
 * size-1 dims); rewrites shape/strides in place and returns the new ndim (>= 1). */
int mvt_coalesce(int ndim, int64_t *shape, int nt, int64_t **strides);
/* Reads/writes element `off` (elements) of base as double, any dtype. */
double mvt_load(const void *base, mvt_dtype dt, int64_t off);
void mvt_store(void *base, mvt_dtype dt, int64_t off, double v);

#ifdef __cplusplus
}
#endif
#endif
