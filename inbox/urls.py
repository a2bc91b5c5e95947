"""The agent inbox, mounted at "/" (alexia/urls.py). Pages, HTML fragments and actions."""

from django.urls import path

from .views import actions, pages, partials

app_name = "inbox"

urlpatterns = [
    # pages
    path("", pages.inbox_home, name="home"),
    path("conversations/<int:pk>/", pages.conversation_page, name="conversation"),
    path("dashboard/", pages.dashboard_page, name="dashboard"),
    # fragments
    path("fragments/conversations/", partials.list_partial, name="list-fragment"),
    path("fragments/conversations/<int:pk>/", partials.pane_partial, name="pane-fragment"),
    path("fragments/conversations/<int:pk>/row/", partials.row_partial, name="row-fragment"),
    path("fragments/conversations/<int:pk>/header/", partials.header_partial, name="header-fragment"),
    path("fragments/conversations/<int:pk>/messages/", partials.thread_partial, name="thread-fragment"),
    path("fragments/messages/<int:pk>/", partials.message_partial, name="message-fragment"),
    path("fragments/contacts/<int:pk>/", partials.contact_partial, name="contact-fragment"),
    path("fragments/contacts/<int:pk>/merge-candidates/", partials.merge_candidates_partial, name="merge-candidates"),
    path("fragments/dashboard/", partials.dashboard_partial, name="dashboard-fragment"),
    # actions
    path("conversations/<int:pk>/messages/", actions.message_send, name="message-send"),
    path("conversations/<int:pk>/update/", actions.conversation_update_view, name="conversation-update"),
    path("conversations/<int:pk>/read/", actions.conversation_read, name="conversation-read"),
    path("conversations/<int:pk>/unread/", actions.conversation_unread, name="conversation-unread"),
    path("conversations/<int:pk>/presence/", actions.presence, name="presence"),
    path("conversations/bulk/", actions.conversation_bulk, name="conversation-bulk"),
    path("messages/<int:pk>/retry/", actions.message_retry_view, name="message-retry"),
    path("contacts/<int:pk>/edit/", actions.contact_edit, name="contact-edit"),
    path("contacts/<int:pk>/merge/", actions.contact_merge_view, name="contact-merge"),
    path("contacts/<int:pk>/unmerge/", actions.contact_unmerge_view, name="contact-unmerge"),
    path("attachments/<int:pk>/", actions.attachment_download, name="attachment"),
]
