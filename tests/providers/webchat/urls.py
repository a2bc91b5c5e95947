"""The project's URLs with the widget endpoints mounted at /webchat/ when alexia/urls.py does not yet
include them (they are included there as path("webchat/", include("inbox.webchat.urls")))."""

from django.urls import include, path

from alexia.urls import urlpatterns as project_urlpatterns

_wired = any(getattr(p, "namespace", None) == "webchat" for p in project_urlpatterns)
urlpatterns = (
    project_urlpatterns if _wired else [path("webchat/", include("inbox.webchat.urls")), *project_urlpatterns]
)
