"""A mailbox channel end to end, against a real Dovecot (IMAP) and a real aiosmtpd (SMTP) server.

The customer's mail is delivered into the IMAP mailbox (APPEND), polled by email_poll() into the
webhook-event log and processed by the real pipeline; the agent's reply goes out through the real
three-step send over SMTP; the customer's answer to it lands in the same conversation.
"""

import imaplib
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import pytest
from django.utils import timezone

from inbox.models import Attachment, Conversation, Message
from inbox.services.attachments import attachment_download
from inbox.services.email_polling import email_poll, email_poll_channel_ids
from inbox.services.messages import message_create_outbound, message_send
from inbox.services.webhooks import webhook_event_process
from providers.models import WebhookEvent
from providers.registry import get_provider

from .conftest import MAILBOX_PASSWORD, MAILBOX_USER, mailbox_channel

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS"),
]
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def deliver(dovecot, message: EmailMessage) -> None:
    """Put a mail into the channel's mailbox, as the customer's MTA would have."""
    client = imaplib.IMAP4("127.0.0.1", dovecot.port)
    try:
        client.login(MAILBOX_USER, MAILBOX_PASSWORD)
        status, _ = client.append("INBOX", None, None, message.as_bytes())
        assert status == "OK"
    finally:
        client.logout()


def customer_mail(subject: str, text: str, **headers) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = "Marta Ruiz <marta@customer.example>"
    mail["To"] = f"Acme Support <{MAILBOX_USER}>"
    mail["Subject"] = subject
    mail["Date"] = format_datetime(timezone.now())
    mail["Message-ID"] = make_msgid(domain="customer.example")
    for name, value in headers.items():
        mail[name.replace("_", "-")] = value
    mail.set_content(text)
    return mail


def poll_and_process(channel) -> list[WebhookEvent]:
    before = set(WebhookEvent.objects.filter(channel=channel).values_list("pk", flat=True))
    email_poll(channel_id=channel.pk)
    events = list(WebhookEvent.objects.filter(channel=channel).exclude(pk__in=before).order_by("pk"))
    for event in events:
        assert webhook_event_process(event_id=event.pk) == WebhookEvent.Status.PROCESSED, event.error
    return events


def email_reply_content(message: Message) -> dict:
    """What the pipeline puts in an e-mail reply's content (docs/channels/email.md, "Pipeline")."""
    conversation = message.conversation
    last_in = conversation.messages.filter(direction="in").order_by("-created_at", "-id").first()
    email = last_in.content["email"]
    return {
        **message.content,
        "subject": conversation.subject or email["subject"],
        "thread_root": conversation.thread_key,
        "in_reply_to": email["message_id"],
        "references": [*email["references"], email["message_id"]],
    }


def test_customer_mail_reply_and_answer_share_one_conversation(dovecot, smtp_server, org, agent):
    controller, sink = smtp_server
    channel = mailbox_channel(smtp_port=controller.port, imap_port=dovecot.port)
    assert channel.pk in email_poll_channel_ids()

    # 1. The customer writes; the poll stores the mail and the pipeline opens a conversation.
    first = customer_mail(
        "Order #4411 has not arrived",
        "Hello, my order #4411 has not arrived yet.\n\n-- \nMarta Ruiz\nCustomer since 2019\n",
    )
    first.add_attachment(PNG, maintype="image", subtype="png", filename="label.png")
    deliver(dovecot, first)
    [event] = poll_and_process(channel)
    assert event.event_id.startswith("imap:") and event.headers["content-type"] == "message/rfc822"
    assert email_poll(channel_id=channel.pk) == 0  # already stored: not fetched twice

    conversation = Conversation.objects.get(channel=channel)
    assert conversation.thread_key == first["Message-ID"]
    inbound = conversation.messages.get(direction="in")
    assert inbound.platform_message_id == first["Message-ID"]
    assert inbound.text == "Hello, my order #4411 has not arrived yet."  # signature trimmed
    assert "Customer since 2019" in inbound.content["text_full"]
    assert conversation.contact.identities.get().value == "marta@customer.example"
    assert conversation.contact.name == "Marta Ruiz"

    # The attachment's bytes come out of the stored mail itself.
    attachment = inbound.attachments.get()
    assert attachment_download(attachment_id=attachment.pk) == Attachment.Status.STORED
    attachment.refresh_from_db()
    assert attachment.file.read() == PNG and attachment.content_type == "image/png"

    # 2. The agent replies; the real three-step send delivers it over SMTP.
    reply, _ = message_create_outbound(
        conversation=conversation, text="Sorry, Marta! It ships today.", sender=agent
    )
    Message.objects.filter(pk=reply.pk).update(content=email_reply_content(reply))
    outcome = message_send(message_id=reply.pk)
    assert outcome.status == "sent", outcome.detail
    [sent] = sink.wait(1)
    assert sink.logins == [MAILBOX_USER]
    assert sink.envelopes[0].rcpt_tos == ["marta@customer.example"]
    assert sent["In-Reply-To"] == first["Message-ID"]
    assert sent["References"] == first["Message-ID"]
    assert sent["Subject"] == "Re: Order #4411 has not arrived"
    assert sent["From"] == f"Acme Support <{MAILBOX_USER}>"
    reply.refresh_from_db()
    assert reply.status == Message.Status.SENT
    assert reply.platform_message_id == sent["Message-ID"]
    assert sent["Message-ID"] == get_provider(channel).message_id_for(reply.pk)
    assert sent.get_body(preferencelist=("plain",)).get_content().strip() == "Sorry, Marta! It ships today."

    # 3. The customer answers the reply; her client threads it with the headers we sent.
    answer = customer_mail(
        "Re: Order #4411 has not arrived",
        "Great, thanks!\n\nOn Mon, 3 Mar 2025 at 10:00, Acme Support <support@acme.example> wrote:\n"
        "> Sorry, Marta! It ships today.\n",
        In_Reply_To=sent["Message-ID"],
        References=f"{sent['References']} {sent['Message-ID']}",
    )
    deliver(dovecot, answer)
    poll_and_process(channel)
    assert Conversation.objects.filter(channel=channel).count() == 1
    latest = conversation.messages.filter(direction="in").order_by("-created_at", "-id").first()
    assert latest.platform_message_id == answer["Message-ID"]
    assert latest.text == "Great, thanks!"
    assert latest.content["email"]["reply_to_our_message"] == reply.pk
    assert latest.content["email"]["in_reply_to"] == [sent["Message-ID"]]


def test_poll_records_a_bad_login_on_the_channel(dovecot, smtp_server, org):
    controller, _ = smtp_server
    channel = mailbox_channel(smtp_port=controller.port, imap_port=dovecot.port)
    channel.credentials = {"username": MAILBOX_USER, "password": "wrong"}
    channel.save()
    assert email_poll(channel_id=channel.pk) == 0
    channel.refresh_from_db()
    assert "IMAP login refused" in channel.last_error


def test_check_logs_in_to_both_servers(dovecot, smtp_server, org):
    controller, sink = smtp_server
    channel = mailbox_channel(smtp_port=controller.port, imap_port=dovecot.port)
    result = get_provider(channel).check()
    assert result.ok, result.detail
    assert "SMTP 127.0.0.1" in result.detail and "IMAP 127.0.0.1 INBOX ok" in result.detail
    assert sink.logins == [MAILBOX_USER]
