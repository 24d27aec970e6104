#!/usr/bin/env bash
# bench_mpi: scaling of `mvead extract` and `mvead train` with 1 and 2 MPI
# ranks on this machine (one OpenMP thread per rank, so the speed-up is the
# MPI one), printed as seconds and speed-up, and the communication volume of
# one data-parallel training step: rank 0 gathers every sample's gradient
# (B x params x 4 bytes, so the sum runs in sample order and is bitwise that of
# one process) and broadcasts the sum (params x 4 bytes), for the run's EAM and
# for the DINOv2 widths.
# `make bench` copies this script to <builddir>/bench/bench_mpi (mvead/run/local.mk);
# bench/run.sh runs it. Environment: MVEAD_BIN (default ../mvead/mvead next to
# this script), MVEAD_MPIRUN (default mpirun), BENCH_MPI_TRAIN (training
# samples, default 8), BENCH_MPI_SIZE (image side, default 224).
set -u
here=$(cd "$(dirname "$0")" && pwd)
BIN=${MVEAD_BIN:-$here/../mvead/mvead}
MPIRUN=${MVEAD_MPIRUN:-mpirun}
NTRAIN=${BENCH_MPI_TRAIN:-8}
SIZE=${BENCH_MPI_SIZE:-224}

echo "== bench_mpi: MPI scaling (extract, train) and communication per training step"
[ -x "$BIN" ] || { echo "bench_mpi: skipped: $BIN is not built"; exit 0; }
CFG=$(dirname "$(dirname "$BIN")")/config.h
if [ -f "$CFG" ] && ! grep -q '^#define HAVE_MPI 1' "$CFG"; then echo "bench_mpi: skipped: this build has no MPI"; exit 0; fi
command -v "$MPIRUN" >/dev/null 2>&1 || { echo "bench_mpi: skipped: mpirun not found (openmpi-bin)"; exit 0; }

export OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
FLAGS=()
if "$MPIRUN" --version 2>&1 | grep -q "Open MPI"; then
    FLAGS=(--oversubscribe --bind-to none)
    [ "$(id -u)" = 0 ] && FLAGS+=(--allow-run-as-root)
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/mvead_bench_mpi.XXXXXX")
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1
"$BIN" synth --categories 1 --train "$NTRAIN" --test-good 2 --test-bad 2 --size "$SIZE" --quiet data >/dev/null 2>&1 ||
    { echo "bench_mpi: synth failed"; exit 0; }
C=(--data data --runs runs --quiet)
TR=(--image_size "$SIZE" --epochs 2 --batch 4 --centers 10)

now() { date +%s.%N; }
# timed NAME RANKS cmd...: seconds, or "fail"
timed() {
    local ranks=$1
    shift
    local t0 t1
    t0=$(now)
    if [ "$ranks" = 1 ]; then "$@" >"$T/log" 2>&1; else timeout 600 "$MPIRUN" -np "$ranks" "${FLAGS[@]}" "$@" >"$T/log" 2>&1; fi || { echo fail; return; }
    t1=$(now)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f\n", b - a }'
}

e1=$(timed 1 "$BIN" extract "${C[@]}" --image_size "$SIZE" --name r1)
e2=$(timed 2 "$BIN" extract "${C[@]}" --image_size "$SIZE" --name r2)
# both trainings read the same cache, so only the trainer differs
t1=$(timed 1 "$BIN" train "${C[@]}" "${TR[@]}" --cache runs/r1/features --name r1)
t2=$(timed 2 "$BIN" train "${C[@]}" "${TR[@]}" --cache runs/r1/features --name r2)

speedup() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2fx", a / b; else printf "-" }'; }
echo "data: synthetic, 1 category, $NTRAIN train + 4 test samples x 5 views, ${SIZE}px, backbone tiny; 1 OpenMP thread per rank; $(getconf _NPROCESSORS_ONLN) cores"
printf "%-34s %10s %10s %9s\n" "stage" "1 rank s" "2 ranks s" "speed-up"
printf "%-34s %10s %10s %9s\n" "extract (train + test splits)" "$e1" "$e2" "$(speedup "$e1" "$e2")"
printf "%-34s %10s %10s %9s\n" "train (2 epochs, batch 4)" "$t1" "$t2" "$(speedup "$t1" "$t2")"
echo "(times include mpirun start-up, ~0.5-1 s; on tiny data that dominates)"

# communication per step: the EAM's parameter count from the checkpoint
params=0
if command -v h5ls >/dev/null 2>&1 && [ -f runs/r1/checkpoint.h5 ]; then
    params=$(h5ls -r runs/r1/checkpoint.h5 | awk '$1 ~ /^\/eam\// && $2 == "Dataset" {
        s = $0; sub(/.*\{/, "", s); sub(/\}.*/, "", s); n = split(s, d, ","); p = 1; for (i = 1; i <= n; i++) p *= d[i] + 0; t += p }
        END { print t + 0 }')
fi
B=${BENCH_MPI_BATCH:-8}
echo "communication per training step (batch B = $B): per-sample gradients gathered to rank 0 + sum broadcast"
echo "= (B + 1) x params x 4 B at most (rank 0's own samples stay local; plus ~104 B per sample of losses and flags)"
printf "%-22s %6s %12s %16s\n" "EAM" "D" "params" "bytes/step"
vol() { awk -v p="$1" -v b="$B" 'BEGIN { v = (b + 1) * p * 4; printf "%16.0f  (%.2f MiB)", v, v / 1048576 }'; }
if [ "$params" -gt 0 ]; then
    printf "%-22s %6s %12d %s\n" "this run (tiny)" 96 "$params" "$(vol "$params")"
fi
for w in vits14:384 vitb14:768 vitl14:1024 vitg14:1536; do
    name=${w%%:*} D=${w##*:}
    p=$((4 * D * D + 6 * D))   # wq, wk, wv, wo (D x D), their 4 biases, LayerNorm weight + bias
    printf "%-22s %6d %12d %s\n" "$name" "$D" "$p" "$(vol "$p")"
done
exit 0
