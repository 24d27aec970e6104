/* attention_cmd: `mvead attention` draws where the EAM looks: for one query
 * patch of one view of a test (or train) sample, the attention weights over
 * the patches of every support view (mean over heads), as a colour overlay
 * on the views side by side; the query patch is outlined in its own view. */
#include "data/cache.h"
#include "data/image.h"
#include "data/transform.h"
#include "mvead/cli/commands.h"
#include "mvead/cli/options.h"
#include "mvead/method/eam.h"
#include "mvead/run/checkpoint.h"
#include "mvead/run/run_config.h"
#include "mvead/run/fuse.h"
#include "mvead/run/paths.h"
#include "mvead/run/progress.h"
#include "tensor/error.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void heat(double t, uint8_t *rgb) {
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    /* black -> red -> yellow -> white: weights read as "heat" */
    rgb[0] = (uint8_t)(255 * fmin(1, 3 * t));
    rgb[1] = (uint8_t)(255 * fmin(1, fmax(0, 3 * t - 1)));
    rgb[2] = (uint8_t)(255 * fmin(1, fmax(0, 3 * t - 2)));
}

static int draw(const char *out, mvd_cache *cache, int64_t s, int qview, int qpatch, const float *w /*[V*N]*/) {
    const mvd_cache_info *in = &cache->info;
    int V = (int)in->V, H = in->H, W = in->W, P = in->P, gw = in->grid_w, N = (int)in->N;
    mvd_image canvas = {0};
    if (mvd_image_alloc(&canvas, V * W + (V - 1) * 4, H, 3)) return -1;
    memset(canvas.data, 255, (size_t)canvas.width * H * 3);
    double wmax = 0;
    for (int k = 0; k < V * N; k++) if (w[k] > wmax) wmax = w[k];
    for (int v = 0; v < V; v++) {
        mvd_image src = {0}, img = {0};
        if (mvd_image_read_as(cache->image_path[s * V + v], 3, &src) ||
            mvd_image_resize(&src, W, H, MVD_RESIZE_BILINEAR, MVD_AA_SHRINK, &img)) {
            mvd_image_free(&src);
            mvd_image_free(&canvas);
            return -1;
        }
        mvd_image_free(&src);
        int x0 = v * (W + 4);
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                int j = (y / P) * gw + x / P;
                const uint8_t *p = img.data + ((size_t)y * W + x) * 3;
                uint8_t *d = canvas.data + ((size_t)y * canvas.width + x0 + x) * 3, c[3];
                if (v == qview) {
                    /* the query view dimmed, its query patch outlined */
                    for (int k = 0; k < 3; k++) d[k] = (uint8_t)(p[k] * 0.6);
                    if (j == qpatch && (x % P == 0 || y % P == 0 || x % P == P - 1 || y % P == P - 1)) {
                        d[0] = 0; d[1] = 255; d[2] = 255;
                    }
                } else {
                    double t = wmax > 0 ? w[v * N + j] / wmax : 0;
                    heat(t, c);
                    double a = 0.25 + 0.6 * sqrt(t);
                    for (int k = 0; k < 3; k++) d[k] = (uint8_t)((1 - a) * p[k] * 0.5 + a * c[k]);
                }
            }
        mvd_image_free(&img);
    }
    int rc = mvd_image_write_png(out, &canvas);
    mvd_image_free(&canvas);
    return rc;
}

int mvead_cmd_attention(int argc, char **argv) {
    static const char *const accepted[] = {"name", "runs", "data", "cache", "calib", "delta", "fusion", "mvas_window",
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
    int V = (int)in->V, N = (int)in->N, D = (int)in->D;
    if (patch < 0) patch = (in->grid_h / 2) * in->grid_w + in->grid_w / 2;
    if (sample < 0 || sample >= in->S || view < 1 || view > V || patch < 0 || patch >= N) {
        /* the bounds before the cache (and `in` with it) is freed */
        long long S = (long long)in->S;
        mvd_cache_close(cache);
        fprintf(stderr, "mvead attention: --sample must be in [0, %lld), --view in [1, %d], --patch in [0, %d)\n", S, V, N);
        return 2;
    }
    mvead_state st;
    if (mvead_checkpoint_load(p.checkpoint, &st, NULL)) { mvd_cache_close(cache); goto fail; }
    int rc = 1;
    mvead_fusion_opts fo;
    mvt_tensor *mask = NULL, *att = NULL, *Z = NULL;
    float *z = malloc(sizeof(float) * (size_t)V * N * D), *w = calloc((size_t)V * N, sizeof(float));
    if (!st.has_eam) { mv_error("run %s has no EAM (fusion none): nothing attends", p.run); goto done; }
    if (mvead_pipeline_fusion(&c, &p, in, &fo, &mask) || mvd_cache_read(cache, sample, z)) goto done;
    int64_t shp[3] = {V, N, D};
    Z = mvt_from_data(MVT_F32, 3, shp, z);
    if (mvead_fusion_per_call(fo.mode)) {
        mvt_release(mask);
        mask = mvead_fusion_call_mask(&fo, Z, MVT_F32);
        if (!mask) goto done;
    }
    att = mvead_eam_attention(&st.eam, Z, mask, view - 1, patch);
    if (!att) goto done;
    mvt_tensor *ac = mvt_to_dtype(att, MVT_F64);
    int heads = (int)ac->shape[0];
    for (int h = 0; h < heads; h++)
        for (int k = 0; k < V * N; k++) w[k] += (float)(mvt_f64(ac)[(size_t)h * V * N + k] / heads);
    mvt_release(ac);
    char def[1400];
    if (!out) {
        snprintf(def, sizeof def, "%s/attention_s%lld_C%d_p%d.png", p.run, (long long)sample, view, patch);
        out = def;
    }
    if (draw(out, cache, sample, view - 1, patch, w)) goto done;
    double kept = 0;
    for (int k = 0; k < V * N; k++) kept += w[k] > 0;
    printf("attention: sample %s/%s view C%d patch %d (%s fusion): %.0f support patches with weight > 0 -> %s\n",
           cache->category[sample], cache->sample_id[sample], view, patch, c.fusion, kept, out);
    rc = 0;
done:
    if (rc) fprintf(stderr, "mvead attention: error: %s\n", mv_error_last());
    mvt_release(att);
    mvt_release(Z);
    mvt_release(mask);
    free(z);
    free(w);
    mvead_state_free(&st);
    mvd_cache_close(cache);
    return rc;
fail:
    fprintf(stderr, "mvead attention: error: %s\n", mv_error_last());
    return 1;
}
