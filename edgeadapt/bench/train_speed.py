"""Source-stage training throughput: windows per second of real optimizer steps, recipe against recipe.

Each variant is the source stage as ``edgeadapt train --lang en`` would run it (same model, data, batches, loss,
optimizer), timed over ``steps`` consecutive steps after ``warmup`` untimed ones. Windows/s is the number of
windows trained divided by the wall time of those steps, so length grouping (shorter batches) counts for what
it saves. All variants run in one process on the same data, one after the other.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import torch

from edgeadapt.training.config import TrainConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SpeedVariant:
    """One recipe: the source adapter, the compute precision, whether batches are grouped by length and how many of
    the lowest layers full fine-tuning keeps frozen (``--freeze-layers``)."""

    name: str
    source_adapter: str
    precision: str
    length_grouping: bool
    frozen_layers: int | None = 0  # None: the default (TrainConfig.frozen_layer_count)


VARIANTS = {
    "before": SpeedVariant("before", "lora", "fp32", False),  # the source stage before this recipe existed
    "lora_bf16": SpeedVariant("lora_bf16", "lora", "bf16", False),
    "full_fp32": SpeedVariant("full_fp32", "full", "fp32", False),
    "full_fp32_grouped": SpeedVariant("full_fp32_grouped", "full", "fp32", True),
    "full_bf16": SpeedVariant("full_bf16", "full", "bf16", False),
    "full_all_layers": SpeedVariant("full_all_layers", "full", "auto", True),  # the default until 7 December
    "full_frozen6": SpeedVariant("full_frozen6", "full", "auto", True, 6),
    "after": SpeedVariant("after", "full", "auto", True, None),  # today's default: the lowest third frozen
}


@dataclass(frozen=True)
class SpeedResult:
    variant: str
    source_adapter: str
    precision: str
    compute_dtype: str
    length_grouping: bool
    frozen_layers: int
    steps: int
    windows: int
    seconds: float
    windows_per_s: float
    step_seconds_p50: float
    mean_tokens_per_batch_row: float
    trainable_parameters: int

    def to_dict(self) -> dict:
        return asdict(self)


def measure_variant(
    variant: SpeedVariant,
    base: TrainConfig,
    data_for: Callable[[bool], object],
    *,
    steps: int,
    warmup: int,
    first_step: int = 0,
) -> SpeedResult:
    """Time ``steps`` training steps of ``variant`` (after ``warmup``) on the data ``data_for(grouping)`` gives."""
    from edgeadapt.training.batches import BatchPlan
    from edgeadapt.training.loop import forward_backward, precision_dtype
    from edgeadapt.training.models import build_source_model, trainable_count
    from edgeadapt.training.objective import StageObjective
    from edgeadapt.training.stages import with_frozen_layers

    config = with_frozen_layers(  # the default count settled as `edgeadapt train` settles it
        replace(
            base,
            source_adapter=variant.source_adapter,
            precision=variant.precision,
            length_grouping=variant.length_grouping,
            frozen_layers=variant.frozen_layers,
        )
    )
    data = data_for(variant.length_grouping)
    model = build_source_model(config.backbone, config)
    objective = StageObjective(model, 0.0, config.l2_weight).train()
    trainable = [p for p in objective.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=config.weight_decay)
    dtype = precision_dtype(config.precision, torch.device("cpu"))
    plan = BatchPlan.make(config.batch_size, 0.0, len(data.real), 0, 0)
    durations, windows, tokens = [], 0, []
    for index in range(warmup + steps):
        step = first_step + index
        began = time.perf_counter()
        task, _ = data.batch(plan, config.seed, step)
        forward_backward(objective, task, None, torch.device("cpu"), dtype)
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if index >= warmup:
            durations.append(time.perf_counter() - began)
            windows += int(task["input_ids"].shape[0])
            tokens.append(int(task["input_ids"].shape[1]))
        log.info("%s step %d: %.2f s", variant.name, index, time.perf_counter() - began)
    seconds = sum(durations)
    return SpeedResult(
        variant=variant.name,
        source_adapter=variant.source_adapter,
        precision=variant.precision,
        compute_dtype="bfloat16" if dtype is not None else "float32",
        length_grouping=variant.length_grouping,
        frozen_layers=config.frozen_layers or 0,
        steps=steps,
        windows=windows,
        seconds=round(seconds, 3),
        windows_per_s=round(windows / seconds, 3),
        step_seconds_p50=round(statistics.median(durations), 3),
        mean_tokens_per_batch_row=round(statistics.fmean(tokens), 1),
        trainable_parameters=trainable_count(model),
    )


def run_train_speed_benchmark(
    variants: list[str],
    *,
    backbone: str | None,
    data_dir: str | None,
    out_dir,
    max_examples: int,
    steps: int,
    warmup: int,
    batch_size: int,
    command: str,
    on_step: Callable[[str], None] = lambda message: None,
) -> dict:
    """Measure every variant in one process on the same windows; write ``train_speed.json`` and the summary's
    ``source_stage.windows_per_s_before/after``."""
    from pathlib import Path

    from edgeadapt.backbones.resolve import resolve_backbone
    from edgeadapt.bench.machine import describe_machine
    from edgeadapt.bench.results import merge_summary, read_json, write_result
    from edgeadapt.errors import EdgeAdaptError
    from edgeadapt.training.data import prepare_data
    from edgeadapt.training.stages import load_tokenizer

    unknown = [name for name in variants if name not in VARIANTS]
    if unknown:
        raise EdgeAdaptError(f"unknown variant {unknown[0]!r}: choose from {', '.join(VARIANTS)}")
    path = resolve_backbone(backbone)
    base = TrainConfig(lang="en", stage="source", backbone=path, max_train_examples=max_examples, batch_size=batch_size)
    on_step(f"windowing up to {max_examples} examples of the source stage's default data")
    prepared = prepare_data(base, load_tokenizer(path), data_dir)
    results = []
    for name in variants:
        on_step(f"timing {name}: {warmup} + {steps} steps")
        result = measure_variant(
            VARIANTS[name], base, lambda grouping: replace(prepared.data, group_lengths=grouping),
            steps=steps, warmup=warmup,
        )  # fmt: skip
        results.append(result.to_dict())
    machine = describe_machine()
    by_name = {row["variant"]: row for row in results}
    report = {
        "command": command,
        "machine": machine,
        "settings": {"max_examples": max_examples, "steps": steps, "warmup": warmup, "batch_size": batch_size,
                     "max_length": base.max_length, "doc_stride": base.doc_stride, "backbone": path,
                     "windows": len(prepared.data.real), "train": prepared.provenance["train"]},
        "variants": results,
    }  # fmt: skip
    out_dir = Path(out_dir)
    write_result(out_dir, "train_speed", report)
    if "before" in by_name and "after" in by_name:
        before, after = by_name["before"]["windows_per_s"], by_name["after"]["windows_per_s"]
        source_stage = read_json(out_dir / "summary.json").get("source_stage", {})
        source_stage |= {
            "windows_per_s_before": before,
            "windows_per_s_after": after,
            "throughput_ratio": round(after / before, 3),
            "throughput_command": command,
        }
        merge_summary(out_dir, "train_speed", {"source_stage": source_stage}, machine)
    return report
