"""Giveaways on the room WebSocket (in-process ASGI, real Redis): the snapshot lists them,
a keyword comment enters its author, the start and the draw reach the sockets."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async as sync_to_async

from rooms import services
from rooms.models import GiveawayEntry
from tests.coins import close, giveaway

pytestmark = pytest.mark.django_db(transaction=True)


async def test_giveaways_live_on_the_socket(ws, live_room, viewer):
    ticket = (await sync_to_async(services.ws_ticket_issue)(user=viewer, room=live_room))[0]
    already = await sync_to_async(giveaway)(live_room, title="Tea for two", keyword="tea")
    socket = await ws(f"/ws/rooms/{live_room.pk}/?ticket={ticket}")
    snapshot = await socket.next_event()
    assert snapshot["type"] == "room.snapshot"
    [listed] = snapshot["data"]["giveaways"]
    assert (listed["id"], listed["title"], listed["status"], listed["seed"]) == (
        already.pk,
        "Tea for two",
        "open",
        None,
    )

    started = await sync_to_async(giveaway)(live_room, title="Hotpot base", keyword="Hotpot", winners=1)
    event = await socket.receive_type("giveaway.started")
    assert event["data"]["giveaway"]["id"] == started.pk
    assert event["data"]["giveaway"]["commitment"] == started.commitment

    await socket.send({"type": "comment.send", "text": "HOTPOT", "nonce": "n1"})
    await socket.receive_type("comment.ack")
    entry = await sync_to_async(GiveawayEntry.objects.get)(giveaway=started)
    assert (entry.user_id, entry.via) == (viewer.pk, "comment")

    await sync_to_async(close)(started)
    assert await sync_to_async(services.giveaway_draw)(giveaway_id=started.pk)
    drawn = await socket.receive_type("giveaway.drawn")
    await sync_to_async(started.refresh_from_db)()
    assert drawn["data"] == {
        "giveaway": started.pk,
        "winners": [{"id": viewer.pk, "display_name": "Viewer Li"}],
        "seed": started.seed,
    }
