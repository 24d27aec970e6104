#!/usr/bin/env python3
"""anomaly_maps_to_adeval.py RUN_DIR [OUT.pkl]: converts <run>/anomaly_maps.h5 (written by
`mvead eval --save_maps`) into the pickle that Real-IAD's official evaluator (ADEval,
winggan/adeval) reads: a dict {image path: (anomaly map float32 (H, W), image score, mask path or
None)}. Default OUT: <run>/adeval.pkl. Then, for Real-IAD-style names:

    python3 -m adeval --sample_key_pat "([a-zA-Z][a-zA-Z0-9_]*_[0-9]{4}_[A-Z][A-Z_]*[A-Z])_C[0-9]_" RUN_DIR/adeval.pkl

The maps are stored at mvead's evaluation size (--eval_size); ADEval resizes each one to its mask's
(image's) size itself, so save them at `--eval_size original` to feed ADEval what mvead scored.
Needs numpy and h5py."""
import pickle
import sys

import h5py
import numpy as np


def text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    run = sys.argv[1].rstrip("/")
    out = sys.argv[2] if len(sys.argv) == 3 else run + "/adeval.pkl"
    with h5py.File(run + "/anomaly_maps.h5", "r") as f:
        if text(f.attrs.get("mvead_kind", "")) != "anomaly_maps":
            sys.exit(f"{run}/anomaly_maps.h5: not an mvead anomaly_maps file")
        images = [text(p) for p in f["image_path"][()]]
        masks = [text(p) for p in f["mask_path"][()]]
        scores = f["image_score"][()]
        result = {}
        for i, path in enumerate(images):
            amap = f["maps"][i] if "maps" in f else f[f"views/{i}"][()]
            result[path] = (np.ascontiguousarray(amap, dtype=np.float32), float(scores[i]), masks[i] or None)
    with open(out, "wb") as fp:
        pickle.dump(result, fp)
    print(f"{len(result)} views -> {out}")


if __name__ == "__main__":
    main()
