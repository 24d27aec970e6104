/* scratch: large float arrays (the fused features of a training set) that
 * live in memory when they fit under a budget and otherwise in a scratch file
 * mapped into memory, which the kernel pages to and from disk. Callers index
 * them like any array, so results do not depend on where they live; only the
 * speed does. The file is unlinked as soon as it is mapped: a killed process
 * leaves nothing behind. */
#ifndef MVEAD_SCRATCH_H
#define MVEAD_SCRATCH_H
#include <stdbool.h>
#include <stddef.h>

typedef struct {
    float *data;
    size_t n;      /* floats */
    bool mapped;   /* in a scratch file, not in memory */
} mvead_scratch;

/* The budget, in bytes, for --memory_mb M: M MiB, or half the physical
 * memory when M is 0. */
size_t mvead_memory_budget(double memory_mb);

/* n floats (zeroed) for `what`: malloc'ed when n * 4 bytes <= budget, else in
 * a scratch file under dir (disk space checked first). 0, or -1 + mv_error
 * naming what, the size and the folder. */
int mvead_scratch_alloc(mvead_scratch *s, size_t n, size_t budget, const char *dir, const char *what);
void mvead_scratch_free(mvead_scratch *s);

#endif
