/* safetensors: read and write the HuggingFace `model.safetensors` format
 * (8-byte little-endian header length, a JSON header naming each tensor's
 * dtype, shape and byte range, then the raw little-endian data).
 *
 * The reader validates every rule before handing anything out (header size
 * sane, JSON valid, each entry complete, offsets in range, contiguous and
 * non-overlapping, size == prod(shape) x dtype size, file not truncated) and
 * converts F32/F16/BF16/F64 to float32 or float64 tensors. The writer makes
 * such files from tensors (tests, tiny models, exports).
 *
 * Called by nn/weights.c (model loading, import-weights) and tests. */
#ifndef MVEAD_NN_SAFETENSORS_H
#define MVEAD_NN_SAFETENSORS_H

#include <stdint.h>
#include <stddef.h>
#include "tensor/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Storage types of the format that we understand. */
typedef enum { MVN_ST_F32 = 0, MVN_ST_F16, MVN_ST_BF16, MVN_ST_F64 } mvn_st_dtype;

#define MVN_ST_MAX_DIMS 8

typedef struct {
    char *name;
    mvn_st_dtype dtype;
    int ndim;
    int64_t shape[MVN_ST_MAX_DIMS];
    uint64_t begin, end;        /* byte range inside the data section */
} mvn_st_entry;

typedef struct {
    char *path;
    int n;                      /* tensors (without __metadata__) */
    mvn_st_entry *entries;      /* in header order */
    char *metadata_json;        /* the "__metadata__" object as JSON, or NULL */
    uint8_t *data;              /* the data section (file contents after the header) */
    uint64_t data_size;
    void *map;                  /* whole file (mmap) */
    size_t map_size;
} mvn_safetensors;

/* Opens and validates `path`. NULL with an mv_error naming the file (and the
 * tensor, where one is at fault) on any violation. */
mvn_safetensors *mvn_st_open(const char *path);
void mvn_st_close(mvn_safetensors *st);

/* Index of the tensor called `name`, or -1. */
int mvn_st_find(const mvn_safetensors *st, const char *name);
/* Entry i converted to `out` (MVT_F32 or MVT_F64), contiguous, new reference.
 * NULL + mv_error when the tensor has more than MVT_MAX_DIMS dims. */
mvt_tensor *mvn_st_read_index(const mvn_safetensors *st, int i, mvt_dtype out);
/* Same by name; NULL + mv_error naming the tensor when absent. */
mvt_tensor *mvn_st_read(const mvn_safetensors *st, const char *name, mvt_dtype out);

/* "F32", "F16", "BF16", "F64". */
const char *mvn_st_dtype_name(mvn_st_dtype dt);
/* Parses a dtype name; -1 when unknown. */
int mvn_st_dtype_parse(const char *s, mvn_st_dtype *dt);
size_t mvn_st_dtype_size(mvn_st_dtype dt);

/* Scalar conversions (IEEE half / bfloat16 bit patterns; round to nearest even). */
float mvn_f16_to_f32(uint16_t h);
float mvn_bf16_to_f32(uint16_t h);
uint16_t mvn_f32_to_f16(float f);
uint16_t mvn_f32_to_bf16(float f);

/* Writes n tensors (any float dtype/strides) stored as `dtype` under `names`,
 * in the given order, with "__metadata__": {"format": "pt"}. The header is
 * space-padded to a multiple of 8 bytes as the reference writer does.
 * Returns 0, or -1 + mv_error. */
int mvn_st_write(const char *path, int n, const char *const *names,
                 const mvt_tensor *const *tensors, mvn_st_dtype dtype);

#ifdef __cplusplus
}
#endif
#endif
