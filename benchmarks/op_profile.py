"""Where a window's time goes: onnxruntime's own profiler, kernel time per operator type (1 thread).

Profiles the bundle's externalized backbone with LANG's adapter (sessions as the runtime opens them) and, if given,
optimum's int8 model, on `bench edge`'s input (one 384-token window); prints per operator type the mean kernel
milliseconds per run over 25 runs. Used for BENCHMARKS.md section 4g.

    python benchmarks/op_profile.py BUNDLE LANG [OPTIMUM_MODEL.onnx]

An `If` node's time includes the subgraph it runs (the fused attention), so the total leaves `If` out.
"""

import collections
import json
import os
import sys
from pathlib import Path

import onnxruntime as ort

from edgeadapt.bench.edge import latency_feeds
from edgeadapt.runtime.engine import DISABLED_FUSIONS

RUNS = 25


def profile(model: Path, feeds: dict, adapter: Path | None, disabled: list[str]) -> collections.Counter:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.enable_profiling = True
    options.profile_file_prefix = "/tmp/edgeadapt_op_profile"
    options.log_severity_level = 3
    session = ort.InferenceSession(
        str(model), options, providers=["CPUExecutionProvider"], disabled_optimizers=disabled
    )
    names = {i.name for i in session.get_inputs()}
    inputs = {k: v for k, v in feeds.items() if k in names}
    run_options = ort.RunOptions()
    if adapter is not None:
        loaded = ort.LoraAdapter()
        loaded.Load(str(adapter))
        run_options.add_active_adapter(loaded)
    for _ in range(RUNS):
        session.run(None, inputs, run_options)
    trace = session.end_profiling()
    events = json.loads(Path(trace).read_text())
    os.remove(trace)
    by_op: collections.Counter = collections.Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            by_op[event["args"]["op_name"]] += event["dur"] / RUNS / 1000
    return by_op


def report(title: str, by_op: collections.Counter) -> None:
    total = sum(ms for op, ms in by_op.items() if op != "If")
    print(f"== {title}: {total:.1f} ms of kernels a run (If excluded)")
    for op, ms in by_op.most_common(12):
        print(f"  {op:28s} {ms:7.2f} ms")


def main() -> None:
    bundle, lang = Path(sys.argv[1]), sys.argv[2]
    feeds = latency_feeds(bundle, 384)
    report(f"edgeadapt int8, {lang} adapter", profile(bundle / "backbone.onnx", feeds, bundle / f"{lang}.onnx_adapter",
                                                      DISABLED_FUSIONS))  # fmt: skip
    if len(sys.argv) > 3:
        report("optimum int8", profile(Path(sys.argv[3]), feeds, None, []))


if __name__ == "__main__":
    main()
