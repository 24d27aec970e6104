#!/usr/bin/env bash
# mpi_test: `mpirun -np 2 mvead extract/train/bank/eval` against one process
# on a tiny synthetic dataset (1 category, 4 train + 2 good + 2 bad test
# samples, 112 px):
#   extract  killed after 3 samples under mpirun, resumed under mpirun: both
#            caches have identical contents (h5dump, everything but the name)
#   train    batch 3 over 4 samples (rank shares 2+1 and 1+0), killed after
#            epoch 1 and resumed under mpirun: BITWISE the uninterrupted
#            one-process run (EAM parameters, AdamW moments and step counts,
#            loss log, centres: h5dump with exact hex floats; loss.csv)
#   bank     (per-view and pooled, same checkpoint): identical bank.h5
#   eval     (same checkpoint and bank): identical scores.h5, metrics.json
# Exit 77 (automake SKIP) with a loud message when the build has no MPI,
# mpirun/h5dump are missing or mpirun cannot start two ranks here.
# Environment: MVEAD_BIN (the built program); MVEAD_MPIRUN overrides mpirun.
set -u

skip() {
    echo "**************************************************************"
    echo "*** SKIP mpi_test: $*"
    echo "**************************************************************"
    exit 77
}

# IMG and scaled (smaller images and longer limits under valgrind); this
# script keeps its own ok/bad and temporary folder
. "$(dirname "$0")/testlib.sh"
BIN=${MVEAD_BIN:-$(dirname "$0")/../mvead/mvead}
[ -x "$BIN" ] || { echo "mpi_test: MVEAD_BIN ($BIN) is not an executable"; exit 1; }
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
# config.h of the build that made BIN (<builddir>/mvead/mvead)
CFG=$(dirname "$(dirname "$BIN")")/config.h
if [ -f "$CFG" ]; then
    grep -q '^#define HAVE_MPI 1' "$CFG" || skip "this build has no MPI (configure found no OpenMPI or was given --without-mpi)"
fi
MPIRUN=${MVEAD_MPIRUN:-mpirun}
command -v "$MPIRUN" >/dev/null 2>&1 || skip "mpirun not found (Debian: apt-get install openmpi-bin libopenmpi-dev)"
command -v h5dump >/dev/null 2>&1 && command -v h5ls >/dev/null 2>&1 || skip "h5dump/h5ls not found (Debian: hdf5-tools)"

# OpenMPI in a container, possibly as root, 2 ranks on however many cores
export OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMP_NUM_THREADS=1   # 2 ranks x 1 thread on a 2-core machine; results do not depend on it
MPIFLAGS=(-np 2)
if "$MPIRUN" --version 2>&1 | grep -q "Open MPI"; then
    MPIFLAGS+=(--oversubscribe --bind-to none)
    [ "$(id -u)" = 0 ] && MPIFLAGS+=(--allow-run-as-root)
    # Under AddressSanitizer, Open MPI's own allocations at MPI_Finalize read as
    # leaks; keep every memory-error check but not the leak check in the ranks.
    if [ -n "${ASAN_OPTIONS+x}" ] || ldd "$MVEAD_BIN" 2>/dev/null | grep -q libasan ||
       { [ -f "$(dirname "$MVEAD_BIN")/.libs/mvead" ] && ldd "$(dirname "$MVEAD_BIN")/.libs/mvead" 2>/dev/null | grep -q libasan; }; then
        export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
        MPIFLAGS+=(-x ASAN_OPTIONS)
    fi
fi
mpi() { timeout "$(scaled 120)" "$MPIRUN" "${MPIFLAGS[@]}" "$@"; }

T=$(mktemp -d "${TMPDIR:-/tmp}/mvead_mpi.XXXXXX")
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1
mpi true >"$T/probe" 2>&1 || { cat "$T/probe"; skip "mpirun cannot start 2 ranks on this machine (output above)"; }

PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); echo "ok   - $1"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL - $1"; [ -s "$T/err" ] && tail -5 "$T/err" | sed 's/^/       /'; }
# run DESCRIPTION cmd...: must exit 0 (stderr kept in $T/err)
run() {
    local desc=$1
    shift
    "$@" >"$T/out" 2>"$T/err"
    local rc=$?
    if [ "$rc" = 0 ]; then ok "$desc"; return 0; fi
    bad "$desc (exit $rc)"
    return 1
}

# h5dump of a whole file without its first line (which names the file),
# floats as hex ('%a': every bit of float32 and float64 values; h5dump's
# default prints 6 significant digits); fails when h5dump does (a missing
# dataset or group)
dump() { (set -o pipefail; h5dump -m '%a' "$@" | tail -n +2); }
same_h5() {   # DESCRIPTION A B [h5dump options]
    local desc=$1 a=$2 b=$3
    shift 3
    if dump "$@" "$a" >"$T/da" 2>&1 && dump "$@" "$b" >"$T/db" 2>&1 && cmp -s "$T/da" "$T/db"; then ok "$desc"
    else bad "$desc"; diff "$T/da" "$T/db" | head -6 | sed 's/^/       /'; fi
}

echo "# mpirun: $MPIRUN ${MPIFLAGS[*]}"
run "synth" "$BIN" synth --categories 1 --train 4 --test-good 2 --test-bad 2 --size "$IMG" --quiet data || exit 1
C=(--data data --runs runs --quiet)
EX=(--image_size "$IMG")
TR=(--image_size "$IMG" --epochs 2 --batch 3 --centers 5)

# ---- one process -----------------------------------------------------------------
run "1 process: extract" "$BIN" extract "${C[@]}" "${EX[@]}" --name one &&
run "1 process: train" "$BIN" train "${C[@]}" "${TR[@]}" --name one &&
run "1 process: bank" "$BIN" bank "${C[@]}" --name one &&
run "1 process: eval" "$BIN" eval "${C[@]}" --name one --no-heatmaps || exit 1

# ---- extract: sharded, killed, resumed ------------------------------------------------
if MVEAD_TEST_DIE_AFTER_SAMPLE=3 mpi -x MVEAD_TEST_DIE_AFTER_SAMPLE "$BIN" extract "${C[@]}" "${EX[@]}" --name two >"$T/out" 2>"$T/err"; then
    bad "mpirun extract with a kill after sample 3 should fail"
elif [ -f runs/two/features/train.h5.partial ] && [ ! -f runs/two/features/train.h5 ]; then
    ok "mpirun extract killed after sample 3 leaves train.h5.partial"
else
    bad "mpirun extract killed after sample 3: no train.h5.partial"
fi
# not --quiet: rank 0 logs "resuming"
run "mpirun -np 2 extract (resume)" mpi "$BIN" extract --data data --runs runs "${EX[@]}" --name two
grep -q "resuming" "$T/err" && ok "extract resumed from the partial cache" || bad "extract did not report resuming"
for s in train test; do
    same_h5 "extract: $s.h5 identical to one process" runs/one/features/$s.h5 runs/two/features/$s.h5
done

# ---- train: data parallel, killed after epoch 1, resumed ----------------------------------
# the centres' fused training set goes to a scratch file on rank 0 (--memory_mb below its size)
if MVEAD_TEST_DIE_AFTER_EPOCH=1 mpi -x MVEAD_TEST_DIE_AFTER_EPOCH "$BIN" train "${C[@]}" "${TR[@]}" --name two --memory_mb 0.05 --no-quiet >"$T/out" 2>"$T/err"; then
    bad "mpirun train with a kill after epoch 1 should fail"
else
    ok "mpirun train killed after epoch 1"
fi
grep -q "centres: .* in a scratch file" "$T/err" && ok "train: centres computed from a scratch file (--memory_mb 0.05)" ||
    bad "train --memory_mb 0.05 did not use a scratch file"
run "mpirun -np 2 train --resume" mpi "$BIN" train "${C[@]}" "${TR[@]}" --name two --resume
# Per-sample gradients added in sample order on rank 0 (mvead/run/train.c): the
# ranks' run is bitwise the one-process run, resume included.
if cmp -s runs/one/loss.csv runs/two/loss.csv; then ok "train: loss.csv identical"
else bad "train: loss.csv differs"; diff runs/one/loss.csv runs/two/loss.csv | head -6 | sed 's/^/       /'; fi
same_h5 "train: EAM parameters bitwise identical" runs/one/checkpoint.h5 runs/two/checkpoint.h5 -A 0 -g /eam
same_h5 "train: AdamW moments and step counts bitwise identical" runs/one/checkpoint.h5 runs/two/checkpoint.h5 -A 0 -g /adamw
same_h5 "train: loss log (pos, neg, total, epoch) bitwise identical" runs/one/checkpoint.h5 runs/two/checkpoint.h5 -A 0 -g /log
same_h5 "train: centres bitwise identical" runs/one/checkpoint.h5 runs/two/checkpoint.h5 -A 0 -d /centers

# ---- bank and eval: the same checkpoint, the bank sharded over the ranks -------------------
for mode in per-view pooled; do
    a=one-$mode b=two-$mode
    mkdir -p runs/$a runs/$b
    cp runs/one/checkpoint.h5 runs/$a/ && cp runs/one/checkpoint.h5 runs/$b/
    K=(--cache runs/one/features)
    run "1 process: bank ($mode)" "$BIN" bank "${C[@]}" "${K[@]}" --bank_mode "$mode" --name $a
    run "1 process: eval ($mode)" "$BIN" eval "${C[@]}" "${K[@]}" --name $a --no-heatmaps
    if [ $mode = pooled ]; then   # rank 0 gathers the fused set into a scratch file
        run "mpirun -np 2 bank ($mode, --memory_mb 0.05)" mpi "$BIN" bank "${C[@]}" "${K[@]}" --bank_mode "$mode" --name $b --memory_mb 0.05 --no-quiet
        grep -q "bank: .* in a scratch file" "$T/err" && ok "bank ($mode): fused features in a scratch file" || bad "bank ($mode) --memory_mb 0.05 did not use a scratch file"
    else
        run "mpirun -np 2 bank ($mode)" mpi "$BIN" bank "${C[@]}" "${K[@]}" --bank_mode "$mode" --name $b
    fi
    run "mpirun -np 2 eval ($mode)" mpi "$BIN" eval "${C[@]}" "${K[@]}" --name $b --no-heatmaps --no-quiet
    if [ $mode = pooled ]; then   # --memory_mb 0.05 came with the run's config.json
        grep -q "eval: anomaly maps .* in a scratch file" "$T/err" && ok "eval ($mode): anomaly maps in a scratch file" ||
            bad "eval ($mode) with the run's --memory_mb 0.05 did not use a scratch file"
    fi
    same_h5 "bank ($mode): bank.h5 identical" runs/$a/bank.h5 runs/$b/bank.h5 -A 0
    ls -a runs/$b | grep -q scratch && bad "bank ($mode): a scratch file was left in runs/$b"
    same_h5 "eval ($mode): scores.h5 identical" runs/$a/scores.h5 runs/$b/scores.h5 -A 0
    if cmp -s runs/$a/metrics.json runs/$b/metrics.json; then ok "eval ($mode): metrics.json identical"
    else bad "eval ($mode): metrics.json differs"; diff runs/$a/metrics.json runs/$b/metrics.json | head -6; fi
done

echo "# mpi_test: $PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
