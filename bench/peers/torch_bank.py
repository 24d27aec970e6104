"""PyTorch CPU peer of bench/bench_bank.c: the memory-bank pieces, float32,
dim 768, the same algorithms and sizes, each in its own process (run.sh calls
this script once per workload so the peak RSS belongs to that workload):

  knn      exact nearest neighbour of n_query queries in an n_bank bank:
           query blocks of 1024, ||q||^2 + ||b||^2 - 2 q b^T by addmm, min over
           the bank, sqrt of the winner (what torch.cdist + min does, without
           the full n_query x n_bank matrix)
  kmeans   k-means++ (D^2 sampling, one candidate per step), K = 20, then 10
           Lloyd iterations (GEMM assignment, index_add_ means; empty cluster
           keeps its centre) and a final assignment; init and Lloyd timed apart
  coreset  greedy k-center to 10%: start at index 0, repeatedly take the point
           farthest from the chosen set; each selection is one pass over X
           (||x||^2 - 2 X c + ||c||^2 by addmv, running minimum, argmax).
           Default mode times the first 200 selections of n = 200k (as
           bench_bank; the full run is extrapolated), quick mode runs the full
           10% of 20k.

Usage: torch_bank.py --threads N --what knn|kmeans|coreset [--n-bank M] [--n-query Q]
Sizes default to bench_bank's (quick: 2000 x 20000, kmeans 20000, coreset
20000; else 10000 x 100000, 100000, 200000). One timed run each, as bench_bank.
"""
import time

import common

CORESET_PROBE = 200


def extra(p):
    q = common.quick()
    p.add_argument("--what", required=True, choices=["knn", "kmeans", "coreset"])
    p.add_argument("--n-bank", type=int, default=20000 if q else 100000)
    p.add_argument("--n-query", type=int, default=2000 if q else 10000)
    p.add_argument("--n-kmeans", type=int, default=20000 if q else 100000)
    p.add_argument("--n-coreset", type=int, default=20000 if q else 200000)


args = common.parse_args(extra)
import torch  # noqa: E402

common.set_torch_threads(args.threads)
torch.manual_seed(0)
DIM, nt = 768, args.threads
MB = 1.0 / 1048576.0


def knn(q, bank, block=1024):
    bank_sq = (bank * bank).sum(1)
    dist = torch.empty(q.shape[0])
    idx = torch.empty(q.shape[0], dtype=torch.int64)
    for s in range(0, q.shape[0], block):
        qb = q[s:s + block]
        d2 = torch.addmm(bank_sq[None, :], qb, bank.t(), beta=1.0, alpha=-2.0)
        m, i = d2.min(1)
        dist[s:s + block] = (m + (qb * qb).sum(1)).clamp_min(0).sqrt()
        idx[s:s + block] = i
    return dist, idx


def kmeanspp(x, k, gen):
    n = x.shape[0]
    sq = (x * x).sum(1)
    centers = torch.empty(k, x.shape[1])
    first = int(torch.randint(0, n, (1,), generator=gen))
    centers[0] = x[first]
    d2 = (torch.addmv(sq, x, centers[0], alpha=-2.0) + centers[0].dot(centers[0])).clamp_min(0)
    for c in range(1, k):
        i = int(torch.multinomial(d2, 1, generator=gen))
        centers[c] = x[i]
        d2 = torch.minimum(d2, (torch.addmv(sq, x, centers[c], alpha=-2.0) + centers[c].dot(centers[c])).clamp_min(0))
    return centers


def assign(x, sq, centers):
    d2 = torch.addmm((centers * centers).sum(1)[None, :], x, centers.t(), alpha=-2.0) + sq[:, None]
    return d2.argmin(1)


def lloyd(x, centers, iters):
    sq = (x * x).sum(1)
    k = centers.shape[0]
    for _ in range(iters):
        a = assign(x, sq, centers)
        sums = torch.zeros(k, x.shape[1], dtype=torch.float64).index_add_(0, a, x.double())
        counts = torch.bincount(a, minlength=k)
        nonempty = counts > 0
        centers[nonempty] = (sums[nonempty] / counts[nonempty, None]).float()
    return centers, assign(x, sq, centers)


def coreset(x, m, start=0):
    sq = (x * x).sum(1)
    sel = [start]
    c = x[start]
    d2 = (torch.addmv(sq, x, c, alpha=-2.0) + c.dot(c)).clamp_min(0)
    for _ in range(m - 1):
        i = int(torch.argmax(d2))
        sel.append(i)
        c = x[i]
        torch.minimum(d2, torch.addmv(sq, x, c, alpha=-2.0).add_(c.dot(c)), out=d2)
    return sel


print(f"## torch_bank {args.what} (torch {torch.__version__}, f32, {nt} threads{', quick' if common.quick() else ''})")
if args.what == "knn":
    bank, q = torch.randn(args.n_bank, DIM), torch.randn(args.n_query, DIM)
    rss0 = common.peak_rss_mb()
    t0 = time.perf_counter()
    knn(q, bank)
    t = time.perf_counter() - t0
    common.record("knn", "pytorch", nt, f"{args.n_query}x{args.n_bank}", t,
                  flops=2.0 * args.n_query * args.n_bank * DIM, held_mb=(args.n_bank + args.n_query) * DIM * 4 * MB,
                  rss0_mb=rss0)
elif args.what == "kmeans":
    n, k, iters = args.n_kmeans, 20, 10
    x = torch.randn(n, DIM)
    gen = torch.Generator().manual_seed(7)
    rss0 = common.peak_rss_mb()
    t0 = time.perf_counter()
    c = kmeanspp(x, k, gen)
    t = time.perf_counter() - t0
    common.record("kmeans_init", "pytorch", nt, f"K{k}xn{n}", t, flops=3.0 * k * n * DIM,
                  held_mb=n * DIM * 4 * MB, rss0_mb=rss0)
    t0 = time.perf_counter()
    lloyd(x, c, iters)
    t = time.perf_counter() - t0
    common.record("kmeans_lloyd", "pytorch", nt, f"K{k}xn{n}", t,
                  flops=(iters + 1) * 2.0 * n * k * DIM + iters * n * DIM, held_mb=n * DIM * 4 * MB, rss0_mb=rss0)
else:
    n = args.n_coreset
    m_full = max(1, int(0.1 * n))   # floor, as mvs_coreset_size
    m_run = m_full if common.quick() else CORESET_PROBE
    x = torch.randn(n, DIM)
    rss0 = common.peak_rss_mb()
    t0 = time.perf_counter()
    coreset(x, m_run)
    t = time.perf_counter() - t0
    common.record("coreset", "pytorch", nt, f"{m_run}of{m_full}xn{n}", t, flops=3.0 * m_run * n * DIM,
                  held_mb=(n * DIM * 4 + n * 8) * MB, rss0_mb=rss0)
