/* mpi: MPI wrapper with a single-process fallback (see mpi.h). */
#include "config.h"
#include "mvead/run/mpi.h"
#include "tensor/error.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef HAVE_MPI
#include <mpi.h>
#endif

/* Messages are split into pieces of at most this many bytes (MPI counts are int). */
#define MPI_PIECE ((size_t)1 << 30)
/* Elements per round of the fixed-order sum: bounds rank 0's gather buffer to P x 8 MB. */
#define SUM_PIECE ((int64_t)1 << 20)
#define TAG_GATHER 0x4d56

static bool g_active;          /* MPI_Init was called */
static bool g_local;           /* local mode: act as rank 0 of 1 */
static int g_world_rank = 0, g_world_size = 1;
static int64_t g_counter;      /* counter without a window */
#ifdef HAVE_MPI
static MPI_Win g_win = MPI_WIN_NULL;
#endif

/* Job size announced by a launcher (0 when not launched by one). */
static long launcher_size(void) {
    const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"};
    for (int i = 0; i < 3; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v) return atol(v);
    }
    /* PMIx sets the rank but not always the size */
    return getenv("PMIX_RANK") || getenv("PMI_RANK") ? 1 : 0;
}

/* Spread over ranks only when MPI runs and not in local mode. */
static bool multi(void) { return g_active && !g_local && g_world_size > 1; }

int mvead_mpi_init(int *argc, char ***argv) {
    const char *force = getenv("MVEAD_MPI");
    bool want = force && *force ? strcmp(force, "0") != 0 : launcher_size() > 0;
#ifdef HAVE_MPI
    if (!want) return 0;
    int provided = 0;
    /* FUNNELED: loader threads and OpenMP never call MPI, only the main thread does */
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return mv_error("MPI_Init failed (started by mpirun/srun, or MVEAD_MPI=1)");
    g_active = true;
    MPI_Comm_rank(MPI_COMM_WORLD, &g_world_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_world_size);
    return 0;
#else
    (void)argc;
    (void)argv;
    /* Every rank would repeat the whole job and write the same files. */
    if (want && launcher_size() > 1)
        return mv_error("this mvead was built without MPI (configure found no OpenMPI, or --without-mpi): "
                        "run it without mpirun, or rebuild with --with-mpi (Debian: libopenmpi-dev openmpi-bin)");
    return 0;
#endif
}

void mvead_mpi_finalize(void) {
#ifdef HAVE_MPI
    if (g_active) {
        if (g_win != MPI_WIN_NULL) mvead_mpi_counter_free();
        MPI_Finalize();
        g_active = false;
    }
#endif
}

void mvead_mpi_abort(int code) {
    fflush(stdout);
    fflush(stderr);
#ifdef HAVE_MPI
    if (g_active && g_world_size > 1) MPI_Abort(MPI_COMM_WORLD, code);
    if (g_active) MPI_Finalize();
#endif
    exit(code);
}

bool mvead_mpi_active(void) { return g_active; }
int mvead_mpi_rank(void) { return multi() ? g_world_rank : 0; }
int mvead_mpi_size(void) { return multi() ? g_world_size : 1; }
int mvead_mpi_world_rank(void) { return g_world_rank; }
int mvead_mpi_world_size(void) { return g_world_size; }

bool mvead_mpi_set_local(bool local) {
    bool prev = g_local;
    g_local = local;
    return prev;
}

void mvead_mpi_block_of(int64_t n, int r, int P, int64_t *begin, int64_t *end) {
    /* the first n % P ranks get one more */
    int64_t q = n / P, extra = n % P;
    *begin = r * q + (r < extra ? r : extra);
    *end = *begin + q + (r < extra ? 1 : 0);
}

void mvead_mpi_block(int64_t n, int64_t *begin, int64_t *end) {
    mvead_mpi_block_of(n, mvead_mpi_rank(), mvead_mpi_size(), begin, end);
}

int mvead_mpi_barrier(void) {
#ifdef HAVE_MPI
    if (multi()) MPI_Barrier(MPI_COMM_WORLD);
#endif
    return 0;
}

int mvead_mpi_bcast(void *buf, size_t bytes, int root) {
#ifdef HAVE_MPI
    if (!multi()) return 0;
    for (size_t off = 0; off < bytes; off += MPI_PIECE) {
        size_t n = bytes - off < MPI_PIECE ? bytes - off : MPI_PIECE;
        MPI_Bcast((char *)buf + off, (int)n, MPI_BYTE, root, MPI_COMM_WORLD);
    }
#else
    (void)buf;
    (void)bytes;
    (void)root;
#endif
    return 0;
}

#ifdef HAVE_MPI
/* Fixed-order sum of one piece: gather to rank 0, add in rank order in
 * double, round once, broadcast. Both element types go through here. */
static int sum_piece(void *buf, int64_t n, MPI_Datatype type, size_t esize, bool is_f32) {
    int P = g_world_size, r = g_world_rank;
    void *all = NULL;
    if (r == 0) {
        all = malloc((size_t)P * (size_t)n * esize);
        if (!all) mvead_mpi_abort(1);   /* the other ranks are already in the collective */
    }
    MPI_Gather(buf, (int)n, type, all, (int)n, type, 0, MPI_COMM_WORLD);
    if (r == 0) {
        for (int64_t k = 0; k < n; k++) {
            double s = 0;
            for (int q = 0; q < P; q++)
                s += is_f32 ? (double)((const float *)all)[(int64_t)q * n + k] : ((const double *)all)[(int64_t)q * n + k];
            if (is_f32) ((float *)buf)[k] = (float)s;
            else ((double *)buf)[k] = s;
        }
        free(all);
    }
    MPI_Bcast(buf, (int)n, type, 0, MPI_COMM_WORLD);
    return 0;
}
#endif

int mvead_mpi_allreduce_sum_f32(float *buf, int64_t n) {
#ifdef HAVE_MPI
    if (!multi()) return 0;
    for (int64_t off = 0; off < n; off += SUM_PIECE)
        sum_piece(buf + off, n - off < SUM_PIECE ? n - off : SUM_PIECE, MPI_FLOAT, sizeof(float), true);
#else
    (void)buf;
    (void)n;
#endif
    return 0;
}

int mvead_mpi_allreduce_sum_f64(double *buf, int64_t n) {
#ifdef HAVE_MPI
    if (!multi()) return 0;
    for (int64_t off = 0; off < n; off += SUM_PIECE)
        sum_piece(buf + off, n - off < SUM_PIECE ? n - off : SUM_PIECE, MPI_DOUBLE, sizeof(double), false);
#else
    (void)buf;
    (void)n;
#endif
    return 0;
}

int mvead_mpi_reduce_min_f32(float *buf, int64_t n, int root) {
#ifdef HAVE_MPI
    if (!multi()) return 0;
    const int64_t piece = (int64_t)MPI_PIECE / sizeof(float);
    for (int64_t off = 0; off < n; off += piece) {
        int m = (int)(n - off < piece ? n - off : piece);
        if (g_world_rank == root) MPI_Reduce(MPI_IN_PLACE, buf + off, m, MPI_FLOAT, MPI_MIN, root, MPI_COMM_WORLD);
        else MPI_Reduce(buf + off, NULL, m, MPI_FLOAT, MPI_MIN, root, MPI_COMM_WORLD);
    }
#else
    (void)buf;
    (void)n;
    (void)root;
#endif
    return 0;
}

int mvead_mpi_allreduce_max_i64(int64_t *buf, int64_t n) {
#ifdef HAVE_MPI
    if (!multi() || n <= 0) return 0;
    MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD);
#else
    (void)buf;
    (void)n;
#endif
    return 0;
}

int mvead_mpi_send(const void *buf, size_t bytes, int dest, int tag) {
#ifdef HAVE_MPI
    if (multi()) {
        for (size_t off = 0; off < bytes; off += MPI_PIECE) {
            size_t n = bytes - off < MPI_PIECE ? bytes - off : MPI_PIECE;
            MPI_Send((const char *)buf + off, (int)n, MPI_BYTE, dest, tag, MPI_COMM_WORLD);
        }
        return 0;
    }
#endif
    (void)buf;
    (void)bytes;
    return mv_error("mpi: send to rank %d (tag %d) with only one rank", dest, tag);
}

int mvead_mpi_recv(void *buf, size_t bytes, int src, int tag) {
#ifdef HAVE_MPI
    if (multi()) {
        for (size_t off = 0; off < bytes; off += MPI_PIECE) {
            size_t n = bytes - off < MPI_PIECE ? bytes - off : MPI_PIECE;
            MPI_Recv((char *)buf + off, (int)n, MPI_BYTE, src, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        }
        return 0;
    }
#endif
    (void)buf;
    (void)bytes;
    return mv_error("mpi: receive from rank %d (tag %d) with only one rank", src, tag);
}

int mvead_mpi_gather_bytes(const void *send, size_t bytes, void **recv, size_t *counts, int root) {
    *recv = NULL;
    int P = mvead_mpi_size(), r = mvead_mpi_rank();
    uint64_t mine = bytes, *all = calloc((size_t)P, sizeof(uint64_t));
    if (!all) mvead_mpi_abort(1);
#ifdef HAVE_MPI
    if (multi()) MPI_Gather(&mine, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, root, MPI_COMM_WORLD);
    else all[0] = mine;
#else
    all[0] = mine;
#endif
    int rc = 0;
    if (r == root) {
        size_t total = 0;
        for (int q = 0; q < P; q++) {
            total += all[q];
            if (counts) counts[q] = all[q];
        }
        char *out = malloc(total ? total : 1);
        if (!out) mvead_mpi_abort(1);   /* the senders are waiting: no way back */
        size_t off = 0;
        for (int q = 0; q < P; q++) {
            if (q == r) memcpy(out + off, send, bytes);
            else mvead_mpi_recv(out + off, all[q], q, TAG_GATHER);
            off += all[q];
        }
        *recv = out;
    } else {
        rc = mvead_mpi_send(send, bytes, root, TAG_GATHER);
    }
    free(all);
    return rc;
}

int mvead_mpi_counter_create(void) {
    g_counter = 0;
#ifdef HAVE_MPI
    if (!multi()) return 0;
    int64_t *base = NULL;
    MPI_Win_allocate(g_world_rank == 0 ? (MPI_Aint)sizeof(int64_t) : 0, sizeof(int64_t), MPI_INFO_NULL,
                     MPI_COMM_WORLD, &base, &g_win);
    if (g_world_rank == 0) *base = 0;
    MPI_Win_lock_all(0, g_win);
    MPI_Win_sync(g_win);
    MPI_Barrier(MPI_COMM_WORLD);   /* nobody fetches before rank 0 has set it */
#endif
    return 0;
}

int64_t mvead_mpi_counter_next(void) {
#ifdef HAVE_MPI
    if (g_win != MPI_WIN_NULL) {
        /* passive target: rank 0 need not take part (it may be busy with its own work) */
        int64_t one = 1, old = 0;
        MPI_Fetch_and_op(&one, &old, MPI_INT64_T, 0, 0, MPI_SUM, g_win);
        MPI_Win_flush(0, g_win);
        return old;
    }
#endif
    return g_counter++;
}

void mvead_mpi_counter_free(void) {
#ifdef HAVE_MPI
    if (g_win != MPI_WIN_NULL) {
        MPI_Win_unlock_all(g_win);
        MPI_Win_free(&g_win);
        g_win = MPI_WIN_NULL;
    }
#endif
    g_counter = 0;
}
