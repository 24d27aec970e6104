#!/bin/bash
# cli_test: drives the real `mvead` program on a tiny synthetic dataset in a
# temporary folder: help and usage errors (exit codes 0 / 2 / 1 and messages
# naming the option or path), one end-to-end run and its files, config.json
# round trip (bitwise-identical metrics), train resume after a simulated kill,
# a truncated checkpoint, report --compare, predict (must reproduce eval's
# image scores), grads (+ a small gradcheck), calibrate --from-cache, and the
# HTML report in headless chromium when it is installed.
# Environment: MVEAD_BIN (the program), MVEAD_LONG=1 adds the ablation grid.
# Uses h5dump (Debian hdf5-tools) when present; prints SKIP lines otherwise.
set -u

BAD_TAIL=5
. "$(dirname "$0")/testlib.sh"
testlib_init cli


# expect RC DESCRIPTION -- command...   (stdout in $OUT, stderr in $ERR)
expect() {
    local want=$1 desc=$2
    shift 3
    "$@" >"$OUT" 2>"$ERR"
    local rc=$?
    if [ "$rc" = "$want" ]; then ok "$desc (exit $rc)"; return 0; fi
    bad "$desc: exit $rc, expected $want"
    return 1
}

# contains FILE TEXT DESCRIPTION
contains() {
    if grep -qF -- "$2" "$1"; then ok "$3"; else bad "$3: '$2' not in $(basename "$1")"; fi
}

# ---- help and usage errors -----------------------------------------------------

expect 0 "mvead --help" -- "$BIN" --help
contains "$OUT" "commands:" "mvead --help lists the commands"
expect 2 "unknown command" -- "$BIN" frobnicate
contains "$ERR" "frobnicate" "unknown command is named"
expect 2 "no command" -- "$BIN"

declare -A HELP_OPT=(
    [demo]=--epochs [synth]=--size [import-weights]=safetensors [calibrate]=--from-cache
    [epilines]=--points [extract]=--backbone [train]=--objective [bank]=--coreset_ratio
    [eval]=--sigma [run]=--fusion [predict]=--images [ablate]=--fusion [report]=--compare
    [grads]=--gradcheck
)
for cmd in demo synth import-weights calibrate epilines extract train bank eval run predict ablate report grads; do
    if expect 0 "$cmd --help" -- "$BIN" "$cmd" --help; then
        contains "$OUT" "${HELP_OPT[$cmd]}" "$cmd --help mentions ${HELP_OPT[$cmd]}"
    fi
done

for cmd in train extract bank eval run predict grads ablate report; do
    expect 2 "$cmd with an unknown option" -- "$BIN" "$cmd" --no-such-option 3
    contains "$ERR" "no-such-option" "$cmd names the unknown option"
done
expect 2 "synth with an unknown option" -- "$BIN" synth --no-such-option "$T/x"
contains "$ERR" "no-such-option" "synth names the unknown option"
# the small commands' flags are typed and range-checked
expect 2 "synth --seed -1" -- "$BIN" synth --seed -1 "$T/x"
contains "$ERR" "--seed" "bad synth --seed names the option"
expect 2 "synth --size 12x" -- "$BIN" synth --size 12x "$T/x"
contains "$ERR" "--size" "non-numeric synth --size names the option"
expect 2 "calibrate --threshold abc" -- "$BIN" calibrate --corr "$T/c.txt" --out "$T/c.json" --threshold abc
contains "$ERR" "--threshold" "bad calibrate --threshold names the option"
expect 2 "calibrate with both --corr and --from-cache" -- "$BIN" calibrate --corr "$T/c.txt" --from-cache "$T/f.h5" --out "$T/c.json"
expect 2 "epilines --view 0" -- "$BIN" epilines --calib "$T/c.json" --images a,b --points 1,2 --out "$T/e.png" --view 0
contains "$ERR" "--view" "bad epilines --view names the option"
expect 2 "epilines --delta without a value" -- "$BIN" epilines --delta
contains "$ERR" "needs a value" "a flag without its value says so"

expect 2 "run --fusion bogus" -- "$BIN" run --fusion bogus --runs "$T/runs"
contains "$ERR" "--fusion" "bad --fusion value names the option"
expect 2 "train --epochs -1" -- "$BIN" train --epochs -1 --runs "$T/runs"
contains "$ERR" "--epochs" "bad --epochs value names the option"
expect 2 "run --coreset_ratio 2" -- "$BIN" run --coreset_ratio 2 --runs "$T/runs"
contains "$ERR" "--coreset_ratio" "bad --coreset_ratio names the option"
expect 2 "bank --memory_mb -1" -- "$BIN" bank --memory_mb -1 --runs "$T/runs"
contains "$ERR" "--memory_mb" "bad --memory_mb names the option"
expect 2 "train --lr abc" -- "$BIN" train --lr abc --runs "$T/runs"
contains "$ERR" "--lr" "non-numeric --lr names the option"
expect 2 "grads --gradcheck_n 0" -- "$BIN" grads --gradcheck_n 0
contains "$ERR" "--gradcheck_n" "bad --gradcheck_n names the option"
expect 1 "extract --data /nonexistent" -- "$BIN" extract --data /nonexistent/mvead_data --runs "$T/runs" --name missing --quiet
contains "$ERR" "/nonexistent/mvead_data" "missing dataset path is named"
expect 2 "run --config missing.json" -- "$BIN" run --config "$T/missing.json" --runs "$T/runs"
contains "$ERR" "missing.json" "missing config file is named"
expect 1 "predict on a run that does not exist" -- "$BIN" predict --runs "$T/runs" --name ghost --images a.jpg --out "$T/p"
contains "$ERR" "ghost" "predict names the missing run"
expect 1 "report on a run that does not exist" -- "$BIN" report --runs "$T/runs" --name ghost
contains "$ERR" "metrics.json" "report names the missing metrics.json"

# ---- a tiny dataset and one run end to end -----------------------------------------

DATA=$T/data
RUNS=$T/runs
COMMON=(--data "$DATA" --runs "$RUNS" --epochs 1 --centers 4 --image_size "$IMG" --quiet)
expect 0 "synth tiny dataset" -- "$BIN" synth --categories 1 --train 4 --test-good 2 --test-bad 2 --size "$IMG" --quiet "$DATA"
if [ ! -f "$DATA/calibration.json" ]; then bad "synth wrote calibration.json"; fi

if expect 0 "run r1 end to end" -- "$BIN" run "${COMMON[@]}" --name r1; then
    for f in config.json checkpoint.h5 bank.h5 scores.h5 metrics.json report.html report.md loss.csv; do
        if [ -s "$RUNS/r1/$f" ]; then ok "run wrote $f"; else bad "run wrote $f"; fi
    done
    # every metric is null (degenerate) or a number in [0, 1]
    vals=$(grep -oE '"(image|sample|pixel)_[a-z]+": *[^,}]+' "$RUNS/r1/metrics.json" | sed 's/.*: *//')
    nvals=$(echo "$vals" | grep -c .)
    badvals=$(echo "$vals" | awk '$1 != "null" && !($1 + 0 >= 0 && $1 + 0 <= 1) {print}' | grep -c .)
    if [ "$nvals" -ge 7 ] && [ "$badvals" = 0 ]; then ok "metrics.json: $nvals values, all in [0, 1]"
    else bad "metrics.json values in [0, 1] ($nvals values, $badvals out of range)"; fi
    # both metric sets at every level, and the evaluation size (issue 18)
    n_sets=$(grep -cE '"(exact|adeval)": \{' "$RUNS/r1/metrics.json")
    if [ "$n_sets" -ge 6 ]; then ok "metrics.json: exact and adeval sets at every level ($n_sets)"
    else bad "metrics.json: exact and adeval sets at every level (found $n_sets)"; fi
    contains "$RUNS/r1/metrics.json" '"eval_size": "original"' "metrics.json states the evaluation size"
    contains "$RUNS/r1/report.md" "ADEval" "report.md shows the official tool's set"
    contains "$RUNS/r1/report.html" "<svg" "report.html has inline SVG plots"
    contains "$RUNS/r1/report.md" "| **mean** |" "report.md has the table"
    if grep -qE '<script|src="https?:|href="https?:' "$RUNS/r1/report.html"; then bad "report.html is self-contained"
    else ok "report.html is self-contained (no script, no external URL)"; fi
    # every section and picture docs/cmd/report.md lists
    for id in threshold results per-view-table per-defect-table curves loss samples attention epilines worst-fp worst-fn \
              provenance config; do
        contains "$RUNS/r1/report.html" "id=\"$id\"" "report.html has the $id section"
    done
    for t in "ROC, pixel level" "PRO curve" "ROC, sample level" "Precision-recall, image level" \
             'alt="attention"' 'alt="epipolar lines"' "Real-IAD's official evaluator"; do
        contains "$RUNS/r1/report.html" "$t" "report.html shows $t"
    done
    n_bars=$(grep -o '<div class="cbar">' "$RUNS/r1/report.html" | wc -l)
    [ "$n_bars" = 2 ] && ok "report.html has a colour bar under each heatmap section" || bad "report.html colour bars: $n_bars, expected 2"
    contains "$RUNS/r1/report.html" "the black mark is the threshold" "the colour bars mark the threshold"
    n_views=$(grep -o '<figcaption><b>C[0-9]</b>' "$RUNS/r1/report.html" | sort -u | wc -l)
    [ "$n_views" = 5 ] && ok "report.html labels the views C1-C5" || bad "report.html labels the views C1-C5 ($n_views labels)"
    contains "$RUNS/r1/report.html" "NG</b> when its image score is" "report.html states the threshold"
    for t in "## Operating threshold" "## Per view" "## Per defect type" "## Provenance"; do
        contains "$RUNS/r1/report.md" "$t" "report.md has $t"
    done
    if grep -qE 'lambda</b> = 0\.1000000|data\\/' "$RUNS/r1/report.html"; then bad "configuration values read as written"
    else ok "configuration values read as written (no 0.1000000000001, no escaped slashes)"; fi
fi

# ---- config.json round trip: same metrics, bitwise ------------------------------
if [ -f "$RUNS/r1/config.json" ]; then
    if expect 0 "run r2 from r1's config.json" -- "$BIN" run --config "$RUNS/r1/config.json" --name r2 --quiet; then
        if cmp -s "$RUNS/r1/metrics.json" "$RUNS/r2/metrics.json"; then ok "config.json round trip reproduces metrics.json bitwise"
        else bad "config.json round trip reproduces metrics.json bitwise"; fi
    fi
fi

# ---- --eval_size N: pixel metrics at N x N (after the round trip: eval rewrites r1) ----
if [ -f "$RUNS/r1/metrics.json" ]; then
    if expect 0 "eval at --eval_size $((IMG / 2)) --save_maps" -- "$BIN" eval --runs "$RUNS" --name r1 --eval_size $((IMG / 2)) --save_maps --no-heatmaps --quiet; then
        contains "$RUNS/r1/metrics.json" "\"eval_size\": \"$((IMG / 2))\"" "metrics.json records --eval_size $((IMG / 2))"
        if [ -s "$RUNS/r1/anomaly_maps.h5" ]; then ok "--save_maps wrote anomaly_maps.h5"; else bad "--save_maps wrote anomaly_maps.h5"; fi
    fi
    expect 2 "eval --eval_size 12x" -- "$BIN" eval --runs "$RUNS" --name r1 --eval_size 12x --quiet
    contains "$ERR" "--eval_size" "a bad --eval_size names the option"
fi

# ---- report --compare -----------------------------------------------------------------
if expect 0 "report --compare r1 r2" -- "$BIN" report --compare "$RUNS/r1" "$RUNS/r2" --out "$T/cmp12"; then
    contains "$OUT" "image_auroc" "compare table has the metrics"
    contains "$OUT" "r2" "compare table names the runs"
    # r1 was re-evaluated above at another --eval_size, which its config.json records
    contains "$T/cmp12/compare.html" "<td class=\"k\">eval_size</td><td class=\"k\">$((IMG / 2))</td><td class=\"k\">original</td>" \
        "compare.html shows the evaluation size in which r1 and r2 differ"
fi
if expect 0 "report --compare r2 r2" -- "$BIN" report --compare "$RUNS/r2" "$RUNS/r2" --out "$T/cmp22"; then
    contains "$T/cmp22/compare.html" "same settings" "compare.html: a run against itself has no differing setting"
fi
expect 0 "run r3: r1 with other centres and fusion none" -- "$BIN" run --config "$RUNS/r1/config.json" --name r3 --centers 3 --fusion none --quiet
if expect 0 "report --compare r1 r3" -- "$BIN" report --compare "$RUNS/r1" "$RUNS/r3" --out "$T/cmp13"; then
    for f in compare.html compare.md; do
        if [ -s "$T/cmp13/$f" ]; then ok "report --compare wrote $f"; else bad "report --compare wrote $f"; fi
    done
    contains "$T/cmp13/compare.html" '<td class="k">centers</td><td class="k">4</td><td class="k">3</td>' "compare.html shows the centres that differ"
    contains "$T/cmp13/compare.md" "| centers | 4 | 3 |" "compare.md shows the centres that differ"
    contains "$T/cmp13/compare.html" '<td class="k">objective</td><td class="k">mcp+reg</td><td class="k">–</td>' \
        "compare.html shows no objective for a run that trained nothing"
    contains "$T/cmp13/compare.html" "Training loss (total)" "compare.html overlays the loss curves"
fi
expect 2 "report --compare without run folders" -- "$BIN" report --compare --out "$T/cmp0"
expect 0 "report regenerates r1's report" -- "$BIN" report --runs "$RUNS" --name r1 --quiet
contains "$RUNS/r1/report.html" 'id="history-table"' "the report's provenance lists the run's history"
contains "$RUNS/r1/report.md" "| time (UTC) | command |" "report.md lists the run's history"
contains "$RUNS/r1/history.jsonl" '"argv":["mvead","run",' "history.jsonl records the whole command line"

# ---- a stage of an existing run takes the run's options (no --data needed) ------------
expect 0 "bank of r1 without --data, approximate streamed coreset" -- "$BIN" bank --runs "$RUNS" --name r1 --coreset_mode approx --quiet
contains "$RUNS/r1/config.json" '"data": "' "config.json keeps the run's dataset"
expect 0 "eval of r1 without --data" -- "$BIN" eval --runs "$RUNS" --name r1 --quiet
if command -v h5dump >/dev/null 2>&1; then
    h5dump -a /coreset_mode "$RUNS/r1/bank.h5" >"$OUT" 2>&1
    contains "$OUT" "approx-streaming" "the bank records the streamed approximate coreset"
fi

# ---- resume after a kill == uninterrupted ---------------------------------------------
FEAT=$RUNS/r1/features
TRAIN=("$BIN" train --config "$RUNS/r1/config.json" --cache "$FEAT" --epochs 2 --quiet)

# ---- numerics: a diverging run stops naming the step, or skips the batch -----------------
expect 1 "train with lr 1e30 stops on a non-finite loss" -- "${TRAIN[@]}" --name diverge --epochs 3 --lr 1e30
contains "$ERR" "non-finite" "the error says what was not finite"
contains "$ERR" "step 1" "the error names the step"
expect 0 "train with lr 1e30 --nan_policy skip finishes" -- "${TRAIN[@]}" --name diverge --epochs 3 --lr 1e30 --nan_policy skip
contains "$RUNS/diverge/loss.csv" "grad_norm" "loss.csv logs the gradient norm"

expect 137 "train killed after epoch 1" -- env MVEAD_TEST_DIE_AFTER_EPOCH=1 "${TRAIN[@]}" --name resumed
expect 0 "train --resume finishes" -- "${TRAIN[@]}" --name resumed --resume
expect 0 "uninterrupted 2-epoch train" -- "${TRAIN[@]}" --name straight
if command -v h5dump >/dev/null 2>&1; then
    same=1
    for d in eam/ln_w eam/wq eam/bo eam/wo centers adamw/step adamw/m/wq adamw/v/wv log/total log/epoch; do
        # (the first line names the file)
        h5dump -d "/$d" "$RUNS/resumed/checkpoint.h5" 2>&1 | tail -n +2 >"$T/a.txt"
        h5dump -d "/$d" "$RUNS/straight/checkpoint.h5" 2>&1 | tail -n +2 >"$T/b.txt"
        if ! grep -q "DATA" "$T/a.txt" || ! cmp -s "$T/a.txt" "$T/b.txt"; then same=0; echo "       differs: $d"; fi
    done
    if [ $same = 1 ]; then ok "resumed checkpoint equals the uninterrupted one (h5dump)"
    else bad "resumed checkpoint equals the uninterrupted one (h5dump)"; fi
else
    echo "SKIP h5dump (hdf5-tools): comparing metrics after bank + eval instead"
    for r in resumed straight; do
        "$BIN" bank --config "$RUNS/r1/config.json" --cache "$FEAT" --name $r --quiet >/dev/null 2>&1
        "$BIN" eval --config "$RUNS/r1/config.json" --cache "$FEAT" --name $r --quiet --no-heatmaps >/dev/null 2>&1
    done
    if [ -s "$RUNS/resumed/metrics.json" ] && cmp -s "$RUNS/resumed/metrics.json" "$RUNS/straight/metrics.json"; then
        ok "resumed run's metrics equal the uninterrupted run's"
    else bad "resumed run's metrics equal the uninterrupted run's"; fi
fi

# ---- a truncated checkpoint is an error naming the file ----------------------------------
mkdir -p "$RUNS/broken"
if [ -f "$RUNS/straight/checkpoint.h5" ]; then
    head -c 2000 "$RUNS/straight/checkpoint.h5" >"$RUNS/broken/checkpoint.h5"
    expect 1 "bank with a truncated checkpoint" -- "$BIN" bank --config "$RUNS/r1/config.json" --cache "$FEAT" --name broken --quiet
    contains "$ERR" "checkpoint.h5" "truncated checkpoint is named"
fi

# ---- predict reproduces eval's image scores ---------------------------------------------
SAMPLE=$(ls -d "$DATA"/realiad_1024/*/NG/*/S* 2>/dev/null | sort | tail -1)
if [ -n "$SAMPLE" ] && [ -f "$RUNS/r1/bank.h5" ]; then
    IMGS=$(ls "$SAMPLE"/*.jpg | sed -E 's/.*_C([0-9]+)_.*/\1 &/' | sort -n | cut -d' ' -f2- | paste -sd, -)
    if expect 0 "predict one sample" -- "$BIN" predict --runs "$RUNS" --name r1 --images "$IMGS" --out "$T/pred" --quiet; then
        for f in scores.json C1.png; do
            if [ -s "$T/pred/$f" ]; then ok "predict wrote $f"; else bad "predict wrote $f"; fi
        done
        contains "$OUT" "sample score" "predict prints the sample score"
        if grep -qE '^verdict: (OK|NG) \(threshold ' "$OUT"; then ok "predict gives a verdict with the run's threshold"
        else bad "predict gives a verdict with the run's threshold"; fi
        contains "$T/pred/scores.json" '"verdict"' "scores.json records the verdict"
        if command -v h5dump >/dev/null 2>&1; then
            row=$(grep "image score" "$OUT" | awk '{print $4}' | paste -sd, - | sed 's/,/, /g')
            if h5dump -d /image_scores "$RUNS/r1/scores.h5" | grep -qF -- ": $row"; then ok "predict's image scores equal eval's ($row)"
            else bad "predict's image scores ($row) equal eval's"; fi
        else
            echo "SKIP h5dump: predict vs eval scores"
        fi
    fi
    expect 2 "predict without --images" -- "$BIN" predict --runs "$RUNS" --name r1 --out "$T/pred2"
    expect 1 "predict with a missing image" -- "$BIN" predict --runs "$RUNS" --name r1 --images "$T/nope1.jpg,$T/nope2.jpg,$T/nope3.jpg,$T/nope4.jpg,$T/nope5.jpg" --out "$T/pred3"
    contains "$ERR" "nope1.jpg" "predict names the missing image"
fi

# ---- settings that are true: config.json only on success, history.jsonl, --resume ---------
if [ -f "$RUNS/r1/history.jsonl" ]; then
    n=$(grep -c '^{.*}$' "$RUNS/r1/history.jsonl")
    if [ "$n" -ge 4 ]; then ok "history.jsonl: one whole line per stage ($n)"; else bad "history.jsonl: $n lines"; fi
    for key in '"commit":' '"argv":' '"changed":' '"peak_rss_mib":' '"calibration_sha256":"' '"backbone":"preset:' '"samples":{"train":4,"test":4}'; do
        contains "$RUNS/r1/history.jsonl" "$key" "history.jsonl records $key"
    done
else
    bad "run wrote history.jsonl"
fi
cp "$RUNS/r1/config.json" "$T/r1_config.json"
expect 1 "train with a missing --calib fails" -- "$BIN" train --runs "$RUNS" --name r1 --calib "$T/no_calib.json" --epochs 1 --lr 0.5 --quiet
if cmp -s "$RUNS/r1/config.json" "$T/r1_config.json"; then ok "a failed train leaves config.json as it was"
else bad "a failed train rewrote config.json"; fi
expect 2 "train --resume --lr 0.01 is refused" -- "${TRAIN[@]}" --name resumed --resume --lr 0.01 --seed 9
contains "$ERR" "--lr (0.0001 -> 0.01)" "the refusal names --lr and its values"
contains "$ERR" "--seed" "the refusal names --seed"
expect 0 "train --resume --epochs 3 --threads 1 (extending) is allowed" -- "${TRAIN[@]}" --name resumed --resume --epochs 3 --threads 1
expect 0 "train --resume with no checkpoint" -- "${TRAIN[@]}" --name fresh --resume --epochs 1
contains "$ERR" "nothing to resume" "--resume with nothing to resume says so"

# ---- interrupts stop at a safe point, say so, exit 128 + the signal -----------------------
expect 130 "SIGINT during train" -- env MVEAD_TEST_SIGINT_AFTER_EPOCH=1 "${TRAIN[@]}" --name intr --epochs 3
contains "$ERR" "interrupted (SIGINT) after epoch 1 of 3 (checkpoint saved" "train says where it stopped"
contains "$ERR" "rerun with --resume" "train says how to go on"
[ -f "$RUNS/intr/config.json" ] && bad "an interrupted train wrote config.json" || ok "an interrupted train wrote no config.json"
expect 0 "train --resume after SIGINT" -- "${TRAIN[@]}" --name intr --resume
expect 143 "SIGTERM during extract" -- env MVEAD_TEST_SIGTERM_AFTER_SAMPLE=2 "$BIN" extract --data "$DATA" --runs "$RUNS" --image_size "$IMG" --quiet --name xintr
contains "$ERR" "interrupted (SIGTERM) after train sample 2 of 4" "extract says where it stopped"
# resumed, with progress lines: the rate counts only this run's samples (was 499625.29 it/s)
"$BIN" extract --data "$DATA" --runs "$RUNS" --image_size "$IMG" --name xintr >"$OUT" 2>"$ERR"
rc=$?
maxrate=$(grep -oE '[0-9.]+ it/s' "$ERR" | awk '{ if ($1 > m) m = $1 } END { print m + 0 }')
if [ $rc = 0 ] && grep -q "resuming" "$ERR" && awk -v r="$maxrate" 'BEGIN { exit !(r < 5000) }'; then
    ok "resumed extract: progress rate $maxrate it/s (only this run's samples)"
else bad "resumed extract (exit $rc, max rate $maxrate it/s)"; fi

# ---- messages that point the right way -------------------------------------------------------
if [ -f "$RUNS/r1/checkpoint.h5" ]; then
    expect 2 "attention --sample 999" -- "$BIN" attention --runs "$RUNS" --name r1 --sample 999
    contains "$ERR" "--sample must be in [0, 4)" "attention names the true bound"
fi
if [ -n "${IMGS:-}" ]; then
    FOUR=$(echo "$IMGS" | cut -d, -f1-4)
    expect 2 "predict with 4 images for a 5-view run" -- "$BIN" predict --runs "$RUNS" --name r1 --images "$FOUR" --out "$T/pred4" --quiet
    contains "$ERR" "4 images given, but run 'r1' has 5 views" "predict blames the images, not the bank"
    EP_IMGS=$(echo "$IMGS" | cut -d, -f1-5)
    expect 2 "epilines with a point outside the image" -- "$BIN" epilines --calib "$DATA/calibration.json" --images "$EP_IMGS" --points '500,500' --out "$T/ep.png"
    contains "$ERR" "outside the" "epilines says the point is outside the image"
    expect 0 "epilines with a point inside" -- "$BIN" epilines --calib "$DATA/calibration.json" --images "$EP_IMGS" --points '10,12;20,20' --out "$T/ep.png"
fi
expect 2 "report --compare with no run folders" -- "$BIN" report --compare
contains "$ERR" "needs at least one run folder" "report --compare says what is missing"
# a missing test mask is reported before anything is extracted
cp -r "$DATA" "$T/data_nomask"
MASK=$(find "$T/data_nomask" -name '*.png' -path '*NG*' | sort | head -1)
rm -f "$MASK"
expect 1 "extract with a missing test mask" -- "$BIN" extract --data "$T/data_nomask" --runs "$RUNS" --image_size "$IMG" --name nomask --quiet
contains "$ERR" "$(basename "$MASK")" "the missing mask is named"
if [ -e "$RUNS/nomask/features/train.h5" ] || [ -e "$RUNS/nomask/features/train.h5.partial" ]; then
    bad "extract with a missing test mask extracted the train split first"
else ok "nothing was extracted before the missing mask was reported"; fi

# ---- grads and a small gradcheck -----------------------------------------------------------
if [ -f "$RUNS/r1/checkpoint.h5" ]; then
    if expect 0 "grads of one batch" -- "$BIN" grads --runs "$RUNS" --name r1 --batch 2 --quiet; then
        if [ -s "$RUNS/r1/grads.h5" ]; then ok "grads wrote grads.h5"; else bad "grads wrote grads.h5"; fi
        contains "$OUT" "wq" "grads prints the norm table"
    fi
    expect 0 "grads --gradcheck (float64, subset)" -- "$BIN" grads --runs "$RUNS" --name r1 --batch 1 --gradcheck --gradcheck_n 2 --out "$T/g.h5" --quiet
    contains "$OUT" "worst relative error" "gradcheck reports the worst relative error"
fi

# ---- automatic calibration from the feature cache ----------------------------------------------
if [ -f "$FEAT/train.h5" ]; then
    if expect 0 "calibrate --from-cache" -- "$BIN" calibrate --from-cache "$FEAT/train.h5" --out "$T/auto_calib.json" --threshold 7; then
        contains "$T/auto_calib.json" '"source":"features"' "automatic calibration JSON written"
    fi
fi
expect 1 "calibrate --from-cache missing file" -- "$BIN" calibrate --from-cache "$T/none/train.h5" --out "$T/c.json"
contains "$ERR" "none/train.h5" "missing cache is named"

# ---- the ablation grid (long) --------------------------------------------------------------
if [ "${MVEAD_LONG:-0}" = 1 ]; then
    if expect 0 "ablate grid" -- "$BIN" ablate "${COMMON[@]}" --name abl; then
        contains "$RUNS/abl/ablation.csv" "eam-mcp+reg-mvbank" "ablation.csv has every variant"
        expect 0 "ablate again skips finished variants" -- "$BIN" ablate "${COMMON[@]}" --name abl
        contains "$OUT" "skip" "finished variants are skipped"
    fi
else
    echo "SKIP ablate grid (set MVEAD_LONG=1)"
fi

# ---- the report in a real browser --------------------------------------------------------------
CHROME=$(command -v chromium || command -v chromium-browser || true)
if [ -n "$CHROME" ] && [ -f "$RUNS/r1/report.html" ]; then
    PROFILE=$(mktemp -d "$T/chrome.XXXXXX")
    timeout 60 "$CHROME" --headless --no-sandbox --disable-gpu --disable-background-networking \
        --disable-component-update --disable-sync --no-first-run --user-data-dir="$PROFILE" \
        --enable-logging=stderr --v=0 --dump-dom "file://$RUNS/r1/report.html" >"$T/dom.html" 2>"$T/chrome.log"
    if grep -q "<svg" "$T/dom.html" && ! grep -qE "Uncaught|ERROR:CONSOLE" "$T/chrome.log"; then
        ok "chromium renders report.html without console errors"
    else
        bad "chromium renders report.html without console errors"
        tail -5 "$T/chrome.log"
    fi
    # at 1300 px no element may stick out of the page: a copy of the page with a
    # script that measures every element (the report itself has no script)
    sed 's|</body>|<script>var w=document.documentElement.clientWidth,b=[];document.querySelectorAll("body *").forEach(function(e){var r=e.getBoundingClientRect();if(r.right>w+1)b.push(e.tagName+"#"+e.id+"."+e.className+":"+Math.round(r.right));});document.body.setAttribute("data-overflow",b.length?b.slice(0,4).join(" "):"none");</script></body>|' \
        "$RUNS/r1/report.html" >"$RUNS/r1/report_width.html"
    for page in "$RUNS/r1/report_width.html" "$T/cmp13/compare.html"; do
        [ -f "$page" ] || continue
        timeout 60 "$CHROME" --headless --no-sandbox --disable-gpu --disable-background-networking \
            --disable-component-update --disable-sync --no-first-run --user-data-dir="$PROFILE" --window-size=1300,900 \
            --screenshot="$T/shot.png" "file://$page" >/dev/null 2>&1
        if [ -s "$T/shot.png" ]; then ok "screenshot of $(basename "$page") at 1300 px"; else bad "screenshot of $(basename "$page") at 1300 px"; fi
        rm -f "$T/shot.png"
    done
    timeout 60 "$CHROME" --headless --no-sandbox --disable-gpu --disable-background-networking \
        --disable-component-update --disable-sync --no-first-run --user-data-dir="$PROFILE" --window-size=1300,900 \
        --dump-dom "file://$RUNS/r1/report_width.html" >"$T/dom_w.html" 2>/dev/null
    if grep -q 'data-overflow="none"' "$T/dom_w.html"; then ok "no element of report.html is wider than a 1300 px page"
    else bad "no element of report.html is wider than a 1300 px page: $(grep -o 'data-overflow="[^"]*"' "$T/dom_w.html")"; fi
    rm -f "$RUNS/r1/report_width.html"
else
    echo "SKIP chromium"
fi

testlib_finish
