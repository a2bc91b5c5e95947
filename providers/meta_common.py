"""What every Meta platform (WhatsApp Cloud API, Messenger, Instagram) shares.

- Webhook signatures: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body, key = app secret>`.
- The subscription check: a GET with `hub.mode=subscribe`, `hub.verify_token`, `hub.challenge`, answered
  by echoing the challenge as plain text when the token matches.
- The Graph API's transport failures and its error envelope
  `{"error": {"message", "type", "code", "error_subcode", "error_data", "fbtrace_id"}}`.

Each platform keeps its own code tables (which Graph codes are throttling, transient, channel-level):
they differ between WhatsApp and the Messenger Platform.

Docs:
- signatures: https://developers.facebook.com/docs/graph-api/webhooks/getting-started#validate-payloads
- verification: https://developers.facebook.com/docs/graph-api/webhooks/getting-started#verification-requests
- Graph errors: https://developers.facebook.com/docs/graph-api/guides/error-handling
"""

import hashlib
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
import urllib3.exceptions
from django.http import HttpResponse, HttpResponseForbidden

from .errors import AmbiguousFailure, ConfigurationError, TransientFailure, WebhookVerificationError

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Hub-Signature-256"
SIGNATURE_PREFIX = "sha256="


def sign(body: bytes, app_secret: str) -> str:
    """The X-Hub-Signature-256 header value Meta sends for `body`."""
    return SIGNATURE_PREFIX + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(request, app_secret: str) -> None:
    """Raise WebhookVerificationError unless X-Hub-Signature-256 matches the raw body.

    The hex digest is compared case-insensitively (Meta sends lower case); the `sha256=` prefix is
    required, and the legacy SHA-1 `X-Hub-Signature` header alone is not accepted.
    """
    if not app_secret:
        raise WebhookVerificationError("channel has no app_secret to check the signature with")
    header = (request.headers.get(SIGNATURE_HEADER) or "").strip()
    if not header:
        raise WebhookVerificationError(f"missing {SIGNATURE_HEADER} header")
    if not header.lower().startswith(SIGNATURE_PREFIX):
        raise WebhookVerificationError(f"{SIGNATURE_HEADER} does not start with {SIGNATURE_PREFIX!r}")
    given = SIGNATURE_PREFIX + header[len(SIGNATURE_PREFIX) :].lower()
    if not hmac.compare_digest(given.encode(), sign(request.body, app_secret).encode()):
        raise WebhookVerificationError(f"{SIGNATURE_HEADER} does not match the body")


def hub_handshake(request, verify_token: str, *, label: str, channel_pk: Any) -> HttpResponse | None:
    """Answer Meta's subscription check: echo hub.challenge as plain text when the token matches.

    A wrong or missing token gets 403 without the challenge (Meta's docs); a GET without any hub.*
    parameter is not a handshake (None).
    """
    if request.method != "GET" or not any(key.startswith("hub.") for key in request.GET):
        return None
    given = request.GET.get("hub.verify_token", "")
    if (
        request.GET.get("hub.mode") != "subscribe"
        or not verify_token
        or not hmac.compare_digest(given.encode(), verify_token.encode())
    ):
        logger.info("%s: refused webhook verification for channel %s", label, channel_pk)
        return HttpResponseForbidden("verify token does not match", content_type="text/plain")
    return HttpResponse(request.GET.get("hub.challenge", ""), content_type="text/plain")


# --- Graph API calls -------------------------------------------------------------------------------------
def retry_after_seconds(header: str | None) -> float | None:
    if not header:
        return None
    try:
        seconds = float(header)
    except ValueError:
        return None
    return max(seconds, 0.0)


def dropped_after_sending(exc: requests.ConnectionError) -> bool:
    """True when the connection broke after the request went out (urllib3 ProtocolError).

    requests wraps a failure to connect as MaxRetryError(NewConnectionError / NameResolutionError), and a
    connection reset or closed while waiting for the answer as ProtocolError ("Connection aborted").
    Each call uses a fresh session, so there is no stale pooled connection that could fail before sending.
    """
    reason = exc.args[0] if exc.args else None
    if isinstance(reason, urllib3.exceptions.MaxRetryError):
        reason = reason.reason
    return isinstance(reason, urllib3.exceptions.ProtocolError)


def graph_request(
    session_factory: Callable[[], requests.Session],
    method: str,
    url: str,
    *,
    timeout: float,
    platform: str,
    api_base: str,
    **kwargs,
) -> requests.Response:
    """One HTTP call with a timeout, transport errors mapped to typed errors, no status check.

    A connection that fails before the request is written is safe to retry (TransientFailure); a read
    timeout or a connection dropped after writing may mean Meta accepted it (AmbiguousFailure).
    `platform` names the platform in error reasons ("WhatsApp", "Messenger", "Instagram").
    """
    try:
        with session_factory() as session:
            return session.request(method, url, timeout=timeout, **kwargs)
    except requests.ConnectTimeout as exc:
        raise TransientFailure(f"connect timeout calling {platform}: {exc}", code="connect_timeout") from exc
    except requests.ReadTimeout as exc:
        raise AmbiguousFailure(f"no answer from {platform} within {timeout}s", code="timeout") from exc
    except requests.ConnectionError as exc:
        if dropped_after_sending(exc):
            raise AmbiguousFailure(
                f"connection dropped by {platform}: {exc}", code="connection_dropped"
            ) from exc
        raise TransientFailure(f"cannot connect to {platform}: {exc}", code="connection_error") from exc
    except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError) as exc:
        raise AmbiguousFailure(f"answer from {platform} cut off: {exc}", code="connection_dropped") from exc
    except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema) as exc:
        raise ConfigurationError(f"invalid {platform} API base URL {api_base!r}") from exc
    except requests.RequestException as exc:
        raise TransientFailure(f"error calling {platform}: {exc}", code="request_error") from exc


@dataclass(frozen=True)
class GraphError:
    """The parts of a Graph error envelope that decide what to do; empty when the body has none."""

    code: int | None
    subcode: int | None
    message: str
    details: str
    raw: dict[str, Any]

    @property
    def reason(self) -> str:
        """Meta's message, with error_data.details appended when it adds something."""
        if self.details and self.details not in self.message:
            return f"{self.message}: {self.details}" if self.message else self.details
        return self.message


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def graph_error(body: Any) -> GraphError | None:
    """The `error` object of a decoded Graph answer, or None when there is none."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None
    error_data = error.get("error_data")
    details = error_data.get("details") if isinstance(error_data, dict) else ""
    return GraphError(
        code=_int_or_none(error.get("code")),
        subcode=_int_or_none(error.get("error_subcode")),
        message=str(error.get("message") or "").strip(),
        details=str(details or "").strip(),
        raw=error,
    )
