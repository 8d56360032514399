"""Tables on the console (stderr) for the benchmark results; the JSON files hold every figure."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def _mb(value: int | None) -> str:
    return "-" if value is None else f"{value / 1e6:,.1f}"


def print_edge(result: dict[str, Any], console: Console) -> None:
    """Latency per route and thread count, switch times, bundle sizes, peak memory."""
    table = Table(title=f"latency, batch 1 x {result['settings']['seq_len']} tokens (ms)")
    table.add_column("route")
    for threads in result["latency_ms"]:
        table.add_column(f"p50 {threads}t", justify="right")
        table.add_column(f"p95 {threads}t", justify="right")
    routes = next(iter(result["latency_ms"].values()))
    for route in routes:
        cells = []
        for per_route in result["latency_ms"].values():
            cells += [f"{per_route[route]['p50']:.2f}", f"{per_route[route]['p95']:.2f}"]
        table.add_row(route, *cells)
    console.print(table)
    switch = result["switch_ms"]
    names = ("adapter_swap", "same_language", "adapter_load_and_answer", "new_session")
    parts = [f"{name} {switch[name]['p50']:.2f}" for name in names if name in switch]
    console.print(f"switch {switch['from']} -> {switch['to']} (p50 ms): " + ", ".join(parts))
    disk = result["bundle_bytes"]
    sizes = Table(title="disk (MB)")
    sizes.add_column("N languages", justify="right")
    for column in ("externalized", "merged", "optimum_merged", "copies"):
        sizes.add_column(column, justify="right")
    for n in disk["externalized"]:
        sizes.add_row(
            n,
            _mb(disk["externalized"][n]),
            _mb(disk["merged"][n]),
            _mb(disk["optimum_merged"][n]),
            str(disk["copies"][n]),
        )
    console.print(sizes)
    memory = result["peak_rss_bytes"]
    console.print(
        f"peak RSS serving {', '.join(memory['langs'])}: externalized {_mb(memory['externalized']['peak_rss_bytes'])}"
        f" MB, merged {_mb(memory['merged']['peak_rss_bytes'])} MB"
    )


def _cell(row: dict[str, Any], route: str) -> str:
    return f"{row[route]['em']:.1f} / {row[route]['f1']:.1f}" if route in row else "-"


def print_accuracy(result: dict[str, Any], console: Console) -> None:
    """EM / F1 per run and dataset, for each route measured."""
    measured = result["settings"]["routes"]
    routes = [route for route in ("pytorch_fp32", "onnx_externalized", "onnx_merged") if route in measured]
    table = Table(title=f"EM / F1 (quantization: {result['settings']['quantization']})")
    table.add_column("run")
    table.add_column("dataset")
    for route in routes:
        table.add_column(route.replace("onnx_", "onnx "), justify="right")
    table.add_column("n", justify="right")
    for row in result["rows"]:
        label = f"{row['run_lang']} (zero-shot)" if row["zero_shot"] else row["run_lang"]
        count = next((row[route]["count"] for route in routes if route in row), 0)
        table.add_row(label, row["dataset"], *[_cell(row, route) for route in routes], str(count))
    console.print(table)


def print_ablations(result: dict[str, Any], console: Console) -> None:
    """F1 / EM of every variant on every evaluation set, the stability score, the plots written."""
    datasets = result["settings"]["datasets"]
    table = Table(title=f"ablations, {result['lang']} ({result['settings']['max_steps']} steps each)")
    table.add_column("variant")
    for spec in datasets:
        table.add_column(f"{spec} EM / F1", justify="right")
    table.add_column("same run as")
    for name, variant in result["variants"].items():
        cells = [f"{variant['scores'][s]['em']:.1f} / {variant['scores'][s]['f1']:.1f}" for s in datasets]
        table.add_row(name, *cells, variant["same_run_as"] or "")
    console.print(table)
    stability = result["stability"]
    for key, label in (("method", "the method"), ("full_finetune", "full fine-tuning")):
        if stability.get(key):
            parts = [f"{spec} {value['score']:.3f}" for spec, value in stability[key].items()]
            console.print(f"stability of {label} over seeds {stability['seeds']}: " + ", ".join(parts))
    for setting, name in result["plots"].items():
        console.print(f"plot of F1 against {setting}: {name}")


def print_phone(result: dict[str, Any], console: Console) -> None:
    """The phone bundle against the plain int8 bundle: sizes, F1, load and first-answer times."""
    table = Table(
        title=f"phone bundle ({result['phone_export_flags']}) vs plain int8, {', '.join(result['languages'])}"
    )
    table.add_column("")
    table.add_column("plain int8", justify="right")
    table.add_column("phone", justify="right")
    sizes, timings = result["sizes"], result["timings"]
    table.add_row("bundle MB", _mb(sizes["plain"]["bundle_bytes"]), _mb(sizes["phone"]["bundle_bytes"]))
    table.add_row("largest adapter MB", *[f"{sizes[n]['max_adapter_bytes'] / 1e6:.3f}" for n in ("plain", "phone")])
    for spec, score in result["scores"].items():
        table.add_row(f"{spec} EM / F1", *[f"{score[n]['em']:.1f} / {score[n]['f1']:.1f}" for n in ("plain", "phone")])
    for key, label in (("load_ms", "load ms p50"), ("first_answer_ms", "load + first answer ms p50")):
        table.add_row(label, *[f"{timings[n][key]['p50']:.1f}" for n in ("plain", "phone")])
    table.add_row("answer ms p50", *[f"{timings[n]['answer_ms']['p50']:.1f}" for n in ("plain", "phone")])
    console.print(table)
