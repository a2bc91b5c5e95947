"""Polling the IMAP mailbox of e-mail channels (esp `imap` / `smtp`) into the webhook-event log.

Each new mail is stored as a WebhookEvent (endpoint "inbound", event id "imap:<uidvalidity>:<uid>")
with its raw RFC 822 bytes, exactly like a webhook delivery, and then processed by the same pipeline
(webhook_event_process -> EmailProvider.parse -> message_receive). The event log is the cursor: a UID
already stored is not fetched again, so a crash between fetch and store only refetches.
"""

import logging

from django.core.cache import cache
from django.db.models import Q
from django.utils import timezone

from providers.email.provider import IMAP_HEADER, MAILBOX_ESPS
from providers.errors import ProviderError
from providers.models import Channel, WebhookEvent
from providers.registry import get_provider

from .webhooks import webhook_event_record

logger = logging.getLogger(__name__)
LOCK_SECONDS = 300


def email_poll_channel_ids() -> list[int]:
    """Active e-mail channels that read a mailbox over IMAP."""
    return list(
        Channel.objects.filter(kind="email", status=Channel.Status.ACTIVE)
        .filter(Q(config__esp__in=list(MAILBOX_ESPS)))
        .exclude(Q(config__imap_host="") | Q(config__imap_host__isnull=True))
        .values_list("pk", flat=True)
    )


def email_poll(*, channel_id: int) -> int:
    """Store the mails of the last `imap_since_days` days not stored yet; returns how many were new.

    A cache lock keeps two workers from polling one mailbox at once. Connection and login problems
    are recorded on the channel (last_error) and end the poll; the next beat tries again.
    """
    channel = Channel.objects.filter(pk=channel_id, kind="email", status=Channel.Status.ACTIVE).first()
    if channel is None or (channel.config or {}).get("esp") not in MAILBOX_ESPS:
        return 0
    lock = f"alexia:email-poll:{channel.pk}"
    if not cache.add(lock, "1", timeout=LOCK_SECONDS):
        return 0
    created = 0
    try:
        provider = get_provider(channel)
        with provider.imap_mailbox() as box:
            uids = box.recent_uids(days=provider.imap_since_days, today=timezone.now().date())
            ids = {uid: f"imap:{box.uidvalidity}:{uid}" for uid in uids}
            known = set(
                WebhookEvent.objects.filter(
                    channel=channel, endpoint="inbound", event_id__in=list(ids.values())
                ).values_list("event_id", flat=True)
            )
            for uid, event_id in ids.items():
                if event_id in known:
                    continue
                raw = box.fetch(uid)
                if raw is None:
                    continue
                created += int(
                    email_event_store(channel=channel, uidvalidity=box.uidvalidity, uid=uid, raw=raw)
                )
    except ProviderError as exc:
        logger.warning("imap polling of channel %s failed: %s", channel.pk, exc)
        Channel.objects.filter(pk=channel.pk).update(last_error=str(exc)[:2000], last_error_at=timezone.now())
    finally:
        cache.delete(lock)
    return created


def email_event_store(*, channel: Channel, uidvalidity: int, uid: int, raw: bytes) -> bool:
    """Record one fetched mail as an inbound WebhookEvent (queued for processing). True when new."""
    _, new = webhook_event_record(
        channel=channel,
        endpoint="inbound",
        event_id=f"imap:{uidvalidity}:{uid}",
        body=raw,
        headers={
            "content-type": "message/rfc822",
            "x-alexia-source": "imap",
            IMAP_HEADER: f"{uidvalidity}:{uid}",
        },
        content_type="message/rfc822",
    )
    return new
