"""How far int8 export variants move the logits from the fp32 bundle of the same runs, on real questions.

For the first window of each of the first N questions of every dataset: the RMS of (variant - fp32) start and end
logits over the RMS spread of the fp32 logits (0 = identical), median and mean over the windows, and how often
the variant's best start and end tokens are fp32's. Needs no trained weights to compare schemes (random-weight
runs of `random_runs.py` on the real backbone have its activation ranges), though F1 on trained runs decides.
Used for BENCHMARKS.md section 4e.

    python benchmarks/logit_drift.py BUNDLES_DIR int8,int8_all,ffn LANG tydiqa:sw:dev,xquad:en N

BUNDLES_DIR holds an `fp32` bundle (`edgeadapt export --quantize none`) and one folder per variant name.
"""

import sys
from pathlib import Path

import numpy as np

from edgeadapt.data.specs import load_qa
from edgeadapt.runtime import QAEngine
from edgeadapt.runtime.features import pad_batch


def main() -> None:
    root, names, lang = Path(sys.argv[1]), sys.argv[2].split(","), sys.argv[3]
    specs, count = sys.argv[4].split(","), int(sys.argv[5])
    reference = QAEngine(root / "fp32", threads=1)
    engines = {name: QAEngine(root / name, threads=1) for name in names}
    drift: dict[str, list[float]] = {name: [] for name in names}
    agree = dict.fromkeys(names, 0)
    windows = 0
    for spec in specs:
        for example in load_qa(spec)[:count]:
            feeds = pad_batch([reference.windows(example.question, example.context)[0]], 1)
            start, end = reference.logits(feeds, lang)
            spread = np.concatenate([start.ravel(), end.ravel()]).std()
            windows += 1
            for name, engine in engines.items():
                other_start, other_end = engine.logits(feeds, lang)
                difference = np.concatenate([(other_start - start).ravel(), (other_end - end).ravel()])
                drift[name].append(float(np.sqrt((difference**2).mean()) / spread))
                agree[name] += int(other_start.argmax() == start.argmax() and other_end.argmax() == end.argmax())
    for name in names:
        print(
            f"{name:12s} relative RMS drift median {np.median(drift[name]):.4f} mean {np.mean(drift[name]):.4f}"
            f"  best span as fp32 {agree[name]}/{windows}"
        )


if __name__ == "__main__":
    main()
