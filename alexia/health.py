"""GET /health/: real checks of the database, the broker and the channel layer (CONTRACT.md)."""

import os
import secrets

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from providers.selectors import channel_credentials_canary_ok


def _check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    if not channel_credentials_canary_ok():
        raise RuntimeError("stored credentials do not decrypt with FIELD_ENCRYPTION_KEY")
    return "ok"


def _check_broker() -> str:
    if settings.REDIS_URL:
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
        try:
            client.ping()
        finally:
            client.close()
        return "ok"
    folder = settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]
    if not os.access(folder, os.W_OK):
        raise RuntimeError(f"broker folder {folder} is not writable")
    return "ok"


def _check_channel_layer() -> str:
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)("health.")
    token = secrets.token_hex(8)
    async_to_sync(layer.send)(channel, {"type": "health.check", "token": token})
    received = async_to_sync(layer.receive)(channel)
    if received.get("token") != token:
        raise RuntimeError("channel layer returned another message")
    return "ok"


CHECKS = {"database": _check_database, "broker": _check_broker, "channel_layer": _check_channel_layer}


@require_GET
def health_view(request):
    results, failing = {}, []
    for name, check in CHECKS.items():
        try:
            results[name] = check()
        except Exception as exc:  # noqa: BLE001 - every failure is reported, none crashes the probe
            results[name] = f"error: {type(exc).__name__}: {exc}"[:300]
            failing.append(name)
    if failing:
        return JsonResponse({"status": "error", "failing": failing, "checks": results}, status=503)
    return JsonResponse({"status": "ok", "checks": results})
