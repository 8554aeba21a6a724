"""Feedback -> sensitivity, top-down: read the topic's recent feedback (anomaly) -> decide (pure) -> make the
change a new, activated taxonomy version (topics) with a case-history entry in the same transaction -> log it.

Runs after the acknowledge/resolve that carried ``not_useful`` feedback has committed; a failure here (the
taxonomy changed meanwhile, models still loading) is logged and leaves the feedback stored: the next
not-useful vote of the topic decides again.
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session, sessionmaker

from nlp_service.anomaly import feedback, service
from nlp_service.anomaly.feedback import Tightening
from nlp_service.cases import service as cases
from nlp_service.config import Settings
from nlp_service.deps import in_transaction
from nlp_service.errors import ServiceError
from nlp_service.inference.protocol import AnalysisEngine
from nlp_service.topics import edits, versions
from nlp_service.topics.changes import apply_change
from nlp_service.topics.tables import TaxonomyVersion
from nlp_service.topics.taxonomy import Taxonomy

log = logging.getLogger(__name__)


def _decide(s: Session, settings: Settings, alert_id: str) -> Tightening | None:
    alert = service.get(db_session=s, alert_id=alert_id)
    taxonomy = versions.active_taxonomy(db_session=s)
    if taxonomy is None or taxonomy.get(alert.topic_id) is None:
        return None  # not a taxonomy topic (emerging, deleted): nothing to tighten
    current = versions.topic_sensitivities(db_session=s).get(alert.topic_id) or settings.alert_sensitivity
    votes = feedback.recent_votes(
        db_session=s, topic_id=alert.topic_id, window=settings.feedback_tighten_window
    )
    return feedback.decide(
        votes,
        topic_id=alert.topic_id,
        current=current,
        not_useful=settings.feedback_tighten_not_useful,
        window=settings.feedback_tighten_window,
    )


async def tighten_after_feedback(
    *,
    sessions: sessionmaker[Session],
    engine: AnalysisEngine | None,
    settings: Settings,
    alert_id: str,
    actor: str,
) -> Tightening | None:
    """Apply the tightening the alert's topic now calls for (``NLP_FEEDBACK_TIGHTEN``); returns it or None."""
    if not settings.feedback_tighten:
        return None
    decision = await in_transaction(sessions, lambda s: _decide(s, settings, alert_id))
    if decision is None:
        return None
    if engine is None:
        log.warning("feedback tightening of topic %s postponed: models still loading", decision.topic_id)
        return None

    def edit(taxonomy: Taxonomy, _s: Session) -> Taxonomy:
        return edits.update_topic(taxonomy, decision.topic_id, {"sensitivity": decision.after})

    def record(s: Session, version: TaxonomyVersion) -> None:
        alert = service.get(db_session=s, alert_id=alert_id)
        cases.record(
            s,
            "alert",
            alert,
            actor=service.SYSTEM,
            action=feedback.TIGHTENED,
            note=decision.change,
            details={
                "topic_id": decision.topic_id,
                "from": decision.before,
                "to": decision.after,
                "not_useful": decision.not_useful,
                "window": decision.window,
                "taxonomy_version": version.id,
                "triggered_by": actor,
            },
        )

    try:
        result = await apply_change(
            sessions, engine, edit, change=decision.change, actor=actor, activate=True, also=record
        )
    except ServiceError as exc:
        log.warning("feedback tightening of topic %s not applied: %s", decision.topic_id, exc.message)
        return None
    log.info(
        "feedback tightened topic %s: sensitivity %s -> %s (taxonomy version %s)",
        decision.topic_id,
        decision.before,
        decision.after,
        result.version.id,
        extra={
            "event": "feedback_tightened",
            "topic_id": decision.topic_id,
            "sensitivity_from": decision.before,
            "sensitivity_to": decision.after,
            "not_useful": decision.not_useful,
            "window": decision.window,
            "taxonomy_version": result.version.id,
            "alert_id": alert_id,
        },
    )
    return decision
