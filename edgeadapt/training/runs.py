"""The run directory: the one contract between training and export/evaluation.

``<workdir>/runs/<lang>/`` (QA) or ``<workdir>/runs/<task>/<lang>/`` (``pawsx``) holds (only safetensors and JSON)::

    run.json                 every setting; "task": "qa" | "pawsx" (absent: qa); "stage": "source" | "target";
                             backbone identity
                             {"path", "fingerprint"}; "source_run" (target stage: path of the
                             source run) and "source_identity" (sha256 of the source run's task weights
                             and span head when the target was trained); "prompt_len"; "adapter"
                             {"kind", "rank", "alpha", "targets"}
    qa_head.safetensors      the head, keys "weight" [2, hidden] and "bias" [2] (source stage): span start/end
                             (qa), or the two pair labels (pawsx)
    task_adapter/            peft folder of the task LoRA (source stage, the default --source-adapter lora)
    task_encoder.safetensors the fine-tuned transformer layers (source stage with --source-adapter full; the
                             embeddings and pooler stay the backbone's, so they are not stored)
    lang_adapter/            peft folder of the language LoRA (target stage), or with --adapter bottleneck
                             adapter_config.json ("kind": "bottleneck") + adapter_model.safetensors
                             (see edgeadapt/training/bottleneck.py)
    soft_prompt.safetensors  key "prompt" [k, hidden] (target stage, absent with --no-prompt)
    encoder/                 --adapter full only (the full fine-tuning baseline): the whole fine-tuned encoder,
                             a Hugging Face folder (config.json + model.safetensors), instead of lang_adapter/
    metrics.jsonl, curves.png

A target-stage model is: backbone with the source run's task weights (:func:`source_encoder`), the source run's
span head (frozen, shared by every language), plus the language adapter (unmerged) and prompt.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file as _load_file
from safetensors.torch import save_file

from edgeadapt.errors import EdgeAdaptError
from edgeadapt.fileio import atomic_path, sha256_file
from edgeadapt.training.bottleneck import has_bottlenecks, is_adapter_config, load_bottlenecks, save_bottlenecks
from edgeadapt.training.config import TrainConfig
from edgeadapt.training.model import PromptedQAModel

log = logging.getLogger(__name__)

RUN_FILE = "run.json"
HEAD_FILE = "qa_head.safetensors"
PROMPT_FILE = "soft_prompt.safetensors"
TASK_ADAPTER = "task"
LANG_ADAPTER = "lang"
ADAPTER_DIRS = {TASK_ADAPTER: "task_adapter", LANG_ADAPTER: "lang_adapter"}
FULL_ENCODER_DIR = "encoder"
TASK_ENCODER_FILE = "task_encoder.safetensors"
TASK_STAGE_FROZEN = ("embeddings.", "pooler.")
"""Encoder parameters a fully fine-tuned source stage keeps as pulled: the vocabulary table stays shared (and
trimmable) and the pooler is unused by span extraction."""


def is_frozen_in_task_stage(name: str) -> bool:
    """Whether encoder parameter ``name`` stays frozen in a fully fine-tuned source stage."""
    return name.startswith(TASK_STAGE_FROZEN)


def is_full_finetune(info: dict[str, Any]) -> bool:
    """Whether run.json describes a full fine-tuning run (``--adapter full``: whole encoder saved, no adapter)."""
    return (info.get("adapter") or {}).get("kind") == "full"


UNFINISHED_MARKS = ("checkpoint", "metrics.jsonl")
"""Files a run directory holds while it trains; without ``run.json`` beside them the run is unfinished."""


def read_run(run_dir: str | Path) -> dict[str, Any]:
    """Read and sanity-check ``run.json``; a clear error if the directory is not a finished run."""
    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        if any((Path(run_dir) / name).exists() for name in UNFINISHED_MARKS):
            raise EdgeAdaptError(
                f"{run_dir} is an unfinished run (its training was interrupted or is still going, no {RUN_FILE}):"
                " finish it with `edgeadapt train ... --resume` or train it again"
            )
        raise EdgeAdaptError(f"{run_dir} is not a run directory (no {RUN_FILE}): train one with `edgeadapt train`")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EdgeAdaptError(f"{path} is not valid JSON; retrain or restore the run") from exc
    if not isinstance(info, dict):
        raise EdgeAdaptError(f"{path} is not a JSON object: it was not written by edgeadapt train")
    for key in ("stage", "lang", "backbone"):
        if key not in info:
            raise EdgeAdaptError(f"{path} lacks '{key}': it was not written by edgeadapt train")
    return info


def mark_unfinished(run_dir: str | Path) -> None:
    """Remove ``run.json`` before a run directory is trained again, so that nothing takes the files of the run it
    replaces, next to the new run's checkpoint and metrics, for a finished run (``write_run`` writes it back)."""
    (Path(run_dir) / RUN_FILE).unlink(missing_ok=True)


_identities: dict[tuple, str] = {}
"""(file, size, mtime) of a source run's weight files -> their identity, computed once per process."""


def source_identity(source_dir: str | Path, info: dict[str, Any] | None = None) -> str:
    """sha256 naming one version of a source run: its task weights file and its span head."""
    files = [task_weights_file(source_dir, info), Path(source_dir) / HEAD_FILE]
    key = tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) if f.is_file() else (str(f),) for f in files)
    if key not in _identities:
        digest = hashlib.sha256()
        for file in files:
            digest.update((sha256_file(file) if file.is_file() else "absent").encode())
        _identities[key] = digest.hexdigest()
    return _identities[key]


def check_source_identity(run_dir: str | Path, info: dict[str, Any]) -> None:
    """Refuse a target run whose source run was retrained after it (the recorded source identity differs).

    A run recorded before ``source_identity`` existed passes with a warning.
    """
    source = source_run_dir(run_dir, info)
    recorded = info.get("source_identity")
    if recorded is None:
        log.warning(
            "warning: run %s does not record which version of source run %s it was trained on (made by an older"
            " edgeadapt); if that source run was retrained since, retrain %s",
            run_dir,
            source,
            info["lang"],
        )
        return
    if recorded != source_identity(source):
        raise EdgeAdaptError(
            f"run {run_dir} was trained on another version of source run {source} (retrained since): retrain it"
            f" with `edgeadapt train --lang {info['lang']}`, or restore that source run"
        )


def source_run_dir(run_dir: str | Path, info: dict[str, Any]) -> Path:
    """The source-stage run a target-stage run builds on (stored relative to the run, or absolute)."""
    source = Path(info["source_run"])
    return source if source.is_absolute() else (Path(run_dir) / source).resolve()


def load_file(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a run's safetensors file; a missing or unreadable file is a clear error."""
    try:
        return _load_file(str(path))
    except Exception as exc:  # safetensors raises SafetensorError, OSError or its own HeaderTooLarge
        raise EdgeAdaptError(f"{path} is missing or not a readable safetensors file: retrain the run") from exc


def save_head(model: PromptedQAModel, path: Path) -> None:
    with atomic_path(path) as tmp:
        save_file(
            {
                "weight": model.qa_outputs.weight.detach().contiguous(),
                "bias": model.qa_outputs.bias.detach().contiguous(),
            },
            str(tmp),
        )


def load_head(model: PromptedQAModel, path: Path) -> None:
    tensors = load_file(str(path))
    with torch.no_grad():
        model.qa_outputs.weight.copy_(tensors["weight"])
        model.qa_outputs.bias.copy_(tensors["bias"])


def save_prompt(model: PromptedQAModel, path: Path) -> None:
    if model.prompt is None:
        return
    with atomic_path(path) as tmp:
        save_file({"prompt": model.prompt.detach().contiguous()}, str(tmp))


def load_prompt(path: Path) -> torch.Tensor:
    return load_file(str(path))["prompt"]


def load_encoder(backbone: str) -> torch.nn.Module:
    """The bare encoder (no task head) from a local folder or hub name, in fp32."""
    from transformers import AutoModel

    try:
        return AutoModel.from_pretrained(backbone, dtype=torch.float32)
    except OSError as exc:
        raise EdgeAdaptError(f"cannot load backbone '{backbone}': {str(exc).splitlines()[0]}") from exc


def check_backbone(info: dict[str, Any], backbone: str | None, run_dir: str | Path) -> str:
    """The backbone a run was trained on; refuse a different one (by weight fingerprint)."""
    from edgeadapt.backbones.resolve import weights_fingerprint

    path = backbone or info["backbone"]["path"]
    if weights_fingerprint(path) != info["backbone"]["fingerprint"]:
        raise EdgeAdaptError(
            f"run {run_dir} was trained on another backbone ({info['backbone']['path']}); pass that backbone or retrain"
        )
    return path


def task_weights_file(source_dir: str | Path, info: dict[str, Any] | None = None) -> Path:
    """The file holding a source run's task weights: its fine-tuned layers, or its task LoRA."""
    info = info if info is not None else read_run(source_dir)
    if is_full_finetune(info):
        return Path(source_dir) / TASK_ENCODER_FILE
    return Path(source_dir) / ADAPTER_DIRS[TASK_ADAPTER] / "adapter_model.safetensors"


def save_task_encoder(model: PromptedQAModel, path: Path) -> None:
    """The fine-tuned transformer layers of a source-stage encoder (all but the frozen embeddings and pooler)."""
    tensors = {
        name: tensor.detach().contiguous()
        for name, tensor in model.encoder.state_dict().items()
        if not is_frozen_in_task_stage(name)
    }
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp))


def load_task_encoder(encoder: torch.nn.Module, path: Path) -> torch.nn.Module:
    """``encoder`` (the pulled backbone) with a source run's fine-tuned layers loaded in place."""
    tensors = load_file(str(path))
    missing, unexpected = encoder.load_state_dict(tensors, strict=False)
    stray = [name for name in missing if not is_frozen_in_task_stage(name)]
    if unexpected or stray:
        raise EdgeAdaptError(
            f"{path} does not fit this backbone ({len(unexpected)} unknown and {len(stray)} missing weights):"
            " pass the backbone the source run was trained on"
        )
    return encoder


def peft_folder(folder: Path) -> str:
    """A peft adapter folder, after checking that its weights are safetensors (pickle files are never loaded)."""
    if not (folder / "adapter_model.safetensors").is_file():
        found = (
            " (it holds adapter_model.bin, a pickle file edgeadapt does not load)"
            if (folder / "adapter_model.bin").exists()
            else ""
        )
        raise EdgeAdaptError(f"{folder} has no adapter_model.safetensors{found}: retrain the run or restore its files")
    load_file(folder / "adapter_model.safetensors")  # readable (peft would fail with a traceback)
    return str(folder)


def source_encoder(source_dir: str | Path, backbone: str) -> torch.nn.Module:
    """The bare backbone with a source run's task weights in: its merged task LoRA, or its fine-tuned layers."""
    from peft import PeftModel

    source_dir = Path(source_dir)
    info = read_run(source_dir)
    if is_full_finetune(info):
        return load_task_encoder(load_encoder(backbone), source_dir / TASK_ENCODER_FILE)
    adapter = peft_folder(source_dir / ADAPTER_DIRS[TASK_ADAPTER])
    with torch.no_grad():
        return PeftModel.from_pretrained(load_encoder(backbone), adapter, adapter_name=TASK_ADAPTER).merge_and_unload()


def run_task(info: dict[str, Any]) -> str:
    """The task a run learned (``qa`` for runs made before tasks existed)."""
    return str(info.get("task", "qa"))


def load_run_model(run_dir: str | Path, backbone: str | None = None) -> PromptedQAModel:
    """Rebuild the trained model of a run (source or target stage) in eval mode, on the CPU."""
    from peft import PeftModel

    run_dir = Path(run_dir)
    info = read_run(run_dir)
    path = check_backbone(info, backbone, run_dir)
    task = run_task(info)
    if info["stage"] == "source" and is_full_finetune(info):
        model = PromptedQAModel(source_encoder(run_dir, path), task=task)
        load_head(model, run_dir / HEAD_FILE)
        return model.eval()
    if info["stage"] == "source":
        encoder = PeftModel.from_pretrained(
            load_encoder(path), peft_folder(run_dir / ADAPTER_DIRS[TASK_ADAPTER]), adapter_name=TASK_ADAPTER
        )
        model = PromptedQAModel(encoder, task=task)
        load_head(model, run_dir / HEAD_FILE)
        return model.eval()
    source = source_run_dir(run_dir, info)
    check_source_identity(run_dir, info)
    if is_full_finetune(info):
        model = PromptedQAModel(load_encoder(str(run_dir / FULL_ENCODER_DIR)), task=task)
        load_head(model, source / HEAD_FILE)
        return model.eval()
    merged = source_encoder(source, path)
    lang_dir = run_dir / ADAPTER_DIRS[LANG_ADAPTER]
    if is_adapter_config(lang_dir):
        encoder = load_bottlenecks(merged, lang_dir)
    else:
        encoder = PeftModel.from_pretrained(merged, peft_folder(lang_dir), adapter_name=LANG_ADAPTER)
    prompt_file = run_dir / PROMPT_FILE
    prompt = load_prompt(prompt_file) if prompt_file.exists() else None
    positions = TrainConfig.from_json(info.get("config", {})).prompt_positions
    model = PromptedQAModel(
        encoder, 0 if prompt is None else prompt.shape[0], prompt, prompt_positions=positions, task=task
    )
    load_head(model, source / HEAD_FILE)
    return model.eval()


def save_adapter(model: PromptedQAModel, adapter_name: str, run_dir: Path) -> None:
    """Write one adapter of ``model.encoder`` to ``run_dir/<adapter dir>``: a peft adapter in peft's own format,
    or the encoder's bottleneck adapters (``adapter_config.json`` + ``adapter_model.safetensors``)."""
    import shutil
    import tempfile

    target = Path(run_dir) / ADAPTER_DIRS[adapter_name]
    with tempfile.TemporaryDirectory(dir=run_dir) as tmp:
        if has_bottlenecks(model.encoder):
            save_bottlenecks(model.encoder, Path(tmp) / adapter_name)
        else:
            model.encoder.save_pretrained(tmp, selected_adapters=[adapter_name])
        saved = Path(tmp) / adapter_name if (Path(tmp) / adapter_name).is_dir() else Path(tmp)
        if target.exists():
            shutil.rmtree(target)
        shutil.move(str(saved), str(target))


def save_full_encoder(model: PromptedQAModel, run_dir: Path) -> None:
    """Write the whole encoder as a Hugging Face folder (safetensors) to ``run_dir/encoder`` (--adapter full)."""
    from edgeadapt.fileio import atomic_dir

    with atomic_dir(Path(run_dir) / FULL_ENCODER_DIR) as tmp:
        model.encoder.save_pretrained(tmp, safe_serialization=True)


def write_run(model: PromptedQAModel, run_dir: str | Path, info: dict[str, Any]) -> None:
    """Save a trained model's files and ``run.json`` (written last: its presence marks a finished run).

    ``info`` must hold ``stage``, ``lang`` and ``backbone`` ({"path", "fingerprint"}); a target-stage
    run also ``source_run`` (its ``source_identity`` is added here when absent). The encoder must be a PeftModel
    holding the stage's adapter, or (target stage) an encoder with bottleneck adapters.
    """
    from edgeadapt.fileio import write_json_atomic

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    mark_unfinished(run_dir)
    if info["stage"] == "target" and "source_identity" not in info:
        info = {**info, "source_identity": source_identity(source_run_dir(run_dir, info))}
    if info["stage"] == "source":
        if is_full_finetune(info):
            save_task_encoder(model, run_dir / TASK_ENCODER_FILE)
        else:
            save_adapter(model, TASK_ADAPTER, run_dir)
        save_head(model, run_dir / HEAD_FILE)
    elif is_full_finetune(info):
        save_full_encoder(model, run_dir)
    else:
        save_adapter(model, LANG_ADAPTER, run_dir)
        (run_dir / PROMPT_FILE).unlink(missing_ok=True)
        save_prompt(model, run_dir / PROMPT_FILE)
    write_json_atomic(run_dir / RUN_FILE, {**info, "prompt_len": model.prompt_len})
