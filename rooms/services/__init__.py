"""Writes for the rooms app, one module per area; the public functions are named here too.

Callers may write `from rooms import services; services.room_start(...)` or import from
the module (`rooms.services.flash_sales`). New areas get a module of their own.
"""

from __future__ import annotations

from rooms.services.covers import room_cover_image, room_cover_set
from rooms.services.flash_sales import (
    FLASH_MAX_DURATION_S,
    FLASH_STOCK_INTERVAL_MS,
    flash_sale_end,
    flash_sale_give_back,
    flash_sale_is_on,
    flash_sale_start,
    flash_sale_stock_changed,
    flash_sale_stock_publish,
    flash_sale_take,
    flash_sales_sweep,
    room_flash_sales_end,
)
from rooms.services.gifts import (
    gift_record,
    gift_send_check,
)
from rooms.services.giveaways import (
    giveaway_cancel,
    giveaway_create,
    giveaway_draw,
    giveaway_enter,
    giveaway_fulfil_if_done,
    giveaway_winner_claim,
    giveaway_winner_forfeit,
    giveaways_enter_by_comment,
    giveaways_sweep,
)
from rooms.services.hosts import (
    host_create,
    host_follow,
    host_unfollow,
    host_verify,
)
from rooms.services.live import (
    WS_TICKET_PREFIX,
    comment_create,
    ws_ticket_issue,
    ws_ticket_redeem,
)
from rooms.services.moderation import (
    audit_record,
    banned_word_add,
    banned_word_remove,
    comment_delete,
    comment_report,
    report_resolve,
    room_ban,
    room_moderator_add,
    room_moderator_remove,
    room_mute,
    room_unban,
    room_unmute,
)
from rooms.services.rooms import (
    ROOM_EDITABLE_FIELDS,
    room_create,
    room_end,
    room_item_add,
    room_item_feature,
    room_item_get,
    room_item_offer,
    room_item_remove,
    room_start,
    room_suspend,
    room_update,
)

__all__ = [
    "FLASH_MAX_DURATION_S",
    "FLASH_STOCK_INTERVAL_MS",
    "ROOM_EDITABLE_FIELDS",
    "WS_TICKET_PREFIX",
    "audit_record",
    "banned_word_add",
    "banned_word_remove",
    "comment_create",
    "comment_delete",
    "comment_report",
    "flash_sale_end",
    "flash_sale_give_back",
    "flash_sale_is_on",
    "flash_sale_start",
    "flash_sale_stock_changed",
    "flash_sale_stock_publish",
    "flash_sale_take",
    "flash_sales_sweep",
    "gift_record",
    "gift_send_check",
    "giveaway_cancel",
    "giveaway_create",
    "giveaway_draw",
    "giveaway_enter",
    "giveaway_fulfil_if_done",
    "giveaway_winner_claim",
    "giveaway_winner_forfeit",
    "giveaways_enter_by_comment",
    "giveaways_sweep",
    "host_create",
    "host_follow",
    "host_unfollow",
    "host_verify",
    "report_resolve",
    "room_ban",
    "room_cover_image",
    "room_cover_set",
    "room_create",
    "room_end",
    "room_flash_sales_end",
    "room_item_add",
    "room_item_feature",
    "room_item_get",
    "room_item_offer",
    "room_item_remove",
    "room_moderator_add",
    "room_moderator_remove",
    "room_mute",
    "room_start",
    "room_suspend",
    "room_unban",
    "room_unmute",
    "room_update",
    "ws_ticket_issue",
    "ws_ticket_redeem",
]
