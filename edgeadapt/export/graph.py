"""PyTorch -> ONNX: the QA graph with adapter slots (externalize) or with everything baked in (merge).

The externalized graph takes the soft prompt and every LoRA (or bottleneck adapter) matrix as graph inputs, each
with a default initializer of the same name that is empty on the prompt / rank axis, so that running with no adapter
is the plain backbone (task LoRA merged) + span head, and an ``.onnx_adapter`` file overrides the defaults by name.
Export goes through ``torch.export`` (the TorchScript exporter cannot take parameters as inputs); the example
batch and every dynamic axis have size >= 2 so nothing is specialised.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

from edgeadapt.export.attention import fuse_attention
from edgeadapt.export.node_index import NodeIndex
from edgeadapt.training.model import PromptPlacement, masked_mean, prepend_prompt

PROMPT_INPUT = "soft_prompt"
GRAPH_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
GRAPH_OUTPUTS = ("start_logits", "end_logits")
PAIR_OUTPUTS = ("logits",)
"""A sentence-pair graph's output: label logits ``[batch, 2]`` (``edgeadapt.tasks.PAIR_LABELS``)."""
OPSET = 18


LORA = "lora"
BOTTLENECK = "bottleneck"
SLOT_SUFFIXES = {LORA: ("lora_A", "lora_B"), BOTTLENECK: ("bottleneck_down", "bottleneck_up")}
"""Graph-input names of a slot's two tensors, ``<module>.<suffix>``: [r, in] first, [out, r] second."""


@dataclass(frozen=True)
class LoraSlot:
    """One adapted linear layer with two graph inputs: ``a_name`` [r, in] and ``b_name`` [out, r].

    ``kind`` ``lora``: ``<module>.lora_A`` / ``<module>.lora_B``, the layer adds ``B (A x)``;
    ``kind`` ``bottleneck``: ``<module>.bottleneck_down`` / ``<module>.bottleneck_up``, it adds ``up relu(down x)``
    (a parallel bottleneck adapter, its scale baked into ``up``).
    """

    module: str
    in_features: int
    out_features: int
    kind: str = LORA

    @property
    def a_name(self) -> str:
        return f"{self.module}.{SLOT_SUFFIXES[self.kind][0]}"

    @property
    def b_name(self) -> str:
        return f"{self.module}.{SLOT_SUFFIXES[self.kind][1]}"


class SlotLinear(nn.Module):
    """A linear layer plus adapter branches (LoRA and/or bottleneck) whose matrices are handed in per forward."""

    def __init__(self, base: nn.Linear):
        super().__init__()
        self.base = base
        self.kinds: list[str] = []
        self.branches: list[tuple[torch.Tensor, torch.Tensor]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)
        for kind, (first, second) in zip(self.kinds, self.branches, strict=False):
            inner = torch.matmul(x, first.t())
            if kind == BOTTLENECK:
                inner = torch.relu(inner)
            out = out + torch.matmul(inner, second.t())
        return out


class ExportableQA(nn.Module):
    """Encoder + span head; the soft prompt and LoRA matrices are inputs (``slots``) or a fixed buffer.

    ``forward(input_ids, attention_mask, token_type_ids[, prompt, loras])`` returns start and end logits
    over the real tokens (the prompt positions are dropped inside the graph).
    """

    def __init__(
        self,
        encoder: nn.Module,
        head: nn.Linear,
        slots: list[LoraSlot],
        fixed_prompt: torch.Tensor | None,
        prompt_positions: str = "tail",
        task: str = "qa",
    ):
        super().__init__()
        self.encoder = encoder
        self.task = task
        self.placement = PromptPlacement.of(encoder, prompt_positions)
        self.head = head
        self.slots = list(slots)
        self.slot_layers = nn.ModuleList()
        for slot in self.slots:  # a layer may hold a LoRA slot and a bottleneck slot: one SlotLinear, two branches
            parent_name, _, child = slot.module.rpartition(".")
            parent = encoder.get_submodule(parent_name)
            wrapped = getattr(parent, child)
            if not isinstance(wrapped, SlotLinear):
                wrapped = SlotLinear(wrapped)
                setattr(parent, child, wrapped)
            wrapped.kinds.append(slot.kind)
            self.slot_layers.append(wrapped)
        self.externalized = fixed_prompt is None
        if fixed_prompt is not None:
            self.register_buffer("fixed_prompt", fixed_prompt.detach().float().clone())

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor,
        prompt: torch.Tensor | None = None,
        loras: list[torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, ...]:
        if prompt is None:
            prompt = self.fixed_prompt
        for layer in self.slot_layers:
            layer.branches = []
        for index, layer in enumerate(self.slot_layers):
            if loras:
                layer.branches.append((loras[2 * index], loras[2 * index + 1]))
        embeds = self.encoder.get_input_embeddings()(input_ids)
        hidden = self.encoder(**prepend_prompt(embeds, attention_mask, token_type_ids, prompt, self.placement))
        text = hidden.last_hidden_state[:, prompt.shape[0] :]
        for layer in self.slot_layers:
            layer.branches = []
        if self.task != "qa":  # sentence pairs: label logits of the mean over the real tokens
            return (self.head(masked_mean(text, attention_mask)),)
        logits = self.head(text)
        return logits[..., 0], logits[..., 1]


def find_slots(encoder: nn.Module, targets: set[str], kind: str = LORA) -> list[LoraSlot]:
    """A ``kind`` slot for every ``nn.Linear`` of the encoder whose full module name is in ``targets``, in module
    order."""
    slots = []
    for name, module in encoder.named_modules():
        if name in targets:
            if not isinstance(module, nn.Linear):
                raise TypeError(f"adapter target {name} is a {type(module).__name__}, not a Linear layer")
            slots.append(LoraSlot(name, module.in_features, module.out_features, kind))
    missing = targets - {slot.module for slot in slots}
    if missing:
        raise KeyError(f"adapter targets not found in the backbone: {sorted(missing)[:3]}")
    return slots


def _example_inputs(vocab: int, hidden: int, slots: list[LoraSlot], prompt: bool) -> tuple:
    batch, seq, k, rank = 2, 8, 3, 2
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(0, vocab, (batch, seq), generator=generator)
    args: tuple = (input_ids, torch.ones(batch, seq, dtype=torch.long), torch.zeros(batch, seq, dtype=torch.long))
    if prompt:
        loras = []
        for slot in slots:
            loras += [torch.randn(rank, slot.in_features) * 0.01, torch.randn(slot.out_features, rank) * 0.01]
        args = (*args, torch.randn(k, hidden) * 0.01, loras)
    return args


def export_graph(
    model: ExportableQA, path: Path, *, max_positions: int, max_prompt_len: int, fuse_attention_cores: bool = True
) -> None:
    """Trace ``model`` with ``torch.export`` and write a single-file ONNX graph to ``path``.

    Externalized graphs get a default initializer for the prompt and every LoRA input (empty on the
    prompt / rank axis), so they run with or without an adapter. ``fuse_attention_cores``: each layer's attention
    core becomes one ``MultiHeadAttention`` kernel (``edgeadapt.export.attention``; the same values).
    """
    config = model.encoder.config
    externalized = model.externalized
    args = _example_inputs(config.vocab_size, config.hidden_size, model.slots, externalized)
    fixed_k = 0 if externalized else int(model.fixed_prompt.shape[0])
    batch = torch.export.Dim("batch", min=1, max=1024)
    seq = torch.export.Dim("sequence", min=2, max=max_positions - (max_prompt_len if externalized else fixed_k))
    shapes: dict = {
        "input_ids": {0: batch, 1: seq},
        "attention_mask": {0: batch, 1: seq},
        "token_type_ids": {0: batch, 1: seq},
    }
    names = list(GRAPH_INPUTS)
    if externalized:
        shapes["prompt"] = {0: torch.export.Dim("prompt_len", min=2, max=max(max_prompt_len, 3))}
        lora_shapes = []
        for index in range(len(model.slots)):
            rank = torch.export.Dim(f"rank_{index}", min=2, max=4096)
            lora_shapes += [{0: rank}, {1: rank}]
        shapes["loras"] = lora_shapes
        names += [PROMPT_INPUT] + [name for slot in model.slots for name in (slot.a_name, slot.b_name)]
    model.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("torch").setLevel(logging.ERROR)
        program = torch.export.export(model, args, dynamic_shapes=shapes, strict=False)
        onnx_program = torch.onnx.export(
            program,
            input_names=names,
            output_names=list(GRAPH_OUTPUTS if model.task == "qa" else PAIR_OUTPUTS),
            opset_version=OPSET,
            verbose=False,
        )
    proto = onnx_program.model_proto
    if externalized:
        _add_empty_defaults(proto, model)
    gelu_in_fusable_order(proto)
    if fuse_attention_cores:
        fuse_attention(proto, int(config.num_attention_heads))
    strip_node_metadata(proto.graph)
    onnx.save_model(proto, str(path), save_as_external_data=False)


def strip_node_metadata(graph: onnx.GraphProto) -> int:
    """Drop the exporter's metadata (Python stack traces with this machine's paths, module hierarchies, FX node
    text: 0.9 of the 1.3 MB of a backbone graph) from the nodes, values and graph, and the nodes' doc strings, in
    this graph and its subgraphs; onnxruntime never reads them. Returns the number of entries removed."""
    removed = len(graph.metadata_props)
    del graph.metadata_props[:]
    for value in (*graph.input, *graph.output, *graph.value_info, *graph.initializer):
        removed += len(value.metadata_props)
        del value.metadata_props[:]
    for node in graph.node:
        removed += len(node.metadata_props) + bool(node.doc_string)
        del node.metadata_props[:]
        node.doc_string = ""
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                removed += strip_node_metadata(attribute.g)
    return removed


def gelu_in_fusable_order(proto: onnx.ModelProto) -> int:
    """Reorder each exact GELU ``x * (0.5 * (1 + erf(x / sqrt 2)))``, as ``torch.onnx`` writes it, into
    ``(x * (1 + erf(x / sqrt 2))) * 0.5``, the order onnxruntime's GeluFusion recognises: the five nodes then run as
    one ``Gelu`` kernel (measured: about 6 ms of a 145 ms window at 1 thread on multilingual-e5-small). The same
    products in another order, so the values agree to float rounding. Returns the GELUs reordered."""
    index = NodeIndex(proto.graph)

    def other(node, name: str) -> str:
        return node.input[1] if node.input[0] == name else node.input[0]

    reordered = 0
    for erf in [node for node in proto.graph.node if node.op_type == "Erf"]:
        divide = index.made_by(erf.input[0], "Div")
        add = index.only_consumer(erf.output[0], "Add")
        half = index.only_consumer(add.output[0], "Mul") if add is not None else None
        outer = index.only_consumer(half.output[0], "Mul") if half is not None else None
        if divide is None or outer is None:
            continue
        x, half_name = divide.input[0], other(half, add.output[0])
        if index.scalar(other(add, erf.output[0])) != 1.0 or index.scalar(half_name) != 0.5:
            continue
        if other(outer, half.output[0]) != x:
            continue
        half.input[:] = [x, add.output[0]]
        outer.input[:] = [half.output[0], half_name]
        reordered += 1
    return reordered


def _add_empty_defaults(proto: onnx.ModelProto, model: ExportableQA) -> None:
    """Give the prompt and every LoRA input a default initializer of the same name, empty on its dynamic axis."""
    hidden = model.encoder.config.hidden_size
    defaults = {PROMPT_INPUT: np.zeros((0, hidden), dtype=np.float32)}
    for slot in model.slots:
        defaults[slot.a_name] = np.zeros((0, slot.in_features), dtype=np.float32)
        defaults[slot.b_name] = np.zeros((slot.out_features, 0), dtype=np.float32)
    present = {value.name for value in proto.graph.input}
    for name, array in defaults.items():
        if name not in present:
            raise RuntimeError(f"exported graph lacks the input {name}")
        proto.graph.initializer.append(numpy_helper.from_array(array, name))
