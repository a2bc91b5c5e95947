"""Writes of the website chat widget.

Visitor messages and receipts are not applied here: they are recorded as WebhookEvents through the
one intake (webhook_event_record) and applied by the processing task, exactly like a WhatsApp or
Telegram delivery. So a retried send (same client id) is stored once, the agent inbox gets its live
events from the same code, and a failed event can be replayed.
"""

import hashlib
import json
import secrets
from dataclasses import dataclass

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from channels_app.publish import organization_group, publish
from channels_app.widget_consumer import agents_seen, visitor_token_issue, visitor_token_read
from inbox.errors import InboxError
from inbox.models import Conversation
from inbox.services.messages import _identity_get_or_create
from inbox.services.webhooks import webhook_event_record
from providers import ratelimit
from providers.models import Channel
from providers.webchat import (
    CLIENT_ID_RE,
    IDENTITY_KIND,
    MAX_TEXT,
    RECEIPT_STATUSES,
    user_hash_valid,
    visitor_group,
    visitor_key,
)

from . import selectors

MAX_USER_ID = 200
# How long the widget shows "agent is typing" after the agent's last keystroke signal.
AGENT_TYPING_TTL = 6
# Per visitor: sustained messages per second and burst; typing signals are dropped beyond their rate.
SEND_RATE, SEND_BURST = 1.0, 10
TYPING_RATE, TYPING_BURST = 1.0, 3


@dataclass(frozen=True)
class VisitorSession:
    visitor: str
    verified: bool
    token: str
    name: str
    email: str


def _clean_email(email: str) -> str:
    email = (email or "").strip().lower()
    if not email:
        return ""
    try:
        validate_email(email)
    except ValidationError as exc:
        raise InboxError(
            "invalid_email", "That e-mail address does not look right.", status_code=400
        ) from exc
    return email[:254]


def webchat_session_start(
    *,
    channel: Channel,
    visitor_token: str = "",
    user_id: str = "",
    user_hash: str = "",
    name: str = "",
    email: str = "",
) -> VisitorSession:
    """Start or resume a visitor's session and (re)issue their signed token.

    With user_id, user_hash must be the HMAC-SHA256 of user_id under the channel's identity_secret
    (computed by the customer's backend, as Intercom does): the visitor is then that user, on any device.
    An unsigned or wrongly signed user_id raises InboxError 403; it is never trusted. Without user_id,
    a valid anonymous token of this channel resumes that visitor, anything else starts a new one.
    A given name or e-mail (pre-chat form, offline form) is stored on the contact right away.
    """
    user_id = (user_id or "").strip()
    if user_id:
        if len(user_id) > MAX_USER_ID:
            raise InboxError("invalid_user", "user_id is too long.", status_code=400)
        if not user_hash_valid(channel.credentials.get("identity_secret", ""), user_id, user_hash or ""):
            raise InboxError("identity_refused", "user_hash does not match user_id.", status_code=403)
        visitor, verified = user_id, True
    else:
        found = visitor_token_read(channel_id=channel.pk, token=visitor_token or "")
        if found is not None and not found[1]:
            visitor, verified = found
        else:
            # No token, a foreign one, or a signed-in user's token on a page that no longer signs
            # them in (they logged out on the customer's site): a fresh anonymous visitor.
            visitor, verified = "v_" + secrets.token_urlsafe(18), False
    name = (name or "").strip()[:200]
    email = _clean_email(email)
    stored_name, stored_email = "", ""
    if name or email:
        stored_name, stored_email = webchat_visitor_identify(
            channel=channel, visitor=visitor, name=name, email=email
        )
    else:
        identity = selectors.visitor_identity(channel=channel, visitor=visitor)
        if identity is not None:
            stored_name = identity.contact.name
            stored_email = (identity.contact.attributes or {}).get("email", "")
    return VisitorSession(
        visitor=visitor,
        verified=verified,
        token=visitor_token_issue(channel_id=channel.pk, visitor=visitor, verified=verified),
        name=stored_name,
        email=stored_email,
    )


def webchat_visitor_identify(*, channel: Channel, visitor: str, name: str, email: str) -> tuple[str, str]:
    """Store what the visitor told us (pre-chat or offline form) on their contact; returns (name, email).

    The e-mail is kept as a contact attribute, not as an e-mail identity: the visitor typed it and
    nothing proved it, so it must not join them to another contact's e-mail conversations.
    """
    with transaction.atomic():
        identity = _identity_get_or_create(channel=channel, kind=IDENTITY_KIND, value=visitor, name=name)
        contact = identity.contact
        fields = []
        if name and contact.name != name:
            contact.name = name
            fields.append("name")
        if email and (contact.attributes or {}).get("email") != email:
            contact.attributes = {**(contact.attributes or {}), "email": email}
            fields.append("attributes")
        if fields:
            contact.save(update_fields=[*fields, "updated_at"])
    return contact.name, (contact.attributes or {}).get("email", "")


def _record(channel: Channel, body: dict, event_id: str | None):
    return webhook_event_record(
        channel=channel,
        endpoint="inbound",
        event_id=event_id,
        body=json.dumps(body, sort_keys=True).encode(),
        headers={"content-type": "application/json"},
        content_type="application/json",
    )


def webchat_message_post(
    *, channel: Channel, visitor: str, client_id: str, text: str, name: str = "", page_url: str = ""
) -> bool:
    """Hand a visitor's message to the intake. Returns True when stored now, False for a retry of a
    message already stored (same client id: the widget retries after a network error).

    Raises InboxError 400 on an empty text or a bad client id, 429 when the visitor sends too fast,
    409 when the channel is paused.
    """
    if not channel.is_active:
        raise InboxError("channel_paused", "This chat is not available right now.", status_code=409)
    if not CLIENT_ID_RE.match(client_id or ""):
        raise InboxError(
            "invalid_client_id", "client_id must be 8-64 characters of A-Z a-z 0-9 _ -.", status_code=400
        )
    text = (text or "").strip()
    if not text:
        raise InboxError("empty_message", "A message needs text.", status_code=400)
    if len(text) > MAX_TEXT:
        raise InboxError("message_too_long", f"Messages are at most {MAX_TEXT} characters.", status_code=400)
    if not ratelimit.acquire(
        f"webchat:{channel.pk}:{visitor_key(visitor)}", rate=SEND_RATE, burst=SEND_BURST, max_wait=0
    ).granted:
        raise InboxError("rate_limited", "You are sending messages too fast.", status_code=429)
    body = {
        "v": 1,
        "type": "message",
        "visitor": visitor,
        "client_id": client_id,
        "text": text,
        "name": (name or "")[:200],
        "at": timezone.now().isoformat(),
    }
    if page_url:
        body["page_url"] = page_url[:1000]
    _, created = _record(channel, body, f"msg:{visitor_key(visitor)}:{client_id}")
    return created


def webchat_receipt_post(*, channel: Channel, visitor: str, status: str, message_ids: list) -> list[int]:
    """Record that the widget showed (delivered) or the visitor saw (read) agent messages.

    Only the visitor's own agent messages are kept; returns their ids (nothing recorded when none).
    """
    if status not in RECEIPT_STATUSES:
        raise InboxError("invalid_status", "status must be delivered or read.", status_code=400)
    wanted = sorted(
        {int(i) for i in message_ids if isinstance(i, int) or (isinstance(i, str) and i.isdigit())}
    )[:200]
    ids = selectors.visitor_outbound_ids(channel=channel, visitor=visitor, message_ids=wanted)
    if not ids:
        return []
    body = {
        "v": 1,
        "type": "receipt",
        "visitor": visitor,
        "status": status,
        "message_ids": ids,
        "at": timezone.now().isoformat(),
    }
    digest = hashlib.sha256(",".join(map(str, ids)).encode()).hexdigest()[:32]
    _record(channel, body, f"receipt:{status}:{visitor_key(visitor)}:{digest}")
    return ids


def webchat_visitor_typing(*, channel: Channel, visitor: str, typing: bool) -> bool:
    """Tell the organization's agents that the visitor is (not) typing. Returns False when nothing was
    published (no conversation yet, or signals coming faster than TYPING_RATE).

    Published directly (nothing is written, so there is no commit to wait for):
    {"type": "conversation.typing", "v": 1, "data": {"conversation", "channel", "contact", "typing", "by": "contact"}}
    """
    conversation = selectors.visitor_conversation(channel=channel, visitor=visitor)
    if conversation is None:
        return False
    if (
        typing
        and not ratelimit.acquire(
            f"webchat-typing:{channel.pk}:{visitor_key(visitor)}",
            rate=TYPING_RATE,
            burst=TYPING_BURST,
            max_wait=0,
        ).granted
    ):
        return False
    publish(
        organization_group(channel.organization_id),
        {
            "type": "conversation.typing",
            "v": 1,
            "data": {
                "conversation": conversation.pk,
                "channel": channel.pk,
                "contact": conversation.contact_id,
                "typing": bool(typing),
                "by": "contact",
            },
        },
    )
    return True


def _agent_typing_key(channel_id: int, visitor: str) -> str:
    return f"webchat:agent-typing:{channel_id}:{visitor_key(visitor)}"


def agent_typing_now(*, channel: Channel, visitor: str) -> str | None:
    """For the polling widget: the first name of an agent who signalled typing in the last
    AGENT_TYPING_TTL seconds ("" when they have none), else None."""
    return cache.get(_agent_typing_key(channel.pk, visitor))


def webchat_agent_typing(*, organization, conversation_id: int, user, typing: bool) -> bool:
    """An agent is (not) typing a reply in a conversation of `organization`: show it in the visitor's
    widget. Returns False for conversations on other channel kinds (nothing to show them).

    Raises Conversation.DoesNotExist for a conversation of another organization. Also marks the
    organization's agents as online for the widget.
    """
    conversation = (
        Conversation.objects.select_related("channel")
        .filter(organization=organization)
        .get(pk=conversation_id)
    )
    agents_seen(organization.pk)
    if conversation.channel.kind != "webchat":
        return False
    identity = (
        conversation.contact.identities.filter(kind=IDENTITY_KIND, channel_id=conversation.channel_id).first()
        or conversation.contact.identities.filter(kind=IDENTITY_KIND).order_by("id").first()
    )
    if identity is None:
        return False
    key = _agent_typing_key(conversation.channel_id, identity.value)
    name = (user.get_short_name() or user.get_full_name() or "").strip() if user is not None else ""
    if typing:
        cache.set(key, name, AGENT_TYPING_TTL)
    else:
        cache.delete(key)
    publish(
        visitor_group(conversation.channel_id, identity.value),
        {
            "type": "conversation.typing",
            "v": 1,
            "data": {"typing": bool(typing), "by": "agent", "name": name},
        },
    )
    return True
