/* mpi: the thin MPI layer that lets `mpirun -np P mvead <stage>` spread one
 * experiment over the CPU nodes of a cluster (docs/cluster.md).
 *
 * Everything the stages need goes through here, so the stages never include
 * <mpi.h>: rank/size, barrier, broadcast, sums of float/double buffers in a
 * FIXED rank order (gathered to rank 0, added 0, 1, ..., P-1 in double,
 * broadcast back: the result does not depend on MPI's reduction tree), an
 * element-wise minimum, point-to-point byte messages, a gather of
 * variable-size byte buffers and a shared work counter (dynamic scheduling
 * of the ablation grid).
 *
 * Without MPI (configure --without-mpi, or a build with MPI that was not
 * started by mpirun/srun) every call is the single-process fallback: rank 0
 * of 1, collectives are copies or no-ops. MPI is only initialised when a
 * launcher's environment is present (OMPI_COMM_WORLD_SIZE, PMIX_RANK,
 * PMI_RANK, PMI_SIZE) or MVEAD_MPI=1, so a plain `mvead ...` never pays for
 * MPI_Init.
 *
 * "Local mode" (mvead_mpi_set_local) makes the calls act as rank 0 of 1
 * while a rank runs a piece of work on its own (one ablation variant), so
 * the stages' collectives do not pair up with another rank's.
 *
 * Any MPI failure aborts the whole job (MPI's default error handler): a
 * half-finished collective cannot be recovered from. Byte counts may exceed
 * 2 GiB (messages are split).
 *
 * Called by mvead/cli/main.c (init/finalize, output routing), the stages
 * (mvead/run/extract_stage.c, train.c, bank_stage.c, eval_stage.c), mvead/cli/ablate.c
 * and tests/mpi_test.sh (through the mvead program). */
#ifndef MVEAD_MPI_H
#define MVEAD_MPI_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Initialises MPI when launched by mpirun/srun (see above). Returns 0; -1
 * with mv_error if MPI was requested but could not start. Call once, first. */
int mvead_mpi_init(int *argc, char ***argv);
/* MPI_Finalize when initialised; safe to call always. */
void mvead_mpi_finalize(void);
/* Ends every rank of the job with exit code `code` (a plain exit(code) without MPI). */
void mvead_mpi_abort(int code) __attribute__((noreturn));
/* True when built with MPI and MPI was initialised (even with one rank). */
bool mvead_mpi_active(void);

/* Rank and size of the current communicator (0 and 1 in local mode or without MPI). */
int mvead_mpi_rank(void);
int mvead_mpi_size(void);
/* Rank and size of the whole job, whatever the mode. */
int mvead_mpi_world_rank(void);
int mvead_mpi_world_size(void);
/* Local mode on/off; returns the previous setting. */
bool mvead_mpi_set_local(bool local);

/* Contiguous block of [0, n) for this rank: ranks get floor/ceil(n/P), in rank order. */
void mvead_mpi_block(int64_t n, int64_t *begin, int64_t *end);
/* Block of rank r of P (the same split, for the receiver side). */
void mvead_mpi_block_of(int64_t n, int r, int P, int64_t *begin, int64_t *end);

int mvead_mpi_barrier(void);
/* buf[bytes] from root to every rank. */
int mvead_mpi_bcast(void *buf, size_t bytes, int root);

/* In-place sum over ranks of buf[n], identical on every rank, added in rank
 * order 0..P-1 in double (then rounded once for f32): bitwise independent of
 * the MPI implementation's reduction tree. With one rank: unchanged. */
int mvead_mpi_allreduce_sum_f32(float *buf, int64_t n);
int mvead_mpi_allreduce_sum_f64(double *buf, int64_t n);
/* In-place element-wise minimum over ranks; the result on root only (other
 * ranks' buffers are left as they were). Exact (min does not round). */
int mvead_mpi_reduce_min_f32(float *buf, int64_t n, int root);
/* Element-wise max over ranks of int64 values, result on every rank
 * (agreement on flags and counts). */
int mvead_mpi_allreduce_max_i64(int64_t *buf, int64_t n);

/* Blocking point-to-point messages of `bytes` bytes (tag >= 0). */
int mvead_mpi_send(const void *buf, size_t bytes, int dest, int tag);
int mvead_mpi_recv(void *buf, size_t bytes, int src, int tag);

/* Gathers every rank's send[bytes] (sizes may differ) to root: on root,
 * *recv = malloc'd concatenation in rank order and counts[r] (an array of
 * size() entries the caller provides, may be NULL) the byte count of rank r;
 * on the other ranks *recv = NULL. Returns 0 or -1 (out of memory on root). */
int mvead_mpi_gather_bytes(const void *send, size_t bytes, void **recv, size_t *counts, int root);

/* Shared work counter for dynamic scheduling: create (collective), then each
 * rank calls next() whenever it is free and gets 0, 1, 2, ... (each value
 * once over the job, first come first served); free (collective). Without
 * MPI/in local mode a plain counter. At most one counter at a time. */
int mvead_mpi_counter_create(void);
int64_t mvead_mpi_counter_next(void);
void mvead_mpi_counter_free(void);

#ifdef __cplusplus
}
#endif
#endif
