"""Reads for the widget. A visitor sees only their own conversation on the channel whose token they hold."""

from django.db.models import QuerySet

from inbox.models import ContactIdentity, Conversation, Message
from providers.models import Channel
from providers.webchat import IDENTITY_KIND


def visitor_identity(*, channel: Channel, visitor: str) -> ContactIdentity | None:
    return (
        ContactIdentity.objects.select_related("contact")
        .filter(organization_id=channel.organization_id, kind=IDENTITY_KIND, value=visitor)
        .first()
    )


def visitor_conversation(*, channel: Channel, visitor: str) -> Conversation | None:
    identity = visitor_identity(channel=channel, visitor=visitor)
    if identity is None:
        return None
    return Conversation.objects.filter(
        organization_id=channel.organization_id,
        channel=channel,
        contact_id=identity.contact_id,
        thread_key="",
    ).first()


def visitor_messages(
    *, channel: Channel, visitor: str, after_id: int = 0, limit: int = 200
) -> QuerySet[Message]:
    """The visitor's messages, oldest first: never private notes nor system events."""
    conversation = visitor_conversation(channel=channel, visitor=visitor)
    if conversation is None:
        return Message.objects.none()
    qs = (
        Message.objects.filter(
            organization_id=channel.organization_id, conversation=conversation, private=False
        )
        .exclude(type=Message.Type.SYSTEM)
        .filter(pk__gt=after_id)
        .prefetch_related("attachments")
        .order_by("created_at", "id")
    )
    return qs[:limit]


def visitor_outbound_ids(*, channel: Channel, visitor: str, message_ids: list[int]) -> list[int]:
    """Those of message_ids that are agent messages to this visitor (receipts for others are dropped)."""
    conversation = visitor_conversation(channel=channel, visitor=visitor)
    if conversation is None or not message_ids:
        return []
    return sorted(
        Message.objects.filter(
            conversation=conversation, pk__in=message_ids, direction=Message.Direction.OUT, private=False
        ).values_list("pk", flat=True)
    )
