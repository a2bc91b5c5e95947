"""send() through anymail's own backends against the local FakeEsp, and over SMTP to aiosmtpd."""

import pytest

from providers.base import DeliveryStatus, OutboundMessage
from providers.email import EmailProvider
from providers.errors import AmbiguousFailure, PermanentFailure, RateLimited, TransientFailure
from providers.fakes.server import FakeResponse
from tests.factories import ChannelFactory

from .conftest import mailbox_channel

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS"),
]
KEYS = {"mailgun": "mg-key", "sendgrid": "SG.key", "postmark": "pm-token"}
REPLY = {
    "subject": "Order #4411",
    "thread_root": "<root@customer.example>",
    "in_reply_to": "<second@customer.example>",
    "references": ["<root@customer.example>", "<second@customer.example>"],
}


def provider(esp: str, fake, **config) -> EmailProvider:
    channel = ChannelFactory(
        kind="email",
        config={
            "esp": esp,
            "from_email": "support@mg.acme.example",
            "domain": "mg.acme.example",
            "api_base_url": fake.url(esp),
            **config,
        },
        credentials={"api_key": KEYS[esp]},
    )
    return EmailProvider(channel)


def out(**kwargs) -> OutboundMessage:
    values = {
        "message_id": 42,
        "to": "marta@customer.example",
        "text": "It ships today.",
        "content": dict(REPLY),
    }
    values.update(kwargs)
    return OutboundMessage(**values)


def test_mailgun_send_carries_threading_headers_and_metadata(fake_esp):
    p = provider("mailgun", fake_esp)
    result = p.send(out())
    [request] = fake_esp.received("/mailgun/v3/mg.acme.example/messages")
    fields = fake_esp.multipart_fields(request)
    assert fields["to"] == ["marta@customer.example"]
    assert fields["subject"] == ["Re: Order #4411"]
    assert fields["h:In-Reply-To"] == ["<second@customer.example>"]
    assert fields["h:References"] == ["<root@customer.example> <second@customer.example>"]
    assert fields["h:Message-Id"] == [p.message_id_for(42)]
    assert fields["v:alexia_message_id"] == ["42"]
    assert result.platform_message_id == p.message_id_for(42)  # Mailgun answers with the Message-Id used
    assert result.status is DeliveryStatus.SENT


def test_sendgrid_and_postmark_send(fake_esp):
    sg = provider("sendgrid", fake_esp).send(out())
    [request] = fake_esp.received("/sendgrid/v3/mail/send")
    body = request.json
    assert body["headers"]["In-Reply-To"] == "<second@customer.example>"
    assert body["personalizations"][0]["to"] == [{"email": "marta@customer.example"}]
    assert body["custom_args"]["alexia_message_id"] == "42"
    assert (
        sg.platform_message_id == body["personalizations"][0]["custom_args"]["anymail_id"]
    )  # anymail's own id, seen in events

    pm = provider("postmark", fake_esp).send(out(content={}))
    [request] = fake_esp.received("/postmark/email")
    assert request.json["Subject"].startswith("Message from ")
    assert request.json["Metadata"] == {"alexia_message_id": "42"}
    assert len(pm.platform_message_id) == 36  # Postmark's MessageID uuid


def test_esp_errors_are_typed(fake_esp):
    p = provider("postmark", fake_esp)
    with pytest.raises(PermanentFailure) as info:
        p.send(out(to="gone@example.net"))
    assert info.value.code == "recipient_rejected"

    fake_esp.fail_next(
        1, FakeResponse(429, {"ErrorCode": 429, "Message": "Rate limit"}, headers={"Retry-After": "9"})
    )
    with pytest.raises(RateLimited) as limited:
        p.send(out())
    assert limited.value.retry_after == 9.0

    fake_esp.fail_next(1, FakeResponse(503, "upstream down", content_type="text/plain"))
    with pytest.raises(TransientFailure):
        p.send(out())

    wrong_key = provider("mailgun", fake_esp)
    wrong_key.credentials["api_key"] = "nope"
    with pytest.raises(PermanentFailure) as denied:
        wrong_key.send(out())
    assert denied.value.code == "http_401" and denied.value.channel_error

    unknown_domain = provider("mailgun", fake_esp, domain="other.example")
    with pytest.raises(PermanentFailure) as missing:
        unknown_domain.send(out())
    assert "Domain not found" in missing.value.reason


def test_esp_timeout_is_ambiguous(fake_esp, settings):
    settings.PROVIDER_HTTP_TIMEOUT = 0.3
    fake_esp.delay_next(1, 1.0)
    with pytest.raises(AmbiguousFailure):
        provider("sendgrid", fake_esp).send(out())


def test_check_calls_the_esp(fake_esp):
    assert provider("mailgun", fake_esp).check().ok
    bad = provider("postmark", fake_esp)
    bad.credentials["api_key"] = "wrong"
    result = bad.check()
    assert not result.ok and "401" in result.detail


def test_smtp_send_and_refusals(smtp_server, org):
    controller, sink = smtp_server
    p = EmailProvider(mailbox_channel(smtp_port=controller.port))
    result = p.send(out(attachments=({"path": __file__, "content_type": "text/x-python"},)))
    [mail] = sink.wait(1)
    assert result.platform_message_id == mail["Message-ID"] == p.message_id_for(42)
    assert mail["References"] == "<root@customer.example> <second@customer.example>"
    assert [part.get_filename() for part in mail.iter_attachments()] == ["test_send.py"]

    sink.refuse["nobody@customer.example"] = "550 5.1.1 User unknown"
    with pytest.raises(PermanentFailure) as info:
        p.send(out(to="nobody@customer.example"))
    assert info.value.code == "smtp_550"
    sink.refuse["busy@customer.example"] = "451 4.3.0 Try again later"
    with pytest.raises(TransientFailure):
        p.send(out(to="busy@customer.example"))


def test_smtp_unreachable_is_transient(org):
    closed = mailbox_channel(smtp_port=1)
    with pytest.raises(TransientFailure):
        EmailProvider(closed).send(out())
