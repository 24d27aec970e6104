"""FAISS peer of bench/bench_bank.c's exact nearest-neighbour search:
faiss.IndexFlatL2 (exact L2, BLAS inside for large query batches), k = 1,
float32, dim 768, thread count set by faiss.omp_set_num_threads.

Timed: index creation + add + search (ours computes the bank norms inside the
timed call too); the search alone is printed beside it. One run, as bench_bank.

Usage: faiss_flat.py --threads N [--n-bank M] [--n-query Q]
(defaults as bench_bank: quick 2000 x 20000, else 10000 x 100000)
"""
import time

import common


def extra(p):
    q = common.quick()
    p.add_argument("--n-bank", type=int, default=20000 if q else 100000)
    p.add_argument("--n-query", type=int, default=2000 if q else 10000)


args = common.parse_args(extra)
import faiss  # noqa: E402
import numpy as np  # noqa: E402

faiss.omp_set_num_threads(args.threads)
DIM = 768
rng = np.random.default_rng(0)
bank = rng.standard_normal((args.n_bank, DIM), dtype=np.float32)
q = rng.standard_normal((args.n_query, DIM), dtype=np.float32)
rss0 = common.peak_rss_mb()
print(f"## faiss_flat (faiss {faiss.__version__}, IndexFlatL2, {args.threads} threads)")
t0 = time.perf_counter()
index = faiss.IndexFlatL2(DIM)
index.add(bank)
t1 = time.perf_counter()
dist, idx = index.search(q, 1)
t2 = time.perf_counter()
print(f"  faiss    add {t1 - t0:.4f} s, search {t2 - t1:.4f} s")
common.record("knn", "faiss", args.threads, f"{args.n_query}x{args.n_bank}", t2 - t0,
              flops=2.0 * args.n_query * args.n_bank * DIM, held_mb=(args.n_bank + args.n_query) * DIM * 4 / 1048576.0,
              rss0_mb=rss0)
