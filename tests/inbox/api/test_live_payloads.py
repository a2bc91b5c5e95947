"""Live events carry exactly the REST API's representation (CONTRACT.md): the payload builders reuse one
serializer per process, and must give what a fresh serializer gives, attachments and labels included."""

from inbox.api.serializers import ConversationSerializer, MessageSerializer
from inbox.live import conversation_payload, message_payload
from inbox.models import Attachment, Message

from ...factories import ConversationFactory, LabelFactory, MessageFactory


def test_payloads_equal_the_api_representation(db, org):
    conversation = ConversationFactory(organization=org, channel__organization=org)
    conversation.labels.add(LabelFactory(organization=org, name="vip"), LabelFactory(organization=org, name="bug"))
    failed = MessageFactory(
        conversation=conversation, direction=Message.Direction.OUT, status=Message.Status.FAILED,
        error_code="131047", error_reason="Re-engagement message", content={"to": "+1555", "_hold": 1},
    )
    with_file = MessageFactory(conversation=conversation, text="")
    Attachment.objects.create(
        organization=org, message=with_file, filename="a.pdf", content_type="application/pdf", size=3,
        source_url="https://example.com/a.pdf",
    )
    for message in (failed, with_file, MessageFactory(conversation=conversation)):
        message = Message.objects.get(pk=message.pk)
        assert message_payload(message) == MessageSerializer(message).data
    assert message_payload(with_file)["attachments"][0]["filename"] == "a.pdf"
    conversation.refresh_from_db()
    assert conversation_payload(conversation) == ConversationSerializer(conversation).data
    assert conversation_payload(conversation)["labels"] == ["bug", "vip"]
