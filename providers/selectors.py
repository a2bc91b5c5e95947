from django.db.models import QuerySet

from organizations.models import Organization

from .models import Channel, CredentialsDecryptionError, WebhookEvent


def channel_list(*, organization: Organization) -> QuerySet[Channel]:
    return Channel.objects.filter(organization=organization).order_by("name", "id")


def channel_get(*, organization: Organization, channel_id) -> Channel:
    return Channel.objects.get(organization=organization, pk=channel_id)


def channel_get_by_token(*, kind: str, token: str) -> Channel | None:
    return Channel.objects.select_related("organization").filter(kind=kind, webhook_token=token).first()


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
