"""Messages in and out: receive, create outbound, the three-step send, statuses, the sweeper."""

import logging
import random
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from billing.errors import InsufficientCredits
from billing.meters import country_for_address, message_meter
from billing.services import credit_release, credit_reserve, send_check, usage_record
from inbox import live
from inbox.errors import InboxError, MessageNotYetKnown, RetryLater
from inbox.models import Attachment, Contact, ContactIdentity, Conversation, Message
from providers import ratelimit
from providers.base import ContactEvent, DeliveryStatus, InboundMessage, OutboundMessage, StatusUpdate
from providers.errors import AmbiguousFailure, PermanentFailure, RateLimited, TransientFailure
from providers.models import Channel
from providers.registry import get_provider

logger = logging.getLogger(__name__)

# Which identity a channel kind reaches its customers by.
IDENTITY_KIND_FOR_CHANNEL = {
    "whatsapp_cloud": ContactIdentity.Kind.PHONE,
    "twilio_sms": ContactIdentity.Kind.PHONE,
    "twilio_whatsapp": ContactIdentity.Kind.PHONE,
    "telegram": ContactIdentity.Kind.TELEGRAM,
    "messenger": ContactIdentity.Kind.MESSENGER,
    "instagram": ContactIdentity.Kind.INSTAGRAM,
    "email": ContactIdentity.Kind.EMAIL,
    "webchat": ContactIdentity.Kind.WEBCHAT,
}

# Messenger and Instagram allow a human agent's reply for 7 days with the HUMAN_AGENT tag.
# https://developers.facebook.com/docs/messenger-platform/send-messages/message-tags/
HUMAN_AGENT_WINDOW = {"messenger": timedelta(days=7), "instagram": timedelta(days=7)}

# Platforms that only allow free-form replies within 24 hours of the customer's last message.
# https://developers.facebook.com/docs/whatsapp/pricing#customer-service-windows
SERVICE_WINDOW = {
    "whatsapp_cloud": timedelta(hours=24),
    "twilio_whatsapp": timedelta(hours=24),
    "messenger": timedelta(hours=24),
    "instagram": timedelta(hours=24),
}

# The order statuses move in; a status never moves backwards (platforms redeliver and reorder).
STATUS_RANK = {
    Message.Status.PENDING: 0,
    Message.Status.SENDING: 1,
    Message.Status.SENT: 2,
    Message.Status.DELIVERED: 3,
    Message.Status.READ: 4,
}
MAX_SEND_ATTEMPTS = 8
SEND_UNCONFIRMED = "send_unconfirmed"
PREVIEW_LEN = 200
# Sends are paced at 90 % of the platform's rate: a send reaches the platform a few ms after its slot,
# with jitter, so two slots exactly 1/rate apart could arrive closer than that (measured in bench/: two
# sends to one Telegram chat within one second at 1/s).
RATE_MARGIN = 0.9
# How stale a channel's last_sent_at may be (it shows activity in admin; it is not a lock).
CHANNEL_STAMP_EVERY = timedelta(minutes=1)


def _preview(message: Message) -> str:
    if message.private:
        return f"Note: {message.text}"[:PREVIEW_LEN]
    if message.text:
        return message.text[:PREVIEW_LEN]
    return f"[{message.get_type_display()}]"


def _known_empty(instance, relation: str) -> None:
    """Mark a to-many relation of a row just created as empty, so the live payload's serializer does not
    query it: Django's prefetch cache, which a related manager reads before the database (and clears
    itself when the relation changes)."""
    model = instance._meta.get_field(relation).related_model
    instance.__dict__.setdefault("_prefetched_objects_cache", {})[relation] = model.objects.none()


# --- inbound -------------------------------------------------------------------------------------------
def _identity_get_or_create(*, channel: Channel, kind: str, value: str, name: str) -> ContactIdentity:
    identity = (
        ContactIdentity.objects.select_related("contact")
        .filter(organization_id=channel.organization_id, kind=kind, value=value)
        .first()
    )
    if identity is not None:
        if name and not identity.contact.name:
            Contact.objects.filter(pk=identity.contact_id).update(name=name[:200])
            identity.contact.name = name[:200]
        return identity
    try:
        with transaction.atomic():
            contact = Contact.objects.create(organization_id=channel.organization_id, name=name[:200])
            return ContactIdentity.objects.create(
                organization_id=channel.organization_id,
                contact=contact,
                kind=kind,
                value=value,
                channel=channel,
            )
    except IntegrityError:
        # Another worker created it first: use theirs.
        return ContactIdentity.objects.select_related("contact").get(
            organization_id=channel.organization_id, kind=kind, value=value
        )


def _conversation_for_inbound(
    *, channel: Channel, contact: Contact, thread_key: str, at: datetime
) -> tuple[Conversation, bool, bool]:
    """Find or open the conversation (locked). Returns (conversation, created, reopened)."""
    thread = Conversation.objects.select_for_update().filter(channel=channel, contact=contact, thread_key=thread_key)
    conversation, created = thread.first(), False
    if conversation is None:
        try:
            with transaction.atomic():
                conversation = Conversation.objects.create(
                    organization_id=channel.organization_id,
                    channel=channel,
                    contact=contact,
                    thread_key=thread_key,
                    last_activity_at=at,
                )
                created = True
                _known_empty(conversation, "labels")
        except IntegrityError:
            conversation = thread.get()  # another worker opened it first
    # The payloads read these: reuse the objects in hand rather than fetch (and decrypt) them again.
    conversation.channel, conversation.contact = channel, contact
    reopened = False
    if not created and conversation.status in (Conversation.Status.RESOLVED, Conversation.Status.SNOOZED):
        reopened = conversation.status == Conversation.Status.RESOLVED
        conversation.status = Conversation.Status.OPEN
        conversation.snoozed_until = None
        conversation.resolved_at = None
    return conversation, created, reopened


def message_receive(
    *, channel: Channel, inbound: InboundMessage, received_at: datetime | None = None
) -> Message | None:
    """Store a customer's message once and put it in its conversation.

    Precondition: called inside the webhook event's processing (any transaction). Idempotent on
    (channel, platform_message_id): a redelivery returns the stored message and emits nothing.
    Emits message.created and conversation.created/updated on commit; queues attachment downloads.
    """
    existing = Message.objects.filter(
        channel=channel, platform_message_id=inbound.platform_message_id
    ).first()
    if inbound.is_echo:
        return existing
    if existing is not None:
        if inbound.is_edit:
            content = {**existing.content, **inbound.content, "edited": True}
            if existing.text != inbound.text or content != existing.content:
                existing.text = inbound.text
                existing.content = content
                existing.save(update_fields=["text", "content", "updated_at"])
                live.message_changed(existing, created=False)
        return existing
    if inbound.is_edit and inbound.content.get("deleted"):
        # The customer unsent a message we never received: nothing to show.
        return None

    if inbound.timestamp.year <= 1970:
        # The platform gave no time (Telegram callback queries, Twilio): use when we received it.
        inbound = replace(inbound, timestamp=received_at or timezone.now())
    with transaction.atomic():
        identity = _identity_get_or_create(
            channel=channel, kind=inbound.sender_kind, value=inbound.sender_value, name=inbound.sender_name
        )
        thread_key = inbound.thread_key
        if channel.kind == "email":
            thread_key = _email_thread_key(channel=channel, contact=identity.contact, inbound=inbound)
        conversation, created, reopened = _conversation_for_inbound(
            channel=channel, contact=identity.contact, thread_key=thread_key, at=inbound.timestamp
        )
        if created and channel.kind == "email":
            conversation.subject = str(inbound.content.get("email", {}).get("subject", ""))[:255]
        content = dict(inbound.content)
        if inbound.reply_to_platform_id:
            content["reply_to"] = inbound.reply_to_platform_id
        try:
            with transaction.atomic():
                message = Message.objects.create(
                    organization_id=channel.organization_id,
                    conversation=conversation,
                    channel=channel,
                    direction=Message.Direction.IN,
                    type=inbound.type,
                    text=inbound.text,
                    content=content,
                    status=Message.Status.RECEIVED,
                    platform_message_id=inbound.platform_message_id,
                    created_at=inbound.timestamp,
                )
        except IntegrityError:
            return Message.objects.get(channel=channel, platform_message_id=inbound.platform_message_id)
        usage_record(
            organization_id=channel.organization_id,
            meter=message_meter(channel_kind=channel.kind, direction="in"),
            quantity=1,
            idempotency_key=f"msg:{message.pk}",
            occurred_at=inbound.timestamp,
            channel_id=channel.pk,
            channel_kind=channel.kind,
            only_if_priced=True,
            force=True,
        )
        attachments = [
            Attachment(
                organization_id=channel.organization_id,
                message=message,
                filename=a.filename,
                content_type=a.content_type,
                size=a.size,
                platform_media_id=a.platform_media_id,
                source_url=a.url,
            )
            for a in inbound.attachments
        ]
        if not attachments:
            _known_empty(message, "attachments")
        else:
            Attachment.objects.bulk_create(attachments)
            ids = list(Attachment.objects.filter(message=message).values_list("id", flat=True))
            from inbox.tasks import attachment_download_task

            transaction.on_commit(lambda: [attachment_download_task.delay(i) for i in ids])
        if reopened:
            system_message_record(
                conversation, "Conversation reopened by a new message", at=inbound.timestamp
            )
        if inbound.timestamp >= conversation.last_activity_at or created:
            conversation.last_activity_at = inbound.timestamp
            conversation.last_message_preview = _preview(message)
        if conversation.last_inbound_at is None or inbound.timestamp > conversation.last_inbound_at:
            conversation.last_inbound_at = inbound.timestamp
        conversation.unread_count += 1
        conversation.save()
        live.message_changed(message, created=True)
        live.conversation_changed(conversation, created=created)
    return message


EMAIL_SUBJECT_FALLBACK_DAYS = 30


def _email_thread_key(*, channel: Channel, contact: Contact, inbound: InboundMessage) -> str:
    """Which conversation a customer's mail belongs to (providers/email/threading.py).

    In order: the thread's root Message-ID (an existing conversation with that key); the conversation
    of our own message the mail answers; a message of this channel named in References/In-Reply-To;
    the newest open conversation with this contact whose normalized subject matches (mail clients
    that drop the headers); else a new thread keyed by the mail's root id.
    """
    from providers.email.threading import subject_key

    email = inbound.content.get("email", {})
    conversations = Conversation.objects.filter(channel=channel, contact=contact)
    if inbound.thread_key and conversations.filter(thread_key=inbound.thread_key).exists():
        return inbound.thread_key
    ours = email.get("reply_to_our_message")
    if ours:
        mine = Message.objects.filter(
            pk=ours, channel=channel, direction=Message.Direction.OUT
        ).select_related("conversation")
        found = mine.filter(conversation__contact=contact).first()
        if found is not None:
            return found.conversation.thread_key
    referenced = [*email.get("references", []), *([email["in_reply_to"]] if email.get("in_reply_to") else [])]
    if referenced:
        found = (
            Message.objects.filter(
                channel=channel, platform_message_id__in=referenced, conversation__contact=contact
            )
            .select_related("conversation")
            .order_by("-created_at")
            .first()
        )
        if found is not None:
            return found.conversation.thread_key
    key = email.get("subject_key") or subject_key(email.get("subject", ""))
    if key:
        since = inbound.timestamp - timedelta(days=EMAIL_SUBJECT_FALLBACK_DAYS)
        for conversation in (
            conversations.exclude(status=Conversation.Status.RESOLVED)
            .filter(last_activity_at__gte=since)
            .order_by("-last_activity_at")[:20]
        ):
            if subject_key(conversation.subject) == key:
                return conversation.thread_key
    return inbound.thread_key


def _email_reply_content(conversation: Conversation) -> dict:
    """Reply headers for an agent's e-mail, so the customer's client threads it (RFC 5322 §3.6.4)."""
    last = (
        Message.objects.filter(
            conversation=conversation, direction=Message.Direction.IN, content__has_key="email"
        )
        .order_by("-created_at", "-id")
        .first()
    )
    email = last.content.get("email", {}) if last else {}
    parent = email.get("message_id", "")
    references = [*email.get("references", []), *([parent] if parent else [])]
    return {
        "subject": conversation.subject or email.get("subject", ""),
        "thread_root": conversation.thread_key,
        "in_reply_to": parent,
        "references": references,
    }


def system_message_record(conversation: Conversation, text: str, *, at: datetime | None = None) -> Message:
    """A private system event in the thread (assigned, resolved, reopened...). Emits message.created."""
    message = Message.objects.create(
        organization_id=conversation.organization_id,
        conversation=conversation,
        channel_id=conversation.channel_id,
        direction=Message.Direction.OUT,
        private=True,
        type=Message.Type.SYSTEM,
        text=text,
        status=Message.Status.SENT,
        created_at=at or timezone.now(),
    )
    live.message_changed(message, created=True)
    return message


WATERMARK_STATUS = {"delivered_watermark": DeliveryStatus.DELIVERED, "read_watermark": DeliveryStatus.READ}


def _watermark_apply(*, channel: Channel, identity: ContactIdentity, event: ContactEvent) -> int:
    """Meta's delivery/read watermark: every outbound message to this contact on this channel sent at
    or before the watermark moves forward (never backwards). Idempotent. Returns how many moved."""
    status = WATERMARK_STATUS[event.event]
    moved = 0
    candidates = Message.objects.filter(
        channel=channel,
        conversation__contact_id=identity.contact_id,
        direction=Message.Direction.OUT,
        private=False,
        status__in=[Message.Status.SENT, Message.Status.DELIVERED]
        if status == DeliveryStatus.READ
        else [Message.Status.SENT],
        created_at__lte=event.timestamp,
    ).values_list("pk", flat=True)
    for pk in list(candidates[:1000]):
        with transaction.atomic():
            message = Message.objects.select_for_update().get(pk=pk)
            update = StatusUpdate(
                platform_message_id=message.platform_message_id or "",
                status=status,
                timestamp=event.timestamp,
            )
            if _status_apply_locked(message, update):
                message.save()
                live.message_changed(message, created=False)
                moved += 1
    return moved


def contact_event_apply(*, channel: Channel, event: ContactEvent) -> None:
    """Blocked the bot, opted out (STOP), bounced: recorded on the identity, honoured by sends.
    Delivery/read watermarks (Messenger, Instagram) move the contact's earlier outbound messages."""
    identity = ContactIdentity.objects.filter(
        organization_id=channel.organization_id, kind=event.sender_kind, value=event.sender_value
    ).first()
    if identity is None:
        return
    if event.event in WATERMARK_STATUS:
        _watermark_apply(channel=channel, identity=identity, event=event)
        return
    field, value = {
        "blocked": ("blocked_at", event.timestamp),
        "unblocked": ("blocked_at", None),
        "opted_out": ("opted_out_at", event.timestamp),
        "opted_in": ("opted_out_at", None),
        "undeliverable": ("undeliverable_at", event.timestamp),
    }.get(event.event, (None, None))
    if field is None:
        logger.info("contact event %s ignored", event.event)
        return
    ContactIdentity.objects.filter(pk=identity.pk).update(**{field: value})


def message_status_apply(*, channel: Channel, update: StatusUpdate) -> Message | None:
    """Move an outbound message forward on a platform status; never backwards.

    failed is accepted only before delivered. A message marked send_unconfirmed (its send response
    was lost) is found by our_reference and confirmed by any later status.
    Raises MessageNotYetKnown when the platform id is unknown (the send's commit may be in flight).
    """
    with transaction.atomic():
        message = (
            Message.objects.select_for_update()
            .filter(channel=channel, platform_message_id=update.platform_message_id)
            .first()
        )
        ref = update.our_reference.removeprefix("alexia:")
        if message is None and ref:
            if ref.isdigit():
                message = (
                    Message.objects.select_for_update()
                    .filter(channel=channel, pk=int(ref), direction=Message.Direction.OUT)
                    .first()
                )
                if message is not None and not message.platform_message_id:
                    message.platform_message_id = update.platform_message_id
        if message is None:
            raise MessageNotYetKnown(update.platform_message_id)
        was_unconfirmed = message.status == Message.Status.FAILED and message.error_code == SEND_UNCONFIRMED
        if not _status_apply_locked(message, update):
            return message
        message.save()
        if was_unconfirmed and message.status != Message.Status.FAILED:
            # Its send response was lost, so step 3 never metered it: the platform's status is proof.
            _meter_sent(message, at=message.sent_at or update.timestamp)
        live.message_changed(message, created=False)
    return message


def _status_apply_locked(message: Message, update: StatusUpdate) -> bool:
    current = message.status
    unconfirmed = current == Message.Status.FAILED and message.error_code == SEND_UNCONFIRMED
    if update.status == DeliveryStatus.FAILED:
        if (
            current == Message.Status.FAILED
            or STATUS_RANK.get(current, 0) >= STATUS_RANK[Message.Status.DELIVERED]
        ):
            return False
        message.status = Message.Status.FAILED
        message.failed_at = update.timestamp
        message.error_code = update.error_code or "failed"
        message.error_reason = update.error_reason or "The platform reported the message as failed."
        return True
    new = {
        DeliveryStatus.SENT: Message.Status.SENT,
        DeliveryStatus.DELIVERED: Message.Status.DELIVERED,
        DeliveryStatus.READ: Message.Status.READ,
    }.get(update.status)
    if new is None:
        return False
    if current == Message.Status.FAILED and not unconfirmed:
        return False
    if not unconfirmed and STATUS_RANK.get(current, 0) >= STATUS_RANK[new]:
        # A late, earlier status never moves the message back, but its time is the true one for a
        # step we had filled from a later status (read arrived before delivered).
        field = {Message.Status.SENT: "sent_at", Message.Status.DELIVERED: "delivered_at"}.get(new)
        if field and getattr(message, field) and update.timestamp < getattr(message, field):
            setattr(message, field, update.timestamp)
            return True
        return False
    if unconfirmed:
        message.error_code = ""
        message.error_reason = ""
        message.failed_at = None
    message.status = new
    stamp = {
        Message.Status.SENT: "sent_at",
        Message.Status.DELIVERED: "delivered_at",
        Message.Status.READ: "read_at",
    }
    for status, field in stamp.items():
        # A skipped step (read without delivered) is filled with the later time.
        if STATUS_RANK[status] <= STATUS_RANK[new] and getattr(message, field) is None:
            setattr(message, field, update.timestamp)
    return True


# --- outbound ------------------------------------------------------------------------------------------
def recipient_identity(conversation: Conversation) -> ContactIdentity | None:
    kind = IDENTITY_KIND_FOR_CHANNEL.get(conversation.channel.kind)
    identities = ContactIdentity.objects.filter(contact_id=conversation.contact_id, kind=kind)
    return identities.filter(channel_id=conversation.channel_id).first() or identities.order_by("id").first()


def reply_window_open(conversation: Conversation, *, now: datetime | None = None) -> bool:
    window = SERVICE_WINDOW.get(conversation.channel.kind)
    if window is None:
        return True
    if conversation.last_inbound_at is None:
        return False
    return (now or timezone.now()) - conversation.last_inbound_at < window


def message_create_outbound(
    *,
    conversation: Conversation,
    text: str = "",
    template: dict | None = None,
    private: bool = False,
    attachments: list[dict] | None = None,
    sender=None,
    idempotency_key: str | None = None,
) -> tuple[Message, bool]:
    """Create an agent's or the API's message and queue its send. Returns (message, created).

    A repeated idempotency_key returns the first message (created=False) and sends nothing.
    Refuses (InboxError) when the contact opted out or blocked us, when the service window is closed
    and no template is given, or when there is nothing to send. Private notes are never sent.
    Emits message.created and conversation.updated on commit, and wakes the channel's send runner
    (inbox/services/sending.py).
    """
    organization_id = conversation.organization_id
    if idempotency_key:
        existing = Message.objects.filter(
            organization_id=organization_id, idempotency_key=idempotency_key
        ).first()
        if existing is not None:
            return existing, False
    attachments = attachments or []
    text = (text or "").strip()
    if not private and not template and _must_split(conversation.channel.kind, text, attachments):
        # The platform carries one attachment per message (and Meta: not with text): one message each,
        # the attachments first, then the text, which is the message returned.
        for index, item in enumerate(attachments):
            message_create_outbound(
                conversation=conversation,
                attachments=[item],
                sender=sender,
                idempotency_key=f"{idempotency_key}:part{index}" if idempotency_key else None,
            )
        if not text:
            return Message.objects.filter(conversation=conversation).order_by(
                "-created_at", "-id"
            ).first(), True
        attachments = []
    if not text and not template and not attachments:
        raise InboxError(
            "empty_message", "A message needs text, a template or an attachment.", status_code=400
        )
    if private and not text:
        raise InboxError("empty_message", "A private note needs text.", status_code=400)

    content: dict = {}
    if not private:
        identity = recipient_identity(conversation)
        if identity is None:
            raise InboxError("no_recipient", "The contact has no identity on this conversation's channel.")
        if identity.opted_out_at:
            raise InboxError("contact_opted_out", "The contact opted out of messages on this channel (STOP).")
        if identity.blocked_at:
            raise InboxError(
                "contact_blocked", "The contact blocked this channel; messages cannot be delivered."
            )
        human_agent = False
        if template is None and not reply_window_open(conversation):
            extended = HUMAN_AGENT_WINDOW.get(conversation.channel.kind)
            human_agent = bool(
                extended
                and conversation.last_inbound_at
                and timezone.now() - conversation.last_inbound_at < extended
            )
        if template is None and not reply_window_open(conversation) and not human_agent:
            raise InboxError(
                "window_closed",
                "The 24-hour reply window is closed: the customer last wrote more than 24 hours ago. "
                "Send an approved template instead.",
                details={"last_inbound_at": conversation.last_inbound_at, "template_required": True},
            )
        category = (template or {}).get("category", "")
        send_check(
            organization_id=organization_id,
            channel_kind=conversation.channel.kind,
            meter_hint=message_meter(channel_kind=conversation.channel.kind, category=category)
            if template
            else None,
        )
        content["to"] = identity.value
        if human_agent:
            content["human_agent"] = True
        if template:
            content["template"] = template
        if conversation.channel.kind == "email":
            content.update(_email_reply_content(conversation))

    now = timezone.now()
    try:
        with transaction.atomic():
            in_hand = conversation
            conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
            # The payloads read these: reuse the objects in hand rather than fetch (and decrypt) them again.
            for relation in ("channel", "contact"):
                if Conversation._meta.get_field(relation).is_cached(in_hand):
                    setattr(conversation, relation, getattr(in_hand, relation))
            message = Message.objects.create(
                organization_id=organization_id,
                conversation=conversation,
                channel_id=conversation.channel_id,
                direction=Message.Direction.OUT,
                private=private,
                type=Message.Type.TEMPLATE
                if template
                else (Message.Type.MEDIA if attachments else Message.Type.TEXT),
                text=text,
                content=content,
                sender=sender if getattr(sender, "is_authenticated", False) else None,
                status=Message.Status.SENT if private else Message.Status.PENDING,
                idempotency_key=idempotency_key or None,
                created_at=now,
            )
            if not attachments:
                _known_empty(message, "attachments")
            for item in attachments:
                Attachment.objects.create(
                    organization_id=organization_id,
                    message=message,
                    file=item.get("file") or "",
                    filename=item.get("filename", ""),
                    content_type=item.get("content_type", ""),
                    size=item.get("size"),
                    source_url=item.get("url", ""),
                    status=Attachment.Status.STORED if item.get("file") else Attachment.Status.PENDING,
                )
            if conversation.channel.kind == "email" and not private and not conversation.thread_key:
                # A conversation we start: our first mail's Message-ID becomes the thread root.
                conversation.thread_key = get_provider(conversation.channel).message_id_for(message.pk)
                message.content["thread_root"] = conversation.thread_key
                message.save(update_fields=["content"])
            conversation.last_activity_at = now
            conversation.last_message_preview = _preview(message)
            if not private:
                conversation.unread_count = 0
                if conversation.first_response_at is None:
                    conversation.first_response_at = now
            conversation.save()
            if not private:
                _send_queue(message)
            live.message_changed(message, created=True)
            live.conversation_changed(conversation, created=False)
    except IntegrityError:
        if idempotency_key:
            existing = Message.objects.filter(
                organization_id=organization_id, idempotency_key=idempotency_key
            ).first()
            if existing is not None:
                return existing, False
        raise
    return message, True


def _send_queue(message: Message) -> None:
    """On commit, wake the send runner of the message's channel (inbox/services/sending.py)."""
    from inbox.services.sending import channel_sends_kick

    channel_id = message.channel_id
    transaction.on_commit(lambda: channel_sends_kick(channel_id=channel_id))


# Channels whose messages carry several attachments (Twilio up to 10 MediaUrl, e-mail any number).
MULTI_ATTACHMENT_KINDS = {"twilio_sms", "twilio_whatsapp", "email"}
# Channels whose message is either text or one attachment (Meta's Send API).
TEXT_OR_ATTACHMENT_KINDS = {"messenger", "instagram"}


def _must_split(kind: str, text: str, attachments: list[dict]) -> bool:
    if len(attachments) > 1 and kind not in MULTI_ATTACHMENT_KINDS:
        return True
    return bool(attachments and text and kind in TEXT_OR_ATTACHMENT_KINDS)


def message_retry(*, message: Message) -> Message:
    """An agent retries a failed message: back to pending and queued again (same message row)."""
    with transaction.atomic():
        message = Message.objects.select_for_update().get(pk=message.pk)
        if (
            message.status != Message.Status.FAILED
            or message.direction != Message.Direction.OUT
            or message.private
        ):
            raise InboxError(
                "not_retryable", "Only a failed outbound message can be retried.", status_code=409
            )
        message.status = Message.Status.PENDING
        message.error_code = ""
        message.error_reason = ""
        message.failed_at = None
        message.attempts = 0
        message.send_after = None
        message.save()
        _send_queue(message)
        live.message_changed(message, created=False)
    return message


def _outbound_for(message: Message) -> OutboundMessage:
    attachments = []
    for a in message.attachments.all():
        item = {"content_type": a.content_type, "filename": a.filename}
        if a.file:
            from inbox.attachment_links import attachment_signed_url

            item["path"] = a.file.path
            item["url"] = attachment_signed_url(a)
        elif a.source_url:
            item["url"] = a.source_url
        attachments.append(item)
    reply_to = message.content.get("reply_to", "")
    return OutboundMessage(
        message_id=message.pk,
        to=message.content.get("to", ""),
        text=message.text,
        type=message.type,
        template=message.content.get("template"),
        attachments=tuple(attachments),
        reply_to_platform_id=reply_to,
        content=message.content,
        idempotency_key=f"alexia-msg-{message.pk}",
        status_callback_url=message.channel.webhook_url,
    )


def _estimated_units(message: Message) -> int:
    """Billable units known before sending: SMS segments (GSM-7 / UCS-2), else one message."""
    if message.channel.kind == "twilio_sms" and message.text:
        from providers.sms import count_segments

        return count_segments(message.text)
    return 1


def _backoff(attempt: int) -> float:
    return min(300.0, 2.0 ** max(attempt, 1)) * random.uniform(0.5, 1.5)


@dataclass(frozen=True)
class SendOutcome:
    status: str  # sent, failed, skipped, unconfirmed
    detail: str = ""


def message_fail(*, message_id: int, code: str, reason: str) -> None:
    with transaction.atomic():
        message = Message.objects.select_for_update().get(pk=message_id)
        if STATUS_RANK.get(message.status, 99) >= STATUS_RANK[Message.Status.DELIVERED]:
            return
        message.status = Message.Status.FAILED
        message.error_code = str(code)[:64]
        message.error_reason = reason
        message.failed_at = timezone.now()
        message.save()
        credit_release(organization_id=message.organization_id, idempotency_key=f"msg:{message.pk}")
        live.message_changed(message, created=False)


def _send_meter(message: Message) -> str:
    category = (message.content.get("template") or {}).get("category", "")
    return message_meter(channel_kind=message.channel.kind, category=category)


def sent_usage(message: Message, *, at: datetime) -> dict:
    """The usage event of an accepted send (key msg:<id>). Forced: the platform took it, so it is never
    refused."""
    return dict(
        meter=_send_meter(message),
        quantity=message.segments or 1,
        idempotency_key=f"msg:{message.pk}",
        occurred_at=at,
        channel_id=message.channel_id,
        channel_kind=message.channel.kind,
        country=country_for_address(message.content.get("to", "")),
        force=True,
    )


def _meter_sent(message: Message, *, at: datetime) -> None:
    usage_record(organization_id=message.organization_id, **sent_usage(message, at=at))


def sent_apply(message: Message, *, platform_message_id: str, segments: int | None, at: datetime) -> None:
    """The platform accepted `message` (locked by the caller): set its fields, without saving. A status
    that arrived first (delivered, read) is kept; an unconfirmed failure is overturned."""
    if STATUS_RANK.get(message.status, 99) < STATUS_RANK[Message.Status.SENT] or (
        message.status == Message.Status.FAILED and message.error_code == SEND_UNCONFIRMED
    ):
        message.status = Message.Status.SENT
        message.error_code = ""
        message.error_reason = ""
        message.failed_at = None
    message.platform_message_id = platform_message_id or message.platform_message_id
    message.sent_at = message.sent_at or at
    if segments:
        message.segments = segments


_stamped: dict[int, datetime] = {}


def channel_sent_stamp(channel_id: int, *, at: datetime) -> None:
    """Write the channel's "last sent" once a minute at most: every send of the channel updating its one
    row would make concurrent sends queue on that row's lock until each commits. A process that wrote
    it within the minute skips the statement."""
    if (previous := _stamped.get(channel_id)) is not None and timedelta(0) <= at - previous < CHANNEL_STAMP_EVERY:
        return
    Channel.objects.filter(
        Q(last_sent_at__isnull=True) | Q(last_sent_at__lt=at - CHANNEL_STAMP_EVERY), pk=channel_id
    ).update(last_sent_at=at)
    _stamped[channel_id] = at


def _mark_sent(message: Message, *, platform_message_id: str, segments: int | None, at: datetime) -> None:
    """Step 3, with the message locked: store the platform id, meter usage once, emit."""
    sent_apply(message, platform_message_id=platform_message_id, segments=segments, at=at)
    message.save()
    _meter_sent(message, at=at)
    channel_sent_stamp(message.channel_id, at=at)
    live.message_changed(message, created=False)


def send_retry_record(*, message_id: int, attempts: int, exc: TransientFailure) -> tuple[SendOutcome | None, float]:
    """After a transient failure of attempt number `attempts`: back to pending, not to be tried before
    the backoff (or the platform's Retry-After) has passed (`send_after`), or failed once
    MAX_SEND_ATTEMPTS are spent. Returns (the outcome when the send ended here, else None; the seconds
    until the next attempt). A 429 does not count as an attempt: the platform's pacing is not a failure."""
    retry_after = exc.retry_after if isinstance(exc, RateLimited) else None
    countdown = retry_after + random.uniform(0, 0.5) if retry_after else _backoff(attempts)
    with transaction.atomic():
        message = Message.objects.select_for_update().get(pk=message_id)
        if message.status != Message.Status.SENDING:
            return SendOutcome("skipped", "changed during send"), 0.0
        if isinstance(exc, RateLimited):
            message.attempts = max(0, message.attempts - 1)
        elif attempts >= MAX_SEND_ATTEMPTS:
            message.status = Message.Status.FAILED
            message.error_code = exc.code or "transient_failure"
            message.error_reason = f"Gave up after {attempts} attempts: {exc.reason}"
            message.failed_at = timezone.now()
            message.save()
            credit_release(organization_id=message.organization_id, idempotency_key=f"msg:{message.pk}")
            live.message_changed(message, created=False)
            return SendOutcome("failed", exc.reason), 0.0
        message.status = Message.Status.PENDING
        message.error_code = exc.code or ""
        message.error_reason = f"Retrying: {exc.reason}"
        message.send_after = timezone.now() + timedelta(seconds=countdown)
        message.save()
    return None, countdown


def message_send(*, message_id: int) -> SendOutcome:
    """The three-step send (CONVENTIONS.md §6). Never calls the platform inside a transaction.

    Raises RetryLater for a transient failure (the message is back to pending) or while the channel's
    rate limit is full. A permanent failure marks the message failed with the platform's reason. An
    ambiguous failure (the platform may have it) leaves it `sending` for the sweeper: never sent twice.
    """
    head = Message.objects.select_related("channel").filter(pk=message_id).first()
    if head is None or head.status != Message.Status.PENDING:
        return SendOutcome("skipped", "not pending")
    channel = head.channel
    provider = get_provider(channel)
    rate = provider.rate_limit()
    if rate:
        reservation = ratelimit.acquire(f"ch:{channel.pk}", rate=rate * RATE_MARGIN, max_wait=1.0)
        if not reservation.granted:
            raise RetryLater(reservation.wait, "channel rate limit")
        per_recipient = provider.per_recipient_rate_per_second
        recipient = head.content.get("to", "")
        if per_recipient and recipient:
            # At the channel's slot or later: the recipient's bucket records the send when it happens.
            r2 = ratelimit.acquire(
                f"ch:{channel.pk}:to:{recipient}",
                rate=per_recipient * RATE_MARGIN,
                burst=1,
                max_wait=1.0 + reservation.wait,
                not_before=reservation.wait,
            )
            if not r2.granted:
                raise RetryLater(r2.wait, "recipient rate limit")
            reservation = r2
        if reservation.wait > 0:
            time.sleep(reservation.wait)

    # Step 1: PENDING -> SENDING under a row lock; any other state means someone else has it.
    with transaction.atomic():
        message = Message.objects.select_for_update().get(pk=message_id)
        message.channel = channel  # read just before (and decrypted once): not joined again under the lock
        if message.status != Message.Status.PENDING:
            return SendOutcome("skipped", "not pending")
        if not message.channel.is_active:
            message.status = Message.Status.FAILED
            message.error_code = "channel_inactive"
            message.error_reason = f"The channel is {message.channel.status}; activate it and retry."
            message.failed_at = timezone.now()
            message.save()
            live.message_changed(message, created=False)
            return SendOutcome("failed", "channel inactive")
        try:
            credit_reserve(
                organization_id=message.organization_id,
                meter=_send_meter(message),
                quantity=_estimated_units(message),
                idempotency_key=f"msg:{message.pk}",
                channel_kind=message.channel.kind,
                country=country_for_address(message.content.get("to", "")),
            )
        except InsufficientCredits as exc:
            message.status = Message.Status.FAILED
            message.error_code = exc.code
            message.error_reason = exc.message
            message.failed_at = timezone.now()
            message.save()
            live.message_changed(message, created=False)
            return SendOutcome("failed", exc.message)
        message.status = Message.Status.SENDING
        message.sending_started_at = timezone.now()
        message.attempts += 1  # the row is locked: the value read is the current one
        message.save(update_fields=["status", "sending_started_at", "attempts", "updated_at"])
        outbound = _outbound_for(message)
        attempts = message.attempts

    # Step 2: the platform call, outside any transaction.
    try:
        result = provider.send(outbound)
    except PermanentFailure as exc:
        message_fail(message_id=message_id, code=exc.code, reason=exc.reason)
        if exc.channel_error:
            Channel.objects.filter(pk=channel.pk).update(
                status=Channel.Status.ERROR, last_error=exc.reason[:2000], last_error_at=timezone.now()
            )
        return SendOutcome("failed", exc.reason)
    except AmbiguousFailure as exc:
        Message.objects.filter(pk=message_id, status=Message.Status.SENDING).update(
            error_reason=f"Waiting for the platform to confirm ({exc.reason})."
        )
        return SendOutcome("unconfirmed", exc.reason)
    except TransientFailure as exc:
        outcome, countdown = send_retry_record(message_id=message_id, attempts=attempts, exc=exc)
        if outcome is not None:
            return outcome
        raise RetryLater(countdown, exc.reason) from exc

    # Step 3: store the platform id and status, meter, publish.
    with transaction.atomic():
        message = Message.objects.select_for_update().get(pk=message_id)
        message.channel = channel
        _mark_sent(
            message,
            platform_message_id=result.platform_message_id,
            segments=result.segments,
            at=timezone.now(),
        )
    return SendOutcome("sent", result.platform_message_id)


def message_sweep(
    *, stuck_after: timedelta = timedelta(minutes=2), pending_after: timedelta = timedelta(minutes=2)
):
    """Resolve messages whose send was interrupted, without sending anything twice.

    `sending` for longer than stuck_after: the worker died or the platform never answered. Where the
    platform can be asked (lookup), a found message is marked sent and an unknown one goes back to
    pending; elsewhere it is marked failed with code send_unconfirmed (a later status can still confirm
    it). `pending` with no activity for pending_after (its task was lost with a broker restart) is
    queued again. Returns counts.
    """
    from inbox.tasks import channel_sends_run_task

    now = timezone.now()
    counts = {"confirmed": 0, "requeued": 0, "unconfirmed": 0, "pending_requeued": 0}
    stuck = Message.objects.filter(
        status=Message.Status.SENDING, sending_started_at__lt=now - stuck_after
    ).select_related("channel")
    for message in stuck[:500]:
        provider = get_provider(message.channel)
        if provider.supports_lookup:
            try:
                found = provider.lookup(
                    _outbound_for(message), message.sending_started_at - timedelta(seconds=5)
                )
            except TransientFailure:
                continue
            with transaction.atomic():
                locked = (
                    Message.objects.select_for_update(of=("self",))
                    .select_related("channel")
                    .get(pk=message.pk)
                )
                if locked.status != Message.Status.SENDING:
                    continue
                if found is not None:
                    _mark_sent(
                        locked, platform_message_id=found.platform_message_id, segments=found.segments, at=now
                    )
                    counts["confirmed"] += 1
                else:
                    locked.status = Message.Status.PENDING
                    locked.send_after = None
                    locked.save()
                    _send_queue(locked)
                    counts["requeued"] += 1
            continue
        with transaction.atomic():
            locked = Message.objects.select_for_update().get(pk=message.pk)
            if locked.status != Message.Status.SENDING:
                continue
            locked.status = Message.Status.FAILED
            locked.error_code = SEND_UNCONFIRMED
            locked.error_reason = (
                "The platform did not confirm this message (the worker stopped or the request timed out). "
                "It may have been delivered: check with the customer before retrying."
            )
            locked.failed_at = now
            locked.save()
            live.message_changed(locked, created=False)
            counts["unconfirmed"] += 1
    # Pending with no activity, and not waiting for a retry's time: its runner was lost (a broker
    # restart, a worker killed with the task in hand). Its channel's runner is queued again.
    quiet = now - pending_after
    lost = list(
        Message.objects.filter(
            Q(send_after__isnull=True) | Q(send_after__lt=quiet),
            status=Message.Status.PENDING,
            direction=Message.Direction.OUT,
            updated_at__lt=quiet,
        ).values_list("pk", "channel_id")[:1000]
    )
    if lost:
        Message.objects.filter(pk__in=[pk for pk, _ in lost]).update(updated_at=now)
        for channel_id in sorted({channel_id for _, channel_id in lost}):
            channel_sends_run_task.delay(channel_id)
        counts["pending_requeued"] = len(lost)
    return counts
