"""Length-sorted batches within a padded-token budget."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from nlp_service.inference.encoder import token_budget_batches


@given(
    lengths=st.lists(st.integers(1, 256), min_size=1, max_size=200),
    batch_size=st.integers(1, 64),
    max_tokens=st.integers(1, 4096),
)
def test_batches_cover_everything_in_order_within_limits(lengths, batch_size, max_tokens) -> None:
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches = token_budget_batches(order, lengths, batch_size, max_tokens)
    assert [i for batch in batches for i in batch] == order
    for batch in batches:
        assert 1 <= len(batch) <= batch_size
        padded = len(batch) * max(lengths[i] for i in batch)
        assert padded <= max_tokens or len(batch) == 1


def test_short_texts_are_not_padded_to_long_ones() -> None:
    lengths = [8] * 10 + [200] * 2
    batches = token_budget_batches(list(range(12)), lengths, 64, 400)
    assert batches == [list(range(10)), [10, 11]]
