"""Head artifacts: save/load round trip, outputs per kind, feature extraction, bad configs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nlp_service.inference.encoder import Encoded
from nlp_service.inference.heads import (
    FeatureSpec,
    HeadConfig,
    HeadFormatError,
    load_head,
    load_metrics,
    save_head,
)

DIM = 384


def fake_encoded(n: int, seed: int = 0) -> Encoded:
    rng = np.random.default_rng(seed)
    layers = rng.normal(size=(n, 7, DIM)).astype(np.float32)
    emb = layers[:, -1] / np.linalg.norm(layers[:, -1], axis=1, keepdims=True)
    return Encoded(layers=layers, embedding=emb, truncated=[False] * n, token_counts=[5] * n)


def random_weights(in_dim: int, hidden: list[int], out: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    weights = {
        "input_mean": rng.normal(size=in_dim).astype(np.float32),
        "input_scale": rng.uniform(0.5, 2.0, size=in_dim).astype(np.float32),
    }
    dims = [in_dim, *hidden, out]
    for i in range(len(dims) - 1):
        weights[f"dense.{i}.weight"] = (rng.normal(size=(dims[i + 1], dims[i])) / np.sqrt(dims[i])).astype(
            np.float32
        )
        weights[f"dense.{i}.bias"] = rng.normal(size=dims[i + 1]).astype(np.float32)
    return weights


def make_config(
    kind: str, labels: list[str], features: FeatureSpec, hidden: list[int], **kw: object
) -> HeadConfig:
    return HeadConfig(
        task="t",
        version="v1",
        kind=kind,
        labels=labels,
        features=features,
        encoder_name="enc",
        encoder_sha256="a" * 64,
        hidden=hidden,
        **kw,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("kind", "extra"),
    [
        ("softmax", {}),
        ("sigmoid", {"thresholds": [0.3, 0.5, 0.7]}),
        ("regression", {"output_scale": [2.0, 1.0, 0.5], "output_offset": [0.0, 1.0, -1.0]}),
    ],
)
def test_round_trip_gives_identical_predictions(tmp_path: Path, kind: str, extra: dict) -> None:
    features = FeatureSpec(layers=(2, 4, 6))
    config = make_config(kind, ["x", "y", "z"], features, [16], **extra)
    saved = save_head(
        tmp_path / "h", config, random_weights(3 * DIM, [16], 3), metrics={"validation": {"a": 1}}
    )
    loaded = load_head(tmp_path / "h")
    encoded = fake_encoded(64)
    np.testing.assert_array_equal(saved.predict(encoded), loaded.predict(encoded))
    assert loaded.predict(encoded).shape == (64, 3)
    assert loaded.task == "t" and loaded.version == "v1" and loaded.kind == kind
    assert loaded.labels == ["x", "y", "z"]
    assert loaded.encoder_sha256 == "a" * 64
    assert load_metrics(tmp_path / "h") == {"validation": {"a": 1}}
    assert loaded.thresholds == extra.get("thresholds")


def test_softmax_rows_sum_to_one_and_sigmoid_in_unit_interval(tmp_path: Path) -> None:
    encoded = fake_encoded(20)
    soft = save_head(
        tmp_path / "s",
        make_config("softmax", list("abcd"), FeatureSpec((6,)), []),
        random_weights(DIM, [], 4),
    )
    probs = soft.predict(encoded)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    sig = save_head(
        tmp_path / "g",
        make_config("sigmoid", list("ab"), FeatureSpec((6,)), [8]),
        random_weights(DIM, [8], 2),
    )
    p = sig.predict(encoded)
    assert ((p >= 0) & (p <= 1)).all()
    assert len(sig.decide(p)) == 20


def test_regression_rescaling_and_clipping(tmp_path: Path) -> None:
    weights = random_weights(DIM, [], 2)
    weights["dense.0.weight"] *= 0
    weights["dense.0.bias"] = np.array([5.0, -5.0], dtype=np.float32)
    config = make_config(
        "regression",
        ["valence", "arousal"],
        FeatureSpec((6,)),
        [],
        output_scale=[0.5, 0.25],
        output_offset=[0.1, 0.2],
        output_range=[[-1.0, 1.0], [0.0, 1.0]],
    )
    head = save_head(tmp_path / "r", config, weights)
    out = head.predict(fake_encoded(3))
    np.testing.assert_allclose(out, [[1.0, 0.0]] * 3)  # 5*0.5+0.1 clipped to 1; -5*0.25+0.2 clipped to 0


def test_feature_spec_concatenates_layers_then_embedding() -> None:
    encoded = fake_encoded(4)
    x = FeatureSpec(layers=(1, 6), embedding=True).extract(encoded)
    assert x.shape == (4, 3 * DIM)
    np.testing.assert_array_equal(x[:, :DIM], encoded.layers[:, 1])
    np.testing.assert_array_equal(x[:, DIM : 2 * DIM], encoded.layers[:, 6])
    np.testing.assert_array_equal(x[:, 2 * DIM :], encoded.embedding)
    with pytest.raises(HeadFormatError, match="out of range"):
        FeatureSpec(layers=(9,)).extract(encoded)


def test_empty_batch(tmp_path: Path) -> None:
    head = save_head(
        tmp_path / "e", make_config("softmax", ["a", "b"], FeatureSpec((6,)), []), random_weights(DIM, [], 2)
    )
    assert head.predict(fake_encoded(0)).shape == (0, 2)


def test_inconsistent_artifacts_are_refused(tmp_path: Path) -> None:
    with pytest.raises(HeadFormatError, match="outputs"):
        save_head(
            tmp_path / "a",
            make_config("softmax", ["a", "b"], FeatureSpec((6,)), []),
            random_weights(DIM, [], 3),
        )
    with pytest.raises(HeadFormatError, match="kind"):
        make_config("ordinal", ["a"], FeatureSpec((6,)), [])
    with pytest.raises(HeadFormatError, match="no config.json"):
        load_head(tmp_path / "missing")
    head_dir = tmp_path / "b"
    save_head(head_dir, make_config("softmax", ["a", "b"], FeatureSpec((6,)), []), random_weights(DIM, [], 2))
    config = json.loads((head_dir / "config.json").read_text())
    config["hidden"] = [4]  # claims a hidden layer the weights do not have
    (head_dir / "config.json").write_text(json.dumps(config))
    with pytest.raises(HeadFormatError, match="lack tensor"):
        load_head(head_dir)
