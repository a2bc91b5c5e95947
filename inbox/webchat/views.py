"""HTTP endpoints of the website chat widget (mounted at /webchat/, see urls.py).

Visitor endpoints live on customers' sites, so they are cross-origin: every call's Origin (or, for a
same-origin GET where browsers send none, the Referer's origin) must be one of the channel's
allowed_origins or our own site; otherwise 403 and no CORS headers. CORS answers name that one origin,
never "*", and no cookies are used (the visitor token travels in the X-Visitor-Token header), so CSRF
does not apply to them. The agent's typing endpoint is an ordinary session-authenticated view.

Errors use the API's shape: {"error": {"code", "message"}}.
"""

import json
from functools import wraps
from urllib.parse import urlsplit

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ObjectDoesNotExist
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from channels_app.widget_consumer import agents_online, own_origins, visitor_token_read
from inbox.errors import InboxError
from inbox.models import Message
from providers.registry import get_provider
from providers.selectors import channel_get_by_token
from providers.webchat import client_id_of, normalize_origin, origin_allowed

from . import selectors, services

VISITOR_HEADER = "X-Visitor-Token"


def _error(code: str, message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status)


def _request_origin(request) -> str:
    origin = request.headers.get("Origin", "")
    if origin:
        return origin
    referer = request.headers.get("Referer", "")
    parts = urlsplit(referer)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def _cors(response: HttpResponse, request) -> HttpResponse:
    origin = request.headers.get("Origin", "")
    if origin:
        response["Access-Control-Allow-Origin"] = normalize_origin(origin)
        response["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        response["Access-Control-Allow-Headers"] = f"Content-Type, {VISITOR_HEADER}"
        response["Access-Control-Max-Age"] = "600"
    patch_vary_headers(response, ["Origin"])
    response["Cache-Control"] = "no-store"
    return response


def widget_endpoint(*methods: str):
    """Resolve the channel from the token, check the Origin, answer preflights, add CORS headers.
    The view gets (request, channel, data) with data the JSON body (POST) or {}."""

    def decorator(view):
        @csrf_exempt
        @wraps(view)
        def wrapper(request, token: str):
            channel = channel_get_by_token(kind="webchat", token=token)
            if channel is None:
                return _error("unknown_channel", "No such chat.", 404)
            allowed = channel.config.get("allowed_origins") or []
            if not origin_allowed(_request_origin(request), allowed, own_origins(request.get_host())):
                return _error("origin_refused", "This site may not use this chat.", 403)
            if request.method == "OPTIONS":
                return _cors(HttpResponse(status=204), request)
            if request.method not in methods:
                response = _error("method_not_allowed", f"Use {', '.join(methods)}.", 405)
                response["Allow"] = ", ".join(methods)
                return _cors(response, request)
            data = {}
            if request.method == "POST" and request.body:
                try:
                    data = json.loads(request.body)
                except (ValueError, UnicodeDecodeError):
                    return _cors(_error("invalid_json", "The body must be JSON.", 400), request)
                if not isinstance(data, dict):
                    return _cors(_error("invalid_json", "The body must be a JSON object.", 400), request)
            try:
                response = view(request, channel, data)
            except InboxError as exc:
                response = _error(exc.code, exc.message, exc.status_code)
            return _cors(response, request)

        return wrapper

    return decorator


def _visitor(request, channel) -> str:
    found = visitor_token_read(channel_id=channel.pk, token=request.headers.get(VISITOR_HEADER, ""))
    if found is None:
        raise InboxError("bad_visitor_token", "Start a session first.", status_code=403)
    return found[0]


def _message_json(message: Message) -> dict:
    data = {
        "id": message.pk,
        "direction": message.direction,
        "type": message.type,
        "text": message.text,
        "created_at": message.created_at.isoformat(),
        "attachments": [
            {"filename": a.filename, "content_type": a.content_type, "url": a.source_url}
            for a in message.attachments.all()
        ],
    }
    if message.direction == Message.Direction.IN:
        data["client_id"] = client_id_of(message.platform_message_id)
    else:
        data["status"] = message.status
    return data


# --- visitor endpoints --------------------------------------------------------------------------------
@widget_endpoint("GET")
def config_view(request, channel, data):
    """What the bubble needs before any session: texts, the pre-chat form, whether agents are online."""
    if not channel.is_active:
        return JsonResponse({"enabled": False})
    return JsonResponse(
        {
            "enabled": True,
            **get_provider(channel).widget_settings(),
            "agents_online": agents_online(channel.organization_id),
            "identity_verification": bool(channel.credentials.get("identity_secret")),
        }
    )


@widget_endpoint("POST")
def session_view(request, channel, data):
    """Start or resume: {visitor_token?, user_id?, user_hash?, name?, email?} -> the visitor's token."""
    session = services.webchat_session_start(
        channel=channel,
        visitor_token=str(data.get("visitor_token") or request.headers.get(VISITOR_HEADER, "")),
        user_id=str(data.get("user_id") or ""),
        user_hash=str(data.get("user_hash") or ""),
        name=str(data.get("name") or ""),
        email=str(data.get("email") or ""),
    )
    form = get_provider(channel).widget_settings()["pre_chat_form"]
    missing = [
        key
        for key, value in (("name", session.name), ("email", session.email))
        if form[key] == "required" and not value
    ]
    return JsonResponse(
        {
            "visitor_token": session.token,
            "visitor": {"name": session.name, "email": session.email, "verified": session.verified},
            "pre_chat_missing": missing,
            "agents_online": agents_online(channel.organization_id),
        }
    )


@widget_endpoint("GET", "POST")
def messages_view(request, channel, data):
    """GET ?after=<id>: the visitor's messages (the polling fallback and the history on reconnect).
    POST {client_id, text}: send a message; a retry with the same client_id is stored once."""
    visitor = _visitor(request, channel)
    if request.method == "GET":
        after = request.GET.get("after", "0")
        after_id = int(after) if after.isdigit() else 0
        messages = [
            _message_json(m)
            for m in selectors.visitor_messages(channel=channel, visitor=visitor, after_id=after_id)
        ]
        typing_name = services.agent_typing_now(channel=channel, visitor=visitor)
        return JsonResponse(
            {
                "messages": messages,
                "agent_typing": typing_name is not None,
                "agent_name": typing_name or "",
                "agents_online": agents_online(channel.organization_id),
            }
        )
    created = services.webchat_message_post(
        channel=channel,
        visitor=visitor,
        client_id=str(data.get("client_id") or ""),
        text=str(data.get("text") or ""),
        name=str(data.get("name") or ""),
        page_url=str(data.get("page_url") or ""),
    )
    return JsonResponse({"client_id": data.get("client_id"), "duplicate": not created}, status=202)


@widget_endpoint("POST")
def typing_view(request, channel, data):
    visitor = _visitor(request, channel)
    services.webchat_visitor_typing(channel=channel, visitor=visitor, typing=bool(data.get("typing")))
    return HttpResponse(status=204)


@widget_endpoint("POST")
def receipts_view(request, channel, data):
    """{status: "delivered"|"read", message_ids: [...]}: ticks for the agent's messages."""
    visitor = _visitor(request, channel)
    ids = data.get("message_ids")
    if not isinstance(ids, list):
        raise InboxError("invalid_ids", "message_ids must be a list.", status_code=400)
    kept = services.webchat_receipt_post(
        channel=channel, visitor=visitor, status=str(data.get("status") or ""), message_ids=ids
    )
    return JsonResponse({"message_ids": kept})


@require_GET
def demo_view(request, token: str):
    """A page with nothing but the widget, as a customer's site would embed it."""
    from inbox.api.serializers import ChannelSerializer

    channel = channel_get_by_token(kind="webchat", token=token)
    if channel is None:
        raise Http404("No such chat.")
    snippet = ChannelSerializer(channel).data["embed_snippet"]
    return render(request, "webchat/demo.html", {"channel": channel, "snippet": snippet})


# --- agent endpoint -------------------------------------------------------------------------------------
@require_POST
@login_required
def agent_typing_view(request, pk: int):
    """POST typing=1|0 (form or JSON) while an agent types in conversation pk: the visitor's widget shows
    "typing". 200 {"delivered": bool}; false for conversations on other channel kinds."""
    organization = getattr(request, "organization", None)
    if organization is None:
        return _error("no_organization", "You are not a member of any organization.", 403)
    if request.content_type == "application/json":
        try:
            typing = bool(json.loads(request.body or b"{}").get("typing"))
        except (ValueError, AttributeError):
            return _error("invalid_json", "The body must be a JSON object.", 400)
    else:
        typing = request.POST.get("typing") in ("1", "true", "on")
    try:
        delivered = services.webchat_agent_typing(
            organization=organization, conversation_id=pk, user=request.user, typing=typing
        )
    except ObjectDoesNotExist as exc:
        raise Http404("Not found in this organization.") from exc
    return JsonResponse({"delivered": delivered})
