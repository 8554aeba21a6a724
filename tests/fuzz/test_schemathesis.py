"""Schemathesis over the OpenAPI schema of every endpoint: no server errors, responses match the schema.

The app runs in-process on the fake engine, a migrated SQLite database and API keys on (one key with every
scope); the background worker is off and DNS is stubbed, so nothing leaves the machine. A second run uses
an app whose models never load (every inference endpoint answers 503).

``NLP_FUZZ_EXAMPLES`` sets the generated cases per endpoint and mode (positive and negative data);
``make test`` uses a small number, ``make fuzz`` 1,000 (parameterless endpoints run out of distinct cases
sooner). A table of cases and failures per endpoint is printed.
"""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, checks

from nlp_service.auth.scopes import SCOPES
from nlp_service.config import Settings
from nlp_service.db import upgrade
from nlp_service.main import create_app
from tests.auth.conftest import make_key
from tests.conftest import FakeEngine

EXAMPLES = int(os.environ.get("NLP_FUZZ_EXAMPLES", "15"))
ONLY = os.environ.get("NLP_FUZZ_ONLY", "")  # fuzz only operations whose label contains this (e.g. /v1/models)
pytestmark = [pytest.mark.fuzz, pytest.mark.timeout(600 + 10 * EXAMPLES)]
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


@dataclass
class Tally:
    cases: int = 0
    failures: dict[str, str] = field(default_factory=dict)  # first line -> full message (deduplicated)
    statuses: dict[int, int] = field(default_factory=dict)


def _local_only_getaddrinfo(real):  # type: ignore[no-untyped-def]
    """Resolve IP literals and localhost only: fuzzed webhook hostnames never reach a DNS server."""

    def getaddrinfo(host, *args, **kwargs):  # type: ignore[no-untyped-def]
        name = host.decode() if isinstance(host, bytes) else str(host)
        try:
            socket.inet_pton(socket.AF_INET6 if ":" in name else socket.AF_INET, name.strip("[]"))
        except OSError:
            if name not in ("localhost", "testserver"):
                raise socket.gaierror(socket.EAI_NONAME, "name resolution disabled while fuzzing") from None
        return real(host, *args, **kwargs)

    return getaddrinfo


@schemathesis.check
def not_a_crash(ctx, response, case):  # type: ignore[no-untyped-def]
    """Like not_a_server_error, but 503 (models not loaded, by design in that run) is allowed."""
    if response.status_code >= 500 and response.status_code != 503:
        raise AssertionError(f"server error {response.status_code}: {response.text[:300]}")
    return None


def build_app(tmp: Path, *, engine: bool) -> tuple[FastAPI, str]:
    url = f"sqlite:///{(tmp / 'fuzz.db').as_posix()}"
    upgrade(url, "heads")
    key = make_key(url, list(SCOPES), name="fuzz")
    app_settings = Settings(
        var_dir=tmp / "var",
        database_url=url,
        migrate_on_start=False,
        run_worker_in_process=False,
        rate_limit_per_s=0,
        max_wait_ms=1.0,
        search_save_interval_s=0,
        models_dir=Settings().models_dir if engine else tmp / "no-models",
        taxonomy_path=Settings().resolved_taxonomy_path(),  # shipped with the code, not with trained heads
    )
    return create_app(app_settings, engine=FakeEngine(app_settings) if engine else None), key


def runner(operation, mode: GenerationMode, mode_checks: list, headers: dict, tally: Tally, examples: int):  # type: ignore[no-untyped-def]
    """A Hypothesis test that calls one operation with generated cases and records every failure."""

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case) -> None:  # type: ignore[no-untyped-def]
        tally.cases += 1
        try:
            response = case.call_and_validate(headers=headers, checks=mode_checks)
            tally.statuses[response.status_code] = tally.statuses.get(response.status_code, 0) + 1
        except (Exception, BaseExceptionGroup) as exc:  # every failure is recorded, the run goes on
            text = f"{type(exc).__name__}: {exc}"
            codes = sorted(set(re.findall(r"^- (ST\d+ [^\n]+)", text, flags=re.M))) or [text.splitlines()[0]]
            received = re.search(r"^\[(\d{3})\]", text, flags=re.M)
            key = f"{', '.join(codes)} [{received[1] if received else '?'}]"
            tally.failures.setdefault(key, text[:3000])

    return run


def fuzz(app: FastAPI, key: str, examples: int, *, ready: bool = True) -> dict[str, Tally]:
    """Run every operation with positive and negative data; returns a tally per operation."""
    positive = CHECKS if ready else [not_a_crash, *CHECKS[1:]]
    negative = (
        positive  # negative_data_rejection is left out: unknown query parameters are ignored, by design
    )
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    headers = {"Authorization": f"Bearer {key}"}
    tallies: dict[str, Tally] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        if ONLY and ONLY not in operation.label:
            continue
        tally = tallies.setdefault(operation.label, Tally())
        runner(operation, GenerationMode.POSITIVE, positive, headers, tally, examples)()
        try:
            runner(operation, GenerationMode.NEGATIVE, negative, headers, tally, examples)()
        except Unsatisfiable:  # nothing to make invalid (no parameters, no body)
            pass
    return tallies


def report(title: str, tallies: dict[str, Tally]) -> str:
    lines = [title, f"{'endpoint':<52} {'cases':>7} {'failures':>8}  statuses"]
    for label, tally in tallies.items():
        statuses = " ".join(f"{s}:{n}" for s, n in sorted(tally.statuses.items()))
        lines.append(f"{label:<52} {tally.cases:>7} {len(tally.failures):>8}  {statuses}")
    total = sum(t.cases for t in tallies.values())
    failures = sum(len(t.failures) for t in tallies.values())
    lines.append(f"{'total':<52} {total:>7} {failures:>8}")
    return "\n".join(lines)


@pytest.fixture
def local_dns(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(socket, "getaddrinfo", _local_only_getaddrinfo(socket.getaddrinfo))
    yield


@pytest.mark.parametrize("engine", [True, False], ids=["ready", "models-not-loaded"])
def test_every_endpoint_survives_fuzzing(tmp_path: Path, local_dns: None, engine: bool) -> None:
    app, key = build_app(tmp_path, engine=engine)
    try:
        tallies = fuzz(app, key, EXAMPLES if engine else max(5, EXAMPLES // 10), ready=engine)
    finally:
        from schemathesis.python import asgi

        asgi.shutdown_lifespans()
    print("\n" + report(f"schemathesis ({'fake engine' if engine else 'models not loaded'})", tallies))
    problems = {label: list(t.failures.values()) for label, t in tallies.items() if t.failures}
    if os.environ.get("NLP_FUZZ_REPORT"):
        out = {
            label: {"cases": t.cases, "statuses": t.statuses, "failures": t.failures}
            for label, t in tallies.items()
        }
        Path(os.environ["NLP_FUZZ_REPORT"]).with_suffix(f".{'ready' if engine else 'cold'}.json").write_text(
            json.dumps(out, indent=1)
        )
    assert not problems, "\n\n".join(f"{label}:\n" + "\n---\n".join(f) for label, f in problems.items())
    assert all(t.cases for t in tallies.values())
