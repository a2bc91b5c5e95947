"""A realistic inbox for screenshots and browser tests: several channels, teams, labels, canned
responses, conversations in every state, a thread with notes, system events, an image and a failure."""

import struct
import zlib
from datetime import timedelta

from django.core.files.base import ContentFile
from django.utils import timezone

from inbox.models import Attachment
from organizations.models import Role
from tests.factories import (
    CannedResponseFactory,
    ChannelFactory,
    ContactFactory,
    ContactIdentityFactory,
    ConversationFactory,
    LabelFactory,
    MembershipFactory,
    MessageFactory,
    TeamFactory,
    UserFactory,
)


def png(width: int = 480, height: int = 300) -> bytes:
    """A small PNG (a soft gradient with a parcel-coloured block) written without an image library."""
    rows = []
    for y in range(height):
        row = bytearray([0])
        for x in range(width):
            inside = 150 < x < 330 and 80 < y < 220
            if inside:
                row += bytes((196, 150, 96)) if not (236 < x < 244 or 146 < y < 154) else bytes((150, 110, 64))
            else:
                row += bytes((225 - y // 6, 232 - y // 8, 245 - x // 20))
        rows.append(bytes(row))
    raw = zlib.compress(b"".join(rows), 9)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def seed_inbox(org, agent):
    """Returns the showcase conversation (Ana's, on WhatsApp)."""
    now = timezone.now()
    agent.first_name, agent.last_name = "Maya", "Chen"
    agent.save()
    lead = UserFactory(username="leo@acme.test", first_name="Leo", last_name="Park")
    MembershipFactory(user=lead, organization=org, role=Role.ADMIN)
    support = TeamFactory(organization=org, name="Support")
    TeamFactory(organization=org, name="Billing")
    vip = LabelFactory(organization=org, name="vip", color="#7a4ff0")
    refund = LabelFactory(organization=org, name="refund", color="#d0344c")
    shipping = LabelFactory(organization=org, name="shipping", color="#2a9ed8")
    CannedResponseFactory(organization=org, shortcut="thanks", text="Thanks for reaching out! Happy to help.")
    CannedResponseFactory(organization=org, shortcut="hours", text="We're here Monday to Friday, 9:00-18:00 CET.")
    wa = ChannelFactory(organization=org, kind="whatsapp_cloud", name="WhatsApp Support")
    sms = ChannelFactory(organization=org, kind="twilio_sms", name="SMS US")
    tg = ChannelFactory(organization=org, kind="telegram", name="Telegram Bot")

    def person(name, value, kind="phone"):
        contact = ContactFactory(organization=org, name=name)
        ContactIdentityFactory(contact=contact, kind=kind, value=value)
        return contact

    ana = person("Ana Souza", "+5511987654321")
    ContactIdentityFactory(contact=ana, kind="telegram", value="84412337")
    showcase = ConversationFactory(
        organization=org, channel=wa, contact=ana, assignee=agent, team=support, priority="high",
        last_activity_at=now - timedelta(minutes=2), last_inbound_at=now - timedelta(minutes=2), unread_count=0,
        last_message_preview="Here is the box, the corner is crushed",
        first_response_at=now - timedelta(minutes=31),
    )
    showcase.labels.set([shipping, vip])

    def msg(conversation, text, minutes_ago, **kw):
        return MessageFactory(conversation=conversation, text=text, created_at=now - timedelta(minutes=minutes_ago), **kw)

    msg(showcase, "Hi! My order #4417 arrived today but the package looks damaged", 38)
    msg(showcase, "Assigned to Maya Chen by Leo Park", 35, direction="out", private=True, type="system", status="sent")
    msg(showcase, "Hi Ana, I'm sorry to hear that! Could you send a photo of the box?", 31, direction="out",
        sender=agent, status="read", sent_at=now - timedelta(minutes=31), delivered_at=now - timedelta(minutes=30),
        read_at=now - timedelta(minutes=29))
    photo = msg(showcase, "Here is the box, the corner is crushed", 3, type="media")
    attachment = Attachment(organization=org, message=photo, filename="box.png", content_type="image/png",
                            status=Attachment.Status.STORED)
    data = png()
    attachment.size = len(data)
    attachment.file.save("box.png", ContentFile(data), save=True)
    msg(showcase, "Customer is VIP: offer a replacement with express shipping, no need to return the item.", 2,
        direction="out", private=True, sender=lead, status="sent")
    msg(showcase, "Thanks Ana, a replacement ships today with express delivery", 1, direction="out", sender=agent,
        status="failed", error_code="131026", error_reason="Message Undeliverable.: Receiver is incapable of receiving this message")
    showcase.last_message_preview = "Thanks Ana, a replacement ships today with express delivery"
    showcase.last_activity_at = now - timedelta(minutes=1)
    showcase.save()

    others = [
        ("Jonas Weber", "+4915112345678", wa, "Do you ship to Austria?", 6, 2, None, "none", [], 4),
        ("Priya Raman", "+14155550188", sms, "Can I change my delivery address?", 14, 1, None, "medium", [shipping], 20),
        ("Tomás García", "84412999", tg, "The invoice shows the wrong VAT number", 45, 3, lead, "urgent", [refund], 50),
        ("Mei Lin", "+6591234567", wa, "Thank you, all good now!", 90, 0, agent, "none", [], 100),
        ("Olu Adeyemi", "+2348031234567", wa, "Is the blue one back in stock?", 60 * 27, 1, None, "low", [], 60 * 27),
        ("Sara Novak", "+38640123456", sms, "STOP sending me promos please", 60 * 5, 0, agent, "none", [], 60 * 5),
    ]
    for name, value, channel, text, ago, unread, assignee, priority, labels, inbound_ago in others:
        contact = person(name, value, "telegram" if channel.kind == "telegram" else "phone")
        conversation = ConversationFactory(
            organization=org, channel=channel, contact=contact, assignee=assignee, priority=priority,
            last_activity_at=now - timedelta(minutes=ago), last_inbound_at=now - timedelta(minutes=inbound_ago),
            unread_count=unread, last_message_preview=text,
            first_response_at=(now - timedelta(minutes=ago - 3)) if assignee else None,
        )
        conversation.labels.set(labels)
        msg(conversation, text, ago + 4 if assignee else ago)
        if assignee:
            msg(conversation, "On it, one moment please.", ago - 3 if ago > 3 else 0, direction="out",
                sender=assignee, status="delivered")
    return showcase


