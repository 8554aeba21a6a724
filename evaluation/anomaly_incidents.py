"""Incident-level precision and recall on seeded topic x region scenarios (``incidents.scenarios``).

Each scenario's hourly and daily counts are written to a fresh SQLite database as the service stores them
(``topic_counts``: per topic and region, the topic totals and all comments) and the real detection run
(``anomaly.flows.detect``: detectors, episodes, explanations, incidents) scans its last 14 days. An incident
*matches* an injected event when their windows overlap (within 3 hours), they share a topic and the
incident's segment is the event's region (or none).

- precision: incidents matching an event / incidents (null scenarios included: all theirs are false);
- surge recall: surges matched by at least one incident; *as one*: by exactly one incident, which matches
  no other event (the acceptance: one surge across several topics comes out as one incident);
- single recall: single-topic events matched; alerts vs incidents per surge: what grouping saves.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from nlp_service.anomaly import flows
from nlp_service.anomaly.tables import Alert
from nlp_service.config import Settings
from nlp_service.db import Base, import_all_tables, make_engine, make_sessionmaker
from nlp_service.incidents.scenarios import Event, Scenario, scenario
from nlp_service.incidents.tables import Incident
from nlp_service.topics.tables import ALL_SEGMENT, ALL_TOPICS, TopicCount

SLACK = timedelta(hours=3)
SCAN_DAYS = 14
# round 1's behaviour, for before/after figures: no weekly-pattern check, any medium alert opens an incident
BEFORE: dict[str, Any] = {"alert_weekly_check": False, "incident_min_severity_shift": "low"}


def _rows(sc: Scenario) -> list[dict[str, Any]]:
    """``topic_counts`` rows: hour and day buckets; per region, topic totals and all-topic totals."""
    rows: list[dict[str, Any]] = []
    days = sc.hours // 24
    series: dict[tuple[str, str, str], np.ndarray] = {}
    for ti, topic in enumerate(sc.topics):
        for ri, region in enumerate(sc.regions):
            series[(topic, "region", region)] = sc.counts[ti, ri]
        series[(topic, ALL_SEGMENT, ALL_SEGMENT)] = sc.counts[ti].sum(axis=0)
    for ri, region in enumerate(sc.regions):
        series[(ALL_TOPICS, "region", region)] = sc.counts[:, ri].sum(axis=0)
    series[(ALL_TOPICS, ALL_SEGMENT, ALL_SEGMENT)] = sc.counts.sum(axis=(0, 1))
    for (topic, seg, value), hourly in series.items():
        daily = hourly[: days * 24].reshape(days, 24).sum(axis=1)
        for bucket, values, step in (("hour", hourly, timedelta(hours=1)), ("day", daily, timedelta(days=1))):
            for i, c in enumerate(values):
                if c:
                    rows.append(
                        {
                            "topic_id": topic,
                            "bucket": bucket,
                            "bucket_start": sc.start + i * step,
                            "segment": seg,
                            "segment_value": value,
                            "count": int(c),
                            "negative": 0,
                        }
                    )
    return rows


def detect(sc: Scenario, directory: Path, settings: Settings) -> tuple[list[Incident], list[Alert]]:
    """Store the scenario's counts in a fresh SQLite database, run detection, return incidents and alerts."""
    import_all_tables()
    engine = make_engine(f"sqlite:///{(directory / 'scenario.db').as_posix()}")
    Base.metadata.create_all(engine)
    try:
        sessions = make_sessionmaker(engine)
        with sessions.begin() as s:
            s.execute(insert(TopicCount), _rows(sc))
        end = sc.start + timedelta(hours=sc.hours)
        with sessions.begin() as s:
            flows.detect(db_session=s, settings=settings, at=end, lookback_s=SCAN_DAYS * 86400)
        with sessions() as s:
            incidents, alerts = _read(s)
    finally:
        engine.dispose()
    return incidents, alerts


def _read(s: Session) -> tuple[list[Incident], list[Alert]]:
    incidents = list(s.scalars(select(Incident)))
    alerts = list(s.scalars(select(Alert)))
    s.expunge_all()
    return incidents, alerts


def _window(sc: Scenario, e: Event) -> tuple[datetime, datetime]:
    return sc.start + timedelta(hours=e.start), sc.start + timedelta(hours=e.end)


def _matches(
    sc: Scenario, e: Event, start: datetime, end: datetime, topics: set[str], slack: timedelta = SLACK
) -> bool:
    es, ee = _window(sc, e)
    return start - slack < ee and es - slack < end and bool(topics & set(e.topics))


@dataclass(frozen=True)
class TopicEvidence:
    """What the counts show of one surge topic over the surge's hours, knowing them (no scan)."""

    topic: str
    observed: int
    expected: float  # the mean of the same hours one to three weeks before (those in the data)
    p_value: float  # Poisson upper tail of ``observed`` at ``expected``


def surge_evidence(sc: Scenario) -> list[TopicEvidence]:
    """Each topic of the scenario's surge in its region over the surge's hours against the same hours of
    the earlier weeks, the most significant first: whether a missed surge rose visibly in several topics
    (a detector must also find the hours, and its baselines rest on those weeks)."""
    surge = next((e for e in sc.events if e.kind == "surge"), None)
    if surge is None:
        return []
    region = sc.regions.index(surge.region)
    week = 7 * 24
    out: list[TopicEvidence] = []
    for topic in surge.topics:
        counts = sc.counts[sc.topics.index(topic), region]
        before = [
            counts[surge.start - w * week : surge.end - w * week].sum()
            for w in (1, 2, 3)
            if surge.start - w * week >= 0
        ]
        expected = float(np.mean(before)) if before else 0.0
        observed = int(counts[surge.start : surge.end].sum())
        p = float(stats.poisson.sf(observed - 1, expected)) if expected > 0 else float(observed == 0)
        out.append(TopicEvidence(topic, observed, round(expected, 1), p))
    return sorted(out, key=lambda t: (t.p_value, t.topic))


def evaluate_incidents(
    n_scenarios: int = 24, n_null: int = 8, seed: int = 0, settings: Settings | None = None
) -> dict[str, Any]:
    """Run the scenarios (``n_scenarios`` with a surge, ``n_null`` without events; seeds ``1000 seed + i``)
    and score incidents, with ``settings`` (default: the defaults, region segments scanned): the rates, their
    counts, and the scenarios ``i`` whose surge is not one incident (``missed_surges``) or that hold a false
    incident (``false_incident_scenarios``)."""
    settings = settings or Settings(alert_segments=["region"])
    found = true = surges = surges_hit = surges_one = singles = singles_hit = 0
    null_incidents = null_alerts = n_alerts = 0
    missed: list[int] = []  # scenarios whose surge is not exactly one incident
    false_at: list[int] = []  # scenarios with an incident matching no event
    alerts_per_surge: list[int] = []
    incidents_per_surge: list[int] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(n_scenarios + n_null):
            sc = scenario(seed * 1000 + i, surge=i < n_scenarios)
            directory = Path(tmp) / str(i)
            directory.mkdir(mode=0o700)
            incidents, alerts = detect(sc, directory, settings)
            found += len(incidents)
            n_alerts += len(alerts)
            if not sc.events:
                null_incidents += len(incidents)
                null_alerts += len(alerts)
            hits = {
                inc.id: [
                    j
                    for j, e in enumerate(sc.events)
                    if inc.segment_value in (e.region, ALL_SEGMENT)
                    and _matches(sc, e, inc.window_start, inc.window_end, set(inc.topics))
                ]
                for inc in incidents
            }
            true += sum(1 for h in hits.values() if h)
            if any(not h for h in hits.values()):
                false_at.append(i)
            for j, e in enumerate(sc.events):
                matched = [iid for iid, h in hits.items() if j in h]
                if e.kind == "single":
                    singles += 1
                    singles_hit += bool(matched)
                    continue
                surges += 1
                surges_hit += bool(matched)
                one = len(matched) == 1 and hits[matched[0]] == [j]
                surges_one += one
                if not one:
                    missed.append(i)
                incidents_per_surge.append(len(matched))
                alerts_per_surge.append(
                    sum(1 for a in alerts if _matches(sc, e, a.window_start, a.window_end, {a.topic_id}))
                )
    return {
        "scenarios": n_scenarios,
        "null_scenarios": n_null,
        "incidents": found,
        "precision": round(true / found, 4) if found else 1.0,
        "surge_recall": round(surges_hit / surges, 4) if surges else 0.0,
        "surge_as_one_incident": round(surges_one / surges, 4) if surges else 0.0,
        "single_recall": round(singles_hit / singles, 4) if singles else 0.0,
        "singles": singles,
        "false_incidents_per_null_scenario": round(null_incidents / n_null, 4) if n_null else 0.0,
        "false_alerts_per_null_scenario": round(null_alerts / n_null, 4) if n_null else 0.0,
        "alerts": n_alerts,
        "alerts_per_surge": round(float(np.mean(alerts_per_surge)), 2) if alerts_per_surge else 0.0,
        "incidents_per_surge": round(float(np.mean(incidents_per_surge)), 2) if incidents_per_surge else 0.0,
        "surges": surges,
        "surges_as_one": surges_one,
        "singles_found": singles_hit,
        "false_incidents": found - true,
        "false_incidents_in_null_scenarios": null_incidents,
        "missed_surges": missed,
        "false_incident_scenarios": false_at,
    }


def incidents_report(r: dict[str, Any]) -> str:
    """The markdown section of ``python -m evaluation anomaly``."""
    return (
        "\n## Synthetic incidents (one-region surges across topics; nlp_service.incidents.scenarios)\n\n"
        f"{r['scenarios']} scenarios with a surge of 2-4 topics in one region (+ {r['singles']} single-topic "
        f"events elsewhere), {r['null_scenarios']} without events; 6 topics x 5 regions, 28 days hourly. "
        f"{r['alerts']} alerts made {r['incidents']} incidents; null scenarios: "
        f"{r['false_alerts_per_null_scenario']:.2f} alerts each.\n\n"
        "| precision | surge recall | surge as one incident | single recall | false incidents / null "
        "scenario | alerts / surge | incidents / surge |\n|---|---|---|---|---|---|---|\n"
        f"| {r['precision']:.3f} | {r['surge_recall']:.3f} | {r['surge_as_one_incident']:.3f} | "
        f"{r['single_recall']:.3f} | {r['false_incidents_per_null_scenario']:.2f} | "
        f"{r['alerts_per_surge']:.2f} | {r['incidents_per_surge']:.2f} |\n"
    )


def before_after(seeds: tuple[int, ...] = (0, 1)) -> str:
    """A markdown table of the incident figures per seed, ``BEFORE`` and with the defaults, in one run."""
    keys = ("precision", "surge_recall", "surge_as_one_incident", "single_recall")
    rows = [
        "| seed | settings | precision | surge recall | surge as one incident | single recall "
        "| false incidents / null scenario | alerts / surge | incidents / surge |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for seed in seeds:
        for name, extra in (("before", BEFORE), ("after", {})):
            r = evaluate_incidents(seed=seed, settings=Settings(alert_segments=["region"], **extra))
            cells = [f"{r[k]:.3f}" for k in keys] + [
                f"{r['false_incidents_per_null_scenario']:.2f}",
                f"{r['alerts_per_surge']:.2f}",
                f"{r['incidents_per_surge']:.2f}",
            ]
            rows.append(f"| {seed} | {name} | " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"
