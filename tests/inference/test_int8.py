"""int8 serving: ONNX Runtime dynamic quantisation of the exported graph, close to fp32, nodes kept fp32."""

from __future__ import annotations

import numpy as np
import pytest

from nlp_service.config import default_encoder_path
from nlp_service.inference.encoder import Encoder
from nlp_service.inference.quantize import quantize_onnx

pytestmark = pytest.mark.slow

TEXTS = [
    "The delivery was late and support never answered my emails.",
    "Great app. But the new update logs me out every time I open it.",
    "ok",
]


@pytest.fixture(scope="module")
def int8_encoder() -> Encoder:
    encoder = Encoder(default_encoder_path(), max_seq_length=64, threads=2, runtime="onnx", quantize=True)
    encoder.warm_up()
    return encoder


def test_int8_runs_in_onnx_runtime_close_to_fp32(int8_encoder: Encoder) -> None:
    assert int8_encoder.runtime == "onnx" and int8_encoder.info.quantized  # warm-up kept it
    served = int8_encoder.encode(TEXTS, sentences=True)
    reference = int8_encoder.encode(TEXTS, runtime="torch")  # its torch model stays fp32
    cosine = np.sum(served.embedding * reference.embedding, axis=1)
    assert cosine.min() > 0.95
    assert np.max(np.abs(served.layers - reference.layers)) > 1e-4  # int8 indeed, not the fp32 graph
    assert served.sentences is not None and served.sentences[1] is not None  # last hidden state served


def test_kept_nodes_stay_fp32(int8_encoder: Encoder) -> None:
    import onnx
    from transformers import AutoModel

    from nlp_service.inference.encoder import WARM_UP_BATCHES
    from nlp_service.inference.onnx_runtime import export_onnx

    eager = AutoModel.from_pretrained(str(int8_encoder.model_dir), attn_implementation="eager").eval()
    example = dict(int8_encoder.tokenizer(list(WARM_UP_BATCHES[1]), padding=True, return_tensors="pt"))
    graph = export_onnx(eager, example)
    full = onnx.load_from_string(quantize_onnx(graph))
    kept = onnx.load_from_string(quantize_onnx(graph, exclude=("output/dense",)))

    def fp32_projections(model: onnx.ModelProto) -> int:
        return sum(1 for n in model.graph.node if n.op_type == "MatMul" and "dense" in n.name)

    assert fp32_projections(full) == 0
    assert fp32_projections(kept) == 12  # per layer: the attention and the FFN output projections
    assert len(quantize_onnx(graph)) < 0.7 * len(graph)
