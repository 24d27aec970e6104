#include "mvead/cli/options.h"
#include "mvead/cli/exit_codes.h"
#include "mvead/run/interrupt.h"
#include "mvead/run/paths.h"
#include "mvead/run/mpi.h"
#include "mvead/run/progress.h"
#include "tensor/error.h"
#include "tensor/tensor.h"
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static bool accepted_opt(const char *const *accepted, const char *name) {
    if (!accepted) return true;
    for (int i = 0; accepted[i]; i++) if (!strcmp(accepted[i], name)) return true;
    return false;
}


/* Set while parsing for a command that acts on a run: its options default to the run's config.json. */
static bool g_usage_from_run;

/* Options a run's config.json never supplies (mvead_config_parse_run). */
static bool not_inherited(const char *name) {
    return !strcmp(name, "name") || !strcmp(name, "runs") || !strcmp(name, "threads") || !strcmp(name, "quiet") ||
           !strcmp(name, "resume");
}

void mvead_config_usage(const char *cmd, const char *summary, const char *const *accepted) {
    mvead_config d;
    mvead_config_defaults(&d);
    printf("usage: mvead %s\n\n%s\n\noptions (also settable in a JSON file given by --config FILE):\n", cmd, summary);
    for (int i = 0; i < mvead_n_options; i++) {
        const mvead_option *o = &mvead_options[i];
        if (!accepted_opt(accepted, o->name)) continue;
        const void *src = (const char *)&d + o->off;
        char def[128];
        switch (o->type) {
        case MVEAD_OPT_STR: snprintf(def, sizeof def, "%s", (const char *)src); break;
        case MVEAD_OPT_INT: snprintf(def, sizeof def, "%d", *(const int *)src); break;
        case MVEAD_OPT_U64: snprintf(def, sizeof def, "%llu", (unsigned long long)*(const uint64_t *)src); break;
        case MVEAD_OPT_DBL: snprintf(def, sizeof def, "%g", *(const double *)src); break;
        case MVEAD_OPT_BOOL: snprintf(def, sizeof def, "%s", *(const bool *)src ? "true" : "false"); break;
        }
        if (g_usage_from_run && !not_inherited(o->name))
            printf("  --%-15s %s%s%s [default: the run's, from its config.json; for a new run %s]\n", o->name, o->help,
                   o->choices ? "; one of " : "", o->choices ? o->choices : "", def[0] ? def : "\"\"");
        else
            printf("  --%-15s %s%s%s [default: %s]\n", o->name, o->help, o->choices ? "; one of " : "",
                   o->choices ? o->choices : "", def[0] ? def : "\"\"");
    }
    printf("  --%-15s %s\n  --%-15s %s\n", "config FILE", "read options from a JSON file first", "help", "show this help");
}


int mvead_config_parse(mvead_config *c, const char *cmd, const char *summary,
                       const char *const *accepted, int argc, char **argv,
                       char **pos, int max_pos, int *n_pos) {
    *n_pos = 0;
    /* --config first, so the command line overrides the file. */
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            mvead_config_usage(cmd, summary, accepted);
            return 1;
        }
        if (!strncmp(argv[i], "--config", 8) && (argv[i][8] == 0 || argv[i][8] == '=')) {
            const char *f = argv[i][8] == '=' ? argv[i] + 9 : (i + 1 < argc ? argv[i + 1] : NULL);
            if (!f) return mv_error("option --config needs a file");
            if (mvead_config_load_json(c, f)) return -1;
        }
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strncmp(a, "--config", 8) && (a[8] == 0 || a[8] == '=')) { if (!a[8]) i++; continue; }
        if (strncmp(a, "--", 2) != 0 || a[2] == 0) {
            if (a[0] == '-' && a[1]) return mv_error("mvead %s: unknown option '%s' (see mvead %s --help)", cmd, a, cmd);
            if (*n_pos >= max_pos) return mv_error("mvead %s: unexpected argument '%s'", cmd, a);
            pos[(*n_pos)++] = argv[i];
            continue;
        }
        char key[128];
        const char *val = NULL;
        const char *eq = strchr(a + 2, '=');
        size_t klen = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        if (klen >= sizeof key) return mv_error("mvead %s: option '%s' is too long", cmd, a);
        memcpy(key, a + 2, klen);
        key[klen] = 0;
        if (eq) val = eq + 1;
        const mvead_option *o = mvead_option_find(key);
        bool negated = false;
        if (!o && !strncmp(key, "no-", 3)) { o = mvead_option_find(key + 3); negated = o && o->type == MVEAD_OPT_BOOL; if (!negated) o = NULL; }
        if (!o || !accepted_opt(accepted, o->name))
            return mv_error("mvead %s: unknown option '--%s' (see mvead %s --help)", cmd, key, cmd);
        if (o->type == MVEAD_OPT_BOOL && !val) { val = negated ? "false" : "true"; }
        else if (!val) {
            if (i + 1 >= argc) return mv_error("mvead %s: option --%s needs a value", cmd, o->name);
            val = argv[++i];
        }
        char where[64];
        snprintf(where, sizeof where, "mvead %s", cmd);
        if (mvead_option_set(c, o, val, where)) return -1;
    }
    if (mvead_config_validate(c)) return mv_error_prefix("mvead %s", cmd);
    return 0;
}


int mvead_config_parse_run(mvead_config *c, const char *cmd, const char *summary, const char *const *accepted,
                           int argc, char **argv, char **pos, int max_pos, int *n_pos, bool require_run) {
    mvead_config first;
    mvead_config_defaults(&first);
    g_usage_from_run = true;   /* --help: the defaults are the run's */
    int r = mvead_config_parse(&first, cmd, summary, accepted, argc, argv, pos, max_pos, n_pos);
    g_usage_from_run = false;
    if (r) return r;
    char dir[1024];
    mvead_paths p;
    if (mvead_run_dir(&first, dir, sizeof dir, false) || mvead_paths_of_dir(dir, &p)) return -1;
    const char *path = p.config;
    if (access(path, F_OK) != 0) {
        if (require_run) {
            mv_error("%s: no run configuration here (is --runs/--name right? run `mvead run` first)", path);
            return -2;
        }
        *c = first;
        return 0;
    }
    mvead_config_defaults(c);
    if (mvead_config_load_json(c, path)) return -2;
    c->resume = false;
    c->quiet = false;
    c->threads = 0;
    r = mvead_config_parse(c, cmd, summary, accepted, argc, argv, pos, max_pos, n_pos);
    if (r) return r;
    memcpy(c->runs, first.runs, sizeof c->runs);
    memcpy(c->name, first.name, sizeof c->name);
    return 0;
}

int mvead_cli_fail(const char *cmd) {
    /* under mpirun, say which rank failed (the job is aborted by main) */
    if (mvead_mpi_world_size() > 1) fprintf(stderr, "mvead %s: error (rank %d of %d): %s\n", cmd, mvead_mpi_world_rank(), mvead_mpi_world_size(), mv_error_last());
    else fprintf(stderr, "mvead %s: %s%s\n", cmd, mvead_interrupted() ? "" : "error: ", mv_error_last());
    /* stopped by a signal at a safe point: exit as a shell reports the signal */
    if (mvead_interrupted() == SIGINT) return MVEAD_EXIT_SIGINT;
    if (mvead_interrupted() == SIGTERM) return MVEAD_EXIT_SIGTERM;
    return MVEAD_EXIT_FAILURE;
}

void mvead_cli_apply_runtime(const mvead_config *c) {
    if (c->threads > 0) mvt_set_num_threads(c->threads);
    /* under mpirun only rank 0 logs and draws progress; errors come from every rank */
    mvead_progress_set_quiet(c->quiet || mvead_mpi_world_rank() > 0);
}
