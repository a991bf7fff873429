"""A notification in words, for Web Push (the pages' bell says the same in JavaScript,
liveshop/static/liveshop/js/bell.js): in the language the subscribing page had."""

from __future__ import annotations

from typing import Any

from django.utils import translation
from django.utils.translation import gettext as _


def _money(minor: int) -> str:
    return f"¥{minor / 100:.2f}"


def notification_text(notification: dict[str, Any], *, language: str) -> dict[str, str]:
    """{title, body, url} of a notification (as the API shows it), in `language`."""
    data = notification.get("data") or {}
    order = data.get("order") or {}
    with translation.override(language or "en"):
        english = not translation.get_language().startswith("zh")
        kind = notification.get("kind")
        if kind == "host.live":
            room = data["room"]
            title = (room.get("title_en") if english else "") or room["title"]
            return {
                "title": _("%(host)s is live") % {"host": data["host"]["display_name"]},
                "body": title,
                "url": f"/rooms/{room['id']}/",
            }
        if kind in ("order.paid", "order.shipped", "order.refunded"):
            body = {
                "order.paid": _("Order %(number)s is paid."),
                "order.shipped": _("Order %(number)s has shipped."),
                "order.refunded": _("%(amount)s refunded on order %(number)s."),
            }[kind] % {"number": order.get("number", ""), "amount": _money(int(order.get("amount", 0)))}
            return {"title": "liveshop", "body": body, "url": f"/orders/{order.get('id')}/"}
        if kind == "giveaway.won":
            return {
                "title": _("You won!"),
                "body": data["giveaway"]["title"],
                "url": f"/rooms/{data['room']['id']}/",
            }
        return {"title": "liveshop", "body": str(kind), "url": "/"}
