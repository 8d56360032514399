"""PAWS-X paraphrase classification: the task stage alone (zero-shot), the method, and full fine-tuning at the same
budget, each over several seeds with stability; int8 against fp32 bundles; the language's adapter file size.

The data design is forced by what PAWS-X ships here (German dev and test, 2,000 pairs each; no English and no
training split): the task stage learns paraphrase detection on the first half of German dev, the language stage
(the method: soft prompt + LoRA, alignment on FLORES English-German, L2 anchor; or full fine-tuning) on the second
half, and everything is scored on German test, which no stage sees. "Zero-shot" therefore means "the task stage
alone, without the language stage" (it has seen German pairs), not cross-lingual transfer. Synthetic pairs are off
(``synthetic_ratio 0``): code-switching German pairs with an English->German lexicon has nothing to switch.

A finished run with the same settings is reused, so an interrupted benchmark continues where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from edgeadapt.bench.ablations import finished_with
from edgeadapt.bench.machine import describe_machine
from edgeadapt.bench.results import merge_summary, write_result

Step = Callable[[str], None]


@dataclass
class PawsxSettings:
    """Data, seeds and budget of the PAWS-X benchmark (see the module docstring for the data design)."""

    lang: str = "de"
    task_data: list[str] = field(default_factory=lambda: ["pawsx:de:dev[:1000]"])
    lang_data: list[str] = field(default_factory=lambda: ["pawsx:de:dev[1000:]"])
    test_data: list[str] = field(default_factory=lambda: ["pawsx:de:test"])
    seeds: list[int] = field(default_factory=lambda: [1, 2, 3])
    epochs: float = 2.0
    task_epochs: float | None = None
    """Epochs of the task stage (None: ``epochs``); both language stages (method, full fine-tuning) use ``epochs``."""
    max_examples: int | None = None


def plan(settings: PawsxSettings, backbone: str) -> dict[str, dict[str, Any]]:
    """Run name -> (TrainConfig, source run name or None), in training order."""
    from edgeadapt.training.config import TrainConfig

    runs: dict[str, dict[str, Any]] = {}
    for seed in settings.seeds:
        common = {"task": "pawsx", "backbone": backbone, "epochs": settings.epochs, "seed": seed, "save_every": 0}
        task_common = {**common, "epochs": settings.task_epochs or settings.epochs}
        task = TrainConfig(lang="en", stage="source", train_data=list(settings.task_data), **task_common)
        method = TrainConfig(
            lang=settings.lang, stage="target", train_data=list(settings.lang_data), synthetic_ratio=0.0, **common
        )
        runs[f"task_seed{seed}"] = {"config": task, "source": None}
        runs[f"method_seed{seed}"] = {"config": method, "source": f"task_seed{seed}"}
        runs[f"finetune_seed{seed}"] = {
            "config": replace(method, adapter="full", prompt_len=0),
            "source": f"task_seed{seed}",
        }
    return runs


def train_runs(runs: dict[str, dict[str, Any]], work: Path, data_dir: str | None, step: Step) -> dict[str, Any]:
    from edgeadapt.training.runs import read_run
    from edgeadapt.training.stages import train

    trained = {}
    for index, (name, item) in enumerate(runs.items(), start=1):
        run_dir = work / name
        if finished_with(run_dir, item["config"]):
            step(f"[{index}/{len(runs)}] {name}: reusing the finished run in {run_dir}")
        else:
            step(f"[{index}/{len(runs)}] {name}: training {item['config'].epochs:g} epochs")
            source = work / item["source"] if item["source"] else None
            train(item["config"], data_dir=data_dir, run_dir=run_dir, source_dir=source)
        info = read_run(run_dir)
        trained[name] = {"run": str(run_dir), "train_seconds": info.get("train_seconds"), "steps": info.get("steps")}
    return trained


def _group(report) -> dict[str, Any]:
    rows = [asdict(row) for row in report.rows]
    stability = {spec: value.to_dict() for spec, value in report.stability.items()}
    accuracies = [row["accuracy"] for row in rows]
    return {
        "rows": rows,
        "accuracy_mean": round(sum(accuracies) / len(accuracies), 2),
        "accuracy_min": min(accuracies),
        "accuracy_max": max(accuracies),
        "macro_f1_mean": round(sum(r["macro_f1"] for r in rows) / len(rows), 2),
        "stability": stability,
    }


def run_pawsx(
    settings: PawsxSettings,
    *,
    backbone: str | None,
    work: Path,
    out_dir: Path,
    data_dir: str | None,
    command: str,
    step: Step,
) -> dict[str, Any]:
    """Train, score and export everything; write ``pawsx.json`` and the ``pawsx`` key of summary.json."""
    from edgeadapt.backbones.resolve import resolve_backbone
    from edgeadapt.bundle import graph_bytes, read_manifest
    from edgeadapt.evaluation.bundle_eval import evaluate_bundle
    from edgeadapt.evaluation.runner import evaluate_runs
    from edgeadapt.export.pipeline import export_bundle

    backbone = resolve_backbone(backbone)
    runs = plan(settings, backbone)
    trained = train_runs(runs, work, data_dir, step)
    groups = {}
    for group in ("task", "method", "finetune"):
        step(f"scoring {group} runs (PyTorch) on {', '.join(settings.test_data)}")
        names = [f"{group}_seed{seed}" for seed in settings.seeds]
        report = evaluate_runs(
            [str(work / name) for name in names], settings.test_data, data_dir=data_dir,
            max_examples=settings.max_examples, batch_size=32, show_progress=False,
        )  # fmt: skip
        groups["zero_shot" if group == "task" else group] = _group(report)
    first = settings.seeds[0]
    bundles = {}
    for quantize in ("none", "int8"):
        bundle = work / f"bundle-{quantize}"
        step(f"exporting task + method seed {first} ({quantize}) and scoring it with onnxruntime")
        export_bundle([work / f"task_seed{first}", work / f"method_seed{first}"], work, bundle, quantize=quantize)
        report = evaluate_bundle(bundle, settings.test_data, lang=settings.lang, data_dir=data_dir,
                                 max_examples=settings.max_examples)  # fmt: skip
        manifest = read_manifest(bundle)
        adapter = manifest.languages[settings.lang].adapter
        bundles[quantize] = {
            "rows": [asdict(row) for row in report.rows],
            "backbone_bytes": graph_bytes(bundle, manifest.backbone),
            "adapter_file": adapter,
            "adapter_bytes": (bundle / adapter).stat().st_size,
            "cpu_flags": report.settings["cpu_flags"],
        }
    delta = bundles["int8"]["rows"][0]["accuracy"] - bundles["none"]["rows"][0]["accuracy"]
    machine = describe_machine()
    result = {
        "command": command,
        "settings": asdict(settings),
        "design": __doc__.split("\n\n")[1].replace("\n", " "),
        "runs": trained,
        **groups,
        "bundles": bundles,
        "int8_accuracy_delta": round(delta, 2),
        "machine": machine,
    }
    write_result(out_dir, "pawsx", result)
    headline = {
        "test": settings.test_data,
        "zero_shot_accuracy": groups["zero_shot"]["accuracy_mean"],
        "method_accuracy": groups["method"]["accuracy_mean"],
        "finetune_accuracy": groups["finetune"]["accuracy_mean"],
        "stability": {g: next(iter(groups[g]["stability"].values()), {}).get("score") for g in groups},
        "int8_accuracy": bundles["int8"]["rows"][0]["accuracy"],
        "fp32_accuracy": bundles["none"]["rows"][0]["accuracy"],
        "int8_accuracy_delta": round(delta, 2),
        "adapter_bytes": bundles["none"]["adapter_bytes"],
        "seeds": settings.seeds,
        "cpu_flags": machine.get("cpu_flags"),
    }
    merge_summary(out_dir, "pawsx", {"pawsx": headline}, machine)
    return result
