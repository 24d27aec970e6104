/* attention: see attention.h. */
#include "mvead/run/attention.h"
#include "data/image.h"
#include "data/transform.h"
#include "mvead/method/eam.h"
#include "mvead/run/checkpoint.h"
#include "mvead/run/fuse.h"
#include "tensor/error.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void heat(double t, uint8_t *rgb) {
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    /* black -> red -> yellow -> white: weights read as "heat" */
    rgb[0] = (uint8_t)(255 * fmin(1, 3 * t));
    rgb[1] = (uint8_t)(255 * fmin(1, fmax(0, 3 * t - 1)));
    rgb[2] = (uint8_t)(255 * fmin(1, fmax(0, 3 * t - 2)));
}

/* The query view dimmed with its query patch outlined; every support view
 * with the weights as heat and its epipolar band (the keys the mask keeps
 * for this query: band[V*N]) outlined in white. */
static int draw(const char *out, mvd_cache *cache, int64_t s, int qview, int qpatch, const float *w /*[V*N]*/,
                const uint8_t *band /*[V*N]*/) {
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
                    /* the band's outline: edges between kept and dropped patches */
                    if (band[v * N + j]) {
                        int px = x % P, py = y % P, gx = x / P, gy = y / P, gh = N / gw;
                        bool edge = (px == 0 && (gx == 0 || !band[v * N + j - 1])) ||
                                    (px == P - 1 && (gx == gw - 1 || !band[v * N + j + 1])) ||
                                    (py == 0 && (gy == 0 || !band[v * N + j - gw])) ||
                                    (py == P - 1 && (gy == gh - 1 || !band[v * N + j + gw]));
                        if (edge) d[0] = d[1] = d[2] = 255;
                    }
                }
            }
        mvd_image_free(&img);
    }
    int rc = mvd_image_write_png(out, &canvas);
    mvd_image_free(&canvas);
    return rc;
}

int mvead_attention_picture(const mvead_config *c, const mvead_paths *p, mvd_cache *cache, int64_t sample, int view0,
                            int patch, const char *out, double *kept) {
    const mvd_cache_info *in = &cache->info;
    int V = (int)in->V, N = (int)in->N, D = (int)in->D;
    if (sample < 0 || sample >= in->S || view0 < 0 || view0 >= V || patch < 0 || patch >= N)
        return mv_error("attention: sample %lld view %d patch %d outside the cache (%lld samples, %d views, %d patches)",
                        (long long)sample, view0 + 1, patch, (long long)in->S, V, N);
    mvead_state st;
    if (mvead_checkpoint_load(p->checkpoint, &st, NULL)) return -1;
    int rc = -1;
    mvead_fusion_opts fo;
    mvt_tensor *mask = NULL, *att = NULL, *Z = NULL, *ac = NULL, *m8 = NULL;
    float *z = malloc(sizeof(float) * (size_t)V * N * D), *w = calloc((size_t)V * N, sizeof(float));
    uint8_t *band = calloc((size_t)V * N, 1);
    if (!z || !w || !band) { mv_error("attention: out of memory"); goto done; }
    if (!st.has_eam) { mv_error("run %s has no EAM (fusion none): nothing attends", p->run); goto done; }
    if (mvead_pipeline_fusion(c, p, in, &fo, &mask) || mvd_cache_read(cache, sample, z)) goto done;
    int64_t shp[3] = {V, N, D};
    Z = mvt_from_data(MVT_F32, 3, shp, z);
    if (mvead_fusion_per_call(fo.mode)) {
        mvt_release(mask);
        mask = mvead_fusion_call_mask(&fo, Z, MVT_F32);
        if (!mask) goto done;
    }
    att = mvead_eam_attention(&st.eam, Z, mask, view0, patch);
    if (!att) goto done;
    ac = mvt_to_dtype(att, MVT_F64);
    int heads = (int)ac->shape[0];
    for (int h = 0; h < heads; h++)
        for (int k = 0; k < V * N; k++) w[k] += (float)(mvt_f64(ac)[(size_t)h * V * N + k] / heads);
    m8 = mvt_to_dtype(mask, MVT_F64);   /* [VN, VN]: the query's row is its band */
    for (int k = 0; k < V * N; k++) band[k] = mvt_f64(m8)[((size_t)view0 * N + patch) * V * N + k] != 0;
    if (draw(out, cache, sample, view0, patch, w, band)) goto done;
    if (kept) {
        *kept = 0;
        for (int k = 0; k < V * N; k++) *kept += w[k] > 0;
    }
    rc = 0;
done:
    mvt_release(m8);
    mvt_release(ac);
    mvt_release(att);
    mvt_release(Z);
    mvt_release(mask);
    free(z);
    free(w);
    free(band);
    mvead_state_free(&st);
    return rc;
}
