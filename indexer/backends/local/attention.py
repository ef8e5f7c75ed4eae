"""Attention fusion for BERT-style ONNX encoders exported by PyTorch.

Each self-attention block (three projections, scaled ``Q @ K^T`` plus the padding
mask, softmax, ``@ V``, heads merged back) becomes one ``com.microsoft.Attention``
node, which onnxruntime runs with fused kernels and its quantiser turns into
``QAttention``. onnxruntime's own transformer optimiser does not recognise the
graph that recent PyTorch exports emit (a NaN guard after the softmax), and it
needs sympy. Blocks that do not match exactly are left as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

_MASK = "attention_mask"
_MASK_INT32 = "attention_mask_int32_for_fused_attention"


@dataclass(frozen=True)
class _Projection:
    """``x @ weight + bias`` feeding one attention operand, and the constants on its path."""

    x: str
    weight: np.ndarray
    bias: np.ndarray
    scale: float
    head_size: int | None


def fuse_attention(model: Any) -> int:
    """Rewrite ``model`` (an ``onnx.ModelProto``) in place; return how many blocks were fused."""
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    if _MASK not in {i.name for i in graph.input}:
        return 0
    constants = {i.name: i for i in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def constant(name: str) -> np.ndarray | None:
        tensor = constants.get(name)
        return None if tensor is None else numpy_helper.to_array(tensor)

    def only_consumer(name: str, op_type: str) -> Any | None:
        found = consumers.get(name, [])
        return found[0] if len(found) == 1 and found[0].op_type == op_type else None

    def head_size(reshape: Any) -> int | None:
        shape = constant(reshape.input[1])
        concat = producer.get(reshape.input[1])
        if shape is None and concat is not None and concat.op_type == "Concat":
            shape = constant(concat.input[-1])
        return int(shape.ravel()[-1]) if shape is not None and shape.ravel()[-1] > 0 else None

    def projection(name: str) -> _Projection | None:
        scale, size = 1.0, None
        while (node := producer.get(name)) is not None:
            values = [constant(i) for i in node.input]
            if node.op_type == "Mul" and len(values) == 2 and any(
                    v is not None and v.size == 1 for v in values):
                k = 0 if values[0] is not None and values[0].size == 1 else 1
                scale *= float(values[k].ravel()[0])  # type: ignore[union-attr]
                name = node.input[1 - k]
            elif node.op_type in ("Transpose", "Reshape"):
                if node.op_type == "Reshape":
                    size = size or head_size(node)
                name = node.input[0]
            elif node.op_type == "Add" and len(values) == 2 and any(v is not None for v in values):
                k = 0 if values[0] is not None else 1
                matmul = producer.get(node.input[1 - k])
                weight = None if matmul is None else constant(matmul.input[1])
                bias = values[k]
                if (matmul is None or matmul.op_type != "MatMul" or weight is None
                        or bias is None or weight.ndim != 2 or weight.dtype != np.float32
                        or bias.shape != (weight.shape[1],)):
                    return None
                return _Projection(matmul.input[0], weight, bias, scale, size)
            else:
                return None
        return None

    replacements: dict[str, Any] = {}
    for softmax in [n for n in graph.node if n.op_type == "Softmax"]:
        scores = producer.get(softmax.input[0])
        if scores is None or scores.op_type != "Add":
            continue
        qk = next((producer[i] for i in scores.input
                   if i in producer and producer[i].op_type == "MatMul"), None)
        probs = softmax.output[0]
        guard = consumers.get(probs, [])
        if sorted(n.op_type for n in guard) == ["IsNaN", "Where"]:
            probs = next(n for n in guard if n.op_type == "Where").output[0]
        weighted = only_consumer(probs, "MatMul")
        transpose = weighted and only_consumer(weighted.output[0], "Transpose")
        merge = transpose and only_consumer(transpose.output[0], "Reshape")
        if qk is None or weighted is None or merge is None:
            continue
        q, k, v = (projection(qk.input[0]), projection(qk.input[1]),
                   projection(weighted.input[1]))
        if q is None or k is None or v is None or not q.x == k.x == v.x or v.scale != 1.0:
            continue
        hidden = q.weight.shape[1]
        size = q.head_size or k.head_size or v.head_size
        if not size or hidden % size or {k.weight.shape[1], v.weight.shape[1]} != {hidden}:
            continue
        index = len(replacements)
        weight_name, bias_name = f"fused_attention_{index}_qkv_w", f"fused_attention_{index}_qkv_b"
        graph.initializer.extend([
            numpy_helper.from_array(np.concatenate([q.weight, k.weight, v.weight], axis=1),
                                    weight_name),
            numpy_helper.from_array(np.concatenate([q.bias, k.bias, v.bias]), bias_name),
        ])
        replacements[merge.output[0]] = helper.make_node(
            "Attention", [q.x, weight_name, bias_name, _MASK_INT32], [merge.output[0]],
            name=f"fused_attention_{index}", domain="com.microsoft",
            num_heads=hidden // size, scale=q.scale * k.scale)
    if not replacements:
        return 0
    cast = helper.make_node("Cast", [_MASK], [_MASK_INT32], to=TensorProto.INT32,
                            name="fused_attention_mask_cast")
    nodes = [cast] + [replacements.get(n.output[0], n) if n.output else n for n in graph.node]
    _keep_live(graph, nodes)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return len(replacements)


def _keep_live(graph: Any, nodes: list[Any]) -> None:
    """Set ``graph``'s nodes to those of ``nodes`` (in order) that reach an output, and
    drop the initializers nothing reads any more."""
    producer = {out: i for i, node in enumerate(nodes) for out in node.output}
    live: set[int] = set()
    pending = [o.name for o in graph.output]
    while pending:
        i = producer.get(pending.pop())
        if i is not None and i not in live:
            live.add(i)
            pending.extend(nodes[i].input)
    kept = [node for i, node in enumerate(nodes) if i in live]
    read = {name for node in kept for name in node.input}
    initializers = [t for t in graph.initializer if t.name in read]
    del graph.node[:]
    graph.node.extend(kept)
    del graph.initializer[:]
    graph.initializer.extend(initializers)
