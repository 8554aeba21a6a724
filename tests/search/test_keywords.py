"""Code tokens of the keyword analyzer: linear time on adversarial texts, same tokens as the old regex."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nlp_service.search.keywords import _code_matches, _codes

# The regex the code tokens came from before it was made linear (quadratic on runs of '#', '#_', '#-').
OLD_CODE_RE = re.compile(r"[A-Za-z0-9#][A-Za-z0-9_\-/.#]*[A-Za-z0-9]|[A-Za-z0-9]")


def old_codes(text: str) -> list[str]:
    """The old ``_codes``, verbatim but for the regex it used."""
    out: list[str] = []
    for match in OLD_CODE_RE.finditer(text):
        token = match.group(0).lower().lstrip("#")
        if not any(ch.isdigit() for ch in token):
            continue
        out.append(token)
        parts = [p for p in re.split(r"[^a-z0-9]+", token) if p and any(ch.isdigit() for ch in p)]
        if len(parts) > 1 or (parts and parts[0] != token):
            out.extend(parts)
    return out


@pytest.mark.parametrize(
    "text",
    ["#" * 10_000, "#_" * 5_000, "#-" * 5_000, "#." * 5_000, "1#" + "#" * 9_998, ("#" * 99 + " ") * 100],
    ids=["hashes", "hash-underscore", "hash-dash", "hash-dot", "digit-hashes", "hash-words"],
)
def test_adversarial_text_is_linear(text: str) -> None:
    assert len(text) == 10_000
    best = min(_timed(text) for _ in range(3))
    assert best < 0.02, f"{best * 1000:.1f} ms for 10,000 characters"


def _timed(text: str) -> float:
    t0 = time.perf_counter()
    _codes(text)
    return time.perf_counter() - t0


ALPHABET = "aZ09#_-/. x!é\n"


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=ALPHABET, max_size=60))
def test_same_tokens_as_the_old_regex(text: str) -> None:
    assert _code_matches(text) == OLD_CODE_RE.findall(text)
    assert _codes(text) == old_codes(text)


@pytest.mark.parametrize(
    "text",
    [
        "Where is order ORD-88812? Nobody answers.",
        "model X200 and x-200/b.3 #42 issue__7 v2.0.1 a/b/c9 ##9 _9_ -5- 1.",
        "tickets #123, #_4 and 88812",
    ],
)
def test_known_texts(text: str) -> None:
    assert _codes(text) == old_codes(text)
    assert _codes(text)  # every one holds a code
