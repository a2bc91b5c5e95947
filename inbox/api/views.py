"""REST API v1 views (CONTRACT.md): input serializer -> one service or selector -> output serializer.

The organization comes from the request (API key or the session's current organization); every
selector takes it, so another organization's rows are not found (404).
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.errors import BillingError
from billing.services import quota_check
from inbox import selectors
from inbox.errors import InboxError
from inbox.services.contacts import contact_merge, contact_unmerge
from inbox.services.conversations import conversation_start, conversation_update
from inbox.services.messages import message_create_outbound, message_retry
from providers import selectors as channel_selectors
from providers import services as channel_services

from . import serializers as s
from .errors import ApiError
from .pagination import CursorPagination

IDEMPOTENCY_KEY_MAX = 255

PAGE_PARAMETERS = [
    OpenApiParameter("cursor", str, description="The opaque cursor of the `next` link."),
    OpenApiParameter("limit", int, description="Page size (default 50, at most 200)."),
]
IDEMPOTENCY_PARAMETER = OpenApiParameter(
    "Idempotency-Key",
    str,
    location=OpenApiParameter.HEADER,
    description="Repeating a key returns the first message (200) instead of sending again.",
)
ERRORS = {
    400: OpenApiResponse(s.ErrorSerializer, description="Invalid request (`invalid`, with field details)."),
    401: OpenApiResponse(s.ErrorSerializer, description="Missing or bad credentials."),
    404: OpenApiResponse(s.ErrorSerializer, description="Not found in this organization."),
}
DOMAIN_ERRORS = {
    **ERRORS,
    409: OpenApiResponse(s.ErrorSerializer, description="Conflicts with the object's state."),
    422: OpenApiResponse(
        s.ErrorSerializer,
        description="Refused by a rule (`window_closed`, `contact_opted_out`, `contact_blocked`, `no_recipient`).",
    ),
}


def _validation_details(exc: DjangoValidationError) -> dict:
    if hasattr(exc, "error_dict"):
        return exc.message_dict
    return {"non_field_errors": exc.messages}


class ApiView(APIView):
    """Turns the services' errors into the API's error shape: InboxError keeps its code and status,
    Django's ValidationError becomes 400 `invalid` with field details."""

    def handle_exception(self, exc):
        if isinstance(exc, (InboxError, BillingError)):
            exc = ApiError(exc.code, exc.message, status_code=exc.status_code, details=exc.details)
        elif isinstance(exc, DjangoValidationError):
            exc = ApiError("invalid", "The request is not valid.", status_code=400, details=_validation_details(exc))
        return super().handle_exception(exc)

    @property
    def organization(self):
        return self.request.organization

    @property
    def user(self):
        user = self.request.user
        return user if user is not None and user.is_authenticated else None

    def validated(self, serializer_class, data, **context):
        serializer = serializer_class(data=data, context={"request": self.request, **context})
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def paginated(self, queryset, ordering: tuple[str, ...], serializer_class) -> Response:
        paginator = CursorPagination()
        paginator.ordering = ordering
        page = paginator.paginate_queryset(queryset, self.request, view=self)
        return paginator.get_paginated_response(serializer_class(page, many=True).data)

    def idempotency_key(self) -> str | None:
        key = (self.request.headers.get("Idempotency-Key") or "").strip()
        if len(key) > IDEMPOTENCY_KEY_MAX:
            raise ApiError(
                "invalid",
                "The request is not valid.",
                details={"Idempotency-Key": [f"At most {IDEMPOTENCY_KEY_MAX} characters."]},
            )
        return key or None


# --- channels ---------------------------------------------------------------------------------------------
class ChannelListView(ApiView):
    @extend_schema(
        operation_id="channels_list",
        summary="List channels",
        parameters=PAGE_PARAMETERS,
        responses={200: s.page_serializer("PaginatedChannelList", s.ChannelSerializer), 401: ERRORS[401]},
        tags=["channels"],
    )
    def get(self, request):
        channels = channel_selectors.channel_list(organization=self.organization)
        return self.paginated(channels, ("name", "id"), s.ChannelSerializer)

    @extend_schema(
        operation_id="channels_create",
        summary="Create a channel",
        description="Credentials are write-only: they are stored encrypted and never returned.",
        request=s.ChannelCreateSerializer,
        responses={201: s.ChannelSerializer, 400: ERRORS[400], 401: ERRORS[401]},
        tags=["channels"],
    )
    def post(self, request):
        data = self.validated(s.ChannelCreateSerializer, request.data)
        quota_check(
            organization_id=self.organization.pk,
            resource="channels",
            current=channel_selectors.channel_list(organization=self.organization).count(),
        )
        channel = channel_services.channel_create(organization=self.organization, **data)
        return Response(s.ChannelSerializer(channel).data, status=status.HTTP_201_CREATED)


class ChannelDetailView(ApiView):
    def get_channel(self, pk: int):
        return channel_selectors.channel_get(organization=self.organization, channel_id=pk)

    @extend_schema(operation_id="channels_retrieve", responses={200: s.ChannelSerializer, **ERRORS}, tags=["channels"])
    def get(self, request, pk: int):
        return Response(s.ChannelSerializer(self.get_channel(pk)).data)

    @extend_schema(
        operation_id="channels_partial_update",
        summary="Change a channel",
        description="config is merged over the stored one; credentials given replace the stored ones, "
        "absent or empty ones are kept. status: active or paused.",
        request=s.ChannelUpdateSerializer,
        responses={200: s.ChannelSerializer, **ERRORS},
        tags=["channels"],
    )
    def patch(self, request, pk: int):
        channel = self.get_channel(pk)
        data = self.validated(s.ChannelUpdateSerializer, request.data)
        channel = channel_services.channel_update(
            channel=channel,
            name=data.get("name"),
            config=data.get("config"),
            credentials=data.get("credentials"),
            status=data.get("status"),
        )
        return Response(s.ChannelSerializer(channel).data)

    @extend_schema(
        operation_id="channels_destroy", responses={204: OpenApiResponse(description="Deleted."), **ERRORS}, tags=["channels"]
    )
    def delete(self, request, pk: int):
        channel_services.channel_delete(channel=self.get_channel(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ChannelTestView(ApiView):
    @extend_schema(
        operation_id="channels_test",
        summary="Test a channel's connection",
        description="Makes a real, harmless call to the platform with the stored credentials.",
        request=None,
        responses={200: s.ChannelTestSerializer, **ERRORS},
        tags=["channels"],
    )
    def post(self, request, pk: int):
        channel = channel_selectors.channel_get(organization=self.organization, channel_id=pk)
        result = channel_services.channel_test(channel=channel)
        return Response(s.ChannelTestSerializer({"ok": result.ok, "detail": result.detail}).data)


# --- contacts ---------------------------------------------------------------------------------------------
class ContactListView(ApiView):
    @extend_schema(
        operation_id="contacts_list",
        summary="List or search contacts",
        description="Newest first. `q` searches names and identity values (phone numbers, e-mail addresses, "
        "chat ids). Contacts merged into another are not listed.",
        parameters=[s.ContactListQuerySerializer, *PAGE_PARAMETERS],
        responses={200: s.page_serializer("PaginatedContactList", s.ContactSerializer), 400: ERRORS[400], 401: ERRORS[401]},
        tags=["contacts"],
    )
    def get(self, request):
        query = self.validated(s.ContactListQuerySerializer, request.query_params)
        contacts = selectors.contact_list(organization=self.organization, q=query.get("q", ""))
        return self.paginated(contacts, ("-created_at", "-id"), s.ContactSerializer)


class ContactDetailView(ApiView):
    @extend_schema(operation_id="contacts_retrieve", responses={200: s.ContactSerializer, **ERRORS}, tags=["contacts"])
    def get(self, request, pk: int):
        contact = selectors.contact_get(organization=self.organization, contact_id=pk)
        return Response(s.ContactSerializer(contact).data)


class ContactMergeView(ApiView):
    @extend_schema(
        operation_id="contacts_merge",
        summary="Merge another contact into this one",
        description="The other contact's identities and conversations move to this one; the other gets "
        "`merged_into`. The answer's `merge.id` undoes it (POST /contacts/{id}/unmerge/).",
        request=s.ContactMergeInputSerializer,
        responses={200: s.ContactMergeResultSerializer, **DOMAIN_ERRORS},
        tags=["contacts"],
    )
    def post(self, request, pk: int):
        data = self.validated(s.ContactMergeInputSerializer, request.data)
        primary = selectors.contact_get(organization=self.organization, contact_id=pk)
        other = selectors.contact_get(organization=self.organization, contact_id=data["other"])
        merge = contact_merge(primary=primary, other=other, user=self.user)
        contact = selectors.contact_get(organization=self.organization, contact_id=merge.primary_id)
        return Response({**s.ContactSerializer(contact).data, "merge": s.ContactMergeSerializer(merge).data})


class ContactUnmergeView(ApiView):
    @extend_schema(
        operation_id="contacts_unmerge",
        summary="Undo a merge into this contact",
        description="Moves back exactly what the merge moved and clears the other contact's `merged_into`.",
        request=s.ContactUnmergeInputSerializer,
        responses={200: s.ContactUnmergeResultSerializer, **DOMAIN_ERRORS},
        tags=["contacts"],
    )
    def post(self, request, pk: int):
        data = self.validated(s.ContactUnmergeInputSerializer, request.data)
        merge = selectors.contact_merge_get(organization=self.organization, merge_id=data["merge"], primary_id=pk)
        merge = contact_unmerge(merge=merge)
        contact = selectors.contact_get(organization=self.organization, contact_id=merge.primary_id)
        restored = selectors.contact_get(organization=self.organization, contact_id=merge.merged_id)
        return Response(
            {
                "contact": s.ContactSerializer(contact).data,
                "restored": s.ContactSerializer(restored).data,
                "merge": s.ContactMergeSerializer(merge).data,
            }
        )


# --- conversations ---------------------------------------------------------------------------------------
class ConversationListView(ApiView):
    @extend_schema(
        operation_id="conversations_list",
        summary="List conversations, newest activity first",
        description='`assignee`: a user id, "me" (the session\'s user) or "none" (unassigned). `label`: a label '
        "name. `q`: contact name, identity value or message text.",
        parameters=[s.ConversationListQuerySerializer, *PAGE_PARAMETERS],
        responses={
            200: s.page_serializer("PaginatedConversationList", s.ConversationSerializer),
            400: ERRORS[400],
            401: ERRORS[401],
        },
        tags=["conversations"],
    )
    def get(self, request):
        query = self.validated(s.ConversationListQuerySerializer, request.query_params)
        conversations = selectors.conversation_list(
            organization=self.organization,
            status=query.get("status"),
            channel_id=query.get("channel"),
            assignee=query.get("assignee"),
            user=self.user,
            label=query.get("label"),
            q=query.get("q"),
        )
        return self.paginated(conversations, ("-last_activity_at", "-id"), s.ConversationSerializer)


class ConversationDetailView(ApiView):
    @extend_schema(
        operation_id="conversations_retrieve", responses={200: s.ConversationSerializer, **ERRORS}, tags=["conversations"]
    )
    def get(self, request, pk: int):
        conversation = selectors.conversation_get(organization=self.organization, conversation_id=pk)
        return Response(s.ConversationSerializer(conversation).data)

    @extend_schema(
        operation_id="conversations_partial_update",
        summary="Change a conversation",
        description="Assigning, resolving, reopening and snoozing record a private system message. "
        "`assignee` must be a member, `team` a team of the organization; `labels` (names) replaces the "
        "set and creates new labels; `snoozed_until` is required with status snoozed.",
        request=s.ConversationUpdateSerializer,
        responses={200: s.ConversationSerializer, **ERRORS},
        tags=["conversations"],
    )
    def patch(self, request, pk: int):
        conversation = selectors.conversation_get(organization=self.organization, conversation_id=pk)
        data = self.validated(s.ConversationUpdateSerializer, request.data)
        renames = {"assignee": "assignee_id", "team": "team_id"}
        conversation = conversation_update(
            conversation=conversation, actor=self.user, **{renames.get(k, k): v for k, v in data.items()}
        )
        conversation = selectors.conversation_get(organization=self.organization, conversation_id=conversation.pk)
        return Response(s.ConversationSerializer(conversation).data)


class ConversationMessagesView(ApiView):
    @extend_schema(
        operation_id="conversations_messages_list",
        summary="A conversation's messages, oldest first",
        parameters=PAGE_PARAMETERS,
        responses={200: s.page_serializer("PaginatedMessageList", s.MessageSerializer), **ERRORS},
        tags=["messages"],
    )
    def get(self, request, pk: int):
        conversation = selectors.conversation_get(organization=self.organization, conversation_id=pk)
        messages = selectors.message_list(organization=self.organization, conversation=conversation)
        return self.paginated(messages, ("created_at", "id"), s.MessageSerializer)

    @extend_schema(
        operation_id="conversations_messages_create",
        summary="Send a message (or add a private note) in a conversation",
        description='{"text"}, {"template": {"name", "language", "variables"}} or {"text", "private": true}. '
        'Attachments: multipart files under `attachments`, or [{"url", "content_type", "filename"}] in JSON. '
        "201 with the message (status pending; notes are sent at once); 200 with the first message when the "
        "Idempotency-Key was seen before.",
        parameters=[IDEMPOTENCY_PARAMETER],
        request={"application/json": s.MessageCreateSerializer, "multipart/form-data": s.MessageCreateSerializer},
        responses={201: s.MessageSerializer, 200: s.MessageSerializer, **DOMAIN_ERRORS},
        tags=["messages"],
    )
    def post(self, request, pk: int):
        conversation = selectors.conversation_get(organization=self.organization, conversation_id=pk)
        data = self.validated(s.MessageCreateSerializer, request.data)
        template = data.get("template")
        message, created = message_create_outbound(
            conversation=conversation,
            text=data.get("text", ""),
            template=dict(template) if template else None,
            private=data.get("private", False),
            attachments=data.get("attachments") or [],
            sender=self.user,
            idempotency_key=self.idempotency_key(),
        )
        return Response(
            s.MessageSerializer(message).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


# --- messages ---------------------------------------------------------------------------------------------
class MessageSendView(ApiView):
    @extend_schema(
        operation_id="messages_create",
        summary="Send a message to a recipient",
        description="Normalizes `to` for the channel's kind (E.164 for phone channels), finds or creates the "
        "contact and the conversation, and sends. A new WhatsApp conversation has no customer message yet: "
        "free text is refused with `window_closed`, a template works.",
        parameters=[IDEMPOTENCY_PARAMETER],
        request={"application/json": s.MessageSendSerializer, "multipart/form-data": s.MessageSendSerializer},
        responses={201: s.MessageSerializer, 200: s.MessageSerializer, **DOMAIN_ERRORS},
        tags=["messages"],
    )
    def post(self, request):
        data = self.validated(s.MessageSendSerializer, request.data)
        channel = channel_selectors.channel_get(organization=self.organization, channel_id=data["channel"])
        template = data.get("template")
        message, created = conversation_start(
            channel=channel,
            to=data["to"],
            text=data.get("text", ""),
            template=dict(template) if template else None,
            attachments=data.get("attachments") or [],
            sender=self.user,
            idempotency_key=self.idempotency_key(),
        )
        return Response(
            s.MessageSerializer(message).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class MessageDetailView(ApiView):
    @extend_schema(operation_id="messages_retrieve", responses={200: s.MessageSerializer, **ERRORS}, tags=["messages"])
    def get(self, request, pk: int):
        message = selectors.message_get(organization=self.organization, message_id=pk)
        return Response(s.MessageSerializer(message).data)


class MessageRetryView(ApiView):
    @extend_schema(
        operation_id="messages_retry",
        summary="Retry a failed message",
        description="Only a failed outbound message: it goes back to pending and is queued again (409 otherwise).",
        request=None,
        responses={200: s.MessageSerializer, **DOMAIN_ERRORS},
        tags=["messages"],
    )
    def post(self, request, pk: int):
        message = selectors.message_get(organization=self.organization, message_id=pk)
        message = message_retry(message=message)
        return Response(s.MessageSerializer(message).data)
