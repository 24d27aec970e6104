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
  clustered rows (kmeans: k-means++ only; coreset): the same workloads on
           bench_bank's clustered_features, value for value (the same
           splitmix64 recipe in numpy; both sides print x[0], x[1], x[last]).
           This peer's cost does not depend on the data (every pass reads
           all of X); ours does (rows the triangle inequality rules out are
           skipped), which is what these rows measure. The clustered coreset
           is extrapolated from the same 200 selections in default mode
           (exact here: every pass costs the same), ours runs whole.

Usage: torch_bank.py --threads N --what knn|kmeans|coreset [--n-bank M] [--n-query Q]
                     [--data iid|clustered|both]
Sizes default to bench_bank's (quick: 2000 x 20000, kmeans 20000, coreset
20000; else 10000 x 100000, 100000, 200000). One timed run each, as bench_bank.
"""
import time

import numpy as np

import common

CORESET_PROBE = 200


def extra(p):
    q = common.quick()
    p.add_argument("--what", required=True, choices=["knn", "kmeans", "coreset"])
    p.add_argument("--n-bank", type=int, default=20000 if q else 100000)
    p.add_argument("--n-query", type=int, default=2000 if q else 10000)
    p.add_argument("--n-kmeans", type=int, default=20000 if q else 100000)
    p.add_argument("--n-coreset", type=int, default=20000 if q else 200000)
    p.add_argument("--data", default="both", choices=["iid", "clustered", "both"],
                   help="kmeans/coreset: iid rows (torch.randn), bench_bank's clustered rows, or both")


args = common.parse_args(extra)
import torch  # noqa: E402

common.set_torch_threads(args.threads)
torch.manual_seed(0)
DIM, nt = 768, args.threads
MB = 1.0 / 1048576.0


# ---- bench_bank's data recipe (bench/bench_bank.c), value for value ----
GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def stream_uniform(seed, j):
    """draws j (uint64 array) of the counter-based splitmix64 stream `seed`, in [0, 1)."""
    z = np.uint64(seed) + (j + np.uint64(1)) * GOLDEN
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def random_features(count, seed, chunk=1 << 21):
    out = np.empty(count, np.float32)
    for s in range(0, count, chunk):
        c = min(chunk, count - s)
        u = stream_uniform(seed, np.arange(4 * s, 4 * (s + c), dtype=np.uint64)).reshape(c, 4)
        acc = ((u[:, 0] + u[:, 1]) + u[:, 2]) + u[:, 3]
        out[s:s + c] = ((acc - 2.0) * 1.7320508075688772).astype(np.float32)
    return out


CLUSTERS = 100


def clustered_features(n, dim, seed, rows=1 << 14):
    mu = random_features(CLUSTERS * dim, seed).reshape(CLUSTERS, dim).astype(np.float64)
    sigma = 0.2 + 0.2 * stream_uniform(seed + 1, np.arange(CLUSTERS, dtype=np.uint64))
    z = (stream_uniform(seed + 2, np.arange(n, dtype=np.uint64)) * CLUSTERS).astype(np.int64)
    x = random_features(n * dim, seed + 3).reshape(n, dim)
    for r in range(0, n, rows):
        zr = z[r:r + rows]
        x[r:r + rows] = (mu[zr] + sigma[zr, None] * x[r:r + rows].astype(np.float64)).astype(np.float32)
    print(f"clustered data n={n}: x[0] = {x[0, 0]:.9g}, x[1] = {x[0, 1]:.9g}, x[last] = {x[-1, -1]:.9g}")
    return torch.from_numpy(x)


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
    if args.data != "clustered":
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
        del x
    if args.data != "iid":
        x = clustered_features(n, DIM, 21)
        gen = torch.Generator().manual_seed(7)
        rss0 = common.peak_rss_mb()
        t0 = time.perf_counter()
        kmeanspp(x, k, gen)
        t = time.perf_counter() - t0
        common.record("kmeans_init_clustered", "pytorch", nt, f"K{k}xn{n}", t, flops=3.0 * k * n * DIM,
                      held_mb=n * DIM * 4 * MB, rss0_mb=rss0)
else:
    n = args.n_coreset
    m_full = max(1, int(0.1 * n))   # floor, as mvs_coreset_size
    m_run = m_full if common.quick() else CORESET_PROBE
    for data in (["iid"] if args.data == "iid" else ["clustered"] if args.data == "clustered" else ["iid", "clustered"]):
        x = torch.randn(n, DIM) if data == "iid" else clustered_features(n, DIM, 23)
        rss0 = common.peak_rss_mb()
        t0 = time.perf_counter()
        coreset(x, m_run)
        t = time.perf_counter() - t0
        common.record("coreset" if data == "iid" else "coreset_clustered", "pytorch", nt, f"{m_run}of{m_full}xn{n}", t,
                      flops=3.0 * m_run * n * DIM, held_mb=(n * DIM * 4 + n * 8) * MB, rss0_mb=rss0)
        del x
