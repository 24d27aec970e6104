/* scratch: large arrays (the fused features of a training set, the anomaly
 * maps of a test set and their sort keys) that live in memory when they fit
 * under a budget and otherwise in a scratch file mapped into memory, which
 * the kernel pages to and from disk. Callers index them like any array, so
 * results do not depend on where they live; only the speed does. The file is
 * unlinked as soon as it is mapped: a killed process leaves nothing behind. */
#ifndef MVEAD_SCRATCH_H
#define MVEAD_SCRATCH_H
#include <stdbool.h>
#include <stddef.h>

typedef struct {
    void *mem;
    size_t bytes;
    bool mapped;   /* in a scratch file, not in memory */
    float *data;   /* mem, for mvead_scratch_alloc's floats */
    size_t n;      /* floats */
} mvead_scratch;

/* The budget, in bytes, for --memory_mb M: M MiB, or half the physical
 * memory when M is 0. */
size_t mvead_memory_budget(double memory_mb);

/* bytes (zeroed) for `what`: malloc'ed when bytes <= budget, else in a
 * scratch file under dir (disk space reserved first). 0, or -1 + mv_error
 * naming what, the size and the folder. */
int mvead_scratch_alloc_bytes(mvead_scratch *s, size_t bytes, size_t budget, const char *dir, const char *what);
/* n floats, the same way. */
int mvead_scratch_alloc(mvead_scratch *s, size_t n, size_t budget, const char *dir, const char *what);
void mvead_scratch_free(mvead_scratch *s);
/* Writes bytes [off, off + len) of a file-backed array to disk now (no-op in
 * memory). A filler calls it on what it wrote: clean pages are dropped at
 * once under memory pressure, while dirty ones must wait for writeback, and
 * a cgroup-v1 memory limit (no per-group dirty throttling) OOM-kills first. */
int mvead_scratch_writeback(const mvead_scratch *s, size_t off, size_t len);

/* Several arrays under one budget: each goes to memory while the arrays held
 * in memory together stay within it, else to a scratch file. */
#define MVEAD_SCRATCH_POOL_MAX 32
typedef struct {
    size_t budget, in_memory;
    const char *dir;
    int n;
    mvead_scratch items[MVEAD_SCRATCH_POOL_MAX];
} mvead_scratch_pool;

void mvead_scratch_pool_init(mvead_scratch_pool *p, size_t budget, const char *dir);
/* NULL + mv_error on failure. */
void *mvead_scratch_pool_alloc(mvead_scratch_pool *p, size_t bytes, const char *what);
/* mvead_scratch_writeback of bytes [off, off + len) of mem, from this pool. */
int mvead_scratch_pool_writeback(const mvead_scratch_pool *p, const void *mem, size_t off, size_t len);
/* mem from this pool (NULL is ignored). */
void mvead_scratch_pool_release(mvead_scratch_pool *p, void *mem);
void mvead_scratch_pool_free(mvead_scratch_pool *p);

#endif
