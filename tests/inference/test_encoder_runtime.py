"""The encoder's runtimes: ONNX Runtime gives torch's features, falls back to torch, and torch work stays on
one thread."""

from __future__ import annotations

import gc
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from nlp_service.config import default_encoder_path
from nlp_service.inference import encoder as encoder_module
from nlp_service.inference.encoder import Encoder

TEXTS = [
    "ok",
    "The delivery was late and support never answered my emails.",
    "Great app, but the new update logs me out every time I open it and I have to reset my password again.",
    "refund please " * 40,  # longer than max_seq_length below: truncated
]


@pytest.fixture(scope="module")
def onnx_encoder() -> Encoder:
    encoder = Encoder(default_encoder_path(), max_seq_length=64, threads=2, runtime="onnx")
    encoder.warm_up()
    return encoder


def test_onnx_runtime_gives_torchs_features(onnx_encoder: Encoder) -> None:
    assert onnx_encoder.runtime == "onnx"
    served = onnx_encoder.encode(TEXTS)
    reference = onnx_encoder.encode(TEXTS, runtime="torch")
    assert served.layers.shape == reference.layers.shape == (len(TEXTS), 7, 384)
    assert np.max(np.abs(served.layers - reference.layers)) < 1e-4
    assert np.min(np.sum(served.embedding * reference.embedding, axis=1)) > 0.99999
    assert served.truncated == [False, False, False, True]
    assert served.token_counts[-1] == 64


def test_onnx_padding_does_not_change_a_text(onnx_encoder: Encoder) -> None:
    alone = onnx_encoder.encode([TEXTS[0]])
    padded = onnx_encoder.encode([TEXTS[0], TEXTS[2]], batch_size=2, max_tokens=10_000)
    np.testing.assert_allclose(alone.layers[0], padded.layers[0], atol=1e-5)


def test_export_failure_falls_back_to_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_export(*args: object, **kwargs: object) -> bytes:
        raise RuntimeError("no exporter here")

    monkeypatch.setattr(encoder_module, "export_onnx", broken_export)
    encoder = Encoder(default_encoder_path(), runtime="onnx")
    assert encoder.runtime == "torch"
    assert encoder.encode(TEXTS[:2]).embedding.shape == (2, 384)


def test_warm_up_refuses_onnx_output_that_differs_from_torch() -> None:
    encoder = Encoder(default_encoder_path(), runtime="onnx")
    assert encoder.runtime == "onnx"
    real_session = encoder._onnx
    assert real_session is not None

    def off_by_a_little(input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        return real_session(input_ids, attention_mask) + 0.01

    encoder._onnx = off_by_a_little  # type: ignore[assignment]
    encoder.warm_up()
    assert encoder.runtime == "torch"


def test_unknown_runtime_is_refused() -> None:
    with pytest.raises(ValueError, match="runtime"):
        Encoder(default_encoder_path(), runtime="tensorflow")


def test_torch_work_runs_on_the_encoders_own_thread() -> None:
    """OpenMP keeps one worker team per calling thread; one thread keeps one team (see Encoder)."""
    encoder = Encoder(default_encoder_path(), threads=2, runtime="torch")
    seen: set[int] = set()
    encoder.model.register_forward_hook(lambda *_: seen.add(threading.get_ident()))
    encoder.encode(TEXTS[:2])
    with ThreadPoolExecutor(max_workers=3) as callers:
        list(callers.map(lambda text: encoder.encode([text]), TEXTS))
    assert seen == {encoder.thread_ident}
    assert threading.get_ident() not in seen


def test_a_dropped_encoder_ends_its_thread() -> None:
    encoder = Encoder(default_encoder_path(), runtime="torch")
    ident = encoder.thread_ident
    assert ident is not None and any(t.ident == ident for t in threading.enumerate())
    del encoder
    gc.collect()
    deadline = time.monotonic() + 10
    while any(t.ident == ident for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(t.ident == ident for t in threading.enumerate())
