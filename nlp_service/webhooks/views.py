"""``/v1/webhooks`` (subscriptions, secrets, ping, deliveries, recover) and ``/v1/deliveries/{id}/retry``.

Views own the transaction (one ``session_scope`` per request, committed before the response is sent) and run
the blocking DB work (and the URL's DNS check) in the thread pool.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Path, Query, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from nlp_service.deps import JsonBody, SecretBoxDep, SessionFactoryDep, SettingsDep, in_transaction
from nlp_service.errors import ErrorResponse, OpenApiResponses
from nlp_service.idempotency.deps import IdempotencyDep
from nlp_service.webhooks import deliveries, service
from nlp_service.webhooks.payloads import EVENTS
from nlp_service.webhooks.safety import TargetPolicy
from nlp_service.webhooks.schemas import (
    AttemptPublic,
    CreateWebhookRequest,
    CreateWebhookResponse,
    DeliveryPublic,
    DeliveryStatus,
    ListDeliveriesResponse,
    ListWebhooksResponse,
    PingResponse,
    RecoverRequest,
    RecoverResponse,
    RotateSecretResponse,
    UpdateWebhookRequest,
    WebhookFilters,
    WebhookPublic,
    recipients_of,
)
from nlp_service.webhooks.tables import WebhookDelivery, WebhookSubscription

router = APIRouter(tags=["webhooks"])

WebhookId = Path(min_length=1, max_length=40, description="The webhook's id (wh_...)")
NOT_FOUND: OpenApiResponses = {404: {"model": ErrorResponse, "description": "No such webhook"}}
CONFLICT: OpenApiResponses = {
    409: {"model": ErrorResponse, "description": "The webhook is disabled (or the delivery in flight)"}
}


def policy_of(settings: SettingsDep) -> TargetPolicy:
    return TargetPolicy.from_settings(settings)


def public(sub: WebhookSubscription) -> WebhookPublic:
    return WebhookPublic(
        id=sub.id,
        url=sub.url,
        format=sub.format,
        recipients=recipients_of(sub.url) if sub.format == "email" else None,
        description=sub.description,
        event_types=list(sub.event_types),
        filters=WebhookFilters(
            topics=sub.filter_topics, segments=sub.filter_segments, min_severity=sub.min_severity
        ),
        enabled=sub.enabled,
        disabled_reason=sub.disabled_reason,
        disabled_at=sub.disabled_at,
        failing_since=sub.failing_since,
        created_at=sub.created_at,
        updated_at=sub.updated_at,
    )


def delivery_public(delivery: WebhookDelivery, *, with_attempts: bool = True) -> DeliveryPublic:
    return DeliveryPublic(
        id=delivery.id,
        webhook_id=delivery.subscription_id,
        event_id=delivery.event_id,
        event_type=delivery.event_type,
        status=delivery.status,
        attempts=delivery.attempts,
        next_attempt_at=delivery.next_attempt_at,
        last_status_code=delivery.last_status_code,
        last_error=delivery.last_error,
        delivered_at=delivery.delivered_at,
        created_at=delivery.created_at,
        attempt_log=[AttemptPublic.model_validate(a, from_attributes=True) for a in delivery.attempt_log]
        if with_attempts
        else [],
    )


@router.post(
    "/webhooks",
    status_code=201,
    response_model=CreateWebhookResponse,
    dependencies=[JsonBody],
    responses={409: {"model": ErrorResponse, "description": "Too many subscriptions"}},
)
async def create_webhook(
    body: CreateWebhookRequest,
    sessions: SessionFactoryDep,
    settings: SettingsDep,
    box: SecretBoxDep,
    idempotency: IdempotencyDep,
) -> CreateWebhookResponse | JSONResponse:
    """Subscribe an endpoint. The response holds the signing secret: it is shown only this once (or to a
    retry with the same ``Idempotency-Key``). 409 when ``NLP_WEBHOOK_MAX_SUBSCRIPTIONS`` subscriptions exist
    already."""
    policy = policy_of(settings)

    def work(db_session: Session) -> CreateWebhookResponse:
        sub, secret = service.create(
            db_session=db_session,
            request=body,
            policy=policy,
            box=box,
            max_subscriptions=settings.webhook_max_subscriptions,
            email_enabled=settings.smtp_host is not None,
        )
        return CreateWebhookResponse(**public(sub).model_dump(), secret=secret)

    return await idempotency.run(sessions, work)


@router.get("/webhooks", response_model=ListWebhooksResponse)
async def list_webhooks(
    sessions: SessionFactoryDep,
    enabled: bool | None = Query(None, description="Only enabled (or disabled) ones"),
) -> ListWebhooksResponse:
    """Every subscription, without secrets."""
    return await in_transaction(
        sessions,
        lambda s: ListWebhooksResponse(
            items=[public(sub) for sub in service.get_all(db_session=s, enabled=enabled)]
        ),
    )


@router.get("/webhooks/{webhook_id}", response_model=WebhookPublic, responses=NOT_FOUND)
async def get_webhook(sessions: SessionFactoryDep, webhook_id: str = WebhookId) -> WebhookPublic:
    """One subscription, without its secret; ``disabled_reason`` says why it was disabled."""
    return await in_transaction(sessions, lambda s: public(service.get(db_session=s, webhook_id=webhook_id)))


@router.patch(
    "/webhooks/{webhook_id}", response_model=WebhookPublic, responses=NOT_FOUND, dependencies=[JsonBody]
)
async def update_webhook(
    body: UpdateWebhookRequest,
    sessions: SessionFactoryDep,
    settings: SettingsDep,
    webhook_id: str = WebhookId,
) -> WebhookPublic:
    """Change url, description, event types, filters or enabled. Re-enabling clears the failure state."""
    policy = policy_of(settings)
    return await in_transaction(
        sessions,
        lambda s: public(
            service.update_subscription(db_session=s, webhook_id=webhook_id, request=body, policy=policy)
        ),
    )


@router.delete("/webhooks/{webhook_id}", status_code=204, responses=NOT_FOUND)
async def delete_webhook(sessions: SessionFactoryDep, webhook_id: str = WebhookId) -> Response:
    """Delete the subscription and its deliveries."""
    await in_transaction(sessions, lambda s: service.delete(db_session=s, webhook_id=webhook_id))
    return Response(status_code=204)


@router.post("/webhooks/{webhook_id}/rotate-secret", response_model=RotateSecretResponse, responses=NOT_FOUND)
async def rotate_secret(
    sessions: SessionFactoryDep,
    settings: SettingsDep,
    box: SecretBoxDep,
    idempotency: IdempotencyDep,
    webhook_id: str = WebhookId,
) -> RotateSecretResponse | JSONResponse:
    """A new signing secret (shown once); the old one also signs until ``previous_secret_expires_at``."""

    def work(db_session: Session) -> RotateSecretResponse:
        _, secret, expires = service.rotate_secret(
            db_session=db_session,
            webhook_id=webhook_id,
            grace_s=settings.webhook_secret_grace_s,
            box=box,
        )
        return RotateSecretResponse(secret=secret, previous_secret_expires_at=expires)

    return await idempotency.run(sessions, work)


@router.post(
    "/webhooks/{webhook_id}/ping",
    status_code=202,
    response_model=PingResponse,
    responses={**NOT_FOUND, **CONFLICT},
)
async def ping_webhook(sessions: SessionFactoryDep, webhook_id: str = WebhookId) -> PingResponse:
    """Queue a ``webhook.ping`` event to this endpoint (see its deliveries for the outcome)."""

    def work(db_session: Session) -> PingResponse:
        delivery = service.ping(db_session=db_session, webhook_id=webhook_id)
        return PingResponse(event_id=delivery.event_id, delivery_id=delivery.id)

    return await in_transaction(sessions, work)


@router.get("/webhooks/{webhook_id}/deliveries", response_model=ListDeliveriesResponse, responses=NOT_FOUND)
async def list_deliveries(
    sessions: SessionFactoryDep,
    webhook_id: str = WebhookId,
    status: DeliveryStatus | None = Query(None, description="Only deliveries in this status"),
    limit: int = Query(50, ge=1, le=500),
) -> ListDeliveriesResponse:
    """Newest deliveries first, each with its attempts (status code, latency, error, response snippet)."""
    return await in_transaction(
        sessions,
        lambda s: ListDeliveriesResponse(
            items=[
                delivery_public(d)
                for d in deliveries.get_deliveries(
                    db_session=s, webhook_id=webhook_id, status=status, limit=limit
                )
            ]
        ),
    )


@router.post(
    "/webhooks/{webhook_id}/recover",
    response_model=RecoverResponse,
    responses={**NOT_FOUND, **CONFLICT},
    dependencies=[JsonBody],
)
async def recover_webhook(
    body: RecoverRequest, sessions: SessionFactoryDep, webhook_id: str = WebhookId
) -> RecoverResponse:
    """Re-queue failed and dead deliveries created in [since, until) with a fresh retry schedule."""
    return await in_transaction(
        sessions,
        lambda s: RecoverResponse(
            requeued=deliveries.recover(
                db_session=s, webhook_id=webhook_id, since=body.since, until=body.until
            )
        ),
    )


@router.post(
    "/deliveries/{delivery_id}/retry",
    response_model=DeliveryPublic,
    responses={404: {"model": ErrorResponse, "description": "No such delivery"}, **CONFLICT},
)
async def retry_delivery(
    sessions: SessionFactoryDep, delivery_id: str = Path(min_length=1, max_length=40)
) -> DeliveryPublic:
    """Send this delivery again now (same event id), with a fresh retry schedule."""
    return await in_transaction(
        sessions,
        lambda s: delivery_public(deliveries.retry_delivery(db_session=s, delivery_id=delivery_id)),
    )


def document_webhooks(app: FastAPI) -> None:
    """Describe the outgoing requests under OpenAPI ``webhooks`` (body schemas, headers)."""
    headers = (
        "Headers: `webhook-id` (the event id, the same on every retry: deduplicate on it), "
        "`webhook-timestamp` (Unix seconds), `webhook-signature` (`v1,<base64 HMAC-SHA256>`, "
        "space-separated when a secret is being rotated). Answer 2xx within 15 s. A subscription's "
        "`format` other than `standard` (slack, teams, email) receives a readable message built from "
        "this event instead of its JSON."
    )

    def doc(name: str, model: type, summary: str) -> None:
        def endpoint(body: object) -> None:
            return None

        endpoint.__annotations__["body"] = model  # a real class (this module has postponed annotations)
        endpoint.__doc__ = f"{summary}\n\n{headers}"
        operation = name.replace(".", "_").replace("-", "_") + "_event"  # alert_created_event
        app.webhooks.post(name, summary=summary, tags=["webhooks"], operation_id=operation)(endpoint)

    for event_type, spec in EVENTS.items():
        doc(event_type, spec.model, spec.summary)
