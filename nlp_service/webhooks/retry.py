"""The retry schedule of webhook deliveries (pure: no database, no I/O)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from nlp_service.config import Settings


@dataclass(frozen=True)
class RetryPolicy:
    """When to try again: ``schedule_s[i]`` is the delay before attempt ``i + 1`` of a round."""

    schedule_s: tuple[float, ...] = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
    jitter: float = 0.1
    max_retry_after_s: float = 86400.0
    disable_after_s: float = 5 * 86400.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            schedule_s=tuple(settings.webhook_retry_schedule_s) or (0,),
            jitter=settings.webhook_retry_jitter,
            max_retry_after_s=settings.webhook_max_retry_after_s,
            disable_after_s=settings.webhook_disable_after_s,
        )

    def next_delay(self, attempts_in_round: int, retry_after_s: float | None = None) -> float | None:
        """Seconds until the next attempt after ``attempts_in_round`` failures, or None when none is left."""
        if attempts_in_round >= len(self.schedule_s):
            return None
        delay = self.schedule_s[attempts_in_round]
        delay *= 1 + random.uniform(-self.jitter, self.jitter)
        if retry_after_s is not None:
            delay = max(delay, min(retry_after_s, self.max_retry_after_s))
        return max(0.0, delay)
