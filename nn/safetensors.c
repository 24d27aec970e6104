/* safetensors reader/writer; see safetensors.h. */
#include "nn/safetensors.h"
#include "tensor/error.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define HEADER_MAX_BYTES (100u * 1024u * 1024u)

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors data is little-endian; big-endian hosts need byte swaps");

/* ---- dtypes ------------------------------------------------------------- */

static const char *const st_dtype_names[] = {"F32", "F16", "BF16", "F64"};
static const size_t st_dtype_sizes[] = {4, 2, 2, 8};

const char *mvn_st_dtype_name(mvn_st_dtype dt) { return st_dtype_names[dt]; }
size_t mvn_st_dtype_size(mvn_st_dtype dt) { return st_dtype_sizes[dt]; }

int mvn_st_dtype_parse(const char *s, mvn_st_dtype *dt) {
    for (int i = 0; i < 4; i++)
        if (strcmp(s, st_dtype_names[i]) == 0) { *dt = (mvn_st_dtype)i; return 0; }
    return -1;
}

float mvn_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

float mvn_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    uint32_t bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else {
            /* subnormal half: renormalise into a normal float */
            int e = -1;
            do { man <<= 1; e++; } while (!(man & 0x400));
            man &= 0x3ff;
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | (man << 13);
        }
    } else if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13);   /* inf / nan (payload kept) */
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t mvn_f32_to_bf16(float f) {
    uint32_t bits;
    memcpy(&bits, &f, 4);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((bits >> 16) | 0x40);   /* quiet nan */
    uint32_t rounding = 0x7fff + ((bits >> 16) & 1);   /* round to nearest, ties to even */
    return (uint16_t)((bits + rounding) >> 16);
}

uint16_t mvn_f32_to_f16(float f) {
    uint32_t bits;
    memcpy(&bits, &f, 4);
    uint16_t sign = (uint16_t)((bits >> 16) & 0x8000);
    uint32_t absbits = bits & 0x7fffffffu;
    if (absbits > 0x7f800000u) return sign | 0x7e00;            /* nan */
    if (absbits >= 0x477ff000u) return sign | 0x7c00;           /* rounds to >= 65520: inf */
    int32_t exp = (int32_t)(absbits >> 23) - 127;
    uint32_t man = absbits & 0x7fffff;
    if (exp < -25) return sign;                                 /* below half of the smallest subnormal */
    if (exp < -14) {
        /* subnormal half: value = man_full * 2^(exp-23); half unit = 2^-24 */
        uint32_t full = man | 0x800000;
        int shift = -exp - 14 + 13;                             /* 14..24 */
        uint32_t q = full >> shift;
        uint32_t rem = full & ((1u << shift) - 1);
        uint32_t halfway = 1u << (shift - 1);
        if (rem > halfway || (rem == halfway && (q & 1))) q++;
        return sign | (uint16_t)q;                              /* q may carry into the exponent: correct */
    }
    uint32_t h = ((uint32_t)(exp + 15) << 10) | (man >> 13);
    uint32_t rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;        /* carry may bump exponent: correct */
    return sign | (uint16_t)h;
}

/* ---- reader ------------------------------------------------------------- */

void mvn_st_close(mvn_safetensors *st) {
    if (!st) return;
    for (int i = 0; i < st->n; i++) free(st->entries[i].name);
    free(st->entries);
    free(st->metadata_json);
    if (st->map && st->map != MAP_FAILED) munmap(st->map, st->map_size);
    free(st->path);
    free(st);
}

/* Reads a JSON integer >= 0 into *out; false when it is not one. */
static bool json_nonneg_int(struct json_object *o, int64_t *out) {
    if (!o || !json_object_is_type(o, json_type_int)) return false;
    errno = 0;
    int64_t v = json_object_get_int64(o);
    if (v < 0 || errno == ERANGE) return false;
    *out = v;
    return true;
}

static int cmp_entry_begin(const void *a, const void *b) {
    const mvn_st_entry *x = *(const mvn_st_entry *const *)a, *y = *(const mvn_st_entry *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* Parses one header entry (key `name`, value `v`) into e. */
static int parse_entry(const char *path, const char *name, struct json_object *v, mvn_st_entry *e) {
    if (!json_object_is_type(v, json_type_object))
        return mv_error("%s: tensor '%s': header entry is not a JSON object", path, name);
    struct json_object *jd = NULL, *js = NULL, *jo = NULL;
    if (!json_object_object_get_ex(v, "dtype", &jd) || !json_object_is_type(jd, json_type_string))
        return mv_error("%s: tensor '%s': missing or non-string \"dtype\"", path, name);
    if (!json_object_object_get_ex(v, "shape", &js) || !json_object_is_type(js, json_type_array))
        return mv_error("%s: tensor '%s': missing or non-array \"shape\"", path, name);
    if (!json_object_object_get_ex(v, "data_offsets", &jo) || !json_object_is_type(jo, json_type_array))
        return mv_error("%s: tensor '%s': missing or non-array \"data_offsets\"", path, name);
    const char *ds = json_object_get_string(jd);
    if (mvn_st_dtype_parse(ds, &e->dtype) != 0)
        return mv_error("%s: tensor '%s': unsupported dtype \"%s\" (expected F32, F16, BF16 or F64)", path, name, ds);
    size_t nd = json_object_array_length(js);
    if (nd > MVN_ST_MAX_DIMS)
        return mv_error("%s: tensor '%s': shape has %zu dims (at most %d supported)", path, name, nd, MVN_ST_MAX_DIMS);
    e->ndim = (int)nd;
    /* numel * dtype size must fit in 63 bits */
    unsigned __int128 bytes = mvn_st_dtype_size(e->dtype);
    for (size_t d = 0; d < nd; d++) {
        int64_t s;
        if (!json_nonneg_int(json_object_array_get_idx(js, d), &s))
            return mv_error("%s: tensor '%s': shape[%zu] is not a non-negative integer", path, name, d);
        e->shape[d] = s;
        bytes *= (uint64_t)s;
        if (bytes > (unsigned __int128)INT64_MAX)
            return mv_error("%s: tensor '%s': shape too large", path, name);
    }
    if (json_object_array_length(jo) != 2)
        return mv_error("%s: tensor '%s': data_offsets must be [begin, end]", path, name);
    int64_t b, en;
    if (!json_nonneg_int(json_object_array_get_idx(jo, 0), &b) || !json_nonneg_int(json_object_array_get_idx(jo, 1), &en))
        return mv_error("%s: tensor '%s': data_offsets are not non-negative integers", path, name);
    if (en < b)
        return mv_error("%s: tensor '%s': data_offsets [%lld, %lld] end before begin", path, name, (long long)b, (long long)en);
    e->begin = (uint64_t)b;
    e->end = (uint64_t)en;
    if ((uint64_t)bytes != e->end - e->begin)
        return mv_error("%s: tensor '%s': size mismatch: data_offsets span %llu bytes but shape x %s needs %llu",
                        path, name, (unsigned long long)(e->end - e->begin), ds, (unsigned long long)bytes);
    return 0;
}

mvn_safetensors *mvn_st_open(const char *path) {
    mvn_safetensors *st = calloc(1, sizeof *st);
    st->path = strdup(path);
    struct json_tokener *tok = NULL;
    struct json_object *root = NULL;
    mvn_st_entry **sorted = NULL;

    int fd = open(path, O_RDONLY);
    if (fd < 0) { mv_error("%s: cannot open: %s", path, strerror(errno)); goto fail; }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) { close(fd); mv_error("%s: not a regular file", path); goto fail; }
    uint64_t fsize = (uint64_t)sb.st_size;
    if (fsize < 8) { close(fd); mv_error("%s: file truncated: %llu bytes, a safetensors file starts with an 8-byte header size", path, (unsigned long long)fsize); goto fail; }
    st->map_size = (size_t)fsize;
    st->map = mmap(NULL, st->map_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (st->map == MAP_FAILED) { st->map = NULL; mv_error("%s: mmap failed: %s", path, strerror(errno)); goto fail; }
    const uint8_t *bytes = st->map;

    uint64_t hsize = 0;
    memcpy(&hsize, bytes, 8);
    if (hsize == 0 || hsize > HEADER_MAX_BYTES) {
        mv_error("%s: bad header size %llu (expected 1 .. %u bytes)", path, (unsigned long long)hsize, HEADER_MAX_BYTES);
        goto fail;
    }
    if (hsize > fsize - 8) {
        mv_error("%s: bad header size %llu: larger than the file (%llu bytes); file truncated or not safetensors",
                 path, (unsigned long long)hsize, (unsigned long long)fsize);
        goto fail;
    }
    const char *hdr = (const char *)bytes + 8;
    if (hdr[0] != '{') { mv_error("%s: bad JSON header: does not start with '{'", path); goto fail; }
    tok = json_tokener_new();
    root = json_tokener_parse_ex(tok, hdr, (int)hsize);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    if (!root || jerr != json_tokener_success) {
        mv_error("%s: bad JSON header: %s", path,
                 jerr == json_tokener_continue ? "incomplete JSON" : json_tokener_error_desc(jerr));
        goto fail;
    }
    for (size_t p = json_tokener_get_parse_end(tok); p < hsize; p++) {
        char c = hdr[p];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            mv_error("%s: bad JSON header: trailing bytes after the JSON object", path);
            goto fail;
        }
    }
    if (!json_object_is_type(root, json_type_object)) { mv_error("%s: bad JSON header: not an object", path); goto fail; }

    st->data = (uint8_t *)bytes + 8 + hsize;
    st->data_size = fsize - 8 - hsize;
    int cap = json_object_object_length(root);
    st->entries = calloc(cap > 0 ? (size_t)cap : 1, sizeof *st->entries);
    json_object_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__") == 0) {
            if (!json_object_is_type(val, json_type_object)) { mv_error("%s: \"__metadata__\" is not an object", path); goto fail; }
            free(st->metadata_json);
            st->metadata_json = strdup(json_object_to_json_string_ext(val, JSON_C_TO_STRING_PLAIN));
            continue;
        }
        mvn_st_entry *e = &st->entries[st->n];
        if (parse_entry(path, key, val, e) != 0) goto fail;
        e->name = strdup(key);
        st->n++;
    }

    /* Layout: sorted by offset, the ranges must tile [0, data_size) exactly. */
    sorted = malloc((st->n > 0 ? (size_t)st->n : 1) * sizeof *sorted);
    for (int i = 0; i < st->n; i++) sorted[i] = &st->entries[i];
    qsort(sorted, (size_t)st->n, sizeof *sorted, cmp_entry_begin);
    bool tiled = true;
    uint64_t pos = 0;
    for (int i = 0; i < st->n; i++) {
        if (sorted[i]->begin != pos) { tiled = false; break; }
        pos = sorted[i]->end;
    }
    if (tiled && pos > st->data_size) {
        mv_error("%s: file truncated: the header describes %llu bytes of tensor data but only %llu follow it",
                 path, (unsigned long long)pos, (unsigned long long)st->data_size);
        goto fail;
    }
    for (int i = 0; i < st->n; i++) {
        mvn_st_entry *e = &st->entries[i];
        if (e->end > st->data_size) {
            mv_error("%s: tensor '%s': data_offsets [%llu, %llu] out of range (the data section holds %llu bytes)",
                     path, e->name, (unsigned long long)e->begin, (unsigned long long)e->end,
                     (unsigned long long)st->data_size);
            goto fail;
        }
    }
    pos = 0;
    for (int i = 0; i < st->n; i++) {
        mvn_st_entry *e = sorted[i];
        if (e->begin < pos) {
            mv_error("%s: tensor '%s': data_offsets [%llu, %llu] overlap tensor '%s' (ends at %llu)", path, e->name,
                     (unsigned long long)e->begin, (unsigned long long)e->end, sorted[i - 1]->name, (unsigned long long)pos);
            goto fail;
        }
        if (e->begin > pos) {
            mv_error("%s: tensor '%s': data_offsets not contiguous: begins at %llu, previous data ends at %llu",
                     path, e->name, (unsigned long long)e->begin, (unsigned long long)pos);
            goto fail;
        }
        pos = e->end;
    }
    if (pos != st->data_size) {
        mv_error("%s: %llu bytes after the last tensor's data (data section %llu bytes, tensors cover %llu)", path,
                 (unsigned long long)(st->data_size - pos), (unsigned long long)st->data_size, (unsigned long long)pos);
        goto fail;
    }
    free(sorted);
    json_object_put(root);
    json_tokener_free(tok);
    return st;

fail:
    free(sorted);
    if (root) json_object_put(root);
    if (tok) json_tokener_free(tok);
    mvn_st_close(st);
    return NULL;
}

int mvn_st_find(const mvn_safetensors *st, const char *name) {
    for (int i = 0; i < st->n; i++)
        if (strcmp(st->entries[i].name, name) == 0) return i;
    return -1;
}

mvt_tensor *mvn_st_read_index(const mvn_safetensors *st, int i, mvt_dtype out) {
    MVT_ASSERT(i >= 0 && i < st->n, "safetensors index %d out of range", i);
    MVT_ASSERT(out == MVT_F32 || out == MVT_F64, "safetensors: output dtype must be f32 or f64");
    const mvn_st_entry *e = &st->entries[i];
    if (e->ndim > MVT_MAX_DIMS) {
        mv_error("%s: tensor '%s' has %d dims (at most %d supported)", st->path, e->name, e->ndim, MVT_MAX_DIMS);
        return NULL;
    }
    mvt_tensor *t = mvt_empty(out, e->ndim, e->shape);
    int64_t n = mvt_numel(t);
    const uint8_t *src = st->data + e->begin;
    float *o32 = out == MVT_F32 ? mvt_f32(t) : NULL;
    double *o64 = out == MVT_F64 ? mvt_f64(t) : NULL;
    /* Element-wise memcpy: the data section need not be aligned. */
    for (int64_t k = 0; k < n; k++) {
        double v;
        switch (e->dtype) {
        case MVN_ST_F32: { float f; memcpy(&f, src + 4 * k, 4); if (o32) { o32[k] = f; continue; } v = f; break; }
        case MVN_ST_F64: { memcpy(&v, src + 8 * k, 8); break; }
        case MVN_ST_F16: { uint16_t h; memcpy(&h, src + 2 * k, 2); v = mvn_f16_to_f32(h); break; }
        case MVN_ST_BF16: default: { uint16_t h; memcpy(&h, src + 2 * k, 2); v = mvn_bf16_to_f32(h); break; }
        }
        if (o32) o32[k] = (float)v; else o64[k] = v;
    }
    return t;
}

mvt_tensor *mvn_st_read(const mvn_safetensors *st, const char *name, mvt_dtype out) {
    int i = mvn_st_find(st, name);
    if (i < 0) { mv_error("%s: no tensor named '%s'", st->path, name); return NULL; }
    return mvn_st_read_index(st, i, out);
}

/* ---- writer ------------------------------------------------------------- */

int mvn_st_write(const char *path, int n, const char *const *names,
                 const mvt_tensor *const *tensors, mvn_st_dtype dtype) {
    size_t dsz = mvn_st_dtype_size(dtype);
    struct json_object *root = json_object_new_object();
    struct json_object *meta = json_object_new_object();
    json_object_object_add(meta, "format", json_object_new_string("pt"));
    json_object_object_add(root, "__metadata__", meta);
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        const mvt_tensor *t = tensors[i];
        if (t->dtype == MVT_I64) { json_object_put(root); return mv_error("%s: tensor '%s': int64 tensors are not written", path, names[i]); }
        struct json_object *e = json_object_new_object();
        json_object_object_add(e, "dtype", json_object_new_string(mvn_st_dtype_name(dtype)));
        struct json_object *shape = json_object_new_array();
        for (int d = 0; d < t->ndim; d++) json_object_array_add(shape, json_object_new_int64(t->shape[d]));
        json_object_object_add(e, "shape", shape);
        uint64_t nbytes = (uint64_t)mvt_numel(t) * dsz;
        struct json_object *offs = json_object_new_array();
        json_object_array_add(offs, json_object_new_int64((int64_t)off));
        json_object_array_add(offs, json_object_new_int64((int64_t)(off + nbytes)));
        json_object_object_add(e, "data_offsets", offs);
        json_object_object_add(root, names[i], e);
        off += nbytes;
    }
    const char *js = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN);
    size_t jlen = strlen(js);
    uint64_t hlen = (jlen + 7) / 8 * 8;

    FILE *f = fopen(path, "wb");
    if (!f) { json_object_put(root); return mv_error("%s: cannot create: %s", path, strerror(errno)); }
    bool ok = fwrite(&hlen, 8, 1, f) == 1 && fwrite(js, 1, jlen, f) == jlen;
    for (size_t p = jlen; ok && p < hlen; p++) ok = fputc(' ', f) != EOF;
    json_object_put(root);
    for (int i = 0; ok && i < n; i++) {
        mvt_tensor *c64 = mvt_to_dtype(tensors[i], MVT_F64);   /* f64 is exact for any source */
        mvt_tensor *c = mvt_contiguous(c64);
        mvt_release(c64);
        const double *src = mvt_f64(c);
        int64_t m = mvt_numel(c);
        uint8_t buf[8 * 1024];
        int64_t per = (int64_t)(sizeof buf / dsz);
        for (int64_t k0 = 0; ok && k0 < m; k0 += per) {
            int64_t k1 = k0 + per < m ? k0 + per : m;
            for (int64_t k = k0; k < k1; k++) {
                uint8_t *dst = buf + (size_t)(k - k0) * dsz;
                switch (dtype) {
                case MVN_ST_F32: { float v = (float)src[k]; memcpy(dst, &v, 4); break; }
                case MVN_ST_F64: memcpy(dst, &src[k], 8); break;
                case MVN_ST_F16: { uint16_t h = mvn_f32_to_f16((float)src[k]); memcpy(dst, &h, 2); break; }
                case MVN_ST_BF16: { uint16_t h = mvn_f32_to_bf16((float)src[k]); memcpy(dst, &h, 2); break; }
                }
            }
            ok = fwrite(buf, dsz, (size_t)(k1 - k0), f) == (size_t)(k1 - k0);
        }
        mvt_release(c);
    }
    if (fclose(f) != 0) ok = false;
    if (!ok) { unlink(path); return mv_error("%s: write failed: %s", path, strerror(errno)); }
    return 0;
}
