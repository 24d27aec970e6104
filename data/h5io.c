#include "data/h5io.h"
#include "tensor/error.h"
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

static bool poisoned;   /* a write failed: see mvd_h5_abandon */

void mvd_h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

hid_t mvd_h5_fapl_checksummed(void) {
    /* The 1.8 file format (superblock 2, object header 2) checksums its
     * metadata, so HDF5 rejects a corrupted header instead of parsing it (the
     * older format crashes libhdf5 1.10 on some corruptions, found by
     * fuzzing). Not the 1.10 format: its superblock 3 refuses to reopen a
     * file whose writer was killed, and a .partial cache must resume.
     * One list, never freed. */
    static hid_t fapl = -1;
    if (fapl < 0) {
        fapl = H5Pcreate(H5P_FILE_ACCESS);
        H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_V18);
    }
    return fapl;
}

/* Walks HDF5's error stack for the OS error its file driver recorded
 * ("... errno = 28, error message = 'No space left on device' ..."). */
static herr_t find_os_error(unsigned n, const H5E_error2_t *e, void *ctx) {
    (void)n;
    char *out = ctx;
    const char *m = e->desc ? strstr(e->desc, "error message = '") : NULL;
    if (m && !out[0]) {
        m += strlen("error message = '");
        size_t k = strcspn(m, "'");
        if (k > 200) k = 200;
        memcpy(out, m, k);
        out[k] = 0;
    }
    return 0;
}

const char *mvd_h5_os_error(int saved_errno) {
    static char buf[256];
    buf[0] = 0;
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, find_os_error, buf);
    if (!buf[0]) snprintf(buf, sizeof buf, "%s", saved_errno ? strerror(saved_errno) : "I/O error");
    return buf;
}

int mvd_h5_fsync_path(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return mv_error("%s: cannot open for fsync: %s", path, strerror(errno));
    int rc = fsync(fd);
    close(fd);
    if (rc) return mv_error("%s: fsync failed: %s", path, strerror(errno));
    char d[1024];
    snprintf(d, sizeof d, "%s", path);
    int dfd = open(dirname(d), O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) { fsync(dfd); close(dfd); }
    return 0;
}

int mvd_h5_create(mvd_h5_writer *w, const char *path, const char *kind, int format) {
    mvd_h5_quiet();
    memset(w, 0, sizeof *w);
    w->file = -1;
    if (strlen(path) >= sizeof w->path) return mv_error("%s: path too long", path);
    snprintf(w->path, sizeof w->path, "%s", path);
    snprintf(w->tmp, sizeof w->tmp, "%s.tmp", path);
    errno = 0;
    w->file = H5Fcreate(w->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, mvd_h5_fapl_checksummed());
    if (w->file < 0) {
        int e = errno;
        mv_error("%s: cannot create HDF5 file: %s", w->path, mvd_h5_os_error(e));
        unlink(w->tmp);
        return -1;
    }
    if (mvd_h5_attr_set_str(w->file, ".", "mvead_kind", kind) || mvd_h5_attr_set_int(w->file, ".", "mvead_format", format)) {
        mvd_h5_abort(w);
        return -1;
    }
    return 0;
}

int mvd_h5_commit(mvd_h5_writer *w) {
    if (w->file < 0) return mv_error("%s: not open", w->tmp);
    /* every step checked: a full disk shows up here (HDF5 caches small writes) */
    errno = 0;
    if (H5Fflush(w->file, H5F_SCOPE_GLOBAL) < 0) {
        mv_error("%s: write failed: %s", w->path, mvd_h5_os_error(errno));
        mvd_h5_abandon(w);
        return -1;
    }
    errno = 0;
    if (H5Fclose(w->file) < 0) {
        mvd_h5_abandon(w);
        return mv_error("%s: write failed while closing: %s", w->path, mvd_h5_os_error(errno));
    }
    w->file = -1;
    if (mvd_h5_fsync_path(w->tmp)) { unlink(w->tmp); return mv_error_prefix("%s", w->path); }
    if (rename(w->tmp, w->path)) {
        int e = errno;
        unlink(w->tmp);
        return mv_error("%s: cannot rename into place: %s", w->path, strerror(e));
    }
    return mvd_h5_fsync_path(w->path);
}


bool mvd_h5_poisoned(void) { return poisoned; }
void mvd_h5_write_failed(void) { poisoned = true; }

void mvd_h5_abandon(mvd_h5_writer *w) {
    /* libhdf5 1.10 crashes in its exit handler (H5F__close_cb from
     * H5_term_library) on a file whose flush failed, closed or not: the handle
     * is left open and the program ends without that handler (mvd_h5_poisoned) */
    w->file = -1;
    poisoned = true;
    unlink(w->tmp);
}

void mvd_h5_abort(mvd_h5_writer *w) {
    if (poisoned) { mvd_h5_abandon(w); return; }
    if (w->file >= 0) H5Fclose(w->file);
    w->file = -1;
    unlink(w->tmp);
}

void mvd_h5_close(hid_t f) { if (f >= 0) H5Fclose(f); }

int mvd_h5_check_superblock(const char *path) {
    /* Before libhdf5 parses anything: the signature at offset 0 and a
     * superblock version >= 2, i.e. checksummed metadata (every file mvead
     * writes); anything else is refused rather than parsed. */
    static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    unsigned char head[9];
    FILE *fp = fopen(path, "rb");
    if (!fp) return mv_error("%s: cannot read: %s", path, strerror(errno));
    size_t n = fread(head, 1, sizeof head, fp);
    fclose(fp);
    if (n < sizeof head || memcmp(head, sig, 8)) return mv_error("%s: not an HDF5 file (truncated or corrupt?)", path);
    if (head[8] < 2)
        return mv_error("%s: HDF5 superblock version %d has no metadata checksums: written by another tool or an "
                        "older mvead (re-create it: extract, train or bank again)", path, head[8]);
    return 0;
}

hid_t mvd_h5_open_read(const char *path, const char *kind, int max_format, int *format) {
    mvd_h5_quiet();
    if (access(path, R_OK)) { mv_error("%s: cannot read: %s", path, strerror(errno)); return -1; }
    if (mvd_h5_check_superblock(path)) return -1;
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) { mv_error("%s: cannot open HDF5 file (truncated or corrupt?)", path); return -1; }
    char k[64] = "";
    int64_t fmt = 0;
    if (mvd_h5_attr_get_str(f, ".", "mvead_kind", k, sizeof k, path) || mvd_h5_attr_get_int(f, ".", "mvead_format", &fmt, path)) {
        H5Fclose(f);
        mv_error_prefix("%s: not an mvead file", path);
        return -1;
    }
    if (kind && strcmp(k, kind)) {
        H5Fclose(f);
        mv_error("%s: is an mvead '%s' file, expected '%s'", path, k, kind);
        return -1;
    }
    if (fmt < 1 || fmt > max_format) {
        H5Fclose(f);
        mv_error("%s: format version %lld not supported (this build reads 1..%d)", path, (long long)fmt, max_format);
        return -1;
    }
    if (format) *format = (int)fmt;
    return f;
}

bool mvd_h5_exists(hid_t loc, const char *name) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", name);
    for (char *p = buf; ; p++) {
        if (*p == '/' || *p == 0) {
            char c = *p;
            *p = 0;
            if (buf[0] && H5Lexists(loc, buf, H5P_DEFAULT) <= 0) return false;
            if (!c) break;
            *p = c;
        }
    }
    return true;
}

static hid_t lcpl(void) {
    hid_t p = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(p, 1);
    return p;
}

static int write_raw(hid_t loc, const char *name, hid_t ftype, hid_t mtype, int ndim, const int64_t *shape,
                     const void *data, size_t esz) {
    hsize_t dims[MVT_MAX_DIMS + 3];
    size_t n = 1;
    if (ndim > MVT_MAX_DIMS + 3) return mv_error("dataset %s: too many dims", name);
    for (int i = 0; i < ndim; i++) { dims[i] = (hsize_t)shape[i]; n *= (size_t)shape[i]; }
    hid_t space = ndim ? H5Screate_simple(ndim, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t lp = lcpl();
    hid_t d = H5Dcreate2(loc, name, ftype, space, lp, H5P_DEFAULT, H5P_DEFAULT);
    H5Pclose(lp);
    int rc = 0;
    if (d < 0) rc = mv_error("dataset %s: cannot create", name);
    else if (n && (errno = 0, H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0))
        rc = mv_error("dataset %s: write failed: %s", name, mvd_h5_os_error(errno)), mvd_h5_write_failed();
    if (d >= 0) {
        if (!rc) {
            uLong crc = crc32(0L, Z_NULL, 0);
            crc = crc32_z(crc, (const Bytef *)data, n * esz);
            hid_t as = H5Screate(H5S_SCALAR);
            hid_t a = H5Acreate2(d, "crc32", H5T_STD_U32LE, as, H5P_DEFAULT, H5P_DEFAULT);
            uint32_t c32 = (uint32_t)crc;
            if (a < 0 || H5Awrite(a, H5T_NATIVE_UINT32, &c32) < 0) rc = mv_error("dataset %s: cannot write checksum", name);
            if (a >= 0) H5Aclose(a);
            H5Sclose(as);
        }
        H5Dclose(d);
    }
    H5Sclose(space);
    return rc;
}

int mvd_h5_write_f32(hid_t loc, const char *name, int ndim, const int64_t *shape, const float *data) {
    return write_raw(loc, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, ndim, shape, data, 4);
}
int mvd_h5_write_f64(hid_t loc, const char *name, int ndim, const int64_t *shape, const double *data) {
    return write_raw(loc, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, ndim, shape, data, 8);
}
int mvd_h5_write_i64(hid_t loc, const char *name, int ndim, const int64_t *shape, const int64_t *data) {
    return write_raw(loc, name, H5T_STD_I64LE, H5T_NATIVE_INT64, ndim, shape, data, 8);
}
int mvd_h5_write_u8(hid_t loc, const char *name, int ndim, const int64_t *shape, const uint8_t *data) {
    return write_raw(loc, name, H5T_STD_U8LE, H5T_NATIVE_UINT8, ndim, shape, data, 1);
}

int mvd_h5_write_tensor(hid_t loc, const char *name, const mvt_tensor *t) {
    mvt_tensor *c = mvt_contiguous(t);
    int rc;
    switch (c->dtype) {
    case MVT_F32: rc = mvd_h5_write_f32(loc, name, c->ndim, c->shape, mvt_f32(c)); break;
    case MVT_F64: rc = mvd_h5_write_f64(loc, name, c->ndim, c->shape, mvt_f64(c)); break;
    default: rc = mvd_h5_write_i64(loc, name, c->ndim, c->shape, mvt_i64(c)); break;
    }
    mvt_release(c);
    return rc;
}

mvt_tensor *mvd_h5_read_tensor(hid_t loc, const char *name, mvt_dtype dt, int expect_ndim,
                             const int64_t *expect_shape, const char *file) {
    if (!mvd_h5_exists(loc, name)) { mv_error("%s: missing dataset '%s'", file, name); return NULL; }
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    if (d < 0) { mv_error("%s: cannot open dataset '%s'", file, name); return NULL; }
    hid_t s = H5Dget_space(d), ft = H5Dget_type(d);
    int nd = H5Sget_simple_extent_ndims(s);
    hsize_t dims[16] = {0};
    mvt_tensor *out = NULL, *raw = NULL;
    if (nd < 0 || nd > MVT_MAX_DIMS) { mv_error("%s: dataset '%s' has %d dims (max %d)", file, name, nd, MVT_MAX_DIMS); goto done; }
    H5Sget_simple_extent_dims(s, dims, NULL);
    if (expect_ndim >= 0 && nd != expect_ndim) { mv_error("%s: dataset '%s' has %d dims, expected %d", file, name, nd, expect_ndim); goto done; }
    int64_t shape[MVT_MAX_DIMS];
    for (int i = 0; i < nd; i++) {
        shape[i] = (int64_t)dims[i];
        if (expect_shape && expect_shape[i] >= 0 && expect_shape[i] != shape[i]) {
            mv_error("%s: dataset '%s' dim %d is %lld, expected %lld", file, name, i, (long long)shape[i], (long long)expect_shape[i]);
            goto done;
        }
    }
    H5T_class_t cls = H5Tget_class(ft);
    size_t sz = H5Tget_size(ft);
    mvt_dtype rawdt;
    hid_t mt;
    if (cls == H5T_FLOAT && sz == 8) { rawdt = MVT_F64; mt = H5T_NATIVE_DOUBLE; }
    else if (cls == H5T_FLOAT && sz <= 4) { rawdt = MVT_F32; mt = H5T_NATIVE_FLOAT; }
    else if (cls == H5T_INTEGER) { rawdt = MVT_I64; mt = H5T_NATIVE_INT64; }
    else { mv_error("%s: dataset '%s' has an unsupported type (expected float or integer)", file, name); goto done; }
    raw = mvt_empty(rawdt, nd, shape);
    if (mvt_numel(raw) && H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, mvt_data(raw)) < 0) {
        mv_error("%s: cannot read dataset '%s' (corrupt?)", file, name);
        goto done;
    }
    if (H5Aexists(d, "crc32") > 0) {
        uint32_t want = 0;
        hid_t a = H5Aopen(d, "crc32", H5P_DEFAULT);
        H5Aread(a, H5T_NATIVE_UINT32, &want);
        H5Aclose(a);
        /* The checksum covers the stored bytes; only types stored natively are verifiable here. */
        size_t esz = mvt_dtype_size(rawdt);
        bool native = (cls == H5T_FLOAT && sz == esz) || (cls == H5T_INTEGER && sz == 8);
        if (native) {
            uLong crc = crc32_z(crc32(0L, Z_NULL, 0), (const Bytef *)mvt_data(raw), (size_t)mvt_numel(raw) * esz);
            if ((uint32_t)crc != want) { mv_error("%s: checksum mismatch in dataset '%s' (file corrupted)", file, name); goto done; }
        } else if (cls == H5T_INTEGER && sz == 1) {
            uint8_t *b = malloc((size_t)mvt_numel(raw) + 1);
            H5Dread(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, b);
            uLong crc = crc32_z(crc32(0L, Z_NULL, 0), b, (size_t)mvt_numel(raw));
            free(b);
            if ((uint32_t)crc != want) { mv_error("%s: checksum mismatch in dataset '%s' (file corrupted)", file, name); goto done; }
        }
    }
    if (rawdt != MVT_I64 && !mvt_all_finite(raw)) { mv_error("%s: dataset '%s' contains NaN or Inf", file, name); goto done; }
    out = rawdt == dt ? mvt_retain(raw) : mvt_to_dtype(raw, dt);
done:
    mvt_release(raw);
    H5Tclose(ft);
    H5Sclose(s);
    H5Dclose(d);
    return out;
}

static hid_t attr_target(hid_t loc, const char *obj) {
    return H5Oopen(loc, obj ? obj : ".", H5P_DEFAULT);
}

static int attr_write(hid_t loc, const char *obj, const char *name, hid_t ftype, hid_t mtype, const void *v) {
    hid_t o = attr_target(loc, obj);
    if (o < 0) return mv_error("attribute %s: object %s not found", name, obj);
    if (H5Aexists(o, name) > 0) H5Adelete(o, name);
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(o, name, ftype, s, H5P_DEFAULT, H5P_DEFAULT);
    int rc = (a < 0 || H5Awrite(a, mtype, v) < 0) ? mv_error("cannot write attribute %s", name) : 0;
    if (a >= 0) H5Aclose(a);
    H5Sclose(s);
    H5Oclose(o);
    return rc;
}

int mvd_h5_attr_set_int(hid_t loc, const char *obj, const char *name, int64_t v) {
    return attr_write(loc, obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &v);
}
int mvd_h5_attr_set_double(hid_t loc, const char *obj, const char *name, double v) {
    return attr_write(loc, obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v);
}
/* Fixed-length strings: a corrupted variable-length string sends libhdf5 into
 * its global heap, where a bad heap address can hang it (found by fuzzing). */
int mvd_h5_attr_set_str(hid_t loc, const char *obj, const char *name, const char *v) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(v) + 1);
    H5Tset_strpad(t, H5T_STR_NULLTERM);
    int rc = attr_write(loc, obj, name, t, t, v);
    H5Tclose(t);
    return rc;
}

bool mvd_h5_attr_exists(hid_t loc, const char *obj, const char *name) {
    return H5Aexists_by_name(loc, obj ? obj : ".", name, H5P_DEFAULT) > 0;
}

static hid_t attr_open(hid_t loc, const char *obj, const char *name, const char *file) {
    if (!mvd_h5_attr_exists(loc, obj, name)) {
        mv_error("%s: missing attribute '%s' on '%s'", file, name, obj ? obj : "/");
        return -1;
    }
    return H5Aopen_by_name(loc, obj ? obj : ".", name, H5P_DEFAULT, H5P_DEFAULT);
}

int mvd_h5_attr_get_int(hid_t loc, const char *obj, const char *name, int64_t *v, const char *file) {
    hid_t a = attr_open(loc, obj, name, file);
    if (a < 0) return -1;
    hid_t t = H5Aget_type(a);
    int rc = 0;
    if (H5Tget_class(t) != H5T_INTEGER) rc = mv_error("%s: attribute '%s' is not an integer", file, name);
    else if (H5Aread(a, H5T_NATIVE_INT64, v) < 0) rc = mv_error("%s: cannot read attribute '%s'", file, name);
    H5Tclose(t);
    H5Aclose(a);
    return rc;
}

int mvd_h5_attr_get_double(hid_t loc, const char *obj, const char *name, double *v, const char *file) {
    hid_t a = attr_open(loc, obj, name, file);
    if (a < 0) return -1;
    hid_t t = H5Aget_type(a);
    int rc = 0;
    H5T_class_t c = H5Tget_class(t);
    if (c != H5T_FLOAT && c != H5T_INTEGER) rc = mv_error("%s: attribute '%s' is not a number", file, name);
    else if (H5Aread(a, H5T_NATIVE_DOUBLE, v) < 0) rc = mv_error("%s: cannot read attribute '%s'", file, name);
    H5Tclose(t);
    H5Aclose(a);
    return rc;
}

int mvd_h5_attr_get_str(hid_t loc, const char *obj, const char *name, char *buf, size_t n, const char *file) {
    hid_t a = attr_open(loc, obj, name, file);
    if (a < 0) return -1;
    hid_t t = H5Aget_type(a);
    int rc = 0;
    if (H5Tget_class(t) != H5T_STRING) rc = mv_error("%s: attribute '%s' is not a string", file, name);
    else if (H5Tis_variable_str(t) != 0) {
        /* never written by mvead; reading one from a corrupted file can hang libhdf5 */
        rc = mv_error("%s: attribute '%s' is a variable-length string (mvead writes fixed-length ones)", file, name);
    } else {
        size_t sz = H5Tget_size(t);
        if (sz > (1u << 20)) { H5Tclose(t); H5Aclose(a); return mv_error("%s: attribute '%s' is implausibly long", file, name); }
        char *tmp = calloc(sz + 1, 1);
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, sz);
        if (H5Aread(a, mt, tmp) < 0) rc = mv_error("%s: cannot read attribute '%s'", file, name);
        else snprintf(buf, n, "%s", tmp);
        H5Tclose(mt);
        free(tmp);
    }
    H5Tclose(t);
    H5Aclose(a);
    return rc;
}

int mvd_h5_write_strings(hid_t loc, const char *name, int64_t n, const char *const *s) {
    if (n < 0) return mv_error("strings %s: negative count", name);
    size_t width = 1;
    for (int64_t i = 0; i < n; i++) if (s[i] && strlen(s[i]) + 1 > width) width = strlen(s[i]) + 1;
    char *buf = calloc(n ? (size_t)n : 1, width);
    if (!buf) return mv_error("strings %s: out of memory", name);
    for (int64_t i = 0; i < n; i++) if (s[i]) memcpy(buf + (size_t)i * width, s[i], strlen(s[i]));
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, width);
    H5Tset_strpad(t, H5T_STR_NULLTERM);
    hsize_t dims[1] = {(hsize_t)n};
    hid_t space = H5Screate_simple(1, dims, NULL);
    hid_t lp = lcpl();
    hid_t d = H5Dcreate2(loc, name, t, space, lp, H5P_DEFAULT, H5P_DEFAULT);
    H5Pclose(lp);
    int rc = (d < 0 || (n && H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)) ? mv_error("cannot write strings %s", name) : 0;
    free(buf);
    if (d >= 0) H5Dclose(d);
    H5Sclose(space);
    H5Tclose(t);
    return rc;
}

char **mvd_h5_read_strings(hid_t loc, const char *name, int64_t *n, const char *file) {
    if (!mvd_h5_exists(loc, name)) { mv_error("%s: missing dataset '%s'", file, name); return NULL; }
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    if (d < 0) { mv_error("%s: cannot open dataset '%s'", file, name); return NULL; }
    hid_t s = H5Dget_space(d), ft = H5Dget_type(d);
    char **out = NULL;
    hsize_t dim = 0;
    size_t width = H5Tget_size(ft);
    if (H5Tget_class(ft) != H5T_STRING || H5Tis_variable_str(ft) != 0 || H5Sget_simple_extent_ndims(s) != 1 ||
        width < 1 || width > (1u << 20)) {
        mv_error("%s: dataset '%s' is not a 1-D array of fixed-length strings", file, name);
        goto done;
    }
    H5Sget_simple_extent_dims(s, &dim, NULL);
    if (dim > (1u << 26) || (uint64_t)dim * width > (1ull << 32)) {
        mv_error("%s: dataset '%s' is implausibly large (%llu strings of %zu bytes)", file, name, (unsigned long long)dim, width);
        goto done;
    }
    char *raw = calloc((size_t)dim + 1, width);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, width);
    H5Tset_strpad(t, H5T_STR_NULLTERM);
    if (!raw || (dim && H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw) < 0)) {
        mv_error("%s: cannot read strings '%s' (corrupt?)", file, name);
    } else {
        out = calloc((size_t)dim + 1, sizeof(char *));
        for (hsize_t i = 0; i < dim; i++) out[i] = strndup(raw + i * width, width);
        *n = (int64_t)dim;
    }
    free(raw);
    H5Tclose(t);
done:
    H5Tclose(ft);
    H5Sclose(s);
    H5Dclose(d);
    return out;
}

void mvd_h5_free_strings(char **s, int64_t n) {
    if (!s) return;
    for (int64_t i = 0; i < n; i++) free(s[i]);
    free(s);
}
