/* stage_cmds: the commands that run pipeline stages on a run (extract, train,
 * bank, eval, run, report, demo). Each parses the run options on top of the
 * run's config.json (mvead_config_parse_run) and, only once a stage has
 * succeeded, writes it back and appends the stage to history.jsonl: a failed
 * or interrupted command leaves the run's settings as they were. */
#include "data/synth.h"
#include "mvead/cli/commands.h"
#include "mvead/cli/exit_codes.h"
#include "mvead/cli/options.h"
#include "mvead/run/checkpoint.h"
#include "mvead/run/history.h"
#include "mvead/run/interrupt.h"
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

/* Parses options (on top of the run's config.json when write_cfg; the
 * command records them with `record` once its stage succeeds). Returns -1
 * continue, else the exit code to return. */
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
    if (write_cfg) {
        char dir[1024];
        if (mvead_run_dir(c, dir, sizeof dir, true)) return mvead_cli_fail(cmd);
    }
    mvead_interrupt_install();
    return -1;
}

/* The run's options before this command (its config.json, else the
 * defaults), for history.jsonl's "changed"; how to run is not a change. */
static void options_before(const mvead_config *c, mvead_config *before) {
    mvead_config_defaults(before);
    char dir[1024];
    mvead_paths p;
    if (!mvead_run_dir(c, dir, sizeof dir, false) && !mvead_paths_of_dir(dir, &p) && access(p.config, F_OK) == 0 &&
        mvead_config_load_json(before, p.config))
        mvead_config_defaults(before);
    memcpy(before->runs, c->runs, sizeof before->runs);
    memcpy(before->name, c->name, sizeof before->name);
    before->threads = c->threads;
    before->quiet = c->quiet;
    before->resume = c->resume;
}

/* Runs one stage, timing it for history.jsonl. */
static int timed(int (*fn)(const mvead_config *), const mvead_config *c, const char *name, mvead_history_stage *st) {
    double t0 = mvead_now();
    int rc = fn(c);
    st->stage = name;
    st->seconds = mvead_now() - t0;
    st->peak_rss_mib = mvead_peak_rss_mib();
    return rc;
}

/* After a stage succeeded (rank 0): a line of history.jsonl (what ran), then
 * config.json (the options the run's files now come from). */
static int record(const char *cmd, const mvead_config *c, const mvead_config *before, int argc, char **argv,
                  const mvead_history_stage *st) {
    if (mvead_mpi_world_rank() > 0) return 0;
    char dir[1024];
    mvead_paths p;
    if (mvead_run_dir(c, dir, sizeof dir, true) || mvead_paths_of_dir(dir, &p)) return -1;
    if (mvead_history_append(c, before, cmd, argc, argv, st, 1)) return -1;
    return mvead_config_write_json(c, p.config);
}

/* Options that `train --resume` may change: how to run, and --epochs to go
 * further. Everything else would change the trajectory the checkpoint is on. */
static const char *const RESUME_MAY_CHANGE[] = {"name", "runs", "threads", "quiet", "epochs", "resume", "memory_mb",
                                                "bank_mode", "coreset_ratio", "coreset_mode", "sigma", "heatmaps", NULL};

/* --resume: the run continues with the options its checkpoint was trained
 * with; the command line may only change RESUME_MAY_CHANGE (else exit 2,
 * naming the options). Returns -1 continue, else the exit code. */
static int resume_options(mvead_config *c, const char *cmd, const char *summary, const char *const *accepted, int argc,
                          char **argv) {
    if (!c->resume) return -1;
    mvead_paths p;
    if (mvead_paths_init(c, &p, false)) return mvead_cli_fail(cmd);
    if (access(p.checkpoint, F_OK) != 0) {
        fprintf(stderr, "mvead %s: --resume: nothing to resume (no %s); training from the start\n", cmd, p.checkpoint);
        return -1;
    }
    mvead_config k, r;
    mvead_config_defaults(&k);
    if (mvead_checkpoint_read_config(p.checkpoint, &k)) return mvead_cli_fail(cmd);
    r = k;
    char *pos[1];
    int np;
    if (mvead_config_parse(&r, cmd, summary, accepted, argc, argv, pos, 0, &np)) {
        fprintf(stderr, "%s\n", mv_error_last());
        return MVEAD_EXIT_USAGE;
    }
    mvead_config cmp = r;
    for (int i = 0; RESUME_MAY_CHANGE[i]; i++) {
        const mvead_option *o = mvead_option_find(RESUME_MAY_CHANGE[i]);
        memcpy((char *)&cmp + o->off, (const char *)&k + o->off, o->size);
    }
    char diff[2048];
    if (mvead_config_diff(&k, &cmp, NULL, diff, sizeof diff)) {
        fprintf(stderr, "mvead %s: --resume continues the training in %s with the options it was started with; "
                        "these would change its trajectory: %s. Drop them, or train from the start without --resume "
                        "(--threads, --quiet and --epochs may change)\n", cmd, p.checkpoint, diff);
        return MVEAD_EXIT_USAGE;
    }
    memcpy(r.runs, c->runs, sizeof r.runs);
    memcpy(r.name, c->name, sizeof r.name);
    r.threads = c->threads;
    r.quiet = c->quiet;
    r.resume = true;
    *c = r;
    mvead_cli_apply_runtime(c);
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
    mvead_config c, before;
    char *pos[1];
    int np, r = parse(&c, s->name, s->summary, s->accepted, argc, argv, pos, 0, &np, true);
    if (r >= 0) return r;
    if (s->run == run_train && (r = resume_options(&c, s->name, s->summary, s->accepted, argc, argv)) >= 0) return r;
    options_before(&c, &before);
    mvead_history_stage st;
    if (timed(s->run, &c, s->name, &st)) return mvead_cli_fail(s->name);
    return record(s->name, &c, &before, argc, argv, &st) ? mvead_cli_fail(s->name) : 0;
}

/* extract, train, bank, eval: each recorded as it finishes, so a later
 * failure leaves config.json describing what did run. */
static int all_stages(const char *cmd, const mvead_config *c, int argc, char **argv) {
    mvead_config before;
    options_before(c, &before);
    static const struct { const char *name; int (*fn)(const mvead_config *); } steps[] = {
        {"extract", mvead_stage_extract}, {"train", run_train}, {"bank", mvead_stage_bank}, {"eval", mvead_stage_eval}};
    for (int i = 0; i < 4; i++) {
        mvead_history_stage st;
        if (timed(steps[i].fn, c, steps[i].name, &st) || record(cmd, c, &before, argc, argv, &st)) return -1;
        before = *c;
    }
    return 0;
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
    if ((r = resume_options(&c, "run", "", NULL, argc, argv)) >= 0) return r;
    if (all_stages("run", &c, argc, argv)) return mvead_cli_fail("run");
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
        if (np < 1) {
            fprintf(stderr, "mvead report: --compare needs at least one run folder (mvead report --compare RUN_DIR... [--out DIR])\n");
            return MVEAD_EXIT_USAGE;
        }
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
    mvead_interrupt_install();
    if (all_stages("demo", &c, argc, argv)) return mvead_cli_fail("demo");
    if (mvead_mpi_rank() == 0 && mvead_stage_report(&c)) return mvead_cli_fail("demo");
    if (mvead_mpi_rank() > 0) return 0;
    printf("demo: report: %s (summary: %s, metrics: %s)\n", p.report_html, p.report_md, p.metrics);
    return 0;
}

