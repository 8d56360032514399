"""`edgeadapt train`: the source stage (English QA) and the per-language target stage, in one command."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from edgeadapt.cli.common import DataDirOption, WorkdirOption, console
from edgeadapt.training.config import (
    DEFAULT_SOURCE_BUDGET,
    DEFAULT_TARGET_STEPS,
    FULL_FINETUNE_LR,
    QUICKSTART_MINUTES,
    SOURCE_FULL_LR,
    SOURCE_LR,
    TARGET_LR,
    TrainConfig,
)

_D = TrainConfig()


def _rate(value: float) -> str:
    """A learning rate as people write it: 3e-4."""
    return f"{value:.0e}".replace("e-0", "e-")


_SOURCE_MINUTES = round(DEFAULT_SOURCE_BUDGET / 60)


HELP = (
    "Adapt the backbone to a language: soft prompt + LoRA, alignment loss, L2 anchor, synthetic data.\n\n"
    "--lang en trains the source (task) stage into <workdir>/runs/en: extractive QA on every QA training split in"
    " the data directory (TyDi QA, SQuAD when fetched, DRCD, CMRC 2018, ARCD, COVID-QA, AfriQA train splits), by"
    " default by fine-tuning the encoder's transformer layers (--adapter full; embeddings and the lowest third of"
    " the layers frozen, --freeze-layers), or with a task"
    " LoRA (--adapter lora). Any other language trains its target stage into <workdir>/runs/<lang>: a soft prompt"
    " and a language LoRA over the backbone with the source stage's weights in; the span head of the source run"
    " stays frozen (one head is shared by every language of an export). A target run with no source run trains the"
    " source stage first. Loss: L_task + lambda L_align + beta ||theta - theta_0||^2. A language with QA training"
    " data of its own trains on it alone by default; one without trains on synthetic (code-switched) QA data with"
    " the alignment loss (--synthetic-ratio, --align-weight set either way).\n\n"
    f"With no flags: the source stage for {_SOURCE_MINUTES} minutes (--time-budget; scored on TyDi QA"
    f" English dev as it goes, the best weights kept), then Yoruba ({_D.batch_size} x {_D.max_length} tokens,"
    f" {DEFAULT_TARGET_STEPS} steps): about {QUICKSTART_MINUTES} minutes on 2 CPU cores.\n\n"
    "--task pawsx trains sentence-pair paraphrase classification (PAWS-X TSV) the same way, into"
    " <workdir>/runs/pawsx/<lang>: a pair head on the mean of the last hidden states, 128-token pairs. --lang en"
    " is then its task stage (on whatever pairs --train-data names: PAWS-X English train when you have it) and any"
    " other language its language stage.\n\n"
    """Examples:

  edgeadapt train                                  # English source stage + Yoruba

  edgeadapt train --lang en --time-budget 3h --eval-data tydiqa:en:dev --eval-data xquad:de   # the long recipe

  edgeadapt train --lang en --adapter lora --max-steps 220    # the source stage as a task LoRA

  edgeadapt train --lang sw --prompt-len 20 --align-weight 0.5

  edgeadapt train --lang sw --adapter bottleneck --bottleneck-size 16   # FFN bottleneck adapters, not LoRA

  edgeadapt train --lang ha --parallel-data flores200:hau_Latn:dev --synthetic-ratio 0.4

  edgeadapt train --lang yo --max-steps 20 --resume   # continue after Ctrl-C

  edgeadapt train --lang en --task pawsx --train-data "pawsx:de:dev[:1000]" --epochs 3   # paraphrase task stage

  edgeadapt train --lang de --task pawsx --train-data "pawsx:de:dev[1000:]" --synthetic-ratio 0   # its language

  torchrun --standalone --nproc_per_node 2 -m edgeadapt train --lang yo   # data-parallel, CPU or GPU

  accelerate launch --multi_gpu --num_processes 2 -m edgeadapt train --lang yo
"""
)


def train(
    lang: str = typer.Option("yo", "--lang", "-l", help="Language to train: en (source stage) or any other code."),
    task: str = typer.Option(
        "qa", "--task", help="qa (extractive question answering) or pawsx (sentence-pair paraphrase classification)."
    ),
    backbone: str | None = typer.Option(
        None, "--backbone", help="HF folder, cached name or hub name (default: multilingual-e5-small)."
    ),
    train_data: list[str] = typer.Option(
        [],
        "--train-data",
        help="Training data spec, repeatable (e.g. afriqa:yo:train; pawsx:de:dev[:1000] for a row range)"
        " (default: per language).",
    ),
    leave_out: list[str] = typer.Option(
        [],
        "--leave-out",
        help="Source stage: train on no QA data in this language, repeatable (e.g. --leave-out yo --leave-out sw),"
        " so that its language adapter is what teaches it the language (BENCHMARKS.md 3: what the adapters add"
        " then). Applies to the default data and to --train-data.",
    ),
    parallel_data: list[str] = typer.Option(
        [], "--parallel-data", help="Parallel data spec, repeatable (e.g. flores200:yo:dev) (default: per language)."
    ),
    prompt_len: int = typer.Option(_D.prompt_len, "--prompt-len", help="Soft prompt length k (target stage)."),
    prompt_init: str = typer.Option(
        _D.prompt_init, "--prompt-init", help="'vocab' (random real vocabulary rows, seeded) or 'text:<words>'."
    ),
    prompt_positions: str = typer.Option(
        _D.prompt_positions,
        "--prompt-positions",
        help="tail: the prompt takes the last k rows of the position table and the text keeps its positions"
        " (as in the source stage); shift: the text moves k positions on (earlier runs; costs accuracy early).",
    ),
    no_prompt: bool = typer.Option(False, "--no-prompt", help="Train the language LoRA without a soft prompt."),
    adapter: str | None = typer.Option(
        None,
        "--adapter",
        help="Language adapter: lora (peft LoRA on --lora-targets, the default) or bottleneck (parallel bottleneck"
        " adapters, ReLU, on --bottleneck-targets); or full: fine-tune every encoder weight (the full fine-tuning"
        f" baseline, lr {_rate(FULL_FINETUNE_LR)}, saved whole as safetensors; evaluable, not exportable). With"
        " --lang en: how the source stage learns the task, full (the transformer layers above the lowest third; the"
        " default) or lora.",
    ),
    source_adapter: str = typer.Option(
        _D.source_adapter,
        "--source-adapter",
        help="How a source stage trained on the way to a target language learns the task: full or lora.",
    ),
    time_budget: str | None = typer.Option(
        None,
        "--time-budget",
        help="Wall-clock budget per stage (45m, 3h, 1h30m): the step count is fitted to the measured step speed,"
        " schedule included, and fitted again after 64 steps from the run's own speed (default for the source"
        f" stage: {_SOURCE_MINUTES}m; --max-steps / --epochs take precedence).",
    ),
    eval_data: list[str] = typer.Option(
        [],
        "--eval-data",
        help="QA set scored while training, repeatable; the first selects the kept weights (default for the source"
        " stage: tydiqa:en:dev when present; never a training split).",
    ),
    eval_every: int | None = typer.Option(
        None, "--eval-every", help="Evaluate every N steps (default: 8 times a stage; 0: off)."
    ),
    eval_max_examples: int | None = typer.Option(
        _D.eval_max_examples, "--eval-max-examples", help="Questions scored per --eval-data set."
    ),
    precision: str = typer.Option(
        _D.precision,
        "--precision",
        help="auto (bf16 autocast where the CPU/GPU has native bfloat16, else fp32), fp32 or bf16.",
    ),
    length_grouping: bool = typer.Option(
        _D.length_grouping,
        "--length-grouping/--no-length-grouping",
        help="Batch windows of similar length together (less padding).",
    ),
    lora_rank: int = typer.Option(_D.lora_rank, "--lora-rank", help="LoRA rank r (alpha = 2r)."),
    lora_targets: list[str] = typer.Option(
        [],
        "--lora-targets",
        help="Module names to adapt, comma-separated or repeated (default: query,key,value,dense for en;"
        " intermediate.dense,output.dense otherwise: the attention output and both FFN projections).",
    ),
    bottleneck_size: int = typer.Option(
        _D.bottleneck_size, "--bottleneck-size", help="--adapter bottleneck: bottleneck width r (W_down [r, in])."
    ),
    bottleneck_scale: float = typer.Option(
        _D.bottleneck_scale, "--bottleneck-scale", help="--adapter bottleneck: scale s of the adapter's output."
    ),
    bottleneck_targets: list[str] = typer.Option(
        [],
        "--bottleneck-targets",
        help="--adapter bottleneck: module name suffixes, comma-separated or repeated, '*' = one name part"
        " (default: layer.*.output.dense, the FFN output of every layer).",
    ),
    align_weight: float | None = typer.Option(
        None,
        "--align-weight",
        help="lambda of the alignment loss (default: 0 for a language with QA training data of its own, 0.5 for one"
        " without; BENCHMARKS.md 3c).",
    ),
    l2_weight: float = typer.Option(_D.l2_weight, "--l2-weight", help="beta of the L2 anchor ||theta - theta_0||^2."),
    synthetic_ratio: float | None = typer.Option(
        None,
        "--synthetic-ratio",
        help="Share of synthetic (code-switched) examples in each target batch (default: 0 for a language with QA"
        " training data of its own, which then trains on it alone; a language without trains on synthetic data).",
    ),
    synthetic_generator: str = typer.Option(
        _D.synthetic_generator, "--synthetic-generator", help="Synthetic data generator (registered name)."
    ),
    freeze: list[str] = typer.Option(
        [], "--freeze", help="Keep 'prompt' or 'adapter' frozen (repeatable); the span head is always frozen here."
    ),
    frozen_layers: int | None = typer.Option(
        None,
        "--freeze-layers",
        help="Full fine-tuning: keep the N transformer layers nearest the embeddings as pulled; no gradient flows"
        " through them, so a step is faster (default: the lowest third for the source stage, 4 of e5-small's 12;"
        " 0 for --adapter full).",
    ),
    max_steps: int | None = typer.Option(
        None,
        "--max-steps",
        help=f"Steps per stage (default: the source stage's --time-budget, {DEFAULT_TARGET_STEPS} for a language).",
    ),
    epochs: float | None = typer.Option(None, "--epochs", help="Passes over the task data (instead of --max-steps)."),
    max_examples: int | None = typer.Option(None, "--max-examples", help="Use a seeded sample of the QA examples."),
    lr: float | None = typer.Option(
        None,
        "--lr",
        help=f"AdamW learning rate, linear warm-up and decay (default: {_rate(SOURCE_FULL_LR)} source full,"
        f" {_rate(SOURCE_LR)} source LoRA, {_rate(TARGET_LR)} language adapter, {_rate(FULL_FINETUNE_LR)} --adapter"
        " full).",
    ),
    batch_size: int = typer.Option(_D.batch_size, "--batch-size", help="Global batch size (split over processes)."),
    max_length: int | None = typer.Option(
        None, "--max-length", help="Tokens per window (default: 256 for QA, 128 for sentence pairs)."
    ),
    doc_stride: int | None = typer.Option(
        None,
        "--doc-stride",
        help="Context tokens shared by adjacent windows (default: half of what a window leaves after a 64-token"
        " question, at most 128: 96 at 256 tokens, 32 at 128).",
    ),
    seed: int = typer.Option(_D.seed, "--seed", help="Seed of initialisation, data order and sampling."),
    save_every: int = typer.Option(_D.save_every, "--save-every", help="Checkpoint every N steps (0: only on Ctrl-C)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the checkpoint of an interrupted run."),
    run_name: str | None = typer.Option(None, "--run-name", help="Run directory name under <workdir>/runs."),
    out: Path | None = typer.Option(None, "--out", help="Run directory (overrides --run-name)."),
    source_run: Path | None = typer.Option(None, "--source-run", help="Source run (default: <workdir>/runs/en)."),
    workdir: str | None = WorkdirOption,
    data_dir: str | None = DataDirOption,
) -> None:
    """Adapt the backbone to a language (see the examples below)."""
    from edgeadapt import paths
    from edgeadapt.tasks import check_task, runs_subdir
    from edgeadapt.training.budget import parse_duration
    from edgeadapt.training.loop import TrainingInterrupted
    from edgeadapt.training.stages import train as run_training

    source = lang.strip().lower() in ("en", "eng", "english")
    config = TrainConfig(
        lang=lang,
        task=check_task(task),
        backbone=backbone,
        train_data=list(train_data),
        leave_out=list(leave_out),
        parallel_data=list(parallel_data),
        prompt_len=0 if no_prompt else prompt_len,
        prompt_init=prompt_init,
        prompt_positions=prompt_positions,
        lora_rank=lora_rank,
        lora_targets=_names(lora_targets),
        adapter=(adapter if adapter and not source else _D.adapter),
        source_adapter=(adapter if adapter and source else source_adapter),
        time_budget=parse_duration(time_budget) if time_budget else None,
        eval_data=list(eval_data),
        eval_every=eval_every,
        eval_max_examples=eval_max_examples,
        precision=precision,
        length_grouping=length_grouping,
        bottleneck_size=bottleneck_size,
        bottleneck_scale=bottleneck_scale,
        bottleneck_targets=_names(bottleneck_targets),
        align_weight=align_weight,
        l2_weight=l2_weight,
        synthetic_ratio=synthetic_ratio,
        synthetic_generator=synthetic_generator,
        freeze=list(freeze),
        frozen_layers=frozen_layers,
        max_steps=max_steps,
        epochs=epochs,
        max_train_examples=max_examples,
        lr=lr,
        batch_size=batch_size,
        max_length=max_length,
        doc_stride=doc_stride,
        seed=seed,
        save_every=save_every,
    )
    runs = paths.runs_dir(workdir) / runs_subdir(config.task)
    run_dir = out if out is not None else (runs / run_name if run_name else None)
    try:
        results = run_training(
            config, workdir=workdir, data_dir=data_dir, run_dir=run_dir, source_dir=source_run, resume=resume,
            console=console,
        )  # fmt: skip
    except TrainingInterrupted as exc:
        console.print(str(exc))
        raise typer.Exit(code=130) from None
    if all(r.main_process for r in results):
        _summary(results)


train.__doc__ = HELP


def _names(values: list[str]) -> list[str] | None:
    """Module names given as repeated options and/or comma-separated (``--lora-targets query,key --lora-targets
    dense``), in order without repeats; None when none are given."""
    names = [name.strip() for value in values for name in value.split(",") if name.strip()]
    return list(dict.fromkeys(names)) or None


def _summary(results) -> None:
    table = Table(title="edgeadapt train")
    for column in ("stage", "lang", "steps", "time", "trainable", "task", "align", "l2", "run"):
        table.add_column(column)
    for r in results:
        loss = r.losses
        table.add_row(
            r.stage,
            r.lang,
            str(r.steps),
            f"{r.seconds / 60:.1f} min",
            f"{r.trainable:,}",
            *(f"{loss[k]:.4g}" if k in loss else "-" for k in ("task", "align", "l2")),
            str(r.run_dir),
        )
    console.print(table)
