/* ViT config: HF config.json parsing and DINOv2 presets; see config.h. */
#include "nn/config.h"
#include "tensor/error.h"

#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void mvn_config_defaults(mvn_vit_config *c) {
    /* transformers Dinov2Config() defaults */
    c->hidden_size = 768;
    c->num_hidden_layers = 12;
    c->num_attention_heads = 12;
    c->mlp_ratio = 4.0;
    c->patch_size = 14;
    c->image_size = 224;
    c->num_channels = 3;
    c->layer_norm_eps = 1e-6;
    c->use_swiglu_ffn = false;
    c->num_register_tokens = 0;
    c->layerscale = true;
    c->layerscale_value = 1.0;
    c->qkv_bias = true;
    c->use_mask_token = true;
    c->pos_interp = MVN_POS_SIZE;
}

int mvn_config_preset(const char *name, mvn_vit_config *c) {
    mvn_config_defaults(c);
    c->image_size = 518;   /* the released DINOv2 checkpoints: 37 x 37 grid of 14-px patches */
    const char *n = name;
    if (strncasecmp(n, "dinov2_", 7) == 0 || strncasecmp(n, "dinov2-", 7) == 0) n += 7;
    if (!strcasecmp(n, "vits14") || !strcasecmp(n, "small") || !strcasecmp(n, "S") || !strcasecmp(n, "vit_small")) {
        c->hidden_size = 384; c->num_hidden_layers = 12; c->num_attention_heads = 6;
    } else if (!strcasecmp(n, "vitb14") || !strcasecmp(n, "base") || !strcasecmp(n, "B") || !strcasecmp(n, "vit_base")) {
        c->hidden_size = 768; c->num_hidden_layers = 12; c->num_attention_heads = 12;
    } else if (!strcasecmp(n, "vitl14") || !strcasecmp(n, "large") || !strcasecmp(n, "L") || !strcasecmp(n, "vit_large")) {
        c->hidden_size = 1024; c->num_hidden_layers = 24; c->num_attention_heads = 16;
    } else if (!strcasecmp(n, "vitg14") || !strcasecmp(n, "giant") || !strcasecmp(n, "G") || !strcasecmp(n, "vit_giant2")) {
        c->hidden_size = 1536; c->num_hidden_layers = 40; c->num_attention_heads = 24; c->use_swiglu_ffn = true;
    } else {
        return mv_error("backbone preset '%s': unknown (expected vits14, vitb14, vitl14 or vitg14)", name);
    }
    return 0;
}

int mvn_config_grid(const mvn_vit_config *c) { return c->image_size / c->patch_size; }

int mvn_config_mlp_hidden(const mvn_vit_config *c) {
    int hidden = (int)(c->hidden_size * c->mlp_ratio);
    if (c->use_swiglu_ffn) hidden = ((int)(hidden * 2.0 / 3.0) + 7) / 8 * 8;
    return hidden;
}

int mvn_config_validate(const mvn_vit_config *c, const char *what) {
    if (c->hidden_size <= 0 || c->num_hidden_layers < 0 || c->num_attention_heads <= 0)
        return mv_error("%s: hidden_size, num_hidden_layers, num_attention_heads must be positive", what);
    if (c->hidden_size % c->num_attention_heads)
        return mv_error("%s: hidden_size %d is not divisible by num_attention_heads %d", what, c->hidden_size, c->num_attention_heads);
    if (c->patch_size <= 0 || c->image_size <= 0 || c->image_size % c->patch_size)
        return mv_error("%s: image_size %d must be a positive multiple of patch_size %d", what, c->image_size, c->patch_size);
    if (c->num_channels <= 0) return mv_error("%s: num_channels must be positive", what);
    if (!(c->mlp_ratio > 0) || mvn_config_mlp_hidden(c) <= 0) return mv_error("%s: mlp_ratio must be positive", what);
    if (!(c->layer_norm_eps > 0)) return mv_error("%s: layer_norm_eps must be positive", what);
    if (c->num_register_tokens < 0) return mv_error("%s: num_register_tokens must be >= 0", what);
    return 0;
}

/* ---- JSON --------------------------------------------------------------- */

static int get_int(struct json_object *root, const char *what, const char *key, int *out) {
    struct json_object *v;
    if (!json_object_object_get_ex(root, key, &v) || json_object_is_type(v, json_type_null)) return 0;
    if (json_object_is_type(v, json_type_int)) { *out = json_object_get_int(v); return 0; }
    if (json_object_is_type(v, json_type_double)) {
        double d = json_object_get_double(v);
        if (d == floor(d) && fabs(d) < 1e9) { *out = (int)d; return 0; }
    }
    return mv_error("%s: \"%s\" must be an integer", what, key);
}

static int get_double(struct json_object *root, const char *what, const char *key, double *out) {
    struct json_object *v;
    if (!json_object_object_get_ex(root, key, &v) || json_object_is_type(v, json_type_null)) return 0;
    if (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)) {
        *out = json_object_get_double(v);
        return 0;
    }
    return mv_error("%s: \"%s\" must be a number", what, key);
}

static int get_bool(struct json_object *root, const char *what, const char *key, bool *out) {
    struct json_object *v;
    if (!json_object_object_get_ex(root, key, &v) || json_object_is_type(v, json_type_null)) return 0;
    if (json_object_is_type(v, json_type_boolean)) { *out = json_object_get_boolean(v); return 0; }
    return mv_error("%s: \"%s\" must be true or false", what, key);
}

int mvn_config_parse_json(const char *json, const char *what, mvn_vit_config *c) {
    mvn_config_defaults(c);
    struct json_tokener *tok = json_tokener_new();
    struct json_object *root = json_tokener_parse_ex(tok, json, (int)strlen(json));
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    json_tokener_free(tok);
    if (!root || jerr != json_tokener_success) {
        if (root) json_object_put(root);
        return mv_error("%s: invalid JSON: %s", what, jerr == json_tokener_continue ? "incomplete" : json_tokener_error_desc(jerr));
    }
    if (!json_object_is_type(root, json_type_object)) { json_object_put(root); return mv_error("%s: not a JSON object", what); }
    int rc = 0;
    struct json_object *mt;
    if (json_object_object_get_ex(root, "model_type", &mt) && json_object_is_type(mt, json_type_string)) {
        const char *s = json_object_get_string(mt);
        if (strcmp(s, "dinov2") != 0 && strcmp(s, "dinov2_with_registers") != 0)
            rc = mv_error("%s: model_type \"%s\" is not a DINOv2 model (expected dinov2 or dinov2_with_registers)", what, s);
    }
    if (!rc) rc = get_int(root, what, "hidden_size", &c->hidden_size);
    if (!rc) rc = get_int(root, what, "num_hidden_layers", &c->num_hidden_layers);
    if (!rc) rc = get_int(root, what, "num_attention_heads", &c->num_attention_heads);
    if (!rc) rc = get_double(root, what, "mlp_ratio", &c->mlp_ratio);
    if (!rc) rc = get_int(root, what, "patch_size", &c->patch_size);
    if (!rc) rc = get_int(root, what, "image_size", &c->image_size);
    if (!rc) rc = get_int(root, what, "num_channels", &c->num_channels);
    if (!rc) rc = get_double(root, what, "layer_norm_eps", &c->layer_norm_eps);
    if (!rc) rc = get_bool(root, what, "use_swiglu_ffn", &c->use_swiglu_ffn);
    if (!rc) rc = get_int(root, what, "num_register_tokens", &c->num_register_tokens);
    if (!rc) rc = get_bool(root, what, "layerscale", &c->layerscale);
    if (!rc) rc = get_double(root, what, "layerscale_value", &c->layerscale_value);
    if (!rc) rc = get_bool(root, what, "qkv_bias", &c->qkv_bias);
    if (!rc) rc = get_bool(root, what, "use_mask_token", &c->use_mask_token);
    struct json_object *pi;
    if (!rc && json_object_object_get_ex(root, "mvead_pos_interp", &pi) && json_object_is_type(pi, json_type_string)) {
        const char *s = json_object_get_string(pi);
        if (!strcmp(s, "size")) c->pos_interp = MVN_POS_SIZE;
        else if (!strcmp(s, "hub")) c->pos_interp = MVN_POS_HUB;
        else rc = mv_error("%s: \"mvead_pos_interp\" must be \"size\" or \"hub\", got \"%s\"", what, s);
    }
    json_object_put(root);
    if (!rc) rc = mvn_config_validate(c, what);
    return rc;
}

int mvn_config_load_json(const char *path, mvn_vit_config *c) {
    FILE *f = fopen(path, "rb");
    if (!f) return mv_error("%s: cannot open config: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (n < 0 || n > 16 * 1024 * 1024) { fclose(f); return mv_error("%s: config file size %ld is not sane", path, n); }
    char *buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    fclose(f);
    buf[got] = 0;
    int rc = mvn_config_parse_json(buf, path, c);
    free(buf);
    return rc;
}

int mvn_config_save_json(const char *path, const mvn_vit_config *c) {
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "model_type", json_object_new_string(c->num_register_tokens ? "dinov2_with_registers" : "dinov2"));
    json_object_object_add(o, "hidden_size", json_object_new_int(c->hidden_size));
    json_object_object_add(o, "num_hidden_layers", json_object_new_int(c->num_hidden_layers));
    json_object_object_add(o, "num_attention_heads", json_object_new_int(c->num_attention_heads));
    json_object_object_add(o, "mlp_ratio", json_object_new_double(c->mlp_ratio));
    json_object_object_add(o, "patch_size", json_object_new_int(c->patch_size));
    json_object_object_add(o, "image_size", json_object_new_int(c->image_size));
    json_object_object_add(o, "num_channels", json_object_new_int(c->num_channels));
    json_object_object_add(o, "layer_norm_eps", json_object_new_double(c->layer_norm_eps));
    json_object_object_add(o, "use_swiglu_ffn", json_object_new_boolean(c->use_swiglu_ffn));
    json_object_object_add(o, "num_register_tokens", json_object_new_int(c->num_register_tokens));
    json_object_object_add(o, "layerscale", json_object_new_boolean(c->layerscale));
    json_object_object_add(o, "layerscale_value", json_object_new_double(c->layerscale_value));
    json_object_object_add(o, "qkv_bias", json_object_new_boolean(c->qkv_bias));
    json_object_object_add(o, "use_mask_token", json_object_new_boolean(c->use_mask_token));
    json_object_object_add(o, "mvead_pos_interp", json_object_new_string(c->pos_interp == MVN_POS_HUB ? "hub" : "size"));
    int rc = json_object_to_file_ext(path, o, JSON_C_TO_STRING_PRETTY);
    json_object_put(o);
    if (rc != 0) return mv_error("%s: cannot write config: %s", path, strerror(errno));
    return 0;
}
