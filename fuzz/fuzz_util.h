/* fuzz_util: helpers shared by the libFuzzer targets in fuzz/fuzz_*.c.
 * Most parsers of the project read files by path (HDF5, JSON, safetensors),
 * so each target writes its input to a per-process scratch file and calls the
 * real entry point on it. The scratch folder is made once per process and
 * removed at exit. Built only by fuzz/run.sh (clang -fsanitize=fuzzer). */
#ifndef MVEAD_FUZZ_UTIL_H
#define MVEAD_FUZZ_UTIL_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

static char fz_dir[256];

static inline void fz_cleanup(void) {
    if (!fz_dir[0]) return;
    char cmd[300];
    /* the folder name is ours (mkdtemp), no shell metacharacters */
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fz_dir);
    if (system(cmd)) { /* nothing to do: a leftover folder in TMPDIR is harmless */ }
}

/* The per-process scratch folder (created on first use). */
static inline const char *fz_scratch(void) {
    if (fz_dir[0]) return fz_dir;
    const char *t = getenv("TMPDIR");
    snprintf(fz_dir, sizeof fz_dir, "%s/mvead_fuzz.XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(fz_dir)) { perror("mkdtemp"); abort(); }
    atexit(fz_cleanup);
    return fz_dir;
}

/* Path of a scratch file named `name` inside the scratch folder. */
static inline const char *fz_path(const char *name, char *buf, size_t n) {
    snprintf(buf, n, "%s/%s", fz_scratch(), name);
    return buf;
}

/* Writes the input to the scratch file `name`; returns its path (static buffer). */
static inline const char *fz_write(const char *name, const uint8_t *data, size_t size) {
    static char path[512];
    fz_path(name, path, sizeof path);
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); abort(); }
    if (size && fwrite(data, 1, size, f) != size) { perror(path); abort(); }
    fclose(f);
    return path;
}

/* For the HDF5 targets: every file, group, dataset, attribute, type and space
 * our code opened for one input must be closed when the call returns (success
 * or error); a leaked handle keeps the file open (and its memory) for good. */
#define FZ_CHECK_HDF5_CLOSED()                                                              \
    do {                                                                                    \
        ssize_t open_ = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);                         \
        if (open_ > 0) {                                                                    \
            fprintf(stderr, "fuzz: %zd HDF5 object(s) left open after the call\n", open_); \
            abort();                                                                        \
        }                                                                                   \
    } while (0)

/* Guard for allocations sized from the (fuzzed) file: the fuzzer's own
 * memory limit would otherwise report a corrupt size field as an OOM "crash"
 * of the harness rather than of the code under test. */
#define FZ_MAX_ALLOC ((size_t)64 << 20)
#endif
