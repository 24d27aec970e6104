#!/usr/bin/env bash
# bench_collect_test: bench/peers/collect.py's target checks on a made-up
# run directory (our programs' tables and @bench lines in the formats they
# print, a PyTorch peer's records). Each target is fed one figure that meets
# it and one that misses it, so a check that always passes (or always fails)
# is caught; a target with no figures must say so, never pass. No timings.
SRC=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3}
if ! command -v "$PY" >/dev/null 2>&1; then
    echo "bench_collect_test: SKIP: no $PY (collect.py needs any python3, standard library only)"
    exit 77
fi
T=$(mktemp -d "${TMPDIR:-/tmp}/mvead_bench_collect.XXXXXX")
trap 'rm -rf "$T"' EXIT
PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); echo "ok   - $1"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL - $1"; }
has() {   # has PATTERN DESCRIPTION: a fixed string in the joined table
    if grep -qF -- "$1" "$T/results.md"; then ok "$2"; else bad "$2 (no line with: $1)"; fi
}

O=$T/out
mkdir -p "$O"
# bench_kernels at 1 thread: softmax 2 ms (peer 3 ms: met), GELU 4 ms (peer
# 1 ms: missed), two matmul rows at 1.02 (met) and 1.04 (missed) raw cblas
cat >"$O/ours_bench_kernels_t1.txt" <<'EOF'
| kernel                 | shape                  |        ms |            ours |       raw cblas | ratio |       % limit |
|------------------------|------------------------|-----------|-----------------|-----------------|-------|---------------|
| softmax fwd            | 60x257x257             |     2.000 |      15.85 GB/s |                 |       |     80 % copy |
| gelu fwd               | 1285x3072              |     4.000 |       7.89 GB/s |                 |       |     40 % copy |
| matmul fwd x@W^T       | 1285x768x2304          |   141.354 |     32.2 GFLOP/s |     32.8 GFLOP/s |  1.02 |    98 % sgemm |
| matmul bwd dX,dW       | 1285x768x2304          |   278.689 |     32.6 GFLOP/s |     33.9 GFLOP/s |  1.04 |   100 % sgemm |
EOF
cat >"$O/peer_torch_kernels_t1.txt" <<'EOF'
@bench key=kern_softmax_fwd_60x257x257 impl=pytorch threads=1 size=60x257x257 time_s=0.003 bytes=3.17035e+07 rss_mb=300
@bench key=kern_gelu_fwd_1285x3072 impl=pytorch threads=1 size=1285x3072 time_s=0.001 bytes=3.15802e+07 rss_mb=300
EOF
# bench_eam at 2 threads, two sizes: only the largest is the issue's size.
# N 256: step 5x (met), fwd+bwd 2x (missed), step RSS 700 MB (met); the
# N 64 figures (1x) must not be checked.
eam_records() {   # N, dense fwd+bwd s, dense step s, sparse step RSS MB (sparse times: 1 s)
    local s="size=B8xN$1"
    echo "@bench key=eam_fwdbwd impl=ours threads=2 $s time_s=1.0 flops=1e11 held_mb=100 rss_mb=150"
    echo "@bench key=eam_step impl=ours threads=2 $s time_s=1.0 flops=1e11 held_mb=100 rss_mb=$4"
    echo "@bench key=eam_fwdbwd_dense impl=ours threads=2 $s time_s=$2 flops=1e11 held_mb=100 rss_mb=3200"
    echo "@bench key=eam_step_dense impl=ours threads=2 $s time_s=$3 flops=1e11 held_mb=100 rss_mb=4800"
}
eam_records 64 1.0 1.0 150 >"$O/ours_bench_eam_n64_t2.txt"
eam_records 256 2.0 5.0 700 >"$O/ours_bench_eam_n256_t2.txt"
: >"$O/skipped.txt"

if "$PY" "$SRC/bench/peers/collect.py" "$O" "$T/results.md" "$T/results.csv" >"$T/stdout" 2>"$T/stderr"; then
    ok "collect.py joins the run"
else
    bad "collect.py failed: $(tail -3 "$T/stderr")"
fi
has "## Targets" "the table has a targets section"
has "softmax / LayerNorm / GELU >= 1.0x PyTorch, every thread count: 1/2 met; **missed**: kern_gelu_fwd 1285x3072 @1t 0.25x" \
    "kernel rows: the 1.5x row meets, the 0.25x row is named as missed"
has "matmul time / raw cblas <= 1.03 at 1 thread, <= 1.05 at more: 1/2 met; **missed**: kern_matmul_bwd_dx_dw 1285x768x2304 @1t 1.04 (<= 1.03)" \
    "matmul rows: 1.02 meets the 1-thread bound, 1.04 misses it"
has "step RSS <= 1.5 GB: 2/3 met; **missed**: eam_fwdbwd dense / sparse B8xN256 @2t 2.00x (>= 3x)" \
    "EAM: step 5x and 700 MB meet, fwd+bwd 2x misses, N 64 is not checked"
has "ViT forward >= 1.6x PyTorch: no figures in this run" "a target without figures says so"
has "4 of 7 checked figures met their targets in this run." "the summary counts every checked figure"

echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
