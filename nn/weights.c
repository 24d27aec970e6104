/* Backbone weights: state lists, name mapping, HDF5 checkpoint; see weights.h. */
#include "nn/weights.h"
#include "nn/safetensors.h"
#include "tensor/error.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* ---- state -------------------------------------------------------------- */

mvn_state *mvn_state_new(void) { return calloc(1, sizeof(mvn_state)); }

void mvn_state_free(mvn_state *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) { free(s->names[i]); mvt_release(s->tensors[i]); }
    free(s->names);
    free(s->tensors);
    free(s);
}

int mvn_state_find(const mvn_state *s, const char *name) {
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->names[i], name) == 0) return i;
    return -1;
}

mvt_tensor *mvn_state_get(const mvn_state *s, const char *name) {
    int i = mvn_state_find(s, name);
    return i < 0 ? NULL : s->tensors[i];
}

void mvn_state_put(mvn_state *s, const char *name, mvt_tensor *t) {
    int i = mvn_state_find(s, name);
    if (i >= 0) { mvt_release(s->tensors[i]); s->tensors[i] = t; return; }
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->names = realloc(s->names, (size_t)s->cap * sizeof *s->names);
        s->tensors = realloc(s->tensors, (size_t)s->cap * sizeof *s->tensors);
    }
    s->names[s->n] = strdup(name);
    s->tensors[s->n] = t;
    s->n++;
}

/* ---- parameter list ------------------------------------------------------ */

static void spec_add(mvn_param_spec *sp, int *n, const char *name, int ndim, int64_t a, int64_t b, int64_t c, int64_t d) {
    mvn_param_spec *p = &sp[(*n)++];
    snprintf(p->name, sizeof p->name, "%s", name);
    p->ndim = ndim;
    p->shape[0] = a; p->shape[1] = b; p->shape[2] = c; p->shape[3] = d;
}

int mvn_param_specs(const mvn_vit_config *c, mvn_param_spec **out) {
    int64_t D = c->hidden_size, P = c->patch_size, C = c->num_channels, M = mvn_config_grid(c);
    int64_t Hd = mvn_config_mlp_hidden(c);
    mvn_param_spec *sp = calloc((size_t)(8 + 20 * c->num_hidden_layers), sizeof *sp);
    int n = 0;
    char nm[96];
    spec_add(sp, &n, "embeddings.cls_token", 3, 1, 1, D, 0);
    spec_add(sp, &n, "embeddings.mask_token", 2, 1, D, 0, 0);
    if (c->num_register_tokens > 0) spec_add(sp, &n, "embeddings.register_tokens", 3, 1, c->num_register_tokens, D, 0);
    spec_add(sp, &n, "embeddings.position_embeddings", 3, 1, M * M + 1, D, 0);
    spec_add(sp, &n, "embeddings.patch_embeddings.projection.weight", 4, D, C, P, P);
    spec_add(sp, &n, "embeddings.patch_embeddings.projection.bias", 1, D, 0, 0, 0);
    for (int l = 0; l < c->num_hidden_layers; l++) {
#define ADD(suffix, nd, a, b) do { snprintf(nm, sizeof nm, "encoder.layer.%d.%s", l, suffix); spec_add(sp, &n, nm, nd, a, b, 0, 0); } while (0)
        ADD("norm1.weight", 1, D, 0);
        ADD("norm1.bias", 1, D, 0);
        static const char *const qkv[3] = {"query", "key", "value"};
        for (int k = 0; k < 3; k++) {
            char s2[64];
            snprintf(s2, sizeof s2, "attention.attention.%s.weight", qkv[k]);
            ADD(s2, 2, D, D);
            if (c->qkv_bias) { snprintf(s2, sizeof s2, "attention.attention.%s.bias", qkv[k]); ADD(s2, 1, D, 0); }
        }
        ADD("attention.output.dense.weight", 2, D, D);
        ADD("attention.output.dense.bias", 1, D, 0);
        if (c->layerscale) ADD("layer_scale1.lambda1", 1, D, 0);
        ADD("norm2.weight", 1, D, 0);
        ADD("norm2.bias", 1, D, 0);
        if (c->use_swiglu_ffn) {
            ADD("mlp.weights_in.weight", 2, 2 * Hd, D);
            ADD("mlp.weights_in.bias", 1, 2 * Hd, 0);
            ADD("mlp.weights_out.weight", 2, D, Hd);
            ADD("mlp.weights_out.bias", 1, D, 0);
        } else {
            ADD("mlp.fc1.weight", 2, Hd, D);
            ADD("mlp.fc1.bias", 1, Hd, 0);
            ADD("mlp.fc2.weight", 2, D, Hd);
            ADD("mlp.fc2.bias", 1, D, 0);
        }
        if (c->layerscale) ADD("layer_scale2.lambda1", 1, D, 0);
#undef ADD
    }
    spec_add(sp, &n, "layernorm.weight", 1, D, 0, 0, 0);
    spec_add(sp, &n, "layernorm.bias", 1, D, 0, 0, 0);
    *out = sp;
    return n;
}

int mvn_param_optional(const mvn_vit_config *c, const char *name) {
    return !c->use_mask_token && strcmp(name, "embeddings.mask_token") == 0;
}

static void shape_str(int ndim, const int64_t *shape, char *buf, size_t n) {
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < ndim && k < n; d++) k += (size_t)snprintf(buf + k, n - k, d ? ", %lld" : "%lld", (long long)shape[d]);
    if (k < n) snprintf(buf + k, n - k, "]");
}

int mvn_state_check(const mvn_state *s, const mvn_vit_config *c, const char *what) {
    mvn_param_spec *sp;
    int n = mvn_param_specs(c, &sp);
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        const mvt_tensor *t = mvn_state_get(s, sp[i].name);
        if (!t) {
            if (!mvn_param_optional(c, sp[i].name)) rc = mv_error("%s: missing tensor '%s'", what, sp[i].name);
            continue;
        }
        bool same = t->ndim == sp[i].ndim;
        for (int d = 0; same && d < t->ndim; d++) same = t->shape[d] == sp[i].shape[d];
        if (!same) {
            char a[96], b[96];
            shape_str(t->ndim, t->shape, a, sizeof a);
            shape_str(sp[i].ndim, sp[i].shape, b, sizeof b);
            rc = mv_error("%s: tensor '%s' has shape %s, expected %s for this config", what, sp[i].name, a, b);
        }
    }
    for (int j = 0; j < s->n && !rc; j++) {
        bool known = false;
        for (int i = 0; i < n && !known; i++) known = strcmp(sp[i].name, s->names[j]) == 0;
        if (!known) rc = mv_error("%s: unexpected tensor '%s' (not a parameter of this config)", what, s->names[j]);
    }
    free(sp);
    return rc;
}

/* ---- torch-hub names ------------------------------------------------------ */

int mvn_state_is_hub(const mvn_state *s) {
    for (int i = 0; i < s->n; i++) {
        const char *k = s->names[i];
        if (!strncmp(k, "blocks.", 7) || !strcmp(k, "cls_token") || !strcmp(k, "pos_embed") ||
            !strncmp(k, "patch_embed.", 12))
            return 1;
    }
    return 0;
}

/* Parses "<int>." at *p, advancing past it. */
static bool parse_index(const char **p, int *out) {
    const char *q = *p;
    if (!isdigit((unsigned char)*q)) return false;
    long v = strtol(q, (char **)&q, 10);
    if (*q != '.' || v < 0 || v > 100000) return false;
    *out = (int)v;
    *p = q + 1;
    return true;
}

/* torch-hub name -> HF name: top-level tensors, and the per-block ones
 * (blocks.L.<hub> -> encoder.layer.L.<HF>); attn.qkv is split apart. */
static const char *const hub_top_names[][2] = {
    {"cls_token", "embeddings.cls_token"},
    {"pos_embed", "embeddings.position_embeddings"},
    {"mask_token", "embeddings.mask_token"},
    {"register_tokens", "embeddings.register_tokens"},
    {"patch_embed.proj.weight", "embeddings.patch_embeddings.projection.weight"},
    {"patch_embed.proj.bias", "embeddings.patch_embeddings.projection.bias"},
    {"norm.weight", "layernorm.weight"},
    {"norm.bias", "layernorm.bias"},
};
static const char *const hub_block_names[][2] = {
    {"norm1.weight", "norm1.weight"}, {"norm1.bias", "norm1.bias"},
    {"norm2.weight", "norm2.weight"}, {"norm2.bias", "norm2.bias"},
    {"attn.proj.weight", "attention.output.dense.weight"}, {"attn.proj.bias", "attention.output.dense.bias"},
    {"ls1.gamma", "layer_scale1.lambda1"}, {"ls2.gamma", "layer_scale2.lambda1"},
    {"mlp.fc1.weight", "mlp.fc1.weight"}, {"mlp.fc1.bias", "mlp.fc1.bias"},
    {"mlp.fc2.weight", "mlp.fc2.weight"}, {"mlp.fc2.bias", "mlp.fc2.bias"},
    {"mlp.w12.weight", "mlp.weights_in.weight"}, {"mlp.w12.bias", "mlp.weights_in.bias"},
    {"mlp.w3.weight", "mlp.weights_out.weight"}, {"mlp.w3.bias", "mlp.weights_out.bias"},
};

/* Puts t into out under the name for key (column `from` of hub_top_names)
 * in column `to`; false when key is not a top-level tensor name. */
static bool put_top_tensor(mvn_state *out, const char *key, int from, int to, mvt_tensor *t) {
    for (size_t j = 0; j < sizeof hub_top_names / sizeof hub_top_names[0]; j++)
        if (!strcmp(key, hub_top_names[j][from])) {
            mvn_state_put(out, hub_top_names[j][to], mvt_retain(t));
            return true;
        }
    return false;
}

/* Puts t into out under block `layer`'s name for key (column `from` of
 * hub_block_names) in column `to`, with name prefix fmt ("blocks.%d." or
 * "encoder.layer.%d."). False when key is not a block tensor name. */
static bool put_block_tensor(mvn_state *out, const char *key, int from, int to, const char *fmt, int layer, mvt_tensor *t) {
    for (size_t j = 0; j < sizeof hub_block_names / sizeof hub_block_names[0]; j++)
        if (!strcmp(key, hub_block_names[j][from])) {
            char nm[160];
            int n = snprintf(nm, sizeof nm, fmt, layer);
            snprintf(nm + n, sizeof nm - (size_t)n, "%s", hub_block_names[j][to]);
            mvn_state_put(out, nm, mvt_retain(t));
            return true;
        }
    return false;
}

/* Frees the renaming `out` (or s's old contents when it succeeded: the
 * contents are swapped, so the caller's pointer holds the renamed set). */
static int finish_rename(mvn_state *s, mvn_state *out, int rc) {
    if (!rc) {
        mvn_state tmp = *s;
        *s = *out;
        *out = tmp;
    }
    mvn_state_free(out);
    return rc;
}

int mvn_state_hub_to_hf(mvn_state *s, const char *what) {
    mvn_state *out = mvn_state_new();
    int rc = 0;
    for (int i = 0; i < s->n && !rc; i++) {
        const char *k = s->names[i];
        mvt_tensor *t = s->tensors[i];
        if (put_top_tensor(out, k, 0, 1, t)) continue;
        const char *p = k;
        int a, b, layer;
        if (strncmp(p, "blocks.", 7) != 0) { rc = mv_error("%s: tensor '%s': unknown torch-hub key", what, k); break; }
        p += 7;
        if (!parse_index(&p, &a)) { rc = mv_error("%s: tensor '%s': unknown torch-hub key", what, k); break; }
        layer = a;
        const char *q = p;
        if (parse_index(&q, &b)) { layer = b; p = q; }   /* chunked: blocks.<chunk>.<global index>.* */
        char nm[160];
        if (!strcmp(p, "attn.qkv.weight") || !strcmp(p, "attn.qkv.bias")) {
            bool w = !strcmp(p, "attn.qkv.weight");
            if (t->ndim != (w ? 2 : 1) || t->shape[0] % 3 != 0) {
                char sh[96];
                shape_str(t->ndim, t->shape, sh, sizeof sh);
                rc = mv_error("%s: tensor '%s' has shape %s, expected [3*D%s]", what, k, sh, w ? ", D" : "");
                break;
            }
            int64_t D = t->shape[0] / 3;
            static const char *const qkv[3] = {"query", "key", "value"};
            for (int r = 0; r < 3; r++) {
                mvt_tensor *part = mvt_narrow(t, 0, r * D, D);
                snprintf(nm, sizeof nm, "encoder.layer.%d.attention.attention.%s.%s", layer, qkv[r], w ? "weight" : "bias");
                mvn_state_put(out, nm, mvt_clone(part));
                mvt_release(part);
            }
            continue;
        }
        if (!put_block_tensor(out, p, 0, 1, "encoder.layer.%d.", layer, t))
            rc = mv_error("%s: tensor '%s': unknown torch-hub key", what, k);
    }
    return finish_rename(s, out, rc);
}

int mvn_state_hf_to_hub(mvn_state *s, const char *what) {
    mvn_state *out = mvn_state_new();
    int rc = 0;
    for (int i = 0; i < s->n && !rc; i++) {
        const char *k = s->names[i];
        mvt_tensor *t = s->tensors[i];
        if (put_top_tensor(out, k, 1, 0, t)) continue;
        int layer, used = 0;
        if (sscanf(k, "encoder.layer.%d.%n", &layer, &used) != 1 || used == 0) {
            rc = mv_error("%s: tensor '%s': not a DINOv2 HF key", what, k);
            break;
        }
        const char *p = k + used;
        char nm[160];
        if (!strncmp(p, "attention.attention.", 20)) {
            /* q, k and v are concatenated once, when the query is met */
            const char *rest = p + 20;
            if (strncmp(rest, "query.", 6) != 0) {
                if (strncmp(rest, "key.", 4) != 0 && strncmp(rest, "value.", 6) != 0) {
                    rc = mv_error("%s: tensor '%s': not a DINOv2 HF key", what, k);
                    break;
                }
                continue;
            }
            const char *suf = rest + 6;
            char nk[160], nv[160];
            snprintf(nk, sizeof nk, "encoder.layer.%d.attention.attention.key.%s", layer, suf);
            snprintf(nv, sizeof nv, "encoder.layer.%d.attention.attention.value.%s", layer, suf);
            const mvt_tensor *parts[3] = {t, mvn_state_get(s, nk), mvn_state_get(s, nv)};
            if (!parts[1] || !parts[2]) {
                rc = mv_error("%s: tensor '%s' has no matching key/value tensors", what, k);
                break;
            }
            snprintf(nm, sizeof nm, "blocks.%d.attn.qkv.%s", layer, suf);
            mvn_state_put(out, nm, mvt_concat(parts, 3, 0));
            continue;
        }
        if (!put_block_tensor(out, p, 1, 0, "blocks.%d.", layer, t))
            rc = mv_error("%s: tensor '%s': not a DINOv2 HF key", what, k);
    }
    return finish_rename(s, out, rc);
}

/* ---- safetensors ----------------------------------------------------------- */

mvn_state *mvn_state_load_safetensors(const char *path, mvt_dtype dt) {
    mvn_safetensors *st = mvn_st_open(path);
    if (!st) return NULL;
    mvn_state *s = mvn_state_new();
    for (int i = 0; i < st->n; i++) {
        mvt_tensor *t = mvn_st_read_index(st, i, dt);
        if (!t) { mvn_state_free(s); mvn_st_close(st); return NULL; }
        mvn_state_put(s, st->entries[i].name, t);
    }
    mvn_st_close(st);
    return s;
}

int mvn_config_infer(const mvn_state *s, mvn_vit_config *c, const char *what) {
    mvn_config_defaults(c);
    const mvt_tensor *cls = mvn_state_get(s, "embeddings.cls_token");
    const mvt_tensor *pos = mvn_state_get(s, "embeddings.position_embeddings");
    const mvt_tensor *pw = mvn_state_get(s, "embeddings.patch_embeddings.projection.weight");
    if (!cls || !pos || !pw || cls->ndim != 3 || pos->ndim != 3 || pw->ndim != 4)
        return mv_error("%s: cannot infer the model config (cls_token, position_embeddings or patch weights missing); pass a config.json", what);
    c->hidden_size = (int)cls->shape[2];
    c->patch_size = (int)pw->shape[2];
    c->num_channels = (int)pw->shape[1];
    int64_t npos = pos->shape[1] - 1;
    int64_t M = (int64_t)llround(sqrt((double)npos));
    if (M * M != npos) return mv_error("%s: position_embeddings hold %lld patches, not a square grid", what, (long long)npos);
    c->image_size = (int)(M * c->patch_size);
    if (c->hidden_size % 64) return mv_error("%s: hidden_size %d not a multiple of 64: cannot infer the number of heads; pass a config.json", what, c->hidden_size);
    c->num_attention_heads = c->hidden_size / 64;
    int L = 0;
    for (int i = 0; i < s->n; i++) {
        int l;
        if (sscanf(s->names[i], "encoder.layer.%d.", &l) == 1 && l + 1 > L) L = l + 1;
    }
    c->num_hidden_layers = L;
    const mvt_tensor *reg = mvn_state_get(s, "embeddings.register_tokens");
    c->num_register_tokens = reg && reg->ndim == 3 ? (int)reg->shape[1] : 0;
    c->qkv_bias = mvn_state_get(s, "encoder.layer.0.attention.attention.query.bias") != NULL || L == 0;
    c->layerscale = mvn_state_get(s, "encoder.layer.0.layer_scale1.lambda1") != NULL || L == 0;
    c->use_mask_token = mvn_state_get(s, "embeddings.mask_token") != NULL;
    const mvt_tensor *win = mvn_state_get(s, "encoder.layer.0.mlp.weights_in.weight");
    const mvt_tensor *fc1 = mvn_state_get(s, "encoder.layer.0.mlp.fc1.weight");
    if (win) {
        c->use_swiglu_ffn = true;
        int64_t target = win->shape[0] / 2;
        double cands[3] = {4.0, (double)target * 1.5 / c->hidden_size, (double)target / c->hidden_size};
        bool found = false;
        for (int k = 0; k < 3 && !found; k++) {
            c->mlp_ratio = cands[k];
            found = mvn_config_mlp_hidden(c) == target;
        }
        if (!found) return mv_error("%s: cannot infer mlp_ratio from SwiGLU width %lld; pass a config.json", what, (long long)target);
    } else if (fc1) {
        c->mlp_ratio = (double)fc1->shape[0] / c->hidden_size;
    }
    return mvn_config_validate(c, what);
}

/* ---- HDF5 checkpoint --------------------------------------------------------- */

/* Silences HDF5's automatic error printing while we handle errors ourselves. */
typedef struct { H5E_auto2_t fn; void *data; } h5_quiet;
static h5_quiet h5_quiet_begin(void) {
    h5_quiet q;
    H5Eget_auto2(H5E_DEFAULT, &q.fn, &q.data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    return q;
}
static void h5_quiet_end(h5_quiet q) { H5Eset_auto2(H5E_DEFAULT, q.fn, q.data); }

static int attr_write(hid_t loc, const char *name, hid_t type, const void *v) {
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, type, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t e = a < 0 ? -1 : H5Awrite(a, type, v);
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    return e < 0 ? -1 : 0;
}
static int attr_int(hid_t loc, const char *name, int64_t v) { return attr_write(loc, name, H5T_NATIVE_INT64, &v); }
static int attr_dbl(hid_t loc, const char *name, double v) { return attr_write(loc, name, H5T_NATIVE_DOUBLE, &v); }
static int attr_str(hid_t loc, const char *name, const char *v) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(v) + 1);
    int rc = attr_write(loc, name, t, v);
    H5Tclose(t);
    return rc;
}

static bool attr_read_dbl(hid_t loc, const char *name, double *v) {
    if (H5Aexists(loc, name) <= 0) return false;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    if (a < 0) return false;
    bool ok = H5Aread(a, H5T_NATIVE_DOUBLE, v) >= 0;
    H5Aclose(a);
    return ok;
}
static bool attr_read_str(hid_t loc, const char *name, char *buf, size_t n) {
    if (H5Aexists(loc, name) <= 0) return false;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    if (a < 0) return false;
    hid_t t = H5Aget_type(a);
    bool ok = false;
    if (H5Tget_class(t) == H5T_STRING) {
        if (H5Tis_variable_str(t) > 0) {
            char *s = NULL;
            hid_t mt = H5Tcopy(H5T_C_S1);
            H5Tset_size(mt, H5T_VARIABLE);
            if (H5Aread(a, mt, &s) >= 0 && s) { snprintf(buf, n, "%s", s); ok = true; H5free_memory(s); }
            H5Tclose(mt);
        } else {
            size_t sz = H5Tget_size(t);
            char *tmp = calloc(sz + 1, 1);
            hid_t mt = H5Tcopy(H5T_C_S1);
            H5Tset_size(mt, sz);
            if (H5Aread(a, mt, tmp) >= 0) { snprintf(buf, n, "%s", tmp); ok = true; }
            H5Tclose(mt);
            free(tmp);
        }
    }
    H5Tclose(t);
    H5Aclose(a);
    return ok;
}

static int cmp_str_ptr(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* CRC32 over (name, raw stored bytes) of every tensor, in strcmp order of names. */
static uint32_t state_crc(const mvn_state *s) {
    int *ord = malloc((size_t)(s->n > 0 ? s->n : 1) * sizeof *ord);
    char **names = malloc((size_t)(s->n > 0 ? s->n : 1) * sizeof *names);
    for (int i = 0; i < s->n; i++) names[i] = s->names[i];
    qsort(names, (size_t)s->n, sizeof *names, cmp_str_ptr);
    for (int i = 0; i < s->n; i++) ord[i] = mvn_state_find(s, names[i]);
    uLong crc = crc32(0L, Z_NULL, 0);
    for (int i = 0; i < s->n; i++) {
        const mvt_tensor *t = s->tensors[ord[i]];
        crc = crc32(crc, (const Bytef *)s->names[ord[i]], (uInt)strlen(s->names[ord[i]]));
        mvt_tensor *c = mvt_contiguous(t);
        const uint8_t *p = mvt_data(c);
        size_t nb = (size_t)mvt_numel(c) * mvt_dtype_size(c->dtype);
        while (nb > 0) {   /* crc32 takes uInt lengths */
            uInt chunk = nb > (1u << 30) ? (1u << 30) : (uInt)nb;
            crc = crc32(crc, p, chunk);
            p += chunk;
            nb -= chunk;
        }
        mvt_release(c);
    }
    free(ord);
    free(names);
    return (uint32_t)crc;
}

static int fsync_path(const char *path, bool dir) {
    int fd = open(path, dir ? O_RDONLY | O_DIRECTORY : O_RDONLY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int mvn_weights_save_h5(const char *path, const mvn_vit_config *c, const mvn_state *s) {
    if (mvn_state_check(s, c, path) != 0) return -1;
    for (int i = 0; i < s->n; i++)
        if (s->tensors[i]->dtype == MVT_I64) return mv_error("%s: tensor '%s' is int64, expected float", path, s->names[i]);
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 32);
    snprintf(tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
    h5_quiet q = h5_quiet_begin();
    int rc = 0;
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) { h5_quiet_end(q); rc = mv_error("%s: cannot create (temporary %s)", path, tmp); free(tmp); return rc; }
    int e = 0;
    e |= attr_str(f, "format", MVN_WEIGHTS_FORMAT);
    e |= attr_int(f, "format_version", MVN_WEIGHTS_FORMAT_VERSION);
    e |= attr_int(f, "hidden_size", c->hidden_size);
    e |= attr_int(f, "num_hidden_layers", c->num_hidden_layers);
    e |= attr_int(f, "num_attention_heads", c->num_attention_heads);
    e |= attr_dbl(f, "mlp_ratio", c->mlp_ratio);
    e |= attr_int(f, "patch_size", c->patch_size);
    e |= attr_int(f, "image_size", c->image_size);
    e |= attr_int(f, "num_channels", c->num_channels);
    e |= attr_dbl(f, "layer_norm_eps", c->layer_norm_eps);
    e |= attr_int(f, "use_swiglu_ffn", c->use_swiglu_ffn);
    e |= attr_int(f, "num_register_tokens", c->num_register_tokens);
    e |= attr_int(f, "layerscale", c->layerscale);
    e |= attr_dbl(f, "layerscale_value", c->layerscale_value);
    e |= attr_int(f, "qkv_bias", c->qkv_bias);
    e |= attr_int(f, "use_mask_token", c->use_mask_token);
    e |= attr_str(f, "pos_interp", c->pos_interp == MVN_POS_HUB ? "hub" : "size");
    e |= attr_str(f, "names", "HuggingFace Dinov2Model parameter names");
    e |= attr_int(f, "checksum_crc32", (int64_t)state_crc(s));
    for (int i = 0; i < s->n && !e; i++) {
        mvt_tensor *t = mvt_contiguous(s->tensors[i]);
        hsize_t dims[MVT_MAX_DIMS];
        for (int d = 0; d < t->ndim; d++) dims[d] = (hsize_t)t->shape[d];
        hid_t sp = t->ndim ? H5Screate_simple(t->ndim, dims, NULL) : H5Screate(H5S_SCALAR);
        hid_t ty = t->dtype == MVT_F64 ? H5T_IEEE_F64LE : H5T_IEEE_F32LE;
        hid_t mty = t->dtype == MVT_F64 ? H5T_NATIVE_DOUBLE : H5T_NATIVE_FLOAT;
        hid_t ds = H5Dcreate2(f, s->names[i], ty, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (ds < 0 || H5Dwrite(ds, mty, H5S_ALL, H5S_ALL, H5P_DEFAULT, mvt_data(t)) < 0) e = -1;
        if (ds >= 0) H5Dclose(ds);
        H5Sclose(sp);
        mvt_release(t);
        if (e) rc = mv_error("%s: cannot write dataset '%s'", path, s->names[i]);
    }
    if (!e && H5Fflush(f, H5F_SCOPE_GLOBAL) < 0) e = -1;
    if (H5Fclose(f) < 0) e = -1;
    h5_quiet_end(q);
    if (!e && fsync_path(tmp, false) != 0) e = -1;
    if (!e && rename(tmp, path) != 0) e = -1;
    if (e) {
        if (!rc) rc = mv_error("%s: writing the weights failed: %s", path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return rc;
    }
    free(tmp);
    char *dcopy = strdup(path);
    fsync_path(dirname(dcopy), true);   /* make the rename durable; best effort */
    free(dcopy);
    return 0;
}

typedef struct { char **names; int n, cap; } name_list;
static herr_t list_cb(hid_t g, const char *name, const H5L_info_t *info, void *op) {
    (void)g; (void)info;
    name_list *l = op;
    if (l->n == l->cap) { l->cap = l->cap ? 2 * l->cap : 64; l->names = realloc(l->names, (size_t)l->cap * sizeof *l->names); }
    l->names[l->n++] = strdup(name);
    return 0;
}

mvn_state *mvn_weights_load_h5(const char *path, mvn_vit_config *c, mvt_dtype dt) {
    h5_quiet q = h5_quiet_begin();
    mvn_state *s = NULL, *stored = NULL;
    name_list l = {0};
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) { mv_error("%s: cannot open as HDF5", path); goto done; }
    char fmt[128];
    if (!attr_read_str(f, "format", fmt, sizeof fmt) || strcmp(fmt, MVN_WEIGHTS_FORMAT) != 0) {
        mv_error("%s: not an mvead weights file (attribute format != \"%s\")", path, MVN_WEIGHTS_FORMAT);
        goto done;
    }
    double v;
    if (!attr_read_dbl(f, "format_version", &v)) { mv_error("%s: attribute format_version missing", path); goto done; }
    if ((int)v != MVN_WEIGHTS_FORMAT_VERSION) {
        mv_error("%s: format_version %d, this build reads version %d", path, (int)v, MVN_WEIGHTS_FORMAT_VERSION);
        goto done;
    }
    mvn_config_defaults(c);
    static const char *const int_keys[] = {"hidden_size", "num_hidden_layers", "num_attention_heads", "patch_size",
                                           "image_size", "num_channels", "num_register_tokens"};
    int *int_dst[] = {&c->hidden_size, &c->num_hidden_layers, &c->num_attention_heads, &c->patch_size,
                      &c->image_size, &c->num_channels, &c->num_register_tokens};
    for (size_t k = 0; k < sizeof int_keys / sizeof int_keys[0]; k++) {
        if (!attr_read_dbl(f, int_keys[k], &v)) { mv_error("%s: config attribute '%s' missing", path, int_keys[k]); goto done; }
        *int_dst[k] = (int)v;
    }
    static const char *const bool_keys[] = {"use_swiglu_ffn", "layerscale", "qkv_bias", "use_mask_token"};
    bool *bool_dst[] = {&c->use_swiglu_ffn, &c->layerscale, &c->qkv_bias, &c->use_mask_token};
    for (size_t k = 0; k < sizeof bool_keys / sizeof bool_keys[0]; k++) {
        if (!attr_read_dbl(f, bool_keys[k], &v)) { mv_error("%s: config attribute '%s' missing", path, bool_keys[k]); goto done; }
        *bool_dst[k] = v != 0;
    }
    if (!attr_read_dbl(f, "mlp_ratio", &c->mlp_ratio) || !attr_read_dbl(f, "layer_norm_eps", &c->layer_norm_eps)) {
        mv_error("%s: config attribute mlp_ratio or layer_norm_eps missing", path);
        goto done;
    }
    attr_read_dbl(f, "layerscale_value", &c->layerscale_value);
    char pi[16];
    if (attr_read_str(f, "pos_interp", pi, sizeof pi)) c->pos_interp = strcmp(pi, "hub") == 0 ? MVN_POS_HUB : MVN_POS_SIZE;
    if (mvn_config_validate(c, path) != 0) goto done;

    H5Literate(f, H5_INDEX_NAME, H5_ITER_INC, NULL, list_cb, &l);
    stored = mvn_state_new();
    for (int i = 0; i < l.n; i++) {
        hid_t ds = H5Dopen2(f, l.names[i], H5P_DEFAULT);
        if (ds < 0) { mv_error("%s: '%s' is not a dataset", path, l.names[i]); goto done; }
        hid_t ty = H5Dget_type(ds), sp = H5Dget_space(ds);
        int nd = H5Sget_simple_extent_ndims(sp);
        bool isfloat = H5Tget_class(ty) == H5T_FLOAT;
        size_t esz = H5Tget_size(ty);
        H5Tclose(ty);
        if (!isfloat || (esz != 4 && esz != 8) || nd < 0 || nd > MVT_MAX_DIMS) {
            H5Sclose(sp); H5Dclose(ds);
            mv_error("%s: dataset '%s' must be float32/float64 with at most %d dims", path, l.names[i], MVT_MAX_DIMS);
            goto done;
        }
        hsize_t dims[MVT_MAX_DIMS];
        int64_t shape[MVT_MAX_DIMS];
        H5Sget_simple_extent_dims(sp, dims, NULL);
        for (int d = 0; d < nd; d++) shape[d] = (int64_t)dims[d];
        H5Sclose(sp);
        mvt_tensor *t = mvt_empty(esz == 8 ? MVT_F64 : MVT_F32, nd, shape);
        herr_t e = H5Dread(ds, esz == 8 ? H5T_NATIVE_DOUBLE : H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, mvt_data(t));
        H5Dclose(ds);
        if (e < 0) { mvt_release(t); mv_error("%s: cannot read dataset '%s'", path, l.names[i]); goto done; }
        mvn_state_put(stored, l.names[i], t);
    }
    if (attr_read_dbl(f, "checksum_crc32", &v)) {
        uint32_t want = (uint32_t)(int64_t)v, got = state_crc(stored);
        if (want != got) { mv_error("%s: checksum mismatch (stored %08x, data %08x): file corrupt", path, want, got); goto done; }
    } else {
        mv_error("%s: attribute checksum_crc32 missing", path);
        goto done;
    }
    if (mvn_state_check(stored, c, path) != 0) goto done;
    s = mvn_state_new();
    for (int i = 0; i < stored->n; i++) {
        mvt_tensor *t = stored->tensors[i];
        mvn_state_put(s, stored->names[i], t->dtype == dt ? mvt_retain(t) : mvt_to_dtype(t, dt));
    }
done:
    for (int i = 0; i < l.n; i++) free(l.names[i]);
    free(l.names);
    mvn_state_free(stored);
    if (f >= 0) H5Fclose(f);
    h5_quiet_end(q);
    return s;
}

/* ---- dispatch ------------------------------------------------------------------ */

static bool file_exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0;
}

static bool is_hdf5(const char *path) {
    static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    unsigned char buf[8];
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    bool ok = fread(buf, 1, 8, f) == 8 && memcmp(buf, sig, 8) == 0;
    fclose(f);
    return ok;
}

mvn_state *mvn_weights_load(const char *path, const char *config_json, mvt_dtype dt, mvn_vit_config *c) {
    if (!file_exists(path)) { mv_error("%s: weights file not found", path); return NULL; }
    if (is_hdf5(path)) return mvn_weights_load_h5(path, c, dt);
    mvn_state *s = mvn_state_load_safetensors(path, dt);
    if (!s) return NULL;
    if (mvn_state_is_hub(s) && mvn_state_hub_to_hf(s, path) != 0) { mvn_state_free(s); return NULL; }
    char buf[4096];
    const char *cfgp = config_json;
    if (!cfgp) {
        char *dcopy = strdup(path);
        snprintf(buf, sizeof buf, "%s/config.json", dirname(dcopy));
        free(dcopy);
        if (file_exists(buf)) cfgp = buf;
    }
    int rc = cfgp ? mvn_config_load_json(cfgp, c) : mvn_config_infer(s, c, path);
    if (rc == 0) rc = mvn_state_check(s, c, path);
    if (rc != 0) { mvn_state_free(s); return NULL; }
    return s;
}

int mvn_import_weights(const char *src, const char *config_json, const char *dst) {
    /* keep F64 sources in float64, everything else in float32 (exact for F16/BF16) */
    mvn_safetensors *st = mvn_st_open(src);
    if (!st) return -1;
    mvt_dtype dt = MVT_F32;
    for (int i = 0; i < st->n; i++)
        if (st->entries[i].dtype == MVN_ST_F64) dt = MVT_F64;
    mvn_st_close(st);
    mvn_vit_config c;
    mvn_state *s = mvn_weights_load(src, config_json, dt, &c);
    if (!s) return -1;
    int rc = mvn_weights_save_h5(dst, &c, s);
    mvn_state_free(s);
    return rc;
}
