/* fuzz_cache: the HDF5 feature cache (data/cache.h) from mutated bytes of a
 * small valid cache: open, then read every sample's features (checksummed)
 * and masks, as training and evaluation do. Crashes whose stack is entirely
 * inside libhdf5 are HDF5's (see docs/reliability.md); the target checks our
 * side: sizes validated before use, every failure reported. */
#include "fuzz/fuzz_util.h"
#include "data/cache.h"
#include "data/h5io.h"
#include "tensor/error.h"
#include <hdf5.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fz_write("train.h5", data, size);
    mvd_cache *c = mvd_cache_open(path);
    if (!c) {
        if (!mv_error_last()[0]) abort();
        FZ_CHECK_HDF5_CLOSED();
        return 0;
    }
    const mvd_cache_info *in = &c->info;
    size_t nf = (size_t)in->V * (size_t)in->N * (size_t)in->D;
    size_t nm = (size_t)in->V * (size_t)in->H * (size_t)in->W;
    if (nf <= FZ_MAX_ALLOC / sizeof(float) && nm <= FZ_MAX_ALLOC && in->S <= 64) {
        float *feat = malloc(nf * sizeof(float));
        uint8_t *masks = malloc(nm ? nm : 1);
        for (int64_t i = 0; i < in->S; i++) {
            mvd_cache_read(c, i, feat);
            if (in->has_masks) mvd_cache_read_masks(c, i, masks);
        }
        mvd_cache_read(c, in->S, feat);   /* out of range: an error, not a read */
        free(feat);
        free(masks);
    }
    for (int64_t i = 0; i < in->S && i < 64; i++)
        if (!c->category[i] || !c->sample_id[i] || !c->anomaly_class[i]) abort();
    mvd_cache_close(c);
    FZ_CHECK_HDF5_CLOSED();
    return 0;
}
