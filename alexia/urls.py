from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView

from alexia import health
from channels_app import relay
from inbox import sandbox_views
from inbox.attachment_links import attachment_signed_view

urlpatterns = [
    path("health/", health.health_view, name="health"),
    path("admin/", admin.site.urls),
    path("login/", auth_views.LoginView.as_view(template_name="auth/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "account/password/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(
            template_name="auth/password_set.html", success_url="/account/password/done/"
        ),
        name="password-set",
    ),
    path(
        "account/password/done/",
        auth_views.PasswordResetCompleteView.as_view(template_name="auth/password_set_done.html"),
        name="password-set-done",
    ),
    path("org/", include("organizations.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include("inbox.api.urls")),
    path("api/v1/", include("billing.api_urls")),
    path("billing/", include("billing.urls")),
    path("webhooks/", include("inbox.webhooks.urls")),
    path("internal/live/", relay.relay_view, name="live-relay"),
    path("sandbox/", sandbox_views.sandbox_page, name="sandbox"),
    path("sandbox/send/", sandbox_views.sandbox_send, name="sandbox-send"),
    path("sandbox/messages/<int:message_id>/ack/", sandbox_views.sandbox_ack, name="sandbox-ack"),
    path("webchat/", include("inbox.webchat.urls")),
    path("files/<str:token>/", attachment_signed_view, name="attachment-signed"),
    path("", include("inbox.urls")),
]

if settings.DEBUG:
    from django.conf.urls.static import static

    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
