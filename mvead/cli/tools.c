/* tools: the small commands that do not act on a run: synth (the synthetic
 * dataset), import-weights, calibrate and epilines. They take a few flags of
 * their own (parse_flags), not the run options. */
#include "data/cache.h"
#include "data/image.h"
#include "data/synth.h"
#include "data/transform.h"
#include "mvead/cli/commands.h"
#include "mvead/cli/exit_codes.h"
#include "mvead/cli/options.h"
#include "mvead/geometry/calibration.h"
#include "mvead/geometry/epilines.h"
#include "mvead/geometry/epipolar.h"
#include "mvead/run/progress.h"
#include "nn/weights.h"
#include "tensor/error.h"
#include "tensor/tensor.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- synth ------------------------------------------------------------------ */

void mvead_cli_synth_progress(void *ctx, int done, int total) {
    mvead_progress *p = ctx;
    if (p->total != total) p->total = total;
    mvead_progress_update(p, done, NULL);
}

/* ---- flags of the small commands -------------------------------------------------
 * synth, calibrate and epilines take a few flags of their own (the stage
 * commands use the run option table, mvead/run/run_config.h): a table of
 * --name -> typed destination with an inclusive range. */
typedef enum { FLAG_STR, FLAG_INT, FLAG_U64, FLAG_DOUBLE, FLAG_BOOL } flag_kind;
typedef struct {
    const char *name;   /* with the dashes */
    flag_kind kind;
    void *dst;          /* const char **, int *, uint64_t *, double *, bool * */
    double lo, hi;      /* FLAG_INT, FLAG_DOUBLE */
} cmd_flag;

/* Parses argv against flags; other arguments go to pos (at most max_pos).
 * Returns 0, 1 when --help/-h was given (the caller prints its usage), or
 * MVEAD_EXIT_USAGE after printing what was wrong. */
static int parse_flags(const char *cmd, const cmd_flag *flags, int n_flags, int argc, char **argv, const char **pos,
                       int max_pos, int *n_pos) {
    if (n_pos) *n_pos = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) return 1;
        const cmd_flag *f = NULL;
        for (int k = 0; k < n_flags && !f; k++)
            if (!strcmp(a, flags[k].name)) f = &flags[k];
        if (!f) {
            if (a[0] == '-' && a[1]) { fprintf(stderr, "mvead %s: unknown option '%s' (see mvead %s --help)\n", cmd, a, cmd); return MVEAD_EXIT_USAGE; }
            if (!n_pos || *n_pos >= max_pos) { fprintf(stderr, "mvead %s: unexpected argument '%s'\n", cmd, a); return MVEAD_EXIT_USAGE; }
            pos[(*n_pos)++] = a;
            continue;
        }
        if (f->kind == FLAG_BOOL) { *(bool *)f->dst = true; continue; }
        if (i + 1 >= argc) { fprintf(stderr, "mvead %s: %s needs a value\n", cmd, a); return MVEAD_EXIT_USAGE; }
        const char *v = argv[++i];
        char *end = NULL;
        switch (f->kind) {
        case FLAG_STR: *(const char **)f->dst = v; break;
        case FLAG_INT: {
            long x = strtol(v, &end, 10);
            if (!*v || *end || x < f->lo || x > f->hi) {
                fprintf(stderr, "mvead %s: %s expects an integer in [%.0f, %.0f], got '%s'\n", cmd, a, f->lo, f->hi, v);
                return MVEAD_EXIT_USAGE;
            }
            *(int *)f->dst = (int)x;
            break;
        }
        case FLAG_U64: {
            unsigned long long x = strtoull(v, &end, 10);
            if (!*v || *end || v[0] == '-') { fprintf(stderr, "mvead %s: %s expects a non-negative integer, got '%s'\n", cmd, a, v); return MVEAD_EXIT_USAGE; }
            *(uint64_t *)f->dst = x;
            break;
        }
        case FLAG_DOUBLE: {
            double x = strtod(v, &end);
            if (!*v || *end || !(x >= f->lo && x <= f->hi)) {
                fprintf(stderr, "mvead %s: %s expects a number in [%g, %g], got '%s'\n", cmd, a, f->lo, f->hi, v);
                return MVEAD_EXIT_USAGE;
            }
            *(double *)f->dst = x;
            break;
        }
        case FLAG_BOOL: break;
        }
    }
    return 0;
}

int mvead_cmd_synth(int argc, char **argv) {
    mvd_synth_opts o;
    mvd_synth_default_opts(&o);
    const char *out = NULL;
    bool quiet = false;
    uint64_t seed = o.seed;
    const double big = 1 << 20;   /* mvd_synth_check_opts says what each one allows */
    const cmd_flag flags[] = {
        {"--categories", FLAG_INT, &o.categories, 0, big}, {"--train", FLAG_INT, &o.train, 0, big},
        {"--test-good", FLAG_INT, &o.test_good, 0, big},   {"--test-bad", FLAG_INT, &o.test_bad, 0, big},
        {"--size", FLAG_INT, &o.size, 0, big},             {"--views", FLAG_INT, &o.views, 0, big},
        {"--supersample", FLAG_INT, &o.supersample, 0, big}, {"--jpeg-quality", FLAG_INT, &o.jpeg_quality, 0, big},
        {"--seed", FLAG_U64, &seed, 0, 0},                 {"--quiet", FLAG_BOOL, &quiet, 0, 0},
    };
    int n_pos, r = parse_flags("synth", flags, sizeof flags / sizeof flags[0], argc, argv, &out, 1, &n_pos);
    if (r == 1) {
        printf("usage: mvead synth [options] OUT_DIR\n\n"
               "Renders the built-in synthetic multi-view dataset in the Real-IAD layout\n"
               "(OUT_DIR/realiad_1024, OUT_DIR/realiad_jsons) with OUT_DIR/calibration.json.\n\n"
               "  --categories N  categories (1..%d) [%d]\n  --train M       good training samples per category [%d]\n"
               "  --test-good A   good test samples per category [%d]\n  --test-bad B    defective test samples per category [%d]\n"
               "  --size S        image side in pixels [%d]\n  --views V       cameras [%d]\n"
               "  --supersample R rays per pixel side for the colour, 1 or 2 [%d]\n  --jpeg-quality Q JPEG quality 1..100 [%d]\n"
               "  --seed X        random seed [%llu]\n"
               "  --quiet         no progress\n",
               mvd_synth_max_categories(), o.categories, o.train, o.test_good, o.test_bad, o.size, o.views,
               o.supersample, o.jpeg_quality, (unsigned long long)o.seed);
        return 0;
    }
    if (r) return r;
    o.seed = seed;
    if (!out) { fprintf(stderr, "mvead synth: missing OUT_DIR (see mvead synth --help)\n"); return MVEAD_EXIT_USAGE; }
    if (mvd_synth_check_opts(&o)) { fprintf(stderr, "mvead synth: %s\n", mv_error_last()); return MVEAD_EXIT_USAGE; }
    mvead_progress_set_quiet(quiet);
    mvead_progress pr;
    mvead_progress_start(&pr, "synth", 1);
    o.progress = mvead_cli_synth_progress;
    o.progress_ctx = &pr;
    if (mvd_synth_generate(&o, out)) return mvead_cli_fail("synth");
    mvead_progress_finish(&pr);
    mvead_log("synth: %d categories x (%d train + %d good + %d defective test) samples x %d views, %dx%d -> %s",
              o.categories, o.train, o.test_good, o.test_bad, o.views, o.size, o.size, out);
    return 0;
}

/* ---- import-weights ------------------------------------------------------------ */

int mvead_cmd_import_weights(int argc, char **argv) {
    if (argc >= 1 && (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h"))) {
        printf("usage: mvead import-weights MODEL.safetensors OUT.h5 [CONFIG.json]\n\n"
               "Converts DINOv2 weights (HuggingFace or torch-hub key names; F32/F16/BF16) into the\n"
               "project's HDF5 weights file. CONFIG.json defaults to config.json beside the model.\n");
        return 0;
    }
    for (int i = 0; i < argc; i++)
        if (argv[i][0] == '-') { fprintf(stderr, "mvead import-weights: unknown option '%s'\n", argv[i]); return MVEAD_EXIT_USAGE; }
    if (argc < 2 || argc > 3) { fprintf(stderr, "usage: mvead import-weights MODEL.safetensors OUT.h5 [CONFIG.json]\n"); return MVEAD_EXIT_USAGE; }
    if (mvn_import_weights(argv[0], argc == 3 ? argv[2] : NULL, argv[1])) return mvead_cli_fail("import-weights");
    fprintf(stderr, "import-weights: %s -> %s\n", argv[0], argv[1]);
    return 0;
}

/* ---- calibrate / epilines --------------------------------------------------------- */

int mvead_cmd_calibrate(int argc, char **argv) {
    const char *corr = NULL, *cache = NULL, *out = NULL;
    mvg_ransac_opts ro = mvg_ransac_opts_default();
    uint64_t seed = ro.seed;
    const cmd_flag flags[] = {
        {"--corr", FLAG_STR, &corr, 0, 0}, {"--from-cache", FLAG_STR, &cache, 0, 0}, {"--out", FLAG_STR, &out, 0, 0},
        {"--threshold", FLAG_DOUBLE, &ro.threshold_px, 1e-6, 1e6}, {"--seed", FLAG_U64, &seed, 0, 0},
    };
    int r = parse_flags("calibrate", flags, sizeof flags / sizeof flags[0], argc, argv, NULL, 0, NULL);
    if (r == 1) {
        printf("usage: mvead calibrate --corr FILE --out CALIB.json [--threshold PX] [--seed N]\n"
               "       mvead calibrate --from-cache TRAIN.h5 --out CALIB.json [--threshold PX] [--seed N]\n\n"
               "Estimates F for every ordered camera pair by RANSAC around the normalised\n"
               "8-point algorithm, (a) from a file of point correspondences (format in\n"
               "mvead/geometry/calibration.h), or (b) automatically from a feature cache: mutual nearest\n"
               "neighbours between the patch features of two views of the same sample, pooled\n"
               "over the training samples. Writes the calibration JSON with inlier statistics.\n");
        return 0;
    }
    if (r) return r;
    ro.seed = seed;
    if (!out || !corr == !cache) { fprintf(stderr, "mvead calibrate: needs --out and one of --corr / --from-cache (see --help)\n"); return MVEAD_EXIT_USAGE; }
    mvg_calibration cal;
    if (corr) {
        if (mvg_calibrate_from_correspondences(corr, &cal, &ro)) return mvead_cli_fail("calibrate");
    } else if (mvead_calibrate_from_cache(cache, &ro, &cal)) return mvead_cli_fail("calibrate");
    if (mvg_calibration_write_json(out, &cal)) return mvead_cli_fail("calibrate");
    for (int a = 0; a < cal.V; a++)
        for (int b = 0; b < cal.V; b++)
            if (a < b && cal.n_corr[a][b]) {
                /* matches that sit at the same pixel in both views are fitted exactly by a
                 * skew-symmetric F (p^T [e]x p = 0 for every p): say so, it is not a calibration */
                const double *F = cal.F[a][b];
                double sym = 0, all = 0;
                for (int i = 0; i < 3; i++)
                    for (int j = 0; j < 3; j++) {
                        sym += (F[3 * i + j] + F[3 * j + i]) * (F[3 * i + j] + F[3 * j + i]);
                        all += F[3 * i + j] * F[3 * i + j];
                    }
                bool degenerate = all > 0 && sqrt(sym / all) < 1e-3;
                fprintf(stderr, "calibrate: C%d-C%d: %d/%d inliers, RMS Sampson %.2f px%s\n", a + 1, b + 1, cal.n_inliers[a][b],
                        cal.n_corr[a][b], cal.rms_px[a][b],
                        degenerate ? "  WARNING: F is skew-symmetric (the matches sit at the same pixels in both views): "
                                     "not a usable calibration; give correspondences or cameras" : "");
            }
    fprintf(stderr, "calibrate: -> %s\n", out);
    return 0;
}

int mvead_cmd_epilines(int argc, char **argv) {
    const char *calib = NULL, *images = NULL, *points = NULL, *out = NULL;
    int view = 1, P = 14, size = 0;
    double delta = 1.0;
    const cmd_flag flags[] = {
        {"--calib", FLAG_STR, &calib, 0, 0},   {"--images", FLAG_STR, &images, 0, 0},
        {"--points", FLAG_STR, &points, 0, 0}, {"--out", FLAG_STR, &out, 0, 0},
        {"--view", FLAG_INT, &view, 1, MVG_MAX_VIEWS}, {"--patch", FLAG_INT, &P, 1, 4096},
        {"--size", FLAG_INT, &size, 0, 1 << 16},       {"--delta", FLAG_DOUBLE, &delta, 0, 1e6},
    };
    int r = parse_flags("epilines", flags, sizeof flags / sizeof flags[0], argc, argv, NULL, 0, NULL);
    if (r == 1) {
        printf("usage: mvead epilines --calib CALIB.json --images IMG1,IMG2,... --points X,Y[;X,Y...] --out OUT.png\n"
               "                      [--view A (1-based, default 1)] [--size S] [--patch P (14)] [--delta D (1.0)]\n\n"
               "Draws, for chosen points of view A, their epipolar lines and the patches the EAM\n"
               "mask keeps in every other view, all views side by side in one PNG. Points are in\n"
               "pixels of the images as given (or of SxS when --size resizes them).\n");
        return 0;
    }
    if (r) return r;
    if (!calib || !images || !points || !out) { fprintf(stderr, "mvead epilines: needs --calib, --images, --points and --out (see --help)\n"); return MVEAD_EXIT_USAGE; }
    mvg_calibration cal;
    if (mvg_calibration_read_json(calib, &cal)) return mvead_cli_fail("epilines");
    if (view < 1 || view > cal.V) { fprintf(stderr, "mvead epilines: --view must be in 1..%d\n", cal.V); return MVEAD_EXIT_USAGE; }
    mvd_image imgs[MVG_MAX_VIEWS] = {{0}};
    const uint8_t *ptrs[MVG_MAX_VIEWS] = {0};
    int n = 0, W = 0, H = 0, rc = 1;
    char *list = strdup(images);
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        if (n >= cal.V) { fprintf(stderr, "mvead epilines: more images than the calibration's %d views\n", cal.V); goto out; }
        mvd_image raw = {0};
        if (mvd_image_read_as(tok, 3, &raw)) { mvead_cli_fail("epilines"); goto out; }
        int w = size ? size : raw.width, h = size ? size : raw.height;
        if (n == 0) { W = w; H = h; }
        if (w != W || h != H) { mvd_image_free(&raw); fprintf(stderr, "mvead epilines: %s: all views must have the same size (use --size)\n", tok); goto out; }
        if (raw.width != W || raw.height != H) {
            if (mvd_image_resize(&raw, W, H, MVD_RESIZE_BILINEAR, MVD_AA_SHRINK, &imgs[n])) { mvd_image_free(&raw); mvead_cli_fail("epilines"); goto out; }
            mvd_image_free(&raw);
        } else imgs[n] = raw;
        ptrs[n] = imgs[n].data;
        n++;
    }
    if (n != cal.V) { fprintf(stderr, "mvead epilines: %d images given, the calibration has %d views\n", n, cal.V); goto out; }
    double pts[64];
    int np = 0;
    char *pl = strdup(points);
    for (char *tok = strtok(pl, ";"); tok && np < 32; tok = strtok(NULL, ";")) {
        if (sscanf(tok, "%lf,%lf", &pts[2 * np], &pts[2 * np + 1]) != 2) { fprintf(stderr, "mvead epilines: bad point '%s' (expected X,Y)\n", tok); free(pl); goto out; }
        if (!(pts[2 * np] >= 0 && pts[2 * np] < W && pts[2 * np + 1] >= 0 && pts[2 * np + 1] < H)) {
            fprintf(stderr, "mvead epilines: point '%s' is outside the %dx%d image of view %d (x in [0, %d), y in [0, %d))\n",
                    tok, W, H, view, W, H);
            free(pl);
            rc = MVEAD_EXIT_USAGE;
            goto out;
        }
        np++;
    }
    free(pl);
    uint8_t *canvas = NULL;
    int cw, ch;
    if (mvg_draw_epilines(&cal, ptrs, W, H, view - 1, pts, np, P, delta, &canvas, &cw, &ch)) { mvead_cli_fail("epilines"); goto out; }
    mvd_image ci = {cw, ch, 3, canvas};
    if (mvd_image_write_png(out, &ci)) { free(canvas); mvead_cli_fail("epilines"); goto out; }
    free(canvas);
    fprintf(stderr, "epilines: %d point(s) of view %d -> %s\n", np, view, out);
    rc = 0;
out:
    free(list);
    for (int i = 0; i < MVG_MAX_VIEWS; i++) mvd_image_free(&imgs[i]);
    return rc;
}

