"""Latency of several exported bundles against optimum's int8 model, timed in turns in one process (medians).

`bench edge` times the default export only; this compares export variants (default int8, --int8-all,
--int8-weight-only, fp32) of the same runs with optimum's int8 model of the source run, on one 384-token window
(`bench edge`'s input), asked in LANG. Used for BENCHMARKS.md section 4.

    python benchmarks/route_latency.py BUNDLES_DIR LANG int8,int8_all,wo,fp32 ROUNDS [OPTIMUM_MODEL.onnx]

BUNDLES_DIR holds one bundle folder per name; OPTIMUM_MODEL is `edgeadapt.bench.peer.export_peer`'s output.
"""

import sys
import time
from pathlib import Path

import numpy as np

from edgeadapt.bench.edge import latency_feeds
from edgeadapt.bench.peer import load_peer
from edgeadapt.runtime import QAEngine


def main() -> None:
    root, lang, names, rounds = Path(sys.argv[1]), sys.argv[2], sys.argv[3].split(","), int(sys.argv[4])
    peer_file = Path(sys.argv[5]) if len(sys.argv) > 5 else None
    feeds = latency_feeds(root / names[0], 384)
    for threads in (1, 2):
        calls = {}
        for name in names:
            engine = QAEngine(root / name, threads=threads)
            calls[name] = lambda engine=engine: engine.logits(feeds, lang)
        if peer_file:
            peer = load_peer(peer_file, threads)
            inputs = {k: v for k, v in feeds.items() if k in {i.name for i in peer.model.get_inputs()}}
            calls["optimum"] = lambda peer=peer, inputs=inputs: peer(**inputs)
        times: dict[str, list[float]] = {name: [] for name in calls}
        for round_index in range(rounds + 2):  # two warm-up rounds
            for name, call in calls.items():
                began = time.perf_counter()
                call()
                if round_index >= 2:
                    times[name].append((time.perf_counter() - began) * 1e3)
        median = {name: float(np.median(values)) for name, values in times.items()}
        reference = "optimum" if peer_file else names[0]
        print(f"{threads} thread(s), p50 ms:", {name: round(value, 1) for name, value in median.items()})
        print(f"  ratio to {reference}:", {name: round(value / median[reference], 3) for name, value in median.items()})


if __name__ == "__main__":
    main()
