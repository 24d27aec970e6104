/* h5io: the project's HDF5 files (checkpoints, memory banks, feature caches,
 * scores) written safely and read defensively.
 *  - Writes go to "<path>.tmp"; mvh5_commit() flushes, fsyncs and renames, so
 *    a crash never leaves a half-written file under the final name and never
 *    touches a file already written.
 *  - Every dataset written by mvh5_write_* carries a "crc32" attribute (zlib
 *    crc32 of its bytes in the stored type); mvh5_read_* verifies it.
 *  - The root carries "mvead_kind" (checkpoint, bank, cache, ...) and
 *    "mvead_format" (an integer version); mvh5_open_read checks both.
 * Every failure returns -1/NULL with an mv_error naming the file and object.
 * Used by nn/ (weights), mvead/ (checkpoint, bank, scores) and data/cache. */
#ifndef MVEAD_DATA_H5IO_H
#define MVEAD_DATA_H5IO_H
#include <hdf5.h>
#include <stdbool.h>
#include <stdint.h>
#include "tensor/tensor.h"

typedef struct {
    hid_t file;
    char path[1024];     /* final name */
    char tmp[1040];      /* name being written */
} mvh5_writer;

/* Creates "<path>.tmp" (truncating a stale one) with the kind/format attributes. */
int mvh5_create(mvh5_writer *w, const char *path, const char *kind, int format);
/* Closes, fsyncs and renames to the final name. */
int mvh5_commit(mvh5_writer *w);
/* Closes and deletes the temporary file (error paths). */
void mvh5_abort(mvh5_writer *w);

/* Opens for reading; checks kind (NULL: any) and that format <= max_format. */
hid_t mvh5_open_read(const char *path, const char *kind, int max_format, int *format);
void mvh5_close(hid_t f);

/* File access list for new files: latest format, whose metadata HDF5 checksums. */
hid_t mvh5_fapl_checksummed(void);
/* 0 when path starts with an HDF5 superblock of version >= 2 (checksummed). */
int mvh5_check_superblock(const char *path);

/* Silences HDF5's own error stack printing (we report our own messages). */
void mvh5_quiet(void);

/* Groups: creates intermediate groups as needed. */
int mvh5_write_tensor(hid_t loc, const char *name, const mvt_tensor *t);
/* Stored as float32 or float16 (MVT_F32 with half=true). */
int mvh5_write_f32(hid_t loc, const char *name, int ndim, const int64_t *shape, const float *data);
int mvh5_write_f64(hid_t loc, const char *name, int ndim, const int64_t *shape, const double *data);
int mvh5_write_i64(hid_t loc, const char *name, int ndim, const int64_t *shape, const int64_t *data);
int mvh5_write_u8(hid_t loc, const char *name, int ndim, const int64_t *shape, const uint8_t *data);
/* Reads into a new tensor of dtype dt (converted). expect_ndim >= 0 checks rank;
 * expect_shape (NULL or -1 entries = any) checks sizes. `file` names the file in errors. */
mvt_tensor *mvh5_read_tensor(hid_t loc, const char *name, mvt_dtype dt, int expect_ndim,
                             const int64_t *expect_shape, const char *file);
bool mvh5_exists(hid_t loc, const char *name);

int mvh5_attr_set_int(hid_t loc, const char *obj, const char *name, int64_t v);
int mvh5_attr_set_double(hid_t loc, const char *obj, const char *name, double v);
int mvh5_attr_set_str(hid_t loc, const char *obj, const char *name, const char *v);
int mvh5_attr_get_int(hid_t loc, const char *obj, const char *name, int64_t *v, const char *file);
int mvh5_attr_get_double(hid_t loc, const char *obj, const char *name, double *v, const char *file);
int mvh5_attr_get_str(hid_t loc, const char *obj, const char *name, char *buf, size_t n, const char *file);
bool mvh5_attr_exists(hid_t loc, const char *obj, const char *name);

/* Variable-length string arrays (1-D). */
int mvh5_write_strings(hid_t loc, const char *name, int64_t n, const char *const *s);
/* Returns a malloc'd array of n malloc'd strings; *n set. */
char **mvh5_read_strings(hid_t loc, const char *name, int64_t *n, const char *file);
void mvh5_free_strings(char **s, int64_t n);

/* fsync a file and its directory entry (used by every atomic writer). */
int mvh5_fsync_path(const char *path);
#endif
