"""The optimisation loop on accelerate: one process, or data-parallel under ``accelerate launch``/``torchrun``.

Every process computes its share of one global batch (rows split by rank); DDP averages the gradients.
The main process writes ``metrics.jsonl``, the checkpoints and shows a rich progress bar with the loss parts.
A KeyboardInterrupt saves a checkpoint and raises :class:`TrainingInterrupted`.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from edgeadapt.errors import EdgeAdaptError
from edgeadapt.training.batches import BatchPlan, StageData
from edgeadapt.training.checkpoint import load_checkpoint, save_checkpoint, save_rng
from edgeadapt.training.config import TrainConfig
from edgeadapt.training.objective import StageObjective

METRICS_FILE = "metrics.jsonl"


class TrainingInterrupted(EdgeAdaptError):
    """Ctrl-C during training: a checkpoint was saved; the message says how to resume."""


class _StopFlag:
    """While active, the first Ctrl-C asks the loop to stop after the current step; a second one stops at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> _StopFlag:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> bool:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


def _mean_over_processes(accelerator, parts: dict[str, torch.Tensor]) -> dict[str, float]:
    """Each loss part averaged over the processes (what the global batch gave)."""
    stacked = torch.stack([v.detach().float() for v in parts.values()])
    if accelerator.num_processes > 1:
        stacked = accelerator.reduce(stacked, reduction="mean")
    return dict(zip(parts, stacked.tolist(), strict=True))


def _same_on_every_process(accelerator, value: int) -> int:
    """The main process's ``value`` on every process (each timed its own steps)."""
    if accelerator.num_processes == 1:
        return value
    from accelerate.utils import broadcast

    return int(broadcast(torch.tensor([value], device=accelerator.device)).item())


def _anyone(accelerator, flag: bool) -> bool:
    """True on every process when ``flag`` is true on any."""
    if accelerator.num_processes == 1:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=accelerator.device)
    return bool(accelerator.reduce(value, reduction="sum").item() > 0)


@dataclass
class LoopResult:
    steps: int
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)
    evals: list[dict] = field(default_factory=list)
    best: dict | None = None  # the evaluation row whose weights were kept (None without --eval-data)


BEST_FILE = "best.safetensors"


def precision_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``--precision`` on ``device`` (None: plain fp32)."""
    if precision == "fp32":
        return None
    if device.type == "cuda":
        supported = torch.cuda.is_bf16_supported()
    else:
        supported = bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    if precision == "bf16" and not supported:
        raise EdgeAdaptError(f"--precision bf16: this {device.type.upper()} has no native bfloat16; use fp32 or auto")
    return torch.bfloat16 if supported else None


def _autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


def forward_backward(objective, task: dict, pairs: dict | None, device: torch.device, dtype: torch.dtype | None):
    """A batch through ``objective`` on ``device`` under the stage's autocast, gradients accumulated (no optimizer
    step): the work of one training step, for timing it outside the loop. Returns the loss parts."""
    task = {k: v.to(device) for k, v in task.items()}
    pairs = None if pairs is None else {k: v.to(device) for k, v in pairs.items()}
    with _autocast(device, dtype):
        parts = objective(task, pairs)
    parts["total"].backward()
    return parts


def _save_best(run_dir: Path, trainable: dict[str, torch.Tensor], step: int) -> None:
    from safetensors.torch import save_file

    from edgeadapt.fileio import atomic_path

    with atomic_path(Path(run_dir) / BEST_FILE) as tmp:
        tensors = {k: v.detach().cpu().contiguous() for k, v in trainable.items()}
        save_file(tensors, str(tmp), metadata={"step": str(step)})


def _best_step_on_disk(run_dir: Path) -> int | None:
    from safetensors import safe_open

    path = Path(run_dir) / BEST_FILE
    if not path.exists():
        return None
    with safe_open(str(path), framework="pt") as handle:
        return int((handle.metadata() or {}).get("step", -1))


def _restore_best(run_dir: Path, trainable: dict[str, torch.Tensor]) -> None:
    from safetensors.torch import load_file

    tensors = load_file(str(Path(run_dir) / BEST_FILE))
    with torch.no_grad():
        for name, param in trainable.items():
            param.copy_(tensors[name])


def eval_steps(total: int, every: int | None, count: int = 8) -> set[int]:
    """The steps after which the stage evaluates: every ``every`` steps (default: ``count`` times) and the last."""
    every = every or max(1, total // count)
    return {step for step in range(every, total + 1, every)} | {total}


def make_accelerator():
    """An Accelerator that also goes data-parallel (gloo) on CPU-only machines under torchrun/accelerate launch."""
    from accelerate import Accelerator

    return Accelerator(cpu=not torch.cuda.is_available())


@dataclass
class LinearSchedule:
    """The learning-rate factor: linear warm-up over ``warmup`` steps, then linear decay to zero at ``total``
    (which a time budget's refit moves once, early in the run)."""

    total: int
    warmup: int

    @classmethod
    def make(cls, total: int, warmup_ratio: float, warmup_of: int | None = None) -> LinearSchedule:
        """``warmup_ratio`` of ``warmup_of`` steps (default ``total``) warm up, then the decay to ``total``."""
        return cls(total, max(1, int((total if warmup_of is None else warmup_of) * warmup_ratio)))

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        return max(0.0, (self.total - step) / max(1, self.total - self.warmup))


def _read_metrics(path: Path, upto: int) -> list[dict[str, float]]:
    """Metrics of the steps before ``upto`` (a resumed run drops what came after its checkpoint)."""
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in rows if r["step"] < upto]


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[losses]}"),
        console=console,
        transient=False,
    )


def run_loop(
    objective: StageObjective,
    data: StageData,
    config: TrainConfig,
    run_dir: Path,
    total_steps: int,
    *,
    resume: bool = False,
    console: Console | None = None,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
    accelerator=None,
    evaluator=None,
    warmup_of: int | None = None,
    refit: Callable[[int, float, float], int] | None = None,
) -> LoopResult:
    """Train ``objective`` for ``total_steps`` global steps (continuing from a checkpoint with ``resume``).

    With an ``evaluator`` (:class:`~edgeadapt.training.periodic_eval.PeriodicEvaluator`) the model is scored at
    :func:`eval_steps`, each row appended to ``evals.jsonl``, and the weights of the best row are the ones kept.
    The warm-up is ``config.warmup_ratio`` of ``warmup_of`` steps (default ``total_steps``). A time-budgeted run passes
    ``refit(steps done, seconds elapsed, seconds a step) -> total``: called once, after ``REFIT_AFTER`` steps of a
    run that did not resume, with the mean time of the second half of those steps; the run then trains the
    returned total (the schedule's decay and the evaluations move with it, the warm-up stays).
    """
    from edgeadapt.training.budget import REFIT_AFTER, refits
    from edgeadapt.training.periodic_eval import EVALS_FILE, best_row, read_evals

    accelerator = accelerator or make_accelerator()
    console = console or Console(stderr=True)
    config = config.with_data_mix(bool(data.real))
    rank, world = accelerator.process_index, accelerator.num_processes
    if config.batch_size < world:
        raise EdgeAdaptError(f"--batch-size {config.batch_size} is smaller than the {world} processes: raise it")
    trainable = {n: p for n, p in objective.model.named_parameters() if p.requires_grad}
    if not trainable:
        raise EdgeAdaptError("nothing to train: --freeze leaves no trainable parameter")
    optimizer = torch.optim.AdamW(list(trainable.values()), lr=config.learning_rate, weight_decay=config.weight_decay)
    schedule = LinearSchedule.make(total_steps, config.warmup_ratio, warmup_of)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    start = load_checkpoint(run_dir, rank, trainable, optimizer, scheduler) if resume else 0
    plan = BatchPlan.make(
        config.batch_size,
        config.synthetic_ratio,
        len(data.real),
        len(data.synthetic),
        config.align_batch_size if config.align_weight > 0 else 0,
    )
    if 0 < plan.align < world:  # every process needs at least one pair
        plan = BatchPlan(plan.real, plan.synthetic, world)
    model, optimizer = accelerator.prepare(objective, optimizer)
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    metrics_path = Path(run_dir) / METRICS_FILE
    history = _read_metrics(metrics_path, start) if accelerator.is_main_process else []
    if accelerator.is_main_process:
        text = "".join(json.dumps(r) + "\n" for r in history)
        metrics_path.write_text(text, encoding="utf-8")
    dtype = precision_dtype(config.precision, accelerator.device)
    evals: list[dict] = []
    evals_path = Path(run_dir) / EVALS_FILE
    at_eval = eval_steps(total_steps, config.eval_every) if evaluator is not None else set()
    if evaluator is not None and accelerator.is_main_process:
        evals = read_evals(run_dir, start)
        evals_path.write_text("".join(json.dumps(r) + "\n" for r in evals), encoding="utf-8")
        kept = best_row(evals, evaluator.selection)
        if _best_step_on_disk(run_dir) not in (None, kept["step"] if kept else None):
            (Path(run_dir) / BEST_FILE).unlink()  # made after the checkpoint this run resumes from

    def _scores() -> dict:
        # in fp32 even when training autocasts: the score that picks the kept weights is the one `edgeadapt eval`
        # and the exported graphs give (bf16 logits flip near-tied spans, so the kept row would not reproduce)
        return evaluator.evaluate(accelerator.unwrap_model(model).model)

    def evaluate() -> str:
        """Score the model now; keep its weights when they are the best so far; a short text for the bar."""
        row = {
            "step": step,
            "train_minutes": round(sum(r["seconds"] for r in history) / 60, 5),
            "cpu_minutes": round(sum(r.get("cpu_seconds", 0.0) for r in history) / 60, 5),
            "scores": _scores(),
        }
        best = best_row(evals, evaluator.selection)
        evals.append(row)
        with open(evals_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")
        f1 = row["scores"][evaluator.selection]["f1"]
        if best is None or f1 > best["scores"][evaluator.selection]["f1"]:
            _save_best(run_dir, trainable, step)
        return f"F1 {f1:.1f} (best {max(f1, best['scores'][evaluator.selection]['f1'] if best else f1):.1f})"

    model.train()
    began = time.perf_counter()
    step = start
    durations: list[float] = []  # this process's step times, for the budget's refit
    at_boundary = True
    shown_eval = ""

    def checkpoint() -> None:
        save_rng(run_dir, rank, step)
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            save_checkpoint(run_dir, step, config.to_json(), trainable, optimizer, scheduler)
        accelerator.wait_for_everyone()

    progress = _progress(console) if accelerator.is_main_process else None
    try:
        if progress is not None:
            progress.start()
            bar = progress.add_task(f"{config.stage} {config.lang}", total=total_steps, completed=start, losses="")
        with (
            open(metrics_path, "a", encoding="utf-8") if accelerator.is_main_process else _null() as log,
            _StopFlag() as stop,
        ):
            while step < total_steps:
                at_boundary = False
                tick, cpu_tick = time.perf_counter(), time.process_time()
                task, align = data.batch(plan, config.seed, step, rank, world)
                task = {k: v.to(accelerator.device) for k, v in task.items()}
                align = None if align is None else {k: v.to(accelerator.device) for k, v in align.items()}
                with _autocast(accelerator.device, dtype):
                    parts = model(task, align)
                accelerator.backward(parts["total"])
                accelerator.clip_grad_norm_(list(trainable.values()), 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                values = _mean_over_processes(accelerator, parts)
                for name, value in values.items():
                    if not torch.isfinite(torch.tensor(value)):
                        raise EdgeAdaptError(f"loss part '{name}' became {value} at step {step}: lower --lr")
                row = {"step": step, **values, "lr": scheduler.get_last_lr()[0]}
                row |= {"seconds": time.perf_counter() - tick, "cpu_seconds": time.process_time() - cpu_tick}
                step += 1
                if log is not None:
                    log.write(json.dumps(row) + "\n")
                    log.flush()
                    history.append(row)
                at_boundary = True
                durations.append(row["seconds"])
                if step in at_eval and accelerator.is_main_process:
                    shown_eval = evaluate()
                # after this step's evaluation, which the refit's elapsed time then includes
                if refit is not None and start == 0 and step == REFIT_AFTER and refits(total_steps):
                    timed = durations[REFIT_AFTER // 2 :]
                    fitted = refit(step, time.perf_counter() - began, sum(timed) / len(timed))
                    total_steps = _same_on_every_process(accelerator, max(step + 1, fitted))
                    schedule.total = total_steps
                    config = replace(config, max_steps=total_steps)  # what checkpoints record for --resume
                    if evaluator is not None:
                        at_eval = eval_steps(total_steps, config.eval_every)
                    if progress is not None:
                        progress.update(bar, total=total_steps)
                if progress is not None:
                    shown = "  ".join(f"{k} {v:.4g}" for k, v in values.items())
                    progress.update(bar, completed=step, losses=f"{shown}  {shown_eval}".strip())
                if on_step is not None:
                    on_step(step, values)
                if _anyone(accelerator, stop.requested):
                    raise KeyboardInterrupt
                if config.save_every and step % config.save_every == 0 and step < total_steps:
                    checkpoint()
    except KeyboardInterrupt:
        if progress is not None:
            progress.stop()
        if not at_boundary:  # a second Ctrl-C in the middle of a step: its state is not consistent
            raise TrainingInterrupted(
                f"stopped in the middle of step {step}; no new checkpoint (the last one, if any, is in"
                f" {run_dir}/checkpoint): continue with the same command and --resume"
            ) from None
        checkpoint()
        raise TrainingInterrupted(
            f"interrupted at step {step}/{total_steps}; checkpoint saved in {run_dir}/checkpoint:"
            f" continue with the same command and --resume"
        ) from None
    finally:
        if progress is not None:
            progress.stop()
    # only the main process evaluates, keeps the best weights and writes the run: it restores them, then removes
    # the file once every process is past training (another rank must not delete it under the main one)
    best = best_row(evals, evaluator.selection) if evaluator is not None else None
    if accelerator.is_main_process and best is not None and best["step"] != step:
        _restore_best(run_dir, trainable)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (Path(run_dir) / BEST_FILE).unlink(missing_ok=True)
    return LoopResult(steps=step, seconds=time.perf_counter() - began, history=history, evals=evals, best=best)


class _null:
    def __enter__(self):
        return None

    def __exit__(self, *exc) -> bool:
        return False
