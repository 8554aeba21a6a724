"""The vector index's sync with rows other writers stored: the row-id watermark (pure) and ``sync()``
against a real database, including out-of-order commits on PostgreSQL and its cost when nothing is new."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import event
from sqlalchemy.orm import Session

from nlp_service.comments import service as comments_service
from nlp_service.comments.schemas import CommentIn
from nlp_service.search.sync import Watermark


# -- the watermark ------------------------------------------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(1, 60),
    order=st.randoms(use_true_random=False),
    polls=st.lists(st.integers(0, 60), max_size=20),
    rolled_back=st.sets(st.integers(1, 60), max_size=10),
)
def test_every_committed_id_is_seen_whatever_the_commit_order(n, order, polls, rolled_back) -> None:
    """Ids 1..n are committed in a random order (some never: rolled back), with polls in between that read
    the ids above the watermark and the gaps, like ``SearchService.sync``."""
    ids = list(range(1, n + 1))
    order.shuffle(ids)
    committed: set[int] = set()
    seen: set[int] = set()
    mark = Watermark(ttl_s=1e9)

    def poll() -> None:
        found = {i for i in committed if i > mark.high or i in mark.gaps}
        seen.update(found)
        assert mark.advance(found, now=0.0)

    poll_at = set(polls)
    for step, row_id in enumerate(ids):
        if row_id not in rolled_back:
            committed.add(row_id)
        if step in poll_at:
            poll()
    poll()
    assert seen == committed
    assert set(mark.gaps) == {i for i in rolled_back if i < max(committed, default=0)}


def test_gaps_expire_and_are_bounded() -> None:
    mark = Watermark(ttl_s=10.0, max_gaps=5)
    assert mark.advance([1, 4], now=0.0)
    assert mark.high == 4 and set(mark.gaps) == {2, 3}
    assert mark.advance([3], now=5.0)
    assert set(mark.gaps) == {2}
    assert mark.advance([], now=10.0)
    assert mark.gaps == {}  # 2 never committed: no longer looked for
    assert mark.advance([10], now=11.0)
    assert set(mark.gaps) == {5, 6, 7, 8, 9}
    assert not mark.advance([20], now=12.0)  # 10 more gaps than it may keep: the caller reconciles
    assert mark.high == 20 and len(mark.gaps) <= 5


# -- sync() on a real database ------------------------------------------------------------------------------
def _store(session: Session, fake_engine, cid: str, text: str, day: int = 11) -> int:
    """Store a comment the way another replica's ingest does; returns its row id (not committed)."""
    comment = CommentIn(id=cid, text=text, created_at=datetime(2024, 3, day, tzinfo=UTC), source="survey")
    created = comments_service.create_many(
        db_session=session,
        comments=[comment],
        hashes=[comments_service.payload_hash(comment)],
        analyses=fake_engine.analyze([text]),
        terms=[Counter(text.split())],
    )
    return created.row_ids[0]


@contextmanager
def statements(sessions) -> Iterator[list[str]]:  # type: ignore[no-untyped-def]
    """Statements this thread runs on the sessions' engine (the app's own threads use it too)."""
    engine = sessions.kw["bind"]
    seen: list[str] = []
    me = threading.get_ident()

    def record(conn, cursor, statement, params, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if threading.get_ident() == me:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


@pytest.fixture
def searcher(app_settings, start_app):  # type: ignore[no-untyped-def]
    """The app's search service with its background sync off: the test calls ``sync()`` itself."""
    with start_app(app_settings.model_copy(update={"search_sync_interval_s": 0})) as client:
        service = client.app.state.nlp.search
        service.start_watermark()
        yield service


def test_sync_adds_what_another_writer_stored_and_is_cheap_when_idle(searcher, fake_engine) -> None:
    with searcher.sessions() as session:
        row_id = _store(session, fake_engine, "other-1", "a comment stored by another replica")
        session.commit()
    assert row_id not in searcher.index
    searcher.sync()
    assert row_id in searcher.index
    with statements(searcher.sessions) as seen:
        assert searcher.sync() is False
    assert len(seen) == 1, seen  # nothing new, no gaps: one indexed range query


def test_sync_finds_ids_that_commit_out_of_order(searcher, fake_engine, database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer at a time: ids commit in order")
    slow = searcher.sessions()
    try:
        first = _store(slow, fake_engine, "slow-1", "an ingest whose transaction commits late")
        with searcher.sessions() as fast:
            # Another day: no topic-count row in common, so no lock wait on the slow transaction.
            second = _store(fast, fake_engine, "fast-1", "an ingest that commits at once", day=12)
            fast.commit()
        assert first < second
        searcher.sync()
        assert second in searcher.index and first not in searcher.index
        assert first in searcher.watermark.gaps
        slow.commit()
    finally:
        slow.close()
    searcher.sync()
    assert first in searcher.index and not searcher.watermark.gaps
