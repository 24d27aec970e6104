/* stage_cmds: the commands that run pipeline stages on a run (extract, train,
 * bank, eval, run, report, demo). Each parses the run options on top of the
 * run's config.json (mvead_config_parse_run) and writes it back. */
#include "data/synth.h"
#include "mvead/cli/commands.h"
#include "mvead/cli/exit_codes.h"
#include "mvead/cli/options.h"
#include "mvead/run/mpi.h"
#include "mvead/run/paths.h"
#include "mvead/run/progress.h"
#include "mvead/run/stages.h"
#include "tensor/error.h"
#include <stdio.h>
#include <string.h>
#include <unistd.h>

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
                                        "fusion", "attention", "mvas_window", "mvas_topk", "sigma", "heatmaps", "eval_size", "save_maps", "memory_mb", NULL};

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
    if (r == -2) return mvead_cli_fail(cmd);
    if (r < 0) {
        fprintf(stderr, "%s\n", mv_error_last());
        return MVEAD_EXIT_USAGE;
    }
    mvead_cli_apply_runtime(c);
    if (write_cfg && mvead_mpi_world_rank() > 0) {
        /* rank 0 writes config.json; the others only need the run folder */
        char dir[1024];
        if (mvead_run_dir(c, dir, sizeof dir, true)) return mvead_cli_fail(cmd);
    } else if (write_cfg) {
        char dir[1024];
        mvead_paths p;
        if (mvead_run_dir(c, dir, sizeof dir, true) || mvead_paths_of_dir(dir, &p)) return mvead_cli_fail(cmd);
        if (mvead_config_write_json(c, p.config)) return mvead_cli_fail(cmd);
    }
    return -1;
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
    return s->run(&c) ? mvead_cli_fail(s->name) : 0;
}

int mvead_cmd_extract(int argc, char **argv) { return cmd_stage(&STAGES[0], argc, argv); }
int mvead_cmd_train(int argc, char **argv) { return cmd_stage(&STAGES[1], argc, argv); }
int mvead_cmd_bank(int argc, char **argv) { return cmd_stage(&STAGES[2], argc, argv); }
int mvead_cmd_eval(int argc, char **argv) { return cmd_stage(&STAGES[3], argc, argv); }

int mvead_cmd_run(int argc, char **argv) {
    mvead_config c;
    char *pos[1];
    int np, r = parse(&c, "run", "One experiment end to end: extract (skipped when the cache exists), train,\n"
                                 "bank, eval, report. Every option of those stages applies.",
                      NULL, argc, argv, pos, 0, &np, true);
    if (r >= 0) return r;
    if (mvead_stage_extract(&c)) return mvead_cli_fail("run");
    if (mvead_stage_train(&c, c.resume)) return mvead_cli_fail("run");
    if (mvead_stage_bank(&c)) return mvead_cli_fail("run");
    if (mvead_stage_eval(&c)) return mvead_cli_fail("run");
    if (mvead_mpi_rank() == 0 && mvead_stage_report(&c)) return mvead_cli_fail("run");
    return 0;
}

int mvead_cmd_report(int argc, char **argv) {
    mvead_config c;
    char *pos[64];
    int np;
    bool compare = false;
    const char *out = ".";
    char *args[128];
    int na = 0;
    for (int i = 0; i < argc && na < 127; i++) {
        if (!strcmp(argv[i], "--compare")) compare = true;
        else if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
        else args[na++] = argv[i];
    }
    int r = parse(&c, "report", "Writes report.html (threshold, tables per category, view and defect type, curves,\n"
                                "every view of the top samples, attention and epiline pictures, provenance) and\n"
                                "report.md for a run (docs/cmd/report.md).\n"
                                "  --compare RUN_DIR...  instead, compare runs: a table on stdout, compare.html and\n"
                                "                        compare.md (metrics, differing settings, loss curves)\n"
                                "  --out DIR             where --compare writes its pages [.]",
                  RUN_OPTS, na, args, pos, 64, &np, false);
    if (r >= 0) return r;
    if (compare) {
        if (np < 1) { fprintf(stderr, "mvead report: --compare needs one or more run folders\n"); return MVEAD_EXIT_USAGE; }
        return mvead_report_compare((const char *const *)pos, np, out) ? mvead_cli_fail("report") : 0;
    }
    if (np) { fprintf(stderr, "mvead report: unexpected argument '%s' (did you mean --compare?)\n", pos[0]); return MVEAD_EXIT_USAGE; }
    return mvead_stage_report(&c) ? mvead_cli_fail("report") : 0;
}

int mvead_cmd_demo(int argc, char **argv) {
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
        o.progress = mvead_cli_synth_progress;
        o.progress_ctx = &pr;
        if (mvd_synth_generate(&o, c.data)) return mvead_cli_fail("demo");
        mvead_progress_finish(&pr);
        mvead_log("demo: synthetic dataset -> %s", c.data);
    }
    mvead_mpi_barrier();   /* the other ranks read what rank 0 synthesised */
    char dir[1024];
    mvead_paths p;
    if (mvead_run_dir(&c, dir, sizeof dir, true) || mvead_paths_of_dir(dir, &p)) return mvead_cli_fail("demo");
    if (mvead_mpi_rank() == 0 && mvead_config_write_json(&c, p.config)) return mvead_cli_fail("demo");
    if (mvead_stage_extract(&c) || mvead_stage_train(&c, c.resume) || mvead_stage_bank(&c) || mvead_stage_eval(&c) ||
        (mvead_mpi_rank() == 0 && mvead_stage_report(&c))) return mvead_cli_fail("demo");
    if (mvead_mpi_rank() > 0) return 0;
    printf("demo: report: %s (summary: %s, metrics: %s)\n", p.report_html, p.report_md, p.metrics);
    return 0;
}

