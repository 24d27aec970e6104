#!/bin/bash
# faultfs_test: a full or failing disk during every stage. tests/faultfs.c
# (LD_PRELOAD, built by `make check`) makes writes to the run folder fail with
# ENOSPC (or EIO) after N bytes, or fails every fsync. For extract, train,
# bank, eval and report in turn, on a tiny synthetic run:
#   - a clean run of the stage counts the bytes it writes (B);
#   - the stage is run again with the disk "full" after N = 0, B/3, 2B/3 and
#     B-1 bytes, with EIO after B/2 and with failing fsyncs: each must exit
#     non-zero and say why ("No space left on device", "Input/output error"),
#     leave every file published before bitwise intact (config.json and
#     history.jsonl included) and no temporary file behind;
#   - then, with the fault cleared, the stage again: its outputs must equal
#     those of an undisturbed run (HDF5 datasets via h5dump, the rest cmp).
# Environment: MVEAD_BIN (set by `make check`), MVEAD_FAULTFS (the shim;
# default tests/.libs/libfaultfs.so under the build folder). SKIP (77)
# without h5dump or the shim, or when mvead is built with ASan (whose runtime
# must come first among preloaded libraries).
set -u

BAD_TAIL=6
. "$(dirname "$0")/testlib.sh"
testlib_init faultfs
SHIM=${MVEAD_FAULTFS:-$PWD/tests/.libs/libfaultfs.so}
if ! command -v h5dump >/dev/null 2>&1; then echo "SKIP faultfs_test: h5dump not found"; exit 77; fi
if [ ! -f "$SHIM" ]; then echo "SKIP faultfs_test: $SHIM not built"; exit 77; fi
REAL_BIN=$BIN
[ -f "$(dirname "$BIN")/.libs/mvead" ] && REAL_BIN=$(dirname "$BIN")/.libs/mvead
if { ldd "$REAL_BIN" 2>/dev/null; ldd "$(dirname "$REAL_BIN")/../.libs/libmvead.so" 2>/dev/null; } | grep -q libasan; then
    echo "SKIP faultfs_test: mvead is built with AddressSanitizer (LD_PRELOAD conflicts with its runtime)"
    exit 77
fi

run_cmd() { timeout -s KILL "$(scaled 300)" "$@" >"$OUT" 2>"$ERR"; RC=$?; }
crashed() { grep -qE "Segmentation|Aborted|AddressSanitizer|runtime error:|core dumped|double free" "$OUT" "$ERR"; }
dump() { h5dump -A 0 "$1" 2>&1 | tail -n +2; }
same_file() {   # same_file DESC FILE REF
    if [ ! -f "$2" ]; then bad "$1: $(basename "$2") missing"; return; fi
    case $2 in
    *.h5)
        dump "$2" >"$T/a.txt"
        dump "$3" >"$T/b.txt"
        if grep -q "DATA {" "$T/a.txt" && cmp -s "$T/a.txt" "$T/b.txt"; then ok "$1"; else bad "$1: datasets differ"; fi ;;
    *)
        if cmp -s "$2" "$3"; then ok "$1"; else bad "$1: differs"; diff "$2" "$3" | head -4; fi ;;
    esac
}

DATA=$T/data
REFRUNS=$T/ref
RUNS=$T/runs
run_cmd "$BIN" synth --categories 1 --train 4 --test-good 2 --test-bad 2 --size "$IMG" --quiet "$DATA"
[ $RC = 0 ] || { bad "synth (exit $RC)"; testlib_finish; exit 1; }
OPTS=(--data "$DATA" --name x --epochs 2 --centers 4 --image_size "$IMG" --quiet)
run_cmd "$BIN" run --runs "$REFRUNS" "${OPTS[@]}"
[ $RC = 0 ] || { bad "undisturbed reference run (exit $RC)"; testlib_finish; exit 1; }
ok "undisturbed reference run"
REF=$REFRUNS/x
A=$RUNS/x

# the outputs of each stage, compared with the reference after the rerun
# report.md without what differs between two runs of the same inputs: the run
# folder's path, and the provenance block (when each file was written, how
# long each stage took)
md_stable() { sed "s|$2|RUNS|g; /^## Provenance/,/^Files:/{/^Files:/!d}" "$1"; }
outputs() {
    case $1 in
    extract) echo features/train.h5 features/test.h5 ;;
    train) echo checkpoint.h5 loss.csv ;;
    bank) echo bank.h5 ;;
    eval) echo scores.h5 metrics.json $(cd "$REF" && ls heatmaps/*.png | head -3) ;;
    report) echo report.md ;;
    esac
}
stage_cmd() {   # the stage's command line on run x
    local st=$1
    shift
    if [ "$st" = report ]; then echo report --runs "$RUNS" --name x --quiet
    else echo "$st" --config "$REF/config.json" --runs "$RUNS" --name x --quiet; fi
}
# every file of the run folder with its checksum (what was published), but
# history.jsonl (it may gain complete lines) and the stage's own outputs
# (published one by one: each either the old file or a complete new one)
snapshot() {
    local excl=() f
    for f in $(outputs "$2"); do excl+=(! -path "./$f"); done
    (cd "$A" && find . -type f ! -name '*.partial' ! -name history.jsonl ! -path './heatmaps/*' "${excl[@]}" -print0 |
        sort -z | xargs -0 sha256sum) >"$1"
}
# own_outputs_sound STAGE DESC: each output of the stage is absent, as it was, or equal to the reference's
own_outputs_sound() {
    local f bad_f=
    for f in $(outputs "$1"); do
        [ -f "$A/$f" ] || continue
        if [ -f "$T/prev/$f" ] && cmp -s "$A/$f" "$T/prev/$f"; then continue; fi
        case $1/$f in
        # train publishes a checkpoint every epoch (for --resume): an earlier
        # epoch's, complete (h5dump verifies the metadata checksums), and its loss.csv
        train/checkpoint.h5) h5dump -A 0 "$A/$f" >/dev/null 2>&1 || bad_f="$bad_f $f" ;;
        train/loss.csv) grep -qvE '^(step,.*|[0-9]+,[0-9]+(,[-+0-9.eE]+|,-?nan|,-?inf){4})$' "$A/$f" && bad_f="$bad_f $f" ;;
        esac
        case $1/$f in
        train/*) ;;
        */*.h5) dump "$A/$f" >"$T/a.txt"; dump "$REF/$f" >"$T/b.txt"
              grep -q "DATA {" "$T/a.txt" && cmp -s "$T/a.txt" "$T/b.txt" || bad_f="$bad_f $f" ;;
        */report.md) md_stable "$A/$f" "$RUNS" | cmp -s - <(md_stable "$REF/$f" "$REFRUNS") || bad_f="$bad_f $f" ;;
        *) cmp -s "$A/$f" "$REF/$f" || bad_f="$bad_f $f" ;;
        esac
    done
    if [ -z "$bad_f" ]; then ok "$2: its own outputs are each the old file or a complete new one"
    else bad "$2: damaged outputs under their final names:$bad_f"; fi
}
# history.jsonl: only whole lines
history_sound() {
    if [ ! -f "$A/history.jsonl" ] || ! grep -qv '^{.*}$' "$A/history.jsonl"; then ok "$1: history.jsonl holds whole lines only"
    else bad "$1: history.jsonl has a partial line"; fi
}

for st in extract train bank eval report; do
    # a clean run, under the shim only to count the bytes it writes to the run folder
    MVEAD_FAULT_PATH=$RUNS/ MVEAD_FAULT_COUNT=$T/count LD_PRELOAD=$SHIM run_cmd "$BIN" $(stage_cmd $st)
    if [ $RC != 0 ] || [ ! -s "$T/count" ]; then bad "$st: clean run under the shim (exit $RC)"; continue; fi
    B=$(cat "$T/count")
    echo "# $st writes $B bytes"
    snapshot "$T/before" $st
    rm -rf "$T/prev"
    mkdir -p "$T/prev"
    (cd "$A" && for f in $(outputs $st); do [ -f "$f" ] && cp --parents "$f" "$T/prev/"; done)
    # (the last limit falls in the stage's last file: history.jsonl's and
    # config.json's lengths vary with the times they record)
    cases=("ENOSPC 0" "ENOSPC $((B / 3))" "ENOSPC $((2 * B / 3))" "ENOSPC $((B - 2500))" "EIO $((B / 2))" "FSYNC -")
    # under valgrind (30-100x slower) two limits per stage
    [ "$REDUCED" = 1 ] && cases=("ENOSPC $((B / 2))" "FSYNC -")
    for cs in "${cases[@]}"; do
        read -r kind n <<<"$cs"
        # extract would skip an existing cache and resume a .partial: each case starts afresh
        [ $st = extract ] && rm -rf "$A/features"
        env=(MVEAD_FAULT_PATH=$RUNS/)
        msg="No space left on device"
        case $kind in
        EIO) env+=(MVEAD_FAULT_BYTES=$n MVEAD_FAULT_ERRNO=EIO); msg="Input/output error" ;;
        FSYNC) env+=(MVEAD_FAULT_FSYNC=1); msg="Input/output error" ;;
        *) env+=(MVEAD_FAULT_BYTES=$n) ;;
        esac
        what="$st, $kind after $n bytes"
        env "${env[@]}" LD_PRELOAD="$SHIM" timeout -s KILL "$(scaled 300)" "$BIN" $(stage_cmd $st) >"$OUT" 2>"$ERR"
        RC=$?
        if crashed || [ $RC -ge 124 ]; then bad "$what: crashed or hung (exit $RC)"; continue; fi
        if [ $RC != 0 ] && grep -q "$msg" "$ERR"; then ok "$what: exit $RC, says '$msg'"
        else bad "$what: exit $RC, expected non-zero and '$msg'"; fi
        snapshot "$T/after" $st
        if cmp -s "$T/before" "$T/after"; then ok "$what: every other published file intact (config.json included)"
        else bad "$what: published files changed"; diff "$T/before" "$T/after" | head -6 | sed 's/^/       /'; fi
        own_outputs_sound $st "$what"
        history_sound "$what"
        left=$(find "$A" -name '*.tmp' -o -name '*.tmp.*' | head -3)
        if [ -z "$left" ]; then ok "$what: no temporary file left"; else bad "$what: temporary files left: $left"; fi
    done
    # the fault cleared: the same outputs as an undisturbed run
    run_cmd "$BIN" $(stage_cmd $st)
    if [ $RC = 0 ]; then ok "$st after the faults: exit 0"; else bad "$st after the faults (exit $RC)"; fi
    for f in $(outputs $st); do
        if [ $f = report.md ]; then
            md_stable "$A/$f" "$RUNS" >"$T/report.md"; md_stable "$REF/$f" "$REFRUNS" >"$T/report_ref.md"
            same_file "$st after the faults: $f equals the undisturbed run's" "$T/report.md" "$T/report_ref.md"
        else same_file "$st after the faults: $f equals the undisturbed run's" "$A/$f" "$REF/$f"; fi
    done
done

# an empty .partial (a disk that filled up at once) is discarded with a message, not a dead end
rm -rf "$A/features"
mkdir -p "$A/features"
: >"$A/features/train.h5.partial"
run_cmd "$BIN" $(stage_cmd extract)
if [ $RC = 0 ] && grep -q "discarding it and starting over" "$ERR"; then ok "an empty train.h5.partial is discarded with a message"
else bad "an empty train.h5.partial (exit $RC; expected 0 and 'discarding it')"; fi
same_file "extract after an empty .partial: train.h5 equals the undisturbed run's" "$A/features/train.h5" "$REF/features/train.h5"

testlib_finish
