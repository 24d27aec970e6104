/* mvead: one command per experiment. Each subcommand parses the shared
 * option table (mvead/cli/options.h), writes the run's config.json, and runs one
 * or more pipeline stages (mvead/run/pipeline.h). Errors print one line naming
 * what was wrong and exit non-zero: 2 for usage errors, 1 for failures. */
#include "config.h"   /* autoconf */
#include "data/cache.h"
#include "data/image.h"
#include "data/synth.h"
#include "data/transform.h"
#include "mvead/geometry/calibration.h"
#include "mvead/cli/commands.h"
#include "mvead/cli/options.h"
#include "mvead/geometry/epilines.h"
#include "mvead/geometry/epipolar.h"
#include "mvead/run/mpi.h"
#include "mvead/run/pipeline.h"
#include "mvead/run/progress.h"
#include "nn/weights.h"
#include "tensor/error.h"
#include "tensor/tensor.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXIT_USAGE 2

static const char *const RUN_OPTS[] = {"name", "runs", "data", "cache", "categories", "seed", "threads", "quiet", NULL};

/* Options of the stages, as NULL-terminated lists. */
static const char *const EXTRACT_OPTS[] = {"name", "runs", "data", "cache", "categories", "seed", "threads", "quiet",
                                           "backbone", "layer", "image_size", "final_norm", "pos_interp", "cache_dtype",
                                           "extract_batch", NULL};
static const char *const TRAIN_OPTS[] = {"name", "runs", "data", "cache", "categories", "seed", "threads", "quiet",
                                         "backbone", "layer", "calib", "delta", "fusion", "attention", "init", "objective",
                                         "centers", "n_k", "lambda", "epochs", "batch", "lr", "wd", "mvas_window",
                                         "mvas_topk", "resume", "nan_policy", "image_size", "pos_interp", "memory_mb", NULL};
static const char *const BANK_OPTS[] = {"name", "runs", "data", "cache", "seed", "threads", "quiet", "calib", "delta",
                                        "fusion", "attention", "mvas_window", "mvas_topk", "bank_mode", "coreset_ratio",
                                        "coreset_mode", "memory_mb", NULL};
static const char *const EVAL_OPTS[] = {"name", "runs", "data", "cache", "seed", "threads", "quiet", "calib", "delta",
                                        "fusion", "attention", "mvas_window", "mvas_topk", "sigma", "heatmaps", "memory_mb", NULL};

static int fail(const char *cmd) {
    /* under mpirun, say which rank failed (the job is aborted by main) */
    if (mvead_mpi_world_size() > 1) fprintf(stderr, "mvead %s: error (rank %d of %d): %s\n", cmd, mvead_mpi_world_rank(), mvead_mpi_world_size(), mv_error_last());
    else fprintf(stderr, "mvead %s: error: %s\n", cmd, mv_error_last());
    return 1;
}

static void apply_runtime(const mvead_config *c) {
    if (c->threads > 0) mvt_set_num_threads(c->threads);
    /* under mpirun only rank 0 logs and draws progress; errors come from every rank */
    mvead_progress_set_quiet(c->quiet || mvead_mpi_world_rank() > 0);
}

/* Parses options; on success writes <run>/config.json when write_cfg. Returns
 * -1 continue, else the exit code to return. */
static int parse(mvead_config *c, const char *cmd, const char *summary, const char *const *accepted, int argc,
                 char **argv, char **pos, int max_pos, int *n_pos, bool write_cfg) {
    /* a stage of an existing run starts from the run's own options
     * (`mvead bank --name exp1` after `mvead train --data ... --name exp1`) */
    int r;
    if (write_cfg) {
        r = mvead_config_parse_run(c, cmd, summary, accepted, argc, argv, pos, max_pos, n_pos, false);
    } else {
        mvead_config_defaults(c);
        r = mvead_config_parse(c, cmd, summary, accepted, argc, argv, pos, max_pos, n_pos);
    }
    if (r == 1) return 0;
    if (r == -2) return fail(cmd);
    if (r < 0) {
        fprintf(stderr, "%s\n", mv_error_last());
        return EXIT_USAGE;
    }
    apply_runtime(c);
    if (write_cfg && mvead_mpi_world_rank() > 0) {
        /* rank 0 writes config.json; the others only need the run folder */
        char dir[1024];
        if (mvead_run_dir(c, dir, sizeof dir, true)) return fail(cmd);
    } else if (write_cfg) {
        char dir[1024], path[1100];
        if (mvead_run_dir(c, dir, sizeof dir, true)) return fail(cmd);
        snprintf(path, sizeof path, "%s/config.json", dir);
        if (mvead_config_write_json(c, path)) return fail(cmd);
    }
    return -1;
}

/* ---- synth ------------------------------------------------------------------ */

static void synth_progress(void *ctx, int done, int total) {
    mvead_progress *p = ctx;
    if (p->total != total) p->total = total;
    mvead_progress_update(p, done, NULL);
}

/* ---- flags of the small commands -------------------------------------------------
 * synth, calibrate and epilines take a few flags of their own (the stage
 * commands use the shared option table, mvead/cli/options.h): a table of
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
 * EXIT_USAGE after printing what was wrong. */
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
            if (a[0] == '-' && a[1]) { fprintf(stderr, "mvead %s: unknown option '%s' (see mvead %s --help)\n", cmd, a, cmd); return EXIT_USAGE; }
            if (!n_pos || *n_pos >= max_pos) { fprintf(stderr, "mvead %s: unexpected argument '%s'\n", cmd, a); return EXIT_USAGE; }
            pos[(*n_pos)++] = a;
            continue;
        }
        if (f->kind == FLAG_BOOL) { *(bool *)f->dst = true; continue; }
        if (i + 1 >= argc) { fprintf(stderr, "mvead %s: %s needs a value\n", cmd, a); return EXIT_USAGE; }
        const char *v = argv[++i];
        char *end = NULL;
        switch (f->kind) {
        case FLAG_STR: *(const char **)f->dst = v; break;
        case FLAG_INT: {
            long x = strtol(v, &end, 10);
            if (!*v || *end || x < f->lo || x > f->hi) {
                fprintf(stderr, "mvead %s: %s expects an integer in [%.0f, %.0f], got '%s'\n", cmd, a, f->lo, f->hi, v);
                return EXIT_USAGE;
            }
            *(int *)f->dst = (int)x;
            break;
        }
        case FLAG_U64: {
            unsigned long long x = strtoull(v, &end, 10);
            if (!*v || *end || v[0] == '-') { fprintf(stderr, "mvead %s: %s expects a non-negative integer, got '%s'\n", cmd, a, v); return EXIT_USAGE; }
            *(uint64_t *)f->dst = x;
            break;
        }
        case FLAG_DOUBLE: {
            double x = strtod(v, &end);
            if (!*v || *end || !(x >= f->lo && x <= f->hi)) {
                fprintf(stderr, "mvead %s: %s expects a number in [%g, %g], got '%s'\n", cmd, a, f->lo, f->hi, v);
                return EXIT_USAGE;
            }
            *(double *)f->dst = x;
            break;
        }
        case FLAG_BOOL: break;
        }
    }
    return 0;
}

static int cmd_synth(int argc, char **argv) {
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
    if (!out) { fprintf(stderr, "mvead synth: missing OUT_DIR (see mvead synth --help)\n"); return EXIT_USAGE; }
    if (mvd_synth_check_opts(&o)) { fprintf(stderr, "mvead synth: %s\n", mv_error_last()); return EXIT_USAGE; }
    mvead_progress_set_quiet(quiet);
    mvead_progress pr;
    mvead_progress_start(&pr, "synth", 1);
    o.progress = synth_progress;
    o.progress_ctx = &pr;
    if (mvd_synth_generate(&o, out)) return fail("synth");
    mvead_progress_finish(&pr);
    mvead_log("synth: %d categories x (%d train + %d good + %d defective test) samples x %d views, %dx%d -> %s",
              o.categories, o.train, o.test_good, o.test_bad, o.views, o.size, o.size, out);
    return 0;
}

/* ---- import-weights ------------------------------------------------------------ */

static int cmd_import(int argc, char **argv) {
    if (argc >= 1 && (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h"))) {
        printf("usage: mvead import-weights MODEL.safetensors OUT.h5 [CONFIG.json]\n\n"
               "Converts DINOv2 weights (HuggingFace or torch-hub key names; F32/F16/BF16) into the\n"
               "project's HDF5 weights file. CONFIG.json defaults to config.json beside the model.\n");
        return 0;
    }
    for (int i = 0; i < argc; i++)
        if (argv[i][0] == '-') { fprintf(stderr, "mvead import-weights: unknown option '%s'\n", argv[i]); return EXIT_USAGE; }
    if (argc < 2 || argc > 3) { fprintf(stderr, "usage: mvead import-weights MODEL.safetensors OUT.h5 [CONFIG.json]\n"); return EXIT_USAGE; }
    if (mvn_import_weights(argv[0], argc == 3 ? argv[2] : NULL, argv[1])) return fail("import-weights");
    fprintf(stderr, "import-weights: %s -> %s\n", argv[0], argv[1]);
    return 0;
}

/* ---- calibrate / epilines --------------------------------------------------------- */

static int cmd_calibrate(int argc, char **argv) {
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
    if (!out || !corr == !cache) { fprintf(stderr, "mvead calibrate: needs --out and one of --corr / --from-cache (see --help)\n"); return EXIT_USAGE; }
    mvg_calibration cal;
    if (corr) {
        if (mvg_calibrate_from_correspondences(corr, &cal, &ro)) return fail("calibrate");
    } else if (mvead_calibrate_from_cache(cache, &ro, &cal)) return fail("calibrate");
    if (mvg_calibration_write_json(out, &cal)) return fail("calibrate");
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

static int cmd_epilines(int argc, char **argv) {
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
    if (!calib || !images || !points || !out) { fprintf(stderr, "mvead epilines: needs --calib, --images, --points and --out (see --help)\n"); return EXIT_USAGE; }
    mvg_calibration cal;
    if (mvg_calibration_read_json(calib, &cal)) return fail("epilines");
    if (view < 1 || view > cal.V) { fprintf(stderr, "mvead epilines: --view must be in 1..%d\n", cal.V); return EXIT_USAGE; }
    mvd_image imgs[MVG_MAX_VIEWS] = {{0}};
    const uint8_t *ptrs[MVG_MAX_VIEWS] = {0};
    int n = 0, W = 0, H = 0, rc = 1;
    char *list = strdup(images);
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        if (n >= cal.V) { fprintf(stderr, "mvead epilines: more images than the calibration's %d views\n", cal.V); goto out; }
        mvd_image raw = {0};
        if (mvd_image_read_as(tok, 3, &raw)) { fail("epilines"); goto out; }
        int w = size ? size : raw.width, h = size ? size : raw.height;
        if (n == 0) { W = w; H = h; }
        if (w != W || h != H) { mvd_image_free(&raw); fprintf(stderr, "mvead epilines: %s: all views must have the same size (use --size)\n", tok); goto out; }
        if (raw.width != W || raw.height != H) {
            if (mvd_image_resize(&raw, W, H, MVD_RESIZE_BILINEAR, MVD_AA_SHRINK, &imgs[n])) { mvd_image_free(&raw); fail("epilines"); goto out; }
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
        np++;
    }
    free(pl);
    uint8_t *canvas = NULL;
    int cw, ch;
    if (mvg_draw_epilines(&cal, ptrs, W, H, view - 1, pts, np, P, delta, &canvas, &cw, &ch)) { fail("epilines"); goto out; }
    mvd_image ci = {cw, ch, 3, canvas};
    if (mvd_image_write_png(out, &ci)) { free(canvas); fail("epilines"); goto out; }
    free(canvas);
    fprintf(stderr, "epilines: %d point(s) of view %d -> %s\n", np, view, out);
    rc = 0;
out:
    free(list);
    for (int i = 0; i < MVG_MAX_VIEWS; i++) mvd_image_free(&imgs[i]);
    return rc;
}

/* ---- stages ----------------------------------------------------------------------- */

/* A stage command: parse its options, write config.json, run the stage. */
typedef struct {
    const char *name, *summary;
    const char *const *accepted;
    int (*run)(const mvead_config *c);
} stage_command;

static int run_train(const mvead_config *c) { return mvead_stage_train(c, c->resume); }

static const stage_command STAGES[] = {
    {"extract", "Runs the frozen backbone over the dataset (train and test splits) and stores\n"
                "the block-k patch features in <cache>/{train,test}.h5 (resumable).",
     EXTRACT_OPTS, mvead_stage_extract},
    {"train", "Pre-trains the Epipolar Attention Module on the cached training features\n"
              "(objective none | deepsvdd | mcp | mcp+reg); writes checkpoint.h5 every epoch\n"
              "and loss.csv; --resume continues an interrupted run to the same result.",
     TRAIN_OPTS, run_train},
    {"bank", "Builds the memory bank(s) from the fused features of every training patch\n"
             "(per view or pooled), subsampled by greedy coreset; writes bank.h5.",
     BANK_OPTS, mvead_stage_bank},
    {"eval", "Scores the test split against the bank (patch, image, sample scores and\n"
             "anomaly maps) and writes metrics.json (AUROC/AP at sample, image and pixel\n"
             "level, AUPRO), scores.h5 and heatmap overlays.",
     EVAL_OPTS, mvead_stage_eval},
};

static int cmd_stage(const stage_command *s, int argc, char **argv) {
    mvead_config c;
    char *pos[1];
    int np, r = parse(&c, s->name, s->summary, s->accepted, argc, argv, pos, 0, &np, true);
    if (r >= 0) return r;
    return s->run(&c) ? fail(s->name) : 0;
}

static int cmd_extract(int argc, char **argv) { return cmd_stage(&STAGES[0], argc, argv); }
static int cmd_train(int argc, char **argv) { return cmd_stage(&STAGES[1], argc, argv); }
static int cmd_bank(int argc, char **argv) { return cmd_stage(&STAGES[2], argc, argv); }
static int cmd_eval(int argc, char **argv) { return cmd_stage(&STAGES[3], argc, argv); }

static int cmd_run(int argc, char **argv) {
    mvead_config c;
    char *pos[1];
    int np, r = parse(&c, "run", "One experiment end to end: extract (skipped when the cache exists), train,\n"
                                 "bank, eval, report. Every option of those stages applies.",
                      NULL, argc, argv, pos, 0, &np, true);
    if (r >= 0) return r;
    if (mvead_stage_extract(&c)) return fail("run");
    if (mvead_stage_train(&c, c.resume)) return fail("run");
    if (mvead_stage_bank(&c)) return fail("run");
    if (mvead_stage_eval(&c)) return fail("run");
    if (mvead_mpi_rank() == 0 && mvead_stage_report(&c)) return fail("run");
    return 0;
}

static int cmd_report(int argc, char **argv) {
    mvead_config c;
    char *pos[64];
    int np;
    bool compare = false;
    char *args[128];
    int na = 0;
    for (int i = 0; i < argc && na < 127; i++) {
        if (!strcmp(argv[i], "--compare")) compare = true;
        else args[na++] = argv[i];
    }
    int r = parse(&c, "report", "Writes report.html (tables, curves, the worst false positives and negatives)\n"
                                "and report.md for a run.\n"
                                "  --compare RUN_DIR...  instead, print the metrics of several runs side by side",
                  RUN_OPTS, na, args, pos, 64, &np, false);
    if (r >= 0) return r;
    if (compare) return mvead_report_compare((const char *const *)pos, np) ? fail("report") : 0;
    if (np) { fprintf(stderr, "mvead report: unexpected argument '%s' (did you mean --compare?)\n", pos[0]); return EXIT_USAGE; }
    return mvead_stage_report(&c) ? fail("report") : 0;
}

static int cmd_demo(int argc, char **argv) {
    mvead_config c;
    char *pos[1];
    int np, r = parse(&c, "demo", "Synthesises the default dataset (if missing), then extracts, trains, builds the\n"
                                  "banks, evaluates and writes the report: the whole method in a few minutes.",
                      NULL, argc, argv, pos, 0, &np, false);
    if (r >= 0) return r;
    mvead_config d;
    mvead_config_defaults(&d);
    /* demo-sized defaults unless the user chose otherwise */
    if (!strcmp(c.name, d.name)) snprintf(c.name, sizeof c.name, "demo");
    if (c.epochs == d.epochs) c.epochs = 5;
    if (c.centers == d.centers) c.centers = 10;
    if (c.coreset_ratio == d.coreset_ratio) c.coreset_ratio = 0.25;
    char calib[1100];
    snprintf(calib, sizeof calib, "%s/calibration.json", c.data);
    if (mvead_mpi_rank() == 0 && access(calib, F_OK) != 0) {
        mvd_synth_opts o;
        mvd_synth_default_opts(&o);
        o.seed = c.seed;
        mvead_progress pr;
        mvead_progress_start(&pr, "synth", 1);
        o.progress = synth_progress;
        o.progress_ctx = &pr;
        if (mvd_synth_generate(&o, c.data)) return fail("demo");
        mvead_progress_finish(&pr);
        mvead_log("demo: synthetic dataset -> %s", c.data);
    }
    mvead_mpi_barrier();   /* the other ranks read what rank 0 synthesised */
    char dir[1024], path[1100];
    if (mvead_run_dir(&c, dir, sizeof dir, true)) return fail("demo");
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (mvead_mpi_rank() == 0 && mvead_config_write_json(&c, path)) return fail("demo");
    if (mvead_stage_extract(&c) || mvead_stage_train(&c, c.resume) || mvead_stage_bank(&c) || mvead_stage_eval(&c) ||
        (mvead_mpi_rank() == 0 && mvead_stage_report(&c))) return fail("demo");
    if (mvead_mpi_rank() > 0) return 0;
    printf("demo: report: %s/report.html (summary: %s/report.md, metrics: %s/metrics.json)\n", dir, dir, dir);
    return 0;
}

typedef struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} command;

static const command commands[] = {
    {"demo", cmd_demo, "synthesise data, extract, train, bank, eval, report (the quick tour)"},
    {"synth", cmd_synth, "render the synthetic multi-view dataset (Real-IAD layout + calibration)"},
    {"import-weights", cmd_import, "convert DINOv2 safetensors (HF or torch-hub names) to HDF5"},
    {"calibrate", cmd_calibrate, "estimate F for every camera pair (correspondences or features + RANSAC)"},
    {"epilines", cmd_epilines, "draw epipolar lines and mask patches to check a calibration"},
    {"extract", cmd_extract, "backbone features into the HDF5 feature cache (resumable)"},
    {"train", cmd_train, "pre-train the EAM (MCP + Reg) on cached features (resumable)"},
    {"bank", cmd_bank, "build the multi-view memory banks (greedy coreset)"},
    {"eval", cmd_eval, "score the test split, anomaly maps, metrics.json"},
    {"run", cmd_run, "extract + train + bank + eval + report for one configuration"},
    {"predict", mvead_cmd_predict, "score one sample's views: scores and heatmaps"},
    {"ablate", mvead_cmd_ablate, "the paper's ablation grid from one config, skipping finished runs"},
    {"report", cmd_report, "HTML + Markdown report of a run; --compare runs side by side"},
    {"attention", mvead_cmd_attention, "picture of the EAM attention of one patch over the support views"},
    {"grads", mvead_cmd_grads, "every gradient of one batch of the objective, optional gradcheck"},
};
#define N_COMMANDS ((int)(sizeof commands / sizeof commands[0]))

static void usage(FILE *f) {
    fprintf(f, "usage: mvead <command> [options]    (mvead <command> --help for its options)\n\n"
               "Multi-view industrial anomaly detection with epipolar-constrained cross-view fusion.\n\ncommands:\n");
    for (int i = 0; i < N_COMMANDS; i++) fprintf(f, "  %-15s %s\n", commands[i].name, commands[i].help);
}

/* The command proper; main wraps it in MPI init/finalize. */
static int run_command(int argc, char **argv) {
    if (argc < 2) { usage(stderr); return EXIT_USAGE; }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) { usage(stdout); return 0; }
    if (!strcmp(argv[1], "--version")) { printf("mvead %s\n", PACKAGE_VERSION); return 0; }
    /* Commands that spread over MPI ranks; under mpirun every other command runs on rank 0 only. */
    static const char *const PARALLEL[] = {"extract", "train", "bank", "eval", "run", "demo", "ablate", NULL};
    bool parallel = false;
    for (int i = 0; PARALLEL[i]; i++) parallel |= !strcmp(argv[1], PARALLEL[i]);
    for (int i = 0; i < N_COMMANDS; i++)
        if (!strcmp(argv[1], commands[i].name)) {
            if (!parallel && mvead_mpi_world_rank() > 0) return 0;
            return commands[i].fn(argc - 2, argv + 2);
        }
    fprintf(stderr, "mvead: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return EXIT_USAGE;
}

int main(int argc, char **argv) {
    /* MPI starts only under mpirun/srun (mvead/run/mpi.h); otherwise rank 0 of 1 */
    if (mvead_mpi_init(&argc, &argv)) {
        fprintf(stderr, "mvead: error: %s\n", mv_error_last());
        return 1;
    }
    int rc = run_command(argc, argv);
    /* A rank that failed may leave the others inside a collective: end the job. */
    if (rc != 0 && mvead_mpi_world_size() > 1) mvead_mpi_abort(rc);
    mvead_mpi_finalize();
    return rc;
}
