"""A local fake of Twilio's 2010-04-01 Messaging REST API, answering with Twilio's real shapes.

Routes (all behind HTTP Basic `AccountSid:AuthToken`, 401 code 20003 otherwise):
    POST /2010-04-01/Accounts/<sid>/Messages.json    create: 201 Message resource, or Twilio's 400 errors
    GET  /2010-04-01/Accounts/<sid>/Messages.json    list: Twilio's page shape, filtered by To/From/DateSent
    GET  /2010-04-01/Accounts/<sid>.json             the Account resource
    GET  /2010-04-01/Accounts/<sid>/Messages/<MM>/Media/<ME>   307 to the stored bytes (like Twilio's CDN)
    GET  /media-content/<ME>                         the bytes, no auth (a pre-signed storage URL)

Created messages answer `queued` with no date_sent, as Twilio does; the stored copy then moves to `sent`
with date_sent set, unless `hold_queued` is True (a message still sitting in Twilio's queue).
Error envelope: https://www.twilio.com/docs/usage/twilios-response#response-formats-exceptions
"""

import base64
import re
import secrets
import threading
from datetime import UTC, date, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

from twilio.request_validator import RequestValidator

from providers.sms import count_segments

from .server import FakePlatform, FakeResponse, RecordedRequest

API = "/2010-04-01"
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_SHORT_CODE = re.compile(r"^\d{3,8}$")
BODY_LIMIT = 1600


def sign(url: str, params: dict, auth_token: str) -> str:
    """The X-Twilio-Signature Twilio would send for a form POST of `params` to `url`."""
    return RequestValidator(auth_token).compute_signature(url, params)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


class FakeTwilio(FakePlatform):
    name = "twilio"
    routes = [
        ("POST", rf"{API}/Accounts/(?P<sid>[^/]+)/Messages\.json", "create_message"),
        ("GET", rf"{API}/Accounts/(?P<sid>[^/]+)/Messages\.json", "list_messages"),
        (
            "GET",
            rf"{API}/Accounts/(?P<sid>[^/]+)/Messages/(?P<msid>[^/]+)/Media/(?P<media>[^/.]+)",
            "get_media",
        ),
        ("GET", r"/media-content/(?P<media>[^/]+)", "media_content"),
        ("GET", rf"{API}/Accounts/(?P<sid>[^/]+)\.json", "get_account"),
    ]

    def __init__(
        self,
        account_sid: str = "AC" + "1" * 32,
        auth_token: str = "twilio-auth-token",
        *,
        friendly_name: str = "Alexia test account",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host=host, port=port)
        self.accounts: dict[str, dict[str, str]] = {}
        self.add_account(account_sid, auth_token, friendly_name=friendly_name)
        self.messages: list[dict[str, Any]] = []
        self.media: dict[str, tuple[bytes, str]] = {}
        # Numbers that replied STOP: sending to them answers 21610, like Twilio's opt-out list.
        self.unsubscribed: set[str] = set()
        self.hold_queued = False
        self._data_lock = threading.Lock()
        self._initial_accounts = {sid: dict(account) for sid, account in self.accounts.items()}

    # --- setup helpers -------------------------------------------------------------------------------
    def add_account(
        self, account_sid: str, auth_token: str, *, friendly_name: str = "", status: str = "active"
    ) -> None:
        self.accounts[account_sid] = {
            "auth_token": auth_token,
            "friendly_name": friendly_name,
            "status": status,
        }

    def add_media(self, account_sid: str, message_sid: str, data: bytes, content_type: str) -> str:
        """Store inbound media; returns the MediaUrl Twilio would put in the webhook."""
        media_sid = _sid("ME")
        self.media[media_sid] = (data, content_type)
        return f"{self.base_url}{API}/Accounts/{account_sid}/Messages/{message_sid}/Media/{media_sid}"

    def reset(self) -> None:
        """Forget requests, scripts, messages and opt-outs; accounts go back to the constructor's."""
        super().reset()
        with self._data_lock:
            self.messages.clear()
            self.unsubscribed.clear()
            self.media.clear()
            self.accounts = {sid: dict(account) for sid, account in self._initial_accounts.items()}
        self.hold_queued = False

    @staticmethod
    def error(
        code: int, message: str, status: int = 400, headers: dict[str, str] | None = None
    ) -> FakeResponse:
        """Twilio's REST error envelope."""
        body = {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        }
        return FakeResponse(status, body, headers=dict(headers or {}))

    @classmethod
    def rate_limited(cls, retry_after: int | None = None) -> FakeResponse:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        return cls.error(20429, "Too Many Requests", 429, headers)

    @staticmethod
    def inbound_sms_form(
        account_sid: str,
        from_: str,
        to: str,
        body: str,
        message_sid: str | None = None,
        *,
        profile_name: str = "",
        media: list[tuple[str, str]] | None = None,
    ) -> dict[str, str]:
        """The fields of an inbound-message webhook as Twilio posts them (media: [(url, content type)])."""
        sid = message_sid or _sid("MM" if media else "SM")
        media = media or []
        form = {
            "ToCountry": "US",
            "ToState": "CA",
            "SmsMessageSid": sid,
            "NumMedia": str(len(media)),
            "ToCity": "",
            "FromZip": "",
            "SmsSid": sid,
            "FromState": "",
            "SmsStatus": "received",
            "FromCity": "",
            "Body": body,
            "FromCountry": "US",
            "To": to,
            "ToZip": "",
            "NumSegments": str(count_segments(body)),
            "MessageSid": sid,
            "AccountSid": account_sid,
            "From": from_,
            "ApiVersion": "2010-04-01",
        }
        for index, (url, content_type) in enumerate(media):
            form[f"MediaUrl{index}"] = url
            form[f"MediaContentType{index}"] = content_type
        if from_.startswith("whatsapp:"):
            for key in (
                "ToCountry",
                "ToState",
                "ToCity",
                "FromZip",
                "FromState",
                "FromCity",
                "FromCountry",
                "ToZip",
            ):
                form.pop(key)
            form["ProfileName"] = profile_name
            form["WaId"] = from_.removeprefix("whatsapp:+")
            form["MessageType"] = "image" if media else "text"
        return form

    @staticmethod
    def status_form(
        account_sid: str,
        message_sid: str,
        status: str,
        *,
        from_: str = "",
        to: str = "",
        error_code: int | str | None = None,
    ) -> dict[str, str]:
        """The fields of a status callback as Twilio posts them."""
        form = {
            "SmsSid": message_sid,
            "SmsStatus": status,
            "MessageStatus": status,
            "To": to,
            "MessageSid": message_sid,
            "AccountSid": account_sid,
            "From": from_,
            "ApiVersion": "2010-04-01",
        }
        if to.startswith("whatsapp:"):
            form["ChannelPrefix"] = "whatsapp"
            form["ChannelToAddress"] = to.removeprefix("whatsapp:")
        if error_code is not None:
            form["ErrorCode"] = str(error_code)
        return form

    # --- auth ----------------------------------------------------------------------------------------
    def _authenticate(self, req: RecordedRequest, sid: str) -> FakeResponse | None:
        header = next((v for k, v in req.headers.items() if k.lower() == "authorization"), "")
        user = password = ""
        if header.startswith("Basic "):
            try:
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                user = password = ""
        account = self.accounts.get(user)
        if account is None or not secrets.compare_digest(account["auth_token"], password):
            return self.error(20003, "Authenticate", 401)
        if user != sid:
            return self.error(20404, f"The requested resource {req.path} was not found", 404)
        return None

    # --- handlers ------------------------------------------------------------------------------------
    def create_message(self, req: RecordedRequest, match: re.Match) -> FakeResponse:
        sid = match["sid"]
        denied = self._authenticate(req, sid)
        if denied:
            return denied
        form = req.form
        to = (form.get("To") or [""])[0]
        from_ = (form.get("From") or [""])[0]
        service = (form.get("MessagingServiceSid") or [""])[0]
        body = (form.get("Body") or [""])[0]
        media = form.get("MediaUrl") or []
        content_sid = (form.get("ContentSid") or [""])[0]
        if not to:
            return self.error(21604, "A 'To' phone number is required.")
        if not from_ and not service:
            return self.error(21603, "A 'From' phone number is required.")
        if not body and not media and not content_sid:
            return self.error(21602, "Message body is required.")
        whatsapp = to.startswith("whatsapp:")
        number = to.removeprefix("whatsapp:")
        if not _E164.match(number):
            return self.error(21211, f"The 'To' number {to} is not a valid phone number.")
        sender = from_.removeprefix("whatsapp:")
        if from_ and not (_E164.match(sender) or _SHORT_CODE.match(sender)):
            return self.error(
                21606,
                f"The From phone number {from_} is not a valid, SMS-capable inbound phone number "
                "or short code for your account.",
            )
        if from_ and whatsapp != from_.startswith("whatsapp:"):
            return self.error(
                63007, f"Twilio could not find a Channel with the specified From address: {from_}"
            )
        if len(body) > BODY_LIMIT:
            return self.error(21617, "The concatenated message body exceeds the 1600 character limit.")
        if number in self.unsubscribed and not whatsapp:
            return self.error(21610, "Attempt to send to unsubscribed recipient")

        message_sid = _sid("MM" if media else "SM")
        now = _now()
        message = {
            "account_sid": sid,
            "api_version": "2010-04-01",
            "body": body,
            "date_created": format_datetime(now),
            "date_sent": None,
            "date_updated": format_datetime(now),
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": from_ or None,
            "messaging_service_sid": service or None,
            "num_media": str(len(media)),
            "num_segments": "1" if whatsapp else str(count_segments(body)),
            "price": None,
            "price_unit": "USD",
            "sid": message_sid,
            "status": "accepted" if service and not from_ else "queued",
            "subresource_uris": {"media": f"{API}/Accounts/{sid}/Messages/{message_sid}/Media.json"},
            "to": to,
            "uri": f"{API}/Accounts/{sid}/Messages/{message_sid}.json",
        }
        stored = dict(message)
        if not self.hold_queued:
            stored.update(status="sent", date_sent=format_datetime(now))
        with self._data_lock:
            self.messages.append(stored)
        return FakeResponse(201, message)

    def list_messages(self, req: RecordedRequest, match: re.Match) -> FakeResponse:
        sid = match["sid"]
        denied = self._authenticate(req, sid)
        if denied:
            return denied
        query = {key: values[0] for key, values in req.query.items()}
        with self._data_lock:
            rows = [m for m in self.messages if m["account_sid"] == sid]
        if "To" in query:
            rows = [m for m in rows if m["to"] == query["To"]]
        if "From" in query:
            rows = [m for m in rows if m["from"] == query["From"]]
        for key, keep in (
            ("DateSent", lambda d, v: d == v),
            ("DateSent>", lambda d, v: d >= v),
            ("DateSent<", lambda d, v: d <= v),
        ):
            if key in query:
                wanted = date.fromisoformat(query[key][:10])
                rows = [
                    m
                    for m in rows
                    if m["date_sent"] and keep(parsedate_to_datetime(m["date_sent"]).date(), wanted)
                ]
        rows.sort(key=lambda m: parsedate_to_datetime(m["date_created"]), reverse=True)
        page_size = int(query.get("PageSize", 50))
        path = f"{API}/Accounts/{sid}/Messages.json"
        return FakeResponse(
            200,
            {
                "end": max(min(len(rows), page_size) - 1, 0),
                "first_page_uri": f"{path}?PageSize={page_size}&Page=0",
                "messages": rows[:page_size],
                "next_page_uri": None,
                "page": 0,
                "page_size": page_size,
                "previous_page_uri": None,
                "start": 0,
                "uri": f"{path}?PageSize={page_size}&Page=0",
            },
        )

    def get_account(self, req: RecordedRequest, match: re.Match) -> FakeResponse:
        sid = match["sid"]
        denied = self._authenticate(req, sid)
        if denied:
            return denied
        account = self.accounts[sid]
        created = format_datetime(datetime(2020, 1, 1, tzinfo=UTC))
        return FakeResponse(
            200,
            {
                "auth_token": account["auth_token"],
                "date_created": created,
                "date_updated": created,
                "friendly_name": account["friendly_name"],
                "owner_account_sid": sid,
                "sid": sid,
                "status": account["status"],
                "subresource_uris": {"messages": f"{API}/Accounts/{sid}/Messages.json"},
                "type": "Full",
                "uri": f"{API}/Accounts/{sid}.json",
            },
        )

    def get_media(self, req: RecordedRequest, match: re.Match) -> FakeResponse:
        denied = self._authenticate(req, match["sid"])
        if denied:
            return denied
        if match["media"] not in self.media:
            return self.error(20404, f"The requested resource {req.path} was not found", 404)
        return FakeResponse(307, "", headers={"Location": f"{self.base_url}/media-content/{match['media']}"})

    def media_content(self, req: RecordedRequest, match: re.Match) -> FakeResponse:
        if match["media"] not in self.media:
            return FakeResponse(404, "<Error><Code>NoSuchKey</Code></Error>", content_type="application/xml")
        data, content_type = self.media[match["media"]]
        return FakeResponse(200, data, content_type=content_type)
