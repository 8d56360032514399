"""The two stages of ``edgeadapt train``, run one after the other when needed.

- source stage (``--lang en``): QA on English with a frozen backbone: task LoRA + span head.
- target stage (any other language): soft prompt + language LoRA on the backbone with the source
  task LoRA merged in, source span head frozen, ``L = L_task + lambda L_align + beta ||theta - theta_0||^2``.
If a target stage finds no finished source run, it trains the source stage first.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rich.console import Console

from edgeadapt import paths
from edgeadapt.errors import EdgeAdaptError
from edgeadapt.fileio import write_json_atomic
from edgeadapt.tasks import QA, runs_subdir
from edgeadapt.training.batches import BatchPlan
from edgeadapt.training.budget import (
    BUDGET_FILE,
    BudgetPlan,
    format_duration,
    read_budget_plan,
    refit_steps,
    refits,
    short_budget_hint,
)
from edgeadapt.training.checkpoint import read_checkpoint, remove_checkpoint
from edgeadapt.training.config import SOURCE_LANG, TrainConfig
from edgeadapt.training.data import prepare_data, task_specs
from edgeadapt.training.loop import eval_steps, make_accelerator, precision_dtype, run_loop
from edgeadapt.training.models import build_source_model, build_target_model, trainable_count
from edgeadapt.training.objective import StageObjective
from edgeadapt.training.pairs import prepare_pair_data
from edgeadapt.training.periodic_eval import EVALS_FILE
from edgeadapt.training.report import CURVES_FILE, plot_curves, recent_means
from edgeadapt.training.runs import (
    ADAPTER_DIRS,
    FULL_ENCODER_DIR,
    LANG_ADAPTER,
    RUN_FILE,
    TASK_ADAPTER,
    TASK_ENCODER_FILE,
    mark_unfinished,
    read_run,
    run_task,
    write_run,
)
from edgeadapt.windows import WindowPolicy

ALIGN_FEATURES = "mean of the last-layer hidden states over the real (non-prompt, non-padding) tokens"
SHARED_WITH_SOURCE = (
    "task",
    "backbone",
    "lora_rank",
    "lora_alpha",
    "lora_targets",
    "lora_dropout",
    "max_steps",
    "epochs",
    "lr",
    "batch_size",
    "max_length",
    "doc_stride",
    "max_train_examples",
    "seed",
    "save_every",
    "source_adapter",
    "frozen_layers",
    "precision",
    "length_grouping",
    "time_budget",
    "leave_out",
)


@dataclass
class StageResult:
    """What one stage did, for the summary table."""

    stage: str
    lang: str
    run_dir: Path
    steps: int
    seconds: float
    losses: dict[str, float]
    trainable: int
    main_process: bool = True


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("edgeadapt", "torch", "transformers", "peft", "accelerate", "tokenizers", "safetensors"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "absent"
    return out


def load_tokenizer(backbone: str):
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(backbone)
    except (OSError, ValueError) as exc:
        raise EdgeAdaptError(f"cannot load the tokenizer of backbone '{backbone}': {str(exc).splitlines()[0]}") from exc
    if not tokenizer.is_fast:
        raise EdgeAdaptError(f"backbone '{backbone}' has no fast tokenizer (tokenizer.json): edgeadapt needs one")
    return tokenizer


def total_steps(config: TrainConfig, n_real: int, n_synthetic: int) -> int:
    """``--max-steps``, else ``--epochs`` passes over the real task windows (synthetic if none), else the default."""
    if config.max_steps is not None:
        return config.max_steps
    if config.epochs is not None:
        plan = BatchPlan.make(config.batch_size, config.synthetic_ratio, n_real, n_synthetic, 0)
        pool, rows = (n_real, plan.real) if n_real else (n_synthetic, plan.synthetic)
        return max(1, int(-(-config.epochs * pool // rows)))
    return config.default_steps


def _backbone_identity(backbone: str) -> dict[str, str]:
    from edgeadapt.backbones.resolve import weights_fingerprint

    return {"path": backbone, "fingerprint": weights_fingerprint(backbone)}


def check_source_run(source_dir: Path, identity: dict[str, str], task: str = QA) -> None:
    """The source run must be finished, a source stage, and made on this very backbone."""
    info = read_run(source_dir)
    if info["stage"] != "source":
        raise EdgeAdaptError(f"{source_dir} is a {info['stage']} run, not a source (English) run")
    if run_task(info) != task:
        raise EdgeAdaptError(
            f"source run {source_dir} learned the task {run_task(info)!r}, this stage trains {task!r}: train its task"
            f" stage with `edgeadapt train --lang en --task {task}` or pass --source-run"
        )
    if info["backbone"]["fingerprint"] != identity["fingerprint"]:
        raise EdgeAdaptError(
            f"source run {source_dir} was trained on another backbone ({info['backbone']['path']}):"
            f" retrain it with `edgeadapt train --lang en --backbone {identity['path']}` or pass that backbone"
        )


def run_stage(
    config: TrainConfig,
    run_dir: Path,
    *,
    data_dir: str | None,
    source_dir: Path | None = None,
    resume: bool = False,
    console: Console | None = None,
    on_step=None,
) -> StageResult:
    """Train one stage into ``run_dir`` (``config.backbone`` must be resolved; ``source_dir`` for a target)."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # the pooler of a bare encoder is unused: its warning would only confuse
    console = console or Console(stderr=True)
    accelerator = make_accelerator()
    main = accelerator.is_main_process
    identity = _backbone_identity(config.backbone)
    if config.stage == "target":
        check_source_run(source_dir, identity, config.task)
    config = with_frozen_layers(with_data_mix(config, data_dir))
    config = _fitted_on_resume(config.with_default_budget(), run_dir, resume)
    resume = _check_resume(config, run_dir, resume, console if main else None)
    tokenizer = load_tokenizer(config.backbone)
    if config.task == QA:
        prepared = prepare_data(config, tokenizer, data_dir)
    else:
        source_specs = [item["spec"] for item in read_run(source_dir)["data"]["train"]] if source_dir else []
        prepared = prepare_pair_data(config, tokenizer, data_dir, source_specs=source_specs)
    evaluator = _evaluator(config, tokenizer, data_dir)
    if config.stage == "source":
        model = build_source_model(config.backbone, config)
    else:
        model = build_target_model(config.backbone, source_dir, config, tokenizer)
    objective = StageObjective(model, config.align_weight if config.stage == "target" else 0.0, config.l2_weight)
    budget = read_budget_plan(run_dir) if resume and config.time_budget is not None else None
    if not resume and main:
        (run_dir / BUDGET_FILE).unlink(missing_ok=True)  # an earlier run's plan
    if config.time_budget is not None and config.max_steps is None and config.epochs is None:
        budget = _fit_budget(config, objective, prepared.data, evaluator, accelerator.device)
        config = replace(config, max_steps=budget.steps)
        if main:
            run_dir.mkdir(parents=True, exist_ok=True)
            write_json_atomic(run_dir / BUDGET_FILE, budget.to_json())
        if main:
            console.print(
                f"time budget {format_duration(config.time_budget)}: {budget.steps} steps at"
                f" {budget.seconds_per_step:.2f} s a step, {budget.evaluations} evaluations of"
                f" {budget.seconds_per_evaluation:.0f} s"
            )
            # a plan that the run will refit is judged after the refit (the calibration can be far off)
            hint = short_budget_hint(budget) if config.stage == "source" and not refits(budget.steps) else None
            if hint:
                console.print(f"[yellow]warning:[/] {hint}")
    steps = total_steps(config, len(prepared.data.real), len(prepared.data.synthetic))
    if main:
        counts = prepared.provenance["counts"]
        console.print(
            f"[bold]{config.stage} stage, {config.lang}[/]: {steps} steps of {config.batch_size},"
            f" {counts['real_windows']} task windows, {counts['synthetic_windows']} synthetic,"
            f" {counts['align_pairs']} parallel pairs; {trainable_count(model):,} trainable parameters"
            f" on {accelerator.device} x{accelerator.num_processes}"
        )
    began = time.perf_counter()
    if main:
        mark_unfinished(run_dir)  # retraining in place: the old run.json must not vouch for the new files
    refit = None  # a resumed run keeps the schedule it had
    if budget is not None and not resume:
        refit = _BudgetRefit(
            budget, config.eval_every, evaluator is not None, run_dir, console if main else None,
            warn_short=config.stage == "source",
        )  # fmt: skip
    result = run_loop(
        objective, prepared.data, config, run_dir, steps, resume=resume, console=console, on_step=on_step,
        accelerator=accelerator, evaluator=evaluator,
        warmup_of=None if budget is None else budget.steps,  # the calibration's count, also after a refit
        refit=refit,
    )  # fmt: skip
    if refit is not None:
        budget = refit.plan
        steps = budget.final_steps
        config = replace(config, max_steps=steps)
    if main:
        from edgeadapt.evaluation.predict import window_settings

        # eval's and export's default windows: 384-token QA windows; sentence pairs as they were trained
        length = None if config.task == QA else config.max_length
        serve = window_settings(accelerator.unwrap_model(model), length, None)
        info = _run_info(config, identity, run_dir, source_dir, prepared.provenance, result, steps, serve)
        info["processes"] = accelerator.num_processes
        info["device"] = str(accelerator.device)
        dtype = precision_dtype(config.precision, accelerator.device)
        info["compute_dtype"] = "bfloat16" if dtype is not None else "float32"
        if budget is not None:
            info["time_budget"] = budget.to_json()
        if evaluator is not None:
            info["evaluation"] = {"selection": evaluator.selection, "kept": result.best, "file": EVALS_FILE}
        if prepared.lexicon is not None:
            write_json_atomic(run_dir / "lexicon.json", prepared.lexicon.to_json())
        plot_curves(result.history, run_dir / CURVES_FILE, f"{config.stage} stage, {config.lang}")
        write_run(accelerator.unwrap_model(objective).model, run_dir, info)
        remove_checkpoint(run_dir)
    accelerator.wait_for_everyone()
    return StageResult(
        config.stage,
        config.lang,
        run_dir,
        result.steps,
        time.perf_counter() - began,
        recent_means(result.history),
        trainable_count(model),
        main,
    )


@dataclass
class _BudgetRefit:
    """The time-budgeted loop's refit (:func:`~edgeadapt.training.budget.refit_steps`): fits the steps again from
    the run's own speed, records the new plan in the run directory and says what changed."""

    plan: BudgetPlan
    eval_every: int | None
    evaluates: bool
    run_dir: Path
    console: Console | None  # None on processes other than the main one
    warn_short: bool = False  # warn when the refit plan is too short for a good source stage

    def _evaluations_after(self, total: int, done: int) -> int:
        if not self.evaluates:
            return 0
        return sum(1 for step in eval_steps(total, self.eval_every) if step > done)

    def __call__(self, done: int, elapsed: float, seconds_per_step: float) -> int:
        total = refit_steps(self.plan, done, elapsed, seconds_per_step, self._evaluations_after)
        self.plan = replace(self.plan, refit_steps=total, refit_seconds_per_step=seconds_per_step)
        if self.console is not None:
            write_json_atomic(self.run_dir / BUDGET_FILE, self.plan.to_json())
            self.console.print(
                f"time budget refit after {done} steps: {seconds_per_step:.2f} s a step measured"
                f" ({self.plan.seconds_per_step:.2f} calibrated), {total} steps in all"
            )
            hint = short_budget_hint(self.plan) if self.warn_short else None
            if hint:
                self.console.print(f"[yellow]warning:[/] {hint}")
        return total


def _fitted_on_resume(config: TrainConfig, run_dir: Path, resume: bool) -> TrainConfig:
    """On --resume with --time-budget, the step count the interrupted run fitted (so the schedule is the same)."""
    checkpoint = read_checkpoint(run_dir) if resume and config.time_budget is not None else None
    if checkpoint is None or config.max_steps is not None or config.epochs is not None:
        return config
    return replace(config, max_steps=TrainConfig.from_json(checkpoint.config).max_steps)


def default_eval_data(config: TrainConfig, data_dir: str | None) -> list[str]:
    """``--eval-data``, else for the source stage English TyDi QA dev when present (a split it does not train on)."""
    from edgeadapt.data.specs import find_data_file

    if config.eval_data:
        return list(config.eval_data)
    if config.task != QA:
        return []
    if config.stage == "source" and find_data_file("tydiqa/english/english_tydiqa_dev.json", data_dir, warn=False):
        return ["tydiqa:en:dev"]
    return []


def _evaluator(config: TrainConfig, tokenizer, data_dir: str | None):
    from edgeadapt.training.data import task_specs
    from edgeadapt.training.periodic_eval import PeriodicEvaluator

    specs = default_eval_data(config, data_dir)
    if not specs or config.eval_every == 0:
        return None
    train = task_specs(config, data_dir)
    return PeriodicEvaluator.load(specs, data_dir, config.eval_max_examples, tokenizer.backend_tokenizer, train)


def _fit_budget(config: TrainConfig, objective: StageObjective, data, evaluator, device):
    """Steps that fit ``config.time_budget``, from timed training steps (updates discarded) and one timed
    evaluation batch."""

    from edgeadapt.training.batches import GROUP_STEPS, BatchPlan
    from edgeadapt.training.budget import fit_steps, time_call
    from edgeadapt.training.loop import eval_steps, forward_backward

    dtype = precision_dtype(config.precision, device)
    align = config.align_batch_size if config.align_weight > 0 else 0
    plan = BatchPlan.make(config.batch_size, config.synthetic_ratio, len(data.real), len(data.synthetic), align)
    objective.to(device).train()
    # the lengths the run will see: the first group of steps, sorted by padded length; one batch at each octile
    # 1/8, 3/8, 5/8, 7/8 (a batch's time grows with its length), each timed on its second run: a shape's first
    # step also prepares its kernels, which the run pays once per shape, not per step (timing first runs planned
    # 8.4 s a step where the steps took 4.4 on an AVX2-only EPYC, 3.5 against 2.6 on a Xeon)
    first = [data.batch(plan, config.seed, step) for step in range(GROUP_STEPS)]
    first.sort(key=lambda batch: batch[0]["input_ids"].shape[1])
    picks = [first[(2 * i + 1) * len(first) // 8] for i in range(4)]

    def one_step(batch) -> None:
        forward_backward(objective, *batch, device, dtype)
        for param in objective.parameters():
            param.grad = None

    per_pick = [time_call(lambda batch=batch: one_step(batch), repeats=1) for batch in picks]
    per_step = sum(per_pick) / len(per_pick) * 1.1  # the optimizer step, clipping and logging on top
    per_eval = 0.0
    if evaluator is not None:
        per_eval = evaluator.estimate_seconds(objective.model)  # fp32, as the evaluations run

    def evaluations_for(steps: int) -> int:
        return len(eval_steps(steps, config.eval_every)) if evaluator is not None else 0

    return fit_steps(
        config.time_budget, per_step, seconds_per_evaluation=per_eval, evaluations_for=evaluations_for
    )  # fmt: skip


def _check_resume(config: TrainConfig, run_dir: Path, resume: bool, console: Console | None) -> bool:
    checkpoint = read_checkpoint(run_dir)
    if not resume:
        if checkpoint is not None and console is not None:
            console.print(f"note: starting over; the checkpoint of an interrupted run in {run_dir} is discarded")
        if checkpoint is not None:
            remove_checkpoint(run_dir)
        return False
    if checkpoint is None:
        raise EdgeAdaptError(f"nothing to resume in {run_dir}: no checkpoint there; run without --resume")
    differ = config.differences(TrainConfig.from_json(checkpoint.config))
    if differ:
        raise EdgeAdaptError(
            f"--resume with other settings than the checkpoint in {run_dir} ({', '.join(differ)}): use the same flags"
        )
    if console is not None:
        console.print(f"resuming {config.stage} stage for {config.lang} from step {checkpoint.step}")
    return True


def _run_info(
    config: TrainConfig,
    identity: dict,
    run_dir: Path,
    source_dir: Path | None,
    provenance: dict,
    result,
    steps: int,
    serve: WindowPolicy,
) -> dict[str, Any]:
    adapter_name = TASK_ADAPTER if config.stage == "source" else LANG_ADAPTER
    info: dict[str, Any] = {
        "task": config.task,
        "stage": config.stage,
        "lang": config.lang,
        "backbone": identity,
        "adapter": _adapter_info(config, adapter_name),
        "head": "qa_head.safetensors" if config.stage == "source" else "shared: the source run's qa_head.safetensors",
        "align_features": ALIGN_FEATURES,
        "config": config.to_json(),
        # how this run cuts contexts: in training, and (unless told otherwise) in eval and export
        "windows": {"train": config.windows.to_json(), "serve": serve.to_json()},
        "seed": config.seed,
        "learning_rate": config.learning_rate,
        "data": provenance,
        "steps": steps,
        "train_seconds": round(result.seconds, 1),
        "final_losses": recent_means(result.history),
        "versions": _versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if source_dir is not None:
        # relative to the run, so that a workspace can be moved or copied whole
        info["source_run"] = os.path.relpath(Path(source_dir).resolve(), Path(run_dir).resolve())
    return info


def _adapter_info(config: TrainConfig, adapter_name: str) -> dict[str, Any]:
    """run.json's ``adapter``: kind, name, folder, rank (the bottleneck size r for a bottleneck), targets."""
    info: dict[str, Any] = {"kind": config.adapter_kind, "name": adapter_name, "dir": ADAPTER_DIRS[adapter_name]}
    if config.adapter_kind == "full" and config.stage == "source":
        info |= {"dir": None, "file": TASK_ENCODER_FILE, "rank": None, "alpha": None, "targets": ["layers"]}
    elif config.adapter_kind == "full":
        info |= {"dir": FULL_ENCODER_DIR, "rank": None, "alpha": None, "targets": ["*"]}
    elif config.adapter_kind == "bottleneck":
        info |= {"rank": config.bottleneck_size, "alpha": None, "size": config.bottleneck_size}
        info |= {"scale": config.bottleneck_scale, "activation": "relu", "targets": config.adapter_targets}
    else:
        info |= {"rank": config.lora_rank, "alpha": config.alpha, "targets": config.targets}
    return info


def with_data_mix(config: TrainConfig, data_dir: str | None) -> TrainConfig:
    """``config`` with its synthetic share and alignment weight settled by whether the language has QA training
    data of its own (:meth:`TrainConfig.with_data_mix`)."""
    if config.synthetic_ratio is not None and config.align_weight is not None:
        return config
    has_task_data = config.task == QA and config.stage == "target" and bool(task_specs(config, data_dir))
    return config.with_data_mix(has_task_data)


def with_frozen_layers(config: TrainConfig) -> TrainConfig:
    """``config`` with the number of layers full fine-tuning keeps frozen settled for its backbone (so run.json
    records the number)."""
    if config.frozen_layers is not None or config.adapter_kind != "full":
        return config
    from transformers import AutoConfig

    layers = getattr(AutoConfig.from_pretrained(config.backbone), "num_hidden_layers", None) or 0
    return replace(config, frozen_layers=config.frozen_layer_count(layers))


def stage_config(config: TrainConfig, lang: str) -> TrainConfig:
    """``config`` for language ``lang`` (normalised code), with the right stage."""
    return replace(config, lang=lang, stage="source" if lang == SOURCE_LANG else "target")


def source_config_for(config: TrainConfig) -> TrainConfig:
    """The source-stage settings used when a target run needs a source run first: the shared flags carry over."""
    base = TrainConfig(lang=SOURCE_LANG, stage="source", task=config.task)
    return replace(base, **{name: getattr(config, name) for name in SHARED_WITH_SOURCE})


def train(
    config: TrainConfig,
    *,
    workdir: str | None = None,
    data_dir: str | None = None,
    run_dir: Path | None = None,
    source_dir: Path | None = None,
    resume: bool = False,
    console: Console | None = None,
    on_step=None,
) -> list[StageResult]:
    """Train ``config.lang``; for a target language, train the English source stage first if it is missing."""
    from edgeadapt.backbones.resolve import resolve_backbone
    from edgeadapt.data.languages import normalize_lang

    console = console or Console(stderr=True)
    lang = normalize_lang(config.lang).code
    config = stage_config(replace(config, backbone=resolve_backbone(config.backbone)), lang)
    _validate(config)
    runs = paths.runs_dir(workdir) / runs_subdir(config.task)
    run_dir = Path(run_dir) if run_dir is not None else runs / lang
    results: list[StageResult] = []
    if config.stage == "target":
        if source_dir is not None and not (Path(source_dir) / RUN_FILE).exists():
            if not (resume and read_checkpoint(Path(source_dir)) is not None):
                raise EdgeAdaptError(
                    f"--source-run {source_dir} is not a finished source run (no {RUN_FILE}): check the path, or"
                    f" train one there first with `edgeadapt train --lang en --out {source_dir}`"
                )
        source_dir = Path(source_dir) if source_dir is not None else runs / SOURCE_LANG
        if config.leave_out and (source_dir / RUN_FILE).exists():
            console.print(
                f"--leave-out shapes a source stage's data, and {source_dir} is trained already: it has no effect"
                " here (train --lang en --leave-out ... into a new workdir or --out to use it)"
            )
        if not (source_dir / RUN_FILE).exists():
            source = source_config_for(config)
            source_resume = resume and read_checkpoint(source_dir) is not None
            console.print(
                f"no source (English) run in {source_dir}: training the source stage first"
                + (" (resuming it)" if source_resume else "")
            )
            results.append(
                run_stage(source, source_dir, data_dir=data_dir, resume=source_resume, console=console, on_step=on_step)
            )
            resume = resume and read_checkpoint(run_dir) is not None
    results.append(
        run_stage(
            config, run_dir, data_dir=data_dir, source_dir=source_dir, resume=resume, console=console, on_step=on_step
        )
    )
    return results


def _validate(config: TrainConfig) -> None:
    from edgeadapt.data.languages import normalize_lang
    from edgeadapt.tasks import TASKS
    from edgeadapt.training.config import (
        ADAPTER_KINDS,
        FREEZE_CHOICES,
        PRECISIONS,
        PROMPT_POSITIONS,
        SOURCE_ADAPTER_KINDS,
    )

    checks = [
        (config.task in TASKS, f"unknown --task {config.task!r}: choose {' or '.join(TASKS)}"),
        (
            config.task == QA or not config.eval_data,
            "--eval-data scores QA while training; score a --task pawsx run afterwards with `edgeadapt eval`",
        ),
        (config.adapter in ADAPTER_KINDS, f"unknown --adapter {config.adapter!r}: choose lora, bottleneck or full"),
        (
            config.source_adapter in SOURCE_ADAPTER_KINDS,
            f"--adapter {config.source_adapter} is not a task adapter: the source (task) stage trains lora or full",
        ),
        (config.precision in PRECISIONS, f"--precision takes {', '.join(PRECISIONS)}"),
        (config.time_budget is None or config.time_budget > 0, "--time-budget must be above zero"),
        (config.eval_every is None or config.eval_every >= 0, "--eval-every must be 0 (off) or more"),
        (config.prompt_len >= 0, "--prompt-len must be 0 or more"),
        (config.prompt_positions in PROMPT_POSITIONS, f"--prompt-positions takes {' or '.join(PROMPT_POSITIONS)}"),
        (config.lora_rank > 0, "--lora-rank must be at least 1"),
        (config.bottleneck_size > 0, "--bottleneck-size must be at least 1"),
        (config.bottleneck_scale > 0, "--bottleneck-scale must be above 0"),
        (config.synthetic_ratio is None or 0 <= config.synthetic_ratio < 1, "--synthetic-ratio must be in [0, 1)"),
        (
            (config.align_weight is None or config.align_weight >= 0) and config.l2_weight >= 0,
            "--align-weight and --l2-weight must be 0 or more",
        ),
        (config.batch_size > 0, "--batch-size must be at least 1"),
        (config.max_steps is None or config.max_steps > 0, "--max-steps must be at least 1"),
        (config.epochs is None or config.epochs > 0, "--epochs must be above 0"),
        (config.lr is None or config.lr > 0, "--lr must be above 0"),
        (all(f in FREEZE_CHOICES for f in config.freeze), f"--freeze takes {' or '.join(FREEZE_CHOICES)}"),
        (config.task == QA or not config.leave_out, "--leave-out shapes the QA source stage's data: drop it"),
        (config.frozen_layers is None or config.frozen_layers >= 0, "--freeze-layers must be 0 or more"),
        (  # a language stage passes it on to the source stage it trains first
            not config.frozen_layers or config.adapter_kind == "full" or config.stage == "target",
            "--freeze-layers applies to full fine-tuning of the layers: drop it or use --source-adapter full",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise EdgeAdaptError(message)
    WindowPolicy.resolve(config.max_length, config.doc_stride)  # checks --max-length and --doc-stride
    for lang in config.leave_out:
        normalize_lang(lang)  # an unknown code fails here, with the closest known ones
    if config.adapter == "full" and "adapter" in config.freeze:
        raise EdgeAdaptError("--adapter full has no adapter to --freeze: it trains every encoder weight")
