/* attention_cmd: `mvead attention` draws where the EAM looks for one query
 * patch (mvead/run/attention.h): its options and the file name. */
#include "data/cache.h"
#include "mvead/cli/commands.h"
#include "mvead/cli/options.h"
#include "mvead/run/run_config.h"
#include "mvead/run/attention.h"
#include "mvead/run/paths.h"
#include "mvead/run/progress.h"
#include "tensor/error.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int mvead_cmd_attention(int argc, char **argv) {
    static const char *const accepted[] = {"name", "runs", "data", "cache", "calib", "delta", "fusion", "attention", "mvas_window",
                                           "mvas_topk", "threads", "quiet", NULL};
    /* command-specific values come before the shared options */
    int64_t sample = 0;
    int view = 1, patch = -1;
    const char *out = NULL, *split = "test";
    char *rest[128];
    int nr = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (!strcmp(a, "--sample") && has) sample = atoll(argv[++i]);
        else if (!strcmp(a, "--view") && has) view = atoi(argv[++i]);
        else if (!strcmp(a, "--patch") && has) patch = atoi(argv[++i]);
        else if (!strcmp(a, "--out") && has) out = argv[++i];
        else if (!strcmp(a, "--split") && has) split = argv[++i];
        else if (nr < 127) rest[nr++] = argv[i];
    }
    mvead_config c;
    char *pos[1];
    int np;
    /* the run's own options (fusion, calibration, cache) unless given again */
    int r = mvead_config_parse_run(&c, "attention",
                                   "Draws the EAM attention of one query patch over the support views (mean over heads).\n"
                                   "  --sample I   sample index in the split's cache [0]\n"
                                   "  --split S    test | train [test]\n"
                                   "  --view V     query view, 1-based [1]\n"
                                   "  --patch J    query patch index (row-major; default: the centre patch)\n"
                                   "  --out FILE   PNG to write [<run>/attention_s<I>_C<V>_p<J>.png]",
                                   accepted, nr, rest, pos, 0, &np, true);
    if (r == 1) return 0;
    if (r == -2) goto fail;
    if (r < 0) { fprintf(stderr, "%s\n", mv_error_last()); return 2; }
    if (strcmp(split, "test") && strcmp(split, "train")) { fprintf(stderr, "mvead attention: --split must be test or train\n"); return 2; }
    mvead_progress_set_quiet(c.quiet);
    mvead_paths p;
    if (mvead_paths_init(&c, &p, false)) goto fail;
    mvd_cache *cache = mvd_cache_open(!strcmp(split, "test") ? p.test_cache : p.train_cache);
    if (!cache) goto fail;
    const mvd_cache_info *in = &cache->info;
    int V = (int)in->V, N = (int)in->N;
    if (patch < 0) patch = (in->grid_h / 2) * in->grid_w + in->grid_w / 2;
    if (sample < 0 || sample >= in->S || view < 1 || view > V || patch < 0 || patch >= N) {
        /* the bounds before the cache (and `in` with it) is freed */
        long long S = (long long)in->S;
        mvd_cache_close(cache);
        fprintf(stderr, "mvead attention: --sample must be in [0, %lld), --view in [1, %d], --patch in [0, %d)\n", S, V, N);
        return 2;
    }
    char def[1400];
    if (!out) {
        snprintf(def, sizeof def, "%s/attention_s%lld_C%d_p%d.png", p.run, (long long)sample, view, patch);
        out = def;
    }
    double kept = 0;
    int rc = mvead_attention_picture(&c, &p, cache, sample, view - 1, patch, out, &kept) ? 1 : 0;
    if (rc) fprintf(stderr, "mvead attention: error: %s\n", mv_error_last());
    else
        printf("attention: sample %s/%s view C%d patch %d (%s fusion): %.0f support patches with weight > 0 -> %s\n",
               cache->category[sample], cache->sample_id[sample], view, patch, c.fusion, kept, out);
    mvd_cache_close(cache);
    return rc;
fail:
    fprintf(stderr, "mvead attention: error: %s\n", mv_error_last());
    return 1;
}
