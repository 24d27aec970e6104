"""Shared helpers of the peer benchmarks (bench/peers/*.py), run by bench/run.sh.

Every peer script takes --threads N (the same count as our run; run.sh also
exports OMP_NUM_THREADS before Python starts) and reads MVEAD_BENCH_QUICK. It
prints a human line and one machine record per measurement:

    @bench key=<workload> impl=<pytorch|faiss> threads=N size=<shape> time_s=<s>
           [flops=<useful flops> | bytes=<bytes moved>] held_mb=<MB> rss_mb=<peak MB> rss0_mb=<MB>

the same record format our bench programs print (bench/peers/collect.py joins
them). rss_mb is the process's peak RSS when the workload ends; rss0_mb the RSS
after imports and input creation are excluded (the interpreter and torch
themselves weigh a few hundred MB).
"""
import argparse
import os
import re
import resource
import sys
import time


def quick():
    v = os.environ.get("MVEAD_BENCH_QUICK", "")
    return v not in ("", "0")


def parse_args(extra=None):
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1") or 1))
    if extra:
        extra(p)
    return p.parse_args()


def set_torch_threads(n):
    import torch
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass   # already set (only allowed once per process)


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0   # Linux: KiB


def slug(s):
    """'matmul fwd x@W^T' -> 'matmul_fwd_x_w_t' (must match collect.py)."""
    return re.sub(r"[^a-z0-9]+", "_", s.lower()).strip("_")


def time_median(fn, reps):
    """sorted(times)[reps // 2] of reps runs after one warm-up, exactly as
    bench_kernels picks its median (the upper one for even reps); process CPU
    time instead of wall time when MVEAD_BENCH_CPUTIME is set, as there."""
    clock = time.process_time if os.environ.get("MVEAD_BENCH_CPUTIME", "0") not in ("", "0") else time.perf_counter
    fn()
    ts = []
    for _ in range(reps):
        t0 = clock()
        fn()
        ts.append(clock() - t0)
    return sorted(ts)[reps // 2]


def time_best(fn, reps, warmup=True):
    """best seconds of reps runs (after one warm-up unless warmup=False)."""
    if warmup:
        fn()
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def record(key, impl, threads, size, time_s, flops=None, nbytes=None, held_mb=None, rss0_mb=None, note=None):
    rss = peak_rss_mb()
    size = size.replace(" ", "")   # records are space-separated (collect.py strips spaces alike)
    parts = [f"@bench key={key}", f"impl={impl}", f"threads={threads}", f"size={size}", f"time_s={time_s:.6g}"]
    if flops is not None:
        parts.append(f"flops={flops:.6g}")
    if nbytes is not None:
        parts.append(f"bytes={nbytes:.6g}")
    if held_mb is not None:
        parts.append(f"held_mb={held_mb:.1f}")
    parts.append(f"rss_mb={rss:.1f}")
    if rss0_mb is not None:
        parts.append(f"rss0_mb={rss0_mb:.1f}")
    if note:
        parts.append(f"note={note}")
    rate = ""
    if flops:
        rate = f"{flops / time_s * 1e-9:9.1f} GFLOP/s"
    elif nbytes:
        rate = f"{nbytes / time_s * 1e-9:9.2f} GB/s"
    print(f"  {impl:8s} {key:34s} {size:22s} {time_s:10.4f} s {rate:>16s}  peak RSS {rss:8.1f} MB")
    print(" ".join(parts))
    sys.stdout.flush()
