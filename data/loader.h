/* loader: a prefetching sample loader. Worker threads (pthreads) decode and
 * preprocess the samples of a dataset ahead of the caller into a bounded ring
 * of `depth` slots, while the caller computes (feature extraction, training,
 * evaluation). Samples come out in the requested order whatever the number
 * of threads, with bitwise the same data as preprocessing them directly
 * (mvd_preprocess_file_opts / mvd_preprocess_mask_opts). A failure in a
 * worker (bad file) is returned to the caller as -1 + mv_error; closing
 * mid-stream stops and joins the workers cleanly.
 * Called by the feature cache and the train/eval commands. */
#ifndef MVEAD_DATA_LOADER_H
#define MVEAD_DATA_LOADER_H
#include <stdint.h>
#include "data/realiad.h"
#include "data/transform.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    mvd_preprocess_opts pre; /* output geometry and interpolation (default 224 x 224 bilinear) */
    int n_threads;           /* worker threads (default 2); 0 = decode synchronously in the caller */
    int depth;               /* samples buffered, including the one the caller holds (default 4) */
    int load_masks;          /* 1 (default): decode masks (needed for labels and pixel metrics) */
} mvd_loader_opts;

void mvd_loader_opts_default(mvd_loader_opts *o);

/* One sample, owned by the loader: valid until the next mvd_loader_next or close. */
typedef struct {
    int position;              /* 0-based position in the loader's order */
    int index;                 /* index into ds->samples */
    const mvd_sample *sample;
    int n_views, height, width;
    float *views;              /* [n_views, 3, height, width], ImageNet-normalised */
    uint8_t *masks;            /* [n_views, height, width], 0/1 (zeros if load_masks = 0) */
    int view_labels[MVD_MAX_VIEWS]; /* from the full-resolution masks (-1 if load_masks = 0
                                       and the view has a mask) */
    int label;                 /* max over views */
} mvd_loader_item;

typedef struct mvd_loader mvd_loader;

/* order: sample indices to visit (NULL = 0..n_samples-1); copied. n_order
 * ignored when order is NULL. Returns NULL + mv_error on bad options. */
mvd_loader *mvd_loader_open(const mvd_dataset *ds, const int *order, int n_order,
                            const mvd_loader_opts *opts);
/* Returns 1 and sets *item, 0 at the end of the order, -1 + mv_error on a
 * failure (every later call returns -1 too). */
int mvd_loader_next(mvd_loader *ld, const mvd_loader_item **item);
/* Stops the workers (mid-stream is fine), joins them and frees everything. NULL ok. */
void mvd_loader_close(mvd_loader *ld);

/* Decodes one sample into caller buffers (what each worker does):
 * views [V,3,H,W], masks [V,H,W] (may be NULL: masks skipped), view_labels [V]. */
int mvd_load_sample(const mvd_sample *s, const mvd_preprocess_opts *pre, float *views,
                    uint8_t *masks, int *view_labels);

#ifdef __cplusplus
}
#endif
#endif
