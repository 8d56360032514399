"""Run directories with random (non-zero) weights, for tests of evaluation, export and runtime.

They go through the real saving code (:func:`edgeadapt.training.runs.write_run`) and load back
through :func:`edgeadapt.training.runs.load_run_model`, without spending time on training.
"""

from __future__ import annotations

from pathlib import Path

import torch

from edgeadapt.backbones.resolve import weights_fingerprint
from edgeadapt.training.model import PromptedQAModel
from edgeadapt.training.runs import (
    LANG_ADAPTER,
    TASK_ADAPTER,
    is_frozen_in_task_stage,
    load_encoder,
    source_encoder,
    write_run,
)


def _lora(encoder: torch.nn.Module, name: str, rank: int, seed: int, targets: tuple[str, ...] = ("query", "value")):
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=list(targets), lora_dropout=0.0)
    peft_model = get_peft_model(encoder, config, adapter_name=name)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param_name, param in peft_model.named_parameters():
            if f"lora_B.{name}" in param_name or f"lora_A.{name}" in param_name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.3)
    return peft_model


def make_source_run(backbone: Path, run_dir: Path, *, rank: int = 4, seed: int = 0) -> Path:
    """A source-stage (English task) run: task LoRA + span head."""
    model = PromptedQAModel(_lora(load_encoder(str(backbone)), TASK_ADAPTER, rank, seed))
    torch.manual_seed(seed)
    torch.nn.init.normal_(model.qa_outputs.weight, std=0.5)
    torch.nn.init.normal_(model.qa_outputs.bias, std=0.5)  # seeded too: no run's weights depend on test order
    info = {
        "stage": "source",
        "lang": "en",
        "backbone": {"path": str(backbone), "fingerprint": weights_fingerprint(str(backbone))},
        "adapter": {"kind": "lora", "rank": rank, "alpha": 2 * rank, "targets": ["query", "value"]},
    }
    write_run(model, run_dir, info)
    return run_dir


def make_target_run(
    backbone: Path,
    source_run: Path,
    run_dir: Path,
    lang: str,
    *,
    rank: int = 4,
    prompt_len: int = 3,
    seed: int = 1,
    prompt_positions: str = "tail",
    targets: tuple[str, ...] = ("query", "value"),
) -> Path:
    """A target-stage run on top of ``source_run``: language LoRA on ``targets`` + soft prompt (placed by
    ``prompt_positions``)."""
    merged = source_encoder(source_run, str(backbone))
    generator = torch.Generator().manual_seed(seed)
    hidden = merged.config.hidden_size
    prompt = torch.randn(prompt_len, hidden, generator=generator) if prompt_len else None
    model = PromptedQAModel(_lora(merged, LANG_ADAPTER, rank, seed, targets), prompt_len=prompt_len, prompt_init=prompt)
    info = {
        "stage": "target",
        "lang": lang,
        "source_run": str(source_run.resolve()),
        "backbone": {"path": str(backbone), "fingerprint": weights_fingerprint(str(backbone))},
        "adapter": {"kind": "lora", "rank": rank, "alpha": 2 * rank, "targets": list(targets)},
        "config": {"lang": lang, "prompt_len": prompt_len, "prompt_positions": prompt_positions},
    }
    write_run(model, run_dir, info)
    return run_dir


def make_bottleneck_run(
    backbone: Path,
    source_run: Path,
    run_dir: Path,
    lang: str,
    *,
    size: int = 3,
    prompt_len: int = 4,
    targets: tuple[str, ...] = ("layer.*.output.dense",),
    seed: int = 3,
) -> Path:
    """A target-stage run whose language adapter is a bottleneck adapter (random non-zero down and up) + prompt."""
    from edgeadapt.training.bottleneck import BottleneckConfig, add_bottlenecks

    merged = source_encoder(source_run, str(backbone))
    encoder = add_bottlenecks(merged, BottleneckConfig(size, 4.0, targets))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in encoder.named_parameters():
            if "bottleneck_" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.3)
    prompt = torch.randn(prompt_len, merged.config.hidden_size, generator=generator) if prompt_len else None
    model = PromptedQAModel(encoder, prompt_len=prompt_len, prompt_init=prompt)
    info = {
        "stage": "target",
        "lang": lang,
        "source_run": str(source_run.resolve()),
        "backbone": {"path": str(backbone), "fingerprint": weights_fingerprint(str(backbone))},
        "adapter": {"kind": "bottleneck", "rank": size, "alpha": None, "targets": list(targets)},
    }
    write_run(model, run_dir, info)
    return run_dir


def make_full_source_run(backbone: Path, run_dir: Path, *, seed: int = 0, scale: float = 0.05) -> Path:
    """A fully fine-tuned source-stage run: every transformer layer moved off the backbone (embeddings and pooler
    kept, as the task stage keeps them) + span head."""
    encoder = load_encoder(str(backbone))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in encoder.named_parameters():
            if not is_frozen_in_task_stage(name):
                param.add_(torch.randn(param.shape, generator=generator) * scale)
    model = PromptedQAModel(encoder)
    torch.nn.init.normal_(model.qa_outputs.weight, std=0.5, generator=generator)
    torch.nn.init.normal_(model.qa_outputs.bias, std=0.5, generator=generator)
    info = {
        "stage": "source",
        "lang": "en",
        "backbone": {"path": str(backbone), "fingerprint": weights_fingerprint(str(backbone))},
        "adapter": {"kind": "full", "rank": None, "alpha": None, "targets": ["layers"]},
    }
    write_run(model, run_dir, info)
    return run_dir


def make_workspace(backbone: Path, work: Path, *, full_source: bool = False) -> Path:
    """A workspace with an English source run (task LoRA, or ``full_source``: fine-tuned layers) and two target runs
    of different rank and prompt length (yo, sw)."""
    make_source = make_full_source_run if full_source else make_source_run
    source = make_source(backbone, work / "runs" / "en")
    make_target_run(backbone, source, work / "runs" / "yo", "yo", rank=4, prompt_len=3, seed=1)
    make_target_run(backbone, source, work / "runs" / "sw", "sw", rank=2, prompt_len=5, seed=2)
    return work
