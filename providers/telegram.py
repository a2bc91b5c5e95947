"""Telegram Bot API provider (kind ``telegram``).

One channel is one bot. Telegram has no body signature: ``setWebhook(secret_token=S)`` makes it send
``X-Telegram-Bot-Api-Secret-Token: S`` on every webhook POST, which verify() compares in constant time.
A channel runs in one of two modes (``config["mode"]``): ``webhook`` (Telegram POSTs each update to
``channel.webhook_url``) or ``polling`` (a worker calls getUpdates; each update is stored like a webhook
delivery). Telegram redelivers an update until it gets a 2xx, so ``update_id`` is the dedup key.

Every method is ``POST {api_base}/bot{token}/{method}``. The bot token sits in the URL path, so it is
scrubbed from every exception we raise or chain (requests puts the URL in its messages) and never logged.

Docs: https://core.telegram.org/bots/api
"""

import hmac
import json
import logging
import mimetypes
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import requests
from urllib3.exceptions import MaxRetryError

from .base import (
    CheckResult,
    ContactEvent,
    InboundAttachment,
    InboundMessage,
    OutboundMessage,
    ParsedEvent,
    Provider,
    SendResult,
)
from .errors import (
    AmbiguousFailure,
    ConfigurationError,
    MalformedPayloadError,
    PermanentFailure,
    ProviderError,
    RateLimited,
    TransientFailure,
    WebhookVerificationError,
)

logger = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# https://core.telegram.org/bots/api#sendmessage: "1-4096 characters after entities parsing".
TEXT_LIMIT = 4096
# https://core.telegram.org/bots/api#sendphoto: "0-1024 characters after entities parsing".
CAPTION_LIMIT = 1024
# The updates we subscribe to (setWebhook / getUpdates ``allowed_updates``); everything else is skipped.
ALLOWED_UPDATES = ["message", "edited_message", "callback_query", "my_chat_member", "message_reaction"]
# Callback queries carry no date of their own; when the message they belong to has none either
# (inline messages; InaccessibleMessage has date 0) parse() cannot read a time from the payload and,
# being clock-free, returns this sentinel. The caller should substitute its receive time.
NO_DATE = datetime(1970, 1, 1, tzinfo=UTC)

# Photo uploads Telegram re-encodes as JPEG; other images (GIF, SVG, BMP...) go as documents.
PHOTO_CONTENT_TYPES = {"image/jpeg", "image/png", "image/webp"}


def _utf16_len(text: str) -> int:
    """Telegram measures text in UTF-16 code units (entity offsets do); counting so is the safe bound."""
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Split ``text`` into parts of at most ``limit`` UTF-16 units for consecutive sendMessage calls.

    Cuts at the last newline of a window, else at the last space, else hard; a cut point in the first
    half of the window is not used (it would leave a tiny part). Whitespace-only parts are dropped
    (Telegram rejects them with "Bad Request: message text is empty").
    """
    parts: list[str] = []
    rest = text
    while rest:
        if _utf16_len(rest) <= limit:
            if rest.strip():
                parts.append(rest)
            break
        units = 0
        cut = 0
        for char in rest:
            units += 2 if ord(char) > 0xFFFF else 1
            if units > limit:
                break
            cut += 1
        window = rest[:cut]
        brk = window.rfind("\n")
        if brk < cut // 2:
            brk = window.rfind(" ")
        if brk < cut // 2:
            part, rest = window, rest[cut:]
        else:
            part, rest = window[:brk], rest[brk + 1 :]
        if part.strip():
            parts.append(part)
    return parts


def _load_update(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise MalformedPayloadError(f"Telegram update is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise MalformedPayloadError("Telegram update must be a JSON object")
    update_id = data.get("update_id")
    if not isinstance(update_id, int) or isinstance(update_id, bool):
        raise MalformedPayloadError("Telegram update has no integer update_id")
    return data


def _ts(value: Any) -> datetime:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return datetime.fromtimestamp(value, tz=UTC)
    return NO_DATE


def _name(obj: dict[str, Any] | None) -> str:
    """A display name for a User or Chat: "First Last", else "@username", else the chat title."""
    if not obj:
        return ""
    full = " ".join(p for p in (obj.get("first_name"), obj.get("last_name")) if p).strip()
    if full:
        return full
    if obj.get("username"):
        return f"@{obj['username']}"
    return obj.get("title") or ""


def _chat_name(chat: dict[str, Any], user: dict[str, Any] | None) -> str:
    """We reply to the chat: a private chat is named after the person, a group after its title."""
    if chat.get("type") == "private":
        return _name(user) or _name(chat)
    return chat.get("title") or _name(chat) or _name(user)


def _user_info(user: dict[str, Any] | None) -> dict[str, Any]:
    if not user:
        return {}
    info: dict[str, Any] = {"id": str(user.get("id", "")), "name": _name(user)}
    if user.get("username"):
        info["username"] = user["username"]
    return info


def _pid(chat_id: Any, message_id: Any) -> str:
    """Telegram message ids are only unique within a chat, so ours are "chat_id:message_id"."""
    return f"{chat_id}:{message_id}"


# Service messages (members joining, pins, title changes...) are not customer messages.
# https://core.telegram.org/bots/api#message
SERVICE_MESSAGE_KEYS = frozenset(
    {
        "new_chat_members",
        "left_chat_member",
        "new_chat_title",
        "new_chat_photo",
        "delete_chat_photo",
        "group_chat_created",
        "supergroup_chat_created",
        "channel_chat_created",
        "message_auto_delete_timer_changed",
        "migrate_to_chat_id",
        "migrate_from_chat_id",
        "pinned_message",
        "forum_topic_created",
        "forum_topic_edited",
        "forum_topic_closed",
        "forum_topic_reopened",
        "general_forum_topic_hidden",
        "general_forum_topic_unhidden",
        "video_chat_scheduled",
        "video_chat_started",
        "video_chat_ended",
        "video_chat_participants_invited",
        "write_access_allowed",
        "users_shared",
        "chat_shared",
        "boost_added",
        "chat_background_set",
        "proximity_alert_triggered",
    }
)

# Media fields of a Message -> (our attachment kind, default content type).
# https://core.telegram.org/bots/api#message (animation messages also carry "document", so it comes first;
# sticker types: https://core.telegram.org/bots/api#sticker)
MEDIA_FIELDS: list[tuple[str, str, str]] = [
    ("animation", "video", "video/mp4"),
    ("video", "video", "video/mp4"),
    ("video_note", "video", "video/mp4"),
    ("voice", "voice", "audio/ogg"),
    ("audio", "audio", "audio/mpeg"),
    ("document", "document", "application/octet-stream"),
]


@dataclass
class _Call:
    """One Bot API call of a send; ``upload`` is (field name, attachment dict) for a multipart upload."""

    method: str
    fields: dict[str, Any] = field(default_factory=dict)
    upload: tuple[str, dict[str, Any]] | None = None


class TelegramProvider(Provider):
    """The Telegram Bot API. See docs/channels/telegram.md for setup and what is supported."""

    kind = "telegram"
    default_api_base_setting = "TELEGRAM_API_BASE"
    # https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this
    rate_limit_per_second = 30
    per_recipient_rate_per_second = 1

    # --- credentials -----------------------------------------------------------------------------------
    @property
    def bot_token(self) -> str:
        token = self.credentials.get("bot_token") or ""
        if not token:
            raise ConfigurationError("Telegram channel has no bot_token")
        return token

    def lookup_key(self) -> str:
        """The bot id: the part of the token before ":" (public; getMe returns it as ``id``)."""
        token = self.credentials.get("bot_token") or ""
        return token.split(":", 1)[0] if ":" in token else ""

    def _redacted_token(self) -> str:
        return f"{self.lookup_key() or 'bot'}:<redacted>"

    # --- inbound -----------------------------------------------------------------------------------------
    def verify(self, request) -> None:
        """Compare the secret-token header with ``credentials["secret_token"]`` in constant time.

        Messages are python-telegram-bot's (ext/_utils/webhookhandler.py), which also refuses any
        Content-Type other than application/json: Telegram always sends that.
        """
        secret = self.credentials.get("secret_token") or ""
        if not secret:
            raise WebhookVerificationError("channel has no secret_token configured")
        token = request.headers.get(SECRET_HEADER)
        if not token:
            raise WebhookVerificationError("Request did not include the secret token")
        if not hmac.compare_digest(token.encode(), secret.encode()):
            raise WebhookVerificationError("Request had the wrong secret token")
        if request.content_type != "application/json":
            raise WebhookVerificationError("Request did not have Content-Type application/json")

    def event_id(self, body: bytes, headers: dict) -> str | None:
        return str(_load_update(body)["update_id"])

    def parse(self, body: bytes, headers: dict) -> list[ParsedEvent]:
        """One Update -> at most one event. https://core.telegram.org/bots/api#update

        message / edited_message -> InboundMessage (an edit keeps the original's id, is_edit=True);
        callback_query -> interactive InboundMessage; message_reaction -> reaction InboundMessage;
        my_chat_member kicked / back to member -> ContactEvent blocked / unblocked. Channel posts and
        every other update kind are logged and skipped.
        """
        update = _load_update(body)
        update_id = update["update_id"]
        kinds = [key for key in update if key != "update_id"]
        kind = kinds[0] if kinds else ""
        obj = update.get(kind)
        if not isinstance(obj, dict):
            logger.info("telegram update %s skipped: no update object (keys %s)", update_id, kinds)
            return []
        handler = {
            "message": self._parse_message,
            "edited_message": self._parse_message,
            "callback_query": self._parse_callback,
            "my_chat_member": self._parse_my_chat_member,
            "message_reaction": self._parse_reaction,
        }.get(kind)
        if handler is None:
            logger.info("telegram update %s skipped: %s is not handled", update_id, kind)
            return []
        try:
            event = handler(update_id, kind, obj)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise MalformedPayloadError(
                f"Telegram {kind} in update {update_id} is malformed: {exc!r}"
            ) from exc
        return [event] if event is not None else []

    def _parse_message(self, update_id: int, kind: str, msg: dict[str, Any]) -> InboundMessage | None:
        """A Message. https://core.telegram.org/bots/api#message

        | Message field                    | our type    | notes                                       |
        |----------------------------------|-------------|---------------------------------------------|
        | text                             | text        | "/cmd" commands kept as text + content      |
        | photo[]                          | media       | largest size, image/jpeg, caption as text   |
        | animation/video/video_note/voice/audio/document | media | file_id as platform_media_id   |
        | sticker                          | media       | webp / tgs / webm by sticker kind           |
        | venue, location                  | location    | venue first: it also carries a location     |
        | contact                          | contact     |                                             |
        | web_app_data                     | interactive | text = data sent by the Web App             |
        | service fields (pins, joins...)  | skipped     |                                             |
        | anything else (poll, dice...)    | unsupported |                                             |
        """
        chat = msg["chat"]
        chat_id = chat["id"]
        user = msg.get("from")
        is_edit = kind == "edited_message"
        present = SERVICE_MESSAGE_KEYS.intersection(msg)
        if present:
            logger.info(
                "telegram update %s skipped: service message (%s)", update_id, ", ".join(sorted(present))
            )
            return None

        content: dict[str, Any] = {}
        if chat.get("type") != "private":
            content["chat_type"] = chat.get("type", "")
            if user:
                content["from"] = _user_info(user)
        msg_type = "text"
        text = msg.get("text") or msg.get("caption") or ""
        attachments: list[InboundAttachment] = []

        if "text" in msg:
            command = next(
                (
                    e
                    for e in msg.get("entities") or []
                    if e.get("type") == "bot_command" and e.get("offset") == 0
                ),
                None,
            )
            if command is not None:
                content["command"] = text[: command["length"]].split("@", 1)[0]
        elif msg.get("photo"):
            best = max(
                msg["photo"], key=lambda s: (s.get("width", 0) * s.get("height", 0), s.get("file_size", 0))
            )
            msg_type = "media"
            attachments.append(
                InboundAttachment(
                    kind="image",
                    content_type="image/jpeg",
                    platform_media_id=best["file_id"],
                    size=best.get("file_size"),
                )
            )
        elif "sticker" in msg:
            sticker = msg["sticker"]
            if sticker.get("is_animated"):
                content_type = "application/x-tgsticker"
            elif sticker.get("is_video"):
                content_type = "video/webm"
            else:
                content_type = "image/webp"
            msg_type = "media"
            if sticker.get("emoji"):
                content["emoji"] = sticker["emoji"]
            attachments.append(
                InboundAttachment(
                    kind="sticker",
                    content_type=content_type,
                    platform_media_id=sticker["file_id"],
                    size=sticker.get("file_size"),
                )
            )
        elif any(name in msg for name, _, _ in MEDIA_FIELDS):
            name, att_kind, default_type = next(f for f in MEDIA_FIELDS if f[0] in msg)
            media = msg[name]
            msg_type = "media"
            attachments.append(
                InboundAttachment(
                    kind=att_kind,
                    content_type=media.get("mime_type") or default_type,
                    filename=media.get("file_name") or "",
                    platform_media_id=media["file_id"],
                    size=media.get("file_size"),
                )
            )
        elif "venue" in msg or "location" in msg:
            venue = msg.get("venue") or {}
            location = venue.get("location") or msg.get("location") or {}
            msg_type = "location"
            content.update(
                latitude=location["latitude"],
                longitude=location["longitude"],
                title=venue.get("title", ""),
                address=venue.get("address", ""),
            )
        elif "contact" in msg:
            card = msg["contact"]
            msg_type = "contact"
            content.update(
                name=_name(card),
                phone_number=card.get("phone_number", ""),
                first_name=card.get("first_name", ""),
                last_name=card.get("last_name", ""),
            )
            if card.get("user_id"):
                content["user_id"] = str(card["user_id"])
            if card.get("vcard"):
                content["vcard"] = card["vcard"]
        elif "web_app_data" in msg:
            data = msg["web_app_data"]
            msg_type = "interactive"
            text = data.get("data", "")
            content.update(kind="web_app_data", data=text, button_text=data.get("button_text", ""))
        else:
            fields = sorted(set(msg) - {"message_id", "from", "chat", "date", "edit_date", "sender_chat"})
            msg_type = "unsupported"
            content["fields"] = fields

        reply = msg.get("reply_to_message")
        reply_to = ""
        if isinstance(reply, dict) and "message_id" in reply:
            reply_to = _pid((reply.get("chat") or chat)["id"], reply["message_id"])

        return InboundMessage(
            platform_message_id=_pid(chat_id, msg["message_id"]),
            sender_kind="telegram",
            sender_value=str(chat_id),
            sender_name=_chat_name(chat, user),
            # An edit is dated when it happened (edit_date); the message keeps its original id.
            timestamp=_ts(msg.get("edit_date") if is_edit and msg.get("edit_date") else msg.get("date")),
            type=msg_type,
            text=text,
            content=content,
            attachments=tuple(attachments),
            reply_to_platform_id=reply_to,
            is_edit=is_edit,
        )

    def _parse_callback(self, update_id: int, kind: str, query: dict[str, Any]) -> InboundMessage:
        """An inline-keyboard button press. https://core.telegram.org/bots/api#callbackquery

        Its id is unique per bot, so the message id is "cb:<id>". We reply to the chat of the message the
        button was on, or to the user (a private chat id equals the user id) for inline messages, which
        have no chat. A CallbackQuery has no date: the button message's date is used (see NO_DATE).
        """
        user = query.get("from") or {}
        message = query.get("message") or {}
        chat = message.get("chat") or {}
        sender_id = chat["id"] if chat else user["id"]
        content: dict[str, Any] = {"callback_query_id": str(query["id"])}
        data = query.get("data") or query.get("game_short_name") or ""
        content["data"] = data
        if message.get("message_id") is not None and chat:
            content["message_id"] = _pid(chat["id"], message["message_id"])
        for key in ("inline_message_id", "chat_instance", "game_short_name"):
            if query.get(key):
                content[key] = query[key]
        if user:
            content["from"] = _user_info(user)
        return InboundMessage(
            platform_message_id=f"cb:{query['id']}",
            sender_kind="telegram",
            sender_value=str(sender_id),
            sender_name=_chat_name(chat, user) if chat else _name(user),
            timestamp=_ts(message.get("date")),
            type="interactive",
            text=data,
            content=content,
            reply_to_platform_id=content.get("message_id", ""),
        )

    def _parse_reaction(self, update_id: int, kind: str, reaction: dict[str, Any]) -> InboundMessage:
        """A user changed their reaction to a message.

        https://core.telegram.org/bots/api#messagereactionupdated
        Only delivered when the bot is a chat administrator and "message_reaction" is in allowed_updates.
        A reaction has no message id of its own: "reaction:<update_id>" (update ids are unique per bot).
        An empty new_reaction list means the reaction was removed (content["emoji"] == "").
        """
        chat = reaction["chat"]
        user = reaction.get("user") or reaction.get("actor_chat")
        new = reaction.get("new_reaction") or []
        emoji = next((r.get("emoji") or r.get("custom_emoji_id", "") for r in new), "")
        target = _pid(chat["id"], reaction["message_id"])
        content: dict[str, Any] = {
            "emoji": emoji,
            "message_id": target,
            "new_reaction": new,
            "old_reaction": reaction.get("old_reaction") or [],
        }
        if user:
            content["from"] = _user_info(user)
        return InboundMessage(
            platform_message_id=f"reaction:{update_id}",
            sender_kind="telegram",
            sender_value=str(chat["id"]),
            sender_name=_chat_name(chat, user),
            timestamp=_ts(reaction.get("date")),
            type="reaction",
            text=emoji,
            content=content,
            reply_to_platform_id=target,
        )

    def _parse_my_chat_member(self, update_id: int, kind: str, change: dict[str, Any]) -> ContactEvent | None:
        """The bot's own membership changed. https://core.telegram.org/bots/api#chatmemberupdated

        | old status -> new status    | event     | meaning                                              |
        |-----------------------------|-----------|------------------------------------------------------|
        | any -> kicked               | blocked   | private chat: the user blocked the bot; group: removed |
        | kicked -> member            | unblocked | the user unblocked / restarted the bot                |
        | other changes               | skipped   | bot added to a group, promoted...                     |
        """
        chat = change["chat"]
        old = (change.get("old_chat_member") or {}).get("status", "")
        new = (change.get("new_chat_member") or {}).get("status", "")
        if new == "kicked":
            event = "blocked"
        elif new == "member" and old == "kicked":
            event = "unblocked"
        else:
            logger.info("telegram update %s skipped: my_chat_member %s -> %s", update_id, old, new)
            return None
        return ContactEvent(
            sender_kind="telegram",
            sender_value=str(chat["id"]),
            event=event,
            timestamp=_ts(change.get("date")),
            reason=f"bot status in {chat.get('type', 'chat')} chat changed from {old} to {new}",
        )

    # --- HTTP --------------------------------------------------------------------------------------------
    def _method_url(self, method: str) -> str:
        return f"{self.api_base}/bot{self.bot_token}/{method}"

    def _scrub(self, exc: BaseException) -> None:
        """Remove the bot token from an exception chain in place (messages, .url, .request.url).

        requests/urllib3 exceptions embed the URL, i.e. the token; we chain them with ``from exc``, so
        anything that logs our error with its traceback would print them.
        """
        token = self.credentials.get("bot_token") or ""
        if not token:
            return
        secrets = {token, quote(token, safe="")}
        redacted = self._redacted_token()

        def clean(value: Any) -> Any:
            if isinstance(value, str):
                for secret in secrets:
                    value = value.replace(secret, redacted)
            return value

        seen: set[int] = set()
        stack: list[Any] = [exc]
        while stack:
            current = stack.pop()
            if not isinstance(current, BaseException) or id(current) in seen:
                continue
            seen.add(id(current))
            current.args = tuple(clean(arg) for arg in current.args)
            stack.extend(arg for arg in current.args if isinstance(arg, BaseException))
            if isinstance(getattr(current, "url", None), str):
                current.url = clean(current.url)
            request = getattr(current, "request", None)
            if request is not None and isinstance(getattr(request, "url", None), str):
                request.url = clean(request.url)
            stack.extend([current.__cause__, current.__context__, getattr(current, "reason", None)])

    def _http(self, verb: str, url: str, what: str, **kwargs: Any) -> requests.Response:
        """One HTTP call with a timeout, transport errors mapped to typed errors (token scrubbed).

        ConnectTimeout and connection failures raised through urllib3's MaxRetryError happen before the
        request is sent: TransientFailure. A ReadTimeout or a connection dropped mid-exchange means
        Telegram may have accepted the request: AmbiguousFailure.
        """
        kwargs.setdefault("timeout", self.timeout)
        try:
            return self.http().request(verb, url, **kwargs)
        except requests.ConnectTimeout as exc:
            self._scrub(exc)
            raise TransientFailure(
                f"{what}: timed out connecting to Telegram", code="connect_timeout"
            ) from exc
        except requests.ReadTimeout as exc:
            self._scrub(exc)
            raise AmbiguousFailure(
                f"{what}: no answer from Telegram within {kwargs['timeout']}s", code="read_timeout"
            ) from exc
        except requests.ConnectionError as exc:
            self._scrub(exc)
            before_send = bool(exc.args) and isinstance(exc.args[0], MaxRetryError)
            if before_send or isinstance(exc, requests.exceptions.SSLError):
                raise TransientFailure(
                    f"{what}: could not connect to Telegram", code="connection_error"
                ) from exc
            raise AmbiguousFailure(
                f"{what}: connection to Telegram dropped after the request was sent",
                code="connection_dropped",
            ) from exc
        except requests.RequestException as exc:
            self._scrub(exc)
            raise TransientFailure(f"{what}: {type(exc).__name__}", code="request_error") from exc

    def _result(self, response: requests.Response, method: str) -> Any:
        """Unwrap the Bot API envelope ``{ok, result | error_code, description, parameters}``.

        https://core.telegram.org/bots/api#making-requests and #responseparameters

        | response                                   | error                                       |
        |--------------------------------------------|---------------------------------------------|
        | parameters.retry_after (429 flood control) | RateLimited(retry_after)                    |
        | parameters.migrate_to_chat_id (400)        | PermanentFailure(code, reason with new id)  |
        | 5xx, or non-JSON 5xx from the proxy        | TransientFailure                            |
        | 429 without parameters                     | RateLimited(Retry-After header or None)     |
        | other 4xx: 400, 401, 403, 404, 409         | PermanentFailure(error_code, description)   |

        Like python-telegram-bot, ``parameters`` decide before the status code, and only ``ok: true``
        (the boolean) counts as success.
        """
        status = response.status_code
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            if status >= 500:
                raise TransientFailure(f"{method}: Telegram answered HTTP {status}", code=str(status))
            if status == 429:
                raise RateLimited(_retry_after_header(response), code="429")
            raise PermanentFailure(
                str(status), f"{method}: Telegram answered HTTP {status} without a JSON body"
            )
        if data.get("ok") is True and status < 400:
            return data.get("result")
        code = str(data.get("error_code") or status)
        description = str(data.get("description") or "")
        parameters = data.get("parameters") if isinstance(data.get("parameters"), dict) else {}
        if parameters.get("retry_after") is not None:
            raise RateLimited(
                float(parameters["retry_after"]), code="429", reason=description or "Too Many Requests"
            )
        if parameters.get("migrate_to_chat_id") is not None:
            new_id = parameters["migrate_to_chat_id"]
            raise PermanentFailure(
                code,
                f"{description or 'Bad Request: group chat was upgraded to a supergroup chat'}; "
                f"the group is now the supergroup with chat id {new_id} (migrate_to_chat_id)",
            )
        if status >= 500 or code.startswith("5"):
            raise TransientFailure(f"{method}: {description or f'HTTP {status}'}", code=code)
        if status == 429 or code == "429":
            raise RateLimited(
                _retry_after_header(response), code="429", reason=description or "Too Many Requests"
            )
        raise PermanentFailure(code, description or f"HTTP {status}")

    def _api(self, method: str, payload: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        response = self._http("POST", self._method_url(method), method, json=payload or {}, **kwargs)
        return self._result(response, method)

    # --- outbound ----------------------------------------------------------------------------------------
    def send(self, outbound: OutboundMessage) -> SendResult:
        """Send text and/or attachments to chat ``outbound.to``.

        Attachments go first, each with sendPhoto (JPEG/PNG/WebP) or sendDocument, by URL or as a
        multipart upload when the attachment has a local ``path``; the text is the first one's caption
        when it fits in 1024 characters, else it follows as messages. Text over 4096 characters is split
        (split_text) into consecutive sendMessage calls. The result id is the first part's
        "chat_id:message_id". If a later part fails, earlier ones were delivered: retrying would repeat
        them, so a PermanentFailure("partial_send") says what went out instead.
        """
        chat_id = outbound.to
        calls = self._build_calls(outbound)
        if not calls:
            raise PermanentFailure("empty_message", "nothing to send: no text and no attachment")
        results: list[dict[str, Any]] = []
        for index, call in enumerate(calls):
            try:
                results.append(self._execute(call) or {})
            except ProviderError as exc:
                if not results:
                    raise
                first = _pid((results[0].get("chat") or {}).get("id", chat_id), results[0].get("message_id"))
                raise PermanentFailure(
                    "partial_send",
                    f"part {index + 1} of {len(calls)} failed after {first} was delivered: {exc}",
                ) from exc
        first = results[0]
        ids = [_pid((r.get("chat") or {}).get("id", chat_id), r.get("message_id")) for r in results]
        return SendResult(
            platform_message_id=ids[0],
            segments=len(calls),
            raw={"message_ids": ids, "result": first},
        )

    def _build_calls(self, outbound: OutboundMessage) -> list[_Call]:
        chat_id = outbound.to
        text = outbound.text or ""
        calls: list[_Call] = []
        caption_used = False
        for att in outbound.attachments:
            method, field_name = (
                ("sendPhoto", "photo")
                if _content_type(att) in PHOTO_CONTENT_TYPES
                else ("sendDocument", "document")
            )
            fields: dict[str, Any] = {"chat_id": chat_id}
            if not caption_used and text.strip() and _utf16_len(text) <= CAPTION_LIMIT:
                fields["caption"] = text
                caption_used = True
            if att.get("path"):
                calls.append(_Call(method, fields, upload=(field_name, att)))
            else:
                fields[field_name] = att.get("url", "")
                calls.append(_Call(method, fields))
        if not caption_used:
            calls.extend(
                _Call("sendMessage", {"chat_id": chat_id, "text": part}) for part in split_text(text)
            )
        reply = _reply_parameters(outbound.reply_to_platform_id, chat_id)
        if calls and reply:
            calls[0].fields["reply_parameters"] = reply
        return calls

    def _execute(self, call: _Call) -> Any:
        if call.upload is None:
            return self._api(call.method, call.fields)
        field_name, att = call.upload
        data = {k: json.dumps(v) if isinstance(v, dict | list) else str(v) for k, v in call.fields.items()}
        path = att["path"]
        filename = att.get("filename") or str(path).rsplit("/", 1)[-1]
        try:
            handle = open(path, "rb")
        except OSError as exc:
            raise PermanentFailure(
                "attachment_unreadable", f"cannot read attachment {filename}: {exc.strerror}"
            ) from exc
        with handle:
            files = {field_name: (filename, handle, _content_type(att) or "application/octet-stream")}
            response = self._http("POST", self._method_url(call.method), call.method, data=data, files=files)
        return self._result(response, call.method)

    # --- webhook, polling, media, health -------------------------------------------------------------
    def set_webhook(self, url: str, secret_token: str) -> bool:
        """setWebhook with our allowed_updates. https://core.telegram.org/bots/api#setwebhook

        Telegram requires HTTPS on port 443, 80, 88 or 8443; otherwise PermanentFailure("400", ...).
        """
        return bool(
            self._api(
                "setWebhook",
                {
                    "url": url,
                    "secret_token": secret_token,
                    "allowed_updates": ALLOWED_UPDATES,
                    "drop_pending_updates": False,
                },
            )
        )

    def delete_webhook(self) -> bool:
        """deleteWebhook, keeping pending updates (getUpdates then serves them)."""
        return bool(self._api("deleteWebhook", {"drop_pending_updates": False}))

    def on_activate(self) -> None:
        """Webhook mode: point the bot at our URL with the secret; polling mode: remove any webhook
        (Telegram refuses getUpdates while one is set: "Conflict: can't use getUpdates method while
        webhook is active"). Platform refusals become ConfigurationError for the admin."""
        mode = self.config.get("mode", "webhook")
        try:
            if mode == "polling":
                self.delete_webhook()
                return
            secret = self.credentials.get("secret_token") or ""
            if not secret:
                raise ConfigurationError("Telegram channel has no secret_token")
            self.set_webhook(self.channel.webhook_url, secret)
        except PermanentFailure as exc:
            raise ConfigurationError(f"Telegram refused the webhook setup: {exc.reason}") from exc

    def on_pause(self) -> None:
        try:
            self.delete_webhook()
        except PermanentFailure as exc:
            raise ConfigurationError(f"Telegram refused deleteWebhook: {exc.reason}") from exc

    def get_updates(self, offset: int | None, timeout: int) -> list[tuple[int, bytes]]:
        """Long-poll getUpdates: [(update_id, that update as JSON bytes)], oldest first.

        https://core.telegram.org/bots/api#getupdates. Passing ``offset`` = last update_id + 1 confirms
        everything before it. Each update is re-serialized on its own (Telegram signs nothing, so the
        bytes need not be the wire bytes) for the pipeline to store like a webhook delivery. The read
        timeout is the long-poll timeout plus the provider timeout.
        """
        payload: dict[str, Any] = {"timeout": int(timeout), "allowed_updates": ALLOWED_UPDATES}
        if offset is not None:
            payload["offset"] = int(offset)
        result = self._api("getUpdates", payload, timeout=(self.timeout, self.timeout + max(int(timeout), 0)))
        if not isinstance(result, list):
            raise TransientFailure("getUpdates: result is not a list", code="bad_response")
        updates = []
        for update in result:
            raw = json.dumps(update, ensure_ascii=False, separators=(",", ":")).encode()
            updates.append((int(update["update_id"]), raw))
        return updates

    def download_media(self, attachment: InboundAttachment) -> tuple[bytes, str]:
        """getFile, then GET {api_base}/file/bot{token}/{file_path}.

        https://core.telegram.org/bots/api#getfile
        Bots can download files up to 20 MB ("Bad Request: file is too big" otherwise). The file server
        answers application/octet-stream, so the type comes from the attachment, else the file path.
        """
        if not attachment.platform_media_id:
            raise PermanentFailure("no_file_id", "attachment has no Telegram file_id")
        result = self._api("getFile", {"file_id": attachment.platform_media_id})
        file_path = (result or {}).get("file_path")
        if not file_path:
            raise PermanentFailure("no_file_path", "getFile returned no file_path (file not downloadable)")
        url = f"{self.api_base}/file/bot{self.bot_token}/{file_path}"
        response = self._http("GET", url, "file download")
        if response.status_code != 200:
            self._result(response, "file download")
            raise TransientFailure(
                f"file download: HTTP {response.status_code}", code=str(response.status_code)
            )
        content_type = (
            attachment.content_type
            or mimetypes.guess_type(file_path)[0]
            or response.headers.get("Content-Type", "").split(";")[0].strip()
            or "application/octet-stream"
        )
        return response.content, content_type

    def check(self) -> CheckResult:
        """getMe: proves the token. https://core.telegram.org/bots/api#getme"""
        try:
            me = self._api("getMe")
        except ProviderError as exc:
            return CheckResult(False, getattr(exc, "reason", None) or str(exc))
        return CheckResult(True, f"Connected as @{(me or {}).get('username', '')}")


def _retry_after_header(response: requests.Response) -> float | None:
    try:
        return float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return None


def _content_type(att: dict[str, Any]) -> str:
    declared = (att.get("content_type") or "").split(";")[0].strip().lower()
    if declared:
        return declared
    name = att.get("filename") or att.get("path") or att.get("url") or ""
    return (mimetypes.guess_type(str(name).split("?", 1)[0])[0] or "").lower()


def _reply_parameters(reply_to: str, chat_id: str) -> dict[str, Any] | None:
    """ "chat:msg" -> ReplyParameters. https://core.telegram.org/bots/api#replyparameters

    allow_sending_without_reply: a deleted original must not fail the send. Ids that are not
    "chat:message" (callback "cb:..." or reaction ids) have nothing to quote.
    """
    chat, _, message = reply_to.rpartition(":")
    if not chat or not message.isdigit():
        return None
    try:
        int(chat)
    except ValueError:
        return None
    params: dict[str, Any] = {"message_id": int(message), "allow_sending_without_reply": True}
    if chat != str(chat_id):
        params["chat_id"] = int(chat)
    return params
