"""Per-caller token buckets, in memory per process (N processes allow N times the rate)."""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from nlp_service.errors import RateLimited


class RateLimiter:
    """``rate`` tokens per second refill a bucket of ``burst`` tokens; each request takes one.

    ``rate <= 0`` disables limiting. At most ``max_buckets`` callers are tracked (least recently seen
    ones are dropped, which only ever forgives them).
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_buckets: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        what: str = "requests",
    ) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self.what = what  # named in the 429 message
        self.max_buckets = max_buckets
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def try_acquire(self, key: str, cost: float = 1.0, *, take: bool = True) -> float:
        """0.0 if allowed (and, with ``take``, the token taken), else the seconds until it would be.

        ``take=False`` only looks: it neither takes a token nor starts tracking an unseen ``key``.
        """
        if not self.enabled:
            return 0.0
        with self._lock:
            now = self._clock()
            if not take and key not in self._buckets:
                return 0.0  # an unseen caller has a full bucket
            tokens, at = self._buckets.pop(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.rate)
            wait = 0.0
            if tokens >= cost:
                tokens -= cost if take else 0.0
            else:
                wait = (cost - tokens) / self.rate
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > self.max_buckets:
                self._buckets.popitem(last=False)
            return wait

    def check(self, key: str, *, take: bool = True) -> None:
        """Take a token for ``key`` (``take=False``: only look) or raise :class:`RateLimited` (429)."""
        wait = self.try_acquire(key, take=take)
        if wait > 0:
            raise RateLimited(
                f"rate limit exceeded ({self.rate:g} {self.what}/s, burst {self.burst})",
                retry_after_s=math.ceil(wait),
            )
