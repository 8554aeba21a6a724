"""Topic-volume series for detection and charts, read through ``topics``.

``topic_counts`` (maintained on ingest) gives, per bucket size (hour, day), the comment count of every topic
in total (segment ``all``) and per value of each segment field (region, touchpoint, source); missing buckets
are zeros. ``_all`` (every comment) is the denominator of shares and is never alerted on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy.orm import Session

from nlp_service.anomaly.tables import Bucket
from nlp_service.timestamps import BUCKET_SECONDS
from nlp_service.topics.service import topic_series
from nlp_service.topics.tables import ALL_SEGMENT, ALL_TOPICS

SeriesKey = tuple[str, str, str]  # (topic_id, segment, segment_value)


@dataclass
class SeriesSet:
    """Dense count series on one grid: ``counts[(topic, segment, value)]``; ``_all`` holds the totals."""

    bucket: Bucket
    start: datetime
    n: int
    counts: dict[SeriesKey, np.ndarray]

    @property
    def bucket_seconds(self) -> int:
        return BUCKET_SECONDS[self.bucket]

    def timestamps(self) -> np.ndarray:
        return int(self.start.timestamp()) + np.arange(self.n, dtype=np.int64) * self.bucket_seconds

    def time_at(self, index: int) -> datetime:
        return self.start + timedelta(seconds=index * self.bucket_seconds)

    def since_first_data(self) -> SeriesSet:
        """Drop the buckets before the first comment of all (before data collection began, zeros are not
        counts, and a series starting with them would "spike" when collection starts)."""
        totals = self.counts.get((ALL_TOPICS, ALL_SEGMENT, ALL_SEGMENT))
        nonzero = np.flatnonzero(totals) if totals is not None else np.zeros(0, np.int64)
        first = int(nonzero[0]) if nonzero.size else self.n
        if first == 0:
            return self
        counts = {k: v[first:] for k, v in self.counts.items()}
        return SeriesSet(self.bucket, self.time_at(first), self.n - first, counts)


def load_series(
    *,
    db_session: Session,
    bucket: Bucket,
    start: datetime,
    end: datetime,
    segments: Sequence[str],
    topic_ids: Sequence[str] | None = None,
    segment_value: str | None = None,
) -> SeriesSet:
    """Counts in ``[start, end)`` (bucket-aligned) for the totals and each segment field, zeros filled."""
    bs = BUCKET_SECONDS[bucket]
    n = int((end - start).total_seconds()) // bs
    counts: dict[SeriesKey, np.ndarray] = {}
    for seg in (ALL_SEGMENT, *segments):
        points = topic_series(
            db_session=db_session,
            bucket=bucket,
            start=start,
            end=end,
            topic_ids=topic_ids,
            segment=seg,
            segment_value=segment_value if seg != ALL_SEGMENT else None,
        )
        for p in points:
            arr = counts.get((p.topic_id, p.segment, p.segment_value))
            if arr is None:
                arr = counts[(p.topic_id, p.segment, p.segment_value)] = np.zeros(n)
            arr[int((p.bucket_start - start).total_seconds()) // bs] += max(p.count, 0)
    return SeriesSet(bucket, start, n, counts)
