"""Relay endpoint for the embedded topology (no Redis): workers POST live events to the web process."""

import hmac
import json

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.http import HttpResponse, HttpResponseForbidden, HttpResponseNotFound, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .publish import relay_signature


@csrf_exempt
@require_POST
def relay_view(request):
    layer = get_channel_layer()
    if not isinstance(layer, InMemoryChannelLayer):
        return HttpResponseNotFound()
    signature = request.headers.get("X-Alexia-Relay-Signature", "")
    if not hmac.compare_digest(signature, relay_signature(request.body)):
        return HttpResponseForbidden("bad relay signature")
    try:
        payload = json.loads(request.body)
        group, event = payload["group"], payload["event"]
    except (ValueError, KeyError, TypeError):
        return JsonResponse({"error": "body must be {group, event}"}, status=400)
    async_to_sync(layer.group_send)(group, {"type": "live.event", "event": event})
    return HttpResponse(status=204)
