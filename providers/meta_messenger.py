"""Facebook Messenger and Instagram messaging (Meta's Messenger Platform) providers.

Inbound: Meta POSTs `{"object": "page" | "instagram", "entry": [{"id", "time", "messaging": [{"sender",
"recipient", "timestamp", "message" | "postback" | "reaction" | "referral" | "optin" | "delivery" | "read"
| "message_edit"}]}]}` signed with `X-Hub-Signature-256` (the same scheme as WhatsApp, see meta_common),
after the same `hub.challenge` subscription check. `entry[].id` is the Page id (Messenger) or the
Instagram professional account id (Instagram); `timestamp` is in milliseconds. Meta retries a delivery
that does not get a 200, so the same body can arrive again; message ids repeated inside one delivery are
kept once.

Outbound: `POST {api_base}/me/messages` with the Page access token (which makes `me` the Page, or for
Instagram the Page linked to the account). `api_base` already holds the Graph version
(https://graph.facebook.com/v21.0). The token goes in an `Authorization: Bearer` header rather than the
`access_token` query parameter, so it never appears in a URL (logs, exception texts stored as error
reasons); each call also carries `appsecret_proof`, which Meta checks when the app requires it.

Docs:
- webhooks: https://developers.facebook.com/docs/messenger-platform/webhooks
- events: https://developers.facebook.com/docs/messenger-platform/reference/webhook-events
- Instagram: https://developers.facebook.com/docs/messenger-platform/instagram/features/webhook
- Send API: https://developers.facebook.com/docs/messenger-platform/reference/send-api
- policy (24 hours, HUMAN_AGENT): https://developers.facebook.com/docs/messenger-platform/policy/policy-overview
- errors: https://developers.facebook.com/docs/messenger-platform/error-codes
- rate limits: https://developers.facebook.com/documentation/business-messaging/messenger-platform/overview/rate-limiting
"""

import hashlib
import hmac
import json
import logging
import mimetypes
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from django.http import HttpResponse

from .base import (
    CheckResult,
    ContactEvent,
    DeliveryStatus,
    InboundAttachment,
    InboundMessage,
    OutboundMessage,
    ParsedEvent,
    Provider,
    SendResult,
    StatusUpdate,
)
from .errors import (
    AmbiguousFailure,
    ConfigurationError,
    MalformedPayloadError,
    PermanentFailure,
    ProviderError,
    RateLimited,
    TransientFailure,
)
from .meta_common import graph_error, graph_request, hub_handshake, retry_after_seconds, verify_signature

logger = logging.getLogger(__name__)

# channel kind -> the webhook `object` Meta sends for it.
WEBHOOK_OBJECTS: dict[str, str] = {"messenger": "page", "instagram": "instagram"}

# ContactEvent.event values for receipts that cover every earlier message rather than naming one: the
# pipeline marks every outbound message to that identity on the channel sent at or before `timestamp`.
DELIVERED_WATERMARK = "delivered_watermark"
READ_WATERMARK = "read_watermark"

# Messenger's thumbs-up "like" button sends an image attachment with one of these sticker ids (small,
# medium, large, by how long it was pressed); we keep it as the emoji rather than downloading a picture.
THUMBS_UP_STICKERS = frozenset({369239263222822, 369239343222814, 369239383222810})
THUMBS_UP = "\U0001f44d"
LIKE_HEART = "\u2764\ufe0f"

# Inbound attachment types with a downloadable payload.url -> InboundAttachment.kind.
# https://developers.facebook.com/docs/messenger-platform/reference/webhook-events/messages
URL_ATTACHMENTS: dict[str, str] = {
    "image": "image",
    "video": "video",
    "audio": "audio",
    "file": "document",
    "reel": "video",
    "ig_reel": "video",
    "story_mention": "image",
    "share": "image",
}
# Outbound: content type's major part -> Send API attachment type.
OUTBOUND_ATTACHMENT_TYPES = {"image": "image", "video": "video", "audio": "audio"}

# Message length limits of the Send API: Messenger counts characters, Instagram UTF-8 bytes.
MESSENGER_TEXT_LIMIT = 2000
INSTAGRAM_TEXT_BYTES = 1000

# Graph error codes of the Send API -> what the caller should do.
# https://developers.facebook.com/docs/messenger-platform/error-codes
# Throttling -> RateLimited, with the back-off used when Meta sends no Retry-After: 4 (app limit), 17
# (user limit), 32 (Page limit), 613 (API rate limit), 80002 / 80006 (Instagram / Messenger business use
# case limits), 80007 (WhatsApp business account limit, seen by apps that share a business portfolio).
THROTTLING_RETRY_AFTER: dict[int, float] = {
    4: 60.0,
    17: 60.0,
    32: 60.0,
    613: 60.0,
    80002: 60.0,
    80006: 60.0,
    80007: 60.0,
}
DEFAULT_RATE_LIMIT_RETRY_AFTER = 5.0
# 1 unknown, 2 "unexpected error, retry later" (also seen when the user blocked the page: after the
# retries the message fails), 1200 "temporary send message failure".
TRANSIENT_CODES = frozenset({1, 2, 1200})
# Code 10 with these subcodes: the standard 24-hour window is closed (2018278 Messenger, 2534022
# Instagram, 2018065 the older wording), so only a HUMAN_AGENT tagged message (within 7 days) can go out.
WINDOW_CLOSED_SUBCODES = frozenset({2018278, 2534022, 2018065})
# The person cannot be reached (not the channel's fault): 551, 200/1545041, 10/2018108.
RECIPIENT_UNAVAILABLE = frozenset({(10, 2018108), (200, 1545041)})
# Errors about the channel itself: 190 (token expired, revoked, or the password changed), 0/3/10/200/230
# (the app or token lacks a permission such as pages_messaging), 368 (the Page is blocked for policy
# reasons), any HTTP 401, and 100 with subcode 33 (the page id does not exist or the token cannot see it).
CHANNEL_ERROR_CODES = frozenset({0, 3, 10, 190, 200, 230, 368})
UNKNOWN_OBJECT = (100, 33)

# Fields the app subscribes the Page to on activation (POST /{page_id}/subscribed_apps).
# https://developers.facebook.com/docs/messenger-platform/webhooks#connect-your-app
PAGE_SUBSCRIBED_FIELDS = (
    "messages",
    "messaging_postbacks",
    "messaging_optins",
    "messaging_referrals",
    "message_deliveries",
    "message_reads",
    "message_echoes",
    "message_reactions",
    "message_edits",
)


# --- pure helpers ----------------------------------------------------------------------------------------
def load_payload(body: bytes, expected_object: str | None = None) -> dict[str, Any]:
    """Decode a webhook body, or raise MalformedPayloadError saying why it is not a Messenger delivery.

    `expected_object` ("page" or "instagram") refuses a delivery meant for the other kind of channel.
    """
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedPayloadError(f"body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise MalformedPayloadError("body is not a JSON object")
    allowed = (expected_object,) if expected_object else tuple(WEBHOOK_OBJECTS.values())
    if data.get("object") not in allowed:
        wanted = " or ".join(repr(o) for o in allowed)
        raise MalformedPayloadError(f'"object" is {data.get("object")!r}, expected {wanted}')
    if not isinstance(data.get("entry"), list):
        raise MalformedPayloadError('"entry" is missing or not a list')
    return data


def entry_ids(body: bytes) -> list[str]:
    """The Page / Instagram account ids a delivery is about (entry[].id), in order.

    One Meta app has one callback URL per product, so a delivery may concern other Pages: a router can
    use this to find the right channel by lookup key.
    """
    found: list[str] = []
    for entry in load_payload(body)["entry"]:
        value = str(entry.get("id") or "") if isinstance(entry, dict) else ""
        if value and value not in found:
            found.append(value)
    return found


def appsecret_proof(access_token: str, app_secret: str) -> str:
    """HMAC-SHA256 of the access token with the app secret, hex (Graph's `appsecret_proof`)."""
    return hmac.new(app_secret.encode(), access_token.encode(), hashlib.sha256).hexdigest()


def _millis(raw: Any, what: str) -> datetime:
    """Meta's millisecond timestamps as aware UTC datetimes.

    A value below 10**11 is taken as seconds: some referral events carry seconds, and no millisecond
    value after March 1973 is that small.
    """
    try:
        value = int(raw)
    except (TypeError, ValueError) as exc:
        raise MalformedPayloadError(f"{what} has no valid timestamp: {raw!r}") from exc
    try:
        if value < 10**11:
            return datetime.fromtimestamp(value, tz=UTC)
        return datetime.fromtimestamp(value // 1000, tz=UTC) + timedelta(milliseconds=value % 1000)
    except (OverflowError, OSError, ValueError) as exc:
        raise MalformedPayloadError(f"{what} has no valid timestamp: {raw!r}") from exc


def _is_fetchable(url: str) -> bool:
    return url.startswith(("https://", "http://"))


def error_from_graph(status: int, body: Any, retry_after_header: str | None = None) -> ProviderError:
    """Map a Send API error answer (HTTP status, decoded body, Retry-After) to our typed error.

    Order matters: throttling codes win over the HTTP status, then transient codes and 5xx, then the
    24-hour window and unreachable-person cases get a clear reason; everything else is permanent, marked
    as a channel error when the token, the permissions or the Page are at fault.
    """
    error = graph_error(body)
    code = error.code if error else None
    subcode = error.subcode if error else None
    reason = (error.reason if error else "") or f"HTTP {status}"
    code_text = str(code) if code is not None else f"http_{status}"
    retry_after = retry_after_seconds(retry_after_header)
    if code in THROTTLING_RETRY_AFTER or status == 429:
        if retry_after is None:
            retry_after = THROTTLING_RETRY_AFTER.get(code, DEFAULT_RATE_LIMIT_RETRY_AFTER)
        return RateLimited(retry_after, code=code_text, reason=f"{reason} (retry after {retry_after:g}s)")
    if code in TRANSIENT_CODES or status >= 500:
        return TransientFailure(reason, code=code_text)
    if code == 10 and subcode in WINDOW_CLOSED_SUBCODES:
        return PermanentFailure(
            code_text,
            "Outside the 24-hour messaging window: the customer last wrote more than 24 hours ago, and "
            "only a human agent's reply (HUMAN_AGENT tag, within 7 days) may still be sent. "
            f"Meta: {reason}",
        )
    if code == 551 or (code, subcode) in RECIPIENT_UNAVAILABLE:
        return PermanentFailure(
            code_text, f"The person cannot be reached on this channel right now. Meta: {reason}"
        )
    channel_error = code in CHANNEL_ERROR_CODES or status == 401 or (code, subcode) == UNKNOWN_OBJECT
    return PermanentFailure(code_text, reason, channel_error=channel_error)


class MessengerProvider(Provider):
    """A Facebook Page's Messenger inbox.

    config: page_id (api_base_url optional); credentials: page_access_token, app_secret, verify_token.
    """

    kind = "messenger"
    label = "Messenger"
    default_api_base_setting = "META_GRAPH_API_BASE"
    # Send API: 300 calls per second per Page for text, links, reactions and stickers (10 for audio and
    # video, which Meta answers with a throttling code we back off from).
    rate_limit_per_second = 300
    # No "list sent messages" endpoint to confirm an unanswered send; echoes confirm it instead.
    supports_lookup = False
    # The config key naming the account this channel is, and what check() reads about it.
    account_key = "page_id"
    check_fields = "name"
    # Messenger can take a file in the send request itself (multipart `filedata`).
    can_upload = True

    # --- credentials ----------------------------------------------------------------------------------
    @property
    def account_id(self) -> str:
        value = str(self.config.get(self.account_key) or "")
        if not value:
            raise ConfigurationError(f"{self.kind} channel has no {self.account_key}")
        return value

    def _token(self) -> str:
        token = str(self.credentials.get("page_access_token") or "")
        if not token:
            raise ConfigurationError(f"{self.kind} channel has no page_access_token")
        return token

    def lookup_key(self) -> str:
        return str(self.config.get(self.account_key) or "")

    @property
    def webhook_object(self) -> str:
        return WEBHOOK_OBJECTS[self.kind]

    # --- inbound --------------------------------------------------------------------------------------
    def handshake(self, request) -> HttpResponse | None:
        """Answer Meta's subscription check (hub.challenge echoed when hub.verify_token matches)."""
        return hub_handshake(
            request,
            str(self.credentials.get("verify_token") or ""),
            label=self.kind,
            channel_pk=self.channel.pk,
        )

    def verify(self, request) -> None:
        """Check X-Hub-Signature-256 ("sha256=" + hex HMAC-SHA256 of the raw body, key = app secret)."""
        verify_signature(request, str(self.credentials.get("app_secret") or ""))

    def event_id(self, body: bytes, headers: dict) -> str | None:
        """No delivery id on Meta: None (the body hash is used), once the body is known to be ours."""
        load_payload(body, self.webhook_object)
        return None

    def parse(self, body: bytes, headers: dict) -> list[ParsedEvent]:
        """Every messaging event of a delivery, in order, for this channel's Page / account only.

        An entry for another id (one app serving several Pages) is skipped so it can never land in this
        channel's inbox. Message ids repeated within one delivery are kept once; unknown events, standby
        (handover protocol) and `changes` (Instagram comments and mentions) are logged and skipped.
        """
        data = load_payload(body, self.webhook_object)
        own_id = self.lookup_key()
        events: list[ParsedEvent] = []
        seen: set[tuple] = set()
        for entry in data["entry"]:
            if not isinstance(entry, dict):
                raise MalformedPayloadError("an entry is not an object")
            entry_id = str(entry.get("id") or "")
            if own_id and entry_id and entry_id != own_id:
                logger.warning(
                    "%s: skipping an entry for %r on channel %s (%r)",
                    self.kind,
                    entry_id,
                    self.channel.pk,
                    own_id,
                )
                continue
            for skipped in ("standby", "changes"):
                if entry.get(skipped):
                    logger.info("%s: skipping %s of entry %s", self.kind, skipped, entry_id)
            messaging = entry.get("messaging") or []
            if not isinstance(messaging, list):
                raise MalformedPayloadError('"messaging" is not a list')
            for item in messaging:
                if not isinstance(item, dict):
                    raise MalformedPayloadError("a messaging event is not an object")
                for event in self._parse_event(item, own_id or entry_id):
                    key = _dedup_key(event)
                    if key in seen:
                        logger.info("%s: duplicate %s in one delivery", self.kind, key)
                        continue
                    seen.add(key)
                    events.append(event)
        return events

    def _parse_event(self, item: dict[str, Any], own_id: str) -> list[ParsedEvent]:
        """One entry[].messaging[] object -> zero or more events.

        https://developers.facebook.com/docs/messenger-platform/reference/webhook-events
        """
        sender = str((item.get("sender") or {}).get("id") or "")
        recipient = str((item.get("recipient") or {}).get("id") or "")
        message = item.get("message")
        if isinstance(message, dict):
            return self._message(item, message, sender, recipient, own_id)
        handlers = (
            ("message_edit", self._edit),
            ("postback", self._postback),
            ("reaction", self._reaction),
            ("optin", self._optin),
            ("referral", self._referral),
            ("delivery", self._delivery),
            ("read", self._read),
        )
        for key, handler in handlers:
            body = item.get(key)
            if isinstance(body, dict):
                if not sender:
                    # Checkbox-plugin opt-ins identify the person by user_ref only, which is no identity
                    # we can reply to in a conversation.
                    logger.info("%s: skipping %s without a sender id", self.kind, key)
                    return []
                return handler(body, sender, item)
        logger.info("%s: skipping unknown messaging event with keys %s", self.kind, sorted(item))
        return []

    def _base(self, customer: str, item: dict[str, Any], what: str) -> dict[str, Any]:
        return {
            "sender_kind": self.kind,
            "sender_value": customer,
            "timestamp": _millis(item.get("timestamp"), what),
        }

    def _message(
        self, item: dict[str, Any], message: dict[str, Any], sender: str, recipient: str, own_id: str
    ) -> list[ParsedEvent]:
        mid = str(message.get("mid") or "")
        if not mid:
            raise MalformedPayloadError("a message has no mid")
        is_echo = bool(message.get("is_echo"))
        # An echo is our Page's own message: the customer is the recipient (the other party, whichever
        # side our own id is not on).
        customer = (recipient if recipient != own_id else sender) if is_echo else sender
        if not customer:
            raise MalformedPayloadError(f"message {mid} has no sender")
        fields = self._base(customer, item, f"message {mid}")
        if is_echo:
            echo = _message_body(message)
            content = echo.pop("content")
            for key in ("app_id", "metadata"):
                if message.get(key) is not None:
                    content[key] = message[key]
            return [InboundMessage(platform_message_id=mid, is_echo=True, content=content, **fields, **echo)]
        if message.get("is_deleted"):
            # The customer unsent the message: an edit that blanks it and marks it deleted.
            return [
                InboundMessage(
                    platform_message_id=mid, is_edit=True, text="", content={"deleted": True}, **fields
                )
            ]
        if message.get("is_unsupported"):
            return [
                InboundMessage(
                    platform_message_id=mid,
                    type="unsupported",
                    content={"original_type": "unsupported"},
                    **fields,
                )
            ]
        body = _message_body(message)
        reply_to = message.get("reply_to") if isinstance(message.get("reply_to"), dict) else {}
        if reply_to.get("mid"):
            body["reply_to_platform_id"] = str(reply_to["mid"])
        if isinstance(reply_to.get("story"), dict):
            # An Instagram reply to the business's story: which story (its media URL expires).
            body["content"]["story_reply"] = reply_to["story"]
        referral = message.get("referral") or item.get("referral")
        if isinstance(referral, dict):
            body["content"]["referral"] = referral
        return [InboundMessage(platform_message_id=mid, **fields, **body)]

    def _edit(self, edit: dict[str, Any], sender: str, item: dict[str, Any]) -> list[ParsedEvent]:
        mid = str(edit.get("mid") or "")
        if not mid:
            raise MalformedPayloadError("a message_edit has no mid")
        content = {"edited": True}
        if edit.get("num_edit") is not None:
            content["num_edit"] = edit["num_edit"]
        return [
            InboundMessage(
                platform_message_id=mid,
                is_edit=True,
                text=str(edit.get("text") or ""),
                content=content,
                **self._base(sender, item, f"edit of {mid}"),
            )
        ]

    def _postback(self, postback: dict[str, Any], sender: str, item: dict[str, Any]) -> list[ParsedEvent]:
        """A tapped button (Get Started, persistent menu, template button, Instagram ice breaker).

        Messenger sends no message id with older postbacks: a stable one is derived from the sender and
        the millisecond timestamp, so a redelivered postback is stored once.
        """
        title = str(postback.get("title") or "")
        content: dict[str, Any] = {
            "interactive_type": "postback",
            "payload": str(postback.get("payload") or ""),
            "title": title,
        }
        if isinstance(postback.get("referral"), dict):
            content["referral"] = postback["referral"]
        mid = str(postback.get("mid") or "") or f"postback:{sender}:{item.get('timestamp')}"
        return [
            InboundMessage(
                platform_message_id=mid,
                type="interactive",
                text=title,
                content=content,
                **self._base(sender, item, "postback"),
            )
        ]

    def _reaction(self, reaction: dict[str, Any], sender: str, item: dict[str, Any]) -> list[ParsedEvent]:
        """A reaction to a message; `unreact` removes it (empty emoji, as on WhatsApp)."""
        target = str(reaction.get("mid") or "")
        action = str(reaction.get("action") or "react")
        content = {
            "emoji": str(reaction.get("emoji") or "") if action == "react" else "",
            "message_id": target,
            "reaction": str(reaction.get("reaction") or ""),
            "action": action,
        }
        return [
            InboundMessage(
                platform_message_id=f"reaction:{sender}:{target}:{action}:{item.get('timestamp')}",
                type="reaction",
                content=content,
                **self._base(sender, item, "reaction"),
            )
        ]

    def _referral(self, referral: dict[str, Any], sender: str, item: dict[str, Any]) -> list[ParsedEvent]:
        """The person came through an m.me link, an ad or a QR code into an existing thread."""
        source = str(referral.get("source") or "")
        ref = str(referral.get("ref") or "")
        text = "Referral" + (f" from {source}" if source else "") + (f" (ref {ref})" if ref else "")
        return [
            InboundMessage(
                platform_message_id=f"referral:{sender}:{item.get('timestamp')}",
                type="interactive",
                text=text,
                content={"interactive_type": "referral", "referral": referral},
                **self._base(sender, item, "referral"),
            )
        ]

    def _optin(self, optin: dict[str, Any], sender: str, item: dict[str, Any]) -> list[ParsedEvent]:
        """Marketing-message (notification_messages) opt-in or opt-out, kept with Meta's token.

        This is consent to recurring marketing messages, not to the conversation, so it is not mapped to
        the channel-wide opted_out / opted_in contact events (which block or allow every reply).
        """
        stopped = optin.get("notification_messages_status") == "STOP_NOTIFICATIONS"
        title = str(optin.get("title") or optin.get("type") or "messages")
        frequency = str(optin.get("notification_messages_frequency") or "")
        if stopped:
            text = f"Stopped notification messages: {title}"
        else:
            text = f"Opted in to notification messages: {title}" + (f" ({frequency})" if frequency else "")
        return [
            InboundMessage(
                platform_message_id=f"optin:{sender}:{item.get('timestamp')}",
                type="interactive",
                text=text,
                content={"interactive_type": "optin", "optin": optin},
                **self._base(sender, item, "optin"),
            )
        ]

    def _delivery(self, delivery: dict[str, Any], sender: str, item: dict[str, Any]) -> list[ParsedEvent]:
        """delivery.mids -> one DELIVERED status each; delivery.watermark -> a delivered watermark.

        Meta: "all messages that were sent before or at this timestamp were delivered"; `mids` may be
        absent and, when present, names only some of them, so the watermark is always passed on.
        """
        events: list[ParsedEvent] = []
        at = _millis(item.get("timestamp"), "delivery")
        for mid in delivery.get("mids") or []:
            if mid:
                events.append(
                    StatusUpdate(platform_message_id=str(mid), status=DeliveryStatus.DELIVERED, timestamp=at)
                )
        if delivery.get("watermark") is not None:
            events.append(
                ContactEvent(
                    sender_kind=self.kind,
                    sender_value=sender,
                    event=DELIVERED_WATERMARK,
                    timestamp=_millis(delivery["watermark"], "delivery watermark"),
                )
            )
        return events

    def _read(self, read: dict[str, Any], sender: str, item: dict[str, Any]) -> list[ParsedEvent]:
        """Messenger: read.watermark (everything sent up to then was read). Instagram: read.mid."""
        events: list[ParsedEvent] = []
        if read.get("mid"):
            at = _millis(item.get("timestamp"), "read")
            events.append(
                StatusUpdate(platform_message_id=str(read["mid"]), status=DeliveryStatus.READ, timestamp=at)
            )
        if read.get("watermark") is not None:
            events.append(
                ContactEvent(
                    sender_kind=self.kind,
                    sender_value=sender,
                    event=READ_WATERMARK,
                    timestamp=_millis(read["watermark"], "read watermark"),
                )
            )
        return events

    # --- outbound -------------------------------------------------------------------------------------
    def _request(self, method: str, url: str, *, authenticated: bool = True, **kwargs) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if authenticated:
            token = self._token()
            headers["Authorization"] = f"Bearer {token}"
            secret = str(self.credentials.get("app_secret") or "")
            if secret:
                kwargs["params"] = {
                    **kwargs.get("params", {}),
                    "appsecret_proof": appsecret_proof(token, secret),
                }
        return graph_request(
            self.http,
            method,
            url,
            headers=headers,
            timeout=self.timeout,
            platform=self.label,
            api_base=self.api_base,
            **kwargs,
        )

    def _call(self, method: str, url: str, *, ambiguous_body: bool, **kwargs) -> dict[str, Any]:
        """_request plus error mapping; returns the decoded JSON answer of a 2xx without an error.

        The Send API sometimes answers 200 with an error object (36000 "image size is too large"), so
        the body is checked for `error` whatever the status.
        """
        response = self._request(method, url, **kwargs)
        try:
            data = response.json()
        except ValueError:
            data = None
        if not 200 <= response.status_code < 300 or graph_error(data) is not None:
            raise error_from_graph(response.status_code, data, response.headers.get("Retry-After"))
        if not isinstance(data, dict):
            text = f"{self.label} answered {response.status_code} with a body that is not a JSON object"
            if ambiguous_body:
                raise AmbiguousFailure(text, code="bad_response")
            raise TransientFailure(text, code="bad_response")
        return data

    def _check_text(self, text: str) -> None:
        if len(text) > MESSENGER_TEXT_LIMIT:
            raise PermanentFailure(
                "text_too_long",
                f"Messenger takes at most {MESSENGER_TEXT_LIMIT} characters; this has {len(text)}",
            )

    def message_payload(self, outbound: OutboundMessage, *, upload: bool = False) -> dict[str, Any]:
        """The JSON body of POST /me/messages for `outbound` (no HTTP).

        messaging_type RESPONSE inside the 24-hour window; with content["human_agent"] a MESSAGE_TAG with
        tag HUMAN_AGENT (a person answering, allowed up to 7 days after the customer's last message).
        `upload`: the attachment goes as multipart `filedata` instead of by URL.
        https://developers.facebook.com/docs/messenger-platform/reference/send-api
        """
        recipient = str(outbound.to or "").strip()
        if not recipient:
            raise PermanentFailure("invalid_recipient", "no recipient id (page- or Instagram-scoped id)")
        if outbound.template:
            raise PermanentFailure(
                "template_not_supported",
                f"{self.label} has no message templates; within 7 days of the customer's last message a "
                "human agent can still reply (HUMAN_AGENT tag)",
            )
        if outbound.type == "reaction":
            raise PermanentFailure("unsupported_type", f"sending reactions on {self.label} is not supported")
        payload: dict[str, Any] = {"recipient": {"id": recipient}}
        if outbound.content.get("human_agent"):
            payload["messaging_type"] = "MESSAGE_TAG"
            payload["tag"] = "HUMAN_AGENT"
        else:
            payload["messaging_type"] = "RESPONSE"
        if outbound.attachments:
            if len(outbound.attachments) > 1:
                raise PermanentFailure(
                    "too_many_attachments",
                    f"a {self.label} message carries one attachment; send one message each",
                )
            if outbound.text:
                raise PermanentFailure(
                    "text_with_attachment",
                    f"a {self.label} message is either text or one attachment: send the text as its own message",
                )
            payload["message"] = {"attachment": self._attachment(outbound.attachments[0], upload=upload)}
        elif outbound.text:
            self._check_text(outbound.text)
            payload["message"] = {"text": outbound.text}
        else:
            raise PermanentFailure("empty_message", "nothing to send: no text or attachment")
        return payload

    @staticmethod
    def _content_type(attachment: dict[str, Any]) -> str:
        if attachment.get("content_type"):
            return str(attachment["content_type"])
        name = attachment.get("filename") or attachment.get("path") or attachment.get("url") or ""
        return mimetypes.guess_type(str(name))[0] or "application/octet-stream"

    def _attachment(self, attachment: dict[str, Any], *, upload: bool) -> dict[str, Any]:
        kind = OUTBOUND_ATTACHMENT_TYPES.get(self._content_type(attachment).split("/", 1)[0].lower(), "file")
        if upload:
            return {"type": kind, "payload": {"is_reusable": False}}
        url = str(attachment.get("url") or "")
        if not _is_fetchable(url):
            raise PermanentFailure(
                "invalid_attachment",
                f"{self.label} fetches attachments by a public http(s) URL; this one has none",
            )
        return {"type": kind, "payload": {"url": url, "is_reusable": False}}

    def send(self, outbound: OutboundMessage) -> SendResult:
        """Send text or one attachment; a local file (`path`) goes in the request as multipart filedata.

        Answer: {"recipient_id", "message_id"}. The message id comes back in the echo and in delivery /
        read receipts.
        """
        attachment = outbound.attachments[0] if len(outbound.attachments) == 1 else {}
        upload = bool(self.can_upload and attachment.get("path"))
        payload = self.message_payload(outbound, upload=upload)
        url = f"{self.api_base}/me/messages"
        if upload:
            path = Path(str(attachment["path"]))
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise PermanentFailure(
                    "attachment_unreadable", f"cannot read attachment {path.name}"
                ) from exc
            filename = str(attachment.get("filename") or path.name)
            form = {
                key: json.dumps(value) if isinstance(value, dict) else value for key, value in payload.items()
            }
            answer = self._call(
                "POST",
                url,
                ambiguous_body=True,
                data=form,
                files={"filedata": (filename, data, self._content_type(attachment))},
            )
        else:
            answer = self._call("POST", url, ambiguous_body=True, json=payload)
        if not answer.get("message_id"):
            raise AmbiguousFailure(
                f"{self.label} accepted the request but returned no message_id", code="bad_response"
            )
        return SendResult(
            platform_message_id=str(answer["message_id"]), status=DeliveryStatus.SENT, raw=answer
        )

    def download_media(self, attachment: InboundAttachment) -> tuple[bytes, str]:
        """GET the attachment's CDN URL (signed by Meta, no token needed; it expires after a while)."""
        url = attachment.url
        if not _is_fetchable(url):
            raise PermanentFailure("invalid_attachment", f"the attachment has no http(s) URL: {url!r}")
        response = self._request("GET", url, authenticated=False)
        status = response.status_code
        if status == 429:
            retry_after = (
                retry_after_seconds(response.headers.get("Retry-After")) or DEFAULT_RATE_LIMIT_RETRY_AFTER
            )
            raise RateLimited(retry_after, code="http_429")
        if status >= 500:
            raise TransientFailure(f"{self.label} media host answered {status}", code=f"http_{status}")
        if not 200 <= status < 300:
            raise PermanentFailure(
                f"http_{status}",
                f"{self.label} media host refused the file ({status}): the link may have expired",
            )
        content_type = (
            response.headers.get("Content-Type") or attachment.content_type or "application/octet-stream"
        )
        return response.content, content_type

    def check(self) -> CheckResult:
        """GET /{page_id}?fields=name (Instagram: /{instagram_account_id}?fields=username,name)."""
        try:
            answer = self._call(
                "GET",
                f"{self.api_base}/{self.account_id}",
                ambiguous_body=False,
                params={"fields": self.check_fields},
            )
        except PermanentFailure as exc:
            return CheckResult(False, f"{self.label} refused: {exc.reason} (code {exc.code})")
        except (TransientFailure, ConfigurationError) as exc:
            return CheckResult(False, str(exc))
        return CheckResult(True, self._connected(answer))

    def _connected(self, answer: dict[str, Any]) -> str:
        name = str(answer.get("name") or "")
        return (
            f"Connected to the Page {name} ({self.account_id})"
            if name
            else f"Connected to Page {self.account_id}"
        )

    def on_activate(self) -> None:
        """Subscribe the Page to this app's webhook (POST /{page_id}/subscribed_apps), which Meta needs
        besides the app-level webhook: without it no message of this Page is delivered."""
        self._call(
            "POST",
            f"{self.api_base}/{self.account_id}/subscribed_apps",
            ambiguous_body=False,
            params={"subscribed_fields": ",".join(PAGE_SUBSCRIBED_FIELDS)},
        )


class InstagramProvider(MessengerProvider):
    """An Instagram professional account's direct messages, through its linked Facebook Page.

    config: instagram_account_id, optional page_id (api_base_url optional);
    credentials: page_access_token (of the linked Page), app_secret, verify_token.
    """

    kind = "instagram"
    label = "Instagram"
    # Send API: 300 calls per second per Instagram professional account for text (10 for audio/video).
    rate_limit_per_second = 300
    account_key = "instagram_account_id"
    check_fields = "username,name"
    # The Instagram Send API takes attachments by URL only.
    can_upload = False

    def _check_text(self, text: str) -> None:
        size = len(text.encode())
        if size > INSTAGRAM_TEXT_BYTES:
            raise PermanentFailure(
                "text_too_long",
                f"Instagram takes at most {INSTAGRAM_TEXT_BYTES} bytes of UTF-8 text; this has {size}",
            )

    def _connected(self, answer: dict[str, Any]) -> str:
        username = str(answer.get("username") or "")
        if username:
            return f"Connected as @{username} ({self.account_id})"
        return f"Connected to Instagram account {self.account_id}"

    def on_activate(self) -> None:
        """Instagram's webhook subscription is made in the app dashboard (see docs/channels/instagram.md)."""


def _message_body(message: dict[str, Any]) -> dict[str, Any]:
    """type, text, content and attachments of a `message` object (also used for echoes).

    https://developers.facebook.com/docs/messenger-platform/reference/webhook-events/messages
    """
    text = str(message.get("text") or "")
    content: dict[str, Any] = {}
    attachments: list[InboundAttachment] = []
    location = False
    for item in message.get("attachments") or []:
        if not isinstance(item, dict):
            continue
        kind = str(item.get("type") or "")
        payload = item.get("payload") if isinstance(item.get("payload"), dict) else {}
        url = str(payload.get("url") or "")
        if kind == "location":
            coordinates = payload.get("coordinates") or {}
            content["latitude"] = coordinates.get("lat")
            content["longitude"] = coordinates.get("long")
            if item.get("title"):
                content["name"] = item["title"]
            location = True
        elif kind == "like_heart":
            text = text or LIKE_HEART
            content["like_heart"] = True
        elif kind == "image" and payload.get("sticker_id"):
            content["sticker_id"] = str(payload["sticker_id"])
            if int(payload["sticker_id"]) in THUMBS_UP_STICKERS:
                text = text or THUMBS_UP
            elif _is_fetchable(url):
                attachments.append(InboundAttachment(kind="sticker", url=url))
        elif kind == "fallback":
            # A shared link Meta cannot render: kept as a link, not downloaded (it is a web page).
            # Older deliveries put the link at the top level ("URL", "title") with a null payload.
            link = {
                "url": url or str(item.get("URL") or ""),
                "title": str(item.get("title") or payload.get("title") or ""),
            }
            content.setdefault("links", []).append(link)
            text = text or link["url"] or link["title"]
        elif kind == "template":
            content["template"] = payload
        elif kind in URL_ATTACHMENTS:
            if kind == "story_mention":
                content["story_mention"] = url
            elif kind in ("reel", "ig_reel"):
                content["reel"] = {
                    k: str(v) for k, v in payload.items() if k in ("url", "reel_video_id", "title")
                }
            elif kind == "share":
                content["share"] = url
            if _is_fetchable(url):
                attachments.append(InboundAttachment(kind=URL_ATTACHMENTS[kind], url=url))
        else:
            logger.info("messenger: attachment type %r kept as unsupported", kind)
            content.setdefault("unsupported_attachments", []).append(kind)
    quick_reply = message.get("quick_reply")
    if location:
        kind = "location"
    elif attachments or any(key in content for key in ("story_mention", "reel", "share")):
        kind = "media"
    elif isinstance(quick_reply, dict):
        kind = "interactive"
        content.update(
            {
                "interactive_type": "quick_reply",
                "payload": str(quick_reply.get("payload") or ""),
                "title": text,
            }
        )
    elif text:
        kind = "text"
    elif content.get("template"):
        kind = "interactive"
    else:
        kind = "unsupported"
        content.setdefault("original_type", "unknown")
    return {"type": kind, "text": text, "content": content, "attachments": tuple(attachments)}


def _dedup_key(event: ParsedEvent) -> tuple:
    if isinstance(event, InboundMessage):
        return ("message", event.platform_message_id, event.is_echo, event.is_edit)
    if isinstance(event, StatusUpdate):
        return ("status", event.platform_message_id, event.status.value)
    return ("contact", event.sender_value, event.event, event.timestamp)
