"""WhatsApp Cloud API (Meta Graph API) provider.

Inbound: Meta POSTs `{"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages",
"value": {...}}]}]}` signed with `X-Hub-Signature-256` (HMAC-SHA256 of the raw body with the app secret), and
answers its GET subscription challenge with `hub.mode` / `hub.verify_token` / `hub.challenge`. One delivery
may batch several entries, changes, messages and statuses; the same delivery can arrive again (Meta retries
any non-200 for days) and statuses arrive out of order.

Outbound: `POST {api_base}/{phone_number_id}/messages` with a Bearer token, where `api_base` already holds
the Graph version (https://graph.facebook.com/v21.0). Errors come back in the Graph envelope
`{"error": {"message", "type", "code", "error_subcode", "error_data": {"details"}, "fbtrace_id"}}`.

Docs:
- webhooks: https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/messages
- statuses: https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/messages/status
- sending: https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages
- errors: https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes
- throughput: https://developers.facebook.com/documentation/business-messaging/whatsapp/throughput
"""

import json
import logging
import mimetypes
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from django.http import HttpResponse

from .base import (
    CheckResult,
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
from .meta_common import (
    SIGNATURE_HEADER,
    SIGNATURE_PREFIX,
    graph_request,
    hub_handshake,
    sign,
    verify_signature,
)
from .meta_common import retry_after_seconds as _retry_after_seconds

__all__ = [
    "SIGNATURE_HEADER",
    "SIGNATURE_PREFIX",
    "WhatsAppCloudProvider",
    "error_from_graph",
    "load_payload",
    "phone_number_ids",
    "sign",
]

logger = logging.getLogger(__name__)

WEBHOOK_OBJECT = "whatsapp_business_account"
# Prefix of biz_opaque_callback_data on every message we send: a status webhook echoes it back, so a
# status can find our message even when the send response (with the wamid) was lost.
CALLBACK_PREFIX = "alexia:"

# Graph error codes -> what the caller should do.
# https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes
# Throttling (courier's WACThrottlingErrorCodes, plus Graph's 613 "Calls to this api have exceeded the
# rate limit") -> RateLimited. The value is the back-off in seconds when no Retry-After header is sent:
# 130429 is a per-second throughput cap, so a short wait suffices; 131056 (pair rate, about one message
# per 6 s to the same user with burst penalties) and the hourly/daily Graph and WABA limits need longer.
THROTTLING_RETRY_AFTER: dict[int, float] = {
    4: 60.0,  # app reached its API call rate limit
    613: 60.0,  # calls to this API have exceeded the rate limit
    80007: 60.0,  # WhatsApp Business Account reached its rate limit
    130429: 2.0,  # Cloud API message throughput reached
    131048: 60.0,  # spam rate limit: too many previous messages blocked or flagged
    131056: 60.0,  # (business, consumer) pair rate limit
    133016: 60.0,  # too many (de)registration attempts
}
DEFAULT_RATE_LIMIT_RETRY_AFTER = 5.0
# Temporary on Meta's side -> TransientFailure (retry with backoff). 131053 is a media upload/download
# error (often the media host answering 429/5xx to Meta), which courier also retries.
TRANSIENT_CODES: frozenset[int] = frozenset({1, 2, 131000, 131016, 131053})
# Everything else, including 131047 (24-hour window closed: send a template), 131026 (undeliverable),
# 131051 (unsupported type), 368 (policy block), 190 (token expired), 100 (invalid parameter),
# 131008/131009 (missing/invalid parameter), 132000-132999 (template errors) and 131064 (messaging
# limit reached for the day), is permanent: retrying the same request cannot succeed.

# Permanent errors about the channel itself rather than one message: the pipeline marks the channel in
# error so an admin sees it. Authentication and permissions (0, 3, 10, 190, 131005), a restricted or
# locked account (368, 131031), payment (131042) and registration (131045) problems, any HTTP 401, and
# code 100 with subcode 33 (the phone_number_id does not exist or the token cannot see it).
CHANNEL_ERROR_CODES: frozenset[int] = frozenset({0, 3, 10, 190, 131005, 368, 131031, 131042, 131045})
UNKNOWN_OBJECT = (100, 33)

# Outbound media: WhatsApp takes WebP images only as stickers, and audio and stickers take no caption.
# https://developers.facebook.com/docs/whatsapp/cloud-api/reference/media#supported-media-types
CAPTIONLESS_MEDIA = frozenset({"audio", "sticker"})

# Inbound message types (Message.Type mapping in WhatsAppCloudProvider._message_body).
# https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/messages
INBOUND_MEDIA_TYPES = frozenset({"image", "audio", "video", "document", "sticker", "voice"})
# Message types that carry no customer content (number changes, chat opened): logged and skipped.
SKIPPED_MESSAGE_TYPES = frozenset({"system", "request_welcome", "ephemeral"})
# statuses[].status -> DeliveryStatus; any other value is logged and skipped.
# https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/messages/status
STATUS_MAP: dict[str, DeliveryStatus] = {
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.READ,
    "failed": DeliveryStatus.FAILED,
}


# --- pure helpers ----------------------------------------------------------------------------------------
def load_payload(body: bytes) -> dict[str, Any]:
    """Decode a webhook body, or raise MalformedPayloadError saying why it is not a WhatsApp delivery."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedPayloadError(f"body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise MalformedPayloadError("body is not a JSON object")
    if data.get("object") != WEBHOOK_OBJECT:
        raise MalformedPayloadError(f'"object" is {data.get("object")!r}, expected {WEBHOOK_OBJECT!r}')
    if not isinstance(data.get("entry"), list):
        raise MalformedPayloadError('"entry" is missing or not a list')
    return data


def phone_number_ids(body: bytes) -> list[str]:
    """The business phone_number_ids a delivery is about (metadata.phone_number_id), in order.

    A Meta app has one webhook per app (unless overridden per WABA or number), so a delivery may concern
    numbers of other channels: a router can use this to find the right channel by lookup key.
    """
    found: list[str] = []
    for value in _values(load_payload(body)):
        number = str((value.get("metadata") or {}).get("phone_number_id") or "")
        if number and number not in found:
            found.append(number)
    return found


def _values(data: dict[str, Any]) -> list[dict[str, Any]]:
    values = []
    for entry in data["entry"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("changes", []), list):
            raise MalformedPayloadError("an entry is not an object with a list of changes")
        for change in entry.get("changes", []):
            if not isinstance(change, dict):
                raise MalformedPayloadError("a change is not an object")
            if change.get("field") != "messages":
                logger.info("whatsapp: skipping webhook field %r", change.get("field"))
                continue
            value = change.get("value")
            if not isinstance(value, dict):
                raise MalformedPayloadError('a "messages" change has no value object')
            values.append(value)
    return values


def _timestamp(raw: Any, what: str) -> datetime:
    try:
        return datetime.fromtimestamp(int(raw), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError) as exc:
        raise MalformedPayloadError(f"{what} has no valid unix timestamp: {raw!r}") from exc


def _digits(value: str) -> str:
    return "".join(ch for ch in str(value) if ch.isdigit())


def _error_text(error: dict[str, Any]) -> str:
    """A human reason from a WhatsApp error object: title (or message) and details when they add something.

    Webhook error objects carry `title`/`message` and `error_data.details`; the on-premise shape used by
    some fixtures puts `details` at the top level.
    """
    head = str(error.get("title") or error.get("message") or "").strip()
    details = str((error.get("error_data") or {}).get("details") or error.get("details") or "").strip()
    if details and details.rstrip(".").lower() != head.rstrip(".").lower():
        return f"{head}: {details}" if head else details
    return head


def _error_dict(error: dict[str, Any]) -> dict[str, str]:
    return {
        "code": str(error.get("code", "")),
        "title": str(error.get("title") or error.get("message") or ""),
        "details": str((error.get("error_data") or {}).get("details") or error.get("details") or ""),
    }


def _unsupported(original_type: str, errors: list[dict[str, Any]], fallback_title: str) -> dict[str, Any]:
    """An `unsupported` message whose content names WhatsApp's error (or ours when it sent none)."""
    error = _error_dict(errors[0]) if errors else {"code": "", "title": fallback_title, "details": ""}
    return {"type": "unsupported", "content": {"original_type": original_type, "error": error}}


def error_from_graph(status: int, body: Any, retry_after_header: str | None = None) -> ProviderError:
    """Map a Graph API error answer (HTTP status, decoded body, Retry-After) to our typed error.

    Order matters: throttling codes win over the HTTP status (Meta answers 130429 with 400 or 403, and
    613 with 429), then transient codes and 5xx, then everything else is permanent.
    """
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    code = error.get("code")
    try:
        code = int(code) if code is not None else None
    except (TypeError, ValueError):
        code = None
    message = str(error.get("message") or "").strip()
    details = str((error.get("error_data") or {}).get("details") or "").strip()
    reason = message or f"HTTP {status}"
    if details and details not in reason:
        reason = f"{reason}: {details}"
    code_text = str(code) if code is not None else f"http_{status}"
    retry_after = _retry_after_seconds(retry_after_header)
    if code in THROTTLING_RETRY_AFTER or status == 429:
        if retry_after is None:
            retry_after = THROTTLING_RETRY_AFTER.get(code, DEFAULT_RATE_LIMIT_RETRY_AFTER)
        return RateLimited(retry_after, code=code_text, reason=f"{reason} (retry after {retry_after:g}s)")
    if code in TRANSIENT_CODES or status >= 500:
        return TransientFailure(reason, code=code_text)
    subcode = error.get("error_subcode")
    channel_error = code in CHANNEL_ERROR_CODES or status == 401 or (code, subcode) == UNKNOWN_OBJECT
    return PermanentFailure(code_text, reason, channel_error=channel_error)


class WhatsAppCloudProvider(Provider):
    """A WhatsApp Business phone number on the Cloud API.

    config: phone_number_id, business_account_id (api_base_url optional);
    credentials: access_token, app_secret, verify_token.
    """

    kind = "whatsapp_cloud"
    default_api_base_setting = "WHATSAPP_API_BASE"
    # Default Cloud API throughput per business number (inbound and outbound combined).
    rate_limit_per_second = 80
    # No "list messages" endpoint; biz_opaque_callback_data lets statuses find a message instead.
    supports_lookup = False

    # --- credentials ----------------------------------------------------------------------------------
    @property
    def phone_number_id(self) -> str:
        value = str(self.config.get("phone_number_id") or "")
        if not value:
            raise ConfigurationError("whatsapp_cloud channel has no phone_number_id")
        return value

    def _token(self) -> str:
        token = self.credentials.get("access_token") or ""
        if not token:
            raise ConfigurationError("whatsapp_cloud channel has no access_token")
        return token

    def lookup_key(self) -> str:
        return str(self.config.get("phone_number_id") or "")

    # --- inbound --------------------------------------------------------------------------------------
    def handshake(self, request) -> HttpResponse | None:
        """Answer Meta's subscription check: echo hub.challenge as plain text when the token matches.

        A wrong or missing token gets 403 without the challenge (Meta's docs); a GET without any hub.*
        parameter is not a handshake (None).
        """
        return hub_handshake(
            request,
            str(self.credentials.get("verify_token") or ""),
            label="whatsapp",
            channel_pk=self.channel.pk,
        )

    def verify(self, request) -> None:
        """Check X-Hub-Signature-256 ("sha256=" + hex HMAC-SHA256 of the raw body, key = app secret)."""
        verify_signature(request, str(self.credentials.get("app_secret") or ""))

    def event_id(self, body: bytes, headers: dict) -> str | None:
        """No delivery id on WhatsApp: None (the body hash is used), once the body is known to be one."""
        load_payload(body)
        return None

    def parse(self, body: bytes, headers: dict) -> list[ParsedEvent]:
        """Every message and status of a delivery, in order, for this channel's phone number only.

        A change for another phone_number_id (one Meta app serving several numbers) is skipped so that it
        can never land in this channel's inbox. Message ids repeated within one delivery are kept once;
        value-level errors (no message attached) are logged and skipped.
        """
        data = load_payload(body)
        own_number = self.lookup_key()
        events: list[ParsedEvent] = []
        seen_messages: set[str] = set()
        seen_statuses: set[tuple[str, str]] = set()
        for value in _values(data):
            number = str((value.get("metadata") or {}).get("phone_number_id") or "")
            if own_number and number != own_number:
                logger.warning(
                    "whatsapp: skipping a change for phone_number_id %r on channel %s (%r)",
                    number,
                    self.channel.pk,
                    own_number,
                )
                continue
            value_errors = [e for e in value.get("errors") or [] if isinstance(e, dict)]
            for error in value_errors:
                logger.info("whatsapp: webhook error %s: %s", error.get("code"), _error_text(error))
            names = self._contact_names(value.get("contacts"))
            for message in value.get("messages") or []:
                parsed = self._parse_message(message, names, value_errors)
                if parsed is None:
                    continue
                if parsed.platform_message_id in seen_messages:
                    logger.info("whatsapp: duplicate message %s in one delivery", parsed.platform_message_id)
                    continue
                seen_messages.add(parsed.platform_message_id)
                events.append(parsed)
            for status in value.get("statuses") or []:
                update = self._parse_status(status)
                if update is None:
                    continue
                key = (update.platform_message_id, update.status.value)
                if key in seen_statuses:
                    continue
                seen_statuses.add(key)
                events.append(update)
        return events

    @staticmethod
    def _contact_names(contacts: Any) -> dict[str, str]:
        names: dict[str, str] = {}
        for contact in contacts or []:
            if not isinstance(contact, dict):
                continue
            name = str((contact.get("profile") or {}).get("name") or "")
            for key in ("wa_id", "user_id"):
                if contact.get(key):
                    names[str(contact[key])] = name
        return names

    def _parse_message(
        self, message: Any, names: dict[str, str], value_errors: list[dict[str, Any]]
    ) -> InboundMessage | None:
        if not isinstance(message, dict):
            raise MalformedPayloadError("a message is not an object")
        message_id = str(message.get("id") or "")
        if not message_id:
            raise MalformedPayloadError("a message has no id")
        kind = str(message.get("type") or "")
        if kind in SKIPPED_MESSAGE_TYPES:
            logger.info("whatsapp: skipping %s message %s", kind, message_id)
            return None
        sender = _digits(message.get("from") or "")
        if sender:
            sender_kind, sender_value, name_key = "phone", "+" + sender, sender
        elif message.get("from_user_id"):
            # Business-scoped user id, sent instead of the number for users who hide it.
            sender_kind = "whatsapp"
            sender_value = name_key = str(message["from_user_id"])
        else:
            raise MalformedPayloadError(f"message {message_id} has no sender")
        fields: dict[str, Any] = {
            "platform_message_id": message_id,
            "sender_kind": sender_kind,
            "sender_value": sender_value,
            "sender_name": names.get(name_key, ""),
            "timestamp": _timestamp(message.get("timestamp"), f"message {message_id}"),
        }
        content: dict[str, Any] = {}
        context = message.get("context") or {}
        if context.get("id"):
            fields["reply_to_platform_id"] = str(context["id"])
        if context.get("forwarded") or context.get("frequently_forwarded"):
            content["forwarded"] = True
        if message.get("referral"):
            content["referral"] = message["referral"]
        fields.update(self._message_body(kind, message, value_errors))
        content.update(fields.pop("content", {}))
        return InboundMessage(content=content, **fields)

    @staticmethod
    def _message_body(
        kind: str, message: dict[str, Any], value_errors: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """type, text, content and attachments of one message, by WhatsApp message type.

        https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/messages
        """
        errors = [e for e in message.get("errors") or [] if isinstance(e, dict)]
        if errors or kind == "unsupported":
            return _unsupported(kind, errors or value_errors, "Unsupported message type")
        body = message.get(kind)
        if kind == "text" and isinstance(body, dict):
            return {"type": "text", "text": str(body.get("body") or "")}
        if kind in INBOUND_MEDIA_TYPES and isinstance(body, dict):
            # Cloud API sends voice notes as audio with voice=true; the older on-premise API as "voice".
            media_kind = "voice" if kind == "audio" and body.get("voice") else kind
            attachment = InboundAttachment(
                kind=media_kind,
                content_type=str(body.get("mime_type") or ""),
                filename=str(body.get("filename") or ""),
                platform_media_id=str(body.get("id") or ""),
            )
            return {"type": "media", "text": str(body.get("caption") or ""), "attachments": (attachment,)}
        if kind == "location" and isinstance(body, dict):
            location = {key: body.get(key) for key in ("latitude", "longitude", "name", "address")}
            if body.get("url"):
                location["url"] = body["url"]
            return {"type": "location", "content": location}
        if kind == "contacts" and isinstance(body, list):
            return {"type": "contact", "content": {"contacts": body}}
        if kind == "reaction" and isinstance(body, dict):
            # An empty or absent emoji means the customer removed their reaction.
            reaction = {
                "emoji": str(body.get("emoji") or ""),
                "message_id": str(body.get("message_id") or ""),
            }
            return {"type": "reaction", "content": reaction}
        if kind == "button" and isinstance(body, dict):
            # A quick-reply button of a template we sent: payload is the button's id.
            content = {
                "interactive_type": "button",
                "id": str(body.get("payload") or ""),
                "title": str(body.get("text") or ""),
            }
            return {"type": "interactive", "text": str(body.get("text") or ""), "content": content}
        if kind == "interactive" and isinstance(body, dict):
            return WhatsAppCloudProvider._interactive(body, value_errors)
        if kind == "order" and isinstance(body, dict):
            # A cart sent from a catalog message: the reply to an interactive product message.
            return {
                "type": "interactive",
                "text": str(body.get("text") or ""),
                "content": {"interactive_type": "order", "order": body},
            }
        logger.info("whatsapp: message %s of unknown type %r kept as unsupported", message.get("id"), kind)
        return _unsupported(kind, value_errors, f"Message type {kind!r} is not supported")

    @staticmethod
    def _interactive(body: dict[str, Any], value_errors: list[dict[str, Any]]) -> dict[str, Any]:
        subtype = str(body.get("type") or "")
        reply = body.get(subtype)
        if subtype in ("button_reply", "list_reply") and isinstance(reply, dict):
            content = {
                "interactive_type": subtype,
                "id": str(reply.get("id") or ""),
                "title": str(reply.get("title") or ""),
            }
            if reply.get("description"):
                content["description"] = reply["description"]
            return {"type": "interactive", "text": str(reply.get("title") or ""), "content": content}
        if subtype == "nfm_reply" and isinstance(reply, dict):
            # A WhatsApp Flow's answer: response_json is a JSON document inside a string.
            raw = reply.get("response_json")
            try:
                response = json.loads(raw) if isinstance(raw, str) else raw
            except ValueError:
                response = raw
            content = {"interactive_type": subtype, "name": reply.get("name"), "response": response}
            return {"type": "interactive", "text": str(reply.get("body") or ""), "content": content}
        return _unsupported("interactive", value_errors, f"Interactive reply {subtype!r} is not supported")

    @staticmethod
    def _parse_status(status: Any) -> StatusUpdate | None:
        """https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/messages/status"""
        if not isinstance(status, dict):
            raise MalformedPayloadError("a status is not an object")
        message_id = str(status.get("id") or "")
        if not message_id:
            raise MalformedPayloadError("a status has no message id")
        value = STATUS_MAP.get(str(status.get("status") or ""))
        if value is None:
            logger.info("whatsapp: skipping status %r of %s", status.get("status"), message_id)
            return None
        error_code = error_reason = ""
        errors = [e for e in status.get("errors") or [] if isinstance(e, dict)]
        if errors:
            error_code = str(errors[0].get("code", ""))
            error_reason = _error_text(errors[0])
        callback = str(status.get("biz_opaque_callback_data") or "")
        return StatusUpdate(
            platform_message_id=message_id,
            status=value,
            timestamp=_timestamp(status.get("timestamp"), f"status of {message_id}"),
            error_code=error_code,
            error_reason=error_reason,
            our_reference=callback[len(CALLBACK_PREFIX) :] if callback.startswith(CALLBACK_PREFIX) else "",
        )

    # --- outbound -------------------------------------------------------------------------------------
    def _request(self, method: str, url: str, **kwargs) -> requests.Response:
        """One Graph call with a timeout, transport errors mapped to typed errors, no status check.

        A connection that fails before the request is written is safe to retry (TransientFailure); a read
        timeout or a connection dropped after writing may mean Meta accepted it (AmbiguousFailure).
        """
        headers = {"Authorization": f"Bearer {self._token()}", **kwargs.pop("headers", {})}
        return graph_request(
            self.http,
            method,
            url,
            headers=headers,
            timeout=self.timeout,
            platform="WhatsApp",
            api_base=self.api_base,
            **kwargs,
        )

    def _call(self, method: str, url: str, *, ambiguous_body: bool, **kwargs) -> dict[str, Any]:
        """_request plus status mapping; returns the decoded JSON answer of a 2xx."""
        response = self._request(method, url, **kwargs)
        try:
            data = response.json()
        except ValueError:
            data = None
        if not 200 <= response.status_code < 300:
            raise error_from_graph(response.status_code, data, response.headers.get("Retry-After"))
        if not isinstance(data, dict):
            text = f"WhatsApp answered {response.status_code} with a body that is not a JSON object"
            if ambiguous_body:
                raise AmbiguousFailure(text, code="bad_response")
            raise TransientFailure(text, code="bad_response")
        return data

    def message_payload(self, outbound: OutboundMessage, media_id: str = "") -> dict[str, Any]:
        """The JSON body of POST /{phone_number_id}/messages for `outbound` (no HTTP).

        `media_id` is the id of an uploaded attachment, used instead of its link.
        https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages
        """
        payload: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": _digits(outbound.to),
        }
        if not payload["to"]:
            raise PermanentFailure("invalid_recipient", f"{outbound.to!r} is not a phone number")
        if outbound.type == "reaction":
            target = str(outbound.content.get("message_id") or outbound.reply_to_platform_id or "")
            if not target:
                raise PermanentFailure("invalid_reaction", "a reaction needs the message_id it reacts to")
            payload["type"] = "reaction"
            payload["reaction"] = {"message_id": target, "emoji": str(outbound.content.get("emoji") or "")}
        elif outbound.template:
            payload["type"] = "template"
            payload["template"] = self._template(outbound.template)
        elif outbound.attachments:
            if len(outbound.attachments) > 1:
                raise PermanentFailure(
                    "too_many_attachments", "a WhatsApp message carries one attachment; send one message each"
                )
            kind, media = self._media(outbound.attachments[0], media_id)
            if outbound.text:
                if kind in CAPTIONLESS_MEDIA:
                    raise PermanentFailure(
                        "caption_not_supported",
                        f"WhatsApp does not allow text with {kind}: send the text apart",
                    )
                media["caption"] = outbound.text
            payload["type"] = kind
            payload[kind] = media
        elif outbound.text:
            payload["type"] = "text"
            payload["text"] = {"body": outbound.text, "preview_url": False}
        else:
            raise PermanentFailure(
                "empty_message", "nothing to send: no text, template, attachment or reaction"
            )
        if outbound.reply_to_platform_id and outbound.type != "reaction":
            payload["context"] = {"message_id": outbound.reply_to_platform_id}
        payload["biz_opaque_callback_data"] = f"{CALLBACK_PREFIX}{outbound.message_id}"
        return payload

    @staticmethod
    def _template(template: dict[str, Any]) -> dict[str, Any]:
        """{"name", "language", "variables"} -> a template object with body text parameters.

        `language` is a code ("en_US") or a ready Graph language object.
        """
        if not template.get("name") or not template.get("language"):
            raise PermanentFailure("invalid_template", "a template needs a name and a language")
        language = template["language"]
        if not isinstance(language, dict):
            language = {"policy": "deterministic", "code": str(language)}
        result: dict[str, Any] = {"name": str(template["name"]), "language": language}
        variables = template.get("variables") or []
        if variables:
            parameters = [{"type": "text", "text": str(v)} for v in variables]
            result["components"] = [{"type": "body", "parameters": parameters}]
        return result

    @staticmethod
    def _media_kind(content_type: str) -> str:
        major = content_type.split("/", 1)[0].lower()
        if content_type.lower().startswith("image/webp"):
            return "sticker"
        if major in ("image", "audio", "video"):
            return major
        return "document"

    def _media(self, attachment: dict[str, Any], media_id: str) -> tuple[str, dict[str, Any]]:
        content_type = self._content_type(attachment)
        kind = self._media_kind(content_type)
        if media_id:
            media: dict[str, Any] = {"id": media_id}
        elif attachment.get("url"):
            media = {"link": str(attachment["url"])}
        else:
            raise PermanentFailure("invalid_attachment", "an attachment needs a url or an uploaded file")
        if kind == "document":
            filename = attachment.get("filename") or (
                Path(attachment["path"]).name if attachment.get("path") else ""
            )
            if filename:
                media["filename"] = str(filename)
        return kind, media

    @staticmethod
    def _content_type(attachment: dict[str, Any]) -> str:
        if attachment.get("content_type"):
            return str(attachment["content_type"])
        name = attachment.get("filename") or attachment.get("path") or attachment.get("url") or ""
        return mimetypes.guess_type(str(name))[0] or "application/octet-stream"

    def upload_media(self, path: str, content_type: str = "", filename: str = "") -> str:
        """POST /{phone_number_id}/media (multipart) -> the media id to send by."""
        file_path = Path(path)
        content_type = content_type or mimetypes.guess_type(file_path.name)[0] or "application/octet-stream"
        try:
            data = file_path.read_bytes()
        except OSError as exc:
            raise PermanentFailure(
                "attachment_unreadable", f"cannot read attachment {file_path.name}"
            ) from exc
        try:
            answer = self._call(
                "POST",
                f"{self.api_base}/{self.phone_number_id}/media",
                ambiguous_body=False,
                data={"messaging_product": "whatsapp", "type": content_type},
                files={"file": (filename or file_path.name, data, content_type)},
            )
        except AmbiguousFailure as exc:
            # An upload is not a message: uploading again at worst leaves an unused media id (Meta
            # deletes those after 30 days), so an unanswered upload is simply retryable.
            raise TransientFailure(exc.reason, code=exc.code) from exc
        if not answer.get("id"):
            raise TransientFailure("WhatsApp media upload answered without an id", code="bad_response")
        return str(answer["id"])

    def send(self, outbound: OutboundMessage) -> SendResult:
        """Send text, a template, one attachment (by link or uploaded from `path`) or a reaction.

        An attachment with a `path` is uploaded first (POST /{phone_number_id}/media) and sent by id;
        one with only a `url` is sent by link, which Meta fetches itself. The message POST carries
        biz_opaque_callback_data = "alexia:<message id>".
        """
        media_id = ""
        attachment = outbound.attachments[0] if outbound.attachments else {}
        if attachment.get("path") and not outbound.template and outbound.type != "reaction":
            # Build the message once with a stand-in id, so that one WhatsApp would refuse (a caption on
            # audio, two attachments) fails before anything is uploaded.
            self.message_payload(outbound, media_id="upload-pending")
            media_id = self.upload_media(
                str(attachment["path"]), self._content_type(attachment), str(attachment.get("filename") or "")
            )
        payload = self.message_payload(outbound, media_id=media_id)
        answer = self._call(
            "POST", f"{self.api_base}/{self.phone_number_id}/messages", ambiguous_body=True, json=payload
        )
        messages = answer.get("messages")
        if (
            not isinstance(messages, list)
            or not messages
            or not isinstance(messages[0], dict)
            or not messages[0].get("id")
        ):
            raise AmbiguousFailure(
                "WhatsApp accepted the request but returned no message id", code="bad_response"
            )
        return SendResult(platform_message_id=str(messages[0]["id"]), status=DeliveryStatus.SENT, raw=answer)

    def mark_read(self, platform_message_id: str) -> None:
        """Mark an inbound message (and the ones before it) as read: blue ticks for the customer."""
        self._call(
            "POST",
            f"{self.api_base}/{self.phone_number_id}/messages",
            ambiguous_body=False,
            json={"messaging_product": "whatsapp", "status": "read", "message_id": platform_message_id},
        )

    def download_media(self, attachment: InboundAttachment) -> tuple[bytes, str]:
        """GET /{media_id} for a short-lived URL, then GET that URL with the same Bearer token."""
        if not attachment.platform_media_id:
            raise PermanentFailure("invalid_attachment", "the attachment has no WhatsApp media id")
        meta = self._call("GET", f"{self.api_base}/{attachment.platform_media_id}", ambiguous_body=False)
        if not meta.get("url"):
            raise TransientFailure("WhatsApp media lookup answered without a url", code="bad_response")
        response = self._request("GET", str(meta["url"]))
        if not 200 <= response.status_code < 300:
            try:
                data = response.json()
            except ValueError:
                data = None
            raise error_from_graph(response.status_code, data, response.headers.get("Retry-After"))
        content_type = str(
            meta.get("mime_type") or response.headers.get("Content-Type") or attachment.content_type
        )
        return response.content, content_type

    def check(self) -> CheckResult:
        """GET /{phone_number_id}?fields=display_phone_number,verified_name."""
        try:
            answer = self._call(
                "GET",
                f"{self.api_base}/{self.phone_number_id}",
                ambiguous_body=False,
                params={"fields": "display_phone_number,verified_name"},
            )
        except PermanentFailure as exc:
            return CheckResult(False, f"WhatsApp refused: {exc.reason} (code {exc.code})")
        except (TransientFailure, ConfigurationError) as exc:
            return CheckResult(False, str(exc))
        number = str(answer.get("display_phone_number") or self.phone_number_id)
        name = str(answer.get("verified_name") or "")
        return CheckResult(True, f"Connected as {number} ({name})" if name else f"Connected as {number}")
