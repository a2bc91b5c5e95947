"""One view: check X-Hub-Signature-256 over the raw body with hmac.compare_digest, insert the body
into one table, answer 200. The table is created by the benchmark (bench_baseline_event)."""

import hashlib
import hmac
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.baseline.settings")

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.urls import path  # noqa: E402


def webhook(request, token: str):
    if request.method != "POST":
        return HttpResponse(status=405)
    expected = "sha256=" + hmac.new(settings.BASELINE_APP_SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, request.headers.get("X-Hub-Signature-256", "")):
        return HttpResponse(status=403)
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO bench_baseline_event (token, body) VALUES (%s, %s)", [token, request.body])
    return HttpResponse("ok", content_type="text/plain")


def health(request):
    return HttpResponse("ok")


urlpatterns = [path("webhooks/whatsapp_cloud/<str:token>/", webhook), path("health/", health)]

from django.core.asgi import get_asgi_application  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402

asgi_application = get_asgi_application()
wsgi_application = get_wsgi_application()
