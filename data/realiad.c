/* realiad: Real-IAD json index -> grouped, labelled multi-view samples; see realiad.h. */
#include "data/realiad.h"
#include "data/image.h"
#include "tensor/error.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <json-c/json.h>

void mvd_realiad_opts_default(mvd_realiad_opts *o) {
    memset(o, 0, sizeof *o);
    o->n_views = 5;
    o->skip_incomplete = 0;
    o->check_files = 1;
    o->labels = MVD_LABELS_FROM_MASKS;
    o->json_dir = NULL;
    o->image_dir = NULL;
}

/* ---- file names ------------------------------------------------------------ */

static int all_digits(const char *s, size_t n) {
    if (n == 0) return 0;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i])) return 0;
    return 1;
}

int mvd_realiad_parse_name(const char *name, char *sample_id, int id_size, int *is_ok,
                           char *defect, int defect_size, int *camera) {
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    char stem[256];
    size_t len = strlen(base);
    const char *dot = strrchr(base, '.');
    if (dot) len = (size_t)(dot - base);
    if (len == 0 || len >= sizeof stem)
        return mv_error("file name '%s' is not <cat>_<id>_OK|NG_<DEF>_C<v>_<ts>", base);
    memcpy(stem, base, len);
    stem[len] = 0;
    /* split on '_' from the end: ... id, OK | NG DEF, C<v>, ts */
    char *tok[64];
    int nt = 0;
    for (char *p = stem; nt < 64;) {
        tok[nt++] = p;
        char *u = strchr(p, '_');
        if (!u) break;
        *u = 0;
        p = u + 1;
    }
    if (nt < 5) return mv_error("file name '%s' has too few '_' fields for a Real-IAD image", base);
    const char *cam = tok[nt - 2];
    if (cam[0] != 'C' || !all_digits(cam + 1, strlen(cam + 1)))
        return mv_error("file name '%s': expected the camera field C<v> before the timestamp", base);
    *camera = atoi(cam + 1);
    const char *id;
    if (strcmp(tok[nt - 3], "OK") == 0) {
        *is_ok = 1;
        if (defect_size > 0) defect[0] = 0;
        id = tok[nt - 4];
    } else if (nt >= 6 && strcmp(tok[nt - 4], "NG") == 0) {
        *is_ok = 0;
        if ((int)strlen(tok[nt - 3]) >= defect_size || tok[nt - 3][0] == 0)
            return mv_error("file name '%s': bad defect code '%s'", base, tok[nt - 3]);
        strcpy(defect, tok[nt - 3]);
        id = tok[nt - 5];
    } else {
        return mv_error("file name '%s': expected OK or NG_<DEF> before the camera field", base);
    }
    if (!all_digits(id, strlen(id)) || (int)strlen(id) >= id_size)
        return mv_error("file name '%s': bad sample id '%s'", base, id);
    strcpy(sample_id, id);
    return 0;
}

/* ---- small helpers --------------------------------------------------------------- */

static char *join3(const char *a, const char *b, const char *c) {
    size_t n = strlen(a) + strlen(b) + strlen(c) + 3;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s/%s/%s", a, b, c);
    return s;
}

static int dir_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int dir_has_json(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    int found = 0;
    while (!found && (e = readdir(d))) {
        size_t L = strlen(e->d_name);
        found = L > 5 && strcmp(e->d_name + L - 5, ".json") == 0;
    }
    closedir(d);
    return found;
}

/* dir relative to root unless absolute. */
static void resolve_dir(char *out, size_t n, const char *root, const char *dir) {
    if (dir[0] == '/') snprintf(out, n, "%s", dir);
    else snprintf(out, n, "%s/%s", root, dir);
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int cmp_names(const void *a, const void *b) {
    return strcmp((const char *)a, (const char *)b);
}

/* Category list from the argument or the json directory. */
static int list_categories(const char *json_dir, const char *categories, char (**out)[64], int *n_out) {
    *out = NULL;
    *n_out = 0;
    char (*cats)[64] = NULL;
    int n = 0, cap = 0;
    if (!categories || strcmp(categories, "all") == 0 || categories[0] == 0) {
        const char *dir = json_dir;
        DIR *d = opendir(dir);
        if (!d) return mv_error("%s: cannot open the Real-IAD json directory (%s)", dir, strerror(errno));
        struct dirent *e;
        while ((e = readdir(d))) {
            size_t L = strlen(e->d_name);
            if (L <= 5 || strcmp(e->d_name + L - 5, ".json") != 0 || e->d_name[0] == '.') continue;
            if (L - 5 >= 64) continue;
            if (n == cap) {
                cap = cap ? 2 * cap : 32;
                void *p = realloc(cats, (size_t)cap * sizeof *cats);
                if (!p) {
                    closedir(d);
                    free(cats);
                    return mv_error("out of memory listing %s", dir);
                }
                cats = p;
            }
            memcpy(cats[n], e->d_name, L - 5);
            cats[n][L - 5] = 0;
            n++;
        }
        closedir(d);
        if (n == 0) {
            free(cats);
            return mv_error("%s: no <category>.json files found", dir);
        }
        qsort(cats, (size_t)n, sizeof *cats, cmp_names);
    } else {
        const char *p = categories;
        while (1) {
            const char *comma = strchr(p, ',');
            size_t L = comma ? (size_t)(comma - p) : strlen(p);
            while (L > 0 && isspace((unsigned char)*p)) p++, L--;
            while (L > 0 && isspace((unsigned char)p[L - 1])) L--;
            if (L == 0 || L >= 64 || memchr(p, '/', L)) {
                free(cats);
                return mv_error("categories '%s': empty, too long or bad category name", categories);
            }
            if (n == cap) {
                cap = cap ? 2 * cap : 8;
                void *q = realloc(cats, (size_t)cap * sizeof *cats);
                if (!q) {
                    free(cats);
                    return mv_error("out of memory");
                }
                cats = q;
            }
            memcpy(cats[n], p, L);
            cats[n][L] = 0;
            for (int i = 0; i < n; i++)
                if (strcmp(cats[i], cats[n]) == 0) {
                    mv_error("categories '%s': '%s' given twice", categories, cats[n]);
                    free(cats);
                    return -1;
                }
            n++;
            if (!comma) break;
            p = comma + 1;
        }
    }
    *out = cats;
    *n_out = n;
    return 0;
}

static struct json_object *parse_json_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        mv_error("%s: cannot open (%s)", path, strerror(errno));
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    rewind(f);
    if (len < 0 || len > (1L << 30)) {
        fclose(f);
        mv_error("%s: unreadable or too large", path);
        return NULL;
    }
    char *buf = malloc((size_t)len + 1);
    if (!buf) {
        fclose(f);
        mv_error("%s: out of memory", path);
        return NULL;
    }
    size_t got = fread(buf, 1, (size_t)len, f);
    fclose(f);
    if (got != (size_t)len) {
        free(buf);
        mv_error("%s: read error", path);
        return NULL;
    }
    buf[len] = 0;
    struct json_tokener *tok = json_tokener_new();
    if (!tok) {
        free(buf);
        mv_error("%s: out of memory", path);
        return NULL;
    }
    struct json_object *root = json_tokener_parse_ex(tok, buf, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    if (!root || jerr != json_tokener_success) {
        const char *why = jerr == json_tokener_continue ? "unexpected end of file"
                                                         : json_tokener_error_desc(jerr);
        mv_error("%s: invalid JSON at byte %zu (%s)", path, end, why);
        if (root) json_object_put(root);
        root = NULL;
    } else {
        for (size_t i = end; i < (size_t)len; i++)
            if (!isspace((unsigned char)buf[i])) {
                mv_error("%s: invalid JSON: trailing data at byte %zu", path, i);
                json_object_put(root);
                root = NULL;
                break;
            }
    }
    json_tokener_free(tok);
    free(buf);
    return root;
}

/* ---- grouping ------------------------------------------------------------------- */

typedef struct {
    char key[160];   /* cat/id/OK or cat/id/NG_DEF */
    int json_index;  /* which category json */
    int first_entry; /* entry index of its first view */
    int bad_camera;  /* first duplicate or out-of-range camera, 0 if none */
} sample_info;

typedef struct {
    int *slots; /* sample index + 1, 0 empty */
    size_t cap;
} key_table;

static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

typedef struct {
    mvd_sample *samples;
    sample_info *info;
    int n, cap;
    key_table table;
} group_state;

static void group_free(group_state *g) {
    for (int i = 0; i < g->n; i++)
        for (int v = 0; v < MVD_MAX_VIEWS; v++) {
            free(g->samples[i].views[v].image_path);
            free(g->samples[i].views[v].mask_path);
        }
    free(g->samples);
    free(g->info);
    free(g->table.slots);
    memset(g, 0, sizeof *g);
}

static int table_rehash(group_state *g) {
    size_t cap = g->table.cap ? 2 * g->table.cap : 1024;
    int *slots = calloc(cap, sizeof *slots);
    if (!slots) return mv_error("out of memory grouping Real-IAD samples");
    for (int i = 0; i < g->n; i++) {
        size_t h = fnv1a(g->info[i].key) & (cap - 1);
        while (slots[h]) h = (h + 1) & (cap - 1);
        slots[h] = i + 1;
    }
    free(g->table.slots);
    g->table.slots = slots;
    g->table.cap = cap;
    return 0;
}

/* Index of the sample with key, creating it if new; -1 on OOM. */
static int group_find_or_add(group_state *g, const char *key, int *created) {
    *created = 0;
    if ((size_t)(g->n + 1) * 2 > g->table.cap && table_rehash(g)) return -1;
    size_t h = fnv1a(key) & (g->table.cap - 1);
    while (g->table.slots[h]) {
        int i = g->table.slots[h] - 1;
        if (strcmp(g->info[i].key, key) == 0) return i;
        h = (h + 1) & (g->table.cap - 1);
    }
    if (g->n == g->cap) {
        int cap = g->cap ? 2 * g->cap : 256;
        mvd_sample *s = realloc(g->samples, (size_t)cap * sizeof *s);
        if (!s) return mv_error("out of memory grouping Real-IAD samples");
        g->samples = s;
        sample_info *in = realloc(g->info, (size_t)cap * sizeof *in);
        if (!in) return mv_error("out of memory grouping Real-IAD samples");
        g->info = in;
        g->cap = cap;
    }
    int i = g->n++;
    memset(&g->samples[i], 0, sizeof g->samples[i]);
    memset(&g->info[i], 0, sizeof g->info[i]);
    snprintf(g->info[i].key, sizeof g->info[i].key, "%s", key);
    g->table.slots[h] = i + 1;
    *created = 1;
    return i;
}

static const char *const entry_keys[4] = {"category", "anomaly_class", "image_path", "mask_path"};

/* One json file's split into the group state. */
static int load_category_json(const char *image_root, const char *json_path, int json_index,
                              const char *split, group_state *g) {
    struct json_object *doc = parse_json_file(json_path);
    if (!doc) return -1;
    int rc = -1;
    if (!json_object_is_type(doc, json_type_object)) {
        mv_error("%s: top level is not a JSON object", json_path);
        goto done;
    }
    const char *normal_class = "OK";
    struct json_object *meta, *list;
    if (json_object_object_get_ex(doc, "meta", &meta)) {
        struct json_object *nc;
        if (!json_object_is_type(meta, json_type_object)) {
            mv_error("%s: \"meta\" is not an object", json_path);
            goto done;
        }
        if (json_object_object_get_ex(meta, "normal_class", &nc)) {
            if (!json_object_is_type(nc, json_type_string)) {
                mv_error("%s: meta.normal_class is not a string", json_path);
                goto done;
            }
            normal_class = json_object_get_string(nc);
        }
    }
    if (!json_object_object_get_ex(doc, split, &list) || !json_object_is_type(list, json_type_array)) {
        mv_error("%s: no \"%s\" array", json_path, split);
        goto done;
    }
    size_t n = json_object_array_length(list);
    for (size_t i = 0; i < n; i++) {
        struct json_object *e = json_object_array_get_idx(list, i);
        if (!e || !json_object_is_type(e, json_type_object)) {
            mv_error("%s: %s entry %zu is not an object", json_path, split, i);
            goto done;
        }
        struct json_object *val[4] = {0};
        json_object_object_foreach(e, entry_key, entry_val) {
            int k = 0;
            while (k < 4 && strcmp(entry_key, entry_keys[k]) != 0) k++;
            if (k == 4) {
                mv_error("%s: %s entry %zu: unknown key \"%s\" (expected exactly category, "
                         "anomaly_class, image_path, mask_path)", json_path, split, i, entry_key);
                goto done;
            }
            val[k] = entry_val;
        }
        for (int k = 0; k < 4; k++) {
            if (!json_object_object_get_ex(e, entry_keys[k], NULL)) {
                mv_error("%s: %s entry %zu: missing key \"%s\"", json_path, split, i, entry_keys[k]);
                goto done;
            }
            int ok = k == 3 ? (val[k] == NULL || json_object_is_type(val[k], json_type_string))
                            : (val[k] && json_object_is_type(val[k], json_type_string));
            if (!ok) {
                mv_error("%s: %s entry %zu: \"%s\" must be a string%s", json_path, split, i,
                         entry_keys[k], k == 3 ? " or null" : "");
                goto done;
            }
        }
        const char *cat = json_object_get_string(val[0]);
        const char *cls = json_object_get_string(val[1]);
        const char *img = json_object_get_string(val[2]);
        const char *mask = val[3] ? json_object_get_string(val[3]) : NULL;
        if (cat[0] == 0 || strlen(cat) >= sizeof g->samples[0].category || strchr(cat, '/')) {
            mv_error("%s: %s entry %zu: bad category \"%s\"", json_path, split, i, cat);
            goto done;
        }
        if (cls[0] == 0 || strlen(cls) >= sizeof g->samples[0].anomaly_class) {
            mv_error("%s: %s entry %zu: bad anomaly_class \"%s\"", json_path, split, i, cls);
            goto done;
        }
        char sid[32], defect[16];
        int is_ok, camera;
        if (mvd_realiad_parse_name(img, sid, sizeof sid, &is_ok, defect, sizeof defect, &camera)) {
            mv_error_prefix("%s: %s entry %zu", json_path, split, i);
            goto done;
        }
        int cls_ok = strcmp(cls, normal_class) == 0;
        if (cls_ok != is_ok || (!is_ok && strcmp(cls, defect) != 0)) {
            mv_error("%s: %s entry %zu: anomaly_class \"%s\" does not match the file name \"%s\"",
                     json_path, split, i, cls, img);
            goto done;
        }
        char key[160];
        snprintf(key, sizeof key, "%s/%s/%s%s", cat, sid, is_ok ? "OK" : "NG_", defect);
        int created;
        int s = group_find_or_add(g, key, &created);
        if (s < 0) goto done;
        mvd_sample *smp = &g->samples[s];
        sample_info *info = &g->info[s];
        if (created) {
            snprintf(smp->category, sizeof smp->category, "%s", cat);
            snprintf(smp->sample_id, sizeof smp->sample_id, "%s", sid);
            snprintf(smp->anomaly_class, sizeof smp->anomaly_class, "%s", is_ok ? "OK" : defect);
            info->json_index = json_index;
            info->first_entry = (int)i;
        }
        if (camera < 1 || camera > MVD_MAX_VIEWS || smp->views[camera - 1].image_path) {
            if (!info->bad_camera) info->bad_camera = camera ? camera : -1;
            continue;
        }
        mvd_view *v = &smp->views[camera - 1];
        v->camera = camera;
        v->image_path = join3(image_root, cat, img);
        v->mask_path = mask ? join3(image_root, cat, mask) : NULL;
        v->label = mask ? -1 : 0;
        if (!v->image_path || (mask && !v->mask_path)) {
            mv_error("out of memory loading %s", json_path);
            goto done;
        }
    }
    rc = 0;
done:
    json_object_put(doc);
    return rc;
}

int mvd_dataset_count_label(const mvd_dataset *ds, int label) {
    int n = 0;
    for (int i = 0; i < ds->n_samples; i++) n += ds->samples[i].label == label;
    return n;
}

void mvd_dataset_free(mvd_dataset *ds) {
    if (!ds) return;
    for (int i = 0; i < ds->n_samples; i++)
        for (int v = 0; v < MVD_MAX_VIEWS; v++) {
            free(ds->samples[i].views[v].image_path);
            free(ds->samples[i].views[v].mask_path);
        }
    free(ds->samples);
    free(ds->categories);
    memset(ds, 0, sizeof *ds);
}

static void sample_free_paths(mvd_sample *s) {
    for (int v = 0; v < MVD_MAX_VIEWS; v++) {
        free(s->views[v].image_path);
        free(s->views[v].mask_path);
        s->views[v].image_path = s->views[v].mask_path = NULL;
    }
}

/* Labels every view with a mask from its pixels. Parallel over views; the
 * first failure (in order) is reported with its message. */
static int compute_labels(mvd_dataset *ds) {
    int nv = ds->n_views;
    long total = (long)ds->n_samples * nv;
    int *status = calloc(total > 0 ? (size_t)total : 1, sizeof *status);
    if (!status) return mv_error("out of memory labelling the dataset");
#pragma omp parallel for schedule(dynamic, 16)
    for (long k = 0; k < total; k++) {
        mvd_view *v = &ds->samples[k / nv].views[k % nv];
        if (!v->mask_path) continue;
        int any = 0;
        if (mvd_image_any_nonzero(v->mask_path, &any)) status[k] = 1;
        else v->label = any;
    }
    for (long k = 0; k < total; k++)
        if (status[k]) {
            free(status);
            int any; /* redo it on this thread to get the message */
            mvd_image_any_nonzero(ds->samples[k / nv].views[k % nv].mask_path, &any);
            return mv_error_prefix("mask of sample %s/%s/%s",
                                   ds->samples[k / nv].category, ds->samples[k / nv].sample_id,
                                   ds->samples[k / nv].anomaly_class);
        }
    free(status);
    return 0;
}

static void sample_update_label(mvd_sample *s) {
    int lab = 0, unknown = 0;
    for (int v = 0; v < s->n_views; v++) {
        if (s->views[v].label == 1) lab = 1;
        if (s->views[v].label < 0) unknown = 1;
    }
    s->label = lab ? 1 : (unknown ? -1 : 0);
}

int mvd_realiad_open_opts(const char *root, const char *categories, const char *split,
                          const mvd_realiad_opts *opts, mvd_dataset *out) {
    memset(out, 0, sizeof *out);
    mvd_realiad_opts def;
    if (!opts) {
        mvd_realiad_opts_default(&def);
        opts = &def;
    }
    if (!root || !split || (strcmp(split, "train") != 0 && strcmp(split, "test") != 0))
        return mv_error("Real-IAD: split '%s' must be \"train\" or \"test\"", split ? split : "(null)");
    if (strlen(root) > 2048 || (opts->json_dir && strlen(opts->json_dir) > 1024) ||
        (opts->image_dir && strlen(opts->image_dir) > 1024))
        return mv_error("Real-IAD: root or directory path too long (%.64s...)", root);
    if (opts->n_views < 1 || opts->n_views > MVD_MAX_VIEWS)
        return mv_error("Real-IAD: n_views %d out of range (1..%d)", opts->n_views, MVD_MAX_VIEWS);
    /* where the jsons and images are */
    char json_dir[4096], image_root[4096];
    if (opts->json_dir && opts->json_dir[0]) {
        resolve_dir(json_dir, sizeof json_dir, root, opts->json_dir);
    } else {
        /* the official archive unpacks to realiad_jsons/realiad_jsons/<cat>.json */
        resolve_dir(json_dir, sizeof json_dir, root, "realiad_jsons");
        char nested[sizeof json_dir + 16];
        int len = snprintf(nested, sizeof nested, "%s/realiad_jsons", json_dir);
        if (len > 0 && (size_t)len < sizeof json_dir && !dir_has_json(json_dir) && dir_has_json(nested))
            memcpy(json_dir, nested, (size_t)len + 1);
    }
    resolve_dir(image_root, sizeof image_root, root,
                opts->image_dir && opts->image_dir[0] ? opts->image_dir : "realiad_1024");
    if (!dir_exists(image_root))
        return mv_error("%s: Real-IAD image directory not found", image_root);
    char (*cats)[64];
    int ncat;
    if (list_categories(json_dir, categories, &cats, &ncat)) return -1;
    char (*json_paths)[4200] = malloc((size_t)ncat * sizeof *json_paths);
    if (!json_paths) {
        free(cats);
        return mv_error("out of memory");
    }
    group_state g;
    memset(&g, 0, sizeof g);
    for (int c = 0; c < ncat; c++) {
        snprintf(json_paths[c], sizeof json_paths[c], "%s/%s.json", json_dir, cats[c]);
        if (!file_exists(json_paths[c])) {
            mv_error("%s: category json not found (category '%s')", json_paths[c], cats[c]);
            goto fail;
        }
        if (load_category_json(image_root, json_paths[c], c, split, &g)) goto fail;
    }
    /* completeness */
    int kept = 0;
    for (int i = 0; i < g.n; i++) {
        mvd_sample *s = &g.samples[i];
        sample_info *info = &g.info[i];
        char why[96] = "";
        if (info->bad_camera > opts->n_views || info->bad_camera < 0)
            snprintf(why, sizeof why, "camera C%d out of range (expected C1..C%d)", info->bad_camera,
                     opts->n_views);
        else if (info->bad_camera)
            snprintf(why, sizeof why, "view C%d listed twice", info->bad_camera);
        for (int v = 0; v < MVD_MAX_VIEWS && !why[0]; v++) {
            int have = s->views[v].image_path != NULL;
            if (v < opts->n_views && !have)
                snprintf(why, sizeof why, "missing view C%d (expected C1..C%d)", v + 1, opts->n_views);
            else if (v >= opts->n_views && have)
                snprintf(why, sizeof why, "unexpected view C%d (expected C1..C%d)", v + 1,
                         opts->n_views);
        }
        if (why[0]) {
            if (!opts->skip_incomplete) {
                mv_error("%s: %s sample %s/S%s/%s (first listed at entry %d): %s",
                         json_paths[info->json_index], split, s->category, s->sample_id,
                         s->anomaly_class, info->first_entry, why);
                goto fail;
            }
            fprintf(stderr, "warning: %s: %s sample %s/S%s/%s skipped: %s\n",
                    json_paths[info->json_index], split, s->category, s->sample_id,
                    s->anomaly_class, why);
            sample_free_paths(s);
            continue;
        }
        s->n_views = opts->n_views;
        if (kept != i) {
            g.samples[kept] = *s;
            g.info[kept] = *info;
            memset(s->views, 0, sizeof s->views);
        }
        kept++;
    }
    g.n = kept;
    if (opts->check_files)
        for (int i = 0; i < g.n; i++)
            for (int v = 0; v < g.samples[i].n_views; v++) {
                const mvd_view *vw = &g.samples[i].views[v];
                if (!file_exists(vw->image_path)) {
                    mv_error("%s: image file not found (listed in %s)", vw->image_path,
                             json_paths[g.info[i].json_index]);
                    goto fail;
                }
                if (vw->mask_path && !file_exists(vw->mask_path)) {
                    mv_error("%s: mask file not found (listed in %s)", vw->mask_path,
                             json_paths[g.info[i].json_index]);
                    goto fail;
                }
            }
    out->n_samples = g.n;
    out->samples = g.samples;
    out->n_categories = ncat;
    out->categories = cats;
    out->n_views = opts->n_views;
    snprintf(out->split, sizeof out->split, "%s", split);
    free(g.info);
    free(g.table.slots);
    free(json_paths);
    if (out->n_samples == 0) {
        mvd_dataset_free(out);
        return mv_error("Real-IAD %s: no samples in split \"%s\" for categories '%s'", root, split,
                        categories ? categories : "all");
    }
    if (opts->labels == MVD_LABELS_FROM_MASKS && compute_labels(out)) {
        mvd_dataset_free(out);
        return -1;
    }
    for (int i = 0; i < out->n_samples; i++) sample_update_label(&out->samples[i]);
    return 0;
fail:
    group_free(&g);
    free(cats);
    free(json_paths);
    return -1;
}

int mvd_realiad_open(const char *root, const char *categories, const char *split, mvd_dataset *out) {
    return mvd_realiad_open_opts(root, categories, split, NULL, out);
}
