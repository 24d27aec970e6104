/* h5io: the project's HDF5 files (checkpoints, memory banks, feature caches,
 * scores) written safely and read defensively.
 *  - Writes go to "<path>.tmp"; mvd_h5_commit() flushes, fsyncs and renames, so
 *    a crash never leaves a half-written file under the final name and never
 *    touches a file already written.
 *  - Every dataset written by mvd_h5_write_* carries a "crc32" attribute (zlib
 *    crc32 of its bytes in the stored type); mvd_h5_read_* verifies it.
 *  - The root carries "mvead_kind" (checkpoint, bank, cache, ...) and
 *    "mvead_format" (an integer version); mvd_h5_open_read checks both.
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
} mvd_h5_writer;

/* Creates "<path>.tmp" (truncating a stale one) with the kind/format attributes. */
int mvd_h5_create(mvd_h5_writer *w, const char *path, const char *kind, int format);
/* Closes, fsyncs and renames to the final name. */
int mvd_h5_commit(mvd_h5_writer *w);
/* Closes and deletes the temporary file (error paths). */
void mvd_h5_abort(mvd_h5_writer *w);
/* After a failed write or flush: deletes the temporary file without closing
 * the handle (closing it can crash libhdf5; see h5io.c). */
void mvd_h5_abandon(mvd_h5_writer *w);
/* True after a write to an HDF5 file failed: libhdf5's exit handler would
 * crash on that file, so the program must end with _exit (after flushing
 * stdio) rather than return from main. */
bool mvd_h5_poisoned(void);
/* Marks that a write failed (writers not going through mvd_h5_commit: the cache). */
void mvd_h5_write_failed(void);

/* Opens for reading; checks kind (NULL: any) and that format <= max_format. */
hid_t mvd_h5_open_read(const char *path, const char *kind, int max_format, int *format);
void mvd_h5_close(hid_t f);

/* File access list for new files: latest format, whose metadata HDF5 checksums. */
hid_t mvd_h5_fapl_checksummed(void);
/* 0 when path starts with an HDF5 superblock of version >= 2 (checksummed). */
int mvd_h5_check_superblock(const char *path);

/* Silences HDF5's own error stack printing (we report our own messages). */
void mvd_h5_quiet(void);

/* Groups: creates intermediate groups as needed. */
int mvd_h5_write_tensor(hid_t loc, const char *name, const mvt_tensor *t);
/* Stored as float32 or float16 (MVT_F32 with half=true). */
int mvd_h5_write_f32(hid_t loc, const char *name, int ndim, const int64_t *shape, const float *data);
int mvd_h5_write_f64(hid_t loc, const char *name, int ndim, const int64_t *shape, const double *data);
int mvd_h5_write_i64(hid_t loc, const char *name, int ndim, const int64_t *shape, const int64_t *data);
int mvd_h5_write_u8(hid_t loc, const char *name, int ndim, const int64_t *shape, const uint8_t *data);
/* Reads into a new tensor of dtype dt (converted). expect_ndim >= 0 checks rank;
 * expect_shape (NULL or -1 entries = any) checks sizes. `file` names the file in errors. */
mvt_tensor *mvd_h5_read_tensor(hid_t loc, const char *name, mvt_dtype dt, int expect_ndim,
                             const int64_t *expect_shape, const char *file);
bool mvd_h5_exists(hid_t loc, const char *name);

int mvd_h5_attr_set_int(hid_t loc, const char *obj, const char *name, int64_t v);
int mvd_h5_attr_set_double(hid_t loc, const char *obj, const char *name, double v);
int mvd_h5_attr_set_str(hid_t loc, const char *obj, const char *name, const char *v);
int mvd_h5_attr_get_int(hid_t loc, const char *obj, const char *name, int64_t *v, const char *file);
int mvd_h5_attr_get_double(hid_t loc, const char *obj, const char *name, double *v, const char *file);
int mvd_h5_attr_get_str(hid_t loc, const char *obj, const char *name, char *buf, size_t n, const char *file);
bool mvd_h5_attr_exists(hid_t loc, const char *obj, const char *name);

/* Variable-length string arrays (1-D). */
int mvd_h5_write_strings(hid_t loc, const char *name, int64_t n, const char *const *s);
/* Returns a malloc'd array of n malloc'd strings; *n set. */
char **mvd_h5_read_strings(hid_t loc, const char *name, int64_t *n, const char *file);
void mvd_h5_free_strings(char **s, int64_t n);

/* The OS error behind the last failed HDF5 call ("No space left on device"),
 * from HDF5's error stack, else strerror(saved_errno). Static buffer. */
const char *mvd_h5_os_error(int saved_errno);

/* fsync a file and its directory entry (used by every atomic writer). */
int mvd_h5_fsync_path(const char *path);
#endif
