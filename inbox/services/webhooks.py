"""Webhook intake and processing: verify, record, answer, process later (CONVENTIONS.md §4)."""

import hashlib
import logging
import time
from contextlib import nullcontext
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from inbox.errors import MessageNotYetKnown
from providers.base import ContactEvent, InboundMessage, StatusUpdate
from providers.errors import MalformedPayloadError
from providers.models import Channel, WebhookEvent
from providers.registry import get_provider

from .messages import contact_event_apply, message_receive, message_status_apply

logger = logging.getLogger(__name__)

# Headers worth keeping with the raw body (for parsing, replay and debugging). Cookies, credentials
# and shared secrets (Telegram sends its secret token as a header) never are.
DROPPED_HEADERS = {"cookie", "authorization", "proxy-authorization", "x-telegram-bot-api-secret-token"}
RECEIVED_AT_HEADER = "x-alexia-received-at"
# Which of the channel's URLs received it (inbound or tracking): e-mail ESPs post both to one provider.
ENDPOINT_HEADER = "x-alexia-endpoint"
# How long a status for an unknown platform id is retried (its send's commit may be in flight).
UNKNOWN_STATUS_GRACE = timedelta(minutes=2)


def kept_headers(meta_headers) -> dict:
    return {k.lower(): v for k, v in meta_headers.items() if k.lower() not in DROPPED_HEADERS}


def body_event_id(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def webhook_event_record(
    *, channel: Channel, endpoint: str, event_id: str | None, body: bytes, headers: dict, content_type: str
) -> tuple[WebhookEvent, bool]:
    """Store a verified delivery once (unique per channel, endpoint and event id) and queue it.

    Returns (event, created). A redelivery returns the stored event and queues nothing.
    """
    from inbox.webhooks.dispatch import dispatcher

    now = timezone.now()
    headers = {**headers, RECEIVED_AT_HEADER: now.isoformat(), ENDPOINT_HEADER: endpoint}
    event_id = (event_id or body_event_id(body))[:255]
    # One INSERT, committed on its own: outside a caller's transaction no BEGIN/COMMIT round trips
    # (measured: a third of intake's wait on PostgreSQL); inside one, a savepoint, so a duplicate does
    # not break the caller's transaction.
    try:
        with transaction.atomic() if transaction.get_connection().in_atomic_block else nullcontext():
            event = WebhookEvent.objects.create(
                organization_id=channel.organization_id,
                channel=channel,
                endpoint=endpoint,
                event_id=event_id,
                body=body,
                headers=headers,
                content_type=content_type[:200],
            )
            transaction.on_commit(lambda: dispatcher.add(event.pk))  # at once in autocommit
    except IntegrityError:
        return WebhookEvent.objects.get(channel=channel, endpoint=endpoint, event_id=event_id), False
    if channel.last_webhook_at is None or now - channel.last_webhook_at > timedelta(minutes=1):
        Channel.objects.filter(pk=channel.pk).update(last_webhook_at=now)
        # The channel may be intake's cached object: stamp it too, or every delivery would write again.
        channel.last_webhook_at = now
    return event, True


def _finish(event: WebhookEvent, status: str, error: str, started: float) -> None:
    event.status = status
    event.error = error
    event.processed_at = timezone.now()
    event.processing_ms = int((time.monotonic() - started) * 1000)
    event.save(update_fields=["status", "error", "processed_at", "processing_ms", "attempts"])


def webhook_event_process(*, event_id: int) -> str:
    """Parse a stored delivery and apply every item in it; returns the event's final status.

    Holds the event's row lock, so two workers never process one event. Each item is applied in its
    own savepoint and every apply is idempotent, so replaying a partly failed event is safe. A status
    for a platform id we do not know yet raises MessageNotYetKnown while the event is young (the task
    retries); after that grace period it is recorded and skipped.
    """
    started = time.monotonic()
    with transaction.atomic():
        event = (
            WebhookEvent.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("channel")
            .filter(pk=event_id)
            .first()
        )
        if event is None or event.status in (WebhookEvent.Status.PROCESSED, WebhookEvent.Status.IGNORED):
            return event.status if event else "locked"
        event.attempts += 1
        channel = event.channel
        if channel.status == Channel.Status.PAUSED:
            _finish(event, WebhookEvent.Status.IGNORED, "channel paused", started)
            return event.status
        provider = get_provider(channel)
        try:
            items = provider.parse(bytes(event.body), dict(event.headers))
        except MalformedPayloadError as exc:
            _finish(event, WebhookEvent.Status.FAILED, f"malformed: {exc}", started)
            return event.status
        errors: list[str] = []
        unknown: list[str] = []
        for item in items:
            try:
                with transaction.atomic():
                    if isinstance(item, InboundMessage):
                        message_receive(channel=channel, inbound=item, received_at=event.received_at)
                    elif isinstance(item, StatusUpdate):
                        message_status_apply(channel=channel, update=item)
                    elif isinstance(item, ContactEvent):
                        contact_event_apply(channel=channel, event=item)
            except MessageNotYetKnown as exc:
                unknown.append(str(exc))
            except Exception as exc:  # noqa: BLE001 - one bad item must not lose the rest of the batch
                logger.exception("webhook event %s: item failed", event.pk)
                errors.append(f"{type(exc).__name__}: {exc}")
        if unknown and timezone.now() - event.received_at < UNKNOWN_STATUS_GRACE:
            event.save(update_fields=["attempts"])
            raise MessageNotYetKnown(",".join(unknown))
        if errors:
            _finish(event, WebhookEvent.Status.FAILED, "\n".join(errors)[:5000], started)
        else:
            note = f"status for unknown message ids skipped: {', '.join(unknown)}" if unknown else ""
            _finish(event, WebhookEvent.Status.PROCESSED, note[:5000], started)
        return event.status


def webhook_event_replay(*, event: WebhookEvent) -> None:
    """Process a failed (or any) event again; every apply is idempotent."""
    from inbox.tasks import webhook_event_process_task

    with transaction.atomic():
        WebhookEvent.objects.filter(pk=event.pk).update(status=WebhookEvent.Status.RECEIVED, error="")
        transaction.on_commit(lambda: webhook_event_process_task.delay(event.pk))


def webhook_event_sweep(*, older_than: timedelta = timedelta(minutes=1)) -> int:
    """Queue again events still `received` after older_than (their task was lost, e.g. Redis restart)."""
    from inbox.tasks import webhook_event_process_task

    ids = list(
        WebhookEvent.objects.filter(
            status=WebhookEvent.Status.RECEIVED, received_at__lt=timezone.now() - older_than
        ).values_list("pk", flat=True)[:1000]
    )
    for pk in ids:
        webhook_event_process_task.delay(pk)
    return len(ids)
