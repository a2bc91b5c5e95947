"""Long polling for platforms that cannot reach our webhooks (Telegram bots in `polling` mode).

Each polled update is stored exactly like a webhook delivery (same WebhookEvent dedup key, same
processing task), so polling and webhooks share one code path after intake.
"""

import logging

from django.core.cache import cache

from providers.errors import ProviderError
from providers.models import Channel, WebhookEvent
from providers.registry import get_provider

from .webhooks import webhook_event_record

logger = logging.getLogger(__name__)


def _next_offset(channel: Channel) -> int | None:
    recent = WebhookEvent.objects.filter(channel=channel, endpoint="inbound").order_by("-received_at")
    ids = [int(e) for e in recent.values_list("event_id", flat=True)[:200] if e.isdigit()]
    return max(ids) + 1 if ids else None


def telegram_poll(*, channel_id: int, timeout: int = 0) -> int:
    """Fetch pending updates of one polling-mode Telegram channel; returns how many were new.

    A cache lock keeps two workers from polling one bot at once (Telegram answers 409 Conflict to a
    second concurrent getUpdates). The offset is the highest stored update_id + 1, so updates are
    confirmed to Telegram only once they are stored.
    """
    channel = Channel.objects.filter(pk=channel_id, kind="telegram", status=Channel.Status.ACTIVE).first()
    if channel is None or (channel.config or {}).get("mode") != "polling":
        return 0
    lock = f"alexia:poll:{channel.pk}"
    if not cache.add(lock, "1", timeout=timeout + 60):
        return 0
    try:
        provider = get_provider(channel)
        try:
            updates = provider.get_updates(offset=_next_offset(channel), timeout=timeout)
        except ProviderError as exc:
            logger.warning("telegram polling of channel %s failed: %s", channel.pk, exc)
            Channel.objects.filter(pk=channel.pk).update(last_error=str(exc)[:2000])
            return 0
        created = 0
        for update_id, raw in updates:
            _, new = webhook_event_record(
                channel=channel,
                endpoint="inbound",
                event_id=str(update_id),
                body=raw,
                headers={"content-type": "application/json", "x-alexia-source": "polling"},
                content_type="application/json",
            )
            created += int(new)
        return created
    finally:
        cache.delete(lock)


def polling_channel_ids() -> list[int]:
    return list(
        Channel.objects.filter(
            kind="telegram", status=Channel.Status.ACTIVE, config__mode="polling"
        ).values_list("pk", flat=True)
    )
