"""Length-sorted batches of the least modelled cost for one encoder pass each (``Encoder`` plans with it)."""

from __future__ import annotations

import numpy as np

# One forward pass of MiniLM-L6 on 2 CPU cores costs ~15-20 ms beyond its tokens (~0.4 ms each): ~40 tokens.
DEFAULT_BATCH_OVERHEAD_TOKENS = 40


def padded_cost(batch_lengths: list[int], overhead_tokens: int) -> int:
    """Modelled cost of one forward pass, in tokens: a fixed per-pass overhead plus the padded tokens."""
    return overhead_tokens + len(batch_lengths) * max(batch_lengths)


def token_budget_batches(
    order: list[int],
    lengths: list[int],
    batch_size: int,
    max_tokens: int,
    overhead_tokens: int = DEFAULT_BATCH_OVERHEAD_TOKENS,
) -> list[list[int]]:
    """Split indices sorted by ascending length into consecutive batches of the least modelled cost.

    Each batch holds <= ``batch_size`` items whose padded size (items x longest) stays within ``max_tokens``
    (a single longer item still gets its own batch). The cost of a batch is ``overhead_tokens`` (what one
    forward pass costs beyond its tokens: reading the weights, starting threads) plus its padded tokens, so
    short texts are not padded to the length of long ones, yet texts are not encoded in tiny, overhead-bound
    batches either. Exact dynamic programming over the sorted order, O(n x batch_size).
    """
    n = len(order)
    if n == 0:
        return []
    sorted_lengths = np.asarray([lengths[i] for i in order], dtype=np.int64)
    best = np.zeros(n + 1, dtype=np.int64)  # best[j]: least cost of the first j items
    start_of = np.zeros(n + 1, dtype=np.int64)  # where the last batch of that solution starts
    for j in range(1, n + 1):
        longest = int(sorted_lengths[j - 1])  # sorted: the batch's last item is its longest
        most = max(1, min(batch_size, max_tokens // longest, j))  # items a batch ending at j may hold
        starts = np.arange(j - most, j)
        costs = best[starts] + overhead_tokens + (j - starts) * longest
        k = int(np.argmin(costs))  # ties: the first, i.e. the largest batch (fewest passes)
        start_of[j] = starts[k]
        best[j] = costs[k]
    batches: list[list[int]] = []
    j = n
    while j > 0:
        i = int(start_of[j])
        batches.append(order[i:j])
        j = i
    batches.reverse()
    return batches
