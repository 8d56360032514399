"""onnxruntime's graph optimisations done once at export and saved into the graph, so a device skips them at load.

Uses the session's own optimiser (``SessionOptions.optimized_model_filepath``), not the transformer optimiser:
it respects overridable initializers, so every adapter slot stays a graph input with its default (checked).
"""

from __future__ import annotations

import os
from pathlib import Path

OPTIMIZATION_LEVEL = "extended"
"""``ORT_ENABLE_EXTENDED``: constant folding, redundant-node removal and CPU fusions (layer norm, GELU, ...)."""


def optimize_offline(graph: Path, slots: set[str]) -> None:
    """Replace ``graph`` by its onnxruntime-optimised form (CPU); raise if an adapter slot is no longer overridable."""
    import onnxruntime as ort

    from edgeadapt.runtime.engine import DISABLED_FUSIONS

    scratch = graph.with_name(f".{graph.name}.optimized")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(scratch)
    ort.InferenceSession(
        str(graph), options, providers=["CPUExecutionProvider"], disabled_optimizers=DISABLED_FUSIONS
    )  # the fusions the runtime leaves out are not baked in either
    check = ort.SessionOptions()
    check.log_severity_level = 3
    check.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(scratch), check, providers=["CPUExecutionProvider"])
    kept = {value.name for value in session.get_overridable_initializers()}
    missing = sorted(slots - kept)
    if missing:
        scratch.unlink()
        raise RuntimeError(f"onnxruntime's optimiser removed the adapter slots {missing[:3]} from {graph.name}")
    os.replace(scratch, graph)
