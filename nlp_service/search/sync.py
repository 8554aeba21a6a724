"""Which row ids to look for when catching up with comments other replicas stored: a row-id watermark.

Row ids come from one counter but commit out of order (PostgreSQL: concurrent ingests; both: rolled-back or
conflicting inserts consume ids), so an id below the highest one seen may still appear. Such ids are kept as
gaps and looked for again until ``ttl_s`` has passed (longer than any ingest transaction); ids that never
appear (rolled back, or deleted before they were seen) expire. Pure bookkeeping, no database.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass
class Watermark:
    high: int = 0  # the highest row id seen
    ttl_s: float = 120.0
    max_gaps: int = 10_000
    gaps: dict[int, float] = field(default_factory=dict)  # row id -> when it was first missed

    def advance(self, seen: Iterable[int], now: float) -> bool:
        """Record the row ids found (above ``high`` or among the gaps); False if gaps overflowed (some were
        dropped: the caller should reconcile with the whole database)."""
        found = set(seen)
        for row_id in found:
            self.gaps.pop(row_id, None)
        top = max(found, default=self.high)
        complete = True
        if top > self.high:
            if top - self.high - 1 > self.max_gaps:
                complete = False  # a jump too wide to track id by id
            else:
                self.gaps.update((i, now) for i in range(self.high + 1, top) if i not in found)
            self.high = top
        self.gaps = {i: t for i, t in self.gaps.items() if now - t < self.ttl_s}
        if len(self.gaps) > self.max_gaps:
            keep = sorted(self.gaps.items(), key=lambda kv: (-kv[1], -kv[0]))[: self.max_gaps]
            self.gaps = dict(keep)
            complete = False
        return complete
