"""Gifts in a room: who may send one, the record of a send, and its `gift.sent` event.

The coins move in orders (orders/services/gifts.py: a wallet is money). It asks
`gift_send_check` first, then calls `gift_record` inside the transaction that posts the
coins, so the row here, its event and the ledger entries commit or vanish together.
"""

from __future__ import annotations

from typing import Any

from liveshop.errors import Banned, PermissionDenied, RoomNotLive
from liveshop.models import User
from rooms import selectors, selectors_gifts
from rooms.broadcast import room_event_on_commit
from rooms.models import Gift, GiftSend, Room


def gift_send_check(*, room: Room, sender: User) -> Room:
    """The room, fresh, if `sender` may send it a gift now.

    Raises RoomNotLive (409), PermissionDenied (the host in its own room: coins would
    only turn from bought into earned) or Banned.
    """
    room = Room.objects.select_related("host").get(pk=room.pk)
    if room.status != Room.Status.LIVE:
        raise RoomNotLive("Gifts are sent while the room is live.")
    if room.host.user_id == sender.pk:
        raise PermissionDenied("A host does not send gifts in its own room.")
    if selectors.is_banned(room_id=room.pk, user_id=sender.pk):
        raise Banned()
    return room


def gift_sent_payload(send: GiftSend) -> dict[str, Any]:
    """`gift.sent` data: the contract's fields, plus the send's id and the gift's image."""
    return {
        "id": send.pk,
        "user": {"id": send.sender_id, "display_name": send.sender.public_name},
        "gift": {
            "id": send.gift_id,
            "name": send.gift.name,
            "name_zh": send.gift.name_zh,
            "image_url": selectors_gifts.gift_image_url(send.gift),
        },
        "quantity": send.quantity,
        "coins": send.coins,
    }


def gift_record(*, room: Room, sender: User, gift: Gift, quantity: int, coins: int, host_coins: int) -> GiftSend:
    """Record a gift whose coins the caller posts in the same transaction; `gift.sent` on commit.

    `room` comes from gift_send_check (its host loaded).
    """
    send = GiftSend.objects.create(
        room=room,
        sender=sender,
        recipient_id=room.host.user_id,
        gift=gift,
        quantity=quantity,
        coins=coins,
        host_coins=host_coins,
    )
    room_event_on_commit(room.pk, "gift.sent", gift_sent_payload(send))
    return send
