"""The ASGI entry point: HTTP through Django, WebSockets through Channels.

Serve with `uvicorn liveshop.asgi:application --ws websockets-sansio
--ws-per-message-deflate false --ws-max-size 65536` (docs/PERFORMANCE.md says why
deflate stays off; client frames are small JSON, see docs/reliability/limits.md).
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "liveshop.settings")

# Django must be set up before anything imports models (the WebSocket routes do).
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.urls import path  # noqa: E402

from envelopes.intake import GrabIntake  # noqa: E402
from liveshop.images import UPLOAD_PATHS  # noqa: E402
from liveshop.wsgi_threads import WsgiInThreads  # noqa: E402
from notifications.consumers import UserConsumer  # noqa: E402
from orders.intake import OrderIntake  # noqa: E402
from rooms.routing import websocket_urlpatterns  # noqa: E402

# HTTP goes through Django's WSGI handler on a thread pool (one hop per request instead
# of one per sync middleware: ~5x the requests per process, see liveshop/wsgi_threads.py),
# behind the intakes that answer certain flash-sale and red-envelope refusals from Redis
# alone (orders/intake.py, envelopes/intake.py).
http_application = GrabIntake(
    OrderIntake(
        WsgiInThreads(
            get_wsgi_application(),
            threads=settings.HTTP_THREADS,
            max_body=settings.DATA_UPLOAD_MAX_MEMORY_SIZE,
            # Image uploads: the image's limit plus room for the multipart envelope.
            upload_paths=UPLOAD_PATHS,
            upload_max_body=settings.IMAGE_UPLOAD_MAX_BYTES + 64 * 1024,
        )
    )
)

# The room socket does its own authentication (a single-use ticket or the session
# cookie) and origin check, so no Channels middleware wraps it: the hub then writes to
# the ASGI server's `send` with nothing in between.
# The user's own socket (notifications) does the same.
sockets = [path("ws/me/", UserConsumer.as_asgi()), *websocket_urlpatterns]
application = ProtocolTypeRouter({"http": http_application, "websocket": URLRouter(sockets)})
