from __future__ import annotations

from django.apps import AppConfig


class StreamsConfig(AppConfig):
    name = "streams"

    def ready(self) -> None:
        # rooms never imports streams: streams plugs into rooms' explicit hooks.
        from rooms import hooks
        from streams import selectors, services

        hooks.room_closed_hooks.append(services.stream_room_closed)
        hooks.room_video_provider = selectors.room_video
        hooks.room_ingest_provider = selectors.room_ingest
