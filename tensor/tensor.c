/* tensor core: dtypes, creation/lifetime, element access, views, copies,
 * thread control, random numbers and comparison helpers. Kernels live in
 * blas.c, elementwise.c, reduce.c, softmax.c, layernorm.c, resample.c; the
 * storage pool and the bump arena in arena.c. */
#include "config.h"
#include "tensor/tensor.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include <cblas.h>

/* implemented in arena.c */
mvt_storage *mvt__storage_new(size_t nbytes);
void mvt__storage_release(mvt_storage *s);
mvt_tensor *mvt__tensor_struct_new(void);
void mvt__tensor_struct_free(mvt_tensor *t);

size_t mvt_dtype_size(mvt_dtype dt) {
    switch (dt) {
    case MVT_F32: return 4;
    case MVT_F64: return 8;
    case MVT_I64: return 8;
    }
    mvt_panic(__FILE__, __LINE__, "bad dtype %d", (int)dt);
}

const char *mvt_dtype_name(mvt_dtype dt) {
    switch (dt) {
    case MVT_F32: return "f32";
    case MVT_F64: return "f64";
    case MVT_I64: return "i64";
    }
    return "?";
}

void mvt_panic(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "mvead: internal error at %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    abort();
}

/* ---- threads ---------------------------------------------------------- */

static int g_num_threads = 0;   /* 0 = not set yet: use the OpenMP default */

void mvt_set_num_threads(int n) {
    if (n < 1) n = 1;
    g_num_threads = n;
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
#ifdef HAVE_OPENBLAS_SET_NUM_THREADS
    openblas_set_num_threads(n);
#endif
}

int mvt_thread_num(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

int mvt_blas_threads_single(void) {
#ifdef HAVE_OPENBLAS_SET_NUM_THREADS
    int prev = openblas_get_num_threads();
    if (prev != 1) openblas_set_num_threads(1);
    return prev;
#else
    return 1;
#endif
}

void mvt_blas_threads_restore(int prev) {
#ifdef HAVE_OPENBLAS_SET_NUM_THREADS
    if (prev != 1) openblas_set_num_threads(prev);
#else
    (void)prev;
#endif
}

int mvt_get_num_threads(void) {
    if (g_num_threads > 0) return g_num_threads;
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/* ---- shape helpers ------------------------------------------------------ */

int mvt_norm_axis(int axis, int ndim) {
    int a = axis < 0 ? axis + ndim : axis;
    MVT_ASSERT(a >= 0 && a < (ndim > 0 ? ndim : 1), "axis %d out of range for %d dims", axis, ndim);
    return a;
}

bool mvt_broadcast_shapes(int na, const int64_t *sa, int nb, const int64_t *sb,
                          int *nout, int64_t *out) {
    int n = na > nb ? na : nb;
    for (int i = 0; i < n; i++) {
        int ia = i - (n - na), ib = i - (n - nb);
        int64_t da = ia >= 0 ? sa[ia] : 1, db = ib >= 0 ? sb[ib] : 1;
        if (da == db || db == 1) out[i] = da;
        else if (da == 1) out[i] = db;
        else return false;
    }
    *nout = n;
    return true;
}

int64_t mvt_offset_of(int ndim, const int64_t *shape, const int64_t *stride, int64_t flat) {
    int64_t off = 0;
    for (int d = ndim - 1; d >= 0; d--) {
        int64_t s = shape[d];
        if (s <= 1) continue;
        off += (flat % s) * stride[d];
        flat /= s;
    }
    return off;
}

int mvt_coalesce(int ndim, int64_t *shape, int nt, int64_t **strides) {
    if (ndim <= 1) return ndim;
    /* drop size-1 dims first (their strides are irrelevant) */
    int m = 0;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] == 1) continue;
        shape[m] = shape[d];
        for (int k = 0; k < nt; k++) strides[k][m] = strides[k][d];
        m++;
    }
    if (m == 0) { shape[0] = 1; for (int k = 0; k < nt; k++) strides[k][0] = 1; return 1; }
    int out = 0;
    for (int d = 1; d < m; d++) {
        bool merge = true;
        for (int k = 0; k < nt; k++)
            if (strides[k][out] != strides[k][d] * shape[d]) { merge = false; break; }
        if (merge) {
            shape[out] *= shape[d];
            for (int k = 0; k < nt; k++) strides[k][out] = strides[k][d];
        } else {
            out++;
            shape[out] = shape[d];
            for (int k = 0; k < nt; k++) strides[k][out] = strides[k][d];
        }
    }
    return out + 1;
}

/* ---- creation / lifetime ---------------------------------------------- */

static void set_contiguous_strides(mvt_tensor *t) {
    int64_t s = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        t->stride[d] = s;
        s *= t->shape[d] > 0 ? t->shape[d] : 1;
    }
}

mvt_tensor *mvt_empty(mvt_dtype dt, int ndim, const int64_t *shape) {
    MVT_ASSERT(ndim >= 0 && ndim <= MVT_MAX_DIMS, "ndim %d out of range", ndim);
    mvt_tensor *t = mvt__tensor_struct_new();
    t->dtype = dt;
    t->ndim = ndim;
    int64_t n = 1;
    for (int d = 0; d < MVT_MAX_DIMS; d++) { t->shape[d] = 1; t->stride[d] = 0; }
    for (int d = 0; d < ndim; d++) {
        MVT_ASSERT(shape[d] >= 0, "negative size %lld in dim %d", (long long)shape[d], d);
        t->shape[d] = shape[d];
        n *= shape[d];
    }
    set_contiguous_strides(t);
    t->offset = 0;
    t->storage = mvt__storage_new((size_t)n * mvt_dtype_size(dt));
    t->refcount = 1;
    return t;
}

mvt_tensor *mvt_zeros(mvt_dtype dt, int ndim, const int64_t *shape) {
    mvt_tensor *t = mvt_empty(dt, ndim, shape);
    memset(t->storage->data, 0, (size_t)mvt_numel(t) * mvt_dtype_size(dt));
    return t;
}

mvt_tensor *mvt_full(mvt_dtype dt, int ndim, const int64_t *shape, double value) {
    mvt_tensor *t = mvt_empty(dt, ndim, shape);
    mvt_fill(t, value);
    return t;
}

mvt_tensor *mvt_from_data(mvt_dtype dt, int ndim, const int64_t *shape, const void *data) {
    mvt_tensor *t = mvt_empty(dt, ndim, shape);
    if (mvt_numel(t) > 0) memcpy(t->storage->data, data, (size_t)mvt_numel(t) * mvt_dtype_size(dt));
    return t;
}

mvt_tensor *mvt_scalar(mvt_dtype dt, double value) { return mvt_full(dt, 0, NULL, value); }
mvt_tensor *mvt_empty_like(const mvt_tensor *t) { return mvt_empty(t->dtype, t->ndim, t->shape); }
mvt_tensor *mvt_zeros_like(const mvt_tensor *t) { return mvt_zeros(t->dtype, t->ndim, t->shape); }

mvt_tensor *mvt_retain(mvt_tensor *t) {
    if (t) __atomic_fetch_add(&t->refcount, 1, __ATOMIC_RELAXED);
    return t;
}

void mvt_release(mvt_tensor *t) {
    if (!t) return;
    if (__atomic_sub_fetch(&t->refcount, 1, __ATOMIC_ACQ_REL) != 0) return;
    mvt__storage_release(t->storage);
    mvt__tensor_struct_free(t);
}

int64_t mvt_numel(const mvt_tensor *t) {
    int64_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
    return n;
}

bool mvt_is_contiguous(const mvt_tensor *t) {
    int64_t s = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->shape[d] == 0) return true;
        if (t->shape[d] != 1 && t->stride[d] != s) return false;
        s *= t->shape[d];
    }
    return true;
}

bool mvt_same_shape(const mvt_tensor *a, const mvt_tensor *b) {
    if (a->ndim != b->ndim) return false;
    for (int d = 0; d < a->ndim; d++) if (a->shape[d] != b->shape[d]) return false;
    return true;
}

void *mvt_data(const mvt_tensor *t) {
    return (char *)t->storage->data + t->offset * (int64_t)mvt_dtype_size(t->dtype);
}
float *mvt_f32(const mvt_tensor *t) {
    MVT_ASSERT(t->dtype == MVT_F32, "expected f32 tensor, got %s", mvt_dtype_name(t->dtype));
    return (float *)mvt_data(t);
}
double *mvt_f64(const mvt_tensor *t) {
    MVT_ASSERT(t->dtype == MVT_F64, "expected f64 tensor, got %s", mvt_dtype_name(t->dtype));
    return (double *)mvt_data(t);
}
int64_t *mvt_i64(const mvt_tensor *t) {
    MVT_ASSERT(t->dtype == MVT_I64, "expected i64 tensor, got %s", mvt_dtype_name(t->dtype));
    return (int64_t *)mvt_data(t);
}

double mvt_load(const void *base, mvt_dtype dt, int64_t off) {
    switch (dt) {
    case MVT_F32: return ((const float *)base)[off];
    case MVT_F64: return ((const double *)base)[off];
    case MVT_I64: return (double)((const int64_t *)base)[off];
    }
    return 0;
}

void mvt_store(void *base, mvt_dtype dt, int64_t off, double v) {
    switch (dt) {
    case MVT_F32: ((float *)base)[off] = (float)v; break;
    case MVT_F64: ((double *)base)[off] = v; break;
    case MVT_I64: ((int64_t *)base)[off] = (int64_t)v; break;
    }
}

static int64_t index_offset(const mvt_tensor *t, const int64_t *idx) {
    int64_t off = 0;
    for (int d = 0; d < t->ndim; d++) {
        MVT_ASSERT(idx[d] >= 0 && idx[d] < t->shape[d], "index %lld out of range in dim %d (size %lld)",
                   (long long)idx[d], d, (long long)t->shape[d]);
        off += idx[d] * t->stride[d];
    }
    return off;
}

double mvt_get(const mvt_tensor *t, const int64_t *idx) {
    return mvt_load(mvt_data(t), t->dtype, index_offset(t, idx));
}

void mvt_set(mvt_tensor *t, const int64_t *idx, double v) {
    mvt_store(mvt_data(t), t->dtype, index_offset(t, idx), v);
}

double mvt_item(const mvt_tensor *t) {
    MVT_ASSERT(mvt_numel(t) == 1, "item() of a tensor with %lld elements", (long long)mvt_numel(t));
    return mvt_load(mvt_data(t), t->dtype, 0);
}

void mvt_fill(mvt_tensor *t, double v) {
    mvt_tensor *s = mvt_empty(t->dtype, 0, NULL);
    mvt_store(mvt_data(s), s->dtype, 0, v);
    mvt_copy_(t, s);
    mvt_release(s);
}

const char *mvt_shape_str(const mvt_tensor *t, char *buf, size_t n) {
    size_t used = 0;
    if (n == 0) return buf;
    buf[0] = 0;
    used += (size_t)snprintf(buf + used, used < n ? n - used : 0, "[");
    for (int d = 0; d < t->ndim; d++)
        used += (size_t)snprintf(buf + (used < n ? used : n - 1), used < n ? n - used : 1, "%s%lld",
                                 d ? ", " : "", (long long)t->shape[d]);
    snprintf(buf + (used < n ? used : n - 1), used < n ? n - used : 1, "] %s", mvt_dtype_name(t->dtype));
    return buf;
}

/* ---- views --------------------------------------------------------------- */

static mvt_tensor *new_view(const mvt_tensor *t) {
    mvt_tensor *v = mvt__tensor_struct_new();
    *v = *t;
    v->refcount = 1;
    __atomic_fetch_add(&t->storage->refcount, 1, __ATOMIC_RELAXED);
    return v;
}

/* Resolves a -1 entry; returns false when sizes do not match numel. */
static bool infer_shape(int64_t numel, int ndim, const int64_t *shape, int64_t *out) {
    int neg = -1;
    int64_t prod = 1;
    for (int d = 0; d < ndim; d++) {
        out[d] = shape[d];
        if (shape[d] == -1) {
            MVT_ASSERT(neg < 0, "only one dim may be -1");
            neg = d;
        } else {
            MVT_ASSERT(shape[d] >= 0, "bad size %lld", (long long)shape[d]);
            prod *= shape[d];
        }
    }
    if (neg >= 0) {
        MVT_ASSERT(prod > 0 && numel % prod == 0, "cannot infer -1 for %lld elements", (long long)numel);
        out[neg] = numel / prod;
        prod *= out[neg];
    }
    return prod == numel;
}

/* PyTorch's computeStride: strides of a view with newshape over (oldshape,
 * oldstride), or false when the memory layout forbids a view. */
static bool compute_view_strides(int on, const int64_t *oshape, const int64_t *ostride,
                                 int nn, const int64_t *nshape, int64_t *nstride) {
    int64_t numel = 1;
    for (int d = 0; d < on; d++) numel *= oshape[d];
    if (numel == 0 || on == 0) {
        int64_t s = 1;
        for (int d = nn - 1; d >= 0; d--) { nstride[d] = s; s *= nshape[d] > 0 ? nshape[d] : 1; }
        return true;
    }
    int view_d = nn - 1;
    int64_t chunk_base_stride = ostride[on - 1];
    int64_t tensor_numel = 1, view_numel = 1;
    for (int tensor_d = on - 1; tensor_d >= 0; tensor_d--) {
        tensor_numel *= oshape[tensor_d];
        if (tensor_d == 0 ||
            (oshape[tensor_d - 1] != 1 && ostride[tensor_d - 1] != tensor_numel * chunk_base_stride)) {
            while (view_d >= 0 && (view_numel < tensor_numel || nshape[view_d] == 1)) {
                nstride[view_d] = view_numel * chunk_base_stride;
                view_numel *= nshape[view_d];
                view_d--;
            }
            if (view_numel != tensor_numel) return false;
            if (tensor_d > 0) {
                chunk_base_stride = ostride[tensor_d - 1];
                tensor_numel = 1;
                view_numel = 1;
            }
        }
    }
    return view_d == -1;
}

mvt_tensor *mvt_view(const mvt_tensor *t, int ndim, const int64_t *shape) {
    MVT_ASSERT(ndim >= 0 && ndim <= MVT_MAX_DIMS, "view: ndim %d out of range", ndim);
    int64_t ns[MVT_MAX_DIMS], nst[MVT_MAX_DIMS];
    MVT_ASSERT(infer_shape(mvt_numel(t), ndim, shape, ns), "view: shape does not match %lld elements",
               (long long)mvt_numel(t));
    if (!compute_view_strides(t->ndim, t->shape, t->stride, ndim, ns, nst)) return NULL;
    mvt_tensor *v = new_view(t);
    v->ndim = ndim;
    for (int d = 0; d < MVT_MAX_DIMS; d++) { v->shape[d] = 1; v->stride[d] = 0; }
    for (int d = 0; d < ndim; d++) { v->shape[d] = ns[d]; v->stride[d] = nst[d]; }
    return v;
}

mvt_tensor *mvt_reshape(const mvt_tensor *t, int ndim, const int64_t *shape) {
    mvt_tensor *v = mvt_view(t, ndim, shape);
    if (v) return v;
    mvt_tensor *c = mvt_clone(t);
    v = mvt_view(c, ndim, shape);
    mvt_release(c);
    return v;
}

mvt_tensor *mvt_permute(const mvt_tensor *t, const int *perm) {
    mvt_tensor *v = new_view(t);
    bool seen[MVT_MAX_DIMS] = {0};
    for (int d = 0; d < t->ndim; d++) {
        int p = mvt_norm_axis(perm[d], t->ndim);
        MVT_ASSERT(!seen[p], "permute: dim %d repeated", p);
        seen[p] = true;
        v->shape[d] = t->shape[p];
        v->stride[d] = t->stride[p];
    }
    return v;
}

mvt_tensor *mvt_transpose(const mvt_tensor *t, int d0, int d1) {
    d0 = mvt_norm_axis(d0, t->ndim);
    d1 = mvt_norm_axis(d1, t->ndim);
    mvt_tensor *v = new_view(t);
    v->shape[d0] = t->shape[d1]; v->stride[d0] = t->stride[d1];
    v->shape[d1] = t->shape[d0]; v->stride[d1] = t->stride[d0];
    return v;
}

mvt_tensor *mvt_narrow(const mvt_tensor *t, int dim, int64_t start, int64_t len) {
    dim = mvt_norm_axis(dim, t->ndim);
    MVT_ASSERT(start >= 0 && len >= 0 && start + len <= t->shape[dim],
               "narrow: [%lld, %lld) out of range for size %lld", (long long)start,
               (long long)(start + len), (long long)t->shape[dim]);
    mvt_tensor *v = new_view(t);
    v->shape[dim] = len;
    v->offset += start * t->stride[dim];
    return v;
}

mvt_tensor *mvt_select(const mvt_tensor *t, int dim, int64_t index) {
    dim = mvt_norm_axis(dim, t->ndim);
    if (index < 0) index += t->shape[dim];
    MVT_ASSERT(index >= 0 && index < t->shape[dim], "select: index %lld out of range for size %lld",
               (long long)index, (long long)t->shape[dim]);
    mvt_tensor *v = new_view(t);
    v->offset += index * t->stride[dim];
    for (int d = dim; d < t->ndim - 1; d++) {
        v->shape[d] = t->shape[d + 1];
        v->stride[d] = t->stride[d + 1];
    }
    v->ndim = t->ndim - 1;
    v->shape[v->ndim] = 1;
    v->stride[v->ndim] = 0;
    return v;
}

mvt_tensor *mvt_unsqueeze(const mvt_tensor *t, int dim) {
    MVT_ASSERT(t->ndim < MVT_MAX_DIMS, "unsqueeze: too many dims");
    if (dim < 0) dim += t->ndim + 1;
    MVT_ASSERT(dim >= 0 && dim <= t->ndim, "unsqueeze: dim out of range");
    mvt_tensor *v = new_view(t);
    for (int d = t->ndim; d > dim; d--) {
        v->shape[d] = t->shape[d - 1];
        v->stride[d] = t->stride[d - 1];
    }
    v->shape[dim] = 1;
    v->stride[dim] = dim < t->ndim ? t->stride[dim] * t->shape[dim] : 1;
    v->ndim = t->ndim + 1;
    return v;
}

mvt_tensor *mvt_expand(const mvt_tensor *t, int ndim, const int64_t *shape) {
    MVT_ASSERT(ndim >= t->ndim && ndim <= MVT_MAX_DIMS, "expand: %d dims to %d", t->ndim, ndim);
    mvt_tensor *v = new_view(t);
    int lead = ndim - t->ndim;
    for (int d = 0; d < ndim; d++) {
        int s = d - lead;
        int64_t want = shape[d];
        if (s < 0) {
            MVT_ASSERT(want >= 0, "expand: new leading dim cannot be -1");
            v->shape[d] = want;
            v->stride[d] = 0;
        } else {
            int64_t have = t->shape[s];
            if (want == -1) want = have;
            MVT_ASSERT(have == want || have == 1, "expand: size %lld cannot expand to %lld in dim %d",
                       (long long)have, (long long)want, d);
            v->shape[d] = want;
            v->stride[d] = (have == want) ? t->stride[s] : 0;
        }
    }
    v->ndim = ndim;
    return v;
}

/* ---- copies ------------------------------------------------------------ */

#define COPY_BLOCK 16384

/* dst (any strides, no overlap) = src expanded to dst's shape; dtype conversion. */
void mvt_copy_(mvt_tensor *dst, const mvt_tensor *src) {
    mvt_tensor *s = mvt_expand(src, dst->ndim, dst->shape);
    int64_t shape[MVT_MAX_DIMS], sd[MVT_MAX_DIMS], ss[MVT_MAX_DIMS];
    int nd = dst->ndim;
    for (int d = 0; d < nd; d++) { shape[d] = dst->shape[d]; sd[d] = dst->stride[d]; ss[d] = s->stride[d]; }
    if (nd == 0) { shape[0] = 1; sd[0] = 1; ss[0] = 1; nd = 1; }
    int64_t *strides[2] = {sd, ss};
    nd = mvt_coalesce(nd, shape, 2, strides);
    int64_t numel = 1;
    for (int d = 0; d < nd; d++) numel *= shape[d];
    if (numel == 0) { mvt_release(s); return; }
    int64_t n = shape[nd - 1], rows = numel / n;
    int64_t bpr = (n + COPY_BLOCK - 1) / COPY_BLOCK, nblk = rows * bpr;
    int64_t sdl = sd[nd - 1], ssl = ss[nd - 1];
    char *db = mvt_data(dst);
    const char *sb = mvt_data(s);
    mvt_dtype dt = dst->dtype, st = s->dtype;
    size_t es = mvt_dtype_size(dt);
#pragma omp parallel for schedule(static) if (numel > 32768)
    for (int64_t b = 0; b < nblk; b++) {
        int64_t row = b / bpr, j0 = (b % bpr) * COPY_BLOCK, j1 = j0 + COPY_BLOCK < n ? j0 + COPY_BLOCK : n;
        int64_t od = mvt_offset_of(nd - 1, shape, sd, row), os = mvt_offset_of(nd - 1, shape, ss, row);
        if (dt == st) {
            if (sdl == 1 && ssl == 1) {
                memcpy(db + (od + j0) * (int64_t)es, sb + (os + j0) * (int64_t)es, (size_t)(j1 - j0) * es);
            } else if (es == 4) {
                float *d = (float *)db + od;
                const float *x = (const float *)sb + os;
                for (int64_t j = j0; j < j1; j++) d[j * sdl] = x[j * ssl];
            } else {
                uint64_t *d = (uint64_t *)db + od;   /* 8-byte types: copy bits */
                const uint64_t *x = (const uint64_t *)sb + os;
                for (int64_t j = j0; j < j1; j++) d[j * sdl] = x[j * ssl];
            }
        } else {
            for (int64_t j = j0; j < j1; j++)
                mvt_store(db, dt, od + j * sdl, mvt_load(sb, st, os + j * ssl));
        }
    }
    mvt_release(s);
}

mvt_tensor *mvt_clone(const mvt_tensor *t) {
    mvt_tensor *c = mvt_empty(t->dtype, t->ndim, t->shape);
    mvt_copy_(c, t);
    return c;
}

mvt_tensor *mvt_contiguous(const mvt_tensor *t) {
    if (mvt_is_contiguous(t)) return mvt_retain((mvt_tensor *)t);
    return mvt_clone(t);
}

mvt_tensor *mvt_to_dtype(const mvt_tensor *t, mvt_dtype dt) {
    mvt_tensor *c = mvt_empty(dt, t->ndim, t->shape);
    mvt_copy_(c, t);
    return c;
}

/* ---- comparison helpers ------------------------------------------------ */

double mvt_max_abs_diff(const mvt_tensor *a, const mvt_tensor *b, int64_t *where) {
    char sa[128], sb[128];
    MVT_ASSERT(mvt_numel(a) == mvt_numel(b) && (mvt_same_shape(a, b) || mvt_numel(a) <= 1),
               "max_abs_diff: shapes %s and %s differ", mvt_shape_str(a, sa, sizeof sa),
               mvt_shape_str(b, sb, sizeof sb));
    int64_t n = mvt_numel(a);
    double worst = 0;
    int64_t wi = 0;
    const void *pa = mvt_data(a), *pb = mvt_data(b);
    for (int64_t i = 0; i < n; i++) {
        double x = mvt_load(pa, a->dtype, mvt_offset_of(a->ndim, a->shape, a->stride, i));
        double y = mvt_load(pb, b->dtype, mvt_offset_of(b->ndim, b->shape, b->stride, i));
        double d;
        if (isnan(x) || isnan(y)) d = (isnan(x) && isnan(y)) ? 0 : INFINITY;
        else if (x == y) d = 0;   /* equal infinities */
        else d = fabs(x - y);
        if (d > worst) { worst = d; wi = i; }
    }
    if (where) *where = wi;
    return worst;
}

double mvt_max_abs(const mvt_tensor *a) {
    int64_t n = mvt_numel(a);
    double m = 0;
    const void *p = mvt_data(a);
    for (int64_t i = 0; i < n; i++) {
        double x = fabs(mvt_load(p, a->dtype, mvt_offset_of(a->ndim, a->shape, a->stride, i)));
        if (isnan(x)) return NAN;
        if (x > m) m = x;
    }
    return m;
}

bool mvt_all_finite(const mvt_tensor *a) {
    int64_t n = mvt_numel(a);
    const void *p = mvt_data(a);
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(mvt_load(p, a->dtype, mvt_offset_of(a->ndim, a->shape, a->stride, i)))) return false;
    return true;
}

/* ---- random numbers ---------------------------------------------------- */

void mvt_rng_seed(mvt_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = mvt_splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t mvt_rng_next(mvt_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double mvt_rng_uniform(mvt_rng *r) { return (double)(mvt_rng_next(r) >> 11) * 0x1.0p-53; }

double mvt_rng_normal(mvt_rng *r) {
    /* Box-Muller, one value per call so the stream position is simple to reason about */
    double u1 = mvt_rng_uniform(r), u2 = mvt_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* Fill in logical (row-major) order so results do not depend on strides. */
void mvt_fill_normal(mvt_tensor *t, mvt_rng *r, double mean, double std) {
    int64_t n = mvt_numel(t);
    void *p = mvt_data(t);
    for (int64_t i = 0; i < n; i++)
        mvt_store(p, t->dtype, mvt_offset_of(t->ndim, t->shape, t->stride, i), mean + std * mvt_rng_normal(r));
}

void mvt_fill_uniform(mvt_tensor *t, mvt_rng *r, double lo, double hi) {
    int64_t n = mvt_numel(t);
    void *p = mvt_data(t);
    for (int64_t i = 0; i < n; i++)
        mvt_store(p, t->dtype, mvt_offset_of(t->ndim, t->shape, t->stride, i), lo + (hi - lo) * mvt_rng_uniform(r));
}
