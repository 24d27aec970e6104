/* loader: ring of `depth` slots; position p of the order always goes to slot
 * p % depth, so the output order never depends on which worker finished first.
 * A worker may claim position p only when p < released + depth, i.e. when the
 * caller has given back the sample that last used that slot. */
#include "data/loader.h"
#include "tensor/error.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SLOT_EMPTY = 0, SLOT_READY = 1, SLOT_FAILED = 2 };

typedef struct {
    mvd_loader_item item;
    int state;    /* of position `pos` */
    int pos;      /* position this slot last completed, -1 none */
    char err[2048];
} loader_slot;

struct mvd_loader {
    const mvd_dataset *ds;
    int *order;
    int n;
    mvd_loader_opts opts;
    int max_views;
    loader_slot *slots;
    pthread_t *threads;
    int n_started;
    pthread_mutex_t mu;
    pthread_cond_t cv_work;  /* workers: a slot was released, or stop */
    pthread_cond_t cv_ready; /* caller: a slot was completed */
    int next_claim;          /* next position a worker takes */
    int next_out;            /* next position returned to the caller */
    int released;            /* positions < released no longer hold their slot */
    int held;                /* caller holds position next_out - 1 */
    int stop;
    int failed;
    char fail_msg[2048];
};

void mvd_loader_opts_default(mvd_loader_opts *o) {
    memset(o, 0, sizeof *o);
    mvd_preprocess_opts_default(&o->pre);
    o->n_threads = 2;
    o->depth = 4;
    o->load_masks = 1;
}

int mvd_load_sample(const mvd_sample *s, const mvd_preprocess_opts *pre, float *views,
                    uint8_t *masks, int *view_labels) {
    size_t hw = (size_t)pre->height * pre->width;
    for (int v = 0; v < s->n_views; v++) {
        const mvd_view *vw = &s->views[v];
        if (!vw->image_path)
            return mv_error("sample %s/S%s/%s: view C%d has no image", s->category, s->sample_id,
                            s->anomaly_class, v + 1);
        if (mvd_preprocess_file_opts(vw->image_path, pre, views + (size_t)v * 3 * hw))
            return mv_error_prefix("sample %s/S%s/%s view C%d", s->category, s->sample_id,
                                   s->anomaly_class, v + 1);
        if (masks) {
            int any = 0;
            if (mvd_preprocess_mask_opts(vw->mask_path, pre, masks + (size_t)v * hw, &any))
                return mv_error_prefix("sample %s/S%s/%s view C%d mask", s->category, s->sample_id,
                                       s->anomaly_class, v + 1);
            view_labels[v] = any;
        } else {
            view_labels[v] = vw->mask_path ? vw->label : 0;
        }
    }
    return 0;
}

/* Fills slot with position p (no lock held). Returns 0 or -1 with slot->err set. */
static int fill_slot(mvd_loader *ld, loader_slot *slot, int p) {
    mvd_loader_item *it = &slot->item;
    int idx = ld->order[p];
    const mvd_sample *s = &ld->ds->samples[idx];
    it->position = p;
    it->index = idx;
    it->sample = s;
    it->n_views = s->n_views;
    it->height = ld->opts.pre.height;
    it->width = ld->opts.pre.width;
    memset(it->view_labels, 0, sizeof it->view_labels);
    size_t hw = (size_t)it->height * it->width;
    if (!ld->opts.load_masks) memset(it->masks, 0, (size_t)s->n_views * hw);
    if (mvd_load_sample(s, &ld->opts.pre, it->views, ld->opts.load_masks ? it->masks : NULL,
                        it->view_labels)) {
        snprintf(slot->err, sizeof slot->err, "%s", mv_error_last());
        return -1;
    }
    int lab = 0, unknown = 0;
    for (int v = 0; v < s->n_views; v++) {
        if (it->view_labels[v] == 1) lab = 1;
        if (it->view_labels[v] < 0) unknown = 1;
    }
    it->label = lab ? 1 : (unknown ? -1 : 0);
    return 0;
}

static void *worker_main(void *arg) {
    mvd_loader *ld = arg;
    for (;;) {
        pthread_mutex_lock(&ld->mu);
        while (!ld->stop && ld->next_claim < ld->n && ld->next_claim >= ld->released + ld->opts.depth)
            pthread_cond_wait(&ld->cv_work, &ld->mu);
        if (ld->stop || ld->next_claim >= ld->n) {
            pthread_mutex_unlock(&ld->mu);
            break;
        }
        int p = ld->next_claim++;
        loader_slot *slot = &ld->slots[p % ld->opts.depth];
        pthread_mutex_unlock(&ld->mu);
        int rc = fill_slot(ld, slot, p);
        pthread_mutex_lock(&ld->mu);
        slot->pos = p;
        slot->state = rc ? SLOT_FAILED : SLOT_READY;
        pthread_cond_broadcast(&ld->cv_ready);
        pthread_mutex_unlock(&ld->mu);
    }
    return NULL;
}

static void loader_free(mvd_loader *ld) {
    if (ld->slots)
        for (int i = 0; i < ld->opts.depth; i++) {
            free(ld->slots[i].item.views);
            free(ld->slots[i].item.masks);
        }
    free(ld->slots);
    free(ld->threads);
    free(ld->order);
    free(ld);
}

mvd_loader *mvd_loader_open(const mvd_dataset *ds, const int *order, int n_order,
                            const mvd_loader_opts *opts) {
    mvd_loader_opts def;
    if (!opts) {
        mvd_loader_opts_default(&def);
        opts = &def;
    }
    if (!ds || ds->n_samples < 0 || (ds->n_samples > 0 && !ds->samples)) {
        mv_error("loader: no dataset");
        return NULL;
    }
    if (opts->n_threads < 0 || opts->n_threads > 256 || opts->depth < 1 || opts->depth > 4096) {
        mv_error("loader: n_threads %d (0..256) or depth %d (1..4096) out of range", opts->n_threads,
                 opts->depth);
        return NULL;
    }
    if (opts->pre.height <= 0 || opts->pre.width <= 0 || opts->pre.height > MVD_IMAGE_MAX_SIDE ||
        opts->pre.width > MVD_IMAGE_MAX_SIDE) {
        mv_error("loader: image size %d x %d out of range", opts->pre.height, opts->pre.width);
        return NULL;
    }
    int n = order ? n_order : ds->n_samples;
    if (n < 0) {
        mv_error("loader: negative order length %d", n_order);
        return NULL;
    }
    mvd_loader *ld = calloc(1, sizeof *ld);
    if (!ld) {
        mv_error("loader: out of memory");
        return NULL;
    }
    ld->ds = ds;
    ld->n = n;
    ld->opts = *opts;
    ld->order = malloc((size_t)(n > 0 ? n : 1) * sizeof *ld->order);
    if (!ld->order) goto oom;
    for (int i = 0; i < n; i++) {
        int idx = order ? order[i] : i;
        if (idx < 0 || idx >= ds->n_samples) {
            mv_error("loader: order[%d] = %d is not a sample index (0..%d)", i, idx, ds->n_samples - 1);
            loader_free(ld);
            return NULL;
        }
        ld->order[i] = idx;
        int v = ds->samples[idx].n_views;
        if (v < 1 || v > MVD_MAX_VIEWS) {
            mv_error("loader: sample %d has %d views (1..%d)", idx, v, MVD_MAX_VIEWS);
            loader_free(ld);
            return NULL;
        }
        if (v > ld->max_views) ld->max_views = v;
    }
    if (ld->max_views == 0) ld->max_views = 1;
    size_t hw = (size_t)opts->pre.height * opts->pre.width;
    ld->slots = calloc((size_t)opts->depth, sizeof *ld->slots);
    if (!ld->slots) goto oom;
    for (int i = 0; i < opts->depth; i++) {
        ld->slots[i].pos = -1;
        ld->slots[i].item.views = malloc((size_t)ld->max_views * 3 * hw * sizeof(float));
        ld->slots[i].item.masks = malloc((size_t)ld->max_views * hw);
        if (!ld->slots[i].item.views || !ld->slots[i].item.masks) goto oom;
    }
    pthread_mutex_init(&ld->mu, NULL);
    pthread_cond_init(&ld->cv_work, NULL);
    pthread_cond_init(&ld->cv_ready, NULL);
    if (opts->n_threads > 0) {
        ld->threads = calloc((size_t)opts->n_threads, sizeof *ld->threads);
        if (!ld->threads) {
            mvd_loader_close(ld);
            mv_error("loader: out of memory");
            return NULL;
        }
        for (int t = 0; t < opts->n_threads; t++) {
            if (pthread_create(&ld->threads[t], NULL, worker_main, ld) != 0) {
                mvd_loader_close(ld);
                mv_error("loader: cannot start worker thread %d", t);
                return NULL;
            }
            ld->n_started++;
        }
    }
    return ld;
oom:
    loader_free(ld);
    mv_error("loader: out of memory for %d slots of %d x %d images", opts->depth, opts->pre.height,
             opts->pre.width);
    return NULL;
}

int mvd_loader_next(mvd_loader *ld, const mvd_loader_item **item) {
    *item = NULL;
    if (ld->failed) return mv_error("%s", ld->fail_msg);
    if (ld->opts.n_threads == 0) { /* synchronous: one slot, filled here */
        if (ld->next_out >= ld->n) return 0;
        loader_slot *slot = &ld->slots[0];
        if (fill_slot(ld, slot, ld->next_out)) {
            ld->failed = 1;
            snprintf(ld->fail_msg, sizeof ld->fail_msg, "%s", slot->err);
            return mv_error("%s", ld->fail_msg);
        }
        ld->next_out++;
        *item = &slot->item;
        return 1;
    }
    pthread_mutex_lock(&ld->mu);
    if (ld->held) {
        ld->released = ld->next_out;
        ld->held = 0;
        pthread_cond_broadcast(&ld->cv_work);
    }
    if (ld->next_out >= ld->n) {
        pthread_mutex_unlock(&ld->mu);
        return 0;
    }
    loader_slot *slot = &ld->slots[ld->next_out % ld->opts.depth];
    while (!(slot->pos == ld->next_out && slot->state != SLOT_EMPTY))
        pthread_cond_wait(&ld->cv_ready, &ld->mu);
    if (slot->state == SLOT_FAILED) {
        ld->failed = 1;
        snprintf(ld->fail_msg, sizeof ld->fail_msg, "%s", slot->err);
        pthread_mutex_unlock(&ld->mu);
        return mv_error("%s", ld->fail_msg);
    }
    *item = &slot->item;
    ld->held = 1;
    ld->next_out++;
    pthread_mutex_unlock(&ld->mu);
    return 1;
}

void mvd_loader_close(mvd_loader *ld) {
    if (!ld) return;
    pthread_mutex_lock(&ld->mu);
    ld->stop = 1;
    pthread_cond_broadcast(&ld->cv_work);
    pthread_mutex_unlock(&ld->mu);
    for (int t = 0; t < ld->n_started; t++) pthread_join(ld->threads[t], NULL);
    pthread_cond_destroy(&ld->cv_ready);
    pthread_cond_destroy(&ld->cv_work);
    pthread_mutex_destroy(&ld->mu);
    loader_free(ld);
}
