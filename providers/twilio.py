"""Twilio Programmable Messaging: SMS/MMS (`twilio_sms`) and WhatsApp through Twilio (`twilio_whatsapp`).

Both kinds share one wire format: Twilio POSTs `application/x-www-form-urlencoded` webhooks signed
with `X-Twilio-Signature`, and we send through the 2010-04-01 REST API's Message resource. WhatsApp
differs only in addresses (`whatsapp:+E164`), in extra inbound fields (ProfileName, WaId, location,
buttons) and in templates (Content API `ContentSid`).

Platform quirks this module handles:
- Inbound webhooks carry no timestamp at all. parse() must stay pure, so the webhook pipeline passes
  the time it received the request as the `x-alexia-received-at` header (ISO 8601); without it the
  Unix epoch is used, which makes the omission visible instead of inventing a clock reading.
- The signature covers the exact public URL Twilio called (scheme, host, path, query) plus every POST
  parameter, so verify() rebuilds the URL from settings.PUBLIC_BASE_URL, not from the request's Host.
- Twilio does not retry messaging webhooks by default, but status callbacks can arrive twice and out
  of order; event_id() is (MessageSid, status) so each transition is stored once.
- A send whose HTTP answer was lost may still have been queued by Twilio (the queue holds up to 4 h),
  and the Message API takes no idempotency key: lookup() lists messages to find it before a resend.

Docs: https://www.twilio.com/docs/messaging/guides/webhook-request ,
https://www.twilio.com/docs/usage/webhooks/webhooks-security ,
https://www.twilio.com/docs/messaging/api/message-resource
"""

import email.utils
import json
import logging
import mimetypes
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
from django.conf import settings
from twilio.request_validator import (
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)
from urllib3.exceptions import ProtocolError

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
    RateLimited,
    TransientFailure,
    WebhookVerificationError,
)
from .sms import count_segments

logger = logging.getLogger(__name__)

API_VERSION = "2010-04-01"
RECEIVED_AT_HEADER = "x-alexia-received-at"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
WHATSAPP_PREFIX = "whatsapp:"
_PHONE_RE = re.compile(r"^\+[1-9]\d{5,14}$")

# Message statuses of a status callback.
# https://www.twilio.com/docs/messaging/api/message-resource#message-status-values
STATUS_MAP: dict[str, DeliveryStatus] = {
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.READ,
    "failed": DeliveryStatus.FAILED,
    "undelivered": DeliveryStatus.FAILED,
    "canceled": DeliveryStatus.FAILED,
}
# Steps before the message leaves Twilio: nothing for us to record (we already hold it as `sending`
# or `sent`), so they are skipped. `receiving` belongs to inbound MMS still being fetched.
PENDING_STATUSES = frozenset(
    {"queued", "accepted", "sending", "scheduled", "receiving", "partially_delivered"}
)

# Twilio's own wording for the error codes we meet most, from the error dictionary.
# https://www.twilio.com/docs/api/errors
ERROR_REASONS: dict[str, str] = {
    "20003": "Authenticate",
    "20429": "Too Many Requests",
    "21211": "Invalid 'To' Phone Number",
    "21408": "Permission to send an SMS has not been enabled for the region indicated by the 'To' number",
    "21606": "The 'From' phone number provided is not a valid message-capable Twilio phone number "
    "for this destination",
    "21610": "Attempt to send to unsubscribed recipient",
    "21614": "'To' number is not a valid mobile number",
    "30001": "Queue overflow",
    "30003": "Unreachable destination handset",
    "30004": "Message blocked",
    "30005": "Unknown destination handset",
    "30006": "Landline or unreachable carrier",
    "30007": "Message filtered",
    "30008": "Unknown error",
    "63016": "Failed to send freeform message because you are outside the allowed window. "
    "If you are using WhatsApp, please use a Message Template.",
    "63018": "Rate limit exceeded for Channel",
}
UNSUBSCRIBED_CODE = "21610"

# Twilio's default opt-out keywords (matched against the whole body, trimmed, case-insensitive) and the
# OptOutType values Advanced Opt-Out adds to the inbound webhook when it matched a (custom) keyword.
# https://help.twilio.com/articles/223134027-Twilio-support-for-opt-out-keywords-SMS-STOP-filtering-
# https://www.twilio.com/docs/messaging/tutorials/advanced-opt-out
OPT_OUT_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
OPT_IN_KEYWORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_KEYWORDS = frozenset({"HELP", "INFO"})
OPT_OUT_TYPES = {"STOP": "opted_out", "START": "opted_in"}


def _header(headers: dict, name: str) -> str:
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return value
    return ""


def received_at(headers: dict) -> datetime:
    """The receive time the pipeline passed in `x-alexia-received-at`, else the Unix epoch."""
    raw = _header(headers, RECEIVED_AT_HEADER)
    if not raw:
        return EPOCH
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        logger.info("twilio: unreadable %s header %r, using the epoch", RECEIVED_AT_HEADER, raw)
        return EPOCH
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def form_fields(body: bytes) -> dict[str, str]:
    """The webhook's form fields (first value of each key); MalformedPayloadError if it is not a form."""
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text))
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedPayloadError(
            f"not an application/x-www-form-urlencoded Twilio webhook: {exc}"
        ) from exc
    fields: dict[str, str] = {}
    for key, value in pairs:
        fields.setdefault(key, value)
    if not (fields.get("MessageSid") or fields.get("SmsSid")):
        raise MalformedPayloadError("Twilio webhook without MessageSid or SmsSid")
    return fields


def normalize_phone(value: str) -> str:
    """E.164 from a Twilio address: `whatsapp:+31612345678` -> `+31612345678`.

    Twilio sends phone numbers in E.164 already; short codes and alphanumeric sender ids (no `+`) are
    kept as they are, since guessing a country for them would invent a number.
    """
    value = value.strip()
    if value.lower().startswith(WHATSAPP_PREFIX):
        value = value[len(WHATSAPP_PREFIX) :].strip()
    compact = re.sub(r"[\s().-]", "", value)
    return compact if _PHONE_RE.match(compact) else value


def error_reason(code: str, fallback: str = "") -> str:
    """Twilio's wording for an error code, else the platform's own message, else a pointer to the docs."""
    if code in ERROR_REASONS:
        return ERROR_REASONS[code]
    return fallback or f"Twilio error {code}, see https://www.twilio.com/docs/api/errors/{code}"


def _attachment_kind(content_type: str, url: str) -> str:
    guessed = content_type or mimetypes.guess_type(urlsplit(url).path)[0] or ""
    major = guessed.split("/", 1)[0]
    return major if major in ("image", "audio", "video") else "document"


def _retry_after(response: requests.Response) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date."""
    raw = response.headers.get("Retry-After", "").strip()
    if not raw:
        return None
    try:
        return max(float(raw), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def _twilio_date(value: Any) -> datetime | None:
    """Twilio's RFC 2822 dates (`Thu, 30 Jul 2015 20:12:31 +0000`) as aware UTC datetimes."""
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(str(value))
    except (TypeError, ValueError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


class TwilioSmsProvider(Provider):
    """SMS and MMS through a Twilio phone number, short code or Messaging Service.

    Config: `account_sid`, `from` (E.164 or short code), optional `messaging_service_sid` (then sent as
    MessagingServiceSid instead of From), `rate_limit_per_second`, `api_base_url`.
    Credentials: `auth_token`; optional `webhook_shared_key` when webhooks are signed with a Twilio
    SharedKey instead of the Auth Token.
    """

    kind = "twilio_sms"
    default_api_base_setting = "TWILIO_API_BASE"
    # A US long code sends about 1 segment/s, toll-free 3 MPS, a short code about 100 MPS, but Twilio
    # queues the excess itself (up to 4 h), so we hand it messages at a rate that keeps its queue short.
    rate_limit_per_second = 10.0
    supports_lookup = True
    address_prefix = ""

    # --- configuration -------------------------------------------------------------------------------
    @property
    def account_sid(self) -> str:
        sid = self.config.get("account_sid", "")
        if not sid:
            raise ConfigurationError("Twilio channel without config account_sid")
        return sid

    @property
    def auth_token(self) -> str:
        token = self.credentials.get("auth_token", "")
        if not token:
            raise ConfigurationError("Twilio channel without credentials auth_token")
        return token

    @property
    def from_address(self) -> str:
        return self.address(self.config.get("from", "")) if self.config.get("from") else ""

    def address(self, value: str) -> str:
        """A number as Twilio expects it on this channel: E.164, `whatsapp:`-prefixed for WhatsApp."""
        return f"{self.address_prefix}{normalize_phone(value)}"

    def _url(self, suffix: str) -> str:
        return f"{self.api_base}/{API_VERSION}/Accounts/{self.account_sid}{suffix}"

    def lookup_key(self) -> str:
        return f"{self.config.get('account_sid', '')}:{self.from_address}"

    # --- inbound -------------------------------------------------------------------------------------
    def verify(self, request) -> None:
        """Check X-Twilio-Signature with twilio's RequestValidator against the public URL Twilio called.

        Form webhooks: the validator gets request.POST (a QueryDict), whose getlist() gives it every value
        of a repeated key, as Twilio signs them. JSON webhooks: Twilio adds `bodySHA256` to the URL and
        signs the URL only; the validator then checks the hash of the raw body. With a Twilio SharedKey
        the request names the algorithm in X-Twilio-Webhooks-Signature-Settings.
        https://www.twilio.com/docs/usage/webhooks/webhooks-security
        """
        signature = request.headers.get("X-Twilio-Signature", "")
        if not signature:
            raise WebhookVerificationError("missing X-Twilio-Signature header")
        settings_header = request.headers.get(SIGNATURE_SETTINGS_HEADER, "")
        secret = self.auth_token
        algorithm = None
        if settings_header:
            algorithm = get_signature_algorithm(settings_header)
            secret = self.credentials.get("webhook_shared_key") or secret
        url = settings.PUBLIC_BASE_URL + request.get_full_path()
        if "bodySHA256" in request.GET:
            try:
                params: Any = request.body.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise WebhookVerificationError("JSON webhook body is not UTF-8") from exc
        else:
            params = request.POST
        if not RequestValidator(secret).validate(url, params, signature, algorithm=algorithm):
            logger.info("twilio: signature mismatch for channel %s at %s", self.channel.pk, url)
            raise WebhookVerificationError("X-Twilio-Signature does not match the request")

    def event_id(self, body: bytes, headers: dict) -> str | None:
        fields = form_fields(body)
        sid = fields.get("MessageSid") or fields.get("SmsSid")
        status = fields.get("MessageStatus") or fields.get("SmsStatus") or "received"
        return f"{sid}:{status}"

    def parse(self, body: bytes, headers: dict) -> list[ParsedEvent]:
        fields = form_fields(body)
        sid = fields.get("MessageSid") or fields.get("SmsSid") or ""
        status = (fields.get("MessageStatus") or fields.get("SmsStatus") or "").lower()
        timestamp = received_at(headers)
        if status in ("", "received"):
            return self._parse_inbound(fields, sid, timestamp)
        return self._parse_status(fields, sid, status, timestamp)

    def _parse_inbound(self, fields: dict[str, str], sid: str, timestamp: datetime) -> list[ParsedEvent]:
        sender_raw = fields.get("From", "")
        if not sender_raw:
            raise MalformedPayloadError(f"Twilio inbound message {sid} without From")
        sender = normalize_phone(sender_raw)
        text = fields.get("Body", "")
        try:
            num_media = int(fields.get("NumMedia") or 0)
        except ValueError as exc:
            raise MalformedPayloadError(
                f"Twilio NumMedia is not a number: {fields.get('NumMedia')!r}"
            ) from exc
        attachments = []
        for index in range(num_media):
            url = fields.get(f"MediaUrl{index}", "")
            if not url:
                continue
            content_type = fields.get(f"MediaContentType{index}", "")
            attachments.append(
                InboundAttachment(
                    kind=_attachment_kind(content_type, url), content_type=content_type, url=url
                )
            )

        content: dict[str, Any] = {}
        if fields.get("Latitude") and fields.get("Longitude"):
            kind = "location"
            try:
                content = {"latitude": float(fields["Latitude"]), "longitude": float(fields["Longitude"])}
            except ValueError as exc:
                raise MalformedPayloadError(f"Twilio location of {sid} is not numeric") from exc
            content.update({"address": fields.get("Address", ""), "name": fields.get("Label", "")})
        elif fields.get("ButtonText") or fields.get("ButtonPayload"):
            kind = "interactive"
            # Same shape as a WhatsApp Cloud quick-reply button: the payload is the button's id.
            content = {
                "interactive_type": "button",
                "id": fields.get("ButtonPayload", ""),
                "title": fields.get("ButtonText", ""),
            }
            text = text or fields.get("ButtonText", "")
        elif attachments:
            kind = "media"
        else:
            kind = "text"

        events: list[ParsedEvent] = [
            InboundMessage(
                platform_message_id=sid,
                sender_kind="phone",
                sender_value=sender,
                timestamp=timestamp,
                type=kind,
                text=text,
                sender_name=fields.get("ProfileName", ""),
                content=content,
                attachments=tuple(attachments),
                reply_to_platform_id=fields.get("OriginalRepliedMessageSid", ""),
            )
        ]
        consent = self._consent_event(fields, text, sender, timestamp)
        if consent is not None:
            events.append(consent)
        return events

    def _consent_event(
        self, fields: dict[str, str], text: str, sender: str, timestamp: datetime
    ) -> ContactEvent | None:
        """Opt-out/opt-in from Advanced Opt-Out's OptOutType, else from Twilio's default keywords.

        Twilio itself blocks further SMS to a number that sent STOP (error 21610) and lifts the block on
        START; we mirror that on the contact so agents see it. The same words on WhatsApp are honoured
        too: WhatsApp policy requires respecting a user's request to stop.
        """
        opt_type = fields.get("OptOutType", "").strip().upper()
        if opt_type:
            event = OPT_OUT_TYPES.get(opt_type)
            reason = f"OptOutType {opt_type}"
        else:
            keyword = text.strip().upper()
            if keyword in OPT_OUT_KEYWORDS:
                event = "opted_out"
            elif keyword in OPT_IN_KEYWORDS:
                event = "opted_in"
            else:
                event = None
            reason = f"keyword {keyword}"
        if event is None:
            return None
        return ContactEvent(
            sender_kind="phone", sender_value=sender, event=event, timestamp=timestamp, reason=reason
        )

    def _parse_status(
        self, fields: dict[str, str], sid: str, status: str, timestamp: datetime
    ) -> list[ParsedEvent]:
        if status in PENDING_STATUSES:
            logger.info("twilio: skipping intermediate status %s of %s", status, sid)
            return []
        mapped = STATUS_MAP.get(status)
        if mapped is None:
            logger.info("twilio: skipping unknown status %r of %s", status, sid)
            return []
        code = fields.get("ErrorCode", "").strip()
        reason = ""
        if mapped is DeliveryStatus.FAILED:
            reason = error_reason(code, fields.get("ErrorMessage", "")) if code else f"Message {status}"
        events: list[ParsedEvent] = [
            StatusUpdate(
                platform_message_id=sid,
                status=mapped,
                timestamp=timestamp,
                error_code=code if mapped is DeliveryStatus.FAILED else "",
                error_reason=reason,
            )
        ]
        if mapped is DeliveryStatus.FAILED and code == UNSUBSCRIBED_CODE and fields.get("To"):
            events.append(
                ContactEvent(
                    sender_kind="phone",
                    sender_value=normalize_phone(fields["To"]),
                    event="opted_out",
                    timestamp=timestamp,
                    reason=f"{code} {ERROR_REASONS[code]}",
                )
            )
        return events

    # --- HTTP ----------------------------------------------------------------------------------------
    def _request(self, method: str, url: str, *, idempotent: bool, **kwargs) -> requests.Response:
        """One HTTP call with a timeout, connection problems turned into typed errors.

        A failure before the request left (refused, DNS, connect timeout) is safe to retry. After it
        left (read timeout, connection dropped mid-answer) a POST may have created the message, so it
        is ambiguous; a GET is always safe to repeat.
        """
        kwargs.setdefault("auth", (self.account_sid, self.auth_token))
        try:
            with self.http() as session:
                return session.request(method, url, timeout=self.timeout, **kwargs)
        except (
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema,
            requests.exceptions.InvalidURL,
        ) as exc:
            raise ConfigurationError(f"bad Twilio API URL {url}: {exc}") from exc
        except requests.ConnectTimeout as exc:
            raise TransientFailure(f"Twilio connect timeout: {exc}", code="connect_timeout") from exc
        except requests.ReadTimeout as exc:
            if idempotent:
                raise TransientFailure(f"Twilio read timeout: {exc}", code="timeout") from exc
            raise AmbiguousFailure(f"Twilio did not answer in {self.timeout}s", code="timeout") from exc
        except requests.ConnectionError as exc:
            cause = exc.args[0] if exc.args else None
            dropped = isinstance(cause, ProtocolError) or isinstance(
                getattr(cause, "reason", None), ProtocolError
            )
            if dropped and not idempotent:
                raise AmbiguousFailure(
                    f"connection to Twilio dropped after sending: {exc}", code="dropped"
                ) from exc
            raise TransientFailure(f"cannot reach Twilio: {exc}", code="connection_error") from exc
        except requests.RequestException as exc:
            if idempotent:
                raise TransientFailure(f"Twilio request failed: {exc}") from exc
            raise AmbiguousFailure(f"Twilio request failed after sending: {exc}") from exc

    @staticmethod
    def _raise_for_error(response: requests.Response) -> None:
        """Twilio's error envelope `{code, message, more_info, status}` as a typed error.

        https://www.twilio.com/docs/usage/twilios-response#response-formats-exceptions
        """
        if response.status_code < 400:
            return
        try:
            envelope = response.json()
        except ValueError:
            envelope = {}
        if not isinstance(envelope, dict):
            envelope = {}
        code = str(envelope.get("code") or response.status_code)
        message = envelope.get("message") or error_reason(
            code, response.reason or f"HTTP {response.status_code}"
        )
        if response.status_code == 429 or code == "20429":
            raise RateLimited(_retry_after(response), code=code, reason=message)
        if response.status_code >= 500:
            raise TransientFailure(message, code=code)
        raise PermanentFailure(code, message)

    # --- outbound ------------------------------------------------------------------------------------
    def _send_form(self, outbound: OutboundMessage) -> dict[str, Any]:
        """The Message resource's create parameters.

        WhatsApp templates go through Twilio's Content API: outbound.template carries `content_sid`
        (`HX...`) and `variables` (a dict keyed "1", "2", ... or a list, numbered from 1), sent as
        ContentSid + ContentVariables JSON. Twilio renders the text, so Body is not sent with them.
        https://www.twilio.com/docs/content/send-templates-created-with-the-content-template-builder
        """
        data: dict[str, Any] = {"To": self.address(outbound.to)}
        service_sid = self.config.get("messaging_service_sid")
        if service_sid:
            data["MessagingServiceSid"] = service_sid
        else:
            data["From"] = self.from_address
        template = outbound.template or {}
        if template.get("content_sid"):
            data["ContentSid"] = template["content_sid"]
            variables = template.get("variables")
            if isinstance(variables, list | tuple):
                variables = {str(i): str(v) for i, v in enumerate(variables, start=1)}
            if variables:
                data["ContentVariables"] = json.dumps({str(k): str(v) for k, v in variables.items()})
        elif template and not outbound.text:
            raise PermanentFailure(
                "template_unsupported",
                "Twilio sends templates by Content SID: give the template a content_sid (HX...)",
            )
        elif outbound.text:
            data["Body"] = outbound.text
        media = [a["url"] for a in outbound.attachments if a.get("url")]
        if media:
            data["MediaUrl"] = media
        if outbound.status_callback_url:
            data["StatusCallback"] = outbound.status_callback_url
        return data

    def fallback_segments(self, text: str) -> int:
        return count_segments(text)

    def send(self, outbound: OutboundMessage) -> SendResult:
        """POST a Message; 201 answers the Message resource with its `sid` and `num_segments`."""
        data = self._send_form(outbound)
        response = self._request("POST", self._url("/Messages.json"), idempotent=False, data=data)
        self._raise_for_error(response)
        try:
            message = response.json()
            sid = message["sid"]
        except (ValueError, KeyError, TypeError) as exc:
            raise AmbiguousFailure(
                f"Twilio answered {response.status_code} without a Message sid", code="bad_response"
            ) from exc
        status = str(message.get("status") or "")
        if status in ("failed", "undelivered"):
            code = str(message.get("error_code") or status)
            raise PermanentFailure(code, error_reason(code, message.get("error_message") or ""))
        try:
            segments = int(message["num_segments"])
        except (KeyError, TypeError, ValueError):
            segments = self.fallback_segments(outbound.text)
        return SendResult(platform_message_id=sid, status=DeliveryStatus.SENT, segments=segments, raw=message)

    def _list_messages(self, params: dict[str, str]) -> list[dict[str, Any]]:
        response = self._request("GET", self._url("/Messages.json"), idempotent=True, params=params)
        self._raise_for_error(response)
        try:
            return list(response.json().get("messages") or [])
        except (ValueError, AttributeError) as exc:
            raise TransientFailure("Twilio message list is not JSON") from exc

    def lookup(self, outbound: OutboundMessage, since: datetime) -> SendResult | None:
        """Find `outbound` among the messages Twilio holds to that recipient, created at/after `since`.

        Twilio's list filter is DateSent (day granularity, `DateSent>=YYYY-MM-DD`), and a message still in
        Twilio's queue has no date_sent yet, so a second query without the date filter catches those.
        Matching is on the body text. A template (ContentSid) message is listed with the text Twilio
        rendered, which we never saw: it matches when that text contains every variable value.
        https://www.twilio.com/docs/messaging/api/message-resource#read-multiple-message-resources
        """
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        params = {"To": self.address(outbound.to), "PageSize": "50"}
        if not self.config.get("messaging_service_sid") and self.from_address:
            params["From"] = self.from_address
        for query in ({**params, "DateSent>": since.astimezone(UTC).date().isoformat()}, params):
            for message in self._list_messages(query):
                created = _twilio_date(message.get("date_created"))
                if created is None or created < since.replace(microsecond=0):
                    continue
                if not self._same_content(str(message.get("body") or ""), outbound):
                    continue
                try:
                    segments = int(message["num_segments"])
                except (KeyError, TypeError, ValueError):
                    segments = self.fallback_segments(outbound.text)
                return SendResult(platform_message_id=message["sid"], segments=segments, raw=message)
        return None

    @staticmethod
    def _same_content(body: str, outbound: OutboundMessage) -> bool:
        template = outbound.template or {}
        if not template.get("content_sid"):
            return body == outbound.text
        variables = template.get("variables") or {}
        values = variables.values() if isinstance(variables, dict) else variables
        return all(str(value) in body for value in values)

    def download_media(self, attachment: InboundAttachment) -> tuple[bytes, str]:
        """GET the media URL; Twilio answers with a redirect to a short-lived storage URL, which we follow.

        Our credentials go only to Twilio's own API host (or the configured base): the URL comes from a
        payload, and requests drops the Authorization header itself when a redirect changes host.
        """
        url = attachment.url
        if not url:
            raise PermanentFailure("no_media_url", "attachment has no URL")
        host = urlsplit(url).hostname or ""
        trusted = url.startswith(self.api_base + "/") or host == "twilio.com" or host.endswith(".twilio.com")
        auth = (self.account_sid, self.auth_token) if trusted else None
        response = self._request("GET", url, idempotent=True, allow_redirects=True, auth=auth)
        self._raise_for_error(response)
        content_type = response.headers.get("Content-Type", "") or attachment.content_type
        return response.content, content_type.split(";", 1)[0].strip()

    def check(self) -> CheckResult:
        """GET the Account resource: proves the SID/token pair and shows the account's state."""
        try:
            response = self._request("GET", self._url(".json"), idempotent=True)
            self._raise_for_error(response)
            account = response.json()
        except (TransientFailure, PermanentFailure, ConfigurationError) as exc:
            return CheckResult(False, str(exc))
        except ValueError:
            return CheckResult(False, "Twilio answered with something that is not JSON")
        status = account.get("status", "")
        return CheckResult(status == "active", f"Account {account.get('friendly_name', '')} ({status})")


class TwilioWhatsAppProvider(TwilioSmsProvider):
    """WhatsApp through a Twilio WhatsApp sender (or the sandbox): same API, `whatsapp:` addresses.

    Twilio's WhatsApp senders take 10 text messages/s by default (up to 50 on request); media is slower.
    Outside the 24-hour customer service window only templates (ContentSid) are delivered (63016).
    https://www.twilio.com/docs/whatsapp/api
    """

    kind = "twilio_whatsapp"
    rate_limit_per_second = 10.0
    address_prefix = WHATSAPP_PREFIX

    def fallback_segments(self, text: str) -> int:
        return 1
