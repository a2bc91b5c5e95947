"""The project's URLs plus billing's, until alexia/urls.py mounts them (then the first match wins)."""

from django.urls import include, path

from alexia.urls import urlpatterns as project_urlpatterns

urlpatterns = [
    path("billing/", include("billing.urls")),
    path("api/v1/", include("billing.api_urls")),
    *project_urlpatterns,
]
