from django.urls import path

from . import views

urlpatterns = [
    path("<slug:kind>/<str:token>/", views.webhook_view, name="webhook"),
    path("<slug:kind>/<str:token>/tracking/", views.webhook_view, {"endpoint": "tracking"}, name="webhook-tracking"),
]
