"""REST API v1 routes (CONTRACT.md), mounted at /api/v1/."""

from django.urls import path

from . import (
    schema,  # noqa: F401 - registers the OpenAPI authentication extensions
    views,
)

urlpatterns = [
    path("channels/", views.ChannelListView.as_view(), name="api-channels"),
    path("channels/<int:pk>/", views.ChannelDetailView.as_view(), name="api-channel"),
    path("channels/<int:pk>/test/", views.ChannelTestView.as_view(), name="api-channel-test"),
    path("contacts/", views.ContactListView.as_view(), name="api-contacts"),
    path("contacts/<int:pk>/", views.ContactDetailView.as_view(), name="api-contact"),
    path("contacts/<int:pk>/merge/", views.ContactMergeView.as_view(), name="api-contact-merge"),
    path("contacts/<int:pk>/unmerge/", views.ContactUnmergeView.as_view(), name="api-contact-unmerge"),
    path("conversations/", views.ConversationListView.as_view(), name="api-conversations"),
    path("conversations/<int:pk>/", views.ConversationDetailView.as_view(), name="api-conversation"),
    path(
        "conversations/<int:pk>/messages/",
        views.ConversationMessagesView.as_view(),
        name="api-conversation-messages",
    ),
    path("messages/", views.MessageSendView.as_view(), name="api-messages"),
    path("messages/<int:pk>/", views.MessageDetailView.as_view(), name="api-message"),
    path("messages/<int:pk>/retry/", views.MessageRetryView.as_view(), name="api-message-retry"),
]
