#!/bin/bash
# memlimit_test: a training set larger than the memory the process may use.
# For `train` (centres: k-means over every training patch) and `bank` (exact
# coreset) in turn: measure the anonymous memory the stage needs with the
# fused training features in a scratch file, put it in a memory cgroup with
# that much plus half the fused set; there the stage is OOM-killed with the
# features in RAM (--memory_mb above their size), and with --memory_mb 1 it
# finishes from the scratch file and writes the same checkpoint.h5 / bank.h5,
# bit for bit, as an unlimited run.
# Needs root and a writable cgroup-v1 memory controller (/sys/fs/cgroup/memory)
# or cgroup v2 (/sys/fs/cgroup with a memory controller), h5dump, and a disk
# (not tmpfs) under TMPDIR. About 2 min on 2 cores: runs under MVEAD_LONG=1
# (`make check-long`), SKIP (77) otherwise.
set -u
. "$(dirname "$0")/testlib.sh"
testlib_init memlimit
skip() { echo "SKIP memlimit_test: $*"; exit 77; }
[ "${MVEAD_LONG:-0}" = 1 ] || skip "long test (set MVEAD_LONG=1 or run make check-long)"
[ "$(id -u)" = 0 ] || skip "needs root to create a memory cgroup"
command -v h5dump >/dev/null 2>&1 || skip "h5dump not found (Debian: hdf5-tools)"
[ "$(stat -f -c %T "$T")" = tmpfs ] && skip "$T is on tmpfs: scratch files there would be memory too"

# a cgroup with a memory limit; run_limited LIMIT_MB command... sets RC
CG=
if [ -w /sys/fs/cgroup/memory ]; then
    CG=/sys/fs/cgroup/memory/mvead_memlimit_$$
    mkdir "$CG" || skip "cannot create $CG"
    LIMIT_FILE=$CG/memory.limit_in_bytes
    echo 0 >"$CG/memory.swappiness" 2>/dev/null
elif grep -qw memory /sys/fs/cgroup/cgroup.controllers 2>/dev/null && [ -w /sys/fs/cgroup ]; then
    CG=/sys/fs/cgroup/mvead_memlimit_$$
    mkdir "$CG" || skip "cannot create $CG"
    LIMIT_FILE=$CG/memory.max
    echo 0 >"$CG/memory.swap.max" 2>/dev/null
else
    skip "no writable memory cgroup"
fi
trap 'rmdir "$CG" 2>/dev/null; rm -rf "$T"' EXIT
run_limited() {
    local mb=$1
    shift
    echo $((mb * 1048576)) >"$LIMIT_FILE" || { bad "cannot set the cgroup's limit"; RC=1; return; }
    bash -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' _ "$CG" "$@" >"$OUT" 2>"$ERR"
    RC=$?
}
same_h5() {   # DESC FILE REF
    if [ -f "$2" ] && cmp -s <(h5dump -A 0 "$2" | tail -n +2) <(h5dump -A 0 "$3" | tail -n +2); then ok "$1"
    else bad "$1"; fi
}

# 60 training samples x 5 views x 256 patches x 384 dims (ViT-S/14, random
# weights, block 7) = 118 MiB of fused features
DATA=$T/data RUNS=$T/runs
run_cmd() { "$@" >"$OUT" 2>"$ERR"; RC=$?; }
run_cmd "$BIN" synth --categories 1 --train 60 --test-good 2 --test-bad 2 --size 224 --quiet "$DATA"
[ $RC = 0 ] || { bad "synth (exit $RC)"; testlib_finish; exit; }
C=(--data "$DATA" --runs "$RUNS" --quiet)
BB=(--backbone vits14 --image_size 224)
run_cmd "$BIN" extract "${C[@]}" "${BB[@]}" --name ref
[ $RC = 0 ] || { bad "extract (exit $RC)"; testlib_finish; exit; }
K=(--cache "$RUNS/ref/features")
TR=("${BB[@]}" --epochs 0 --centers 8)
BK=(--coreset_ratio 0.02)
run_cmd "$BIN" train "${C[@]}" "${K[@]}" "${TR[@]}" --name ref && run_cmd "$BIN" bank "${C[@]}" "${K[@]}" "${BK[@]}" --name ref
[ $RC = 0 ] && ok "unlimited train (centres) and bank" || bad "unlimited train and bank (exit $RC)"
fused_mb=$((60 * 5 * 256 * 384 * 4 / 1048576))
echo "# fused training features: ${fused_mb} MiB"

# anon_peak command...: the command's peak anonymous memory in MiB (sampled),
# i.e. what it needs besides file pages the kernel may drop or write back
anon_peak() {
    "$@" >"$OUT" 2>"$ERR" &
    local pid=$! peak=0 a
    while kill -0 $pid 2>/dev/null; do
        a=$(awk '/^RssAnon/ {print $2}' /proc/$pid/status 2>/dev/null)
        [ -n "$a" ] && [ "$a" -gt "$peak" ] && peak=$a
        sleep 0.05
    done
    wait $pid
    RC=$?
    echo $((peak / 1024))
}

for stage in train bank; do
    extra=("${TR[@]}")
    [ $stage = bank ] && extra=("${BK[@]}")
    f=checkpoint.h5
    [ $stage = bank ] && f=bank.h5
    mkdir -p "$RUNS/probe" "$RUNS/big" "$RUNS/small"
    for r in probe big small; do [ $stage = bank ] && cp "$RUNS/ref/checkpoint.h5" "$RUNS/$r/"; done
    # the limit: what the stage needs with its features in a scratch file
    # (OpenBLAS's per-thread buffers, k-means' float64 view, ...) + half the
    # fused set; holding the whole set in memory goes over it by the other half
    need=$(anon_peak "$BIN" "$stage" "${C[@]}" "${K[@]}" "${extra[@]}" --name probe --memory_mb 1)
    [ $RC = 0 ] || bad "$stage --memory_mb 1 without a limit (exit $RC)"
    LIMIT=$((need + fused_mb / 2))
    echo "# $stage: ${need} MiB of anonymous memory with the features in a scratch file; cgroup limit ${LIMIT} MiB"
    run_limited "$LIMIT" "$BIN" "$stage" "${C[@]}" "${K[@]}" "${extra[@]}" --name big --memory_mb $((fused_mb * 4))
    if [ $RC = 137 ] || grep -q "out of memory" "$ERR"; then ok "$stage with the features in RAM under a ${LIMIT} MiB limit fails (exit $RC)"
    else bad "$stage with the features in RAM under a ${LIMIT} MiB limit should fail (exit $RC)"; fi
    run_limited "$LIMIT" "$BIN" "$stage" "${C[@]}" "${K[@]}" "${extra[@]}" --name small --memory_mb 1 --no-quiet
    if [ $RC = 0 ] && grep -q "scratch file" "$ERR"; then ok "$stage with --memory_mb 1 under the same limit finishes from a scratch file"
    else bad "$stage with --memory_mb 1 under a ${LIMIT} MiB limit (exit $RC)"; fi
    grep -h "peak RSS" "$ERR" | sed 's/^/# /'
    same_h5 "$stage: $f under the limit == unlimited" "$RUNS/small/$f" "$RUNS/ref/$f"
done
testlib_finish
