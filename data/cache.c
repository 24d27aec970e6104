#include "data/cache.h"
#include "data/h5io.h"
#include "tensor/error.h"
#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

uint16_t mvd_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u;
    int32_t exp = (int32_t)((x >> 23) & 0xff) - 127 + 15;
    uint32_t mant = x & 0x7fffffu;
    if (((x >> 23) & 0xff) == 0xff) return (uint16_t)(sign | 0x7c00u | (mant ? 0x200u : 0));
    if (exp >= 31) return (uint16_t)(sign | 0x7c00u);
    if (exp <= 0) {
        if (exp < -10) return (uint16_t)sign;
        mant |= 0x800000u;
        uint32_t shift = (uint32_t)(14 - exp);
        uint32_t h = mant >> shift, rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((uint32_t)exp << 10) | (mant >> 13), rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++;   /* may carry into the exponent: correct */
    return (uint16_t)(sign | h);
}

float mvd_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ffu, x;
    if (exp == 0) {
        if (!mant) x = sign;
        else {
            exp = 127 - 15 + 1;
            while (!(mant & 0x400u)) { mant <<= 1; exp--; }
            x = sign | (exp << 23) | ((mant & 0x3ffu) << 13);
        }
    } else if (exp == 31) x = sign | 0x7f800000u | (mant << 13);
    else x = sign | ((exp - 15 + 127) << 23) | (mant << 13);
    float f;
    memcpy(&f, &x, 4);
    return f;
}

static hid_t f16_type(void) {
    hid_t t = H5Tcopy(H5T_IEEE_F32LE);
    H5Tset_fields(t, 15, 10, 5, 0, 10);
    H5Tset_precision(t, 16);
    H5Tset_size(t, 2);
    H5Tset_ebias(t, 15);
    return t;
}

struct mvd_cache_writer {
    hid_t file;
    mvd_cache_info info;
    char path[1024], partial[1040];
    int64_t n_done;
};

static int set_info_attrs(hid_t f, const mvd_cache_info *in) {
    int rc = 0;
    rc |= mvd_h5_attr_set_int(f, ".", "samples", in->S);
    rc |= mvd_h5_attr_set_int(f, ".", "views", in->V);
    rc |= mvd_h5_attr_set_int(f, ".", "patches", in->N);
    rc |= mvd_h5_attr_set_int(f, ".", "dim", in->D);
    rc |= mvd_h5_attr_set_int(f, ".", "image_h", in->H);
    rc |= mvd_h5_attr_set_int(f, ".", "image_w", in->W);
    rc |= mvd_h5_attr_set_int(f, ".", "patch", in->P);
    rc |= mvd_h5_attr_set_int(f, ".", "grid_h", in->grid_h);
    rc |= mvd_h5_attr_set_int(f, ".", "grid_w", in->grid_w);
    rc |= mvd_h5_attr_set_int(f, ".", "layer", in->layer);
    rc |= mvd_h5_attr_set_int(f, ".", "half", in->half);
    rc |= mvd_h5_attr_set_int(f, ".", "has_masks", in->has_masks);
    rc |= mvd_h5_attr_set_str(f, ".", "backbone", in->backbone);
    rc |= mvd_h5_attr_set_str(f, ".", "backbone_hash", in->backbone_hash);
    rc |= mvd_h5_attr_set_str(f, ".", "split", in->split);
    return rc ? -1 : 0;
}

static int get_info_attrs(hid_t f, mvd_cache_info *in, const char *path) {
    int64_t v[12];
    const char *names[12] = {"samples", "views", "patches", "dim", "image_h", "image_w", "patch", "grid_h", "grid_w", "layer", "half", "has_masks"};
    for (int i = 0; i < 12; i++) if (mvd_h5_attr_get_int(f, ".", names[i], &v[i], path)) return -1;
    in->S = v[0]; in->V = v[1]; in->N = v[2]; in->D = v[3];
    in->H = (int)v[4]; in->W = (int)v[5]; in->P = (int)v[6]; in->grid_h = (int)v[7]; in->grid_w = (int)v[8];
    in->layer = (int)v[9]; in->half = v[10] != 0; in->has_masks = v[11] != 0;
    if (mvd_h5_attr_get_str(f, ".", "backbone", in->backbone, sizeof in->backbone, path) ||
        mvd_h5_attr_get_str(f, ".", "backbone_hash", in->backbone_hash, sizeof in->backbone_hash, path) ||
        mvd_h5_attr_get_str(f, ".", "split", in->split, sizeof in->split, path)) return -1;
    if (in->S < 0 || in->V < 1 || in->V > 8 || in->N < 1 || in->D < 1 || in->P < 1 ||
        (int64_t)in->grid_h * in->grid_w != in->N || in->H < in->P || in->W < in->P)
        return mv_error("%s: inconsistent cache sizes (S=%lld V=%lld N=%lld D=%lld grid %dx%d)", path,
                        (long long)in->S, (long long)in->V, (long long)in->N, (long long)in->D, in->grid_h, in->grid_w);
    return 0;
}

static int create_chunked(hid_t f, const char *name, hid_t type, int nd, const hsize_t *dims, const hsize_t *chunk, int deflate) {
    hid_t sp = H5Screate_simple(nd, dims, NULL);
    hid_t pl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(pl, nd, chunk);
    if (deflate) { H5Pset_shuffle(pl); H5Pset_deflate(pl, deflate); }
    hid_t d = H5Dcreate2(f, name, type, sp, H5P_DEFAULT, pl, H5P_DEFAULT);
    H5Pclose(pl);
    H5Sclose(sp);
    if (d < 0) return -1;
    H5Dclose(d);
    return 0;
}

static int write_meta(hid_t f, const mvd_cache_info *in, const mvd_cache_meta *m) {
    int64_t SV = in->S * in->V;
    int64_t s1[1] = {in->S}, s2[2] = {in->S, in->V};
    if (mvd_h5_write_strings(f, "category", in->S, m->category) ||
        mvd_h5_write_strings(f, "sample_id", in->S, m->sample_id) ||
        mvd_h5_write_strings(f, "anomaly_class", in->S, m->anomaly_class) ||
        mvd_h5_write_strings(f, "image_path", SV, m->image_path) ||
        mvd_h5_write_strings(f, "mask_path", SV, m->mask_path) ||
        mvd_h5_write_i64(f, "view_label", 2, s2, m->view_label) ||
        mvd_h5_write_i64(f, "sample_label", 1, s1, m->sample_label)) return -1;
    return 0;
}

static bool same_strings(hid_t f, const char *name, int64_t n, const char *const *want, const char *path) {
    int64_t got_n = 0;
    char **got = mvd_h5_read_strings(f, name, &got_n, path);
    bool ok = got && got_n == n;
    for (int64_t i = 0; ok && i < n; i++) ok = !strcmp(got[i], want[i] ? want[i] : "");
    mvd_h5_free_strings(got, got_n);
    return ok;
}

mvd_cache_writer *mvd_cache_begin(const char *path, const mvd_cache_info *info, const mvd_cache_meta *meta, int64_t *n_done) {
    mvd_h5_quiet();
    mvd_cache_writer *w = calloc(1, sizeof *w);
    w->info = *info;
    snprintf(w->path, sizeof w->path, "%s", path);
    snprintf(w->partial, sizeof w->partial, "%s.partial", path);
    w->file = -1;
    if (access(w->partial, F_OK) == 0) {
        w->file = mvd_h5_check_superblock(w->partial) ? -1 : H5Fopen(w->partial, H5F_ACC_RDWR, mvd_h5_fapl_checksummed());
        mvd_cache_info old;
        int64_t done = 0;
        if (w->file >= 0 && (get_info_attrs(w->file, &old, w->partial) ||
                             mvd_h5_attr_get_int(w->file, ".", "n_done", &done, w->partial))) {
            H5Fclose(w->file);
            w->file = -1;
        }
        if (w->file < 0) {
            /* empty or unreadable (a write that failed half-way, a disk that filled
             * up): nothing in it can be trusted, so start over rather than stop */
            fprintf(stderr, "%s: empty or unreadable partial cache (%s); discarding it and starting over\n", w->partial,
                    mv_error_last());
            if (unlink(w->partial)) { mv_error("%s: cannot remove: %s", w->partial, strerror(errno)); goto fail; }
            goto create;
        }
        if (old.S != info->S || old.V != info->V || old.N != info->N || old.D != info->D || old.H != info->H ||
            old.W != info->W || old.layer != info->layer || old.half != info->half || old.has_masks != info->has_masks ||
            strcmp(old.backbone_hash, info->backbone_hash) || strcmp(old.split, info->split)) {
            mv_error("%s: partial cache was made with other options (sizes, layer, backbone or split differ); delete it to start over", w->partial);
            goto fail;
        }
        if (!same_strings(w->file, "sample_id", info->S, meta->sample_id, w->partial) ||
            !same_strings(w->file, "image_path", info->S * info->V, meta->image_path, w->partial)) {
            mv_error("%s: partial cache lists other samples than the dataset; delete it to start over", w->partial);
            goto fail;
        }
        if (done < 0 || done > info->S) { mv_error("%s: corrupt n_done attribute", w->partial); goto fail; }
        w->n_done = done;
    } else {
    create:
        errno = 0;
        w->file = H5Fcreate(w->partial, H5F_ACC_TRUNC, H5P_DEFAULT, mvd_h5_fapl_checksummed());
        if (w->file < 0) { mv_error("%s: cannot create: %s", w->partial, mvd_h5_os_error(errno)); goto fail; }
        if (mvd_h5_attr_set_str(w->file, ".", "mvead_kind", "cache") || mvd_h5_attr_set_int(w->file, ".", "mvead_format", MVD_CACHE_FORMAT) ||
            set_info_attrs(w->file, info) || mvd_h5_attr_set_int(w->file, ".", "n_done", 0) ||
            mvd_h5_attr_set_int(w->file, ".", "complete", 0) || write_meta(w->file, info, meta)) {
            mv_error_prefix("%s", w->partial);
            goto fail;
        }
        int64_t S = info->S > 0 ? info->S : 1;
        hsize_t fd[4] = {(hsize_t)S, (hsize_t)info->V, (hsize_t)info->N, (hsize_t)info->D};
        hsize_t fc[4] = {1, (hsize_t)info->V, (hsize_t)info->N, (hsize_t)info->D};
        hid_t ft = info->half ? f16_type() : H5Tcopy(H5T_IEEE_F32LE);
        int rc = create_chunked(w->file, "features", ft, 4, fd, fc, 1);
        H5Tclose(ft);
        hsize_t cd[1] = {(hsize_t)S}, cc[1] = {(hsize_t)S};
        rc |= create_chunked(w->file, "crc", H5T_STD_U32LE, 1, cd, cc, 0);
        if (info->has_masks) {
            hsize_t md[4] = {(hsize_t)S, (hsize_t)info->V, (hsize_t)info->H, (hsize_t)info->W};
            hsize_t mc[4] = {1, (hsize_t)info->V, (hsize_t)info->H, (hsize_t)info->W};
            rc |= create_chunked(w->file, "masks", H5T_STD_U8LE, 4, md, mc, 4);
        }
        if (rc) { mv_error("%s: cannot create datasets", w->partial); goto fail; }
        errno = 0;
        if (H5Fflush(w->file, H5F_SCOPE_GLOBAL) < 0) {
            mv_error("%s: write failed: %s", w->partial, mvd_h5_os_error(errno));
            mvd_h5_write_failed();
            goto fail;
        }
    }
    *n_done = w->n_done;
    return w;
fail:
    if (w->file >= 0 && !mvd_h5_poisoned()) H5Fclose(w->file);
    free(w);
    return NULL;
}

static int rw_slab(hid_t f, const char *name, hid_t mtype, int nd, const hsize_t *start, const hsize_t *count, void *buf, bool write) {
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0) return -1;
    hid_t fs = H5Dget_space(d);
    hid_t ms = H5Screate_simple(nd, count, NULL);
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
    herr_t e = write ? H5Dwrite(d, mtype, ms, fs, H5P_DEFAULT, buf) : H5Dread(d, mtype, ms, fs, H5P_DEFAULT, buf);
    H5Sclose(ms);
    H5Sclose(fs);
    H5Dclose(d);
    return e < 0 ? -1 : 0;
}

static uint32_t feat_crc(const float *f, size_t n) {
    return (uint32_t)crc32_z(crc32(0L, Z_NULL, 0), (const Bytef *)f, n * sizeof(float));
}

int mvd_cache_write(mvd_cache_writer *w, int64_t i, const float *feat, const uint8_t *masks) {
    const mvd_cache_info *in = &w->info;
    if (i != w->n_done) return mv_error("%s: sample %lld written out of order (next is %lld)", w->partial, (long long)i, (long long)w->n_done);
    size_t n = (size_t)(in->V * in->N * in->D);
    for (size_t k = 0; k < n; k++)
        if (!isfinite(feat[k])) return mv_error("%s: features of sample %lld contain NaN/Inf (element %zu)", w->partial, (long long)i, k);
    hsize_t st[4] = {(hsize_t)i, 0, 0, 0}, ct[4] = {1, (hsize_t)in->V, (hsize_t)in->N, (hsize_t)in->D};
    uint32_t crc;
    int rc;
    if (in->half) {
        uint16_t *h = malloc(n * 2);
        float *back = malloc(n * 4);
        for (size_t k = 0; k < n; k++) { h[k] = mvd_f32_to_f16(feat[k]); back[k] = mvd_f16_to_f32(h[k]); }
        crc = feat_crc(back, n);
        hid_t t = f16_type();
        rc = rw_slab(w->file, "features", t, 4, st, ct, h, true);
        H5Tclose(t);
        free(h);
        free(back);
    } else {
        crc = feat_crc(feat, n);
        rc = rw_slab(w->file, "features", H5T_NATIVE_FLOAT, 4, st, ct, (void *)feat, true);
    }
    hsize_t cs[1] = {(hsize_t)i}, cc[1] = {1};
    rc |= rw_slab(w->file, "crc", H5T_NATIVE_UINT32, 1, cs, cc, &crc, true);
    if (in->has_masks) {
        hsize_t mct[4] = {1, (hsize_t)in->V, (hsize_t)in->H, (hsize_t)in->W};
        size_t mn = (size_t)(in->V * in->H * in->W);
        uint8_t *zero = masks ? NULL : calloc(mn, 1);
        rc |= rw_slab(w->file, "masks", H5T_NATIVE_UINT8, 4, st, mct, masks ? (void *)masks : zero, true);
        free(zero);
    }
    if (rc) return mv_error("%s: writing sample %lld failed: %s", w->partial, (long long)i, mvd_h5_os_error(errno)), mvd_h5_write_failed(), -1;
    /* n_done after the data, then flush: a kill leaves either the old or the new count, both consistent.
     * Both flushes are checked: HDF5 caches the chunks, so a full disk shows up here. */
    errno = 0;
    if (H5Fflush(w->file, H5F_SCOPE_GLOBAL) < 0)
        return mv_error("%s: writing sample %lld failed: %s", w->partial, (long long)i, mvd_h5_os_error(errno)), mvd_h5_write_failed(), -1;
    if (mvd_h5_attr_set_int(w->file, ".", "n_done", i + 1)) return -1;
    errno = 0;
    if (H5Fflush(w->file, H5F_SCOPE_GLOBAL) < 0)
        return mv_error("%s: writing sample %lld failed: %s", w->partial, (long long)i, mvd_h5_os_error(errno)), mvd_h5_write_failed(), -1;
    w->n_done = i + 1;
    return 0;
}

int mvd_cache_finish(mvd_cache_writer *w) {
    int rc = 0;
    if (w->n_done != w->info.S) rc = mv_error("%s: only %lld of %lld samples written", w->partial, (long long)w->n_done, (long long)w->info.S);
    if (!rc) rc = mvd_h5_attr_set_int(w->file, ".", "complete", 1);
    errno = 0;
    if (!rc && H5Fflush(w->file, H5F_SCOPE_GLOBAL) < 0) {
        rc = mv_error("%s: write failed: %s", w->partial, mvd_h5_os_error(errno));
        mvd_h5_write_failed();   /* the handle is left open: see mvd_h5_abandon */
    } else {
        errno = 0;
        if (H5Fclose(w->file) < 0 && !rc) rc = mv_error("%s: write failed while closing: %s", w->partial, mvd_h5_os_error(errno)), mvd_h5_write_failed();
    }
    if (!rc) rc = mvd_h5_fsync_path(w->partial);
    if (!rc && rename(w->partial, w->path)) rc = mv_error("%s: cannot rename into place: %s", w->path, strerror(errno));
    if (!rc) rc = mvd_h5_fsync_path(w->path);
    free(w);
    return rc;
}

void mvd_cache_close_writer(mvd_cache_writer *w) {
    if (!w) return;
    if (!mvd_h5_poisoned()) H5Fclose(w->file);   /* after a failed write libhdf5 may crash closing it */
    free(w);
}

mvd_cache *mvd_cache_open(const char *path) {
    int fmt;
    hid_t f = mvd_h5_open_read(path, "cache", MVD_CACHE_FORMAT, &fmt);
    if (f < 0) return NULL;
    mvd_cache *c = calloc(1, sizeof *c);
    snprintf(c->path, sizeof c->path, "%s", path);
    int64_t complete = 0, n;
    if (get_info_attrs(f, &c->info, path) || mvd_h5_attr_get_int(f, ".", "complete", &complete, path)) goto fail;
    if (!complete) { mv_error("%s: cache is incomplete (interrupted extraction?)", path); goto fail; }
    int64_t S = c->info.S, SV = S * c->info.V;
#define RS(field, name, want)                                                                   \
    c->field = mvd_h5_read_strings(f, name, &n, path);                                            \
    if (!c->field) goto fail;                                                                   \
    if (n != (want)) { mv_error("%s: '%s' has %lld entries, expected %lld", path, name, (long long)n, (long long)(want)); goto fail; }
    RS(category, "category", S);
    RS(sample_id, "sample_id", S);
    RS(anomaly_class, "anomaly_class", S);
    RS(image_path, "image_path", SV);
    RS(mask_path, "mask_path", SV);
#undef RS
    {
        int64_t s2[2] = {S, c->info.V}, s1[1] = {S};
        mvt_tensor *vl = mvd_h5_read_tensor(f, "view_label", MVT_I64, 2, s2, path);
        mvt_tensor *sl = vl ? mvd_h5_read_tensor(f, "sample_label", MVT_I64, 1, s1, path) : NULL;
        if (!vl || !sl) { mvt_release(vl); goto fail; }
        c->view_label = malloc(sizeof(int64_t) * (size_t)(SV ? SV : 1));
        c->sample_label = malloc(sizeof(int64_t) * (size_t)(S ? S : 1));
        memcpy(c->view_label, mvt_i64(vl), sizeof(int64_t) * (size_t)SV);
        memcpy(c->sample_label, mvt_i64(sl), sizeof(int64_t) * (size_t)S);
        mvt_release(vl);
        mvt_release(sl);
    }
    hid_t *fp = malloc(sizeof(hid_t));
    *fp = f;
    c->priv = fp;
    return c;
fail:
    H5Fclose(f);
    c->priv = NULL;
    mvd_cache_close(c);
    return NULL;
}

int mvd_cache_read(mvd_cache *c, int64_t i, float *feat) {
    const mvd_cache_info *in = &c->info;
    if (i < 0 || i >= in->S) return mv_error("%s: sample %lld out of range", c->path, (long long)i);
    hid_t f = *(hid_t *)c->priv;
    size_t n = (size_t)(in->V * in->N * in->D);
    hsize_t st[4] = {(hsize_t)i, 0, 0, 0}, ct[4] = {1, (hsize_t)in->V, (hsize_t)in->N, (hsize_t)in->D};
    int rc;
    if (in->half) {
        uint16_t *h = malloc(n * 2);
        hid_t t = f16_type();
        rc = rw_slab(f, "features", t, 4, st, ct, h, false);
        H5Tclose(t);
        for (size_t k = 0; k < n; k++) feat[k] = mvd_f16_to_f32(h[k]);
        free(h);
    } else rc = rw_slab(f, "features", H5T_NATIVE_FLOAT, 4, st, ct, feat, false);
    if (rc) return mv_error("%s: cannot read features of sample %lld (corrupt file?)", c->path, (long long)i);
    uint32_t want;
    hsize_t cs[1] = {(hsize_t)i}, cc[1] = {1};
    if (rw_slab(f, "crc", H5T_NATIVE_UINT32, 1, cs, cc, &want, false)) return mv_error("%s: cannot read checksum %lld", c->path, (long long)i);
    if (feat_crc(feat, n) != want) return mv_error("%s: checksum mismatch in sample %lld (file corrupted)", c->path, (long long)i);
    return 0;
}

int mvd_cache_read_masks(mvd_cache *c, int64_t i, uint8_t *masks) {
    const mvd_cache_info *in = &c->info;
    if (!in->has_masks) return mv_error("%s: cache holds no masks (train split?)", c->path);
    if (i < 0 || i >= in->S) return mv_error("%s: sample %lld out of range", c->path, (long long)i);
    hsize_t st[4] = {(hsize_t)i, 0, 0, 0}, ct[4] = {1, (hsize_t)in->V, (hsize_t)in->H, (hsize_t)in->W};
    if (rw_slab(*(hid_t *)c->priv, "masks", H5T_NATIVE_UINT8, 4, st, ct, masks, false))
        return mv_error("%s: cannot read masks of sample %lld", c->path, (long long)i);
    return 0;
}

int mvd_cache_verify(mvd_cache *c) {
    size_t n = (size_t)(c->info.V * c->info.N * c->info.D);
    float *buf = malloc(n * sizeof(float) + 1);
    int rc = 0;
    for (int64_t i = 0; i < c->info.S && !rc; i++) rc = mvd_cache_read(c, i, buf);
    free(buf);
    return rc;
}

void mvd_cache_close(mvd_cache *c) {
    if (!c) return;
    if (c->priv) { H5Fclose(*(hid_t *)c->priv); free(c->priv); }
    int64_t S = c->info.S, SV = S * c->info.V;
    mvd_h5_free_strings(c->category, S);
    mvd_h5_free_strings(c->sample_id, S);
    mvd_h5_free_strings(c->anomaly_class, S);
    mvd_h5_free_strings(c->image_path, SV);
    mvd_h5_free_strings(c->mask_path, SV);
    free(c->view_label);
    free(c->sample_label);
    free(c);
}
