#include "mvead/run/scratch.h"
#include "tensor/error.h"
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/statvfs.h>
#include <unistd.h>

size_t mvead_memory_budget(double memory_mb) {
    if (memory_mb > 0) return (size_t)(memory_mb * 1048576.0);
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0) return (size_t)4 << 30;
    return (size_t)pages * (size_t)page / 2;
}

int mvead_scratch_alloc_bytes(mvead_scratch *s, size_t bytes, size_t budget, const char *dir, const char *what) {
    memset(s, 0, sizeof *s);
    double mib = bytes / 1048576.0;
    if (bytes <= budget) {
        s->mem = calloc(bytes ? bytes : 1, 1);
        if (!s->mem)
            return mv_error("%s: out of memory for %.0f MiB (lower --memory_mb to keep them in a scratch file under %s)",
                            what, mib, dir);
        s->bytes = bytes;
        return 0;
    }
    struct statvfs vfs;
    if (statvfs(dir, &vfs) == 0 && (double)vfs.f_bavail * vfs.f_frsize < (double)bytes)
        return mv_error("%s: %.0f MiB are over --memory_mb (%.0f MiB), and %s has only %.0f MiB free for the scratch file",
                        what, mib, budget / 1048576.0, dir, (double)vfs.f_bavail * vfs.f_frsize / 1048576.0);
    char path[4200];
    snprintf(path, sizeof path, "%s/.scratch.XXXXXX", dir);
    int fd = mkstemp(path);
    if (fd < 0) return mv_error("%s: cannot create a scratch file in %s: %s", what, dir, strerror(errno));
    unlink(path);
    /* posix_fallocate reserves the blocks, so a full disk fails here and not
     * as SIGBUS on a page fault later */
    int e = posix_fallocate(fd, 0, (off_t)bytes);
    if (e) {
        close(fd);
        return mv_error("%s: cannot reserve %.0f MiB for a scratch file in %s: %s", what, mib, dir, strerror(e));
    }
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);   /* the mapping keeps the file */
    if (p == MAP_FAILED) return mv_error("%s: cannot map a %.0f MiB scratch file in %s: %s", what, mib, dir, strerror(errno));
    s->mem = p;
    s->bytes = bytes;
    s->mapped = true;
    return 0;
}

int mvead_scratch_writeback(const mvead_scratch *s, size_t off, size_t len) {
    if (!s->mapped || !len) return 0;
    size_t page = (size_t)sysconf(_SC_PAGESIZE), start = off / page * page;
    if (off + len > s->bytes) len = s->bytes - off;
    if (msync((char *)s->mem + start, off + len - start, MS_SYNC))
        return mv_error("scratch file: writing back %zu bytes failed: %s", len, strerror(errno));
    return 0;
}

int mvead_scratch_alloc(mvead_scratch *s, size_t n, size_t budget, const char *dir, const char *what) {
    if (n > SIZE_MAX / sizeof(float)) {
        memset(s, 0, sizeof *s);
        return mv_error("%s: %zu floats do not fit in the address space", what, n);
    }
    if (mvead_scratch_alloc_bytes(s, n * sizeof(float), budget, dir, what)) return -1;
    s->data = s->mem;
    s->n = n;
    return 0;
}

void mvead_scratch_free(mvead_scratch *s) {
    if (s->mapped) munmap(s->mem, s->bytes ? s->bytes : 1);
    else free(s->mem);
    memset(s, 0, sizeof *s);
}

void mvead_scratch_pool_init(mvead_scratch_pool *p, size_t budget, const char *dir) {
    memset(p, 0, sizeof *p);
    p->budget = budget;
    p->dir = dir;
}

void *mvead_scratch_pool_alloc(mvead_scratch_pool *p, size_t bytes, const char *what) {
    if (p->n == MVEAD_SCRATCH_POOL_MAX) {
        mv_error("%s: more than %d scratch arrays at once", what, MVEAD_SCRATCH_POOL_MAX);
        return NULL;
    }
    size_t room = p->budget > p->in_memory ? p->budget - p->in_memory : 0;
    mvead_scratch *s = &p->items[p->n];
    if (mvead_scratch_alloc_bytes(s, bytes, room, p->dir, what)) return NULL;
    if (!s->mapped) p->in_memory += s->bytes;
    p->n++;
    return s->mem;
}

int mvead_scratch_pool_writeback(const mvead_scratch_pool *p, const void *mem, size_t off, size_t len) {
    for (int i = 0; i < p->n; i++)
        if (p->items[i].mem == mem) return mvead_scratch_writeback(&p->items[i], off, len);
    return 0;
}

void mvead_scratch_pool_release(mvead_scratch_pool *p, void *mem) {
    if (!mem) return;
    for (int i = 0; i < p->n; i++)
        if (p->items[i].mem == mem) {
            if (!p->items[i].mapped) p->in_memory -= p->items[i].bytes;
            mvead_scratch_free(&p->items[i]);
            p->items[i] = p->items[--p->n];
            return;
        }
}

void mvead_scratch_pool_free(mvead_scratch_pool *p) {
    for (int i = 0; i < p->n; i++) mvead_scratch_free(&p->items[i]);
    p->n = 0;
    p->in_memory = 0;
}
