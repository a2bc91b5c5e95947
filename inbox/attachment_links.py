"""Signed, expiring links to stored attachments, for those who cannot log in: platforms fetching an
agent's file (Twilio's MediaUrl, WhatsApp/Messenger by link) and API clients. The agent UI uses the
login-required, organization-scoped view instead (inbox:attachment)."""

from django.conf import settings
from django.core import signing
from django.http import FileResponse, Http404
from django.urls import reverse
from django.views.decorators.http import require_GET

from inbox.models import Attachment

SALT = "alexia.attachment"
MAX_AGE = 7 * 24 * 3600


def attachment_signed_url(attachment: Attachment) -> str:
    token = signing.dumps({"a": attachment.pk, "o": attachment.organization_id}, salt=SALT, compress=True)
    return f"{settings.PUBLIC_BASE_URL}{reverse('attachment-signed', args=[token])}"


@require_GET
def attachment_signed_view(request, token: str):
    try:
        data = signing.loads(token, salt=SALT, max_age=MAX_AGE)
    except signing.BadSignature as exc:
        raise Http404("link expired or invalid") from exc
    attachment = Attachment.objects.filter(
        pk=data.get("a"), organization_id=data.get("o"), status=Attachment.Status.STORED
    ).first()
    if attachment is None or not attachment.file:
        raise Http404("no such attachment")
    response = FileResponse(
        attachment.file.open("rb"),
        content_type=attachment.content_type or "application/octet-stream",
        filename=attachment.filename or None,
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
