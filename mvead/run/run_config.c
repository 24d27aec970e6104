#include "mvead/run/run_config.h"
#include "data/fileio.h"
#include "mvead/method/eam.h"
#include "mvead/method/objective.h"
#include "tensor/error.h"
#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#define S(f, h, ch) {#f, MVEAD_OPT_STR, offsetof(mvead_config, f), sizeof(((mvead_config *)0)->f), h, ch}
#define I(f, h) {#f, MVEAD_OPT_INT, offsetof(mvead_config, f), sizeof(int), h, NULL}
#define U(f, h) {#f, MVEAD_OPT_U64, offsetof(mvead_config, f), sizeof(uint64_t), h, NULL}
#define D(f, h) {#f, MVEAD_OPT_DBL, offsetof(mvead_config, f), sizeof(double), h, NULL}
#define B(f, h) {#f, MVEAD_OPT_BOOL, offsetof(mvead_config, f), sizeof(bool), h, NULL}

const mvead_option mvead_options[] = {
    S(name, "the run: its folder is <runs>/<name>/", NULL),
    S(runs, "root folder of runs", NULL),
    S(data, "dataset root (holds realiad_1024/ and realiad_jsons/)", NULL),
    S(cache, "feature cache folder (default <runs>/<name>/features; share it across ablation runs)", NULL),
    S(categories, "'all' (multi-class) or a comma list; one category = single-class", NULL),
    U(seed, "random seed (everything is deterministic for a seed)"),
    I(threads, "OpenMP/BLAS threads (0: default)"),
    B(quiet, "no progress output"),
    S(backbone, "tiny | vits14 | vitb14 | vitl14 | vitg14 (random weights) or a .safetensors/.h5 weights file", NULL),
    I(layer, "1-based backbone block whose patch tokens are the features"),
    I(image_size, "network input size (multiple of the patch size)"),
    B(final_norm, "apply the backbone's final LayerNorm to the features"),
    S(pos_interp, "position-embedding interpolation", "size|hub"),
    S(cache_dtype, "feature cache storage type", "float32|float16"),
    I(extract_batch, "images per backbone forward during extraction"),
    S(calib, "calibration JSON (default <data>/calibration.json)", NULL),
    D(delta, "epipolar band half-width, in patches"),
    S(fusion, "cross-view fusion", MVEAD_FUSION_CHOICES),
    S(attention, "EAM attention: block-sparse over the mask's kept keys, or the dense (VN x VN) reference (same results)", MVEAD_ATTENTION_CHOICES),
    S(init, "EAM initialisation", "copy|random"),
    S(objective, "pre-training objective", MVEAD_OBJECTIVE_CHOICES),
    I(centers, "K: centres per view (MCP)"),
    I(n_k, "negatives taken per other view"),
    D(lambda, "weight of the negative-sample loss"),
    I(epochs, "training epochs"),
    I(batch, "samples per training step"),
    D(lr, "AdamW learning rate"),
    D(wd, "AdamW decoupled weight decay"),
    I(mvas_window, "MVAS window COUNT per side, n_win (grid zero-padded to a multiple, n_win x n_win windows; MVAD: 6)"),
    I(mvas_topk, "MVAS windows kept per query window, one top-k over all support views (MVAD: 4)"),
    S(bank_mode, "memory bank per view or pooled over views", "per-view|pooled"),
    D(coreset_ratio, "fraction of training patches kept by the greedy coreset (1 = all)"),
    S(coreset_mode, "coreset selection", "exact|approx"),
    D(memory_mb, "MiB of large arrays held in memory (fused training features for centres and bank; eval's anomaly maps and pixel-metric keys); more go to scratch files in the run folder (0: half the physical memory)"),
    D(sigma, "Gaussian blur of anomaly maps, in pixels"),
    B(heatmaps, "write heatmap overlays (PNG) during eval"),
    S(eval_size, "pixel metrics at each mask's original size (maps resized with OpenCV INTER_LINEAR, as Real-IAD's official tool) or at N x N", NULL),
    B(save_maps, "eval writes every view's anomaly map at the evaluation size to <run>/anomaly_maps.h5 (for ADEval: scripts/anomaly_maps_to_adeval.py)"),
    B(resume, "continue an interrupted run from its checkpoint / partial cache"),
    S(nan_policy, "non-finite loss or gradient", "stop|skip"),
};
const int mvead_n_options = (int)(sizeof mvead_options / sizeof mvead_options[0]);

int mvead_eval_size(const mvead_config *c) {
    if (!strcmp(c->eval_size, "original")) return 0;
    char *end;
    errno = 0;
    long n = strtol(c->eval_size, &end, 10);
    if (errno || end == c->eval_size || *end || n < 1 || n > 16384)
        return mv_error("--eval_size must be 'original' or a size in pixels from 1 to 16384, got '%s'", c->eval_size);
    return (int)n;
}

void mvead_config_defaults(mvead_config *c) {
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "default");
    snprintf(c->runs, sizeof c->runs, "runs");
    snprintf(c->data, sizeof c->data, "data/synth");
    snprintf(c->categories, sizeof c->categories, "all");
    c->seed = 1;
    snprintf(c->backbone, sizeof c->backbone, "tiny");
    c->layer = 7;
    c->image_size = 224;
    snprintf(c->pos_interp, sizeof c->pos_interp, "size");
    snprintf(c->cache_dtype, sizeof c->cache_dtype, "float32");
    c->extract_batch = 5;
    c->delta = 1.0;
    snprintf(c->fusion, sizeof c->fusion, "eam");
    snprintf(c->attention, sizeof c->attention, "%s", mvead_attention_name((mvead_attention)0));
    snprintf(c->init, sizeof c->init, "copy");
    snprintf(c->objective, sizeof c->objective, "mcp+reg");
    c->centers = 20;
    c->n_k = 1;
    c->lambda = 0.1;
    c->epochs = 50;
    c->batch = 8;
    c->lr = 1e-4;
    c->wd = 1e-4;
    c->mvas_window = 6;   /* MVAD's n_win and top-k */
    c->mvas_topk = 4;
    snprintf(c->bank_mode, sizeof c->bank_mode, "per-view");
    c->coreset_ratio = 0.1;
    snprintf(c->coreset_mode, sizeof c->coreset_mode, "exact");
    c->sigma = 4.0;
    c->heatmaps = true;
    snprintf(c->eval_size, sizeof c->eval_size, "original");
    snprintf(c->nan_policy, sizeof c->nan_policy, "stop");
}


const mvead_option *mvead_option_find(const char *name) {
    for (int i = 0; i < mvead_n_options; i++)
        if (!strcmp(mvead_options[i].name, name)) return &mvead_options[i];
    /* accept dashes for underscores: --image-size */
    char buf[64];
    snprintf(buf, sizeof buf, "%s", name);
    for (char *p = buf; *p; p++) if (*p == '-') *p = '_';
    for (int i = 0; i < mvead_n_options; i++)
        if (!strcmp(mvead_options[i].name, buf)) return &mvead_options[i];
    return NULL;
}


static bool in_choices(const char *choices, const char *v) {
    if (!choices) return true;
    size_t n = strlen(v);
    for (const char *p = choices; *p;) {
        const char *e = strchr(p, '|');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && !strncmp(p, v, n)) return true;
        if (!e) break;
        p = e + 1;
    }
    return false;
}


int mvead_option_set(mvead_config *c, const mvead_option *o, const char *v, const char *where) {
    char *end = NULL;
    void *dst = (char *)c + o->off;
    errno = 0;
    switch (o->type) {
    case MVEAD_OPT_STR:
        if (strlen(v) >= o->size) return mv_error("%s: value of --%s is too long (max %zu chars)", where, o->name, o->size - 1);
        if (!in_choices(o->choices, v)) return mv_error("%s: --%s must be one of %s, got '%s'", where, o->name, o->choices, v);
        memcpy(dst, v, strlen(v) + 1);
        return 0;
    case MVEAD_OPT_INT: {
        long x = strtol(v, &end, 10);
        if (!*v || *end || errno || x < INT_MIN || x > INT_MAX) return mv_error("%s: --%s expects an integer, got '%s'", where, o->name, v);
        *(int *)dst = (int)x;
        return 0;
    }
    case MVEAD_OPT_U64: {
        unsigned long long x = strtoull(v, &end, 10);
        if (!*v || *end || errno || v[0] == '-') return mv_error("%s: --%s expects a non-negative integer, got '%s'", where, o->name, v);
        *(uint64_t *)dst = x;
        return 0;
    }
    case MVEAD_OPT_DBL: {
        double x = strtod(v, &end);
        if (!*v || *end || errno || !isfinite(x)) return mv_error("%s: --%s expects a finite number, got '%s'", where, o->name, v);
        *(double *)dst = x;
        return 0;
    }
    case MVEAD_OPT_BOOL:
        if (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes")) *(bool *)dst = true;
        else if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "no")) *(bool *)dst = false;
        else return mv_error("%s: --%s expects true or false, got '%s'", where, o->name, v);
        return 0;
    }
    return -1;
}


/* Range checks that every command relies on. */
int mvead_config_validate(const mvead_config *c) {
    if (c->layer < 1) return mv_error("--layer must be >= 1, got %d", c->layer);
    if (c->image_size < 14 || c->image_size > 4096) return mv_error("--image_size must be in [14, 4096], got %d", c->image_size);
    if (c->delta < 0) return mv_error("--delta must be >= 0, got %g", c->delta);
    if (c->centers < 1) return mv_error("--centers must be >= 1, got %d", c->centers);
    if (c->n_k < 0) return mv_error("--n_k must be >= 0, got %d", c->n_k);
    if (c->epochs < 0) return mv_error("--epochs must be >= 0, got %d", c->epochs);
    if (c->batch < 1) return mv_error("--batch must be >= 1, got %d", c->batch);
    if (!(c->memory_mb >= 0)) return mv_error("--memory_mb must be >= 0 (0: half the physical memory), got %g", c->memory_mb);
    if (c->extract_batch < 1) return mv_error("--extract_batch must be >= 1, got %d", c->extract_batch);
    if (!(c->lr >= 0)) return mv_error("--lr must be >= 0, got %g", c->lr);
    if (!(c->wd >= 0)) return mv_error("--wd must be >= 0, got %g", c->wd);
    if (!(c->coreset_ratio > 0 && c->coreset_ratio <= 1)) return mv_error("--coreset_ratio must be in (0, 1], got %g", c->coreset_ratio);
    if (!(c->sigma >= 0)) return mv_error("--sigma must be >= 0, got %g", c->sigma);
    if (c->threads < 0) return mv_error("--threads must be >= 0, got %d", c->threads);
    if (c->mvas_window < 1 || c->mvas_topk < 1) return mv_error("--mvas_window and --mvas_topk must be >= 1");
    if (mvead_eval_size(c) < 0) return -1;
    if (!c->name[0] || strchr(c->name, '/')) return mv_error("--name must be a non-empty name without '/', got '%s'", c->name);
    return 0;
}


static int load_json_root(mvead_config *c, json_object *root, const char *path);

int mvead_config_load_json(mvead_config *c, const char *path) {
    json_object *root = json_object_from_file(path);
    if (!root) return mv_error("%s: cannot read config (missing file or invalid JSON: %s)", path, json_util_get_last_err() ? json_util_get_last_err() : "?");
    return load_json_root(c, root, path);
}

int mvead_config_load_json_text(mvead_config *c, const char *text, const char *where) {
    json_object *root = json_tokener_parse(text);
    if (!root) return mv_error("%s: the stored options are not valid JSON", where);
    return load_json_root(c, root, where);
}

/* Takes root's reference. */
static int load_json_root(mvead_config *c, json_object *root, const char *path) {
    if (!json_object_is_type(root, json_type_object)) {
        json_object_put(root);
        return mv_error("%s: config must be a JSON object of option names", path);
    }
    int rc = 0;
    json_object_object_foreach(root, key, val) {
        const mvead_option *o = mvead_option_find(key);
        if (!o) { rc = mv_error("%s: unknown option '%s'", path, key); break; }
        char buf[64];
        const char *s;
        if (o->type == MVEAD_OPT_STR) {
            if (!json_object_is_type(val, json_type_string)) { rc = mv_error("%s: option '%s' must be a string", path, key); break; }
            s = json_object_get_string(val);
        } else if (o->type == MVEAD_OPT_BOOL) {
            if (!json_object_is_type(val, json_type_boolean)) { rc = mv_error("%s: option '%s' must be true or false", path, key); break; }
            s = json_object_get_boolean(val) ? "true" : "false";
        } else if (o->type == MVEAD_OPT_DBL) {
            if (!json_object_is_type(val, json_type_double) && !json_object_is_type(val, json_type_int)) { rc = mv_error("%s: option '%s' must be a number", path, key); break; }
            snprintf(buf, sizeof buf, "%.17g", json_object_get_double(val));
            s = buf;
        } else {
            if (!json_object_is_type(val, json_type_int)) { rc = mv_error("%s: option '%s' must be an integer", path, key); break; }
            if (o->type == MVEAD_OPT_U64) snprintf(buf, sizeof buf, "%llu", (unsigned long long)json_object_get_uint64(val));
            else snprintf(buf, sizeof buf, "%lld", (long long)json_object_get_int64(val));
            s = buf;
        }
        if (mvead_option_set(c, o, s, path)) { rc = -1; break; }
    }
    json_object_put(root);
    return rc;
}

char *mvead_config_to_json(const mvead_config *c) {
    json_object *root = json_object_new_object();
    for (int i = 0; i < mvead_n_options; i++) {
        const mvead_option *o = &mvead_options[i];
        const void *src = (const char *)c + o->off;
        json_object *v = NULL;
        switch (o->type) {
        case MVEAD_OPT_STR: v = json_object_new_string((const char *)src); break;
        case MVEAD_OPT_INT: v = json_object_new_int(*(const int *)src); break;
        case MVEAD_OPT_U64: v = json_object_new_uint64(*(const uint64_t *)src); break;
        case MVEAD_OPT_DBL: v = json_object_new_double(*(const double *)src); break;
        case MVEAD_OPT_BOOL: v = json_object_new_boolean(*(const bool *)src); break;
        }
        json_object_object_add(root, o->name, v);
    }
    char *txt = strdup(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED));
    json_object_put(root);
    return txt;
}

int mvead_config_write_json(const mvead_config *c, const char *path) {
    char *txt = mvead_config_to_json(c);
    int rc = mvd_file_write_atomic(path, txt, strlen(txt));
    free(txt);
    return rc;
}

