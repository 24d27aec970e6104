#!/bin/bash
# corrupt_test: damaged files through the real `mvead` commands. On a tiny
# synthetic run, each file a stage reads (checkpoint.h5, bank.h5,
# features/{train,test}.h5, scores.h5, calibration.json, config.json,
# metrics.json, a dataset JPEG) is truncated, emptied, bit-flipped, replaced
# by a file of another kind and (HDF5, calibration) given a future format
# version; the stage that reads it must then
#   - never crash or hang: exit >= 124 (signal, timeout) or "Segmentation",
#     "Aborted", "AddressSanitizer", "runtime error" in its output fail;
#   - for truncation, emptying, wrong kind and wrong version: exit 1 (2 for
#     --config files: a usage error) with a message naming the file;
#   - for a bit flip: either exit 1 naming the file, or exit 0 with results
#     identical to the undamaged run (a flip in unused bytes is harmless; a
#     flip that silently changes checksummed data is a failure). Flips in JSON
#     or JPEG text may legitimately change values, so there only "no crash" and
#     "errors name the file" are checked.
# Environment: MVEAD_BIN (the program; set by `make check`), MVEAD_LONG=1 for
# more flips per file (MVEAD_CORRUPT_FLIPS overrides), MVEAD_CORRUPT_SEED.
# Uses h5dump (Debian hdf5-tools) to locate datasets and compare banks, and
# the helper fuzz/h5setattr (built by make check) for the wrong-version cases;
# those cases print SKIP without them.
set -u

BAD_TAIL=8
. "$(dirname "$0")/testlib.sh"
testlib_init corrupt
if [ "${MVEAD_LONG:-0}" = 1 ]; then FLIPS=${MVEAD_CORRUPT_FLIPS:-25}
elif [ "$REDUCED" = 1 ]; then FLIPS=${MVEAD_CORRUPT_FLIPS:-1}
else FLIPS=${MVEAD_CORRUPT_FLIPS:-3}; fi
RANDOM=${MVEAD_CORRUPT_SEED:-20240301}
HAVE_H5DUMP=0
command -v h5dump >/dev/null 2>&1 && HAVE_H5DUMP=1
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}


# run_cmd: runs "$@" with a time limit; sets RC. A hang shows as 124.
run_cmd() {
    timeout -s KILL "$(scaled 120)" "$@" >"$OUT" 2>"$ERR"
    RC=$?
    [ $RC = 137 ] && RC=124
}

crashed() {
    [ "$RC" -ge 124 ] && return 0
    grep -qE "Segmentation|Aborted|AddressSanitizer|runtime error:|core dumped|double free|stack smashing" "$OUT" "$ERR"
}

# check_error DESC NAME [WANT]: the last command failed cleanly (exit code
# matching the pattern WANT, default 1), naming NAME.
check_error() {
    local desc=$1 name=$2 want=${3:-1}
    if crashed; then bad "$desc: crashed or hung (exit $RC)"; return; fi
    if ! [[ "$RC" =~ ^($want)$ ]]; then
        bad "$desc: exit $RC, expected $want"
        return
    fi
    if grep -qF -- "$name" "$ERR"; then ok "$desc (exit $RC, names $name)"
    else bad "$desc: the error does not name $name"; fi
}

# ---- byte surgery -----------------------------------------------------------------

filesize() { stat -c %s "$1"; }

# flip_bit FILE OFFSET BIT
flip_bit() {
    local b
    b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
    b=$((b ^ (1 << $3)))
    printf "$(printf '\\%03o' "$b")" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# random offset in [0, n): two $RANDOMs, so files over 32 KiB are covered
rand_below() { echo $(((RANDOM * 32768 + RANDOM) % $1)); }

# set_h5_format FILE VALUE: rewrites the root attribute mvead_format with the
# helper fuzz/h5setattr (built by make check next to the program); the
# metadata is checksummed, so a byte patch cannot do it. 1 when unavailable.
H5SETATTR=${MVEAD_H5SETATTR:-$(dirname "$BIN")/../fuzz/h5setattr}
set_h5_format() {
    [ -x "$H5SETATTR" ] || return 1
    "$H5SETATTR" "$1" mvead_format "$2" >/dev/null 2>&1 || return 1
    [ $HAVE_H5DUMP = 0 ] || h5dump -a /mvead_format "$1" 2>/dev/null | grep -qE "\(0\): $2\$"
}

# data_extent FILE DATASET: "OFFSET SIZE" of a contiguous dataset's bytes (h5dump -p)
data_extent() {
    h5dump -p -H -d "$2" "$1" 2>/dev/null | awk '/CONTIGUOUS/ {c = 1} c && $1 == "SIZE" {s = $2} c && $1 == "OFFSET" {print $2, s; exit}'
}

# dump_datasets FILE: every dataset's values (h5dump, without the file name line)
dump_datasets() { h5dump -A 0 "$1" 2>&1 | tail -n +2; }

# ---- a tiny run to damage --------------------------------------------------------------

DATA=$T/data
RUNS=$T/runs
run_cmd "$BIN" synth --categories 1 --train 4 --test-good 2 --test-bad 2 --size "$IMG" --quiet "$DATA"
if [ $RC != 0 ]; then bad "synth tiny dataset (exit $RC)"; echo "$PASS passed, $FAIL failed"; exit 1; fi
run_cmd "$BIN" run --data "$DATA" --runs "$RUNS" --name r --epochs 1 --centers 4 --image_size "$IMG" --quiet --no-heatmaps
if [ $RC != 0 ]; then bad "reference run (exit $RC)"; echo "$PASS passed, $FAIL failed"; exit 1; fi
ok "reference run"
REF=$RUNS/r
CFG=$REF/config.json
for f in checkpoint.h5 bank.h5 scores.h5 metrics.json config.json features/train.h5 features/test.h5; do
    [ -s "$REF/$f" ] || bad "reference run wrote $f"
done
if [ $HAVE_H5DUMP = 1 ]; then dump_datasets "$REF/bank.h5" >"$T/bank.ref"; fi

CASE=0
# new_case: a fresh run folder whose files link to the reference run's, and a
# fresh cache folder linking to its features; sets RUN, CACHE, NAME.
new_case() {
    CASE=$((CASE + 1))
    NAME=c$CASE
    RUN=$RUNS/$NAME
    CACHE=$T/cache$CASE
    mkdir -p "$RUN" "$CACHE"
    for f in checkpoint.h5 bank.h5 scores.h5 metrics.json config.json loss.csv; do ln -s "$REF/$f" "$RUN/$f"; done
    for f in train.h5 test.h5; do ln -s "$REF/features/$f" "$CACHE/$f"; done
}
# place SRC DST: DST (a link into the reference run) becomes a private copy of SRC
place() { rm -f "$2"; cp "$1" "$2"; }

# the stage that reads each file, run on the case folders
stage_for() {
    case $1 in
    checkpoint.h5 | bank.h5 | test.h5) echo eval ;;
    train.h5) echo bank ;;
    esac
}
run_stage() {
    local stage=$1
    shift
    local extra=()
    [ "$stage" = eval ] && extra=(--no-heatmaps)
    run_cmd "$BIN" "$stage" --config "$CFG" --name "$NAME" --cache "$CACHE" --quiet "${extra[@]}" "$@"
}
# where a file lives in a case
case_path() {
    case $1 in
    train.h5 | test.h5) echo "$CACHE/$1" ;;
    *) echo "$RUN/$1" ;;
    esac
}

# same_result STAGE: after a clean exit, the stage's output equals the reference
same_result() {
    case $1 in
    eval) cmp -s "$RUN/metrics.json" "$REF/metrics.json" ;;
    bank) [ $HAVE_H5DUMP = 0 ] || { dump_datasets "$RUN/bank.h5" >"$T/bank.case" && cmp -s "$T/bank.case" "$T/bank.ref"; } ;;
    esac
}

# ---- HDF5 files --------------------------------------------------------------------------

for file in checkpoint.h5 bank.h5 train.h5 test.h5; do
    stage=$(stage_for $file)
    src=$REF/$file
    [ -f "$src" ] || src=$REF/features/$file
    size=$(filesize "$src")

    for cut in 0 100 $((size / 2)) $((size - 1)); do
        new_case
        dst=$(case_path $file)
        place "$src" "$dst"
        truncate -s "$cut" "$dst"
        run_stage "$stage"
        check_error "$stage: $file truncated to $cut of $size bytes" "$file"
    done

    for ((n = 0; n < FLIPS; n++)); do
        new_case
        dst=$(case_path $file)
        place "$src" "$dst"
        off=$(rand_below "$size")
        bit=$((RANDOM % 8))
        flip_bit "$dst" "$off" "$bit"
        run_stage "$stage"
        desc="$stage: $file bit $bit of byte $off flipped"
        if crashed; then bad "$desc: crashed or hung (exit $RC)"
        elif [ $RC = 0 ]; then
            if same_result "$stage"; then ok "$desc: harmless, identical results"
            else bad "$desc: exit 0 but results differ (silent corruption)"; fi
        elif [ $RC = 1 ] && grep -qF "$file" "$ERR"; then ok "$desc (exit 1, names $file)"
        else bad "$desc: exit $RC without naming $file"; fi
    done

    # a flip inside a dataset's stored values must be caught by its crc32
    case $file in
    checkpoint.h5) dsets="/eam/wq /centers /log/total" ;;
    bank.h5) dsets="/bank/0" ;;
    *) dsets="/view_label /sample_label" ;;
    esac
    for d in $dsets; do
        [ $HAVE_H5DUMP = 1 ] || { echo "SKIP $file $d data flip (needs h5dump)"; continue; }
        read -r doff dsize <<<"$(data_extent "$src" "$d")"
        if [ -z "${dsize:-}" ]; then bad "$file: no contiguous storage found for $d (test helper)"; continue; fi
        new_case
        dst=$(case_path $file)
        place "$src" "$dst"
        flip_bit "$dst" $((doff + dsize / 2)) 5
        run_stage "$stage"
        check_error "$stage: $file with one bit of $d's values flipped" "$file"
    done

    if [ -x "$H5SETATTR" ]; then
        new_case
        dst=$(case_path $file)
        place "$src" "$dst"
        if set_h5_format "$dst" 99; then
            run_stage "$stage"
            check_error "$stage: $file with mvead_format 99" "$file"
        else
            bad "could not rewrite mvead_format of $file (test helper $H5SETATTR)"
        fi
    else
        echo "SKIP $file wrong version (helper $H5SETATTR not built)"
    fi
done

# wrong kinds: another mvead HDF5 file, a JSON file, a PNG under the HDF5 name
new_case; place "$REF/bank.h5" "$RUN/checkpoint.h5"; run_stage eval
check_error "eval: bank.h5 copied over checkpoint.h5" checkpoint.h5
new_case; place "$REF/checkpoint.h5" "$RUN/bank.h5"; run_stage eval
check_error "eval: checkpoint.h5 copied over bank.h5" bank.h5
new_case; place "$REF/scores.h5" "$CACHE/train.h5"; run_stage bank
check_error "bank: scores.h5 copied over features/train.h5" train.h5
new_case; place "$REF/features/train.h5" "$CACHE/test.h5"; run_stage eval
check_error "eval: the train split's cache copied over features/test.h5" test.h5
new_case; place "$CFG" "$RUN/checkpoint.h5"; run_stage eval
check_error "eval: a JSON file as checkpoint.h5" checkpoint.h5
PNG=$(find "$DATA/realiad_1024" -name '*.png' | sort | head -1)
new_case; place "$PNG" "$RUN/bank.h5"; run_stage eval
check_error "eval: a PNG as bank.h5" bank.h5

# report reads scores.h5 and metrics.json of a finished run
new_case; place "$REF/scores.h5" "$RUN/scores.h5"; truncate -s 1000 "$RUN/scores.h5"
run_cmd "$BIN" report --runs "$RUNS" --name "$NAME" --quiet
check_error "report: scores.h5 truncated" scores.h5
new_case; place "$REF/checkpoint.h5" "$RUN/scores.h5"
run_cmd "$BIN" report --runs "$RUNS" --name "$NAME" --quiet
check_error "report: checkpoint.h5 copied over scores.h5" scores.h5
new_case; place "$REF/metrics.json" "$RUN/metrics.json"; truncate -s 50 "$RUN/metrics.json"
run_cmd "$BIN" report --runs "$RUNS" --name "$NAME" --quiet
check_error "report: metrics.json truncated" metrics.json

# text_flips DESC SRC DST NAME CASE_FN: FLIPS times, SRC with one random bit
# flipped goes to DST and CASE_FN runs the stage on it. Files without a
# checksum (JSON, JPEG) may change values silently, so a flip passes with a
# clean exit 0, or exit 1 naming NAME; never a crash or a hang.
text_flips() {
    local desc=$1 src=$2 dst=$3 name=$4 case_fn=$5 size off bit n
    size=$(filesize "$src")
    for ((n = 0; n < FLIPS; n++)); do
        cp "$src" "$dst"
        off=$(rand_below "$size")
        bit=$((RANDOM % 8))
        flip_bit "$dst" "$off" "$bit"
        "$case_fn"
        local d="$desc bit $bit of byte $off flipped"
        if crashed; then bad "$d: crashed or hung (exit $RC)"
        elif [ $RC = 0 ] || { [ $RC = 1 ] && grep -qF "$name" "$ERR"; }; then ok "$d (exit $RC)"
        else bad "$d: exit $RC without naming $name"; fi
    done
}

# ---- calibration.json (read by train, bank and eval through --calib) -----------------------------

CAL=$DATA/calibration.json
csize=$(filesize "$CAL")
calib_case() {   # calib_case DESC: the damaged $T/calib.json through `bank`
    new_case
    run_stage bank --calib "$T/calib.json"
}
for cut in 0 1 $((csize / 2)) $((csize - 2)); do
    head -c "$cut" "$CAL" >"$T/calib.json"
    calib_case
    check_error "bank: calibration.json truncated to $cut of $csize bytes" calib.json
done
sed 's/"version": *1/"version":99/' "$CAL" >"$T/calib.json"
if grep -q '"version":99' "$T/calib.json"; then
    calib_case
    check_error "bank: calibration.json with version 99" calib.json
else
    bad "could not set the calibration version (test helper)"
fi
sed 's/"views": *5/"views":3/' "$CAL" >"$T/calib.json"
calib_case
check_error "bank: calibration.json with too few views" calib.json
cp "$CFG" "$T/calib.json"
calib_case
check_error "bank: config.json as calibration.json" calib.json
cp "$PNG" "$T/calib.json"
calib_case
check_error "bank: a PNG as calibration.json" calib.json
text_flips "bank: calibration.json" "$CAL" "$T/calib.json" calib.json calib_case

# ---- config.json: through --config (usage errors: exit 1 or 2) and a run's own config.json ----------

fsize=$(filesize "$CFG")
for cut in 0 $((fsize / 2)); do
    head -c "$cut" "$CFG" >"$T/cfg.json"
    run_cmd "$BIN" train --config "$T/cfg.json" --name cfgcase --quiet
    check_error "train --config: config.json truncated to $cut bytes" cfg.json "1|2"
done
cp "$CAL" "$T/cfg.json"
run_cmd "$BIN" train --config "$T/cfg.json" --name cfgcase --quiet
check_error "train --config: calibration.json as config.json" cfg.json "1|2"
cp "$PNG" "$T/cfg.json"
run_cmd "$BIN" train --config "$T/cfg.json" --name cfgcase --quiet
check_error "train --config: a PNG as config.json" cfg.json "1|2"
for ((n = 0; n < FLIPS; n++)); do
    cp "$CFG" "$T/cfg.json"
    flip_bit "$T/cfg.json" "$(rand_below "$fsize")" $((RANDOM % 8))
    # a flip may change any value (a path, a size): only a clean exit is required
    new_case
    run_cmd "$BIN" eval --config "$T/cfg.json" --name "$NAME" --cache "$CACHE" --quiet --no-heatmaps
    if crashed; then bad "eval --config: config.json bit flipped: crashed or hung (exit $RC)"
    elif [[ "$RC" =~ ^(0|1|2)$ ]]; then ok "eval --config: config.json bit flipped (exit $RC)"
    else bad "eval --config: config.json bit flipped: exit $RC"; fi
done
new_case; place "$CFG" "$RUN/config.json"; truncate -s 40 "$RUN/config.json"
run_cmd "$BIN" report --runs "$RUNS" --name "$NAME" --quiet
if crashed; then bad "report: truncated config.json: crashed (exit $RC)"
elif [ $RC = 0 ]; then ok "report: truncated config.json is not needed (exit 0)"
else check_error "report: truncated config.json" config.json; fi

# ---- a dataset JPEG (read by extract) ------------------------------------------------------------------

JPG=$(find "$DATA/realiad_1024" -name '*_C1_*.jpg' -path '*OK*' | sort | head -1)
jrel=${JPG#"$DATA"/}
jname=$(basename "$JPG")
jsize=$(filesize "$JPG")
jpeg_case() {   # jpeg_case: a private dataset copy with the damaged $T/img.jpg in place of JPG, then extract
    CASE=$((CASE + 1))
    rm -rf "$T/dcopy"
    cp -r "$DATA" "$T/dcopy"
    cp "$T/img.jpg" "$T/dcopy/$jrel"
    run_cmd "$BIN" extract --config "$CFG" --data "$T/dcopy" --name j$CASE --quiet
}
for cut in 0 20 $((jsize / 2)); do
    head -c "$cut" "$JPG" >"$T/img.jpg"
    jpeg_case
    check_error "extract: $jname truncated to $cut of $jsize bytes" "$jname"
done
cp "$CFG" "$T/img.jpg"
jpeg_case
check_error "extract: a JSON file as $jname" "$jname"
text_flips "extract: $jname" "$JPG" "$T/img.jpg" "$jname" jpeg_case

testlib_finish
