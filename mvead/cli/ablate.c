/* ablate: the paper's Table 3 from one base configuration. Every variant is a
 * normal run in <runs>/<name>/<variant>/ reading ONE shared feature cache
 * (<runs>/<name>/cache, extracted once); a variant whose metrics.json exists
 * is skipped, so an interrupted ablation continues where it stopped. Writes
 * <runs>/<name>/ablation.md and ablation.csv (means over categories) and
 * prints the table. Called by mvead/cli/main.c. */
#include "mvead/cli/commands.h"
#include "mvead/cli/exit_codes.h"
#include "mvead/cli/options.h"
#include "mvead/run/run_config.h"
#include "mvead/run/mpi.h"
#include "mvead/run/paths.h"
#include "mvead/run/progress.h"
#include "mvead/run/report_html.h"
#include "mvead/run/stages.h"
#include "mvead/scoring/metrics.h"
#include "tensor/error.h"
#include "tensor/tensor.h"
#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


/* The grid. Rows up to "eam-mcp+reg" use a single (pooled) bank, as in the
 * paper's table where the multi-view bank is the last addition. The `copy`
 * rows keep the initial module (init copy, no training). */
typedef struct {
    const char *variant, *fusion, *objective, *bank_mode, *paper_row;   /* paper_row: its line in the paper's table */
    bool force_copy;
} ablation_row;

static const ablation_row GRID[] = {
    {"none", "none", "none", "pooled", "no fusion", false},
    {"mvas-copy", "mvas", "none", "pooled", "MVAS, copy", true},
    {"mvas-deepsvdd", "mvas", "deepsvdd", "pooled", "MVAS, DeepSVDD", false},
    {"mvas-mcp", "mvas", "mcp", "pooled", "MVAS, MCP", false},
    {"mvas-mcp+reg", "mvas", "mcp+reg", "pooled", "MVAS, MCP+Reg", false},
    {"eam-copy", "eam", "none", "pooled", "EAM, copy", true},
    {"eam-deepsvdd", "eam", "deepsvdd", "pooled", "EAM, DeepSVDD", false},
    {"eam-mcp", "eam", "mcp", "pooled", "EAM, MCP", false},
    {"eam-mcp+reg", "eam", "mcp+reg", "pooled", "EAM, MCP+Reg", false},
    {"eam-mcp+reg-mvbank", "eam", "mcp+reg", "per-view", "EAM, MCP+Reg + multi-view bank", false},
};
#define N_GRID ((int)(sizeof GRID / sizeof GRID[0]))

/* The table's columns: every metric, in the paper's order. */
#define N_COLS MVS_KEY_COUNT
static const char *column_key(int c) { return mvs_metric_keys[mvs_metric_key_at_column(c)].key; }

static int run_variant(const mvead_config *base, const char *root, const char *cache, const ablation_row *g) {
    mvead_config c = *base;
    if (strlen(root) >= sizeof c.runs || strlen(cache) >= sizeof c.cache)
        return mv_error("ablate: run folder %s is too long a path", root);
    snprintf(c.runs, sizeof c.runs, "%.511s", root);
    snprintf(c.name, sizeof c.name, "%s", g->variant);
    snprintf(c.cache, sizeof c.cache, "%.511s", cache);
    snprintf(c.fusion, sizeof c.fusion, "%s", g->fusion);
    snprintf(c.objective, sizeof c.objective, "%s", g->objective);
    snprintf(c.bank_mode, sizeof c.bank_mode, "%s", g->bank_mode);
    if (g->force_copy) snprintf(c.init, sizeof c.init, "copy");
    char dir[1024];
    mvead_paths p;
    if (mvead_run_dir(&c, dir, sizeof dir, true) || mvead_paths_of_dir(dir, &p)) return -1;
    if (access(p.metrics, F_OK) == 0) {
        printf("ablate: skip %s (%s exists)\n", g->variant, p.metrics);
        fflush(stdout);
        return 0;
    }
    mvead_log("ablate: %s (fusion %s, objective %s, bank %s)", g->variant, c.fusion, c.objective, c.bank_mode);
    /* a variant that died mid-training resumes from its checkpoint; its
     * config.json is written once its stages succeeded (the report shows it) */
    if (mvead_stage_train(&c, true) || mvead_stage_bank(&c) || mvead_stage_eval(&c) ||
        mvead_config_write_json(&c, p.config) || mvead_stage_report(&c))
        return mv_error_prefix("ablate: variant %s", g->variant);
    return 0;
}

static double mean_metric(json_object *root, const char *key) {
    json_object *mean, *v;
    if (!json_object_object_get_ex(root, "mean_over_categories", &mean) || !mean) return NAN;
    if (!json_object_object_get_ex(mean, key, &v) || !v) return NAN;
    return json_object_get_double(v);
}

/* The paper's Table 3 columns of a variant: fusion, pre-training, multi-view bank. */
static const char *fusion_title(const ablation_row *g) {
    return !strcmp(g->fusion, "eam") ? "EAM" : !strcmp(g->fusion, "mvas") ? "MVAS" : "none";
}
static const char *pretrain_title(const ablation_row *g) {
    if (!strcmp(g->fusion, "none")) return "\xe2\x80\x93";   /* nothing to pre-train */
    if (g->force_copy) return "copy (no training)";
    return !strcmp(g->objective, "deepsvdd") ? "DeepSVDD" : !strcmp(g->objective, "mcp") ? "MCP" : "MCP+Reg";
}
static const char *mvbank_title(const ablation_row *g) { return !strcmp(g->bank_mode, "per-view") ? "\xe2\x9c\x93" : ""; }

/* ablation.html: Table 3's layout, each variant linking to its run's report. */
static int write_html(const mvead_paths *p, double vals[][N_COLS]) {
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s.tmp", p->ablation_html);
    FILE *f = fopen(tmp, "w");
    if (!f) return mv_error("%s: cannot write: %s", tmp, strerror(errno));
    fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>mvead ablation</title>\n"
               "<style>%s</style></head><body>\n<h1>Ablation (the paper's Table 3 layout)</h1>\n"
               "<p class=\"muted\">%%, mean over categories; each variant links to its run's report.</p>\n"
               "<table id=\"ablation\"><tr><th class=\"k\">Fusion</th><th class=\"k\">Pre-training</th>"
               "<th class=\"k\">Multi-view bank</th><th class=\"k\">run</th>", mvead_html_css);
    for (int k = 0; k < N_COLS; k++) fprintf(f, "<th>%s</th>", mvs_metric_keys[mvs_metric_key_at_column(k)].title);
    fputs("</tr>\n", f);
    for (int i = 0; i < N_GRID; i++) {
        char b[16];
        fprintf(f, "<tr><td class=\"k\">%s</td><td class=\"k\">%s</td><td class=\"k\">%s</td>"
                   "<td class=\"k\"><a href=\"%s/report.html\" title=\"%s\">%s</a></td>",
                fusion_title(&GRID[i]), pretrain_title(&GRID[i]), mvbank_title(&GRID[i]), GRID[i].variant, GRID[i].paper_row,
                GRID[i].variant);
        for (int k = 0; k < N_COLS; k++) fprintf(f, "<td>%s</td>", mvead_html_pct(vals[i][k], b));
        fputs("</tr>\n", f);
    }
    fputs("</table>\n</body></html>\n", f);
    return mvead_html_commit(f, tmp, p->ablation_html);
}

static int write_tables(const char *root, double vals[][N_COLS]) {
    char tmp[1200];
    mvead_paths p;
    if (mvead_paths_of_dir(root, &p)) return -1;
    const char *md = p.ablation_md, *csv = p.ablation_csv;
    snprintf(tmp, sizeof tmp, "%s.tmp", csv);
    FILE *f = fopen(tmp, "w");
    if (!f) return mv_error("%s: cannot write: %s", tmp, strerror(errno));
    fprintf(f, "variant,fusion,objective,bank_mode");
    for (int k = 0; k < N_COLS; k++) fprintf(f, ",%s", column_key(k));
    fputc('\n', f);
    for (int i = 0; i < N_GRID; i++) {
        fprintf(f, "%s,%s,%s,%s", GRID[i].variant, GRID[i].fusion, GRID[i].objective, GRID[i].bank_mode);
        for (int k = 0; k < N_COLS; k++) isfinite(vals[i][k]) ? fprintf(f, ",%.6f", vals[i][k]) : fprintf(f, ",");
        fputc('\n', f);
    }
    if (fclose(f) || rename(tmp, csv)) return mv_error("%s: cannot write", csv);
    snprintf(tmp, sizeof tmp, "%s.tmp", md);
    if (!(f = fopen(tmp, "w"))) return mv_error("%s: cannot write: %s", tmp, strerror(errno));
    fprintf(f, "# Ablation (the paper's Table 3 layout; %%, mean over categories)\n\n"
               "| Fusion | Pre-training | Multi-view bank | run |");
    for (int k = 0; k < N_COLS; k++) fprintf(f, " %s |", mvs_metric_keys[mvs_metric_key_at_column(k)].title);
    fprintf(f, "\n|---|---|---|---|");
    for (int k = 0; k < N_COLS; k++) fprintf(f, "---:|");
    fputc('\n', f);
    for (int i = 0; i < N_GRID; i++) {
        fprintf(f, "| %s | %s | %s | [%s](%s/report.md) |", fusion_title(&GRID[i]), pretrain_title(&GRID[i]),
                mvbank_title(&GRID[i]), GRID[i].variant, GRID[i].variant);
        for (int k = 0; k < N_COLS; k++) isfinite(vals[i][k]) ? fprintf(f, " %.1f |", 100 * vals[i][k]) : fprintf(f, " - |");
        fputc('\n', f);
    }
    fprintf(f, "\nEach variant's run is in `%s/<variant>/`; all share the feature cache `%s/cache`.\n", root, root);
    if (fclose(f) || rename(tmp, md)) return mv_error("%s: cannot write", md);
    /* the same table on stdout */
    printf("%-20s", "variant");
    for (int k = 0; k < N_COLS; k++) printf(" %12.12s", mvs_metric_keys[mvs_metric_key_at_column(k)].key);
    printf("\n");
    for (int i = 0; i < N_GRID; i++) {
        printf("%-20s", GRID[i].variant);
        for (int k = 0; k < N_COLS; k++) isfinite(vals[i][k]) ? printf(" %12.1f", 100 * vals[i][k]) : printf(" %12s", "-");
        printf("\n");
    }
    if (write_html(&p, vals)) return -1;
    printf("ablate: %s, %s, %s\n", p.ablation_html, md, csv);
    return 0;
}

int mvead_cmd_ablate(int argc, char **argv) {
    mvead_config c;
    mvead_config_defaults(&c);
    char *pos[1];
    int np;
    int r = mvead_config_parse(&c, "ablate",
                               "The paper's ablation grid (Table 3) from one base configuration: fusion none; MVAS and EAM\n"
                               "each with copy (no training), DeepSVDD, MCP, MCP+Reg (single bank); EAM MCP+Reg with the\n"
                               "multi-view bank. Runs go to <runs>/<name>/<variant>/ and share one feature cache\n"
                               "(<runs>/<name>/cache); finished variants (metrics.json present) are skipped. Writes\n"
                               "<runs>/<name>/ablation.md and ablation.csv. Every option of `run` applies to the base.",
                               NULL, argc, argv, pos, 0, &np);
    if (r == 1) return 0;
    if (r < 0) {
        fprintf(stderr, "%s\n", mv_error_last());
        return MVEAD_EXIT_USAGE;
    }
    if (c.threads > 0) mvt_set_num_threads(c.threads);
    mvead_progress_set_quiet(c.quiet || mvead_mpi_world_rank() > 0);   /* under mpirun rank 0 logs */
    char root[1024], cache[1100];
    mvead_paths rp;
    if (mvead_run_dir(&c, root, sizeof root, true) || mvead_paths_of_dir(root, &rp)) goto fail;
    snprintf(cache, sizeof cache, "%s/cache", root);
    if (mvead_mpi_rank() == 0 && mvead_config_write_json(&c, rp.config)) goto fail;
    /* extract once, into the shared cache (skipped when it exists and matches) */
    mvead_config ex = c;
    if (strlen(cache) >= sizeof ex.cache) { mv_error("ablate: cache path %s is too long", cache); goto fail; }
    snprintf(ex.cache, sizeof ex.cache, "%.511s", cache);
    if (mvead_stage_extract(&ex)) goto fail;   /* under MPI: all ranks, samples sharded */
    /* Variants are handed out dynamically (a shared counter, mvead/run/mpi.h): a
     * free rank takes the next one and runs it alone (local mode), so long and
     * short variants balance. One process: 0, 1, 2, ... in order. */
    typedef struct { int64_t row; double vals[N_COLS]; } result;
    result mine[N_GRID];
    int n_mine = 0;
    mvead_mpi_counter_create();
    for (;;) {
        int64_t i = mvead_mpi_counter_next();
        if (i >= N_GRID) break;
        bool prev = mvead_mpi_set_local(true);
        int e = run_variant(&c, root, cache, &GRID[i]);
        mvead_mpi_set_local(prev);
        if (e) goto fail;
        char vdir[1200];
        mvead_paths vp;
        snprintf(vdir, sizeof vdir, "%s/%s", root, GRID[i].variant);
        if (mvead_paths_of_dir(vdir, &vp)) goto fail;
        json_object *m = json_object_from_file(vp.metrics);
        if (!m) { mv_error("%s: cannot read", vp.metrics); goto fail; }
        mine[n_mine].row = i;
        for (int k = 0; k < N_COLS; k++) mine[n_mine].vals[k] = mean_metric(m, column_key(k));
        n_mine++;
        json_object_put(m);
    }
    mvead_mpi_counter_free();
    /* rank 0 collects every rank's rows into the one table */
    void *all = NULL;
    int P = mvead_mpi_size();
    size_t *counts = calloc((size_t)P, sizeof(size_t));
    if (!counts || mvead_mpi_gather_bytes(mine, sizeof(result) * (size_t)n_mine, &all, counts, 0)) { free(counts); goto fail; }
    if (mvead_mpi_rank() > 0) { free(counts); return 0; }
    double vals[N_GRID][N_COLS];
    for (int i = 0; i < N_GRID; i++)
        for (int k = 0; k < N_COLS; k++) vals[i][k] = NAN;
    size_t total = 0;
    for (int q = 0; q < P; q++) total += counts[q];
    free(counts);
    for (size_t a = 0; a < total / sizeof(result); a++) {
        result r;
        memcpy(&r, (const char *)all + a * sizeof(result), sizeof r);
        if (r.row >= 0 && r.row < N_GRID) memcpy(vals[r.row], r.vals, sizeof r.vals);
    }
    free(all);
    if (write_tables(root, vals)) goto fail;
    return 0;
fail:
    fprintf(stderr, "mvead ablate: error: %s\n", mv_error_last());
    return 1;
}
