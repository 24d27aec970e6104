/* calibrate_auto: fundamental matrices without a calibration target, from
 * the feature cache (`mvead calibrate --from-cache train.h5`). For every view
 * pair a < b and every training sample, the patches of a and b that are
 * mutual nearest neighbours by cosine similarity of their backbone features
 * give a correspondence between the two patch centres (in the cache's image
 * size); the correspondences of all samples are pooled and fitted by RANSAC
 * around the normalised 8-point algorithm. Patch centres are quantised to the
 * patch grid, so a RANSAC threshold of a fraction of the patch size (not the
 * 1 px default) is the sensible choice. Before matching, the mean feature of
 * each patch position (over every sample and view) is subtracted: ViT
 * features carry their position embedding, and without this the patches at
 * the same grid position of two views match each other, which fits a
 * degenerate F exactly. Called by mvead/cli/main.c. */
#include "data/cache.h"
#include "mvead/geometry/calibration.h"
#include "mvead/run/progress.h"
#include "tensor/error.h"
#include "tensor/tensor.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    double *pa, *pb;   /* [n, 2] each */
    int n, cap;
} corr_list;

static int corr_push(corr_list *l, double xa, double ya, double xb, double yb) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 1024;
        double *a = realloc(l->pa, sizeof(double) * 2 * (size_t)cap);
        if (!a) return -1;
        l->pa = a;
        double *b = realloc(l->pb, sizeof(double) * 2 * (size_t)cap);
        if (!b) return -1;
        l->pb = b;
        l->cap = cap;
    }
    l->pa[2 * l->n] = xa, l->pa[2 * l->n + 1] = ya;
    l->pb[2 * l->n] = xb, l->pb[2 * l->n + 1] = yb;
    l->n++;
    return 0;
}

/* Rows of x [n, d] scaled to unit length (zero rows stay zero). */
static void normalise_rows(float *x, int64_t n, int64_t d) {
    for (int64_t i = 0; i < n; i++) {
        double s = 0;
        for (int64_t k = 0; k < d; k++) s += (double)x[i * d + k] * x[i * d + k];
        float inv = s > 0 ? (float)(1.0 / sqrt(s)) : 0.f;
        for (int64_t k = 0; k < d; k++) x[i * d + k] *= inv;
    }
}

int mvead_calibrate_from_cache(const char *cache_path, const mvg_ransac_opts *o, mvg_calibration *out) {
    mvd_cache *c = mvd_cache_open(cache_path);
    if (!c) return -1;
    const mvd_cache_info *in = &c->info;
    int V = (int)in->V, N = (int)in->N, D = (int)in->D, P = in->P, gw = in->grid_w;
    int64_t S = in->S;
    int rc = -1, n_pairs = V * (V - 1) / 2;
    corr_list *lists = NULL;
    float *z = NULL;
    int *row_best = NULL, *col_best = NULL;
    double *pos_mean = NULL;
    if (V < 2 || V > MVG_MAX_VIEWS) { mv_error("%s: %d views, calibration needs 2..%d", cache_path, V, MVG_MAX_VIEWS); goto done; }
    if (S < 1) { mv_error("%s: no samples", cache_path); goto done; }
    lists = calloc((size_t)n_pairs, sizeof *lists);
    z = malloc(sizeof(float) * (size_t)V * N * D);
    row_best = malloc(sizeof(int) * (size_t)N);
    col_best = malloc(sizeof(int) * (size_t)N);
    if (!lists || !z || !row_best || !col_best) { mv_error("calibrate: out of memory"); goto done; }
    /* mean feature per patch position, accumulated in double */
    pos_mean = calloc((size_t)N * D, sizeof(double));
    if (!pos_mean) { mv_error("calibrate: out of memory"); goto done; }
    mvead_progress pr;
    mvead_progress_start(&pr, "calibrate: means", S);
    for (int64_t s = 0; s < S; s++) {
        if (mvd_cache_read(c, s, z)) goto done;
        for (int v = 0; v < V; v++)
            for (size_t k = 0; k < (size_t)N * D; k++) pos_mean[k] += z[(size_t)v * N * D + k];
        mvead_progress_update(&pr, s + 1, NULL);
    }
    mvead_progress_finish(&pr);
    for (size_t k = 0; k < (size_t)N * D; k++) pos_mean[k] /= (double)(S * V);
    mvead_progress_start(&pr, "calibrate: matches", S);
    for (int64_t s = 0; s < S; s++) {
        if (mvd_cache_read(c, s, z)) goto done;
        for (int v = 0; v < V; v++)
            for (size_t k = 0; k < (size_t)N * D; k++) z[(size_t)v * N * D + k] -= (float)pos_mean[k];
        normalise_rows(z, (int64_t)V * N, D);
        int64_t shp[3] = {V, N, D};
        mvt_tensor *feat = mvt_from_data(MVT_F32, 3, shp, z);
        int pi = 0;
        for (int a = 0; a < V; a++)
            for (int b = a + 1; b < V; b++, pi++) {
                mvt_tensor *fa = mvt_select(feat, 0, a), *fb = mvt_select(feat, 0, b);
                mvt_tensor *fbt = mvt_transpose(fb, 0, 1);
                mvt_tensor *sim = mvt_matmul(fa, fbt);   /* [N, N] cosine similarities */
                const float *m = mvt_f32(sim);
                for (int j = 0; j < N; j++) row_best[j] = 0;
                for (int k = 0; k < N; k++) col_best[k] = 0;
                for (int j = 0; j < N; j++)
                    for (int k = 0; k < N; k++) {
                        float v = m[(size_t)j * N + k];
                        if (v > m[(size_t)j * N + row_best[j]]) row_best[j] = k;
                        if (v > m[(size_t)col_best[k] * N + k]) col_best[k] = j;
                    }
                int err = 0;
                for (int j = 0; j < N && !err; j++) {
                    int k = row_best[j];
                    if (col_best[k] != j) continue;
                    double xa, ya, xb, yb;
                    mvg_patch_centre(j, gw, P, &xa, &ya);
                    mvg_patch_centre(k, gw, P, &xb, &yb);
                    err = corr_push(&lists[pi], xa, ya, xb, yb);
                }
                mvt_release(sim);
                mvt_release(fbt);
                mvt_release(fa);
                mvt_release(fb);
                if (err) { mvt_release(feat); mv_error("calibrate: out of memory for correspondences"); goto done; }
            }
        mvt_release(feat);
        mvead_progress_update(&pr, s + 1, NULL);
    }
    mvead_progress_finish(&pr);

    memset(out, 0, sizeof *out);
    out->V = V;
    out->width = in->W;
    out->height = in->H;
    out->has_cameras = false;
    snprintf(out->source, sizeof out->source, "features");
    int pi = 0;
    for (int a = 0; a < V; a++)
        for (int b = a + 1; b < V; b++, pi++) {
            corr_list *l = &lists[pi];
            uint8_t *inl = malloc((size_t)l->n + 1);
            double F[9];
            int n_in = 0;
            if (mvg_ransac(l->pa, l->pb, l->n, o, F, inl, &n_in)) {
                free(inl);
                mv_error_prefix("%s: camera pair C%d-C%d: RANSAC failed on %d feature matches (too few or degenerate; "
                                "more training samples or a larger --threshold may help)",
                                cache_path, a + 1, b + 1, l->n);
                goto done;
            }
            double ss = 0;
            for (int i = 0; i < l->n; i++)
                if (inl[i]) {
                    double e = mvg_sampson_error(F, l->pa + 2 * i, l->pb + 2 * i);
                    ss += e * e;
                }
            free(inl);
            for (int k = 0; k < 9; k++) {
                out->F[a][b][k] = F[k];
                out->F[b][a][k] = F[(k % 3) * 3 + k / 3];   /* F_ba = F_ab^T */
            }
            out->n_corr[a][b] = out->n_corr[b][a] = l->n;
            out->n_inliers[a][b] = out->n_inliers[b][a] = n_in;
            out->rms_px[a][b] = out->rms_px[b][a] = n_in ? sqrt(ss / n_in) : 0;
        }
    rc = 0;
done:
    if (lists)
        for (int i = 0; i < n_pairs; i++) {
            free(lists[i].pa);
            free(lists[i].pb);
        }
    free(lists);
    free(z);
    free(pos_mean);
    free(row_best);
    free(col_best);
    mvd_cache_close(c);
    return rc;
}
