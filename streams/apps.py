from __future__ import annotations

from django.apps import AppConfig


class StreamsConfig(AppConfig):
    name = "streams"

    def ready(self) -> None:
        # rooms never imports streams: streams plugs into rooms' explicit hooks.
        from catalog import hooks as catalog_hooks
        from rooms import hooks
        from streams import replays, selectors, services

        # The replay looks at the stream before the publisher is dropped.
        hooks.room_closed_hooks.append(replays.replay_on_room_closed)
        hooks.room_closed_hooks.append(services.stream_room_closed)
        hooks.item_featured_hooks.append(replays.featured_moment_record)
        hooks.room_sells_after_end_provider = selectors.replay_sells
        catalog_hooks.product_clips_provider = selectors.product_clips
        hooks.room_video_provider = selectors.room_video
        hooks.room_ingest_provider = selectors.room_ingest
