/* calibration: JSON I/O of the rig's fundamental matrices and their estimation
 * from correspondences. File formats are documented in calibration.h. */
#include "mvead/geometry/calibration.h"
#include "data/fileio.h"
#include "tensor/error.h"

#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CALIB_FORMAT "mvead-calibration"
#define MAX_JSON_BYTES (256L << 20)

/* ---------------------------------------------------------------- from cameras */

int mvg_calibration_from_cameras(mvg_calibration *c, int V, int width, int height, const double *K,
                                 const double *R, const double *t) {
    if (V < 2 || V > MVG_MAX_VIEWS)
        return mv_error("calibration: %d views, expected 2 .. %d", V, MVG_MAX_VIEWS);
    if (width <= 0 || height <= 0)
        return mv_error("calibration: image size %d x %d, expected positive width and height", width, height);
    for (int v = 0; v < V; v++) {
        double Ki[9];
        for (int i = 0; i < 9; i++)
            if (!isfinite(K[v * 9 + i]) || !isfinite(R[v * 9 + i]))
                return mv_error("calibration: camera %d has a non-finite K or R entry", v);
        for (int i = 0; i < 3; i++)
            if (!isfinite(t[v * 3 + i])) return mv_error("calibration: camera %d has a non-finite t entry", v);
        if (mvg_inv3(K + v * 9, Ki)) return mv_error("calibration: camera %d has a singular K", v);
    }
    memset(c, 0, sizeof *c);
    c->V = V;
    c->width = width;
    c->height = height;
    c->has_cameras = true;
    snprintf(c->source, sizeof c->source, "cameras");
    for (int v = 0; v < V; v++) {
        memcpy(c->K[v], K + v * 9, 9 * sizeof(double));
        memcpy(c->R[v], R + v * 9, 9 * sizeof(double));
        memcpy(c->t[v], t + v * 3, 3 * sizeof(double));
    }
    for (int a = 0; a < V; a++)
        for (int b = 0; b < V; b++)
            if (a != b) mvg_fundamental_from_cameras(c->K[a], c->R[a], c->t[a], c->K[b], c->R[b], c->t[b], c->F[a][b]);
    return 0;
}

void mvg_calibration_F_for_size(const mvg_calibration *c, int width, int height, double *F) {
    const int V = c->V;
    const double sx = (double)width / c->width, sy = (double)height / c->height;
    for (int a = 0; a < V; a++)
        for (int b = 0; b < V; b++) {
            double *dst = F + ((size_t)a * V + b) * 9;
            if (a == b) {
                memset(dst, 0, 9 * sizeof(double));
                continue;
            }
            memcpy(dst, c->F[a][b], 9 * sizeof(double));
            mvg_rescale_F(dst, sx, sy, sx, sy);
        }
}

/* ---------------------------------------------------------------- JSON writing */

static json_object *jdouble(double d) {
    char buf[40];
    if (d == 0.0 && signbit(d)) snprintf(buf, sizeof buf, "-0.0"); /* "-0" would read back as integer 0 */
    else snprintf(buf, sizeof buf, "%.17g", d); /* round-trips exactly */
    return json_object_new_double_s(d, buf);
}

static json_object *jarray(const double *x, int n) {
    json_object *a = json_object_new_array();
    for (int i = 0; i < n; i++) json_object_array_add(a, jdouble(x[i]));
    return a;
}

static int all_finite(const double *x, int n) {
    for (int i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

int mvg_calibration_write_json(const char *path, const mvg_calibration *c) {
    const int V = c->V;
    if (V < 2 || V > MVG_MAX_VIEWS)
        return mv_error("%s: calibration has %d views, expected 2 .. %d", path, V, MVG_MAX_VIEWS);
    if (c->width <= 0 || c->height <= 0)
        return mv_error("%s: calibration image size %d x %d is not positive", path, c->width, c->height);
    for (int a = 0; a < V; a++)
        for (int b = 0; b < V; b++)
            if (a != b && !all_finite(c->F[a][b], 9))
                return mv_error("%s: F for pair (%d, %d) is not finite", path, a, b);
    json_object *root = json_object_new_object();
    json_object_object_add(root, "format", json_object_new_string(CALIB_FORMAT));
    json_object_object_add(root, "version", json_object_new_int(MVG_CALIBRATION_VERSION));
    json_object_object_add(root, "views", json_object_new_int(V));
    json_object_object_add(root, "width", json_object_new_int(c->width));
    json_object_object_add(root, "height", json_object_new_int(c->height));
    json_object_object_add(root, "source", json_object_new_string(c->source));
    if (c->has_cameras) {
        json_object *cams = json_object_new_array();
        for (int v = 0; v < V; v++) {
            json_object *cam = json_object_new_object();
            json_object_object_add(cam, "K", jarray(c->K[v], 9));
            json_object_object_add(cam, "R", jarray(c->R[v], 9));
            json_object_object_add(cam, "t", jarray(c->t[v], 3));
            json_object_array_add(cams, cam);
        }
        json_object_object_add(root, "cameras", cams);
    }
    json_object *pairs = json_object_new_array();
    for (int a = 0; a < V; a++)
        for (int b = a + 1; b < V; b++) {
            json_object *p = json_object_new_object();
            json_object_object_add(p, "a", json_object_new_int(a));
            json_object_object_add(p, "b", json_object_new_int(b));
            json_object_object_add(p, "F", jarray(c->F[a][b], 9));
            json_object_object_add(p, "n_corr", json_object_new_int(c->n_corr[a][b]));
            json_object_object_add(p, "n_inliers", json_object_new_int(c->n_inliers[a][b]));
            json_object_object_add(p, "rms_px", jdouble(c->rms_px[a][b]));
            json_object_array_add(pairs, p);
        }
    json_object_object_add(root, "pairs", pairs);
    const char *text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);

    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        json_object_put(root);
        return mv_error("%s: path too long", path);
    }
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        json_object_put(root);
        return mv_error("%s: cannot create %s: %s", path, tmp, strerror(errno));
    }
    fputs(text, f);
    fputc('\n', f);
    json_object_put(root);
    return mvd_file_commit(f, tmp, path);   /* checks the writes above */
}

/* ---------------------------------------------------------------- JSON reading */

/* Parses the whole file; the error names the file and what is wrong. */
static json_object *read_json_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        mv_error("%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) break;
        if (len == cap) {
            if ((long)cap >= MAX_JSON_BYTES) break;
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + len, 1, cap - len, f);
        len += r;
        if (r == 0) break;
    }
    int rerr = ferror(f);
    fclose(f);
    if (!buf) {
        mv_error("%s: out of memory reading the file", path);
        return NULL;
    }
    if (rerr || len == cap) {
        free(buf);
        mv_error("%s: %s", path, rerr ? "read error" : "file too large for a JSON calibration");
        return NULL;
    }
    json_tokener *tok = json_tokener_new();
    json_object *root = json_tokener_parse_ex(tok, buf, (int)len);
    enum json_tokener_error je = json_tokener_get_error(tok);
    size_t used = json_tokener_get_parse_end(tok);
    if (!root || je != json_tokener_success) {
        if (je == json_tokener_continue || je == json_tokener_success)
            mv_error("%s: invalid JSON: truncated (the document ends after %zu bytes before it is complete)",
                     path, len);
        else
            mv_error("%s: invalid JSON near byte %zu: %s", path, used, json_tokener_error_desc(je));
        json_object_put(root);
        json_tokener_free(tok);
        free(buf);
        return NULL;
    }
    for (size_t i = used; i < len; i++)
        if (buf[i] != ' ' && buf[i] != '\n' && buf[i] != '\r' && buf[i] != '\t') {
            mv_error("%s: invalid JSON: unexpected data after the document at byte %zu", path, i);
            json_object_put(root);
            json_tokener_free(tok);
            free(buf);
            return NULL;
        }
    json_tokener_free(tok);
    free(buf);
    return root;
}

static const char *jtype_name(json_object *o) { return json_type_to_name(json_object_get_type(o)); }

/* Member `key` of object o; `full` is its path in the file for messages. */
static int jget(const char *path, json_object *o, const char *key, const char *full, json_object **out) {
    if (!json_object_is_type(o, json_type_object))
        return mv_error("%s: key '%s': its parent is not a JSON object", path, full);
    if (!json_object_object_get_ex(o, key, out) || !*out) return mv_error("%s: missing key '%s'", path, full);
    return 0;
}

static int jint(const char *path, json_object *o, const char *key, const char *full, int lo, int hi, int *v) {
    json_object *x;
    if (jget(path, o, key, full, &x)) return -1;
    if (!json_object_is_type(x, json_type_int))
        return mv_error("%s: key '%s': expected an integer, got %s", path, full, jtype_name(x));
    int64_t i = json_object_get_int64(x);
    if (i < lo || i > hi)
        return mv_error("%s: key '%s': %lld is out of range, expected %d .. %d", path, full, (long long)i, lo, hi);
    *v = (int)i;
    return 0;
}

static int jnum_value(const char *path, json_object *x, const char *full, double *v) {
    if (!json_object_is_type(x, json_type_double) && !json_object_is_type(x, json_type_int))
        return mv_error("%s: key '%s': expected a number, got %s", path, full, jtype_name(x));
    double d = json_object_get_double(x);
    if (!isfinite(d)) return mv_error("%s: key '%s': expected a finite number", path, full);
    *v = d;
    return 0;
}

static int jnum(const char *path, json_object *o, const char *key, const char *full, double *v) {
    json_object *x;
    if (jget(path, o, key, full, &x)) return -1;
    return jnum_value(path, x, full, v);
}

/* Array member of exactly n numbers. */
static int jnums(const char *path, json_object *o, const char *key, const char *full, int n, double *v) {
    json_object *x;
    if (jget(path, o, key, full, &x)) return -1;
    if (!json_object_is_type(x, json_type_array) || (int)json_object_array_length(x) != n)
        return mv_error("%s: key '%s': expected an array of %d numbers", path, full, n);
    for (int i = 0; i < n; i++) {
        char fi[256];
        snprintf(fi, sizeof fi, "%s[%d]", full, i);
        if (jnum_value(path, json_object_array_get_idx(x, i), fi, v + i)) return -1;
    }
    return 0;
}

static int jarr(const char *path, json_object *o, const char *key, const char *full, json_object **out) {
    if (jget(path, o, key, full, out)) return -1;
    if (!json_object_is_type(*out, json_type_array))
        return mv_error("%s: key '%s': expected an array, got %s", path, full, jtype_name(*out));
    return 0;
}

static int jstr(const char *path, json_object *o, const char *key, const char *full, const char **s) {
    json_object *x;
    if (jget(path, o, key, full, &x)) return -1;
    if (!json_object_is_type(x, json_type_string))
        return mv_error("%s: key '%s': expected a string, got %s", path, full, jtype_name(x));
    *s = json_object_get_string(x);
    return 0;
}

static int f_is_zero(const double F[9]) {
    for (int i = 0; i < 9; i++)
        if (F[i] != 0.0) return 0;
    return 1;
}

/* max |F - G| over the two signs (both normalised). */
static double f_diff(const double F[9], const double G[9]) {
    double dp = 0.0, dm = 0.0;
    for (int i = 0; i < 9; i++) {
        dp = fmax(dp, fabs(F[i] - G[i]));
        dm = fmax(dm, fabs(F[i] + G[i]));
    }
    return fmin(dp, dm);
}

static void transpose9(const double F[9], double Ft[9]) {
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 3; c++) Ft[c * 3 + r] = F[r * 3 + c];
}

static int parse_calibration(const char *path, json_object *root, mvg_calibration *c) {
    const char *s;
    int version;
    memset(c, 0, sizeof *c);
    if (!json_object_is_type(root, json_type_object))
        return mv_error("%s: expected a JSON object at the top level, got %s", path, jtype_name(root));
    if (jstr(path, root, "format", "format", &s)) return -1;
    if (strcmp(s, CALIB_FORMAT) != 0)
        return mv_error("%s: key 'format': \"%s\", expected \"%s\"", path, s, CALIB_FORMAT);
    if (jint(path, root, "version", "version", 1, MVG_CALIBRATION_VERSION, &version)) return -1;
    if (jint(path, root, "views", "views", 2, MVG_MAX_VIEWS, &c->V)) return -1;
    if (jint(path, root, "width", "width", 1, 1 << 20, &c->width)) return -1;
    if (jint(path, root, "height", "height", 1, 1 << 20, &c->height)) return -1;
    if (jstr(path, root, "source", "source", &s)) return -1;
    if (strlen(s) >= sizeof c->source)
        return mv_error("%s: key 'source': longer than %zu characters", path, sizeof c->source - 1);
    snprintf(c->source, sizeof c->source, "%s", s);
    const int V = c->V;
    char full[256];

    json_object *cams;
    if (json_object_object_get_ex(root, "cameras", &cams) && cams && !json_object_is_type(cams, json_type_null)) {
        if (!json_object_is_type(cams, json_type_array) || (int)json_object_array_length(cams) != V)
            return mv_error("%s: key 'cameras': expected an array of %d cameras", path, V);
        for (int v = 0; v < V; v++) {
            json_object *cam = json_object_array_get_idx(cams, v);
            double Ki[9];
            snprintf(full, sizeof full, "cameras[%d].K", v);
            if (jnums(path, cam, "K", full, 9, c->K[v])) return -1;
            if (mvg_inv3(c->K[v], Ki)) return mv_error("%s: key '%s': K is singular", path, full);
            snprintf(full, sizeof full, "cameras[%d].R", v);
            if (jnums(path, cam, "R", full, 9, c->R[v])) return -1;
            snprintf(full, sizeof full, "cameras[%d].t", v);
            if (jnums(path, cam, "t", full, 3, c->t[v])) return -1;
        }
        c->has_cameras = true;
    }

    json_object *pairs;
    if (jarr(path, root, "pairs", "pairs", &pairs)) return -1;
    const int np = (int)json_object_array_length(pairs), want = V * (V - 1) / 2;
    if (np != want)
        return mv_error("%s: key 'pairs': %d entries, expected %d (one per view pair a < b)", path, np, want);
    bool seen[MVG_MAX_VIEWS][MVG_MAX_VIEWS] = {{false}};
    for (int i = 0; i < np; i++) {
        json_object *p = json_object_array_get_idx(pairs, i);
        int a, b;
        snprintf(full, sizeof full, "pairs[%d].a", i);
        if (jint(path, p, "a", full, 0, V - 1, &a)) return -1;
        snprintf(full, sizeof full, "pairs[%d].b", i);
        if (jint(path, p, "b", full, 0, V - 1, &b)) return -1;
        if (a >= b) return mv_error("%s: key '%s': b = %d must be greater than a = %d", path, full, b, a);
        if (seen[a][b]) return mv_error("%s: key 'pairs[%d]': pair (%d, %d) appears twice", path, i, a, b);
        seen[a][b] = true;
        snprintf(full, sizeof full, "pairs[%d].F", i);
        if (jnums(path, p, "F", full, 9, c->F[a][b])) return -1;
        if (f_is_zero(c->F[a][b])) return mv_error("%s: key '%s': F is all zeros", path, full);
        mvg_normalize_F(c->F[a][b]);
        if (c->has_cameras) {
            double G[9];
            mvg_fundamental_from_cameras(c->K[a], c->R[a], c->t[a], c->K[b], c->R[b], c->t[b], G);
            double d = f_diff(c->F[a][b], G);
            if (!(d <= 1e-6))
                return mv_error("%s: key '%s': F disagrees with the cameras (max difference %.3g after "
                                "normalisation)", path, full, d);
        }
        transpose9(c->F[a][b], c->F[b][a]);
        mvg_normalize_F(c->F[b][a]);
        snprintf(full, sizeof full, "pairs[%d].n_corr", i);
        if (jint(path, p, "n_corr", full, 0, 1 << 30, &c->n_corr[a][b])) return -1;
        snprintf(full, sizeof full, "pairs[%d].n_inliers", i);
        if (jint(path, p, "n_inliers", full, 0, c->n_corr[a][b], &c->n_inliers[a][b])) return -1;
        snprintf(full, sizeof full, "pairs[%d].rms_px", i);
        if (jnum(path, p, "rms_px", full, &c->rms_px[a][b])) return -1;
        if (c->rms_px[a][b] < 0.0) return mv_error("%s: key '%s': must be >= 0", path, full);
        c->n_corr[b][a] = c->n_corr[a][b];
        c->n_inliers[b][a] = c->n_inliers[a][b];
        c->rms_px[b][a] = c->rms_px[a][b];
    }
    return 0;
}

int mvg_calibration_read_json(const char *path, mvg_calibration *c) {
    json_object *root = read_json_file(path);
    if (!root) return -1;
    mvg_calibration *tmp = malloc(sizeof *tmp);
    if (!tmp) {
        json_object_put(root);
        return mv_error("%s: out of memory", path);
    }
    int rc = parse_calibration(path, root, tmp);
    json_object_put(root);
    if (rc == 0) memcpy(c, tmp, sizeof *tmp);
    free(tmp);
    return rc;
}

/* ---------------------------------------------------------------- from correspondences */

/* points: array of n [x, y] arrays into xy (n x 2). */
static int read_points(const char *path, json_object *arr, const char *full, double *xy) {
    const int n = (int)json_object_array_length(arr);
    char fi[256];
    for (int i = 0; i < n; i++) {
        json_object *pt = json_object_array_get_idx(arr, i);
        snprintf(fi, sizeof fi, "%s[%d]", full, i);
        if (!json_object_is_type(pt, json_type_array) || json_object_array_length(pt) != 2)
            return mv_error("%s: key '%s': expected [x, y]", path, fi);
        for (int k = 0; k < 2; k++) {
            char fk[280];
            snprintf(fk, sizeof fk, "%s[%d]", fi, k);
            if (jnum_value(path, json_object_array_get_idx(pt, k), fk, xy + 2 * i + k)) return -1;
        }
    }
    return 0;
}

static int calibrate_pair(const char *path, json_object *p, int i, int V, bool seen[][MVG_MAX_VIEWS],
                          const mvg_ransac_opts *o, mvg_calibration *c) {
    char full[256];
    int a, b;
    snprintf(full, sizeof full, "pairs[%d].a", i);
    if (jint(path, p, "a", full, 0, V - 1, &a)) return -1;
    snprintf(full, sizeof full, "pairs[%d].b", i);
    if (jint(path, p, "b", full, 0, V - 1, &b)) return -1;
    if (a == b) return mv_error("%s: key '%s': a view cannot be paired with itself (a = b = %d)", path, full, a);
    int lo = a < b ? a : b, hi = a < b ? b : a;
    if (seen[lo][hi]) return mv_error("%s: key 'pairs[%d]': pair (%d, %d) appears twice", path, i, lo, hi);
    seen[lo][hi] = true;
    json_object *ja, *jb;
    char fa[256], fb[256];
    snprintf(fa, sizeof fa, "pairs[%d].points_a", i);
    snprintf(fb, sizeof fb, "pairs[%d].points_b", i);
    if (jarr(path, p, "points_a", fa, &ja) || jarr(path, p, "points_b", fb, &jb)) return -1;
    const int n = (int)json_object_array_length(ja);
    if ((int)json_object_array_length(jb) != n)
        return mv_error("%s: key '%s': %d points, but points_a has %d", path, fb,
                        (int)json_object_array_length(jb), n);
    if (n < 8) return mv_error("%s: key '%s': %d correspondences, at least 8 are needed", path, fa, n);
    double *pa = malloc(2 * sizeof(double) * (size_t)n), *pb = malloc(2 * sizeof(double) * (size_t)n);
    uint8_t *in = malloc((size_t)n);
    int rc = -1;
    if (!pa || !pb || !in) {
        mv_error("%s: out of memory for pair (%d, %d)", path, a, b);
        goto done;
    }
    if (read_points(path, ja, fa, pa) || read_points(path, jb, fb, pb)) goto done;
    double F[9];
    int ninl = 0;
    if (mvg_ransac(pa, pb, n, o, F, in, &ninl)) {
        mv_error_prefix("%s: pair (%d, %d) (key 'pairs[%d]')", path, a, b, i);
        goto done;
    }
    double ss = 0.0;
    for (int k = 0; k < n; k++)
        if (in[k]) {
            double e = mvg_sampson_error(F, pa + 2 * k, pb + 2 * k);
            ss += e * e;
        }
    double rms = ninl > 0 ? sqrt(ss / ninl) : 0.0;
    memcpy(c->F[a][b], F, sizeof F);
    transpose9(F, c->F[b][a]);
    mvg_normalize_F(c->F[b][a]);
    c->n_corr[a][b] = c->n_corr[b][a] = n;
    c->n_inliers[a][b] = c->n_inliers[b][a] = ninl;
    c->rms_px[a][b] = c->rms_px[b][a] = rms;
    rc = 0;
done:
    free(pa);
    free(pb);
    free(in);
    return rc;
}

int mvg_calibrate_from_correspondences(const char *corr_path, mvg_calibration *out, const mvg_ransac_opts *o) {
    const char *path = corr_path;
    json_object *root = read_json_file(path);
    if (!root) return -1;
    mvg_calibration *c = calloc(1, sizeof *c);
    int rc = -1;
    if (!c) {
        mv_error("%s: out of memory", path);
        goto done;
    }
    if (!json_object_is_type(root, json_type_object)) {
        mv_error("%s: expected a JSON object at the top level, got %s", path, jtype_name(root));
        goto done;
    }
    if (jint(path, root, "views", "views", 2, MVG_MAX_VIEWS, &c->V) ||
        jint(path, root, "width", "width", 1, 1 << 20, &c->width) ||
        jint(path, root, "height", "height", 1, 1 << 20, &c->height))
        goto done;
    json_object *pairs;
    if (jarr(path, root, "pairs", "pairs", &pairs)) goto done;
    bool seen[MVG_MAX_VIEWS][MVG_MAX_VIEWS] = {{false}};
    const int np = (int)json_object_array_length(pairs);
    for (int i = 0; i < np; i++)
        if (calibrate_pair(path, json_object_array_get_idx(pairs, i), i, c->V, seen, o, c)) goto done;
    for (int a = 0; a < c->V; a++)
        for (int b = a + 1; b < c->V; b++)
            if (!seen[a][b]) {
                mv_error("%s: key 'pairs': no correspondences for view pair (%d, %d); every pair is needed", path,
                         a, b);
                goto done;
            }
    snprintf(c->source, sizeof c->source, "correspondences");
    memcpy(out, c, sizeof *c);
    rc = 0;
done:
    free(c);
    json_object_put(root);
    return rc;
}
