"""A local fake of the Messenger Platform's Graph API (Messenger and Instagram) for tests and the demo.

Point a channel's `api_base_url` at `fake.base_url + "/v21.0"`. Routes, with or without the version
prefix, as on graph.facebook.com:

    POST /me/messages, /{id}/messages    Send API (JSON or multipart with filedata) -> {"recipient_id", "message_id"}
    POST /{page_id}/subscribed_apps      -> {"success": true}
    GET  /{id}?fields=...                a Page ({"name", "id"}) or an Instagram account ({"username", "name", "id"})
    GET  /cdn/{name}                     inbound media bytes, like Meta's CDN: no token needed

Graph routes check the token (an `Authorization: Bearer` header or the `access_token` query parameter)
and answer code 190 when it is wrong; when the fake knows the app secret it also checks
`appsecret_proof` if one is sent. Errors use the Graph envelope: build one with FakeMeta.error() and
script it with fail_next(). Recipients can be made unavailable (551) or outside the 24-hour window
(10 / 2018278 unless the message carries the HUMAN_AGENT tag). The payload helpers build webhook bodies
in Meta's shape; sign() gives their X-Hub-Signature-256.
"""

import email.parser
import email.policy
import hashlib
import hmac
import itertools
import json
import secrets
import threading
import time
from typing import Any

from providers.meta_common import sign

from .server import FakePlatform, FakeResponse, RecordedRequest

__all__ = ["FakeMeta", "sign"]

VERSION = r"(?:/v\d+\.\d+)?"
MESSAGING_TYPES = ("RESPONSE", "UPDATE", "MESSAGE_TAG")
TEXT_LIMIT = 2000


class FakeMeta(FakePlatform):
    name = "meta"
    routes = [
        ("POST", VERSION + r"/(?P<account>[^/]+)/messages", "send_message"),
        ("POST", VERSION + r"/(?P<account>[^/]+)/subscribed_apps", "subscribe_app"),
        ("GET", r"/cdn/(?P<name>[^/]+)", "media_bytes"),
        ("GET", VERSION + r"/(?P<object_id>[^/]+)", "get_object"),
    ]

    def __init__(
        self,
        access_token: str = "EAAP-test-page-token",
        page_id: str = "1234567890",
        page_name: str = "Alexia Demo Shop",
        instagram_account_id: str = "17841400000000000",
        instagram_username: str = "alexia.demo",
        app_secret: str = "",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host=host, port=port)
        self.access_token = access_token
        self.app_secret = app_secret
        self.page_id = str(page_id)
        self.objects: dict[str, dict[str, str]] = {
            str(page_id): {"name": page_name},
            str(instagram_account_id): {"username": instagram_username, "name": page_name},
        }
        self.unavailable: set[str] = set()
        self.window_closed: set[str] = set()
        self.subscriptions: dict[str, list[str]] = {}
        self.media: dict[str, tuple[bytes, str]] = {}
        # Files sent as multipart filedata: (bytes, content type), in order.
        self.uploads: list[tuple[bytes, str]] = []
        self._ids = itertools.count(1)
        self._lock_media = threading.Lock()

    # --- setup -----------------------------------------------------------------------------------------
    def add_media(self, name: str, content: bytes, content_type: str) -> str:
        """Serve `content` at a CDN-like URL and return that URL (for inbound attachments)."""
        with self._lock_media:
            self.media[name] = (content, content_type)
        return f"{self.base_url}/cdn/{name}"

    # --- building answers ----------------------------------------------------------------------------------
    @staticmethod
    def error(
        code: int,
        message: str,
        status: int = 400,
        *,
        subcode: int | None = None,
        error_type: str = "OAuthException",
        headers: dict[str, str] | None = None,
    ) -> FakeResponse:
        """A Graph error answer: {"error": {message, type, code, error_subcode?, fbtrace_id}}."""
        error: dict[str, Any] = {"message": message, "type": error_type, "code": code}
        if subcode is not None:
            error["error_subcode"] = subcode
        error["fbtrace_id"] = "A" + secrets.token_urlsafe(16)
        return FakeResponse(status, {"error": error}, headers=dict(headers or {}))

    def _denied(self, req: RecordedRequest) -> FakeResponse | None:
        header = req.headers.get("Authorization") or req.headers.get("authorization") or ""
        token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
        token = token or (req.query.get("access_token") or [""])[0]
        if not token:
            return self.error(
                2500, "An active access token must be used to query information about the current user."
            )
        if token != self.access_token:
            return self.error(190, "Invalid OAuth access token - Cannot parse access token")
        proof = (req.query.get("appsecret_proof") or [""])[0]
        if proof and self.app_secret:
            expected = hmac.new(self.app_secret.encode(), token.encode(), hashlib.sha256).hexdigest()
            if not hmac.compare_digest(proof, expected):
                return self.error(
                    100,
                    "Invalid appsecret_proof provided in the API argument",
                    error_type="GraphMethodException",
                )
        return None

    def _unknown_object(self, req: RecordedRequest, object_id: str) -> FakeResponse:
        return self.error(
            100,
            f"Unsupported {req.method.lower()} request. Object with ID '{object_id}' does not exist, cannot be "
            "loaded due to missing permissions, or does not support this operation. Please read the Graph API "
            "documentation at https://developers.facebook.com/docs/graph-api",
            subcode=33,
            error_type="GraphMethodException",
        )

    # --- routes ------------------------------------------------------------------------------------------
    def send_message(self, req: RecordedRequest, match) -> FakeResponse:
        if denied := self._denied(req):
            return denied
        account = match["account"]
        if account != "me" and account not in self.objects:
            return self._unknown_object(req, account)
        body, files = _send_body(req)
        if body is None:
            return self.error(100, "(#100) Invalid JSON for postcard")
        recipient = body.get("recipient") if isinstance(body.get("recipient"), dict) else {}
        recipient_id = str(recipient.get("id") or "")
        if not recipient_id:
            return self.error(100, "(#100) The parameter recipient is required")
        messaging_type = body.get("messaging_type")
        if messaging_type not in MESSAGING_TYPES:
            return self.error(
                100, "(#100) Param messaging_type must be one of {RESPONSE, UPDATE, MESSAGE_TAG}"
            )
        if messaging_type == "MESSAGE_TAG" and not body.get("tag"):
            return self.error(100, "(#100) Tag is required for MESSAGE_TAG messaging type")
        message = body.get("message") if isinstance(body.get("message"), dict) else {}
        text = message.get("text")
        attachment = message.get("attachment") if isinstance(message.get("attachment"), dict) else None
        if not text and attachment is None:
            return self.error(100, "(#100) Must send either message or state")
        if text and len(text) > TEXT_LIMIT:
            return self.error(
                100, f"(#100) Length of param message[text] must be less than or equal to {TEXT_LIMIT}"
            )
        if attachment is not None:
            payload = attachment.get("payload") if isinstance(attachment.get("payload"), dict) else {}
            if not payload.get("url") and "filedata" not in files:
                return self.error(100, "(#100) Incorrect attachment: no url or filedata")
        if "filedata" in files:
            self.uploads.append(files["filedata"])
        if recipient_id in self.unavailable:
            return self.error(551, "(#551) This person isn't available right now.", subcode=1545041)
        if recipient_id in self.window_closed and body.get("tag") != "HUMAN_AGENT":
            return self.error(10, "(#10) This message is sent outside of allowed window.", subcode=2018278)
        return FakeResponse(
            200,
            {
                "recipient_id": recipient_id,
                "message_id": f"m_{next(self._ids):04d}{secrets.token_urlsafe(24)}",
            },
        )

    def subscribe_app(self, req: RecordedRequest, match) -> FakeResponse:
        if denied := self._denied(req):
            return denied
        if match["account"] not in self.objects:
            return self._unknown_object(req, match["account"])
        fields = (req.query.get("subscribed_fields") or [""])[0]
        if not fields:
            return self.error(100, "(#100) The parameter subscribed_fields is required")
        self.subscriptions[match["account"]] = fields.split(",")
        return FakeResponse(200, {"success": True})

    def media_bytes(self, req: RecordedRequest, match) -> FakeResponse:
        with self._lock_media:
            stored = self.media.get(match["name"])
        if stored is None:
            return FakeResponse(403, "URL signature expired", content_type="text/plain")
        return FakeResponse(200, stored[0], content_type=stored[1])

    def get_object(self, req: RecordedRequest, match) -> FakeResponse:
        if denied := self._denied(req):
            return denied
        object_id = match["object_id"]
        if object_id == "me":
            object_id = self.page_id
        info = self.objects.get(object_id)
        if info is None:
            return self._unknown_object(req, object_id)
        fields = [f for f in (req.query.get("fields") or [""])[0].split(",") if f]
        answer = {key: value for key, value in info.items() if not fields or key in fields}
        return FakeResponse(200, {**answer, "id": object_id})

    # --- webhook bodies ----------------------------------------------------------------------------------
    @staticmethod
    def envelope(
        account_id: str, messaging: list[dict[str, Any]], *, object_type: str = "page"
    ) -> dict[str, Any]:
        """{"object", "entry": [{"id", "time", "messaging"}]} as Meta sends it."""
        return {
            "object": object_type,
            "entry": [{"id": account_id, "time": int(time.time() * 1000), "messaging": messaging}],
        }

    @staticmethod
    def _now_ms(timestamp: int | None) -> int:
        return int(timestamp if timestamp is not None else time.time() * 1000)

    @classmethod
    def text_payload(
        cls,
        account_id: str,
        sender_id: str,
        text: str,
        *,
        mid: str | None = None,
        timestamp: int | None = None,
        object_type: str = "page",
    ) -> dict[str, Any]:
        """One text message from `sender_id` (page- or Instagram-scoped id) to `account_id`."""
        event = {
            "sender": {"id": sender_id},
            "recipient": {"id": account_id},
            "timestamp": cls._now_ms(timestamp),
            "message": {"mid": mid or f"m_{secrets.token_urlsafe(24)}", "text": text},
        }
        return cls.envelope(account_id, [event], object_type=object_type)

    @classmethod
    def delivery_payload(
        cls,
        account_id: str,
        sender_id: str,
        *,
        mids: list[str] | None = None,
        watermark: int,
        timestamp: int | None = None,
    ) -> dict[str, Any]:
        """A Messenger delivery receipt: `mids` (may be omitted) and the watermark (ms)."""
        delivery: dict[str, Any] = {"watermark": watermark}
        if mids is not None:
            delivery["mids"] = mids
        event = {
            "sender": {"id": sender_id},
            "recipient": {"id": account_id},
            "timestamp": cls._now_ms(timestamp),
            "delivery": delivery,
        }
        return cls.envelope(account_id, [event])

    @classmethod
    def read_payload(
        cls,
        account_id: str,
        sender_id: str,
        *,
        watermark: int | None = None,
        mid: str | None = None,
        timestamp: int | None = None,
        object_type: str = "page",
    ) -> dict[str, Any]:
        """A read receipt: Messenger sends a watermark (ms), Instagram the mid that was read."""
        read: dict[str, Any] = {}
        if watermark is not None:
            read["watermark"] = watermark
        if mid is not None:
            read["mid"] = mid
        event = {
            "sender": {"id": sender_id},
            "recipient": {"id": account_id},
            "timestamp": cls._now_ms(timestamp),
            "read": read,
        }
        return cls.envelope(account_id, [event], object_type=object_type)

    @classmethod
    def echo_payload(
        cls,
        account_id: str,
        recipient_id: str,
        *,
        mid: str,
        text: str = "",
        app_id: int = 1517776481860111,
        timestamp: int | None = None,
        object_type: str = "page",
    ) -> dict[str, Any]:
        """The echo of a message the Page sent (through us or another app) to `recipient_id`."""
        message: dict[str, Any] = {"is_echo": True, "app_id": app_id, "mid": mid}
        if text:
            message["text"] = text
        event = {
            "sender": {"id": account_id},
            "recipient": {"id": recipient_id},
            "timestamp": cls._now_ms(timestamp),
            "message": message,
        }
        return cls.envelope(account_id, [event], object_type=object_type)


def _send_body(req: RecordedRequest) -> tuple[dict[str, Any] | None, dict[str, tuple[bytes, str]]]:
    """The Send API request as JSON, or from a multipart form (fields hold JSON strings, plus filedata)."""
    content_type = req.headers.get("Content-Type") or req.headers.get("content-type") or ""
    if not content_type.startswith("multipart/form-data"):
        try:
            body = req.json
        except ValueError:
            return None, {}
        return (body if isinstance(body, dict) else None), {}
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + req.body
    )
    fields: dict[str, Any] = {}
    files: dict[str, tuple[bytes, str]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        payload = part.get_payload(decode=True) or b""
        if part.get_filename():
            files[name] = (payload, part.get_content_type())
            continue
        value = payload.decode()
        try:
            fields[name] = json.loads(value) if value.startswith("{") else value
        except ValueError:
            return None, {}
    return fields, files
