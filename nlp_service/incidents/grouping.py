"""Which alerts belong together, and why: the pure grouping rule of incidents (no database).

An alert joins an incident when it is related to one of the incident's members by one of these rules, tried
in this order (the first that holds names the reason; among several incidents, the best reason wins, then
the incident whose latest member ends last):

1. ``same_segment``: both alerts are carried by a same segment value (an alert's *areas*: the segment of a
   segment alert and the values carrying most of its excess in the explanation's ``over_indexing``, e.g.
   ``region=eu-west``, and the segment values that fired in its episode: ``record.member_view``), go the
   same direction, and their windows overlap (within ``overlap_slack``): one
   surge in one region across several topics;
2. ``same_topic``: the same topic, windows overlapping (within ``overlap_slack``), in any segment: the
   topic's total and its segments, or a spike and a level shift of one change;
3. ``aftermath``: the same topic (areas shared or unknown) and a different kind or direction, starting after
   the member started and at most ``aftermath`` after it ended: a spike then a level shift or a drop.
4. ``recurrence``: the same topic, kind and direction in a shared area, starting after the member started
   and at most ``recurrence`` after it ended: a surge that went quiet overnight (too few comments at night
   to fire) and fires again in the morning.

Otherwise the alert opens an incident (reason ``opened``) if it may (``Member.opens``: the caller lets only
alerts of some severity open one alone); an alert that may not opens one only together with another such
alert of another topic in the same segment (they corroborate each other), and stays out otherwise. Such a
weak alert relates to others only when the windows truly overlap (``corroboration_slack``, no slack) over
at least half the shorter one (``corroboration_overlap``): two weak alerts on consecutive days, or two
windows of hours that merely touch, are not one event, and no chain of them reaches across days.
Incidents are never merged: an alert related to two incidents joins one of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

ReasonCode = Literal["opened", "same_segment", "same_topic", "aftermath", "recurrence"]
PRIORITY: dict[ReasonCode, int] = {
    "same_segment": 0,
    "same_topic": 1,
    "aftermath": 2,
    "recurrence": 3,
    "opened": 4,
}


@dataclass(frozen=True)
class Member:
    """What grouping sees of one alert."""

    alert_id: str
    topic_id: str
    kind: str
    direction: str
    start: datetime
    end: datetime  # exclusive
    excess: float  # |observed - expected| in the peak bucket (a peak of several: per bucket)
    score: float
    areas: tuple[tuple[str, str], ...] = ()  # (field, value)s carrying the alert, its own segment first
    opens: bool = True  # may open an incident (False: only joins one, e.g. a low-severity alert)
    area_excess: tuple[float, ...] = ()  # the excess each area carries, as ``areas`` (missing: ``excess``)

    @property
    def area_label(self) -> str:
        return _label(self.areas[:1])

    def excess_in(self, i: int) -> float:
        """The excess comments ``areas[i]`` carries (at most the alert's own)."""
        return min(self.excess, self.area_excess[i]) if i < len(self.area_excess) else self.excess


def _label(areas: Iterable[tuple[str, str]]) -> str:
    return ", ".join(f"{f}={v}" for f, v in areas) or "all"


@dataclass(frozen=True)
class Rules:
    overlap_slack: timedelta = timedelta(hours=6)
    aftermath: timedelta = timedelta(days=1)
    recurrence: timedelta = timedelta(hours=12)
    corroboration_slack: timedelta = timedelta(0)  # the slack of two alerts that may not open one alone
    corroboration_overlap: float = 0.5  # ... and the share of the shorter window the two must share
    min_overlap: float = 0.0  # the share of the shorter window two related alerts share (at least)


@dataclass(frozen=True)
class Reason:
    """Why a member belongs to its incident (``related_to``: the member it was matched with)."""

    code: ReasonCode
    text: str
    related_to: str | None = None


@dataclass
class Group:
    """An incident as grouping sees it: its members (with their reasons) in the order they joined."""

    members: list[Member] = field(default_factory=list)
    reasons: dict[str, Reason] = field(default_factory=dict)
    key: str | None = None  # the caller's id for it (e.g. the incident id)

    def add(self, member: Member, reason: Reason) -> None:
        self.members.append(member)
        self.reasons[member.alert_id] = reason


def _overlaps(a: Member, b: Member, rules: Rules) -> bool:
    slack = rules.overlap_slack
    if not (a.start - slack < b.end and b.start - slack < a.end):
        return False
    if rules.min_overlap <= 0:
        return True
    shared = min(a.end, b.end) - max(a.start, b.start)
    return shared >= rules.min_overlap * min(a.end - a.start, b.end - b.start)


def _hours(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 3600:.0f}h"


def relation(alert: Member, other: Member, rules: Rules) -> Reason | None:
    """The reason ``alert`` belongs with ``other`` (rules 1-4 of the module docstring), or None."""
    shared = [a for a in alert.areas if a in other.areas]
    if shared and alert.direction == other.direction and _overlaps(alert, other, rules):
        return Reason(
            "same_segment",
            f"same segment {_label(shared)} as {other.topic_id} ({other.kind}), windows overlap",
            other.alert_id,
        )
    if alert.topic_id != other.topic_id:
        return None
    if _overlaps(alert, other, rules):
        return Reason(
            "same_topic",
            f"same topic {alert.topic_id} as the {other.kind} in {other.area_label}, windows overlap",
            other.alert_id,
        )
    compatible = not alert.areas or not other.areas or bool(shared)
    different = (alert.kind, alert.direction) != (other.kind, other.direction)
    after = alert.start - other.end
    if compatible and different and alert.start >= other.start and after <= rules.aftermath:
        return Reason(
            "aftermath",
            f"aftermath of the {other.kind} of {other.topic_id}: a {alert.kind} ({alert.direction}) "
            f"starting {_hours(max(after, timedelta(0)))} after it ended",
            other.alert_id,
        )
    if shared and not different and alert.start >= other.start and after <= rules.recurrence:
        return Reason(
            "recurrence",
            f"{alert.topic_id} up again in {_label(shared)}, {_hours(max(after, timedelta(0)))} after its "
            f"{other.kind} ended",
            other.alert_id,
        )
    return None


def choose(alert: Member, groups: Sequence[Group], rules: Rules) -> tuple[int, Reason] | None:
    """The index of the group ``alert`` joins and the reason, or None (it opens an incident)."""
    best: tuple[tuple[int, float], int, Reason] | None = None
    for i, g in enumerate(groups):
        found = [r for m in g.members if (r := relation(alert, m, rules)) is not None]
        if not found:
            continue
        reason = min(found, key=lambda r: PRIORITY[r.code])
        latest = max(m.end for m in g.members).timestamp()
        rank = (PRIORITY[reason.code], -latest)
        if best is None or rank < best[0]:
            best = (rank, i, reason)
    return None if best is None else (best[1], best[2])


def opened(alert: Member, *, corroborated: bool = False) -> Reason:
    text = f"first alert: {alert.kind} of {alert.topic_id} in {alert.area_label}"
    return Reason("opened", text + (" (with related alerts)" if corroborated else ""))


def assign(alerts: Iterable[Member], rules: Rules, groups: list[Group] | None = None) -> list[Group]:
    """Add each alert (oldest first) to ``groups`` (the open incidents; extended in place) or open a new
    group; returns every group. An alert already a member of a group stays where it is; one that may not
    open a group and joins none (also after the others are placed) stays out."""
    groups = groups if groups is not None else []
    placed = {m.alert_id for g in groups for m in g.members}
    waiting: list[Member] = []
    for alert in sorted(alerts, key=lambda m: (m.start, -m.score, m.alert_id)):
        if alert.alert_id in placed:
            continue
        chosen = choose(alert, groups, _rules_of(alert, rules))
        if chosen is not None:
            groups[chosen[0]].add(alert, chosen[1])
        elif alert.opens:
            groups.append(Group())
            groups[-1].add(alert, opened(alert))
        else:
            waiting.append(alert)
            continue
        placed.add(alert.alert_id)
    _corroborate(waiting, groups, rules)
    return groups


def _corroborate(waiting: list[Member], groups: list[Group], rules: Rules) -> None:
    """Place the alerts that may not open a group: each joins a group it relates to, or opens one together
    with a waiting alert of another topic in the same segment (they corroborate each other); repeated until
    nothing changes. The rest stay out."""
    changed = True
    while changed and waiting:
        changed = False
        for alert in list(waiting):
            if alert not in waiting:
                continue  # placed as a partner in this pass
            chosen = choose(alert, groups, _rules_of(alert, rules))
            if chosen is not None:
                groups[chosen[0]].add(alert, chosen[1])
                waiting.remove(alert)
                changed = True
                continue
            pair = _partner(alert, waiting, rules)
            if pair is None:
                continue
            first, second, reason = pair
            groups.append(Group())
            groups[-1].add(first, opened(first, corroborated=True))
            groups[-1].add(second, reason)
            waiting.remove(first)
            waiting.remove(second)
            changed = True


def _rules_of(alert: Member, rules: Rules) -> Rules:
    """The rules relating ``alert``: one that may not open an incident alone relates to others only when
    the windows truly overlap (``corroboration_slack``), over at least ``corroboration_overlap`` of the
    shorter one, so weak alerts neither pair nor chain across days, nor pair when they merely touch."""
    if alert.opens:
        return rules
    return replace(
        rules,
        overlap_slack=rules.corroboration_slack,
        min_overlap=rules.corroboration_overlap,
        recurrence=timedelta(0),
    )


def _partner(alert: Member, waiting: list[Member], rules: Rules) -> tuple[Member, Member, Reason] | None:
    """``alert`` and the first waiting alert of another topic carried by the same segment value
    (``same_segment``, windows overlapping within ``corroboration_slack``), the earlier first, with the
    later's reason. Alerts of one topic (its total and a segment, a spike and a shift) count the same
    comments twice: they corroborate nothing."""
    rules = _rules_of(alert, rules)
    for b in waiting:
        if b is alert or b.topic_id == alert.topic_id:
            continue
        for first, second in ((alert, b), (b, alert)):
            reason = relation(second, first, rules)
            if reason is not None and reason.code == "same_segment":
                return first, second, reason
    return None


RANK_RULE = (
    "alerts that may open an incident alone before those that only joined it; of each, those carried by "
    "the incident's segment value (or by none known) before those carried elsewhere; then by excess "
    "comments, then score"
)
"""The members' order, in words (the API's and the webhooks' ``rank``)."""


def ranked(members: Iterable[Member], area: tuple[str, str] | None = None) -> list[Member]:
    """Members by excess comments, then score (the incident's lead alert first), those that may open an
    incident before those that only joined one (a weak level shift of a surge's topic elsewhere, joined as
    the same topic, does not lead a surge's incident nor name it a drop: scenario 1022), and of each, those
    carried by ``area`` (the incident's) or by no known area first (a single event in another region,
    joined through a topic up in both, does not lead the surge's incident: scenario 55008)."""

    def key(m: Member) -> tuple[bool, bool, float, float, str]:
        elsewhere = area is not None and bool(m.areas) and area not in m.areas
        return not m.opens, elsewhere, -m.excess, -m.score, m.alert_id

    return sorted(members, key=key)


def _area_weight(member: Member, i: int) -> tuple[int, float, int]:
    """What a member adds to its area ``areas[i]``: 1 and the excess comments that area carries if it may
    open an incident (else 0 and 0), then 1 (a weak member only breaks ties)."""
    return (1, member.excess_in(i), 1) if member.opens else (0, 0.0, 1)


def area_of(members: Sequence[Member], fields: Sequence[str] = ()) -> tuple[str, str] | None:
    """The segment value carrying the incident: the area most of its members that may open an incident
    share (then: the most excess comments of those, the most members; then the field first in ``fields``,
    e.g. the configured segments' order, then the first in the top-ranked members' order), or None if no
    member has one. Weak members that only joined count last: a topic up in a surge in one region and alone
    in another carries both, and the single event's weak alerts that join through it do not outnumber the
    surge (scenario 44006); nor does a weak level shift elsewhere, joined as the same topic (scenario
    1022). A strong single event bridged in the same way outweighs a surge's topics by excess, not by
    number (scenarios 25009, 31022)."""
    weight: dict[tuple[str, str], tuple[int, float, int]] = {}
    for m in ranked(members):
        for i, a in enumerate(m.areas):
            w = _area_weight(m, i)
            held = weight.get(a, (0, 0.0, 0))
            weight[a] = (held[0] + w[0], held[1] + w[1], held[2] + w[2])
    if not weight:
        return None
    rank = {f: i for i, f in enumerate(reversed(fields), start=1)}  # earlier fields rank higher

    def key(a: tuple[str, str]) -> tuple[int, float, int, int]:
        strong, excess, every = weight[a]
        return strong, round(excess, 6), every, rank.get(a[0], 0)

    return max(weight, key=key)  # max keeps the first of equals


def ordered(
    members: Sequence[Member], fields: Sequence[str] = ()
) -> tuple[tuple[str, str] | None, list[Member]]:
    """The incident's segment value (``area_of``) and its members by rank with it (``ranked``)."""
    area = area_of(members, fields)
    return area, ranked(members, area)


def headline(
    members: Sequence[Member], labels: Mapping[str, str] | None = None, fields: Sequence[str] = ()
) -> str:
    """One line, e.g. ``Surge in eu-west: Pricing & promotions and 2 more topics`` (the area: ``area_of``)."""
    return headline_of(*ordered(members, fields), labels)


def headline_of(
    area: tuple[str, str] | None, order: Sequence[Member], labels: Mapping[str, str] | None = None
) -> str:
    """``headline`` of members already ranked (``ordered``) with their incident's area."""
    if not order:
        return "Empty incident"
    labels = labels or {}
    top = order[0]
    word = {"up": "Surge", "down": "Drop"}.get(top.direction, "Change")
    where = f" in {area[1]}" if area else ""
    topics = list(dict.fromkeys(m.topic_id for m in order))
    text = f"{word}{where}: {labels.get(top.topic_id, top.topic_id)}"
    if len(topics) > 1:
        more = len(topics) - 1
        text += f" and {more} more topic{'s' if more > 1 else ''}"
    return text
