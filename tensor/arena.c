/* Storage pool and bump arena.
 *
 * Pool: every storage block is one 64-byte aligned allocation holding a
 * 64-byte header (the mvt_storage struct) followed by the data. Freed blocks
 * go to a free list per size class (64-byte steps up to 256 bytes, then four
 * classes per power of two, so at most 25% slack), so a training step that
 * repeats the same shapes stops calling malloc after the first iteration.
 * Tensor structs are recycled the same way. One mutex guards both. */
#include "config.h"
#include "tensor/tensor.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define HEADER_BYTES 64
#define NUM_CLASSES 256

typedef struct block {
    mvt_storage st;          /* first member: (block *)storage == block */
    int cls;
    struct block *next;      /* free-list link while cached */
} block;
_Static_assert(sizeof(block) <= HEADER_BYTES, "block header must fit in 64 bytes");

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static block *g_free[NUM_CLASSES];
static mvt_pool_stats g_stats;
static mvt_tensor *g_free_tensors;   /* linked through ->storage */

static int size_class(size_t n, size_t *cap) {
    if (n <= 256) {
        int idx = n == 0 ? 0 : (int)((n + 63) / 64) - 1;
        *cap = (size_t)(idx + 1) * 64;
        return idx;
    }
    int e = 63 - __builtin_clzll((unsigned long long)(n - 1));   /* 2^e < n <= 2^(e+1) */
    size_t base = (size_t)1 << e, step = base >> 2;
    size_t q = (n - base + step - 1) / step;                        /* 1..4 */
    *cap = base + q * step;
    return 4 + (e - 8) * 4 + (int)(q - 1);
}

mvt_storage *mvt__storage_new(size_t nbytes) {
    size_t cap;
    int cls = size_class(nbytes, &cap);
    MVT_ASSERT(cls < NUM_CLASSES, "allocation of %zu bytes too large", nbytes);
    block *b = NULL;
    pthread_mutex_lock(&g_lock);
    if (g_free[cls]) {
        b = g_free[cls];
        g_free[cls] = b->next;
        g_stats.cached_bytes -= cap;
        g_stats.reuses++;
    } else {
        g_stats.mallocs++;
    }
    g_stats.live_bytes += cap;
    if (g_stats.live_bytes > g_stats.peak_bytes) g_stats.peak_bytes = g_stats.live_bytes;
    pthread_mutex_unlock(&g_lock);
    if (!b) {
        void *p = NULL;
        if (posix_memalign(&p, 64, HEADER_BYTES + cap) != 0 || !p) {
            /* a cached block of another class may be what is holding memory */
            mvt_pool_trim();
            if (posix_memalign(&p, 64, HEADER_BYTES + cap) != 0 || !p)
                mvt_panic(__FILE__, __LINE__, "out of memory allocating %zu bytes", cap);
        }
        b = p;
        b->cls = cls;
    }
    b->next = NULL;
    b->st.data = (char *)b + HEADER_BYTES;
    b->st.nbytes = nbytes;
    b->st.refcount = 1;
    return &b->st;
}

void mvt__storage_release(mvt_storage *s) {
    if (!s) return;
    if (__atomic_sub_fetch(&s->refcount, 1, __ATOMIC_ACQ_REL) != 0) return;
    block *b = (block *)s;
    size_t cap;
    size_class(s->nbytes, &cap);
    pthread_mutex_lock(&g_lock);
    b->next = g_free[b->cls];
    g_free[b->cls] = b;
    g_stats.live_bytes -= cap;
    g_stats.cached_bytes += cap;
    pthread_mutex_unlock(&g_lock);
}

mvt_tensor *mvt__tensor_struct_new(void) {
    mvt_tensor *t = NULL;
    pthread_mutex_lock(&g_lock);
    if (g_free_tensors) {
        t = g_free_tensors;
        g_free_tensors = (mvt_tensor *)t->storage;
    }
    pthread_mutex_unlock(&g_lock);
    if (!t) {
        t = malloc(sizeof *t);
        MVT_ASSERT(t, "out of memory");
    }
    memset(t, 0, sizeof *t);
    return t;
}

void mvt__tensor_struct_free(mvt_tensor *t) {
    pthread_mutex_lock(&g_lock);
    t->storage = (mvt_storage *)g_free_tensors;
    g_free_tensors = t;
    pthread_mutex_unlock(&g_lock);
}

mvt_pool_stats mvt_pool_get_stats(void) {
    pthread_mutex_lock(&g_lock);
    mvt_pool_stats s = g_stats;
    pthread_mutex_unlock(&g_lock);
    return s;
}

void mvt_pool_trim(void) {
    pthread_mutex_lock(&g_lock);
    for (int c = 0; c < NUM_CLASSES; c++) {
        block *b = g_free[c];
        while (b) {
            block *n = b->next;
            free(b);
            b = n;
        }
        g_free[c] = NULL;
    }
    g_stats.cached_bytes = 0;
    mvt_tensor *t = g_free_tensors;
    while (t) {
        mvt_tensor *n = (mvt_tensor *)t->storage;
        free(t);
        t = n;
    }
    g_free_tensors = NULL;
    pthread_mutex_unlock(&g_lock);
}

/* ---- bump arena ---------------------------------------------------------- */

struct mvt_arena {
    char *base;
    size_t capacity, used;
};

mvt_arena *mvt_arena_new(size_t capacity_bytes) {
    mvt_arena *a = malloc(sizeof *a);
    if (!a) return NULL;
    void *p = NULL;
    size_t cap = (capacity_bytes + 63) & ~(size_t)63;
    if (posix_memalign(&p, 64, cap ? cap : 64) != 0) { free(a); return NULL; }
    a->base = p;
    a->capacity = cap;
    a->used = 0;
    return a;
}

void *mvt_arena_alloc(mvt_arena *a, size_t nbytes) {
    size_t n = (nbytes + 63) & ~(size_t)63;
    if (n < nbytes || a->used + n > a->capacity) return NULL;
    void *p = a->base + a->used;
    a->used += n;
    return p;
}

size_t mvt_arena_mark(const mvt_arena *a) { return a->used; }

void mvt_arena_reset(mvt_arena *a, size_t mark) {
    MVT_ASSERT(mark <= a->used, "arena reset beyond the current mark");
    a->used = mark;
}

void mvt_arena_free(mvt_arena *a) {
    if (!a) return;
    free(a->base);
    free(a);
}
