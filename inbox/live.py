"""Live event payloads, rendered by the same serializers as the REST API (CONTRACT.md).

Build the payload inside the transaction, publish it on commit: a rollback sends nothing.
"""

from django.db import transaction

from channels_app.publish import organization_group, publish


def _event(kind: str, data: dict) -> dict:
    return {"type": kind, "v": 1, "data": data}


def message_payload(message) -> dict:
    from inbox.api.serializers import MessageSerializer

    return MessageSerializer(message).data


def conversation_payload(conversation) -> dict:
    from inbox.api.serializers import ConversationSerializer

    return ConversationSerializer(conversation).data


def publish_on_commit(organization_id: int, kind: str, data: dict) -> None:
    event = _event(kind, data)
    transaction.on_commit(lambda: publish(organization_group(organization_id), event))


def message_changed(message, *, created: bool) -> None:
    publish_on_commit(
        message.organization_id, "message.created" if created else "message.updated", message_payload(message)
    )


def conversation_changed(conversation, *, created: bool) -> None:
    publish_on_commit(
        conversation.organization_id,
        "conversation.created" if created else "conversation.updated",
        conversation_payload(conversation),
    )
