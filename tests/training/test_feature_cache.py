"""The feature cache keeps features of different encoder runtimes apart."""

from __future__ import annotations

from nlp_service.inference.encoder import EncoderInfo
from training.cache import cache_key

INFO = EncoderInfo(name="enc", sha256="ab" * 32, dim=8, num_layers=2, max_length=64, quantized=False)


def test_cache_key_tells_runtimes_apart_and_keeps_torch_keys() -> None:
    texts = ["late delivery", "great support"]
    assert cache_key(INFO, texts) == cache_key(INFO, texts, "torch")
    assert cache_key(INFO, texts, "onnx") != cache_key(INFO, texts, "torch")


def test_cache_key_depends_on_the_texts_and_their_order() -> None:
    assert cache_key(INFO, ["a", "b"]) != cache_key(INFO, ["b", "a"])
    assert cache_key(INFO, ["a", "b"]) != cache_key(INFO, ["a", "b", "c"])
