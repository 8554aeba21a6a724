"""Length-sorted batches within a padded-token budget."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from nlp_service.inference.token_budget import padded_cost, token_budget_batches


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


def _greedy(order: list[int], lengths: list[int], batch_size: int, max_tokens: int) -> list[list[int]]:
    """Fill each batch as far as the limits allow (the plan this one replaced)."""
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        if current and (len(current) >= batch_size or (len(current) + 1) * lengths[i] > max_tokens):
            batches.append(current)
            current = []
        current.append(i)
    return batches + [current] if current else batches


def _total(batches: list[list[int]], lengths: list[int], overhead: int) -> int:
    return sum(padded_cost([lengths[i] for i in batch], overhead) for batch in batches)


def _brute_force(sorted_lengths: list[int], batch_size: int, max_tokens: int, overhead: int) -> int:
    """Least cost over every split of the sorted lengths into consecutive batches."""
    n = len(sorted_lengths)
    best = None
    for mask in range(2 ** (n - 1)):  # bit k set: a batch ends after item k
        cost, start, ok = 0, 0, True
        for k in range(n):
            if k == n - 1 or mask >> k & 1:
                batch = sorted_lengths[start : k + 1]
                if len(batch) > batch_size or (len(batch) > 1 and len(batch) * batch[-1] > max_tokens):
                    ok = False
                    break
                cost += padded_cost(batch, overhead)
                start = k + 1
        if ok and (best is None or cost < best):
            best = cost
    assert best is not None
    return best


@given(
    lengths=st.lists(st.integers(1, 64), min_size=1, max_size=9),
    batch_size=st.integers(1, 6),
    max_tokens=st.integers(1, 256),
    overhead=st.integers(0, 60),
)
def test_plan_is_the_cheapest_split(lengths, batch_size, max_tokens, overhead) -> None:
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    plan = token_budget_batches(order, lengths, batch_size, max_tokens, overhead)
    assert _total(plan, lengths, overhead) == _brute_force(sorted(lengths), batch_size, max_tokens, overhead)


@given(
    lengths=st.lists(st.integers(1, 256), min_size=1, max_size=300),
    overhead=st.integers(0, 200),
)
def test_plan_never_costs_more_than_filling_batches(lengths, overhead) -> None:
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    plan = token_budget_batches(order, lengths, 64, 16384, overhead)
    assert _total(plan, lengths, overhead) <= _total(_greedy(order, lengths, 64, 16384), lengths, overhead)


def test_mixed_lengths_are_split_where_padding_costs_more_than_a_pass() -> None:
    lengths = [10] * 32 + [40] * 32
    plan = token_budget_batches(list(range(64)), lengths, 64, 16384, overhead_tokens=40)
    assert plan == [list(range(32)), list(range(32, 64))]  # 40+320 + 40+1280 < 40+2560
    tiny = token_budget_batches(list(range(64)), [10] * 64, 64, 16384, overhead_tokens=40)
    assert tiny == [list(range(64))]  # equal lengths: one pass
