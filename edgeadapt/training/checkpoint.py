"""Checkpoints for ``--resume`` and Ctrl-C, in safetensors and JSON only (no pickle).

``<run_dir>/checkpoint/`` holds::

    trainable.safetensors   the trainable parameters by name
    optimizer.safetensors   every optimizer state tensor, key "<param index>.<name>" (AdamW: step, exp_avg, ...)
    optimizer.json          param groups (lr, betas, ...), the state's non-tensor values, the scheduler state
    rng-<rank>.safetensors  RNG states as uint8 tensors ("cpu", "cuda.<i>"), one file per process
    state.json              step, the config, written last: its presence marks a complete checkpoint
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from edgeadapt.errors import EdgeAdaptError
from edgeadapt.fileio import atomic_path, write_json_atomic

CHECKPOINT_DIR = "checkpoint"


@dataclass
class Checkpoint:
    """What a checkpoint restores: the step to continue from and the config it was made with."""

    step: int
    config: dict[str, Any]


def _save_tensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    with atomic_path(path) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp))


def optimizer_to_files(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Flatten an optimizer's state dict: tensors by ``"<index>.<name>"``, everything else as JSON."""
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, values in state["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{index}.{name}"] = value
            else:
                scalars.setdefault(str(index), {})[name] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def optimizer_from_files(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    """The optimizer state dict rebuilt from :func:`optimizer_to_files`."""
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    for index, values in meta["scalars"].items():
        state.setdefault(int(index), {}).update(values)
    groups = [{**g, "betas": tuple(g["betas"])} if "betas" in g else g for g in meta["param_groups"]]
    return {"state": state, "param_groups": groups}


def rng_states() -> dict[str, torch.Tensor]:
    states = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            states[f"cuda.{i}"] = s
    return states


def set_rng_states(states: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(states["cpu"])
    cuda = [states[k] for k in sorted(k for k in states if k.startswith("cuda."))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)


def save_rng(run_dir: Path, rank: int, step: int) -> None:
    """Each process writes its own RNG states (before the main process writes ``state.json``)."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / f"rng-{rank}.safetensors") as tmp:
        save_file(rng_states(), str(tmp), metadata={"step": str(step)})


def save_checkpoint(
    run_dir: Path,
    step: int,
    config: dict[str, Any],
    trainable: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
) -> Path:
    """Write the main process's part of a checkpoint; ``state.json`` last."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "state.json").unlink(missing_ok=True)
    _save_tensors(trainable, folder / "trainable.safetensors")
    tensors, meta = optimizer_to_files(optimizer)
    _save_tensors(tensors, folder / "optimizer.safetensors")
    write_json_atomic(folder / "optimizer.json", {**meta, "scheduler": _scheduler_state(scheduler)})
    write_json_atomic(folder / "state.json", {"step": step, "config": config})
    return folder


def _scheduler_state(scheduler: Any) -> dict[str, Any]:
    state = scheduler.state_dict()
    return {k: v for k, v in state.items() if k != "lr_lambdas"}


def read_checkpoint(run_dir: Path) -> Checkpoint | None:
    """The checkpoint's step and config, or ``None`` when there is no complete checkpoint."""
    path = Path(run_dir) / CHECKPOINT_DIR / "state.json"
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise EdgeAdaptError(f"{path} is damaged ({exc.msg}): start over without --resume") from exc
    return Checkpoint(step=int(state["step"]), config=state["config"])


def load_checkpoint(
    run_dir: Path, rank: int, trainable: dict[str, torch.nn.Parameter], optimizer: torch.optim.Optimizer, scheduler
) -> int:
    """Restore parameters, optimizer, scheduler and this process's RNG states; return the step."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    checkpoint = read_checkpoint(run_dir)
    if checkpoint is None:
        raise EdgeAdaptError(f"no complete checkpoint in {folder}: start over without --resume")
    saved = load_file(str(folder / "trainable.safetensors"))
    if set(saved) != set(trainable):
        raise EdgeAdaptError(f"checkpoint in {folder} holds other parameters than this model: start over")
    with torch.no_grad():
        for name, param in trainable.items():
            param.copy_(saved[name])
    meta = json.loads((folder / "optimizer.json").read_text(encoding="utf-8"))
    optimizer.load_state_dict(optimizer_from_files(load_file(str(folder / "optimizer.safetensors")), meta))
    scheduler.load_state_dict({**meta["scheduler"], "lr_lambdas": [None] * len(optimizer.param_groups)})
    rng_file = folder / f"rng-{rank}.safetensors"
    if rng_file.exists():
        set_rng_states(load_file(str(rng_file)))
    return checkpoint.step


def remove_checkpoint(run_dir: Path) -> None:
    shutil.rmtree(Path(run_dir) / CHECKPOINT_DIR, ignore_errors=True)
