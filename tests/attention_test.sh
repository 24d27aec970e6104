#!/usr/bin/env bash
# attention_test: `--attention sparse` (the default) against `--attention dense`
# (the reference) end to end: five training epochs on a tiny synthetic set
# (one feature cache for both), every step's pos, neg and total in loss.csv
# within 1e-5 relative (the two paths differ by rounding only; the
# incremental negative pass selects the same negatives); the choice is
# stored in config.json and in the checkpoint; a bad value is refused.
. "$(dirname "$0")/testlib.sh"
testlib_init attention
cd "$T" || exit 1

"$BIN" synth --categories 1 --train 4 --test-good 1 --test-bad 1 --size "$IMG" --quiet data >"$OUT" 2>"$ERR" ||
    { bad "synth"; testlib_finish; exit; }
C=(--data data --runs runs --quiet --image_size "$IMG")
TR=(--epochs 5 --batch 2 --centers 4 --cache runs/sparse/features)
if "$BIN" extract "${C[@]}" --name sparse >"$OUT" 2>"$ERR"; then ok "extract"; else bad "extract"; fi
if "$BIN" train "${C[@]}" "${TR[@]}" --name sparse >"$OUT" 2>"$ERR"; then ok "train (default: sparse)"; else bad "train sparse"; fi
if "$BIN" train "${C[@]}" "${TR[@]}" --name dense --attention dense >"$OUT" 2>"$ERR"; then ok "train --attention dense"
else bad "train dense"; fi

grep -q '"attention": *"sparse"' runs/sparse/config.json && ok "config.json: attention sparse by default" ||
    bad "config.json of the default run does not say attention sparse"
grep -q '"attention": *"dense"' runs/dense/config.json && ok "config.json: attention dense" ||
    bad "config.json of the dense run does not say attention dense"
if command -v h5dump >/dev/null 2>&1; then
    h5dump -a /attention runs/dense/checkpoint.h5 2>/dev/null | grep -q '"dense"' && ok "checkpoint: attention attribute" ||
        bad "checkpoint has no attention attribute 'dense'"
fi

# loss.csv: step,epoch,pos,neg,total,grad_norm
if [ -s runs/sparse/loss.csv ] && [ -s runs/dense/loss.csv ] &&
   [ "$(wc -l <runs/sparse/loss.csv)" = "$(wc -l <runs/dense/loss.csv)" ]; then
    worst=$(paste -d, runs/sparse/loss.csv runs/dense/loss.csv | awk -F, '
        NR > 1 { n = NF / 2; for (c = 3; c <= 5; c++) { a = $c; b = $(c + n); d = a - b; if (d < 0) d = -d;
                 s = b < 0 ? -b : b; r = s > 0 ? d / s : d; if (r > w) w = r } }
        END { printf "%.3g", w + 0 }')
    steps=$(($(wc -l <runs/sparse/loss.csv) - 1))
    if awk -v w="$worst" 'BEGIN { exit !(w <= 1e-5) }'; then ok "loss curves agree over $steps steps (worst $worst relative)"
    else bad "loss curves differ by $worst relative (limit 1e-5)"; fi
else
    bad "loss.csv missing or of different lengths"
fi

if "$BIN" train "${C[@]}" --name bad --attention flash >"$OUT" 2>"$ERR"; then bad "--attention flash accepted"
else grep -q "attention" "$ERR" && ok "--attention flash refused, naming the option" || bad "--attention flash: message does not name it"; fi
testlib_finish
