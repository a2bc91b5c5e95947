from django.urls import path

from .consumers import InboxConsumer
from .widget_consumer import WidgetConsumer

websocket_urlpatterns = [path("ws/inbox/", InboxConsumer.as_asgi())]
# Visitors connect from customers' sites: WidgetConsumer checks Origin against the channel's allowed_origins
# itself, so this route is not behind AllowedHostsOriginValidator.
widget_websocket_urlpatterns = [path("ws/widget/<str:token>/", WidgetConsumer.as_asgi())]
