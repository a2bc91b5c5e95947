"""POST /webhooks/<kind>/<token>/: verify, record, answer fast. No domain work here."""

import logging

from django.http import HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from inbox.services.webhooks import kept_headers, webhook_event_record
from providers.errors import ConfigurationError, MalformedPayloadError, WebhookVerificationError
from providers.registry import get_provider
from providers.selectors import channel_get_by_token

logger = logging.getLogger(__name__)


@csrf_exempt
def webhook_view(request, kind: str, token: str, endpoint: str = "inbound"):
    channel = channel_get_by_token(kind=kind, token=token, cached=True)
    if channel is None:
        return JsonResponse({"error": "unknown webhook"}, status=404)
    provider = get_provider(channel)
    if request.method == "GET":
        response = provider.handshake(request)
        return response if response is not None else HttpResponseNotAllowed(["POST"])
    if request.method != "POST":
        return HttpResponseNotAllowed(["GET", "POST"])
    try:
        provider.verify(request)
    except WebhookVerificationError as exc:
        logger.warning("webhook %s channel=%s refused: %s", kind, channel.pk, exc)
        return JsonResponse({"error": "signature verification failed"}, status=403)
    except ConfigurationError as exc:
        # The channel lacks the secret to check signatures with: refuse rather than trust the body.
        logger.error("webhook %s channel=%s cannot be verified: %s", kind, channel.pk, exc)
        return JsonResponse({"error": "channel is not configured to verify webhooks"}, status=403)
    body = request.body
    headers = kept_headers(request.headers)
    try:
        event_id = provider.event_id(body, headers)
    except MalformedPayloadError as exc:
        logger.info("webhook %s channel=%s malformed: %s", kind, channel.pk, exc)
        return JsonResponse({"error": f"malformed body: {exc}"}, status=400)
    webhook_event_record(
        channel=channel,
        endpoint=endpoint,
        event_id=event_id,
        body=body,
        headers=headers,
        content_type=request.content_type or "",
    )
    immediate = provider.immediate_response(body, headers)
    return immediate if immediate is not None else HttpResponse("ok", content_type="text/plain")
