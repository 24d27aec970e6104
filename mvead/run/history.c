#include "config.h"
#include "mvead/run/history.h"
#include "data/fileio.h"
#include "data/h5io.h"
#include "mvead/run/paths.h"
#include "tensor/error.h"
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static json_object *option_value(const mvead_config *c, const mvead_option *o) {
    const void *src = (const char *)c + o->off;
    switch (o->type) {
    case MVEAD_OPT_STR: return json_object_new_string((const char *)src);
    case MVEAD_OPT_INT: return json_object_new_int(*(const int *)src);
    case MVEAD_OPT_U64: return json_object_new_uint64(*(const uint64_t *)src);
    case MVEAD_OPT_DBL: return json_object_new_double(*(const double *)src);
    case MVEAD_OPT_BOOL: return json_object_new_boolean(*(const bool *)src);
    }
    return NULL;
}

static bool same_option(const mvead_config *a, const mvead_config *b, const mvead_option *o) {
    const char *x = (const char *)a + o->off, *y = (const char *)b + o->off;
    if (o->type == MVEAD_OPT_STR) return !strcmp(x, y);
    return !memcmp(x, y, o->size);
}

static bool listed(const char *const *names, const char *name) {
    if (!names) return true;
    for (int i = 0; names[i]; i++) if (!strcmp(names[i], name)) return true;
    return false;
}

int mvead_config_diff(const mvead_config *a, const mvead_config *b, const char *const *names, char *buf, size_t n) {
    int k = 0;
    size_t len = 0;
    if (n) buf[0] = 0;
    for (int i = 0; i < mvead_n_options; i++) {
        const mvead_option *o = &mvead_options[i];
        if (!listed(names, o->name) || same_option(a, b, o)) continue;
        json_object *x = option_value(a, o), *y = option_value(b, o);
        if (len < n)
            len += (size_t)snprintf(buf + len, n - len, "%s--%s (%s -> %s)", k ? ", " : "", o->name,
                                    json_object_to_json_string(x), json_object_to_json_string(y));
        json_object_put(x);
        json_object_put(y);
        k++;
    }
    return k;
}

/* "preset:<name>", or "sha256:<hex>" of the weights file */
static json_object *backbone_identity(const char *backbone) {
    struct stat st;
    if (stat(backbone, &st) == 0 && S_ISREG(st.st_mode)) {
        char hex[65], buf[80];
        if (mvd_file_sha256(backbone, hex)) return json_object_new_string(mv_error_last());
        snprintf(buf, sizeof buf, "sha256:%s", hex);
        return json_object_new_string(buf);
    }
    char buf[600];
    snprintf(buf, sizeof buf, "preset:%s", backbone);
    return json_object_new_string(buf);
}

static json_object *cache_samples(const char *path) {
    if (access(path, F_OK)) return NULL;
    hid_t f = mvd_h5_open_read(path, "cache", 1 << 20, NULL);
    if (f < 0) return NULL;
    int64_t S = -1;
    int bad = mvd_h5_attr_get_int(f, ".", "samples", &S, path);
    mvd_h5_close(f);
    return bad ? NULL : json_object_new_int64(S);
}

int mvead_history_append(const mvead_config *c, const mvead_config *before, const char *cmd, int argc, char **argv,
                         const mvead_history_stage *stages, int n_stages) {
    mvead_paths p;
    if (mvead_paths_init(c, &p, false)) return -1;
    json_object *root = json_object_new_object();
    char t[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_object_object_add(root, "time", json_object_new_string(t));
    json_object *av = json_object_new_array();
    json_object_array_add(av, json_object_new_string("mvead"));
    json_object_array_add(av, json_object_new_string(cmd));
    for (int i = 0; i < argc; i++) json_object_array_add(av, json_object_new_string(argv[i]));
    json_object_object_add(root, "argv", av);
    json_object_object_add(root, "version", json_object_new_string(PACKAGE_VERSION));
    json_object_object_add(root, "commit", json_object_new_string(MVEAD_GIT_COMMIT));
    json_object *js = json_object_new_array();
    bool uses_backbone = false;
    for (int i = 0; i < n_stages; i++) {
        json_object *s = json_object_new_object();
        json_object_object_add(s, "stage", json_object_new_string(stages[i].stage));
        json_object_object_add(s, "seconds", json_object_new_double(stages[i].seconds));
        json_object_object_add(s, "peak_rss_mib", json_object_new_double(stages[i].peak_rss_mib));
        json_object_array_add(js, s);
        uses_backbone |= !strcmp(stages[i].stage, "extract") || !strcmp(stages[i].stage, "train");
    }
    json_object_object_add(root, "stages", js);
    json_object *ch = json_object_new_object();
    for (int i = 0; i < mvead_n_options; i++) {
        const mvead_option *o = &mvead_options[i];
        if (same_option(before, c, o)) continue;
        json_object *d = json_object_new_array();
        json_object_array_add(d, option_value(before, o));
        json_object_array_add(d, option_value(c, o));
        json_object_object_add(ch, o->name, d);
    }
    json_object_object_add(root, "changed", ch);
    json_object *pv = json_object_new_object();
    /* the weights file is hashed only by the stages that run the backbone (it may be GBs) */
    if (uses_backbone) json_object_object_add(pv, "backbone", backbone_identity(c->backbone));
    char hex[65];
    json_object_object_add(pv, "calibration", json_object_new_string(p.calib));
    json_object_object_add(pv, "calibration_sha256", access(p.calib, R_OK) == 0 && !mvd_file_sha256(p.calib, hex)
                                                          ? json_object_new_string(hex) : NULL);
    json_object_object_add(pv, "data", json_object_new_string(c->data));
    json_object *sm = json_object_new_object();
    json_object_object_add(sm, "train", cache_samples(p.train_cache));
    json_object_object_add(sm, "test", cache_samples(p.test_cache));
    json_object_object_add(pv, "samples", sm);
    json_object_object_add(root, "provenance", pv);
    int rc = mvd_file_append_line(p.history, json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN));
    json_object_put(root);
    return rc;
}
