"""A local fake of the WhatsApp Cloud API (Graph API) for tests, benchmarks and the demo.

Point a channel's `api_base_url` at `fake.base_url + "/v21.0"`. Routes, with or without the version
prefix, as on graph.facebook.com:

    POST /{phone_number_id}/messages     send (or mark read) -> {"messaging_product","contacts","messages"}
    POST /{phone_number_id}/media        multipart upload -> {"id"}
    GET  /{media_id}                     -> {"messaging_product","url","mime_type","sha256","file_size","id"}
    GET  /whatsapp_business/attachments/?mid=...   the media bytes (Bearer token required, like lookaside)
    GET  /{phone_number_id}?fields=...   -> {"display_phone_number","verified_name","id"}

Every route checks the Bearer token and answers Graph's code 190 (401) when it is wrong. Errors use the
Graph envelope; build your own with FakeWhatsApp.error(code, message, status) and script them with
fail_next(). The payload helpers build webhook bodies in Meta's shape, signed with sign().
"""

import email.parser
import email.policy
import hashlib
import itertools
import secrets
import threading
import time
from typing import Any

from providers.whatsapp_cloud import sign

from .server import FakePlatform, FakeResponse, RecordedRequest

__all__ = ["FakeWhatsApp", "sign"]

VERSION = r"(?:/v\d+\.\d+)?"


class FakeWhatsApp(FakePlatform):
    name = "whatsapp"
    routes = [
        ("POST", VERSION + r"/(?P<phone_number_id>[^/]+)/messages", "send_message"),
        ("POST", VERSION + r"/(?P<phone_number_id>[^/]+)/media", "upload_media"),
        ("GET", r"/whatsapp_business/attachments/?", "media_bytes"),
        ("GET", VERSION + r"/(?P<object_id>[^/]+)", "get_object"),
    ]

    def __init__(
        self,
        access_token: str = "EAAG-test-token",
        phone_number_id: str = "106540352242922",
        display_phone_number: str = "+1 555-010-4477",
        verified_name: str = "Alexia Demo",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host=host, port=port)
        self.access_token = access_token
        self.phone_numbers: dict[str, dict[str, str]] = {}
        self.media: dict[str, tuple[bytes, str]] = {}
        self._ids = itertools.count(1)
        self._media_lock = threading.Lock()
        self.add_phone_number(phone_number_id, display_phone_number, verified_name)

    # --- setup -----------------------------------------------------------------------------------------
    def add_phone_number(self, phone_number_id: str, display_phone_number: str, verified_name: str) -> None:
        self.phone_numbers[str(phone_number_id)] = {
            "display_phone_number": display_phone_number,
            "verified_name": verified_name,
        }

    def add_media(self, media_id: str, content: bytes, mime_type: str) -> None:
        """Make an inbound media id downloadable."""
        with self._media_lock:
            self.media[str(media_id)] = (content, mime_type)

    # --- building answers ----------------------------------------------------------------------------------
    @staticmethod
    def error(
        code: int,
        message: str,
        status: int = 400,
        *,
        details: str = "",
        subcode: int | None = None,
        error_type: str = "OAuthException",
        headers: dict[str, str] | None = None,
    ) -> FakeResponse:
        """A Graph error answer: {"error": {message, type, code, error_subcode?, error_data?, fbtrace_id}}."""
        error: dict[str, Any] = {"message": message, "type": error_type, "code": code}
        if subcode is not None:
            error["error_subcode"] = subcode
        if details:
            error["error_data"] = {"messaging_product": "whatsapp", "details": details}
        error["fbtrace_id"] = "A" + secrets.token_urlsafe(16)
        return FakeResponse(status, {"error": error}, headers=dict(headers or {}))

    def _new_wamid(self) -> str:
        return f"wamid.HBgL{next(self._ids):08d}{secrets.token_hex(10).upper()}"

    def _unauthorized(self, req: RecordedRequest) -> FakeResponse | None:
        given = req.headers.get("Authorization") or req.headers.get("authorization") or ""
        if given != f"Bearer {self.access_token}":
            return self.error(190, "Invalid OAuth access token - Cannot parse access token", status=401)
        return None

    def _unknown_object(self, req: RecordedRequest, object_id: str) -> FakeResponse:
        return self.error(
            100,
            f"Unsupported {req.method.lower()} request. Object with ID '{object_id}' does not exist, "
            "cannot be loaded due to missing permissions, or does not support this operation. Please read "
            "the Graph API documentation at https://developers.facebook.com/docs/graph-api",
            subcode=33,
            error_type="GraphMethodException",
        )

    # --- routes ------------------------------------------------------------------------------------------
    def send_message(self, req: RecordedRequest, match) -> FakeResponse:
        if denied := self._unauthorized(req):
            return denied
        if match["phone_number_id"] not in self.phone_numbers:
            return self._unknown_object(req, match["phone_number_id"])
        try:
            body = req.json
        except ValueError:
            return self.error(100, "(#100) Invalid JSON for postcard")
        if not isinstance(body, dict) or body.get("messaging_product") != "whatsapp":
            return self.error(100, "(#100) The parameter messaging_product is required.")
        if body.get("status") == "read":
            if not body.get("message_id"):
                return self.error(100, "(#100) The parameter message_id is required.")
            return FakeResponse(200, {"success": True})
        to = str(body.get("to") or "")
        if not to:
            return self.error(100, "(#100) The parameter to is required.")
        kind = body.get("type", "text")
        if not isinstance(body.get(kind), dict):
            return self.error(
                131008, "(#131008) Required parameter is missing", details=f"Parameter '{kind}' is required."
            )
        return FakeResponse(
            200,
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": to}],
                "messages": [{"id": self._new_wamid()}],
            },
        )

    def upload_media(self, req: RecordedRequest, match) -> FakeResponse:
        if denied := self._unauthorized(req):
            return denied
        if match["phone_number_id"] not in self.phone_numbers:
            return self._unknown_object(req, match["phone_number_id"])
        fields, files = _multipart(req)
        if fields.get("messaging_product") != "whatsapp":
            return self.error(100, "(#100) The parameter messaging_product is required.")
        if "file" not in files:
            return self.error(100, "(#100) The parameter file is required.")
        content, mime_type = files["file"]
        media_id = str(10**15 + next(self._ids))
        self.add_media(media_id, content, fields.get("type") or mime_type)
        return FakeResponse(200, {"id": media_id})

    def media_bytes(self, req: RecordedRequest, match) -> FakeResponse:
        if denied := self._unauthorized(req):
            return denied
        media_id = (req.query.get("mid") or [""])[0]
        with self._media_lock:
            stored = self.media.get(media_id)
        if stored is None:
            return FakeResponse(404, "Not Found", content_type="text/plain")
        return FakeResponse(200, stored[0], content_type=stored[1])

    def get_object(self, req: RecordedRequest, match) -> FakeResponse:
        if denied := self._unauthorized(req):
            return denied
        object_id = match["object_id"]
        if object_id in self.phone_numbers:
            info = self.phone_numbers[object_id]
            fields = [f for f in (req.query.get("fields") or [""])[0].split(",") if f]
            answer = {key: value for key, value in info.items() if not fields or key in fields}
            return FakeResponse(200, {**answer, "id": object_id})
        with self._media_lock:
            stored = self.media.get(object_id)
        if stored is None:
            return self._unknown_object(req, object_id)
        content, mime_type = stored
        return FakeResponse(
            200,
            {
                "messaging_product": "whatsapp",
                "url": f"{self.base_url}/whatsapp_business/attachments/?mid={object_id}&ext=1",
                "mime_type": mime_type,
                "sha256": hashlib.sha256(content).hexdigest(),
                "file_size": len(content),
                "id": object_id,
            },
        )

    # --- webhook bodies ----------------------------------------------------------------------------------
    @staticmethod
    def _envelope(phone_number_id: str, value: dict[str, Any], business_account_id: str) -> dict[str, Any]:
        return {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": business_account_id,
                    "changes": [
                        {
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {
                                    "display_phone_number": "15550104477",
                                    "phone_number_id": phone_number_id,
                                },
                                **value,
                            },
                            "field": "messages",
                        }
                    ],
                }
            ],
        }

    @classmethod
    def inbound_text_payload(
        cls,
        phone_number_id: str,
        from_digits: str,
        text: str,
        name: str,
        wamid: str | None = None,
        timestamp: int | None = None,
        business_account_id: str = "102290129340398",
    ) -> dict[str, Any]:
        """A `messages` webhook body with one text message from `from_digits` (digits, no "+")."""
        value = {
            "contacts": [{"profile": {"name": name}, "wa_id": from_digits}],
            "messages": [
                {
                    "from": from_digits,
                    "id": wamid or f"wamid.HBgL{secrets.token_hex(12).upper()}",
                    "timestamp": str(int(timestamp if timestamp is not None else time.time())),
                    "text": {"body": text},
                    "type": "text",
                }
            ],
        }
        return cls._envelope(phone_number_id, value, business_account_id)

    @classmethod
    def status_payload(
        cls,
        phone_number_id: str,
        wamid: str,
        status: str,
        recipient_digits: str,
        timestamp: int | None = None,
        *,
        error_code: int | None = None,
        error_title: str = "",
        error_details: str = "",
        biz_opaque_callback_data: str = "",
        business_account_id: str = "102290129340398",
    ) -> dict[str, Any]:
        """A `messages` webhook body with one status (sent, delivered, read, failed) of `wamid`."""
        item: dict[str, Any] = {
            "id": wamid,
            "status": status,
            "timestamp": str(int(timestamp if timestamp is not None else time.time())),
            "recipient_id": recipient_digits,
        }
        if biz_opaque_callback_data:
            item["biz_opaque_callback_data"] = biz_opaque_callback_data
        if status != "failed":
            item["conversation"] = {"id": secrets.token_hex(16), "origin": {"type": "service"}}
            item["pricing"] = {"billable": True, "pricing_model": "PMP", "category": "service"}
        if error_code is not None:
            error: dict[str, Any] = {"code": error_code, "title": error_title, "message": error_title}
            if error_details:
                error["error_data"] = {"details": error_details}
            item["errors"] = [error]
        return cls._envelope(phone_number_id, {"statuses": [item]}, business_account_id)


def _multipart(req: RecordedRequest) -> tuple[dict[str, str], dict[str, tuple[bytes, str]]]:
    """Split a multipart/form-data body into plain fields and files (content, content type)."""
    content_type = req.headers.get("Content-Type") or req.headers.get("content-type") or ""
    if not content_type.startswith("multipart/form-data"):
        return {}, {}
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + req.body
    )
    fields: dict[str, str] = {}
    files: dict[str, tuple[bytes, str]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        payload = part.get_payload(decode=True) or b""
        if part.get_filename():
            files[name] = (payload, part.get_content_type())
        else:
            fields[name] = payload.decode()
    return fields, files
