import time

from django.conf import settings
from django.db.models import QuerySet

from organizations.models import Organization

from .models import Channel, CredentialsDecryptionError, WebhookEvent


def channel_list(*, organization: Organization) -> QuerySet[Channel]:
    return Channel.objects.filter(organization=organization).order_by("name", "id")


def channel_get(*, organization: Organization, channel_id) -> Channel:
    return Channel.objects.get(organization=organization, pk=channel_id)


# Webhook intake looks the channel up on every delivery; a few seconds of staleness (a channel just
# paused, a secret just rotated) is the price of one query less per request (bench/, docs/performance.md).
_by_token: dict[tuple[str, str], tuple[float, Channel | None]] = {}


def channel_get_by_token(*, kind: str, token: str, cached: bool = False) -> Channel | None:
    if cached:
        hit = _by_token.get((kind, token))
        if hit is not None and time.monotonic() - hit[0] < settings.WEBHOOK_CHANNEL_CACHE_SECONDS:
            return hit[1]
    channel = Channel.objects.select_related("organization").filter(kind=kind, webhook_token=token).first()
    if cached:
        if len(_by_token) > 10_000:
            _by_token.clear()
        _by_token[(kind, token)] = (time.monotonic(), channel)
    return channel


def webhook_event_list(*, organization: Organization) -> QuerySet[WebhookEvent]:
    return WebhookEvent.objects.filter(organization=organization)


def channel_credentials_canary_ok() -> bool:
    """True when the newest channel's credentials decrypt (a wrong FIELD_ENCRYPTION_KEY is loud)."""
    channel = Channel.objects.exclude(credentials_encrypted="").order_by("-id").first()
    if channel is None:
        return True
    try:
        channel.credentials  # noqa: B018 - decrypting is the check
    except CredentialsDecryptionError:
        return False
    return True
