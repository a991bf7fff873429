from __future__ import annotations

from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"

    def ready(self) -> None:
        # rooms never imports notifications: it plugs into rooms' explicit hooks.
        from notifications import triggers
        from rooms import hooks

        hooks.room_started_hooks.append(triggers.room_started)
        hooks.giveaway_drawn_hooks.append(triggers.giveaway_drawn)
