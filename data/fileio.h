/* fileio: the atomic, checked writes every non-HDF5 file of a run goes
 * through (JSON, CSV, HTML, PNG, history lines). A file is written under a
 * temporary name, flushed, fsynced and only then renamed into place, so a full
 * disk or an I/O error never leaves a short file under the final name: the
 * temporary file is removed and the error names the file and the OS error
 * ("No space left on device"). Used by data/ (images, synth), mvead/run
 * (config, loss.csv, metrics, report) and mvead/cli. */
#ifndef MVEAD_DATA_FILEIO_H
#define MVEAD_DATA_FILEIO_H
#include <stddef.h>
#include <stdio.h>

/* Finishes a file written through f under the name tmp: flush, error check,
 * fsync, close, rename to path, fsync of the folder. On any failure tmp is
 * removed and -1 returned with mv_error naming path and the OS error. f is
 * always closed. */
int mvd_file_commit(FILE *f, const char *tmp, const char *path);
/* Writes n bytes to path atomically (through "<path>.tmp"). */
int mvd_file_write_atomic(const char *path, const void *data, size_t n);
/* Appends one line (a '\n' is added) to path with O_APPEND and fsyncs it; a
 * short write is truncated away so the file never ends in half a line. */
int mvd_file_append_line(const char *path, const char *line);
/* fsync of the folder holding path (makes a rename durable); errors ignored
 * where the file system cannot sync folders. */
void mvd_file_sync_dir(const char *path);
/* SHA-256 of a file's bytes as 64 hex digits (hex must hold 65). */
int mvd_file_sha256(const char *path, char *hex);
/* SHA-256 of a buffer. */
void mvd_sha256(const void *data, size_t n, unsigned char out[32]);

#endif
