import mimetypes
import os

from django.core.files.base import ContentFile
from django.db import transaction

from inbox import live
from inbox.models import Attachment
from providers.base import InboundAttachment
from providers.errors import PermanentFailure
from providers.registry import get_provider

MAX_ATTACHMENT_BYTES = 100 * 1024 * 1024


def attachment_download(*, attachment_id: int) -> str:
    """Fetch an inbound attachment from its platform into our storage; returns the final status.

    TransientFailure propagates (the task retries with backoff); a permanent one marks it failed.
    The platform call runs outside any transaction. Emits message.updated on success or failure.
    """
    attachment = Attachment.objects.select_related("message__channel").filter(pk=attachment_id).first()
    if attachment is None or attachment.status == Attachment.Status.STORED:
        return "skipped"
    provider = get_provider(attachment.message.channel)
    ref = InboundAttachment(
        kind="",
        content_type=attachment.content_type,
        filename=attachment.filename,
        platform_media_id=attachment.platform_media_id,
        url=attachment.source_url,
    )
    try:
        data, content_type = provider.download_media(ref)
        if len(data) > MAX_ATTACHMENT_BYTES:
            raise PermanentFailure("too_large", f"attachment is {len(data)} bytes, over the limit")
    except PermanentFailure as exc:
        with transaction.atomic():
            Attachment.objects.filter(pk=attachment_id).update(
                status=Attachment.Status.FAILED, error=exc.reason
            )
            live.message_changed(attachment.message, created=False)
        return Attachment.Status.FAILED
    content_type = content_type or attachment.content_type or "application/octet-stream"
    filename = attachment.filename or _filename(attachment, content_type)
    with transaction.atomic():
        locked = Attachment.objects.select_for_update().get(pk=attachment_id)
        if locked.status == Attachment.Status.STORED:
            return "skipped"
        locked.file.save(os.path.basename(filename), ContentFile(data), save=False)
        locked.filename = filename
        locked.content_type = content_type
        locked.size = len(data)
        locked.status = Attachment.Status.STORED
        locked.error = ""
        locked.save()
        live.message_changed(locked.message, created=False)
    return Attachment.Status.STORED


def _filename(attachment: Attachment, content_type: str) -> str:
    ext = mimetypes.guess_extension(content_type.split(";")[0].strip()) or ".bin"
    return f"{attachment.platform_media_id or attachment.pk}{ext}".replace("/", "_")
