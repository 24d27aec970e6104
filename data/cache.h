/* cache: the feature cache. The backbone is frozen, so its block-k patch
 * features are computed once (`mvead extract`) and read by training, bank
 * building and evaluation. One HDF5 file per split:
 *   features [S, V, N, D]  float32 or float16, one chunk per sample, deflate
 *   crc      [S]           crc32 of each sample's features (as float32)
 *   masks    [S, V, H, W]  uint8 ground truth at the network size (test split)
 *   view_label [S, V], sample_label [S], category/sample_id/anomaly_class [S],
 *   image_path/mask_path [S*V]; attributes: sizes, layer, backbone name+hash.
 * Extraction writes "<path>.partial" with an n_done attribute flushed after
 * every sample; an interrupted run resumes there; only a complete file is
 * renamed to <path>, so a half-written cache never looks complete.
 * Used by mvead/extract, train, bank, eval. */
#ifndef MVEAD_DATA_CACHE_H
#define MVEAD_DATA_CACHE_H
#include <stdbool.h>
#include <stdint.h>

#define MVD_CACHE_FORMAT 1

typedef struct {
    int64_t S, V, N, D;
    int H, W, P, grid_h, grid_w;
    int layer;
    bool half;                 /* float16 storage */
    bool has_masks;
    char backbone[256];
    char backbone_hash[32];
    char split[16];
} mvd_cache_info;

typedef struct {
    const char *const *category, *const *sample_id, *const *anomaly_class;   /* [S] */
    const char *const *image_path, *const *mask_path;                        /* [S*V] */
    const int64_t *view_label;    /* [S*V] */
    const int64_t *sample_label;  /* [S] */
} mvd_cache_meta;

typedef struct mvd_cache_writer mvd_cache_writer;
/* Creates <path>.partial, or resumes it when it exists and matches info and
 * meta (else it is an error naming the mismatch; delete the .partial to start
 * over). *n_done = samples already written. */
mvd_cache_writer *mvd_cache_begin(const char *path, const mvd_cache_info *info, const mvd_cache_meta *meta, int64_t *n_done);
/* Writes sample i (must be n_done: samples are written in order). feat is [V*N*D]
 * float32; masks [V*H*W] or NULL. Flushes, so a kill after return keeps it. */
int mvd_cache_write(mvd_cache_writer *w, int64_t i, const float *feat, const uint8_t *masks);
/* All samples written: marks complete, fsyncs and renames to the final path. */
int mvd_cache_finish(mvd_cache_writer *w);
/* Closes without finishing (the .partial stays for a resume). */
void mvd_cache_close_writer(mvd_cache_writer *w);

typedef struct mvd_cache {
    mvd_cache_info info;
    char path[1024];
    char **category, **sample_id, **anomaly_class, **image_path, **mask_path;
    int64_t *view_label, *sample_label;
    void *priv;
} mvd_cache;

/* Opens a complete cache; verifies attributes and metadata shapes. */
mvd_cache *mvd_cache_open(const char *path);
/* feat [V*N*D] float32; verifies the sample's checksum. */
int mvd_cache_read(mvd_cache *c, int64_t i, float *feat);
int mvd_cache_read_masks(mvd_cache *c, int64_t i, uint8_t *masks);
void mvd_cache_close(mvd_cache *c);
/* Reads every sample and checks its crc32 (before a complete cache is reused). */
int mvd_cache_verify(mvd_cache *c);

/* IEEE half conversions (round to nearest even). */
uint16_t mvd_f32_to_f16(float f);
float mvd_f16_to_f32(uint16_t h);
#endif
