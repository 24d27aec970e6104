"""Joins every figure of one bench/run.sh run into ONE table.

Usage: collect.py OUTDIR RESULTS_MD RESULTS_CSV

OUTDIR holds one text file per program run, named <impl>_<program>_t<threads>.txt
(impl: ours | peer), and for our programs a /usr/bin/time -v report beside it
(<same name>.time), plus skipped.txt (one line per peer that could not run).
Records come from two sources:
  - "@bench key=... impl=... threads=... size=... time_s=... [flops=|bytes=]
    held_mb=... rss_mb=... [rss0_mb=...]" lines (bench_eam, bench_stream and
    every peer script);
  - the human tables of bench_kernels, bench_vit and bench_bank, parsed here
    (their formats as of this writing; a line that no longer parses is
    reported as missing, never guessed). bench_bank's clustered rows become
    kmeans_init_clustered and coreset_clustered (+ coreset_clustered_full:
    ours run whole against the peer's probe extrapolated, default mode).
Standard library only (runs under any python3).
"""
import csv
import glob
import math
import os
import re
import sys
from collections import OrderedDict


def slug(s):
    return re.sub(r"[^a-z0-9]+", "_", s.lower()).strip("_")


def num(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


def parse_record(line):
    rec = {}
    for tok in line.split()[1:]:
        if "=" in tok:
            k, v = tok.split("=", 1)
            rec[k] = v
    for k in ("time_s", "flops", "bytes", "held_mb", "rss_mb", "rss0_mb"):
        if k in rec:
            rec[k] = num(rec[k])
    rec["threads"] = int(rec.get("threads", 0))
    return rec


def time_rss_mb(path):
    """peak RSS (MB) from a /usr/bin/time -v report, or None."""
    try:
        with open(path) as f:
            for line in f:
                m = re.search(r"Maximum resident set size \(kbytes\):\s*(\d+)", line)
                if m:
                    return int(m.group(1)) / 1024.0
    except OSError:
        pass
    return None


def parse_kernels(text, threads, rss):
    out = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 4 or not re.match(r"^[0-9.]+$", cells[2]):
            continue
        name, shape, ms, rate = cells[0], cells[1].replace(" ", ""), float(cells[2]), cells[3]
        t = ms * 1e-3
        rec = {"key": "kern_" + slug(name + " " + shape), "impl": "ours", "threads": threads, "size": shape,
               "time_s": t, "rss_mb": rss, "label": name}
        if len(cells) > 5 and re.match(r"^[0-9.]+$", cells[5]):
            rec["raw_ratio"] = float(cells[5])   # our time / raw cblas time, measured alternately
        m = re.match(r"([0-9.]+)\s*(GFLOP/s|GB/s)", rate)
        if m:
            if m.group(2) == "GFLOP/s":
                rec["flops"] = float(m.group(1)) * 1e9 * t
            else:
                rec["bytes"] = float(m.group(1)) * 1e9 * t
        rec["held_mb"] = kernel_held_mb(rec)
        out.append(rec)
    return out


def kernel_held_mb(rec):
    """bytes a kernel must hold: its inputs and outputs (the bytes counted for
    memory-bound kernels; A, B and C for a matmul; the widest pass of attention)."""
    if rec.get("bytes"):
        return rec["bytes"] / 1048576.0
    dims = [int(x) for x in re.findall(r"\d+", rec["size"])]
    if len(dims) == 3:                                   # M x K x N linear layer
        m, k, n = dims
        return 4.0 * (m * k + n * k + m * n) / 1048576.0
    if len(dims) >= 4:                                   # B x T x T x d attention
        b, t, d = dims[0], dims[1], dims[-1] if len(dims) == 4 else dims[2]
        return 4.0 * b * (2 * t * d + t * t) / 1048576.0
    return None


def parse_vit(text, threads, rss):
    m = re.search(r"batch (\d+) x 3 x (\d+) x (\d+), blocks 1\.\.(\d+)", text)
    if not m:
        return []
    size = f"B{m.group(1)}x{m.group(2)}px_blocks{m.group(4)}"
    b = int(m.group(1))

    def val(label):
        mm = re.search(r"^\s*" + re.escape(label) + r"\s+([0-9.eE+-]+)\s*$", text, re.M)
        return float(mm.group(1)) if mm else None

    out = []
    best, gflops = val("no-grad forward, best (s)"), val("no-grad achieved GFLOP/s")
    weights, per_img = val("model weights RSS (MiB)"), val("peak RSS no-grad / image (MiB)")
    if best and gflops:
        rss_fwd = weights + per_img * b if weights is not None and per_img is not None else None
        out.append({"key": "vit_fwd", "impl": "ours", "threads": threads, "size": size, "time_s": best,
                    "flops": gflops * 1e9 * best, "rss_mb": rss_fwd})
        fb = val("forward+backward, best (s)")
        if fb:
            out.append({"key": "vit_fwdbwd", "impl": "ours", "threads": threads, "size": size, "time_s": fb,
                        "flops": 3 * gflops * 1e9 * best, "rss_mb": val("peak RSS total (MiB)") or rss})
    return out


BANK_LINE = re.compile(r"^(?P<label>\S.*?)\s+(?P<t>[0-9.]+) s\s+(?P<g>[0-9.]+) GFLOP/s\s+held\s+(?P<held>[0-9.]+) MB"
                       r"\s+peak RSS\s+(?P<rss>[0-9.]+) MB")


def parse_bank(text, threads, rss):
    out, km_size, core_n = [], None, "?"
    for line in text.splitlines():
        m = BANK_LINE.match(line)
        if not m:
            continue
        label, t = m.group("label"), float(m.group("t"))
        rec = {"impl": "ours", "threads": threads, "time_s": t, "flops": float(m.group("g")) * 1e9 * t,
               "held_mb": float(m.group("held")), "rss_mb": float(m.group("rss"))}
        mm = re.match(r"knn (\d+)q x (\d+) bank", label)
        if mm:
            rec.update(key="knn", size=f"{mm.group(1)}x{mm.group(2)}")
        elif re.match(r"kmeans\+\+ init clustered", label):
            mm = re.search(r"K=(\d+) n=(\d+)", label)
            rec.update(key="kmeans_init_clustered", size=f"K{mm.group(1)}xn{mm.group(2)}" if mm else "?")
        elif re.match(r"kmeans\+\+ init", label):
            mm = re.search(r"K=(\d+) n=(\d+)", label)
            km_size = f"K{mm.group(1)}xn{mm.group(2)}" if mm else "?"
            rec.update(key="kmeans_init", size=km_size)
        elif label.startswith("kmeans Lloyd"):
            rec.update(key="kmeans_lloyd", size=km_size or "?")
        elif label.startswith("coreset exact clustered"):
            mm = re.search(r"(\d+) of (\d+) sel, n=(\d+)", label)
            rec.update(key="coreset_clustered",
                       size=f"{mm.group(1)}of{mm.group(2)}xn{mm.group(3)}" if mm else "?")
        elif label.startswith("coreset exact"):
            mm = re.search(r"(\d+) of (\d+) sel, n=(\d+)", label)
            rec.update(key="coreset", size=f"{mm.group(1)}of{mm.group(2)}xn{mm.group(3)}" if mm else "?")
            core_n = mm.group(3) if mm else "?"
        elif label.startswith("coreset proj"):
            mm = re.search(r"proj (\d+)-d (\d+) of (\d+) sel", label)
            rec.update(key=f"coreset_proj{mm.group(1)}" if mm else "coreset_proj",
                       size=f"{mm.group(2)}of{mm.group(3)}xn{core_n}" if mm else "?")
        else:
            continue
        out.append(rec)
    return out


def full_run(r, key):
    """a coreset probe (size <run>of<full>xn<n>, run < full) scaled to the full
    run as `key`, or None when r ran whole."""
    mm = re.match(r"(\d+)of(\d+)xn(\d+)", r.get("size", ""))
    if not mm or int(mm.group(1)) >= int(mm.group(2)):
        return None
    f = int(mm.group(2)) / int(mm.group(1))
    e = dict(r, key=key, size=f"{mm.group(2)}xn{mm.group(3)}", time_s=r["time_s"] * f)
    if r.get("flops"):
        e["flops"] = r["flops"] * f
    return e


def load(outdir):
    recs, notes = [], []
    for path in sorted(glob.glob(os.path.join(outdir, "*.txt"))):
        base = os.path.basename(path)
        if base == "skipped.txt":
            with open(path) as f:
                notes += [line.strip() for line in f if line.strip()]
            continue
        m = re.match(r"(ours|peer)_(.+)_t(\d+)\.txt$", base)
        if not m:
            continue
        prog, threads = m.group(2), int(m.group(3))
        with open(path, errors="replace") as f:
            text = f.read()
        rss = time_rss_mb(path[:-4] + ".time")
        got = [parse_record(line) for line in text.splitlines() if line.startswith("@bench ")]
        for r in got:
            if r.get("rss_mb") is None:
                r["rss_mb"] = rss
        if m.group(1) == "ours":
            if prog.startswith("bench_kernels"):
                got += parse_kernels(text, threads, rss)
            elif prog.startswith("bench_vit"):
                got += parse_vit(text, threads, rss)
            elif prog.startswith("bench_bank"):
                got += parse_bank(text, threads, rss)
        if not got:
            notes.append(f"{base}: no figures found (program failed or its output format changed)")
        recs += got
    # full 10% coreset, extrapolated from the probe selections (both sides alike)
    recs += [e for e in (full_run(r, "coreset_full_extrapolated") for r in recs if r.get("key") == "coreset") if e]
    # clustered coreset: ours runs whole (its pruned passes do not cost the same
    # each), the peer's probe is extrapolated (its passes do): both compared as
    # coreset_clustered_full
    clu = [r for r in recs if r.get("key") == "coreset_clustered"]
    probes = [e for e in (full_run(r, "coreset_clustered_full") for r in clu) if e]
    sizes = {e["size"] for e in probes}
    recs += probes
    for r in clu:
        mm = re.match(r"(\d+)of(\d+)xn(\d+)", r.get("size", ""))
        if mm and mm.group(1) == mm.group(2) and f"{mm.group(2)}xn{mm.group(3)}" in sizes:
            recs.append(dict(r, key="coreset_clustered_full", size=f"{mm.group(2)}xn{mm.group(3)}"))
    return recs, notes


ORDER = ["limit_sgemm", "limit_copy", "kern_", "vit_fwd", "vit_fwdbwd", "eam_fwdbwd", "eam_step", "knn",
         "kmeans_init", "kmeans_lloyd", "kmeans_init_clustered", "coreset", "coreset_full_extrapolated",
         "coreset_clustered", "coreset_clustered_full", "coreset_proj"]


def order_of(key):
    for i, p in enumerate(ORDER):
        if key == p or (p.endswith("_") and key.startswith(p)) or (p == "coreset_proj" and key.startswith(p)):
            return i
    return len(ORDER)


def display(key, size):
    """kernel keys carry their shape (kern_<name>_<shape>): show the name only."""
    tail = "_" + slug(size)
    return key[:-len(tail)] if key.startswith("kern_") and key.endswith(tail) else key


def size_sort_key(size):
    return [int(x) for x in re.findall(r"\d+", size)]


def fmt(x, spec):
    return "" if x is None else format(x, spec)


def check_group(title, figs):
    """one target line: figs = [(label, met, shown)]; an absent figure is named, never passed."""
    if not figs:
        return f"- {title}: no figures in this run", 0, 0
    miss = [f"{lab} {shown}" for lab, ok, shown in figs if not ok]
    line = f"- {title}: {len(figs) - len(miss)}/{len(figs)} met"
    line += f"; **missed**: {', '.join(miss)}" if miss else " (" + ", ".join(f"{lab} {shown}" for lab, _, shown in figs[:4]) + (", ..." if len(figs) > 4 else "") + ")"
    return line, len(figs) - len(miss), len(figs)


def targets(rows, ours, tmax):
    """The issues' speed and memory targets, each checked against this run's
    figures (ratios within one run only). One table of targets: title, the
    rows it reads, the test."""
    def vs(peer, pred, t=None):   # rows with a ratio against peer
        return [r for r in rows if r["peer"] == peer and r["ratio"] is not None and pred(r)
                and (t is None or r["threads"] == t)]

    def lab(r):
        return f"{r['workload']} {r['size']} @{r['threads']}t"

    def ratio_at_least(rs, lim):
        return [(lab(r), r["ratio"] >= lim, f"{r['ratio']:.2f}x") for r in rs]

    kern = ("kern_softmax", "kern_layernorm", "kern_gelu")
    banks = ("coreset", "coreset_clustered_full", "kmeans_init", "kmeans_init_clustered")
    G = []
    G.append(("issue 15: softmax / LayerNorm / GELU >= 1.0x PyTorch, every thread count",
              ratio_at_least(vs("pytorch", lambda r: r["workload"].startswith(kern)), 1.0)))
    mm = []
    for (key, size, t), o in ours.items():
        if key.startswith(("kern_matmul", "kern_attn")) and o.get("raw_ratio") is not None:
            lim = 1.03 if t == 1 else 1.05
            mm.append((f"{display(key, size)} {size} @{t}t", o["raw_ratio"] <= lim, f"{o['raw_ratio']:.2f} (<= {lim})"))
    G.append(("issue 15: matmul time / raw cblas <= 1.03 at 1 thread, <= 1.05 at more", mm))
    vit_f = [r for r in rows if r["threads"] == tmax and r["workload"] == "vit_fwd" and r["ours_frac"] is not None][:1]
    G.append(("issue 15: ViT forward >= 85% of the sgemm peak",
              [(lab(r), r["ours_frac"] >= 0.85, f"{100 * r['ours_frac']:.0f}%") for r in vit_f]))
    G.append(("issue 15: ViT forward >= 1.6x PyTorch",
              ratio_at_least(vs("pytorch", lambda r: r["workload"] == "vit_fwd", tmax), 1.6)))
    G.append(("issue 15: ViT forward + backward >= 1.5x PyTorch",
              ratio_at_least(vs("pytorch", lambda r: r["workload"] == "vit_fwdbwd", tmax), 1.5)))
    G.append(("issue 15: exact coreset and k-means++ >= 1.0x PyTorch",
              ratio_at_least(vs("pytorch", lambda r: r["workload"] in banks, tmax), 1.0)))
    eam = []   # issue 14 set them at the method's size: the largest N run (B 8, N 256 by default)
    eam_sizes = sorted({s for (k, s, t) in ours if k.startswith("eam_")}, key=size_sort_key)
    if eam_sizes:
        big = eam_sizes[-1]
        for key, lim in (("eam_step", 4.0), ("eam_fwdbwd", 3.0)):
            o, d = ours.get((key, big, tmax)), ours.get((key + "_dense", big, tmax))
            if o and d:
                q = d["time_s"] / o["time_s"]
                eam.append((f"{key} dense / sparse {big} @{tmax}t", q >= lim, f"{q:.2f}x (>= {lim:g}x)"))
        o = ours.get(("eam_step", big, tmax))
        if o and o.get("rss_mb"):
            eam.append((f"eam_step sparse peak RSS {big} @{tmax}t", o["rss_mb"] <= 1536, f"{o['rss_mb']:.0f} MB (<= 1536)"))
    G.append(("issue 14: EAM step dense/sparse >= 4x, fwd+bwd >= 3x, step RSS <= 1.5 GB", eam))
    G.append((">= 1.0x FAISS on exact search", ratio_at_least(vs("faiss", lambda r: True, tmax), 1.0)))
    G.append((">= 70% of the sgemm peak for the ViT forward",
              [(lab(r), r["ours_frac"] >= 0.7, f"{100 * r['ours_frac']:.0f}%") for r in vit_f]))
    G.append((f">= 1.0x PyTorch on every row at {tmax} threads",
              ratio_at_least(vs("pytorch", lambda r: True, tmax), 1.0)))
    L = ["\n## Targets (from the issues; reported, not asserted)\n"]
    met = total = 0
    for title, figs in G:
        line, m, n = check_group(title, figs)
        L.append(line)
        met, total = met + m, total + n
    L.append(f"\n{met} of {total} checked figures met their targets in this run.")
    return L


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: collect.py OUTDIR RESULTS_MD RESULTS_CSV")
    outdir, md_path, csv_path = sys.argv[1:]
    recs, notes = load(outdir)
    limits = {}
    for r in recs:
        if r.get("impl") == "machine" and r.get("time_s"):
            rate = (r.get("flops") or r.get("bytes") or 0) / r["time_s"]
            limits[(r["key"], r["threads"])] = rate

    def frac(r):
        if not r or not r.get("time_s"):
            return None, ""
        if r.get("flops"):
            lim = limits.get(("limit_sgemm", r["threads"]))
            return (r["flops"] / r["time_s"] / lim if lim else None), "sgemm"
        if r.get("bytes"):
            lim = limits.get(("limit_copy", r["threads"]))
            return (r["bytes"] / r["time_s"] / lim if lim else None), "copy"
        return None, ""

    work = [r for r in recs if r.get("impl") != "machine" and r.get("time_s")]
    # first seen record wins for duplicates
    ours, peers = OrderedDict(), OrderedDict()
    for r in work:
        k = (r["key"], r["size"], r["threads"])
        if r["impl"] == "ours":
            ours.setdefault(k, r)
        else:
            peers.setdefault(k + (r["impl"],), r)
    keys = sorted({(k[0], k[1]) for k in list(ours) + list(peers)},
                  key=lambda ks: (order_of(ks[0]), ks[0] if not ks[0].startswith("kern_") else "", size_sort_key(ks[1])))
    # kernels keep bench_kernels' own order
    kern_order = [k[0] for k in ours if k[0].startswith("kern_")]
    keys.sort(key=lambda ks: (order_of(ks[0]), kern_order.index(ks[0]) if ks[0] in kern_order else 0,
                              ks[0] if not ks[0].startswith("kern_") else "", size_sort_key(ks[1])))
    threads_all = sorted({k[2] for k in list(ours) + list(peers)})
    impls_of = {}
    for k in peers:
        impls_of.setdefault((k[0], k[1]), []).append(k[3])

    rows = []   # one per (threads, key, size, peer)
    for t in threads_all:
        for key, size in keys:
            o = ours.get((key, size, t))
            imps = sorted(set(impls_of.get((key, size), []))) or [None]
            for imp in imps:
                p = peers.get((key, size, t, imp)) if imp else None
                if not o and not p:
                    continue
                fo, lim = frac(o)
                fp, limp = frac(p)
                rows.append({
                    "threads": t, "workload": display(key, size), "size": size, "peer": imp or "-",
                    "ours_s": o["time_s"] if o else None, "peer_s": p["time_s"] if p else None,
                    "ratio": p["time_s"] / o["time_s"] if o and p else None,
                    "limit": lim or limp, "ours_frac": fo, "peer_frac": fp,
                    "ours_rss_mb": o.get("rss_mb") if o else None, "peer_rss_mb": p.get("rss_mb") if p else None,
                    "peer_rss0_mb": p.get("rss0_mb") if p else None,
                    "held_mb": (o or {}).get("held_mb") or (p or {}).get("held_mb")
                               or (kernel_held_mb(o or p) if key.startswith("kern_") else None),
                })

    with open(csv_path, "w", newline="") as f:
        cols = ["threads", "workload", "size", "peer", "ours_s", "peer_s", "ratio", "limit", "ours_frac", "peer_frac",
                "ours_rss_mb", "peer_rss_mb", "peer_rss0_mb", "held_mb"]
        w = csv.writer(f)
        w.writerow(cols)
        for r in rows:
            w.writerow(["" if r[c] is None else (f"{r[c]:.6g}" if isinstance(r[c], float) else r[c]) for c in cols])

    tmax = max(threads_all) if threads_all else 0
    L = []
    L.append(f"# mvead benchmarks against the peers ({tmax} threads)\n")
    lim_s = ", ".join(f"{t} thr: sgemm {limits[('limit_sgemm', t)] * 1e-9:.1f} GFLOP/s, copy "
                      f"{limits.get(('limit_copy', t), 0) * 1e-9:.1f} GB/s"
                      for t in threads_all if ('limit_sgemm', t) in limits)
    L.append(f"Machine limits measured in this run: {lim_s or 'not measured'}.\n")
    L.append("ratio = peer time / our time (> 1: we are faster). % limit = achieved GFLOP/s over the sgemm "
             "peak (flop-bound rows) or achieved GB/s over the copy bandwidth (memory-bound rows), same thread "
             "count. RSS = peak resident set of the process after the workload (MB); peer RSS includes the "
             "interpreter and torch/faiss, their base is in ( ). held = bytes the workload must hold.\n")
    L.append("| workload | size | peer | ours s | peer s | ratio | limit | ours % | peer % | ours RSS | peer RSS (base) | held MB |")
    L.append("|---|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|")
    for r in rows:
        if r["threads"] != tmax:
            continue
        prss = fmt(r["peer_rss_mb"], ".0f")
        if r["peer_rss0_mb"] is not None:
            prss += f" ({r['peer_rss0_mb']:.0f})"
        L.append("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
            r["workload"], r["size"], r["peer"], fmt(r["ours_s"], ".4f"), fmt(r["peer_s"], ".4f"),
            fmt(r["ratio"], ".2f"), r["limit"], fmt(r["ours_frac"] and 100 * r["ours_frac"], ".0f"),
            fmt(r["peer_frac"] and 100 * r["peer_frac"], ".0f"), fmt(r["ours_rss_mb"], ".0f"), prss,
            fmt(r["held_mb"], ".1f")))

    L += targets(rows, ours, tmax)

    # thread scaling
    if len(threads_all) > 1:
        t0, t1 = threads_all[0], tmax
        L.append(f"\n## Thread scaling ({t0} -> {t1} threads; speed-up = time at {t0} / time at {t1})\n")
        L.append(f"| workload | size | impl | {t0} thr s | {t1} thr s | speed-up |")
        L.append("|---|---|---|---:|---:|---:|")
        for key, size in keys:
            for imp in ["ours"] + sorted(set(impls_of.get((key, size), []))):
                if imp == "ours":
                    a, b = ours.get((key, size, t0)), ours.get((key, size, t1))
                else:
                    a, b = peers.get((key, size, t0, imp)), peers.get((key, size, t1, imp))
                if a and b:
                    L.append(f"| {display(key, size)} | {size} | {imp} | {a['time_s']:.4f} | {b['time_s']:.4f} | "
                             f"{a['time_s'] / b['time_s']:.2f} |")

    # cost growth with size (log-log slope between consecutive sizes)
    groups = OrderedDict()
    for (key, size) in keys:
        for imp in ["ours"] + sorted(set(impls_of.get((key, size), []))):
            r = ours.get((key, size, tmax)) if imp == "ours" else peers.get((key, size, tmax, imp))
            if r:
                groups.setdefault((key, imp), []).append((size, r["time_s"]))
    G = []
    for (key, imp), pts in groups.items():
        if len(pts) < 2:
            continue
        pts.sort(key=lambda p: size_sort_key(p[0]))
        prev = None
        for size, t in pts:
            slope = ""
            if prev:
                a, b = size_sort_key(prev[0]), size_sort_key(size)
                diff = [i for i in range(min(len(a), len(b))) if a[i] != b[i]]
                if len(diff) == 1 and a[diff[0]] > 0 and t > 0 and prev[1] > 0:
                    slope = f"{math.log(t / prev[1]) / math.log(b[diff[0]] / a[diff[0]]):.2f}"
            G.append(f"| {key} | {imp} | {size} | {t:.4f} | {slope} |")
            prev = (size, t)
    if G:
        L.append(f"\n## Cost growth with size ({tmax} threads; slope = d log(time) / d log(size) "
                 "between consecutive sizes: 1 linear, 2 quadratic)\n")
        L.append("| workload | impl | size | s | log-log slope |")
        L.append("|---|---|---|---:|---:|")
        L += G

    if notes:
        L.append("\nNotes:")
        L += [f"- {n}" for n in notes]
    text = "\n".join(L) + "\n"
    with open(md_path, "w") as f:
        f.write(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
