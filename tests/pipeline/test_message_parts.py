"""An agent message is split where the platform carries one attachment per message."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from inbox.models import ContactIdentity, Message
from inbox.services.messages import message_create_outbound

from ..factories import ChannelFactory, ContactFactory, ConversationFactory

pytestmark = pytest.mark.django_db


def _conversation(org, kind, identity_kind, value):
    channel = ChannelFactory(organization=org, kind=kind)
    contact = ContactFactory(organization=org)
    ContactIdentity.objects.create(
        organization=org, contact=contact, kind=identity_kind, value=value, channel=channel
    )
    return ConversationFactory(organization=org, channel=channel, contact=contact)


def _files(n):
    return [
        {
            "file": SimpleUploadedFile(f"f{i}.png", b"\x89PNG" + bytes([i])),
            "filename": f"f{i}.png",
            "content_type": "image/png",
            "size": 5,
        }
        for i in range(n)
    ]


def test_messenger_text_with_an_image_becomes_two_messages(org, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    conversation = _conversation(org, "messenger", "messenger", "PSID-9")
    message, created = message_create_outbound(
        conversation=conversation, text="Here is the photo", attachments=_files(1), idempotency_key="k1"
    )
    assert created and message.text == "Here is the photo" and message.attachments.count() == 0
    parts = list(Message.objects.filter(conversation=conversation, direction="out").order_by("id"))
    assert [p.attachments.count() for p in parts] == [1, 0]
    # The same request again creates nothing more.
    again, created_again = message_create_outbound(
        conversation=conversation, text="Here is the photo", attachments=_files(1), idempotency_key="k1"
    )
    assert again.pk == message.pk and not created_again
    assert Message.objects.filter(conversation=conversation, direction="out").count() == 2


def test_whatsapp_keeps_a_caption_but_splits_several_files(org, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    conversation = _conversation(org, "whatsapp_cloud", "phone", "+15550009999")
    message_create_outbound(conversation=conversation, text="One photo", attachments=_files(1))
    assert Message.objects.filter(conversation=conversation).count() == 1
    message_create_outbound(conversation=conversation, text="Three photos", attachments=_files(3))
    assert Message.objects.filter(conversation=conversation).count() == 1 + 4


def test_twilio_sends_several_files_in_one_message(org, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    conversation = _conversation(org, "twilio_sms", "phone", "+15550008888")
    message, _ = message_create_outbound(conversation=conversation, text="Receipts", attachments=_files(2))
    assert message.attachments.count() == 2
    assert Message.objects.filter(conversation=conversation).count() == 1
