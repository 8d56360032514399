"""Parallel bottleneck adapters (He et al. 2022, "Towards a Unified View of Parameter-Efficient Transfer Learning").

peft 0.21 has no bottleneck (Houlsby / parallel adapter) tuner, so this small module injects one: every adapted
``nn.Linear`` becomes :class:`BottleneckLinear`, computing ``y = Linear(x) + s * W_up relu(W_down x)`` with
``W_down`` [r, in] and ``W_up`` [out, r], no biases, ``W_up`` initialised to zero so training starts exactly
from the model it adapts. ReLU keeps the exported branch to MatMul, Relu, MatMul.

Saved as a folder (the run's ``lang_adapter/``)::

    adapter_config.json         {"kind": "bottleneck", "size", "scale", "activation", "targets", "modules"}
    adapter_model.safetensors   "<module>.down" [r, in] and "<module>.up" [out, r] (unscaled), module names of
                                the bare encoder

Targets are dotted name suffixes matched component by component, ``*`` standing for one component:
``layer.*.output.dense`` is the FFN output projection of every BERT / XLM-R layer (and not
``attention.output.dense``, which plain suffix matching would also take).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from edgeadapt.errors import EdgeAdaptError
from edgeadapt.fileio import atomic_path, write_json_atomic

KIND = "bottleneck"
ACTIVATION = "relu"
CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
PARAM_PREFIX = "bottleneck_"
"""Parameter names of the adapter (``...<module>.bottleneck_down.weight``): how freeze and export find them."""


@dataclass(frozen=True)
class BottleneckConfig:
    """Size r of the bottleneck, scale s of its output, and the target patterns."""

    size: int
    scale: float
    targets: tuple[str, ...]
    activation: str = ACTIVATION


class BottleneckLinear(nn.Module):
    """``base(x) + scale * up(relu(down(x)))``; the base layer is kept as is (frozen by the caller)."""

    def __init__(self, base: nn.Linear, size: int, scale: float):
        super().__init__()
        self.base = base
        self.scale = float(scale)
        self.bottleneck_down = nn.Linear(base.in_features, size, bias=False)
        self.bottleneck_up = nn.Linear(size, base.out_features, bias=False)
        nn.init.zeros_(self.bottleneck_up.weight)
        self.bottleneck_down.to(base.weight.dtype)
        self.bottleneck_up.to(base.weight.dtype)

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    @property
    def size(self) -> int:
        return self.bottleneck_down.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.scale * self.bottleneck_up(torch.relu(self.bottleneck_down(x)))


def matches(name: str, target: str) -> bool:
    """Whether module ``name`` ends with the dotted ``target`` (``*`` = any one component)."""
    parts, wanted = name.split("."), target.split(".")
    return len(parts) >= len(wanted) and all(
        fnmatchcase(part, want) for part, want in zip(parts[-len(wanted) :], wanted, strict=True)
    )


def target_modules(encoder: nn.Module, targets: tuple[str, ...] | list[str]) -> list[str]:
    """Names of the ``nn.Linear`` modules of ``encoder`` that a target pattern matches, in module order."""
    names = []
    for name, module in encoder.named_modules():
        if any(matches(name, t) for t in targets):
            if not isinstance(module, nn.Linear):
                raise EdgeAdaptError(
                    f"--bottleneck-targets: {name} is a {type(module).__name__}, not a Linear layer; name Linear layers"
                )
            names.append(name)
    if not names:
        linear = sorted({n.rsplit(".", 1)[-1] for n, m in encoder.named_modules() if isinstance(m, nn.Linear)})
        raise EdgeAdaptError(
            f"--bottleneck-targets {','.join(targets)} match no layer of this backbone; its linear layers end in: "
            f"{', '.join(linear)}"
        )
    return names


def add_bottlenecks(encoder: nn.Module, config: BottleneckConfig, modules: list[str] | None = None) -> nn.Module:
    """Wrap the target Linear layers of ``encoder`` in place (``modules``: exact names, else from the targets)."""
    if config.size < 1:
        raise EdgeAdaptError("--bottleneck-size must be at least 1")
    if config.activation != ACTIVATION:
        raise EdgeAdaptError(f"bottleneck activation {config.activation!r} is not supported: only {ACTIVATION}")
    for name in modules if modules is not None else target_modules(encoder, config.targets):
        parent_name, _, child = name.rpartition(".")
        parent = encoder.get_submodule(parent_name) if parent_name else encoder
        layer = getattr(parent, child)
        if not isinstance(layer, nn.Linear):
            raise EdgeAdaptError(f"bottleneck adapter for {name}: that module is not a Linear layer of this backbone")
        setattr(parent, child, BottleneckLinear(layer, config.size, config.scale))
    encoder.bottleneck_config = config
    return encoder


def bottleneck_layers(encoder: nn.Module) -> dict[str, BottleneckLinear]:
    """The adapted layers of ``encoder`` by module name."""
    return {name: module for name, module in encoder.named_modules() if isinstance(module, BottleneckLinear)}


def has_bottlenecks(encoder: nn.Module) -> bool:
    return any(isinstance(module, BottleneckLinear) for module in encoder.modules())


def remove_bottlenecks(encoder: nn.Module) -> nn.Module:
    """Put the plain Linear layers back (in place): the encoder the adapter was added to."""
    for name, layer in bottleneck_layers(encoder).items():
        parent_name, _, child = name.rpartition(".")
        parent = encoder.get_submodule(parent_name) if parent_name else encoder
        setattr(parent, child, layer.base)
    return encoder


def is_adapter_config(folder: Path) -> bool:
    """Whether ``folder`` holds a bottleneck adapter (its ``adapter_config.json`` says ``"kind": "bottleneck"``)."""
    path = Path(folder) / CONFIG_FILE
    if not path.exists():
        return False
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("kind") == KIND
    except json.JSONDecodeError:
        return False


def save_bottlenecks(encoder: nn.Module, folder: Path) -> None:
    """Write the adapter of ``encoder`` to ``folder`` (config JSON + safetensors, each written atomically)."""
    layers = bottleneck_layers(encoder)
    if not layers:
        raise ValueError("the encoder holds no bottleneck adapter")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    first = next(iter(layers.values()))
    config = getattr(encoder, "bottleneck_config", None)
    record = {
        "kind": KIND,
        "size": first.size,
        "scale": first.scale,
        "activation": ACTIVATION,
        "targets": list(config.targets) if config is not None else sorted(layers),
        "modules": list(layers),
    }
    tensors = {}
    for name, layer in layers.items():
        tensors[f"{name}.down"] = layer.bottleneck_down.weight.detach().float().contiguous()
        tensors[f"{name}.up"] = layer.bottleneck_up.weight.detach().float().contiguous()
    with atomic_path(folder / WEIGHTS_FILE) as tmp:
        save_file(tensors, str(tmp))
    write_json_atomic(folder / CONFIG_FILE, record)


def load_bottlenecks(encoder: nn.Module, folder: Path) -> nn.Module:
    """Add the saved adapter of ``folder`` to ``encoder`` (in place) and return it."""
    folder = Path(folder)
    try:
        record = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
        tensors = load_file(str(folder / WEIGHTS_FILE))
    except (OSError, json.JSONDecodeError) as exc:
        raise EdgeAdaptError(f"cannot read the bottleneck adapter in {folder} ({exc}); retrain the run") from exc
    config = BottleneckConfig(
        int(record["size"]), float(record["scale"]), tuple(record["targets"]), record.get("activation", ACTIVATION)
    )
    add_bottlenecks(encoder, config, modules=list(record["modules"]))
    with torch.no_grad():
        for name, layer in bottleneck_layers(encoder).items():
            try:
                layer.bottleneck_down.weight.copy_(tensors[f"{name}.down"])
                layer.bottleneck_up.weight.copy_(tensors[f"{name}.up"])
            except (KeyError, RuntimeError) as exc:
                raise EdgeAdaptError(f"bottleneck adapter in {folder} does not fit this backbone at {name}") from exc
    return encoder
