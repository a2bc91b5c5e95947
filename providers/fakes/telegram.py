"""A local fake of the Telegram Bot API (https://core.telegram.org/bots/api).

Answers ``POST|GET /bot<token>/<method>`` for sendMessage, sendPhoto, sendDocument, setWebhook,
deleteWebhook, getMe, getFile and getUpdates, and ``GET /file/bot<token>/<file_path>``, with the real
envelope ``{"ok": true, "result": ...}`` / ``{"ok": false, "error_code", "description", "parameters"}``.
Parameters are read from the query string, JSON, form or multipart bodies, as the real API does.

State that tests and the demo can set: ``accepted_tokens`` (None: any well-formed token), ``blocked``
chats (403 bot was blocked), ``migrated`` chats (400 with migrate_to_chat_id), ``files`` served by
getFile, queued updates for getUpdates (``enqueue_update``), and ``drop_next`` to close a connection
after reading the request without answering (the client cannot know whether it was accepted).
"""

import email.parser
import email.policy
import json
import re
import threading
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .server import FakePlatform, FakeResponse, RecordedRequest

TOKEN_RE = re.compile(r"^\d+:[A-Za-z0-9_-]+$")
TEXT_LIMIT = 4096


def error(status: int, description: str, **parameters: Any) -> FakeResponse:
    """The Bot API error envelope; HTTP status mirrors error_code."""
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return FakeResponse(status, body)


class FakeTelegram(FakePlatform):
    name = "telegram"
    routes = [
        ("POST", r"/bot(?P<token>[^/]+)/(?P<method>[A-Za-z]+)", "handle_method"),
        ("GET", r"/bot(?P<token>[^/]+)/(?P<method>[A-Za-z]+)", "handle_method"),
        ("GET", r"/file/bot(?P<token>[^/]+)/(?P<path>.+)", "handle_file"),
    ]

    bot_first_name = "Alexia Test Bot"
    bot_username = "alexia_test_bot"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        # None: every well-formed "<digits>:<secret>" token is accepted.
        self.accepted_tokens: set[str] | None = None
        self.blocked: set[str] = set()
        self.migrated: dict[str, int] = {}
        # file_id -> (file_path, bytes)
        self.files: dict[str, tuple[str, bytes]] = {}
        # Real Telegram only accepts HTTPS webhooks; the credential-free demo may turn this off.
        self.require_https = True
        self.webhook: dict[str, Any] | None = None
        self._updates: list[dict[str, Any]] = []
        self._updates_cond = threading.Condition()
        self._message_ids: dict[str, int] = {}
        self._drops = 0

    # --- helpers for tests and the demo -------------------------------------------------------------
    @staticmethod
    def rate_limited(retry_after: int = 30) -> FakeResponse:
        return error(429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after)

    @staticmethod
    def bot_blocked() -> FakeResponse:
        return error(403, "Forbidden: bot was blocked by the user")

    @staticmethod
    def bad_request(description: str = "Bad Request: chat not found") -> FakeResponse:
        return error(400, description)

    @staticmethod
    def chat_migrated(new_chat_id: int) -> FakeResponse:
        return error(
            400, "Bad Request: group chat was upgraded to a supergroup chat", migrate_to_chat_id=new_chat_id
        )

    @staticmethod
    def server_error(status: int = 502) -> FakeResponse:
        return FakeResponse(
            status, "<html><body><h1>502 Bad Gateway</h1></body></html>", content_type="text/html"
        )

    @staticmethod
    def update_text(
        update_id: int,
        chat_id: int,
        text: str,
        first_name: str = "Ada",
        *,
        last_name: str = "",
        username: str = "",
        message_id: int | None = None,
        date: int | None = None,
    ) -> dict[str, Any]:
        """A private-chat text Update as Telegram sends it."""
        person: dict[str, Any] = {"id": chat_id, "first_name": first_name}
        if last_name:
            person["last_name"] = last_name
        if username:
            person["username"] = username
        return {
            "update_id": update_id,
            "message": {
                "message_id": message_id if message_id is not None else update_id,
                "from": {**person, "is_bot": False, "language_code": "en"},
                "chat": {**person, "type": "private"},
                "date": date if date is not None else int(time.time()),
                "text": text,
            },
        }

    def enqueue_update(self, update: dict[str, Any]) -> None:
        with self._updates_cond:
            self._updates.append(update)
            self._updates_cond.notify_all()

    def add_file(self, file_id: str, content: bytes, file_path: str) -> None:
        self.files[file_id] = (file_path, content)

    def drop_next(self, count: int = 1) -> None:
        with self._lock:
            self._drops += count

    def sent(self, method: str = "") -> list[dict[str, Any]]:
        """The parameters of every recorded call to ``method`` (all methods when empty)."""
        out = []
        for req in self.received("/bot"):
            if req.path.startswith("/bot") and (not method or req.path.endswith(f"/{method}")):
                out.append(params_of(req)[0])
        return out

    def reset(self) -> None:
        super().reset()
        with self._updates_cond:
            self._updates.clear()
        self.webhook = None
        self.accepted_tokens = None
        self.require_https = True
        self.blocked.clear()
        self.migrated.clear()
        self.files.clear()
        self._message_ids.clear()
        with self._lock:
            self._drops = 0

    # --- routes --------------------------------------------------------------------------------------
    def _token_ok(self, token: str) -> bool:
        if self.accepted_tokens is not None:
            return token in self.accepted_tokens
        return bool(TOKEN_RE.match(token))

    def handle_method(self, req: RecordedRequest, match: re.Match) -> FakeResponse:
        if not self._token_ok(match["token"]):
            return error(401, "Unauthorized")
        handler = getattr(self, f"method_{match['method']}", None)
        if handler is None:
            return error(404, "Not Found")
        try:
            params, files = params_of(req)
        except ValueError as exc:
            return error(400, f"Bad Request: {exc}")
        return handler(match["token"], params, files)

    def handle_file(self, req: RecordedRequest, match: re.Match) -> FakeResponse:
        if not self._token_ok(match["token"]):
            return error(401, "Unauthorized")
        for file_path, content in self.files.values():
            if file_path == match["path"]:
                return FakeResponse(200, content, content_type="application/octet-stream")
        return error(404, "Not Found")

    def _chat_error(self, chat_id: str) -> FakeResponse | None:
        if not chat_id:
            return error(400, "Bad Request: chat_id is empty")
        if not re.fullmatch(r"-?\d+|@\w+", chat_id):
            return error(400, "Bad Request: chat not found")
        if chat_id in self.blocked:
            return self.bot_blocked()
        if chat_id in self.migrated:
            return self.chat_migrated(self.migrated[chat_id])
        return None

    def _message(self, token: str, chat_id: str, params: dict[str, Any], **content: Any) -> FakeResponse:
        reply = params.get("reply_parameters")
        if isinstance(reply, str):
            try:
                reply = json.loads(reply)
            except ValueError:
                return error(400, "Bad Request: can't parse reply parameters JSON object")
        with self._lock:
            self._message_ids[chat_id] = self._message_ids.get(chat_id, 0) + 1
            message_id = self._message_ids[chat_id]
        if chat_id.startswith("@"):
            chat: dict[str, Any] = {
                "id": -1000000000000 - len(chat_id),
                "type": "channel",
                "username": chat_id[1:],
            }
        else:
            chat = {"id": int(chat_id), "type": "supergroup" if chat_id.startswith("-") else "private"}
        result: dict[str, Any] = {
            "message_id": message_id,
            "from": self._me(token),
            "chat": chat,
            "date": int(time.time()),
            **content,
        }
        if isinstance(reply, dict) and reply.get("message_id"):
            result["reply_to_message"] = {"message_id": int(reply["message_id"]), "chat": chat}
        return FakeResponse(200, {"ok": True, "result": result})

    def _me(self, token: str) -> dict[str, Any]:
        return {
            "id": int(token.split(":", 1)[0]),
            "is_bot": True,
            "first_name": self.bot_first_name,
            "username": self.bot_username,
        }

    def method_getMe(self, token: str, params: dict[str, Any], files: dict) -> FakeResponse:
        result = {**self._me(token), "can_join_groups": True, "can_read_all_group_messages": False}
        return FakeResponse(200, {"ok": True, "result": result})

    def method_sendMessage(self, token: str, params: dict[str, Any], files: dict) -> FakeResponse:
        chat_id = str(params.get("chat_id", ""))
        text = str(params.get("text", ""))
        if failure := self._chat_error(chat_id):
            return failure
        if not text.strip():
            return error(400, "Bad Request: message text is empty")
        if len(text) > TEXT_LIMIT:
            return error(400, "Bad Request: message is too long")
        return self._message(token, chat_id, params, text=text)

    def _send_file(self, token: str, params: dict[str, Any], files: dict, field: str) -> FakeResponse:
        chat_id = str(params.get("chat_id", ""))
        if failure := self._chat_error(chat_id):
            return failure
        upload = files.get(field)
        by_reference = params.get(field)
        if upload is None and not by_reference:
            return error(400, f"Bad Request: there is no {field} in the request")
        if (
            upload is None
            and not re.match(r"https?://", str(by_reference))
            and str(by_reference) not in self.files
        ):
            return error(400, "Bad Request: wrong file identifier/HTTP URL specified")
        file_id = f"fake-{field}-{len(self.requests)}"
        size = len(upload[1]) if upload else 0
        if field == "photo":
            media: Any = [{"file_id": file_id, "file_unique_id": file_id[-8:], "width": 320, "height": 240}]
            if size:
                media[0]["file_size"] = size
        else:
            media = {
                "file_id": file_id,
                "file_unique_id": file_id[-8:],
                "file_name": upload[0] if upload else "",
            }
            if upload:
                media.update(mime_type=upload[2], file_size=size)
        content: dict[str, Any] = {field: media}
        if params.get("caption"):
            content["caption"] = str(params["caption"])
        return self._message(token, chat_id, params, **content)

    def method_sendPhoto(self, token: str, params: dict[str, Any], files: dict) -> FakeResponse:
        return self._send_file(token, params, files, "photo")

    def method_sendDocument(self, token: str, params: dict[str, Any], files: dict) -> FakeResponse:
        return self._send_file(token, params, files, "document")

    def method_setWebhook(self, token: str, params: dict[str, Any], files: dict) -> FakeResponse:
        url = str(params.get("url", ""))
        if not url:
            self.webhook = None
            return FakeResponse(200, {"ok": True, "result": True, "description": "Webhook was deleted"})
        if self.require_https and not url.startswith("https://"):
            return error(400, "Bad Request: bad webhook: HTTPS url must be provided for webhook")
        secret = params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            return error(400, "Bad Request: secret token contains unallowed characters")
        allowed = params.get("allowed_updates")
        if isinstance(allowed, str):
            allowed = json.loads(allowed)
        self.webhook = {"url": url, "secret_token": secret, "allowed_updates": allowed}
        return FakeResponse(200, {"ok": True, "result": True, "description": "Webhook was set"})

    def method_deleteWebhook(self, token: str, params: dict[str, Any], files: dict) -> FakeResponse:
        description = "Webhook was deleted" if self.webhook else "Webhook is already deleted"
        self.webhook = None
        if _truthy(params.get("drop_pending_updates")):
            with self._updates_cond:
                self._updates.clear()
        return FakeResponse(200, {"ok": True, "result": True, "description": description})

    def method_getFile(self, token: str, params: dict[str, Any], files: dict) -> FakeResponse:
        file_id = str(params.get("file_id", ""))
        if file_id not in self.files:
            return error(400, "Bad Request: invalid file id")
        file_path, content = self.files[file_id]
        result = {
            "file_id": file_id,
            "file_unique_id": file_id[-8:],
            "file_size": len(content),
            "file_path": file_path,
        }
        return FakeResponse(200, {"ok": True, "result": result})

    def method_getUpdates(self, token: str, params: dict[str, Any], files: dict) -> FakeResponse:
        """Serves queued updates with update_id >= offset (older ones are confirmed and forgotten);
        with none pending, waits up to ``timeout`` seconds for enqueue_update, like long polling."""
        if self.webhook:
            return error(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete "
                "the webhook first",
            )
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        wait = float(params.get("timeout") or 0)
        deadline = time.monotonic() + wait
        with self._updates_cond:
            while True:
                if offset:
                    self._updates = [u for u in self._updates if u["update_id"] >= offset]
                if self._updates or time.monotonic() >= deadline:
                    break
                self._updates_cond.wait(timeout=max(deadline - time.monotonic(), 0))
            pending = list(self._updates[:limit])
        return FakeResponse(200, {"ok": True, "result": pending})

    # --- dropped connections -------------------------------------------------------------------------
    def _take_drop(self) -> bool:
        with self._lock:
            if self._drops > 0:
                self._drops -= 1
                return True
        return False

    def _handler_class(self):
        base = super()._handler_class()
        platform = self

        class _Handler(base):
            def _handle(self) -> None:
                if platform._take_drop():
                    length = int(self.headers.get("Content-Length") or 0)
                    body = self.rfile.read(length) if length else b""
                    parts = urlsplit(self.path)
                    dropped = RecordedRequest(
                        method=self.command,
                        path=parts.path,
                        query=parse_qs(parts.query, keep_blank_values=True),
                        headers=dict(self.headers.items()),
                        body=body,
                        at=time.time(),
                    )
                    with platform._lock:
                        platform.requests.append(dropped)
                    self.close_connection = True
                    return
                super()._handle()

            do_GET = do_POST = _handle

        return _Handler


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in {"true", "1"}


def params_of(req: RecordedRequest) -> tuple[dict[str, Any], dict[str, tuple[str, bytes, str]]]:
    """The call's parameters from query string + JSON / form / multipart body, and uploaded files
    as {field: (filename, bytes, content type)}."""
    params: dict[str, Any] = {k: v[-1] for k, v in req.query.items()}
    files: dict[str, tuple[str, bytes, str]] = {}
    content_type = req.headers.get("Content-Type", "")
    if not req.body:
        return params, files
    if content_type.startswith("application/json"):
        data = json.loads(req.body)
        if not isinstance(data, dict):
            raise ValueError("request body must be a JSON object")
        params.update(data)
    elif content_type.startswith("multipart/form-data"):
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + req.body
        )
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True) or b""
            filename = part.get_filename()
            if filename is not None:
                files[name] = (filename, payload, part.get_content_type())
            else:
                params[name] = payload.decode()
    else:
        params.update({k: v[-1] for k, v in parse_qs(req.body.decode(), keep_blank_values=True).items()})
    return params, files
