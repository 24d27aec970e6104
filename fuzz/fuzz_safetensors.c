/* fuzz_safetensors: mvn_st_open on arbitrary bytes, then every tensor read
 * as float32 and float64 (the reader must validate everything before it hands
 * out a pointer into the mapped file). */
#include "fuzz/fuzz_util.h"
#include "nn/safetensors.h"
#include "tensor/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fz_write("model.safetensors", data, size);
    mvn_safetensors *st = mvn_st_open(path);
    if (!st) {
        if (!mv_error_last()[0]) abort();   /* a failure must say why */
        return 0;
    }
    for (int i = 0; i < st->n; i++) {
        mvt_tensor *a = mvn_st_read_index(st, i, MVT_F32);
        mvt_tensor *b = mvn_st_read_index(st, i, MVT_F64);
        mvt_release(a);
        mvt_release(b);
        if (mvn_st_find(st, st->entries[i].name) < 0) abort();   /* every listed name is findable */
    }
    mvt_release(mvn_st_read(st, "no such tensor", MVT_F32));
    mvn_st_close(st);
    return 0;
}
