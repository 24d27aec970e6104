/* extract_stage: the feature cache the frozen backbone fills (the extract stage). */
#include "data/cache.h"
#include "data/image.h"
#include "data/loader.h"
#include "data/realiad.h"
#include "mvead/run/backbone.h"
#include "mvead/run/run_config.h"
#include "mvead/run/mpi.h"
#include "mvead/run/interrupt.h"
#include <signal.h>
#include "mvead/run/paths.h"
#include "mvead/run/progress.h"
#include "mvead/run/stages.h"
#include "nn/config.h"
#include "nn/vit.h"
#include "nn/weights.h"
#include "tensor/error.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>


/* 1: a complete cache made with these options exists (skip), 0: extract, -1: error. */
static int existing_cache(const mvead_config *c, const char *hash, const char *path) {
    if (access(path, F_OK) != 0) return 0;
    mvd_cache *old = mvd_cache_open(path);
    if (old) {
        bool same = !strcmp(old->info.backbone_hash, hash) && old->info.layer == c->layer &&
                    old->info.H == c->image_size && old->info.half == !strcmp(c->cache_dtype, "float16");
        /* the options match; the bytes must too before the cache is reused */
        int bad = same ? mvd_cache_verify(old) : 0;
        mvd_cache_close(old);
        if (bad) return mv_error_prefix("%s exists but its data is corrupt; delete it to re-extract", path);
        if (same) { mvead_log("extract: %s exists and matches (checksums verified); skipping (delete it to re-extract)", path); return 1; }
        return mv_error("%s exists but was made with another backbone/layer/size; delete it or choose another --cache", path);
    }
    return mv_error_prefix("%s exists but is unreadable; delete it to re-extract", path);
}

/* Under MPI the samples not yet in the cache are dealt round-robin: in each
 * round of P (ranks) samples rank r computes sample base + r, and rank 0 (the only
 * writer) writes its own and then receives and writes the others' in rank
 * order, so the file is written in sample order exactly as by one process
 * (the features of a sample do not depend on who computes them). Resume
 * starts from rank 0's n_done, broadcast to all. */
#define TAG_FEAT 11
#define TAG_MASK 12
static int extract_split(const mvead_config *c, mvn_vit *m, const char *hash, const char *split, const char *path) {
    int R = mvead_mpi_rank(), ranks = mvead_mpi_size();
    /* rank 0 decides from the file system; the others follow */
    int64_t state = R == 0 ? existing_cache(c, hash, path) : 0;
    mvead_mpi_bcast(&state, sizeof state, 0);
    if (state == 1) return 0;
    if (state < 0) return R == 0 ? -1 : mv_error("extract %s: rank 0 failed (see its message)", split);
    mvd_dataset ds;
    if (mvd_realiad_open(c->data, c->categories, split, &ds)) return mv_error_prefix("extract %s", split);
    int rc = -1;
    int V = ds.n_views, P = m->cfg.patch_size, H = c->image_size, W = c->image_size;
    int gh = H / P, gw = W / P, N = gh * gw, D = m->cfg.hidden_size;
    int64_t S = ds.n_samples;
    bool test = !strcmp(split, "test");
    const char **cat = calloc((size_t)S + 1, sizeof(char *)), **sid = calloc((size_t)S + 1, sizeof(char *));
    const char **acls = calloc((size_t)S + 1, sizeof(char *));
    const char **ip = calloc((size_t)(S * V) + 1, sizeof(char *)), **mp = calloc((size_t)(S * V) + 1, sizeof(char *));
    int64_t *vl = calloc((size_t)(S * V) + 1, sizeof(int64_t)), *sl = calloc((size_t)S + 1, sizeof(int64_t));
    float *feat = malloc(sizeof(float) * (size_t)V * N * D);
    uint8_t *mask_buf = NULL;
    mvd_cache_writer *w = NULL;
    mvd_loader *ld = NULL;
    for (int64_t i = 0; i < S; i++) {
        const mvd_sample *s = &ds.samples[i];
        cat[i] = s->category;
        sid[i] = s->sample_id;
        acls[i] = s->anomaly_class;
        sl[i] = s->label > 0;
        for (int v = 0; v < V; v++) {
            ip[i * V + v] = s->views[v].image_path;
            mp[i * V + v] = s->views[v].mask_path ? s->views[v].mask_path : "";
            vl[i * V + v] = s->views[v].label > 0;
        }
    }
    mvd_cache_info info = {.S = S, .V = V, .N = N, .D = D, .H = H, .W = W, .P = P, .grid_h = gh, .grid_w = gw,
                           .layer = c->layer, .half = !strcmp(c->cache_dtype, "float16"), .has_masks = test};
    snprintf(info.backbone, sizeof info.backbone, "%.255s", c->backbone);
    snprintf(info.backbone_hash, sizeof info.backbone_hash, "%s", hash);
    snprintf(info.split, sizeof info.split, "%s", split);
    mvd_cache_meta meta = {cat, sid, acls, ip, mp, vl, sl};
    int64_t done = 0;
    if (R == 0) {
        w = mvd_cache_begin(path, &info, &meta, &done);
        if (!w) done = -1;
    }
    mvead_mpi_bcast(&done, sizeof done, 0);
    if (done < 0) {
        if (R > 0) mv_error("extract %s: rank 0 could not open the cache (see its message)", split);
        goto out;
    }
    if (done) mvead_log("extract: resuming %s at sample %lld/%lld", path, (long long)done, (long long)S);
    mvd_loader_opts lo;
    mvd_loader_opts_default(&lo);
    lo.pre.height = H;
    lo.pre.width = W;
    lo.load_masks = test;
    /* this rank's samples: done + R, done + R + P, ... */
    int *order = malloc(sizeof(int) * (size_t)(S - done + 1));
    int n_mine = 0;
    for (int64_t i = done + R; i < S; i += ranks) order[n_mine++] = (int)i;
    if (n_mine) ld = mvd_loader_open(&ds, order, n_mine, &lo);
    free(order);
    if (n_mine && !ld) goto out;
    size_t mask_n = test ? (size_t)V * H * W : 0;
    mask_buf = malloc(mask_n + 1);
    mvead_progress pr;
    char label[64];
    snprintf(label, sizeof label, "extract %s", split);
    mvead_progress_start(&pr, label, S);
    mvead_progress_resume(&pr, done);
    size_t feat_n = (size_t)V * N * D;
    for (int64_t base = done; base < S; base += ranks) {
        int64_t i = base + R;
        const uint8_t *my_masks = NULL;
        if (i < S) {
            const mvd_loader_item *it;
            int r = mvd_loader_next(ld, &it);
            if (r <= 0) { if (r == 0) mv_error("extract: loader ended early at sample %lld", (long long)i); goto out; }
            int64_t shp[4] = {V, 3, H, W};
            mvt_tensor *px = mvt_from_data(MVT_F32, 4, shp, it->views);
            /* one forward per view group: V images are one batch */
            mvt_tensor *f = mvn_vit_features(m, px, c->layer, c->final_norm);
            mvt_release(px);
            if (!f) goto out;
            mvt_tensor *fc = mvt_contiguous(f);
            memcpy(feat, mvt_f32(fc), sizeof(float) * feat_n);
            mvt_release(fc);
            mvt_release(f);
            my_masks = test ? it->masks : NULL;
        }
        if (R > 0) {
            if (i < S && (mvead_mpi_send(feat, sizeof(float) * feat_n, 0, TAG_FEAT) ||
                          (test && mvead_mpi_send(my_masks, mask_n, 0, TAG_MASK)))) goto out;
            continue;
        }
        for (int q = 0; q < ranks && base + q < S; q++) {
            int64_t j = base + q;
            if (q > 0) {   /* rank q's sample; rank 0's own is already in feat */
                if (mvead_mpi_recv(feat, sizeof(float) * feat_n, q, TAG_FEAT) ||
                    (test && mvead_mpi_recv(mask_buf, mask_n, q, TAG_MASK))) goto out;
                my_masks = test ? mask_buf : NULL;
            }
            if (mvd_cache_write(w, j, feat, my_masks)) goto out;
            mvead_progress_update(&pr, j + 1, NULL);
            const char *die = getenv("MVEAD_TEST_DIE_AFTER_SAMPLE");
            if (die && atoll(die) == j + 1) _exit(137);   /* fault injection for the resume tests */
            const char *term = getenv("MVEAD_TEST_SIGTERM_AFTER_SAMPLE");
            if (term && atoll(term) == j + 1) raise(SIGTERM);   /* for the interrupt tests */
            if (j + 1 < S && mvead_interrupt_check("after %s sample %lld of %lld (kept in %s.partial); rerun extract to resume",
                                                   split, (long long)j + 1, (long long)S, path)) goto out;
        }
    }
    mvead_progress_finish(&pr);
    if (ld) mvd_loader_close(ld);
    ld = NULL;
    rc = R == 0 ? mvd_cache_finish(w) : 0;
    w = NULL;
    /* the next stage may read the cache on any rank: wait for rank 0's rename */
    {
        int64_t rc0 = rc;
        mvead_mpi_bcast(&rc0, sizeof rc0, 0);
        if (rc0 && !rc) rc = mv_error("extract %s: rank 0 could not finish the cache (see its message)", split);
    }
    if (!rc) mvead_log("extract: %s: %lld samples x %d views x %d patches x %d dims -> %s (peak RSS %.0f MiB)", split,
                       (long long)S, V, N, D, path, mvead_peak_rss_mib());
out:
    if (ld) mvd_loader_close(ld);
    if (w) mvd_cache_close_writer(w);
    free(cat); free(sid); free(acls); free(ip); free(mp); free(vl); free(sl); free(feat); free(mask_buf);
    mvd_dataset_free(&ds);
    return rc;
}

/* Every image and mask the run will read, of both splits, exists and starts
 * like an image: a missing test mask is reported before hours of extracting
 * the train split, not after. Lists up to 5 problems and the count. */
static int validate_listing(const mvead_config *c) {
    static const char *const splits[2] = {"train", "test"};
    int bad = 0;
    char first[5][1200];
    for (int s = 0; s < 2; s++) {
        mvd_dataset ds;
        if (mvd_realiad_open(c->data, c->categories, splits[s], &ds)) return mv_error_prefix("extract %s", splits[s]);
        for (int i = 0; i < ds.n_samples; i++)
            for (int v = 0; v < ds.n_views; v++) {
                const char *paths[2] = {ds.samples[i].views[v].image_path, ds.samples[i].views[v].mask_path};
                for (int k = 0; k < 2; k++) {
                    if (!paths[k] || mvd_image_check_header(paths[k]) == 0) continue;
                    if (bad < 5) snprintf(first[bad], sizeof first[bad], "%s", mv_error_last());
                    bad++;
                }
            }
        mvd_dataset_free(&ds);
    }
    if (!bad) return 0;
    char msg[6200] = "";
    for (int i = 0; i < bad && i < 5; i++) {
        strncat(msg, "\n  ", sizeof msg - strlen(msg) - 1);
        strncat(msg, first[i], sizeof msg - strlen(msg) - 1);
    }
    return mv_error("extract: %d image or mask file%s of the dataset listing (%s) cannot be read; nothing was extracted:%s%s",
                    bad, bad == 1 ? "" : "s", c->data, msg, bad > 5 ? "\n  ..." : "");
}

int mvead_stage_extract(const mvead_config *c) {
    mvead_paths p;
    if (mvead_paths_init(c, &p, true)) return -1;
    bool todo = access(p.train_cache, F_OK) != 0 || access(p.test_cache, F_OK) != 0;
    if (mvead_mpi_rank() == 0 && todo && validate_listing(c)) return -1;
    char hash[64];
    mvn_vit *m = mvead_backbone_load(c, hash, sizeof hash);
    if (!m) return -1;
    mvead_log("extract: backbone %s (%s, D=%d, %d blocks, features of block %d), %dx%d input",
              c->backbone, hash, m->cfg.hidden_size, m->cfg.num_hidden_layers, c->layer, c->image_size, c->image_size);
    int rc = extract_split(c, m, hash, "train", p.train_cache);
    if (!rc) rc = extract_split(c, m, hash, "test", p.test_cache);
    mvn_vit_free(m);
    return rc;
}
