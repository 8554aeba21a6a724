"""Alert-level precision/recall on synthetic daily streams that look like customer-feedback data.

Each case family adds one trait of real CX volume to the seeded streams of ``nlp_service.anomaly.synthetic``
(log-uniform base volume 20-200 a day, 56 days of history, then 182 days replayed):

* ``weekly``: a strong weekly cycle (weekends at 40% of the mean, weekdays at 124%) with 2 spikes (x3-5,
  1-3 days), 1 drop (x0.05-0.2, 1-3 days) and 1 level shift (x1.5-2.5 up or down), all to report;
* ``holiday``: 2 holidays (a weekday or two at 20-50% of normal volume) and 2 spikes. **A holiday is not an
  anomaly to report** (the team knows the office was closed; the service has no calendar), so an alert in a
  holiday or the 14 days after counts as false (``nuisance``);
* ``drift``: a slow drift (the mean ramps x1.5-2.5, or down by as much, over 60-120 days, i.e. <= 1.5% a
  day) and 2 spikes on top. **A drift is not a spike, drop or level shift**: any alert it raises is false;
  the spikes on top must still be found;
* ``gap``: a collection gap (2-7 days with no comments at all, the service down too: no scans during it;
  the first scan after it catches up over the gap, as the worker does) and 2 spikes. **A gap is not an
  anomaly**: an alert from the gap or its aftermath (14 days) is false;
* ``gap_live``: the same gap while the service keeps scanning daily (the feedback source broke).

Replay, as the service runs (``flows.scan``): one scan a day; each reads the last ``alert_history_days`` +
scanned buckets of the topic series and the tenant's total (``_all``), checks the buckets since the previous
scan (at least ``alert_rescan_buckets``) with ``rules.scan_series`` at the configured sensitivity (default
settings: medium); firings merge into alerts as ``episodes.merge_firings`` does (same kind and direction,
window overlapping or within ``alert_episode_gap_buckets``; nothing is resolved during the replay).

An alert is a true positive if its window overlaps a reportable event's (widened by ``MARGIN`` buckets;
a shift's window is its first ``CP_MIN_SIZE`` buckets) in the same direction; recall is the share of
reportable events with such an alert; false alerts are reported per 30 series-days replayed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from nlp_service.anomaly.rules import CP_MIN_SIZE, scan_series
from nlp_service.anomaly.sensitivity import Thresholds, thresholds
from nlp_service.anomaly.series import SeriesSet
from nlp_service.anomaly.synthetic import Event, generate, random_events
from nlp_service.config import Settings
from nlp_service.topics.tables import ALL_SEGMENT, ALL_TOPICS

FAMILIES = ("weekly", "holiday", "drift", "gap", "gap_live")
HISTORY = 56  # days before the first replayed scan (the service's alert_history_days)
DAYS = 182  # days replayed
MARGIN = 2  # buckets of slack when matching an alert to an event
AFTERMATH = 14  # days after a holiday or gap whose false alerts are blamed on it
KEY = ("topic", ALL_SEGMENT, ALL_SEGMENT)
TOTAL_KEY = (ALL_TOPICS, ALL_SEGMENT, ALL_SEGMENT)


@dataclass(frozen=True)
class Case:
    """One replayed stream: the topic's daily counts, the tenant's total, the events (reportable or not),
    and the days the service was down (no scans)."""

    values: np.ndarray
    total: np.ndarray
    start: int  # epoch seconds of bucket 0
    events: tuple[Event, ...]
    down: tuple[int, int] | None = None


@dataclass
class Alert:
    """A replayed alert: kind, direction and its window ``[start, end)`` in buckets."""

    kind: str
    direction: str
    start: int
    end: int


# -- cases ----------------------------------------------------------------------------------------
def _free_start(
    rng: np.random.Generator, lo: int, hi: int, length: int, taken: list[Event], clear: int
) -> int:
    """A start in ``[lo, hi)`` whose ``length`` buckets keep ``clear`` buckets from every taken event."""
    for _ in range(1000):
        s = int(rng.integers(lo, hi))
        if all(s + length + clear <= ev.start or s >= ev.end + clear + 1 for ev in taken):
            return s
    raise ValueError("no room for the event")


def _weekday(start: int) -> int:
    """``start`` moved forward to a weekday (bucket 0 is a Monday)."""
    return start + (7 - start % 7 if start % 7 >= 5 else 0)


def make_case(family: str, rng: np.random.Generator, n: int = HISTORY + DAYS) -> Case:
    """One seeded stream of a case family (see the module docstring)."""
    base = float(np.exp(rng.uniform(np.log(20.0), np.log(200.0))))
    warmup = HISTORY + 7
    amplitude = 0.6 if family == "weekly" else 0.3
    down = None
    if family == "weekly":
        events = list(random_events(n, rng, n_spikes=2, n_drops=1, n_shifts=1, warmup=warmup, spacing=35))
        nuisance: list[Event] = []
    else:
        events = list(random_events(n, rng, n_spikes=2, warmup=warmup, spacing=35))
        if family == "holiday":
            nuisance = []
            for _ in range(2):
                length = int(rng.integers(1, 3))
                s = _weekday(_free_start(rng, warmup, n - 21, length + 2, events + nuisance, 7))
                nuisance.append(Event("holiday", s, s + length - 1, float(rng.uniform(0.2, 0.5))))
        elif family == "drift":
            s, length = int(rng.integers(warmup, warmup + 40)), int(rng.integers(60, 121))
            f = float(rng.uniform(1.5, 2.5))
            nuisance = [Event("drift", s, s + length, f if rng.random() < 0.5 else 1.0 / f)]
        else:  # gap, gap_live: spikes kept out of the gap and its aftermath
            length = int(rng.integers(2, 8))
            s = int(rng.integers(warmup + 21, n - AFTERMATH - 14))
            nuisance = [Event("gap", s, s + length - 1, 0.0)]
            events = [ev for ev in events if ev.end < s - 5 or ev.start > s + length + AFTERMATH]
            down = (s, s + length - 1) if family == "gap" else None
    topic = generate(n, base=base, events=(*events, *nuisance), weekly_amplitude=amplitude, seed=rng)
    others = generate(n, base=3.0 * base, events=tuple(nuisance), weekly_amplitude=amplitude, seed=rng)
    return Case(
        topic.series.values,
        topic.series.values + others.series.values,
        int(topic.series.timestamps[0]),
        (*events, *nuisance),
        down,
    )


# -- replay ---------------------------------------------------------------------------------------
def replay(
    case: Case, settings: Settings, th: Thresholds | None = None, *, first: int = HISTORY
) -> list[Alert]:
    """The service's daily scans over ``case`` from day ``first`` on; returns the alerts."""
    history, gap = settings.alert_history_days, settings.alert_episode_gap_buckets
    alerts: list[Alert] = []
    last_end = first - 1
    for end in range(first, case.values.size + 1):  # the scan run on day ``end``: buckets < end complete
        if case.down is not None and case.down[0] <= end <= case.down[1]:
            continue
        n_scan = max(settings.alert_rescan_buckets, end - last_end)
        last_end = end
        lo = max(0, end - history - n_scan)
        start = datetime.fromtimestamp(case.start + 86400 * lo, UTC)
        counts = {KEY: case.values[lo:end], TOTAL_KEY: case.total[lo:end]}
        ss = SeriesSet("day", start, end - lo, counts).since_first_data()
        offset = end - ss.n
        for f in scan_series(KEY, ss.counts[KEY], ss, settings, scan=n_scan, th=th):
            s = offset + int((f.start - ss.start).total_seconds()) // 86400
            e = offset + int((f.end - ss.start).total_seconds()) // 86400
            _merge(alerts, Alert(str(f.kind), str(f.direction), s, e), gap)
    return alerts


def _merge(alerts: list[Alert], new: Alert, gap: int) -> None:
    for a in alerts:
        same = (a.kind, a.direction) == (new.kind, new.direction)
        if same and a.start - gap <= new.end and new.start <= a.end + gap:
            a.start, a.end = min(a.start, new.start), max(a.end, new.end)
            return
    alerts.append(new)


# -- scoring --------------------------------------------------------------------------------------
def _truth_window(ev: Event) -> tuple[int, int, str]:
    """A reportable event's window ``[start, end)`` and direction."""
    if ev.kind == "shift":
        return ev.start, ev.start + CP_MIN_SIZE, "up" if ev.factor > 1 else "down"
    return ev.start, ev.end + 1, "up" if ev.kind == "spike" else "down"


def _nuisance_window(ev: Event) -> tuple[int, int]:
    """Where a holiday's, drift's or gap's false alerts fall: the event and its aftermath."""
    return ev.start - MARGIN, ev.end + 1 + AFTERMATH


def _overlaps(a: Alert, lo: int, hi: int) -> bool:
    return a.start < hi and lo < a.end


@dataclass
class Tally:
    """Counts of one family over its cases."""

    alerts: int = 0
    true_alerts: int = 0
    events: int = 0
    events_found: int = 0
    nuisance_events: int = 0
    nuisance_events_alerted: int = 0
    nuisance_alerts: int = 0
    days: int = 0
    kinds: dict[str, int] = field(default_factory=dict)  # false alerts per kind

    def add(self, case: Case, alerts: list[Alert], first: int) -> None:
        """Score one replayed case."""
        truth = [_truth_window(ev) for ev in case.events if ev.reportable]
        nuisance = [_nuisance_window(ev) for ev in case.events if not ev.reportable]

        def true(a: Alert, w: tuple[int, int, str]) -> bool:
            return a.direction == w[2] and _overlaps(a, w[0] - MARGIN, w[1] + MARGIN)

        self.alerts += len(alerts)
        self.events += len(truth)
        self.events_found += sum(any(true(a, w) for a in alerts) for w in truth)
        false = [a for a in alerts if not any(true(a, w) for w in truth)]
        self.true_alerts += len(alerts) - len(false)
        for a in false:
            self.kinds[f"{a.kind}_{a.direction}"] = self.kinds.get(f"{a.kind}_{a.direction}", 0) + 1
        self.nuisance_events += len(nuisance)
        self.nuisance_events_alerted += sum(any(_overlaps(a, lo, hi) for a in false) for lo, hi in nuisance)
        self.nuisance_alerts += sum(any(_overlaps(a, lo, hi) for lo, hi in nuisance) for a in false)
        self.days += case.values.size - first

    def metrics(self) -> dict[str, Any]:
        """Precision, recall, false alerts per 30 series-days and the nuisance counts."""
        false = self.alerts - self.true_alerts
        return {
            "precision": self.true_alerts / self.alerts if self.alerts else float("nan"),
            "recall": self.events_found / self.events if self.events else float("nan"),
            "false_alerts_per_30d": 30.0 * false / max(self.days, 1),
            "alerts": self.alerts,
            "false_alerts": false,
            "events": self.events,
            "nuisance_events": self.nuisance_events,
            "nuisance_events_alerted": self.nuisance_events_alerted,
            "nuisance_alerts": self.nuisance_alerts,
            "false_by_kind": dict(sorted(self.kinds.items())),
            "series_days": self.days,
        }


def evaluate_cx(
    n_series: int = 20, seed: int = 0, settings: Settings | None = None, families: tuple[str, ...] = FAMILIES
) -> dict[str, dict[str, Any]]:
    """Per family: alert-level metrics over ``n_series`` seeded cases (the same seeds for every family)."""
    settings = settings or Settings()
    th = thresholds(settings)
    out = {}
    for family in families:
        rng = np.random.default_rng([seed, FAMILIES.index(family) if family in FAMILIES else 99])
        tally = Tally()
        for _ in range(n_series):
            case = make_case(family, rng)
            tally.add(case, replay(case, settings, th), HISTORY)
        out[family] = tally.metrics()
    return out


def cx_metrics(cx: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Flat JSON keys ``synthetic_cx.<family>.<metric>``."""
    keys = ("precision", "recall", "false_alerts_per_30d", "alerts", "events", "nuisance_events_alerted")
    out: dict[str, Any] = {f"synthetic_cx.{fam}.{k}": m[k] for fam, m in cx.items() for k in keys}
    for fam, m in cx.items():
        out[f"synthetic_cx.{fam}.nuisance_events"] = m["nuisance_events"]
    return out


def cx_report(cx: dict[str, dict[str, Any]]) -> str:
    """Markdown section: one row per case family."""
    lines = [
        "",
        "## Synthetic CX-like streams, alert level (daily buckets, service settings, medium sensitivity)",
        "",
        "| family | series-days | alerts | precision | recall (events) | false alerts / 30 days | "
        "holidays / drifts / gaps alerted | false alerts by kind |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for fam, m in cx.items():
        nuis = f"{m['nuisance_events_alerted']}/{m['nuisance_events']}" if m["nuisance_events"] else "-"
        kinds = ", ".join(f"{k} {v}" for k, v in m["false_by_kind"].items()) or "-"
        lines.append(
            f"| {fam} | {m['series_days']} | {m['alerts']} | {m['precision']:.3f} | {m['recall']:.3f} "
            f"({m['events']}) | {m['false_alerts_per_30d']:.3f} | {nuis} | {kinds} |"
        )
    lines += [
        "",
        "Truth (see `evaluation/anomaly_cx.py`): holidays, slow drifts and collection gaps are not "
        "anomalies to report; an alert in one (or in the 14 days after a holiday or gap) is false. "
        "`gap`: the service is down during the gap and catches up when data resumes; "
        "`gap_live`: it keeps scanning.",
    ]
    return "\n".join(lines) + "\n"
