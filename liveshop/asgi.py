"""The ASGI entry point: HTTP through Django, WebSockets through Channels.

Serve with `uvicorn liveshop.asgi:application --ws websockets-sansio`.
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "liveshop.settings")

# Django must be set up before anything imports models (the WebSocket routes do).
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402

application = ProtocolTypeRouter({"http": django_asgi_app})
