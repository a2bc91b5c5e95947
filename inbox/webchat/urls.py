"""Mounted at /webchat/ (alexia/urls.py): path("webchat/", include("inbox.webchat.urls"))."""

from django.urls import path

from . import views

app_name = "webchat"

urlpatterns = [
    path("demo/<str:token>/", views.demo_view, name="demo"),
    path("agent/conversations/<int:pk>/typing/", views.agent_typing_view, name="agent-typing"),
    path("<str:token>/config/", views.config_view, name="config"),
    path("<str:token>/session/", views.session_view, name="session"),
    path("<str:token>/messages/", views.messages_view, name="messages"),
    path("<str:token>/typing/", views.typing_view, name="typing"),
    path("<str:token>/receipts/", views.receipts_view, name="receipts"),
]
