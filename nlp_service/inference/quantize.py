"""int8 serving: ONNX Runtime dynamic quantisation of the exported encoder graph.

Weights of the graph's MatMuls become int8 (per output channel by default); activations are quantised per
batch at run time (dynamic), so no calibration set is needed and padded batches of any shape are served.
Nodes named in ``exclude`` (a substring of the node name, e.g. ``/layers.5/`` for the last layer) stay in
fp32. The quantised graph keeps both outputs of the export: pooled layers and last-layer token states.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

QUANTIZED_OPS = ("MatMul",)
# MatMuls kept fp32 by default (substrings of node names), decided by `python -m evaluation int8` (stock
# encoder, shipped heads): "output/dense" keeps every layer's attention and FFN output projections fp32 (the
# FFN's GELU outputs quantise worst). Worst metric change 0.0027 (pass); every MatMul int8: goemotions
# macro-F1 -0.0060 (fails the 0.005 bar).
DEFAULT_KEEP_FP32: tuple[str, ...] = ("output/dense",)


def matmul_nodes(model_path: Path) -> list[str]:
    """Names of the graph's MatMul nodes (the candidates for int8)."""
    import onnx

    graph = onnx.load(str(model_path)).graph
    return [node.name for node in graph.node if node.op_type in QUANTIZED_OPS]


def quantize_onnx_apart(model: bytes, *, exclude: Sequence[str] = ()) -> bytes:
    """:func:`quantize_onnx` in a child process, so that its transient copies of the graph (a few hundred MB)
    never count in the calling process's peak memory."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_quantize_child, model, tuple(exclude)).result()


def _quantize_child(model: bytes, exclude: tuple[str, ...]) -> bytes:
    return quantize_onnx(model, exclude=exclude)


def quantize_onnx(model: bytes, *, per_channel: bool = True, exclude: Sequence[str] = ()) -> bytes:
    """The int8 (dynamic, weights int8 signed) version of an exported fp32 ONNX graph.

    ``exclude``: substrings of node names whose MatMuls stay fp32.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="nlp-int8-") as tmp:
        source, target = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        source.write_bytes(model)
        names = matmul_nodes(source)
        kept = [n for n in names if any(part in n for part in exclude)]
        quantize_dynamic(
            source,
            target,
            per_channel=per_channel,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=list(QUANTIZED_OPS),
            nodes_to_exclude=kept,
        )
        return target.read_bytes()
