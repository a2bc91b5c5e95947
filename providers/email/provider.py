"""The `email` channel kind: an ESP through django-anymail, or a plain mailbox (SMTP + IMAP).

Config: `esp` (mailgun, sendgrid, postmark, amazon_ses, mailjet, brevo, smtp, imap), `from_email`,
`domain` (our Message-ID domain; Mailgun's sending domain), optional `from_name`, `api_base_url`
(the ESP's API base, for local fakes and EU regions), `region` (Amazon SES), and for a mailbox
`smtp_host`, `smtp_port`, `smtp_security` (ssl, starttls, none), `imap_host`, `imap_port`,
`imap_security`, `imap_mailbox`, `imap_since_days`.
Credentials: the ESP's keys (`api_key`; `secret_key` for Mailjet; `access_key_id` and
`secret_access_key` for SES), `webhook_signing_key` (Mailgun), `webhook_verification_key`
(SendGrid signed event webhook public key), `webhook_secret` ("user:password" basic auth in the
webhook URLs), and for a mailbox `username`, `password` (also `smtp_username`/`smtp_password` and
`imap_username`/`imap_password` when the two servers differ).

`smtp` and `imap` are one kind of channel, a mailbox: it sends with SMTP and receives by polling
IMAP (inbox.services.email_polling); the two names exist because admins look for either word.

Webhooks: the channel's `webhook_url` is the ESP's inbound (receiving) webhook, its
`tracking_webhook_url` the delivery/engagement webhook. Both go through the ESP's own anymail view.
"""

import logging
import mimetypes
import smtplib
from datetime import UTC, datetime
from email.utils import formataddr
from html import escape
from pathlib import Path

import requests
from anymail.exceptions import (
    AnymailAPIError,
    AnymailConfigurationError,
    AnymailError,
    AnymailInvalidAddress,
    AnymailRecipientsRefused,
    AnymailWebhookValidationFailure,
)
from anymail.inbound import AnymailInboundMessage
from anymail.message import AnymailMessage
from anymail.signals import AnymailInboundEvent, AnymailTrackingEvent, EventType, RejectReason
from django.core.mail import EmailMultiAlternatives
from django.core.mail.backends.smtp import EmailBackend as SmtpBackend

from ..base import (
    CheckResult,
    ContactEvent,
    DeliveryStatus,
    InboundAttachment,
    OutboundMessage,
    ParsedEvent,
    Provider,
    SendResult,
    StatusUpdate,
)
from ..errors import (
    AmbiguousFailure,
    ConfigurationError,
    MalformedPayloadError,
    PermanentFailure,
    RateLimited,
    TransientFailure,
    WebhookVerificationError,
)
from . import esp as esps
from .imap import ImapMailbox
from .inbound import EPOCH, body_event_id, inbound_from_message, media_parts
from .threading import outbound_message_id, reply_headers, reply_subject

logger = logging.getLogger(__name__)

MAILBOX_ESPS = ("smtp", "imap")
RECEIVED_AT_HEADER = "x-alexia-received-at"
ENDPOINT_HEADER = "x-alexia-endpoint"
IMAP_HEADER = "x-alexia-imap"  # "<uidvalidity>:<uid>", set by inbox.services.email_polling
METADATA_KEY = "alexia_message_id"

# anymail's normalized tracking events -> ours. https://anymail.dev/en/stable/sending/tracking/
STATUS_FOR_EVENT = {
    EventType.SENT: DeliveryStatus.SENT,
    EventType.DELIVERED: DeliveryStatus.DELIVERED,
    EventType.OPENED: DeliveryStatus.READ,
    EventType.CLICKED: DeliveryStatus.READ,  # a click implies the mail was opened
    EventType.BOUNCED: DeliveryStatus.FAILED,
    EventType.REJECTED: DeliveryStatus.FAILED,
    EventType.FAILED: DeliveryStatus.FAILED,
}
# Reject reasons that say the address itself is bad (not a policy or a full mailbox for now).
UNDELIVERABLE_REASONS = {RejectReason.BOUNCED, RejectReason.INVALID}
# Which anymail view class parses what an ESP posted to the other URL is decided by the URL; for
# events stored without it (before the intake recorded the endpoint) the body's shape tells.
_POSTMARK_TRACKING_TYPES = {"Bounce", "Click", "Delivery", "Open", "SpamComplaint", "SubscriptionChange"}


def _received_at(headers: dict) -> datetime | None:
    raw = headers.get(RECEIVED_AT_HEADER, "")
    try:
        value = datetime.fromisoformat(raw) if raw else None
    except ValueError:
        return None
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC) if value else None


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


def _text_to_html(text: str) -> str:
    paragraphs = [p for p in text.replace("\r\n", "\n").split("\n\n")]
    body = "".join(f"<p>{escape(p).replace(chr(10), '<br>')}</p>" for p in paragraphs if p.strip())
    return f'<!doctype html><html><body style="font-family:sans-serif">{body}</body></html>'


class EmailProvider(Provider):
    kind = "email"
    rate_limit_per_second = None  # the ESP paces delivery; a mailbox's SMTP server may set its own
    # Mail goes through Django's e-mail backends (anymail's included), not written for concurrent use.
    send_concurrency = 1

    # --- configuration -------------------------------------------------------------------------------
    @property
    def esp(self) -> str:
        value = (self.config.get("esp") or "").strip().lower()
        if value not in (*esps.ESPS, *MAILBOX_ESPS):
            raise ConfigurationError(f"unknown e-mail esp {value!r}")
        return value

    @property
    def is_mailbox(self) -> bool:
        return self.esp in MAILBOX_ESPS

    @property
    def from_email(self) -> str:
        value = (self.config.get("from_email") or "").strip()
        if not value:
            raise ConfigurationError("the e-mail channel needs config 'from_email'")
        return value

    @property
    def domain(self) -> str:
        return (self.config.get("domain") or self.from_email.rpartition("@")[2]).strip().lower()

    @property
    def thread_secret(self) -> str:
        return self.channel.webhook_token

    def lookup_key(self) -> str:
        return (self.config.get("from_email") or "").strip().lower()

    def message_id_for(self, message_pk: int) -> str:
        """The Message-ID our outbound message `message_pk` is (or will be) sent with."""
        return outbound_message_id(pk=message_pk, key=self.thread_secret, domain=self.domain)

    # --- inbound -------------------------------------------------------------------------------------
    @staticmethod
    def _endpoint_of(request) -> str:
        match = getattr(request, "resolver_match", None)
        if match is not None and "endpoint" in match.kwargs:
            return match.kwargs["endpoint"]
        return "tracking" if request.path.rstrip("/").endswith("/tracking") else "inbound"

    def verify(self, request) -> None:
        """Run the ESP's own anymail validators (signature and/or basic auth) with this channel's keys."""
        if self.is_mailbox:
            raise WebhookVerificationError("this mailbox channel receives mail by IMAP polling, not webhooks")
        spec = esps.spec_for(self.esp)
        view = esps.webhook_view(spec, self._endpoint_of(request), self.credentials, for_verify=True)
        # Read the raw body first: validators that look at request.POST consume the stream of a
        # multipart post, and the intake stores request.body afterwards.
        _ = request.body
        try:
            view.run_validators(request)
        except (AnymailWebhookValidationFailure, AnymailAPIError) as exc:
            raise WebhookVerificationError(str(exc)) from exc

    def event_id(self, body: bytes, headers: dict) -> str | None:
        # The body hash, spelled out (not left to the pipeline's default) because attachment ids
        # point back at the stored event by this id.
        return body_event_id(body)

    def _guess_endpoint(self, request) -> str:
        content_type = request.content_type
        if self.esp == "mailgun":
            if content_type == "application/json":
                return "tracking"
            return "tracking" if request.POST.get("event", "inbound") != "inbound" else "inbound"
        if self.esp == "sendgrid":
            return "tracking" if content_type == "application/json" else "inbound"
        import json

        try:
            data = json.loads(request.body or b"null")
        except ValueError:
            return "inbound"
        if self.esp == "postmark":
            return (
                "tracking"
                if isinstance(data, dict) and data.get("RecordType") in _POSTMARK_TRACKING_TYPES
                else "inbound"
            )
        if self.esp == "mailjet":
            items = data if isinstance(data, list) else [data]
            return "inbound" if items and isinstance(items[0], dict) and "Parts" in items[0] else "tracking"
        if self.esp == "brevo":
            return "inbound" if isinstance(data, dict) and "items" in data else "tracking"
        if self.esp == "amazon_ses" and isinstance(data, dict):
            try:
                inner = json.loads(data.get("Message") or "{}")
            except ValueError:
                return "tracking"
            kind = inner.get("notificationType") or inner.get("eventType") if isinstance(inner, dict) else ""
            return "inbound" if kind == "Received" else "tracking"
        return "inbound"

    def parse(self, body: bytes, headers: dict) -> list[ParsedEvent]:
        received = _received_at(headers)
        if self.is_mailbox or headers.get(IMAP_HEADER):
            message = AnymailInboundMessage.parse_raw_mime_bytes(body)
            event_id = f"imap:{headers[IMAP_HEADER]}" if headers.get(IMAP_HEADER) else body_event_id(body)
            item = self._inbound(message, event_id=event_id, fallback_time=received)
            return [item] if item else []
        spec = esps.spec_for(self.esp)
        request = esps.stored_request(body, headers)
        try:
            endpoint = headers.get(ENDPOINT_HEADER) or self._guess_endpoint(request)
            view = esps.webhook_view(spec, endpoint, self.credentials, for_verify=False)
            events = view.parse_events(request)
        except AnymailConfigurationError as exc:
            # anymail's own diagnosis of a misconfigured ESP (a tracking webhook pointed at the inbound
            # URL, a Mailgun store() route): kept as a failed event the admin can read.
            raise MalformedPayloadError(str(exc)) from exc
        except (AnymailError, ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as exc:
            raise MalformedPayloadError(f"not a {spec.name} {endpoint} webhook: {exc!r}") from exc
        items: list[ParsedEvent] = []
        event_id = body_event_id(body)
        for index, event in enumerate(events):
            if isinstance(event, AnymailTrackingEvent):
                items.extend(self._tracking(event, received))
            elif isinstance(event, AnymailInboundEvent) and event.message is not None:
                fallback = f"<{spec.name}-{event.event_id}@alexia.invalid>" if event.event_id else ""
                suffix = f"@{index}" if len(events) > 1 else ""
                item = self._inbound(
                    event.message,
                    event_id=event_id + suffix,
                    fallback_time=_aware(event.timestamp) or received,
                    fallback_message_id=fallback,
                )
                if item:
                    items.append(item)
            else:
                logger.info("email %s: skipped %s event", spec.name, getattr(event, "event_type", "?"))
        return items

    def _inbound(self, message, *, event_id: str, fallback_time, fallback_message_id: str = ""):
        return inbound_from_message(
            message,
            event_id=event_id,
            thread_secret=self.thread_secret,
            fallback_time=fallback_time,
            fallback_message_id=fallback_message_id,
            our_address=self.config.get("from_email") or "",
        )

    def _tracking(self, event: AnymailTrackingEvent, received: datetime | None) -> list[ParsedEvent]:
        when = _aware(event.timestamp) or received or EPOCH
        recipient = (event.recipient or "").strip().lower()
        reason = event.description or event.mta_response or event.reject_reason or ""
        items: list[ParsedEvent] = []
        status = STATUS_FOR_EVENT.get(event.event_type)
        if status is not None and event.message_id:
            metadata = event.metadata or {}
            reference = str(metadata.get(METADATA_KEY, "")) if isinstance(metadata, dict) else ""
            failed = status == DeliveryStatus.FAILED
            items.append(
                StatusUpdate(
                    platform_message_id=str(event.message_id),
                    status=status,
                    timestamp=when,
                    error_code=(event.reject_reason or event.event_type) if failed else "",
                    error_reason=str(reason)[:2000] if failed else "",
                    our_reference=f"alexia:{reference}" if reference else "",
                )
            )
        contact_event = ""
        if event.event_type == EventType.BOUNCED or (
            event.event_type == EventType.REJECTED and event.reject_reason in UNDELIVERABLE_REASONS
        ):
            contact_event = "undeliverable"
        elif event.event_type == EventType.COMPLAINED:
            contact_event = "undeliverable"
            reason = reason or "the recipient reported the mail as spam"
        elif event.event_type == EventType.UNSUBSCRIBED or (
            event.event_type == EventType.REJECTED and event.reject_reason == RejectReason.UNSUBSCRIBED
        ):
            contact_event = "opted_out"
        elif event.event_type == EventType.SUBSCRIBED:
            contact_event = "opted_in"
        if contact_event and recipient:
            items.append(
                ContactEvent(
                    sender_kind="email",
                    sender_value=recipient,
                    event=contact_event,
                    timestamp=when,
                    reason=str(reason),
                )
            )
        if not items:
            logger.info("email %s: %s event not mapped", self.esp, event.event_type)
        return items

    # --- outbound ------------------------------------------------------------------------------------
    def _message(self, outbound: OutboundMessage, *, message_id: str, connection):
        content = outbound.content or {}
        thread_root = content.get("thread_root") or ""
        in_reply_to = content.get("in_reply_to") or ""
        references = [str(r) for r in content.get("references") or []]
        subject = content.get("subject") or ""
        if in_reply_to or thread_root:
            subject = reply_subject(subject)
        subject = subject or self.config.get("default_subject") or f"Message from {self.channel.name}"
        headers = {"Message-ID": message_id}
        if in_reply_to or thread_root or references:
            headers.update(
                reply_headers(thread_root_id=thread_root, in_reply_to=in_reply_to, references=references)
            )
        sender = formataddr((self.config.get("from_name") or "", self.from_email))
        cls = EmailMultiAlternatives if self.is_mailbox else AnymailMessage
        message = cls(
            subject=subject,
            body=outbound.text,
            from_email=sender,
            to=[outbound.to],
            headers=headers,
            connection=connection,
        )
        message.attach_alternative(_text_to_html(outbound.text), "text/html")
        for item in outbound.attachments:
            data, content_type, filename = self._attachment_bytes(item)
            message.attach(filename, data, content_type)
        if not self.is_mailbox:
            message.metadata = {METADATA_KEY: str(outbound.message_id)}
        return message

    def _attachment_bytes(self, item: dict) -> tuple[bytes, str, str]:
        filename = item.get("filename") or ""
        content_type = item.get("content_type") or ""
        if item.get("path"):
            path = Path(item["path"])
            data = path.read_bytes()
            filename = filename or path.name
        elif item.get("url"):
            try:
                response = requests.get(item["url"], timeout=self.timeout)
            except requests.RequestException as exc:
                raise TransientFailure(f"attachment download failed: {exc}") from exc
            if response.status_code >= 500:
                raise TransientFailure(f"attachment download answered {response.status_code}")
            if response.status_code >= 400:
                raise PermanentFailure(
                    "attachment_unavailable", f"attachment URL answered {response.status_code}"
                )
            data = response.content
            content_type = content_type or response.headers.get("Content-Type", "").split(";")[0]
            filename = filename or Path(requests.utils.urlparse(item["url"]).path).name or "attachment"
        else:
            raise PermanentFailure("attachment_missing", "an attachment has neither a file nor a URL")
        content_type = content_type or mimetypes.guess_type(filename)[0] or "application/octet-stream"
        return data, content_type, filename

    def send(self, outbound: OutboundMessage) -> SendResult:
        if not outbound.to:
            raise PermanentFailure("no_recipient", "the message has no e-mail address to send to")
        message_id = self.message_id_for(outbound.message_id)
        if self.is_mailbox:
            return self._send_smtp(outbound, message_id)
        return self._send_esp(outbound, message_id)

    def _smtp_settings(self) -> dict:
        host = self.config.get("smtp_host") or ""
        if not host:
            raise PermanentFailure(
                "configuration", "the mailbox channel needs config 'smtp_host'", channel_error=True
            )
        security = (self.config.get("smtp_security") or "starttls").lower()
        port = int(self.config.get("smtp_port") or {"ssl": 465, "starttls": 587}.get(security, 25))
        creds = self.credentials
        return {
            "host": host,
            "port": port,
            "username": creds.get("smtp_username") or creds.get("username") or "",
            "password": creds.get("smtp_password") or creds.get("password") or "",
            "use_tls": security == "starttls",
            "use_ssl": security == "ssl",
            "timeout": self.timeout,
            "fail_silently": False,
        }

    def _send_smtp(self, outbound: OutboundMessage, message_id: str) -> SendResult:
        backend = SmtpBackend(**self._smtp_settings())
        try:
            backend.open()
        except smtplib.SMTPAuthenticationError as exc:
            raise PermanentFailure(
                "smtp_auth", f"SMTP login refused: {exc.smtp_error!r}", channel_error=True
            ) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise TransientFailure(f"cannot connect to SMTP {backend.host}:{backend.port}: {exc}") from exc
        try:
            message = self._message(outbound, message_id=message_id, connection=backend)
            message.send()
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            self._smtp_reply(code, text, "recipient_refused")
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            self._smtp_reply(exc.smtp_code, exc.smtp_error, "smtp_refused")
        except OSError as exc:  # SMTPServerDisconnected, timeouts, resets
            # The server may have queued the mail before the connection broke.
            raise AmbiguousFailure(f"SMTP connection lost during the send: {exc}") from exc
        finally:
            try:
                backend.close()
            except (OSError, smtplib.SMTPException):
                pass
        return SendResult(
            platform_message_id=message_id, raw={"message_id_header": message_id, "esp": "smtp"}
        )

    @staticmethod
    def _smtp_reply(code: int, text, label: str):
        reason = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
        if 400 <= int(code) < 500:
            raise TransientFailure(f"SMTP {code}: {reason}", code=f"smtp_{code}")
        raise PermanentFailure(f"smtp_{code}", f"{label}: {reason}")

    def _send_esp(self, outbound: OutboundMessage, message_id: str) -> SendResult:
        spec = esps.spec_for(self.esp)
        try:
            connection = esps.connection(spec, self.config, self.credentials, self.timeout)
        except (ConfigurationError, AnymailConfigurationError) as exc:
            raise PermanentFailure("configuration", str(exc), channel_error=True) from exc
        message = self._message(outbound, message_id=message_id, connection=connection)
        try:
            message.send()
        except AnymailRecipientsRefused as exc:
            raise PermanentFailure("recipient_rejected", f"{spec.name} refused the recipient: {exc}") from exc
        except AnymailInvalidAddress as exc:
            raise PermanentFailure("invalid_address", str(exc)) from exc
        except AnymailAPIError as exc:
            self._raise_esp_error(spec.name, exc)
        except AnymailConfigurationError as exc:
            raise PermanentFailure("configuration", str(exc), channel_error=True) from exc
        status = message.anymail_status
        esp_id = status.message_id
        if isinstance(esp_id, set):  # anymail gives a set when recipients got different ids
            esp_id = sorted(esp_id)[0] if esp_id else None
        return SendResult(
            platform_message_id=str(esp_id or message_id),
            raw={
                "message_id_header": message_id,
                "esp": spec.name,
                "esp_status": sorted(status.status or []),
            },
        )

    @staticmethod
    def _raise_esp_error(name: str, exc: AnymailAPIError):
        code = exc.status_code
        detail = exc.describe_response() or str(exc)
        if code is None:
            # No HTTP answer: a connect failure never reached the ESP, a read timeout may have.
            if isinstance(exc, (requests.ConnectTimeout,)) or (
                isinstance(exc, requests.ConnectionError) and not isinstance(exc, requests.ReadTimeout)
            ):
                raise TransientFailure(f"{name} unreachable: {exc.__cause__ or exc}") from exc
            raise AmbiguousFailure(f"{name} did not answer: {exc.__cause__ or exc}") from exc
        if code == 429:
            response = getattr(exc, "response", None)
            retry_after = None
            if response is not None and response.headers.get("Retry-After", "").strip().isdigit():
                retry_after = float(response.headers["Retry-After"])
            raise RateLimited(retry_after, code="http_429", reason=f"{name} rate limit: {detail}") from exc
        if code >= 500:
            raise TransientFailure(f"{name} answered {code}: {detail}", code=f"http_{code}") from exc
        raise PermanentFailure(f"http_{code}", f"{name}: {detail}", channel_error=code in (401, 403)) from exc

    # --- media ---------------------------------------------------------------------------------------
    def download_media(self, attachment: InboundAttachment) -> tuple[bytes, str]:
        """Take the part out of the stored mail again (see providers.email.inbound)."""
        from ..models import WebhookEvent

        event_ref, _, index = attachment.platform_media_id.rpartition("#")
        event_id, _, batch_index = event_ref.partition("@")
        if not event_id or not index.isdigit():
            raise PermanentFailure(
                "bad_media_id", f"not an e-mail attachment id: {attachment.platform_media_id!r}"
            )
        event = (
            WebhookEvent.objects.filter(channel_id=self.channel.pk, endpoint="inbound", event_id=event_id)
            .only("body", "headers")
            .first()
        )
        if event is None:
            raise PermanentFailure("media_gone", "the stored mail of this attachment no longer exists")
        body, headers = bytes(event.body), dict(event.headers)
        if self.is_mailbox or headers.get(IMAP_HEADER):
            message = AnymailInboundMessage.parse_raw_mime_bytes(body)
        else:
            spec = esps.spec_for(self.esp)
            view = esps.webhook_view(spec, "inbound", self.credentials, for_verify=False)
            try:
                events = view.parse_events(esps.stored_request(body, headers))
                message = events[int(batch_index or 0)].message
            except (AnymailError, ValueError, KeyError, IndexError) as exc:
                raise PermanentFailure("media_unreadable", f"the stored mail does not parse: {exc}") from exc
        parts = media_parts(message)
        if int(index) >= len(parts):
            raise PermanentFailure("media_gone", "the stored mail has no such attachment")
        part = parts[int(index)]
        return part.get_payload(decode=True) or b"", part.get_content_type()

    # --- checks --------------------------------------------------------------------------------------
    def check(self) -> CheckResult:
        if self.is_mailbox:
            return self._check_mailbox()
        return self._check_esp()

    def _check_mailbox(self) -> CheckResult:
        details = []
        try:
            settings = self._smtp_settings()
            backend = SmtpBackend(**settings)
            backend.open()
            backend.connection.noop()
            backend.close()
            details.append(f"SMTP {settings['host']}:{settings['port']} ok")
            if self.config.get("imap_host"):
                with self.imap_mailbox() as box:
                    details.append(f"IMAP {box.host} {box.mailbox} ok (UIDVALIDITY {box.uidvalidity})")
        except (PermanentFailure, TransientFailure, ConfigurationError) as exc:
            return CheckResult(False, str(exc))
        except (OSError, smtplib.SMTPException) as exc:
            return CheckResult(False, f"SMTP: {exc}")
        return CheckResult(True, "; ".join(details))

    # Each ESP's cheapest authenticated read, to prove the API key (anymail has no such call).
    _CHECKS = {
        "mailgun": ("https://api.mailgun.net/v3", "/domains/{domain}"),
        "sendgrid": ("https://api.sendgrid.com/v3", "/scopes"),
        "postmark": ("https://api.postmarkapp.com", "/server"),
        "mailjet": ("https://api.mailjet.com/v3.1", "/REST/apikey"),
        "brevo": ("https://api.brevo.com/v3", "/account"),
    }

    def _check_esp(self) -> CheckResult:
        name = self.esp
        if name not in self._CHECKS:
            return CheckResult(False, f"{name}: no API check available; send a test message instead")
        default, path = self._CHECKS[name]
        base = (self.config.get("api_base_url") or default).rstrip("/")
        creds = self.credentials
        key = creds.get("api_key") or ""
        kwargs: dict = {"timeout": self.timeout, "headers": {"Accept": "application/json"}}
        if name == "mailgun":
            kwargs["auth"] = ("api", key)
        elif name == "sendgrid":
            kwargs["headers"]["Authorization"] = f"Bearer {key}"
        elif name == "postmark":
            kwargs["headers"]["X-Postmark-Server-Token"] = key
        elif name == "mailjet":
            kwargs["auth"] = (key, creds.get("secret_key") or "")
        elif name == "brevo":
            kwargs["headers"]["api-key"] = key
        if name == "mailjet":  # the send API is v3.1, the REST resources live under v3
            base = base.removesuffix("/v3.1") + "/v3"
        url = base + path.format(domain=self.domain)
        try:
            response = requests.get(url, **kwargs)
        except requests.RequestException as exc:
            return CheckResult(False, f"{name} unreachable: {exc}")
        if response.status_code == 200:
            return CheckResult(True, f"{name} accepted the API key")
        return CheckResult(False, f"{name} answered {response.status_code}: {response.text[:300]}")

    # --- IMAP ----------------------------------------------------------------------------------------
    def imap_mailbox(self) -> ImapMailbox:
        security = (self.config.get("imap_security") or "ssl").lower()
        creds = self.credentials
        return ImapMailbox(
            host=self.config.get("imap_host") or "",
            port=int(self.config.get("imap_port") or (993 if security == "ssl" else 143)),
            username=creds.get("imap_username") or creds.get("username") or "",
            password=creds.get("imap_password") or creds.get("password") or "",
            security=security,
            mailbox=self.config.get("imap_mailbox") or "INBOX",
            timeout=self.timeout,
        )

    @property
    def imap_since_days(self) -> int:
        return max(1, int(self.config.get("imap_since_days") or 3))
