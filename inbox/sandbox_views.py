"""The sandbox page: play the customer on the demo's sandbox channels (login required, org-scoped)."""

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from inbox.errors import InboxError
from inbox.models import Message
from inbox.services.sandbox import (
    sandbox_channels,
    sandbox_customer_message,
    sandbox_platform_received,
    sandbox_status,
)

DEFAULT_SENDERS = {
    "whatsapp_cloud": "+15551230001",
    "telegram": "5551230002",
    "twilio_sms": "+15551230003",
    "twilio_whatsapp": "+15551230004",
}


def _organization(request):
    if request.organization is None:
        raise Http404("no organization")
    return request.organization


@login_required
def sandbox_page(request):
    organization = _organization(request)
    channels = sandbox_channels(organization=organization)
    outbound = (
        Message.objects.filter(
            organization=organization, channel__in=channels, direction=Message.Direction.OUT, private=False
        )
        .select_related("channel", "conversation__contact")
        .order_by("-created_at")[:20]
    )
    rows = [
        {
            "channel": c,
            "default_sender": DEFAULT_SENDERS.get(c.kind, ""),
            "received": sandbox_platform_received(channel=c),
        }
        for c in channels
    ]
    return render(request, "sandbox/index.html", {"rows": rows, "outbound": outbound})


@login_required
@require_POST
def sandbox_send(request):
    organization = _organization(request)
    channel = next(
        (c for c in sandbox_channels(organization=organization) if str(c.pk) == request.POST.get("channel")),
        None,
    )
    if channel is None:
        raise Http404("no such sandbox channel")
    try:
        sandbox_customer_message(
            channel=channel,
            sender=request.POST.get("sender", ""),
            name=request.POST.get("name", ""),
            text=request.POST.get("text", ""),
        )
    except InboxError as exc:
        flash.error(request, exc.message)
    else:
        flash.success(request, f"Sent to {channel.name} as the customer. It is in the inbox now.")
    return redirect("sandbox")


@login_required
@require_POST
def sandbox_ack(request, message_id: int):
    organization = _organization(request)
    message = (
        Message.objects.select_related("channel").filter(organization=organization, pk=message_id).first()
    )
    if message is None:
        raise Http404("no such message")
    try:
        sandbox_status(message=message, status=request.POST.get("status", ""))
    except InboxError as exc:
        flash.error(request, exc.message)
    else:
        flash.success(request, f"The platform reported message {message.pk} as {request.POST.get('status')}.")
    return redirect("sandbox")
