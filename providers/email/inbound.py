"""A received e-mail (anymail's AnymailInboundMessage) as our InboundMessage. Pure: no ORM, no HTTP.

Every ESP's inbound webhook and the IMAP poller end here, so threading, trimming, sanitizing and
attachments behave the same whichever way a mail arrived.

Attachments: the bytes are inside the stored webhook body itself (no platform URL to fetch later),
so InboundAttachment.platform_media_id is "<webhook event id>#<part index>" and
EmailProvider.download_media() re-reads that stored WebhookEvent and takes the part again. The event
id is computed here from the body exactly as the webhook intake stores it (see EmailProvider.event_id
and inbox.services.email_polling), so the lookup is one unique-index hit.
"""

import hashlib
import html as html_lib
import re
from datetime import UTC, datetime
from email.message import Message as MimePart
from email.utils import getaddresses, parseaddr

from anymail.inbound import AnymailInboundMessage

from ..base import InboundAttachment, InboundMessage
from .sanitize import sanitize_html
from .threading import message_ids, our_message_pk, subject_key, thread_root
from .trim import trim_reply

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def body_event_id(body: bytes) -> str:
    """Identical to inbox.services.webhooks.body_event_id: the id a webhook body is stored under."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


def media_parts(message: AnymailInboundMessage) -> list[MimePart]:
    """Attachments and inline parts (images referenced by cid:), in MIME order; the index is stable."""
    body_parts = {
        id(message.get_body(preferencelist=("plain",))),
        id(message.get_body(preferencelist=("html",))),
    }
    parts = []
    for part in message.walk():
        if part.is_multipart() or id(part) in body_parts:
            continue
        disposition = part.get_content_disposition()
        if disposition == "attachment" or part.get_filename() or part["Content-ID"]:
            parts.append(part)
        elif disposition == "inline" and part.get_content_maintype() != "text":
            parts.append(part)
    return parts


def _kind(content_type: str) -> str:
    major = content_type.split("/", 1)[0]
    return major if major in ("image", "audio", "video") else "document"


def _address(value) -> tuple[str, str]:
    if value is None:
        return "", ""
    if isinstance(value, list):  # a legal but rare multiple-From: the first one writes to us
        value = value[0]
    return (value.display_name or "").strip(), (value.addr_spec or "").strip().lower()


def _addresses(message: AnymailInboundMessage, header: str) -> list[str]:
    return [addr.lower() for _, addr in getaddresses(message.get_all(header, [])) if addr]


def html_to_text(markup: str) -> str:
    """Readable text from HTML, for mails that have no text/plain part."""
    markup = re.sub(r"(?is)<(script|style|head)\b.*?</\1>", "", markup)
    markup = re.sub(r"(?i)<br\s*/?>|</(p|div|li|tr|h[1-6])>", "\n", markup)
    text = html_lib.unescape(re.sub(r"<[^>]+>", "", markup))
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _timestamp(message: AnymailInboundMessage, fallback: datetime | None) -> datetime:
    try:
        when = message.date
    except (TypeError, ValueError):
        when = None
    if when is None:
        return fallback or EPOCH
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def inbound_from_message(
    message: AnymailInboundMessage,
    *,
    event_id: str,
    thread_secret: str,
    fallback_time: datetime | None,
    fallback_message_id: str = "",
    our_address: str = "",
) -> InboundMessage | None:
    """Normalize one received mail; None for a mail we must not turn into a message (our own echo)."""
    name, sender = _address(message.from_email)
    reply_to = _addresses(message, "Reply-To")
    if not sender:
        name, sender = "", (reply_to[0] if reply_to else (message.envelope_sender or "").lower())
    if not sender or (our_address and sender == our_address.lower()):
        return None
    own_id = (
        message_ids(message.get("Message-ID")) or [fallback_message_id or f"<{event_id}@alexia.invalid>"]
    )[0]
    in_reply_to = message_ids(message.get("In-Reply-To"))
    references = message_ids(" ".join(str(v) for v in message.get_all("References", [])))
    subject = " ".join(str(message.subject or "").split())

    full_text = message.text or ""
    raw_html = message.html or ""
    if not full_text and raw_html:
        full_text = html_to_text(raw_html)
    stripped = (message.stripped_text or "").strip()
    display = stripped or trim_reply(full_text)

    ours = [
        pk for pk in (our_message_pk(item, key=thread_secret) for item in [*references, *in_reply_to]) if pk
    ]
    parts = media_parts(message)
    attachments = []
    inline: dict[str, int] = {}
    for index, part in enumerate(parts):
        content_type = part.get_content_type()
        payload = part.get_payload(decode=True) or b""
        filename = part.get_filename() or ""
        if part["Content-ID"]:
            inline[part["Content-ID"].strip().strip("<>")] = index
        attachments.append(
            InboundAttachment(
                kind=_kind(content_type),
                content_type=content_type,
                filename=filename,
                platform_media_id=f"{event_id}#{index}",
                size=len(payload),
            )
        )
    auto = (message.get("Auto-Submitted") or "no").strip().lower()
    content = {
        "email": {
            "subject": subject,
            "subject_key": subject_key(subject),
            "message_id": own_id,
            "in_reply_to": in_reply_to,
            "references": references,
            "to": _addresses(message, "To"),
            "cc": _addresses(message, "Cc"),
            "reply_to": reply_to,
            "auto_submitted": auto != "no",
            "reply_to_our_message": max(ours) if ours else None,
            "inline": inline,
            "spam": bool(message.spam_detected),
        },
        "text_full": full_text,
        "trimmed": display.strip() != full_text.strip(),
    }
    if raw_html:
        content["html"] = sanitize_html(raw_html)
        content["html_display"] = sanitize_html(raw_html, trim_quotes=True)
    if not display and not attachments and subject:
        display = subject
    return InboundMessage(
        platform_message_id=own_id,
        sender_kind="email",
        sender_value=sender,
        sender_name=name or parseaddr(str(message.get("From", "")))[0],
        timestamp=_timestamp(message, fallback_time),
        type="text" if display else "media",
        text=display,
        content=content,
        attachments=tuple(attachments),
        reply_to_platform_id=in_reply_to[0] if in_reply_to else "",
        thread_key=thread_root(message_id=own_id, in_reply_to=in_reply_to, references=references),
    )
