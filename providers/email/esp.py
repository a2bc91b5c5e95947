"""The ESPs an e-mail channel can use, each wired to django-anymail's own backend and webhook views.

Nothing here re-implements an ESP's API or its webhook format: sending goes through the anymail
backend of the channel's ESP, instantiated per channel with the channel's own credentials (anymail
takes every setting as a constructor kwarg, so global ANYMAIL settings are never read for a value we
pass), and webhooks go through the ESP's anymail tracking/inbound view, instantiated the same way:
its `run_validators()` checks the signature or basic auth in verify(), its `parse_events()` turns
the stored body into AnymailTrackingEvent / AnymailInboundEvent objects in parse().

Webhook security per ESP (anymail docs "Securing webhooks"):
- Mailgun signs every webhook (HMAC-SHA256 of timestamp+token with the webhook signing key).
- SendGrid signs tracking events (ECDSA, the "Signed Event Webhook" public key); its inbound parse
  webhook has no signature, so basic auth in the URL is required there.
- Postmark, Mailjet, Brevo and Amazon SES (SNS) sign nothing: basic auth in the URL is required.
"""

import io
from dataclasses import dataclass

from django.core.handlers.wsgi import WSGIRequest

from ..errors import ConfigurationError

SEND_ESPS = ("mailgun", "sendgrid", "postmark", "amazon_ses", "mailjet", "brevo")


@dataclass(frozen=True)
class EspSpec:
    name: str
    backend: str
    tracking_view: str
    inbound_view: str
    # (credential key, anymail backend kwarg); the first entry is required.
    backend_credentials: tuple[tuple[str, str], ...]
    # The anymail setting that holds the ESP's API base URL (None: not an HTTP API backend).
    api_url_kwarg: str | None = "api_url"
    # True where the ESP signs its webhooks itself (basic auth then optional).
    signed_tracking: bool = False
    signed_inbound: bool = False


ESPS: dict[str, EspSpec] = {
    "mailgun": EspSpec(
        "mailgun",
        "anymail.backends.mailgun.EmailBackend",
        "anymail.webhooks.mailgun.MailgunTrackingWebhookView",
        "anymail.webhooks.mailgun.MailgunInboundWebhookView",
        (("api_key", "api_key"),),
        signed_tracking=True,
        signed_inbound=True,
    ),
    "sendgrid": EspSpec(
        "sendgrid",
        "anymail.backends.sendgrid.EmailBackend",
        "anymail.webhooks.sendgrid.SendGridTrackingWebhookView",
        "anymail.webhooks.sendgrid.SendGridInboundWebhookView",
        (("api_key", "api_key"),),
    ),
    "postmark": EspSpec(
        "postmark",
        "anymail.backends.postmark.EmailBackend",
        "anymail.webhooks.postmark.PostmarkTrackingWebhookView",
        "anymail.webhooks.postmark.PostmarkInboundWebhookView",
        (("api_key", "server_token"),),
    ),
    "mailjet": EspSpec(
        "mailjet",
        "anymail.backends.mailjet.EmailBackend",
        "anymail.webhooks.mailjet.MailjetTrackingWebhookView",
        "anymail.webhooks.mailjet.MailjetInboundWebhookView",
        (("api_key", "api_key"), ("secret_key", "secret_key")),
    ),
    "brevo": EspSpec(
        "brevo",
        "anymail.backends.brevo.EmailBackend",
        "anymail.webhooks.brevo.BrevoTrackingWebhookView",
        "anymail.webhooks.brevo.BrevoInboundWebhookView",
        (("api_key", "api_key"),),
    ),
    "amazon_ses": EspSpec(
        "amazon_ses",
        "anymail.backends.amazon_ses.EmailBackend",
        "anymail.webhooks.amazon_ses.AmazonSESTrackingWebhookView",
        "anymail.webhooks.amazon_ses.AmazonSESInboundWebhookView",
        (("access_key_id", "aws_access_key_id"), ("secret_access_key", "aws_secret_access_key")),
        api_url_kwarg=None,
    ),
}


def spec_for(esp: str) -> EspSpec:
    try:
        return ESPS[esp]
    except KeyError:
        raise ConfigurationError(f"e-mail channel has no anymail ESP {esp!r}") from None


def _import(path: str):
    from django.utils.module_loading import import_string

    try:
        return import_string(path)
    except ImportError as exc:  # amazon_ses needs boto3
        raise ConfigurationError(f"{path} cannot be used in this build: {exc}") from exc


def backend_kwargs(spec: EspSpec, config: dict, credentials: dict, timeout: float) -> dict:
    """The anymail backend's constructor kwargs for one channel."""
    kwargs: dict = {"fail_silently": False}
    for index, (cred_key, kwarg) in enumerate(spec.backend_credentials):
        value = credentials.get(cred_key)
        if value:
            kwargs[kwarg] = value
        elif index == 0 or spec.name in ("mailjet", "amazon_ses"):
            raise ConfigurationError(f"the {spec.name} e-mail channel needs the credential {cred_key!r}")
    if spec.name == "mailgun":
        kwargs["sender_domain"] = config.get("domain") or None
    if spec.name == "amazon_ses":
        session = {k: kwargs.pop(k) for k in ("aws_access_key_id", "aws_secret_access_key")}
        if config.get("region"):
            session["region_name"] = config["region"]
        kwargs["session_params"] = session
        kwargs["client_params"] = (
            {"endpoint_url": config["api_base_url"]} if config.get("api_base_url") else {}
        )
        return kwargs
    if spec.api_url_kwarg and config.get("api_base_url"):
        kwargs[spec.api_url_kwarg] = config["api_base_url"]
    kwargs["timeout"] = timeout
    return kwargs


def connection(spec: EspSpec, config: dict, credentials: dict, timeout: float):
    """A fresh anymail backend for this channel (never the global EMAIL_BACKEND)."""
    from django.core.mail import get_connection

    _import(spec.backend)
    return get_connection(spec.backend, **backend_kwargs(spec, config, credentials, timeout))


def webhook_view(spec: EspSpec, endpoint: str, credentials: dict, *, for_verify: bool):
    """The ESP's anymail webhook view, configured with this channel's secrets.

    Basic auth ("user:password" in `webhook_secret`) is required wherever the ESP does not sign the
    request itself; anymail would only warn, we refuse (ConfigurationError -> 403).
    """
    tracking = endpoint == "tracking"
    cls = _import(spec.tracking_view if tracking else spec.inbound_view)
    secret = credentials.get("webhook_secret") or ""
    kwargs: dict = {"webhook_secret": [secret] if secret else []}
    signed = spec.signed_tracking if tracking else spec.signed_inbound
    if spec.name == "mailgun":
        key = credentials.get("webhook_signing_key")
        if not key and for_verify:
            raise ConfigurationError("the mailgun e-mail channel needs the credential 'webhook_signing_key'")
        kwargs["webhook_signing_key"] = key or "unused-for-parsing"
    elif spec.name == "sendgrid" and tracking:
        verification_key = credentials.get("webhook_verification_key") or None
        kwargs["tracking_webhook_verification_key"] = verification_key
        signed = bool(verification_key)
    elif spec.name == "brevo" and not tracking:
        kwargs["api_key"] = credentials.get("api_key") or ""
    elif spec.name == "amazon_ses":
        kwargs["auto_confirm_sns_subscriptions"] = False
        kwargs["session_params"] = {
            "aws_access_key_id": credentials.get("access_key_id"),
            "aws_secret_access_key": credentials.get("secret_access_key"),
        }
    if for_verify and not signed and not secret:
        raise ConfigurationError(
            f"{spec.name} does not sign its {endpoint} webhooks: set the credential 'webhook_secret' "
            "(user:password) and put it in the webhook URL as basic auth"
        )
    import warnings

    with warnings.catch_warnings():
        # anymail warns about SendGrid support and missing basic auth; both are handled above.
        warnings.simplefilter("ignore")
        return cls(**kwargs)


def stored_request(body: bytes, headers: dict) -> WSGIRequest:
    """A Django request rebuilt from a stored webhook body and its kept (lower-cased) headers.

    anymail's parse_events() takes a request (it reads request.POST/FILES for form posts); this
    gives it exactly what the platform sent, in a worker, without any network or database.
    """
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": headers.get("content-type", ""),
    }
    for key, value in headers.items():
        if key in ("content-type", "content-length"):
            continue
        environ["HTTP_" + key.upper().replace("-", "_")] = str(value)
    request = WSGIRequest(environ)
    # Preload the body: no DATA_UPLOAD_MAX_MEMORY_SIZE check for a body we already accepted.
    request._body = body
    return request
