"""onnxruntime's mobile format: ``.ort`` graphs plus the operator list for a minimal onnxruntime build."""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
import tempfile
from pathlib import Path

from edgeadapt.bundle import Manifest, weights_file

REQUIRED_OPERATORS = "required_operators.config"


def convert_to_ort(graph: Path, scratch: Path) -> tuple[Path, Path]:
    """Convert one ONNX graph (fixed optimisations); returns the ``.ort`` file and its operator config."""
    from onnxruntime.tools.convert_onnx_models_to_ort import OptimizationStyle, convert_onnx_models_to_ort

    source = scratch / graph.name
    shutil.copy2(graph, source)
    weights = graph.with_name(weights_file(graph.name))
    if weights.is_file():
        shutil.copy2(weights, scratch / weights.name)
    logging.getLogger("ort_format_model.utils").setLevel(logging.WARNING)  # one INFO line per converted graph
    with contextlib.redirect_stdout(io.StringIO()):
        convert_onnx_models_to_ort(source, output_dir=scratch, optimization_styles=[OptimizationStyle.Fixed])
    ort_file = scratch / f"{graph.stem}.ort"
    configs = sorted(scratch.glob("*required_operators*.config"))
    if not ort_file.exists() or not configs:
        raise RuntimeError(f"onnxruntime did not produce a .ort file and operator config for {graph.name}")
    return ort_file, configs[0]


def convert_bundle_to_ort(bundle: Path, manifest: Manifest) -> None:
    """Add ``.ort`` copies of the bundle's graphs and one ``required_operators.config``; record them in the manifest."""
    graphs = [manifest.backbone] if manifest.backbone else []
    graphs += [entry.graph for entry in manifest.languages.values() if entry.graph]
    operators: list[str] = []
    for name in dict.fromkeys(graphs):
        with tempfile.TemporaryDirectory(dir=bundle) as scratch:
            ort_file, config = convert_to_ort(bundle / name, Path(scratch))
            shutil.move(str(ort_file), bundle / ort_file.name)
            operators += [line for line in config.read_text().splitlines() if line.strip()]
    header = f"# onnxruntime operators needed by {', '.join(dict.fromkeys(graphs))} (edgeadapt export --mobile)"
    lines = [header] + [line for line in _merge_operator_lines(operators) if not line.startswith("#")]
    (bundle / REQUIRED_OPERATORS).write_text("\n".join(lines) + "\n")
    manifest.required_operators = REQUIRED_OPERATORS
    if manifest.backbone:
        manifest.mobile_backbone = Path(manifest.backbone).with_suffix(".ort").name
    for entry in manifest.languages.values():
        if entry.graph:
            entry.mobile_graph = Path(entry.graph).with_suffix(".ort").name


def _merge_operator_lines(lines: list[str]) -> list[str]:
    """Union of operator-config lines (``domain;opset;Op1,Op2``), comments kept once."""
    comments = [line for line in dict.fromkeys(lines) if line.startswith("#")]
    ops: dict[str, set[str]] = {}
    for line in lines:
        if line.startswith("#"):
            continue
        domain, opset, names = line.split(";", 2)
        ops.setdefault(f"{domain};{opset}", set()).update(n for n in names.split(",") if n)
    return comments + [f"{key};{','.join(sorted(names))}" for key, names in sorted(ops.items())]
