#!/usr/bin/env bash
# bench/run.sh BUILDDIR — `make bench` calls it with the build directory.
#
# Runs our bench programs and the peers (PyTorch CPU, FAISS) side by side on
# the same shapes and thread counts, then joins every figure into ONE table:
#   BUILDDIR/bench/results.md   (printed at the end)
#   BUILDDIR/bench/results.csv  (every thread count)
#   BUILDDIR/bench/out/         (each program's raw output and /usr/bin/time -v report)
#
# Environment:
#   MVEAD_BENCH_QUICK=1     small sizes, few reps (whole run a few minutes on an idle 2-core machine)
#   MVEAD_BENCH_THREADS     thread counts to run (default "1 <nproc>"); quick mode runs the ViT
#                           (ours and peer) only at the largest count unless this is set
#   MVEAD_BENCH_PYTHON      python with torch/faiss (default: the first of /usr/bin/python3,
#                           python3 that imports torch)
#   MVEAD_BENCH_TIMEOUT     seconds per program (default 900 quick, 7200 full)
# Missing peers are reported as skipped, never faked. Asserts nothing.
set -u
export PYTHONDONTWRITEBYTECODE=1   # the peers import bench/peers/common.py: no __pycache__ in the source tree
if [ $# -ne 1 ] || [ ! -d "$1" ]; then
  echo "usage: $0 BUILDDIR (the directory where make built bench/bench_*)" >&2
  exit 2
fi
B=$(cd "$1" && pwd)
SRC=$(cd "$(dirname "$0")/.." && pwd)
PEERS="$SRC/bench/peers"
OUT="$B/bench/out"
rm -rf "$OUT"
mkdir -p "$OUT"
SKIP="$OUT/skipped.txt"
: > "$SKIP"

QUICK=0
case "${MVEAD_BENCH_QUICK:-0}" in ""|0) QUICK=0 ;; *) QUICK=1 ;; esac
NCPU=$(nproc 2>/dev/null || echo 1)
if [ -n "${MVEAD_BENCH_THREADS:-}" ]; then
  THREADS="$MVEAD_BENCH_THREADS"; VIT_ALL_THREADS=1
else
  THREADS=$( (echo 1; echo "$NCPU") | sort -n -u | tr '\n' ' ' | sed 's/ $//')
  VIT_ALL_THREADS=$((1 - QUICK))
fi
TMAX=$(for t in $THREADS; do echo "$t"; done | sort -n | tail -1)
TIMEOUT=${MVEAD_BENCH_TIMEOUT:-$([ $QUICK = 1 ] && echo 900 || echo 7200)}

if [ $QUICK = 1 ]; then
  EAM_BATCH=1; EAM_SIZES="64 144 256"; KNN_Q=2000; KNN_BANKS="5000 10000 20000"
else
  EAM_BATCH=8; EAM_SIZES="64 144 256"; KNN_Q=10000; KNN_BANKS="25000 50000 100000"
fi

# ---- the peers ---------------------------------------------------------------
PY=""
for cand in ${MVEAD_BENCH_PYTHON:-} /usr/bin/python3 python3; do
  if command -v "$cand" >/dev/null 2>&1 && "$cand" -c "import torch" >/dev/null 2>&1; then PY="$cand"; break; fi
done
COLLECT_PY=""
for cand in ${PY:-} /usr/bin/python3 python3; do
  if command -v "$cand" >/dev/null 2>&1; then COLLECT_PY="$cand"; break; fi
done
HAVE_TORCH=0; [ -n "$PY" ] && HAVE_TORCH=1
[ $HAVE_TORCH = 1 ] || echo "pytorch: skipped (no python3 that imports torch; Debian: apt-get install python3-torch)" >> "$SKIP"
FAISS_MODE=none
if [ -n "$COLLECT_PY" ] && "${PY:-$COLLECT_PY}" -c "import faiss, numpy" >/dev/null 2>&1; then
  FAISS_MODE=python; FAISS_PY=${PY:-$COLLECT_PY}
elif [ -f /usr/include/faiss/IndexFlat.h ] && command -v g++ >/dev/null 2>&1; then
  if g++ -O2 -fopenmp -o "$B/bench/faiss_flat" "$PEERS/faiss_flat.cpp" -lfaiss -llapack -lblas \
       > "$OUT/faiss_build.log" 2>&1; then
    FAISS_MODE=cpp
  else
    echo "faiss: skipped (libfaiss-dev found but bench/peers/faiss_flat.cpp did not build: see out/faiss_build.log)" >> "$SKIP"
  fi
else
  echo "faiss: skipped (neither python3-faiss nor libfaiss-dev installed)" >> "$SKIP"
fi

TIMECMD=()
if [ -x /usr/bin/time ]; then TIMECMD=(/usr/bin/time -v -o); fi
TO=()
if command -v timeout >/dev/null 2>&1; then TO=(timeout "$TIMEOUT"); fi

# run_one FILE_STEM COMMAND...: prints and saves the output, RSS report beside it
run_one() {
  local stem="$1"; shift
  local txt="$OUT/$stem.txt"
  echo "### $stem: $*" | sed "s|$B/||; s|$SRC/||"
  if [ ${#TIMECMD[@]} -gt 0 ]; then
    "${TO[@]}" "${TIMECMD[@]}" "$OUT/$stem.time" "$@" > "$txt" 2>&1
  else
    "${TO[@]}" "$@" > "$txt" 2>&1
  fi
  local rc=$?
  grep -v '^@bench ' "$txt"
  if [ $rc -ne 0 ]; then
    echo "$stem: failed (exit $rc; output in bench/out/$stem.txt)" >> "$SKIP"
    echo "  (failed, exit $rc)"
  fi
  echo
}

ours() { local stem="$1" prog="$2"; shift 2
  if [ -x "$B/bench/$prog" ]; then run_one "$stem" "$B/bench/$prog" "$@"
  else echo "$prog: not built (make $prog)" >> "$SKIP"; fi
}
torch_peer() { [ $HAVE_TORCH = 1 ] || return 0; local stem="$1"; shift; run_one "$stem" "$PY" "$@"; }

echo "mvead bench: threads {$THREADS}, $([ $QUICK = 1 ] && echo quick || echo full) mode, build $B"
echo "peers: pytorch $([ $HAVE_TORCH = 1 ] && "$PY" -c 'import torch; print(torch.__version__)' || echo skipped)," \
     "faiss $FAISS_MODE"
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)
START=$(date +%s)
echo

for t in $THREADS; do
  export OMP_NUM_THREADS=$t OPENBLAS_NUM_THREADS=$t MKL_NUM_THREADS=$t
  echo "================ $t thread(s) ================"
  ours "ours_bench_stream_t$t" bench_stream
  ours "ours_bench_kernels_t$t" bench_kernels
  torch_peer "peer_torch_kernels_t$t" "$PEERS/torch_kernels.py" --threads "$t"
  if [ "$VIT_ALL_THREADS" = 1 ] || [ "$t" = "$TMAX" ]; then
    ours "ours_bench_vit_t$t" bench_vit
    torch_peer "peer_torch_vit_t$t" "$PEERS/torch_vit.py" --threads "$t"
  fi
  for n in $EAM_SIZES; do
    what=fwdbwd; [ "$n" = 256 ] && what=both
    ours "ours_bench_eam_n${n}_t$t" bench_eam --batch "$EAM_BATCH" --patches "$n" --what $what
    torch_peer "peer_eam_n${n}_t$t" "$PEERS/eam.py" --threads "$t" --batch "$EAM_BATCH" --patches "$n" --what $what
  done
  ours "ours_bench_bank_t$t" bench_bank
  for nb in $KNN_BANKS; do
    case $FAISS_MODE in
      python) run_one "peer_faiss_nb${nb}_t$t" "$FAISS_PY" "$PEERS/faiss_flat.py" --threads "$t" --n-query "$KNN_Q" --n-bank "$nb" ;;
      cpp) run_one "peer_faiss_nb${nb}_t$t" "$B/bench/faiss_flat" --threads "$t" --n-query "$KNN_Q" --n-bank "$nb" ;;
    esac
    torch_peer "peer_torch_knn_nb${nb}_t$t" "$PEERS/torch_bank.py" --threads "$t" --what knn --n-query "$KNN_Q" --n-bank "$nb"
  done
  torch_peer "peer_torch_kmeans_t$t" "$PEERS/torch_bank.py" --threads "$t" --what kmeans
  torch_peer "peer_torch_coreset_t$t" "$PEERS/torch_bank.py" --threads "$t" --what coreset
done

# any other bench program (added later by someone else): run once, shown, not joined
export OMP_NUM_THREADS=$TMAX OPENBLAS_NUM_THREADS=$TMAX MKL_NUM_THREADS=$TMAX
for p in "$B"/bench/bench_*; do
  [ -f "$p" ] && [ -x "$p" ] || continue
  name=$(basename "$p")
  case "$name" in *.*|bench_stream|bench_kernels|bench_vit|bench_eam|bench_bank) continue ;; esac
  run_one "other_${name}_t$TMAX" "$p"
done

WALL=$(( $(date +%s) - START ))
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)
MD="$B/bench/results.md"
CSV="$B/bench/results.csv"
echo "================ one table ================"
if [ -z "$COLLECT_PY" ]; then
  echo "no python3 found: cannot join the figures; raw records:" >&2
  grep -h '^@bench ' "$OUT"/*.txt
  exit 1
fi
"$COLLECT_PY" "$PEERS/collect.py" "$OUT" "$MD" "$CSV" || exit 1
{
  echo
  echo "Run conditions: $(date -u '+%Y-%m-%d %H:%M UTC'), $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | sed 's/^ //'),"
  echo "$NCPU CPUs, $([ $QUICK = 1 ] && echo quick || echo full) mode, threads {$THREADS}, wall time ${WALL} s,"
  echo "load average at start ${LOAD0:-?}, at end ${LOAD1:-?} (a load above the core count means other"
  echo "processes shared the cores: every figure is then noisy, ours and the peers' alike)."
} | tee -a "$MD"
echo
echo "written: $MD, $CSV (raw outputs in $OUT)"
