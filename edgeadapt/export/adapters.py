"""A trained run -> the tensors of its swappable file: soft prompt + LoRA (scaling baked into B) or bottleneck
adapters (scale baked into ``up``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgeadapt.export.graph import BOTTLENECK, PROMPT_INPUT, SLOT_SUFFIXES
from edgeadapt.training.bottleneck import bottleneck_layers, has_bottlenecks
from edgeadapt.training.model import PromptedQAModel
from edgeadapt.training.runs import LANG_ADAPTER

UNUSED_BY_QA = ("pooler.",)
"""Encoder modules the QA graph never runs (the span head reads the last hidden states, not the pooler): a LoRA
there (``--lora-targets dense`` also matches ``pooler.dense``) never trained and has no slot in the graph."""


def lora_layers(encoder: nn.Module, adapter_name: str = LANG_ADAPTER) -> dict[str, nn.Module]:
    """peft LoRA layers holding ``adapter_name`` on the QA forward path, keyed by their module name in the bare
    encoder."""
    layers = {}
    for name, module in encoder.named_modules():
        lora_a = getattr(module, "lora_A", None)
        if isinstance(lora_a, nn.ModuleDict) and adapter_name in lora_a:
            if getattr(module, "use_dora", {}).get(adapter_name, False):
                raise ValueError(f"{name}: DoRA adapters cannot be exported as swappable LoRA files")
            bare = name.removeprefix("base_model.model.")
            if not bare.startswith(UNUSED_BY_QA):
                layers[bare] = module
    return layers


def adapter_tensors(model: PromptedQAModel, adapter_name: str = LANG_ADAPTER) -> dict[str, np.ndarray]:
    """Graph-input name -> float32 array: ``soft_prompt`` [k, hidden] and ``<module>.lora_A`` [r, in] /
    ``<module>.lora_B`` [out, r] with peft's scaling (alpha / r, or rsLoRA's) multiplied into B, or, for a
    bottleneck adapter, ``<module>.bottleneck_down`` [r, in] / ``<module>.bottleneck_up`` [out, r] with the
    adapter's scale multiplied into ``up``.
    """
    tensors: dict[str, np.ndarray] = {}
    if model.prompt is not None and model.prompt_len > 0:
        tensors[PROMPT_INPUT] = np.ascontiguousarray(model.prompt.detach().float().numpy(), dtype=np.float32)
    for name, layer in lora_layers(model.encoder, adapter_name).items():
        weight_a = layer.lora_A[adapter_name].weight.detach().float()
        weight_b = layer.lora_B[adapter_name].weight.detach().float() * float(layer.scaling[adapter_name])
        if getattr(layer, "fan_in_fan_out", False):
            raise ValueError(f"{name}: fan_in_fan_out LoRA layers are not supported")
        tensors[f"{name}.lora_A"] = np.ascontiguousarray(weight_a.numpy(), dtype=np.float32)
        tensors[f"{name}.lora_B"] = np.ascontiguousarray(weight_b.numpy(), dtype=np.float32)
    down_suffix, up_suffix = SLOT_SUFFIXES[BOTTLENECK]
    for name, layer in bottleneck_layers(model.encoder).items():
        down = layer.bottleneck_down.weight.detach().float()
        up = layer.bottleneck_up.weight.detach().float() * layer.scale
        tensors[f"{name}.{down_suffix}"] = np.ascontiguousarray(down.numpy(), dtype=np.float32)
        tensors[f"{name}.{up_suffix}"] = np.ascontiguousarray(up.numpy(), dtype=np.float32)
    return tensors


def adapter_kind(model: PromptedQAModel) -> str:
    """``bottleneck`` when the model's language adapter is a bottleneck adapter, else ``lora``."""
    return BOTTLENECK if has_bottlenecks(model.encoder) else "lora"


def write_adapter_file(
    path: Path, tensors: dict[str, np.ndarray], model_version: int, adapter_version: int = 1
) -> None:
    """Write an onnxruntime ``.onnx_adapter`` file; each array keeps its dtype (float32, or float16 / int8 + float32
    scales, see :func:`edgeadapt.export.slots.encode_tensors`). ``ortvalue_from_numpy`` does not copy: every array
    is kept referenced (``arrays``/``values``) until ``export_adapter`` has returned.
    """
    import onnxruntime as ort

    arrays = {name: np.ascontiguousarray(array) for name, array in tensors.items()}
    values = {name: ort.OrtValue.ortvalue_from_numpy(array) for name, array in arrays.items()}
    adapter = ort.AdapterFormat()
    adapter.set_adapter_version(adapter_version)
    adapter.set_model_version(model_version)
    adapter.set_parameters(values)
    adapter.export_adapter(str(path))
    del values, arrays


def merge_language_lora(model: PromptedQAModel) -> nn.Module:
    """The bare encoder of a target-stage model with its language LoRA merged into the weights.

    A bottleneck adapter is nonlinear and cannot be merged into a weight: its layers stay in the encoder, so an
    exported graph computes the branch with constant weights (baked in).
    """
    if has_bottlenecks(model.encoder):
        return model.encoder
    with torch.no_grad():
        return model.encoder.merge_and_unload()
