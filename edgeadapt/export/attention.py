"""Fuse each self-attention core of an exported graph into onnxruntime's ``MultiHeadAttention`` kernel.

``torch.onnx`` writes ``scaled_dot_product_attention`` as about twenty nodes a layer: the query, key and value
projections reshaped and transposed into heads, each side multiplied by the square root of the scale, the key
transposed, ``MatMul``, the mask bias added, ``Softmax``, ``MatMul`` with the values, transposed and reshaped back.
onnxruntime's transformer optimiser does not match this with adapter branches on the projections (docs/export.md),
and its session optimiser has no such fusion. This pass replaces the core, from the three projected ``[batch, seq,
hidden]`` tensors to the ``[batch, seq, hidden]`` context, by ``com.microsoft.MultiHeadAttention``, so the
projections, their adapter slots and their quantisation stay as they are: without a mask when no position is
masked (onnxruntime then runs its blockwise "flash" kernel, which takes no mask), with the mask bias as its
``attention_bias`` otherwise, chosen by an ``If``. The values agree to float rounding. A layer whose nodes do not
have this shape is left as it was.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgeadapt.export.node_index import NodeIndex

logger = logging.getLogger(__name__)

MS_DOMAIN = "com.microsoft"
HEAD_LAYOUT = (0, 2, 1, 3)  # [batch, seq, heads, dim] <-> [batch, heads, seq, dim]


@dataclass(frozen=True)
class AttentionCore:
    """One matched attention core: its three ``[batch, seq, hidden]`` inputs, its mask bias, the product of its two
    scale factors and the name of its ``[batch, seq, hidden]`` output."""

    query: str
    key: str
    value: str
    bias: str
    scale: float
    output: str


class _Graph(NodeIndex):
    """:class:`NodeIndex` plus the walk through head-layout nodes."""

    def through_layout(self, name: str) -> str:
        """Walk up through Reshape and Transpose nodes (their data input) to the tensor they rearrange."""
        node = self.producer.get(name)
        while node is not None and node.op_type in ("Reshape", "Transpose"):
            name = node.input[0]
            node = self.producer.get(name)
        return name


def _perm(node: onnx.NodeProto) -> tuple[int, ...]:
    return tuple(next((list(a.ints) for a in node.attribute if a.name == "perm"), []))


def _scaled_side(graph: _Graph, name: str) -> tuple[str, float] | None:
    """``x * c`` with ``c`` a scalar initializer: the tensor before the head layout and ``c``."""
    multiply = graph.made_by(name, "Mul")
    if multiply is None:
        return None
    for data, factor in ((multiply.input[0], multiply.input[1]), (multiply.input[1], multiply.input[0])):
        value = graph.scalar(factor)
        if value is not None:
            return graph.through_layout(data), value
    return None


def match_core(graph: _Graph, softmax: onnx.NodeProto) -> AttentionCore | None:
    """The attention core around ``softmax`` in ``torch.onnx``'s SDPA layout, or None where it differs."""
    add = graph.made_by(softmax.input[0], "Add")
    if add is None:
        return None
    scores = next(filter(None, (graph.made_by(name, "MatMul") for name in add.input)), None)
    if scores is None:
        return None
    bias = add.input[1] if add.input[0] == scores.output[0] else add.input[0]
    query, key = _scaled_side(graph, scores.input[0]), _scaled_side(graph, scores.input[1])
    if query is None or key is None:
        return None
    weighted = graph.only_consumer(softmax.output[0], "MatMul")
    if weighted is None or weighted.input[0] != softmax.output[0]:
        return None
    back = graph.only_consumer(weighted.output[0], "Transpose")
    merge = graph.only_consumer(back.output[0], "Reshape") if back is not None else None
    if merge is None or _perm(back) != HEAD_LAYOUT:
        return None
    value = graph.through_layout(weighted.input[1])
    if len({query[0], key[0], value}) < 3:
        return None  # not three projections: some other product
    return AttentionCore(query[0], key[0], value, bias, query[1] * key[1], merge.output[0])


def _read_names(node: onnx.NodeProto) -> list[str]:
    """What ``node`` reads: its inputs and, for ``If`` and other control flow, what its subgraphs read from outside."""
    names = [name for name in node.input if name]
    for attribute in node.attribute:
        for subgraph in [attribute.g] if attribute.HasField("g") else list(attribute.graphs):
            for inner in subgraph.node:
                names.extend(_read_names(inner))
    return names


def _live_nodes(graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    """The nodes that some graph output depends on, in their order."""
    producer = {output: node for node in graph.node for output in node.output}
    live: set[int] = set()
    stack = [output.name for output in graph.output]
    while stack:
        node = producer.get(stack.pop())
        if node is None or id(node) in live:
            continue
        live.add(id(node))
        stack.extend(_read_names(node))
    return [node for node in graph.node if id(node) in live]


def _attention_node(core: AttentionCore, num_heads: int, output: str, masked: bool, name: str) -> onnx.NodeProto:
    inputs = [core.query, core.key, core.value] + (["", "", core.bias] if masked else [])
    return helper.make_node(
        "MultiHeadAttention", inputs, [output], name=name, domain=MS_DOMAIN, num_heads=num_heads, scale=core.scale
    )


def _branch(node: onnx.NodeProto, name: str) -> onnx.GraphProto:
    return helper.make_graph([node], name, [], [helper.make_tensor_value_info(node.output[0], TensorProto.FLOAT, None)])


def fuse_attention(proto: onnx.ModelProto, num_heads: int) -> int:
    """Replace every attention core of ``proto`` by ``MultiHeadAttention`` (``num_heads`` heads), in place, and drop
    the nodes nothing reads any more. Returns the number of cores fused.

    Each core becomes an ``If`` on "nothing is masked" (the mask bias is all zeros: one window a call, as the
    runtime asks): then ``MultiHeadAttention`` without a mask, which onnxruntime runs as its blockwise (flash)
    kernel, else with the bias, which it runs as plain products. One test of the bias serves every layer."""
    graph = _Graph(proto.graph)
    cores = [(softmax, match_core(graph, softmax)) for softmax in proto.graph.node if softmax.op_type == "Softmax"]
    unmasked: dict[str, str] = {}  # bias -> the name of its "all zeros" flag
    added: list[onnx.NodeProto] = []
    fused = 0
    for index, (softmax, core) in enumerate(cores):
        if core is None:
            logger.info("attention at %s is not in the expected layout: left unfused", softmax.name)
            continue
        if core.bias not in unmasked:
            flag = unmasked[core.bias] = f"{core.bias}_is_unmasked"
            lowest, zero = f"{core.bias}_lowest", f"{core.bias}_zero"
            proto.graph.initializer.append(numpy_helper.from_array(np.zeros((), np.float32), zero))
            added += [
                helper.make_node("ReduceMin", [core.bias], [lowest], name=f"{lowest}_node", keepdims=0),
                helper.make_node("GreaterOrEqual", [lowest, zero], [flag], name=f"{flag}_node"),
            ]
        name = f"MultiHeadAttention_{index}"
        flash = _attention_node(core, num_heads, f"{core.output}_unmasked", False, f"{name}_unmasked")
        masked = _attention_node(core, num_heads, f"{core.output}_masked", True, f"{name}_masked")
        node = helper.make_node(
            "If",
            [unmasked[core.bias]],
            [core.output],
            name=name,
            then_branch=_branch(flash, f"{name}_then"),
            else_branch=_branch(masked, f"{name}_else"),
        )
        graph.producer[core.output].CopyFrom(node)  # the context's Reshape becomes the fused attention
        fused += 1
    if fused:
        first_reader = min(i for i, node in enumerate(proto.graph.node) if node.op_type == "If")
        for offset, node in enumerate(added):  # the flags go before the first attention that reads them
            proto.graph.node.insert(first_reader + offset, node)
        live = _live_nodes(proto.graph)  # still in order: each fused node sits after its inputs' producers
        del proto.graph.node[:]
        proto.graph.node.extend(live)
        if not any(entry.domain == MS_DOMAIN for entry in proto.opset_import):
            proto.opset_import.append(helper.make_opsetid(MS_DOMAIN, 1))
        used = {name for node in proto.graph.node for name in _read_names(node)}
        used |= {value.name for value in proto.graph.input}  # slot defaults stay, read or not
        kept = [tensor for tensor in proto.graph.initializer if tensor.name in used]
        del proto.graph.initializer[:]
        proto.graph.initializer.extend(kept)
    return fused
