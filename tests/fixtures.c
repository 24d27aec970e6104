#include "tests/fixtures.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *fx_dir(void) {
    static char buf[4096];
    const char *e = getenv("MVEAD_FIXTURES");
    if (e && *e) return e;
    const char *src = getenv("MVEAD_SRCDIR");
    snprintf(buf, sizeof buf, "%s/../shared/fixtures", src && *src ? src : ".");
    return buf;
}

bool fx_reduced(void) {
    static int said;
    const char *e = getenv("MVEAD_TEST_REDUCED");
    bool on = e && !strcmp(e, "1");
    if (on && !said++) fprintf(stderr, "# MVEAD_TEST_REDUCED=1: the slowest cases run on fewer inputs\n");
    return on;
}

const char *fx_path(const char *rel) {
    static _Thread_local char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", fx_dir(), rel);
    return buf;
}

bool fx_exists(const char *rel) {
    struct stat st;
    return stat(fx_path(rel), &st) == 0;
}

hid_t fx_open(const char *rel) {
    if (!fx_exists(rel)) {
        fprintf(stderr, "\n*** SKIP: fixture %s missing (set MVEAD_FIXTURES) ***\n\n", fx_path(rel));
        return -1;
    }
    hid_t f = H5Fopen(fx_path(rel), H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) fprintf(stderr, "fixture %s: cannot open as HDF5\n", fx_path(rel));
    return f;
}

void fx_close(hid_t f) { if (f >= 0) H5Fclose(f); }

bool fx_has(hid_t loc, const char *path) {
    /* H5Lexists fails on missing intermediate groups, so walk the path. */
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf; ; p++) {
        if (*p == '/' || *p == 0) {
            char c = *p; *p = 0;
            if (buf[0] && H5Lexists(loc, buf, H5P_DEFAULT) <= 0) return false;
            if (!c) break;
            *p = c;
        }
    }
    return true;
}

int64_t fx_numel(int ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    return n;
}

static void *fx_read_as(hid_t loc, const char *path, hid_t memtype, size_t esz, int *ndim, int64_t *shape) {
    if (!fx_has(loc, path)) return NULL;
    hid_t d = H5Dopen2(loc, path, H5P_DEFAULT);
    if (d < 0) return NULL;
    hid_t s = H5Dget_space(d);
    int nd = H5Sget_simple_extent_ndims(s);
    hsize_t dims[8] = {0};
    H5Sget_simple_extent_dims(s, dims, NULL);
    int64_t n = 1;
    for (int i = 0; i < nd; i++) { shape[i] = (int64_t)dims[i]; n *= (int64_t)dims[i]; }
    *ndim = nd;
    void *buf = malloc((size_t)(n ? n : 1) * esz);
    if (H5Dread(d, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) { free(buf); buf = NULL; }
    H5Sclose(s);
    H5Dclose(d);
    return buf;
}

double *fx_read(hid_t loc, const char *path, int *ndim, int64_t *shape) {
    return fx_read_as(loc, path, H5T_NATIVE_DOUBLE, sizeof(double), ndim, shape);
}

int64_t *fx_read_i64(hid_t loc, const char *path, int *ndim, int64_t *shape) {
    return fx_read_as(loc, path, H5T_NATIVE_INT64, sizeof(int64_t), ndim, shape);
}

bool fx_has_attr(hid_t loc, const char *obj, const char *name) {
    return H5Aexists_by_name(loc, obj, name, H5P_DEFAULT) > 0;
}

double fx_attr_f64(hid_t loc, const char *obj, const char *name) {
    double v = NAN;
    if (!fx_has_attr(loc, obj, name)) return v;
    hid_t a = H5Aopen_by_name(loc, obj, name, H5P_DEFAULT, H5P_DEFAULT);
    H5Aread(a, H5T_NATIVE_DOUBLE, &v);
    H5Aclose(a);
    return v;
}

bool fx_attr_str(hid_t loc, const char *obj, const char *name, char *buf, size_t n) {
    if (!fx_has_attr(loc, obj, name)) return false;
    hid_t a = H5Aopen_by_name(loc, obj, name, H5P_DEFAULT, H5P_DEFAULT);
    hid_t t = H5Aget_type(a);
    bool ok = false;
    if (H5Tget_class(t) == H5T_STRING) {
        if (H5Tis_variable_str(t) > 0) {
            char *s = NULL;
            hid_t mt = H5Tcopy(H5T_C_S1); H5Tset_size(mt, H5T_VARIABLE);
            if (H5Aread(a, mt, &s) >= 0 && s) { snprintf(buf, n, "%s", s); ok = true; H5free_memory(s); }
            H5Tclose(mt);
        } else {
            size_t sz = H5Tget_size(t);
            char *tmp = calloc(sz + 1, 1);
            hid_t mt = H5Tcopy(H5T_C_S1); H5Tset_size(mt, sz);
            if (H5Aread(a, mt, tmp) >= 0) { snprintf(buf, n, "%s", tmp); ok = true; }
            H5Tclose(mt); free(tmp);
        }
    }
    H5Tclose(t);
    H5Aclose(a);
    return ok;
}

typedef struct { char **names; int n, cap; } fx_names;
static herr_t fx_list_cb(hid_t g, const char *name, const H5L_info_t *info, void *op) {
    (void)g; (void)info;
    fx_names *l = op;
    if (l->n == l->cap) { l->cap = l->cap ? 2 * l->cap : 16; l->names = realloc(l->names, l->cap * sizeof *l->names); }
    l->names[l->n++] = strdup(name);
    return 0;
}

int fx_list(hid_t loc, const char *path, char ***names) {
    fx_names l = {0};
    hid_t g = H5Gopen2(loc, path, H5P_DEFAULT);
    if (g < 0) { *names = NULL; return 0; }
    H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, fx_list_cb, &l);
    H5Gclose(g);
    *names = l.names;
    return l.n;
}

void fx_free_list(char **names, int n) {
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

static bool fx_compare_impl(const char *what, const float *gf, const double *gd, const double *ref,
                            int64_t n, double rtol, double atol, int scale_mode) {
    double maxref = 0;
    for (int64_t i = 0; i < n; i++) if (fabs(ref[i]) > maxref) maxref = fabs(ref[i]);
    double worst_excess = -INFINITY, worst_err = 0;
    int64_t wi = -1;
    bool ok = true;
    for (int64_t i = 0; i < n; i++) {
        double g = gf ? (double)gf[i] : gd[i];
        double err = fabs(g - ref[i]);
        double tol = atol + rtol * (scale_mode ? maxref : fabs(ref[i]));
        if (!(err <= tol)) ok = false;
        double excess = isnan(err) ? INFINITY : err - tol;
        if (excess > worst_excess) { worst_excess = excess; worst_err = err; wi = i; }
    }
    if (!ok)
        fprintf(stderr, "%s: MISMATCH worst at [%lld]: got %.17g ref %.17g |err| %.3g (rtol %.1g atol %.1g, max|ref| %.3g)\n",
                what, (long long)wi, gf ? (double)gf[wi] : gd[wi], ref[wi], worst_err, rtol, atol, maxref);
    return ok;
}

bool fx_compare(const char *what, const double *got, const double *ref, int64_t n,
                double rtol, double atol, int scale_mode) {
    return fx_compare_impl(what, NULL, got, ref, n, rtol, atol, scale_mode);
}

bool fx_compare_f32(const char *what, const float *got, const double *ref, int64_t n,
                    double rtol, double atol, int scale_mode) {
    return fx_compare_impl(what, got, NULL, ref, n, rtol, atol, scale_mode);
}

mvt_tensor *fx_read_tensor(hid_t loc, const char *path, mvt_dtype dt) {
    int nd;
    int64_t shape[8];
    double *d = fx_read(loc, path, &nd, shape);
    if (!d) { fprintf(stderr, "fixture: missing dataset %s\n", path); return NULL; }
    mvt_tensor *t64 = mvt_from_data(MVT_F64, nd, shape, d);
    free(d);
    if (dt == MVT_F64) return t64;
    mvt_tensor *t = mvt_to_dtype(t64, dt);
    mvt_release(t64);
    return t;
}

bool fx_compare_tensor(const char *what, hid_t loc, const char *path, const mvt_tensor *t, double rtol, double atol) {
    int nd;
    int64_t shape[8];
    double *ref = fx_read(loc, path, &nd, shape);
    if (!ref) { fprintf(stderr, "%s: missing dataset %s\n", what, path); return false; }
    int64_t n = fx_numel(nd, shape);
    if (n != mvt_numel(t)) {
        fprintf(stderr, "%s: %lld elements, the reference %s has %lld\n", what, (long long)mvt_numel(t), path, (long long)n);
        free(ref);
        return false;
    }
    mvt_tensor *g = mvt_to_dtype(t, MVT_F64);
    mvt_tensor *gc = mvt_contiguous(g);
    bool ok = fx_compare(what, mvt_f64(gc), ref, n, rtol, atol, 1);
    mvt_release(gc);
    mvt_release(g);
    free(ref);
    return ok;
}

double fx_group_max_abs(hid_t loc, const char *path) {
    char **names;
    int n = fx_list(loc, path, &names);
    double mx = 0;
    for (int i = 0; i < n; i++) {
        char full[256];
        snprintf(full, sizeof full, "%s/%s", path, names[i]);
        int nd;
        int64_t shape[8];
        double *d = fx_read(loc, full, &nd, shape);
        for (int64_t j = 0, m = d ? fx_numel(nd, shape) : 0; j < m; j++) mx = fmax(mx, fabs(d[j]));
        free(d);
    }
    fx_free_list(names, n);
    return mx;
}
