"""Shared fixtures: a deterministic fake engine, databases (SQLite + PostgreSQL), and a running app.

The fake engine replaces only the transformer and the trained heads: embeddings are hashed bags of words
(similar wording -> similar vectors), sentiment/emotions come from word lists and topics from keywords of
the real taxonomy. Everything else is real: SQLite and PostgreSQL, Alembic, FAISS, spaCy, HTTP.

``database_url`` runs each test on SQLite and, when ``NLP_TEST_DATABASE_URL`` is set, on PostgreSQL as well
(migrated once per session, every table truncated before each test).
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect, text
from sqlalchemy.orm import Session, sessionmaker

from nlp_service.config import REPO_ROOT, Settings
from nlp_service.db import make_engine, make_sessionmaker, upgrade
from nlp_service.inference.encoder import EncoderInfo
from nlp_service.inference.engine import Analysis, Engine, ModelSet

DIM = 384
TAXONOMY_PATH = REPO_ROOT / "models" / "topics" / "taxonomy.json"

NEGATIVE_WORDS = set(
    """late never rude terrible broken worst angry refused wrong twice overcharged awful slow crashes
    crashed declined damaged missing disappointed charged useless""".split()
)
POSITIVE_WORDS = set(
    "great love excellent fast thanks helpful easy friendly perfect quick happy smooth amazing good".split()
)
TOPIC_KEYWORDS = {
    "delivery_shipping": {"delivery", "parcel", "package", "courier", "shipping", "delivered", "tracking"},
    "pricing_promotions": {"price", "tax", "coupon", "discount", "sale", "promo", "expensive"},
    "billing_payments": {"charged", "invoice", "card", "payment", "bill", "billing", "twice"},
    "refunds_returns": {"refund", "return", "returned", "returns"},
    "customer_support": {"support", "agent", "helpdesk", "answered", "chat"},
    "app_website": {"app", "website", "crashes", "crashed", "page"},
    "account_login": {"login", "password", "account"},
}
GO_EMOTIONS = """admiration amusement anger annoyance approval caring confusion curiosity desire
    disappointment
    disapproval disgust embarrassment excitement fear gratitude grief joy love nervousness optimism pride
    realization relief remorse sadness surprise neutral""".split()

TOKEN_RE = re.compile(r"[a-z0-9]+")


def hashed_embedding(text_: str) -> np.ndarray:
    """L2-normalised signed hashing of the lowercase word tokens into 384 dimensions."""
    vec = np.zeros(DIM, dtype=np.float32)
    for tok in TOKEN_RE.findall(text_.lower()):
        h = int.from_bytes(hashlib.blake2b(tok.encode(), digest_size=8).digest(), "little")
        vec[h % DIM] += 1.0 if (h >> 32) & 1 else -1.0
    norm = float(np.linalg.norm(vec))
    if norm == 0:
        vec[0] = 1.0
        return vec
    return vec / norm


@dataclass
class FakeHead:
    labels: list[str]
    version: str = "fake-v1"
    thresholds: list[float] | None = None


@dataclass(frozen=True)
class FakeHit:
    id: str
    name: str
    score: float


class FakeTopics:
    """Keyword topics over the real taxonomy (``.taxonomy`` like the real scorer)."""

    version = "fake-topics-v1"

    def __init__(self) -> None:
        from nlp_service.topics.taxonomy import load_taxonomy

        self.taxonomy = load_taxonomy(TAXONOMY_PATH)
        self.names = {t.id: t.name for t in self.taxonomy.topics}

    def hits(self, text_: str) -> list[FakeHit]:
        words = set(TOKEN_RE.findall(text_.lower()))
        out = []
        for topic_id, keys in TOPIC_KEYWORDS.items():
            n = len(words & keys)
            if n:
                out.append(FakeHit(topic_id, self.names[topic_id], round(min(0.9, 0.5 + 0.1 * n), 4)))
        return sorted(out, key=lambda h: -h.score)


@dataclass(frozen=True)
class FakeEncoder:
    """What ``/info`` reads from an encoder: its identity and runtime."""

    info: EncoderInfo = EncoderInfo(
        name="fake-hashing", sha256="0" * 64, dim=DIM, num_layers=0, max_length=256, quantized=False
    )
    runtime: str = "fake"


class FakeEngine:
    """An :class:`~nlp_service.inference.protocol.AnalysisEngine`: ``analyze(texts) -> list[Analysis]`` with
    deterministic outputs; ``embed``; ``models``; ``encoder.info``, ``sentences``, ``settings`` and ``reload``
    like the real one."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self.encoder = FakeEncoder()
        heads = {
            "sentiment": FakeHead(["negative", "neutral", "positive"]),
            "emotion": FakeHead(list(GO_EMOTIONS), thresholds=[0.5] * len(GO_EMOTIONS)),
            "intensity": FakeHead(["anger", "fear", "joy", "sadness"]),
            "valence": FakeHead(["valence", "arousal"]),
        }
        self.topics = FakeTopics()
        versions = {"encoder": "fake-hashing@0", **{t: h.version for t, h in heads.items()}, "topics": "fake"}
        self.models = ModelSet(heads=heads, topics=self.topics, versions=versions)
        self.calls: list[int] = []

    def embed(self, texts: list[str]) -> np.ndarray:
        return np.vstack([hashed_embedding(t) for t in texts]) if texts else np.zeros((0, DIM), np.float32)

    def sentences(self, texts: list[str]) -> list[list[tuple[int, int, str]]]:
        out = []
        for text_ in texts:
            spans = [(m.start(), m.end(), m.group()) for m in re.finditer(r"[^.!?]*\S[^.!?]*[.!?]?", text_)]
            out.append(spans or [(0, len(text_), text_)])
        return out

    def reload(self) -> ModelSet:
        return self.models

    @property
    def topic_model_key(self) -> str:
        return "fake-hashing"

    def set_topics(self, topics: object, version: str) -> None:
        """Serve a taxonomy version (its model is kept; tagging stays keyword-based, ``FakeTopics``)."""
        self.models = ModelSet(
            heads=self.models.heads, topics=topics, versions={**self.models.versions, "topics": version}
        )

    def _analysis(self, text_: str) -> Analysis:
        words = TOKEN_RE.findall(text_.lower())
        neg = sum(w in NEGATIVE_WORDS for w in words)
        pos = sum(w in POSITIVE_WORDS for w in words)
        logits = np.array([2.0 * neg, 0.8, 2.0 * pos], dtype=np.float64)
        probs = np.exp(logits - logits.max())
        probs = (probs / probs.sum()).astype(np.float32)
        emotion = np.full(len(GO_EMOTIONS), 0.05, dtype=np.float32)
        emotion[GO_EMOTIONS.index("anger")] = min(0.95, 0.2 * neg)
        emotion[GO_EMOTIONS.index("joy")] = min(0.95, 0.2 * pos)
        emotion[GO_EMOTIONS.index("neutral")] = 0.6 if not (neg or pos) else 0.1
        intensity = np.array([min(1.0, 0.3 * neg), 0.05, min(1.0, 0.3 * pos), 0.1 * neg], dtype=np.float32)
        valence = np.array(
            [float(np.tanh(0.5 * (pos - neg))), min(1.0, 0.2 + 0.2 * (pos + neg))], dtype=np.float32
        )
        return Analysis(
            embedding=hashed_embedding(text_),
            truncated=False,
            tokens=len(words),
            outputs={"sentiment": probs, "emotion": emotion, "intensity": intensity, "valence": valence},
            topics=self.topics.hits(text_),
            models=self.models,
            sentences=self._sentences(text_),
        )

    def _sentences(self, text_: str) -> np.ndarray | None:
        """Like the real engine: with ``topic_sentences``, the (s, dim) embeddings of 2+ sentences."""
        if not self.settings.topic_sentences:
            return None
        from nlp_service.inference.sentences import split_sentences

        spans = split_sentences(text_)
        return np.vstack([hashed_embedding(text_[a:b]) for a, b in spans]) if len(spans) >= 2 else None

    def analyze(self, texts: list[str]) -> list[Analysis]:
        self.calls.append(len(texts))
        return [self._analysis(t) for t in texts]

    def warm_up(self) -> None:
        pass


@pytest.fixture
def fake_engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture(scope="session")
def real_engine() -> Engine:
    """The real encoder, heads and topic scorer, as shipped under models/ (loading takes a few seconds)."""
    engine = Engine(Settings())
    engine.warm_up()
    return engine


# -- databases --------------------------------------------------------------------------------------------
_MIGRATED: set[str] = set()


def truncate_all(url: str) -> None:
    """Empty every application table (PostgreSQL), keeping the schema and Alembic's version."""
    engine = make_engine(url)
    try:
        tables = [t for t in inspect(engine).get_table_names() if t != "alembic_version"]
        if tables:
            with engine.begin() as conn:
                conn.execute(text(f"TRUNCATE TABLE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database: a fresh SQLite file, or the CI PostgreSQL database truncated."""
    if request.param == "sqlite":
        sqlite_url = f"sqlite:///{(tmp_path / 'test.db').as_posix()}"
        upgrade(sqlite_url, "heads")
        return sqlite_url
    url = os.environ.get("NLP_TEST_DATABASE_URL")
    if not url:
        pytest.skip("NLP_TEST_DATABASE_URL not set")
    if url not in _MIGRATED:
        upgrade(url, "heads")
        _MIGRATED.add(url)
    truncate_all(url)
    return url


@pytest.fixture
def db_sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database_url)
    yield make_sessionmaker(engine)
    engine.dispose()


# -- a running app on the fake engine ---------------------------------------------------------------------
def wait_until_ready(client: TestClient, timeout_s: float = 30.0) -> None:
    """Wait for /health and for the vector index's first catch-up."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if client.get("/health").status_code == 200:
            state = client.app.state.nlp  # type: ignore[attr-defined]
            if state.search is None or state.search.index.ready.wait(max(0.0, deadline - time.monotonic())):
                return
        time.sleep(0.02)
    raise AssertionError(f"app not ready: {client.get('/health').json()}")


def wait_ready(client: TestClient, timeout_s: float = 120.0) -> None:
    """Wait for /health only (an app on the real engine)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if client.get("/health").status_code == 200:
            return
        time.sleep(0.05)
    raise AssertionError(f"service not ready: {client.get('/health').json()}")


@pytest.fixture
def app_settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        var_dir=tmp_path / "var",
        database_url=database_url,
        migrate_on_start=False,  # the database_url fixture has migrated it
        max_wait_ms=1.0,
        search_save_interval_s=0,
        rate_limit_per_s=0,
    )


def local_client(app: object, **kwargs: object) -> TestClient:
    """A TestClient calling as a loopback client that addresses ``localhost``: what an app with API keys off
    serves (it refuses other client addresses and Host headers, see ``nlp_service.hardening.bind``)."""
    options: dict = {"base_url": "http://localhost", "client": ("127.0.0.1", 50000), **kwargs}
    return TestClient(app, **options)  # type: ignore[arg-type]


@pytest.fixture
def start_app(fake_engine: FakeEngine) -> Callable[[Settings], AbstractContextManager[TestClient]]:
    """``with start_app(settings) as client:`` runs the app on the fake engine until the block ends."""
    from nlp_service.main import create_app

    @contextmanager
    def run(settings: Settings) -> Iterator[TestClient]:
        with local_client(create_app(settings, engine=fake_engine)) as client:
            wait_until_ready(client)
            yield client

    return run


@pytest.fixture
def app_client(app_settings: Settings, start_app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    """The real app (real DB, FAISS, spaCy) on the fake engine, started and ready."""
    with start_app(app_settings) as client:
        yield client
