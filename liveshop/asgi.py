"""The ASGI entry point: HTTP through Django, WebSockets through Channels.

Serve with `uvicorn liveshop.asgi:application --ws websockets-sansio
--ws-per-message-deflate false` (docs/PERFORMANCE.md says why deflate stays off).
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "liveshop.settings")

# Django must be set up before anything imports models (the WebSocket routes do).
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from rooms.routing import websocket_urlpatterns  # noqa: E402

# The room socket does its own authentication (a single-use ticket or the session
# cookie) and origin check, so no Channels middleware wraps it: the hub then writes to
# the ASGI server's `send` with nothing in between.
application = ProtocolTypeRouter({"http": django_asgi_app, "websocket": URLRouter(websocket_urlpatterns)})
