"""A standalone worker for the re-embedding tests: runs only ``background-jobs`` with :class:`EngineB`, a
fake engine whose encoder is another (``fake-b@1``: other vectors than the test's default fake engine) and
which takes ``NLP_TEST_SECONDS_PER_TEXT`` per text, so that a test can kill it mid-job.

    python -m tests.jobs.fake_worker        # settings from NLP_* variables (NLP_DATABASE_URL, ...)
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time

from nlp_service.config import Settings
from nlp_service.inference.engine import Analysis, ModelSet
from nlp_service.worker import Worker
from tests.conftest import FakeEngine, hashed_embedding

ENCODER_B = "fake-b@1"


class EngineB(FakeEngine):
    def __init__(self, settings: Settings | None = None, seconds_per_text: float = 0.0) -> None:
        super().__init__(settings)
        versions = {**self.models.versions, "encoder": ENCODER_B}
        self.models = ModelSet(heads=self.models.heads, topics=self.models.topics, versions=versions)
        self.seconds_per_text = seconds_per_text

    def analyze(self, texts: list[str]) -> list[Analysis]:
        time.sleep(self.seconds_per_text * len(texts))
        return [
            dataclasses.replace(a, embedding=embedding_b(t), models=self.models)
            for a, t in zip(super().analyze(texts), texts, strict=True)
        ]


def embedding_b(text: str) -> object:
    return hashed_embedding("b " + text)


def main() -> None:
    settings = Settings()
    engine = EngineB(settings, float(os.environ.get("NLP_TEST_SECONDS_PER_TEXT", "0")))
    worker = Worker(settings, jobs=["background-jobs"], resources={"engine": engine})
    asyncio.run(worker.run())


if __name__ == "__main__":
    main()
