"""Sending gifts: coins move exactly (wallet, host, platform), `gift.sent`, the leaderboard,
idempotent retries, every refusal writing nothing."""

from __future__ import annotations

from typing import Any

import pytest
from django.db.models import Sum
from rest_framework.test import APIClient

from liveshop.models import IdempotencyRecord
from orders.models import LedgerAccount, LedgerEntry, LedgerTransaction
from orders.services.ledger import ledger_balance
from orders.services.wallet import earned_coins, wallet_coins
from rooms.models import Ban, Gift, GiftSend, Room
from tests import factories
from tests.coins import assert_ledger_balanced, gift, grant
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db


def send(client: APIClient, room: Room, body: Any, key: str | None = None) -> Any:
    headers: dict[str, Any] = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post(f"/api/v1/rooms/{room.pk}/gifts/", body, format="json", **headers)


def assert_nothing_moved() -> None:
    assert not GiftSend.objects.exists()
    assert not LedgerTransaction.objects.filter(kind="gift").exists()
    assert_ledger_balanced()


# --- The catalog --------------------------------------------------------------------------------


def test_the_catalog_is_seeded_with_chongqing_gifts(client_for):
    response = client_for(None).get("/api/v1/gifts/")
    assert response.status_code == 200
    catalog = response.json()
    assert isinstance(catalog, list)  # a plain array (CONTRACT.md)
    names = [g["name"] for g in catalog]
    assert names[0] == "Shizhu red chili"
    assert {"Chongqing hotpot", "Bowl of Chongqing xiaomian", "Yangtze River cable car"} <= set(names)
    hotpot = next(g for g in catalog if g["name"] == "Chongqing hotpot")
    assert hotpot == {
        "id": hotpot["id"],
        "name": "Chongqing hotpot",
        "name_zh": "重庆火锅",
        "coins": 99,
        "image_url": hotpot["image_url"],
    }
    assert hotpot["image_url"] == "/static/gifts/hotpot.svg"
    assert [g["coins"] for g in catalog] == sorted(g["coins"] for g in catalog)


def test_retired_gifts_leave_the_catalog(client_for):
    Gift.objects.filter(name="Shizhu red chili").update(is_active=False)
    assert "Shizhu red chili" not in [g["name"] for g in client_for(None).get("/api/v1/gifts/").json()]


def test_every_gift_image_exists():
    from django.contrib.staticfiles import finders

    for item in Gift.objects.all():
        assert finders.find(item.image_url), item.image_url


# --- Sending ------------------------------------------------------------------------------------


def test_a_gift_moves_coins_to_the_host_and_the_platform_and_tells_the_room(
    client_for, viewer, host, live_room, committed, published
):
    grant(viewer, 250)
    hotpot = gift()
    with committed():
        response = send(client_for(viewer), live_room, {"gift": hotpot.pk, "quantity": 2}, key="g1")

    assert response.status_code == 201, response.content
    sent = GiftSend.objects.get()
    assert response.json() == {"id": sent.pk, "gift": hotpot.pk, "quantity": 2, "coins": 198, "balance": 52}
    # 198 coins: the host earns 70% rounded down (138), the platform keeps 60.
    assert (sent.coins, sent.host_coins, sent.recipient_id) == (198, 138, host.pk)
    assert wallet_coins(user_id=viewer.pk) == 52
    assert earned_coins(user_id=host.pk) == 138
    assert ledger_balance(account=LedgerAccount.objects.get(kind="coin_fees")) == -60
    txn = LedgerTransaction.objects.get(kind="gift")
    assert txn.key == f"gift:{sent.pk}"
    assert sorted(LedgerEntry.objects.filter(transaction=txn).values_list("amount", flat=True)) == [-138, -60, 198]
    assert_ledger_balanced()
    assert published == [
        (
            live_room.pk,
            "gift.sent",
            {
                "id": sent.pk,
                "user": {"id": viewer.pk, "display_name": "Viewer Li"},
                "gift": {
                    "id": hotpot.pk,
                    "name": "Chongqing hotpot",
                    "name_zh": "重庆火锅",
                    "image_url": "/static/gifts/hotpot.svg",
                },
                "quantity": 2,
                "coins": 198,
            },
        )
    ]
    host_wallet = client_for(host).get("/api/v1/wallet/").json()
    assert (host_wallet["coins"], host_wallet["earned_coins"]) == (0, 138)


def test_the_platform_share_is_a_setting(client_for, viewer, host, live_room, settings):
    settings.GIFT_PLATFORM_SHARE_BPS = 5000
    grant(viewer, 99)
    assert send(client_for(viewer), live_room, {"gift": gift().pk, "quantity": 1}).status_code == 201
    assert earned_coins(user_id=host.pk) == 49  # 49.5 rounded down: the platform gets 50


def test_quantity_defaults_to_one(client_for, viewer, live_room):
    grant(viewer, 100)
    response = send(client_for(viewer), live_room, {"gift": gift().pk})
    assert (response.status_code, response.json()["quantity"], response.json()["balance"]) == (201, 1, 1)


def test_not_enough_coins_is_402_and_moves_nothing(client_for, viewer, live_room, committed, published):
    grant(viewer, 98)
    with committed():
        response = send(client_for(viewer), live_room, {"gift": gift().pk, "quantity": 1}, key="k")
    assert_error(response, 402, "insufficient_coins")
    assert wallet_coins(user_id=viewer.pk) == 98
    assert_nothing_moved()
    assert published == []
    assert not IdempotencyRecord.objects.exists()  # a refusal: the key may be used again
    # Without any wallet at all.
    assert_error(
        send(client_for(factories.UserFactory.create()), live_room, {"gift": gift().pk}), 402, "insufficient_coins"
    )


def test_the_conditional_debit_refuses_even_past_a_stale_check(client_for, viewer, live_room, monkeypatch):
    # The cheap check reads the balance outside the transaction; the debit is the truth.
    grant(viewer, 10)
    monkeypatch.setattr("orders.services.gifts.wallet_coins", lambda user_id: 10_000)
    assert_error(send(client_for(viewer), live_room, {"gift": gift().pk}), 402, "insufficient_coins")
    assert wallet_coins(user_id=viewer.pk) == 10
    assert_nothing_moved()


@pytest.mark.parametrize("status", [Room.Status.SCHEDULED, Room.Status.ENDED])
def test_gifts_only_while_live(client_for, viewer, room, status):
    Room.objects.filter(pk=room.pk).update(status=status)
    grant(viewer, 500)
    assert_error(send(client_for(viewer), room, {"gift": gift().pk}), 409, "room_not_live")
    assert wallet_coins(user_id=viewer.pk) == 500
    assert_nothing_moved()


def test_authorization_matrix(client_for, persona, live_room, viewer, host, other_host, staff):
    expected = {"anonymous": 401, "viewer": 201, "host": 403, "other_host": 201, "staff": 201}
    for name, status in expected.items():
        user = persona(name)
        if user is not None:
            grant(user, 99)
        response = send(client_for(user), live_room, {"gift": gift().pk})
        assert response.status_code == status, (name, response.content)
    assert GiftSend.objects.count() == 3
    assert_ledger_balanced()


def test_a_banned_viewer_sends_nothing_and_a_suspended_room_is_not_found(client_for, viewer, live_room, staff):
    grant(viewer, 500)
    Ban.objects.create(room=live_room, user=viewer)
    assert_error(send(client_for(viewer), live_room, {"gift": gift().pk}), 403, "banned")
    Room.objects.filter(pk=live_room.pk).update(status=Room.Status.SUSPENDED)
    assert_error(send(client_for(viewer), live_room, {"gift": gift().pk}), 404, "not_found")
    assert_error(send(client_for(viewer), Room(pk=999_999), {"gift": gift().pk}), 404, "not_found")
    assert_nothing_moved()


BAD_BODIES = {
    "empty": lambda g, r: {},
    "no gift": lambda g, r: {"gift": None, "quantity": 1},
    "gift by name": lambda g, r: {"gift": "hotpot"},
    "unknown gift": lambda g, r: {"gift": 999_999},
    "retired gift": lambda g, r: {"gift": r, "quantity": 1},
    "zero": lambda g, r: {"gift": g, "quantity": 0},
    "negative": lambda g, r: {"gift": g, "quantity": -1},
    "too many": lambda g, r: {"gift": g, "quantity": 1000},
    "fraction": lambda g, r: {"gift": g, "quantity": 1.5},
    "words": lambda g, r: {"gift": g, "quantity": "two"},
    "not an object": lambda g, r: [g],
}


@pytest.mark.parametrize("case", sorted(BAD_BODIES))
def test_bad_gift_requests_are_400_and_move_nothing(client_for, viewer, live_room, case):
    grant(viewer, 100_000)
    retired = Gift.objects.create(name="Old gift", coins=1, image_url="gifts/chili.svg", is_active=False)
    response = send(client_for(viewer), live_room, BAD_BODIES[case](gift().pk, retired.pk), key="bad")
    assert_error(response, 400, "invalid")
    assert wallet_coins(user_id=viewer.pk) == 100_000
    assert_nothing_moved()
    assert not IdempotencyRecord.objects.exists()


# --- Idempotency ----------------------------------------------------------------------------------


def test_a_retry_with_the_same_key_deducts_once(client_for, viewer, live_room, committed, published):
    grant(viewer, 300)
    body = {"gift": gift().pk, "quantity": 1}
    with committed():
        first = send(client_for(viewer), live_room, body, key="tap-1")
        again = send(client_for(viewer), live_room, body, key="tap-1")
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    assert wallet_coins(user_id=viewer.pk) == 201
    assert GiftSend.objects.count() == 1
    assert len(published) == 1
    assert_error(
        send(client_for(viewer), live_room, {**body, "quantity": 2}, key="tap-1"), 422, "idempotency_key_reused"
    )
    # Another key is another gift.
    assert send(client_for(viewer), live_room, body, key="tap-2").json()["balance"] == 102


def test_a_retry_after_a_crash_answers_with_the_gift_already_sent(client_for, viewer, live_room):
    grant(viewer, 300)
    body = {"gift": gift().pk, "quantity": 1}
    assert send(client_for(viewer), live_room, body, key="k").status_code == 201
    # As if the process died after the commit, before storing the answer: the lease ran out.
    IdempotencyRecord.objects.update(response_status=None, response_body=None, locked_until=None)
    again = send(client_for(viewer), live_room, body, key="k")
    assert again.status_code == 201
    assert again.json()["id"] == GiftSend.objects.get().pk
    assert wallet_coins(user_id=viewer.pk) == 201


# --- The leaderboard -------------------------------------------------------------------------------


def test_the_leaderboard_sums_the_gift_records(client_for, live_room, viewer, other_host):
    fans = [factories.UserFactory.create(display_name=f"Fan {i}") for i in range(3)]
    for fan in [*fans, viewer]:
        grant(fan, 10_000)
    chili, noodles, hotpot = gift("Shizhu red chili"), gift("Bowl of Chongqing xiaomian"), gift()
    plan = [
        (fans[0], noodles, 3),
        (fans[1], hotpot, 1),
        (fans[0], chili, 90),
        (fans[2], chili, 5),
        (viewer, chili, 105),
    ]
    for fan, item, quantity in plan:
        assert send(client_for(fan), live_room, {"gift": item.pk, "quantity": quantity}).status_code == 201
    # Another room's gifts do not count here.
    other_room = factories.RoomFactory.create(host=other_host.host, status=Room.Status.LIVE)
    send(client_for(fans[2]), other_room, {"gift": hotpot.pk, "quantity": 5})

    board = client_for(None).get(f"/api/v1/rooms/{live_room.pk}/gifts/leaderboard/").json()
    # Fan 0: 15 + 90 = 105, tied with the viewer's 105 but reached first.
    assert board == [
        {"user": {"id": fans[0].pk, "display_name": "Fan 0"}, "coins": 105},
        {"user": {"id": viewer.pk, "display_name": "Viewer Li"}, "coins": 105},
        {"user": {"id": fans[1].pk, "display_name": "Fan 1"}, "coins": 99},
        {"user": {"id": fans[2].pk, "display_name": "Fan 2"}, "coins": 5},
    ]
    # Exact against the ledger: what the room's gifts took from wallets.
    keys = [f"gift:{pk}" for pk in GiftSend.objects.filter(room=live_room).values_list("pk", flat=True)]
    spent = LedgerEntry.objects.filter(transaction__key__in=keys, account__kind="wallet").aggregate(total=Sum("amount"))
    assert sum(row["coins"] for row in board) == spent["total"] == 314


def test_the_leaderboard_shows_the_top_50(client_for, live_room):
    chili = gift("Shizhu red chili")
    for i in range(52):
        fan = factories.UserFactory.create()
        GiftSend.objects.create(
            room=live_room, sender=fan, recipient=live_room.host.user, gift=chili, quantity=1, coins=i + 1, host_coins=0
        )
    board = client_for(None).get(f"/api/v1/rooms/{live_room.pk}/gifts/leaderboard/").json()
    assert [row["coins"] for row in board] == list(range(52, 2, -1))


def test_the_leaderboard_of_an_unknown_or_hidden_room_is_404(client_for, room, viewer, staff):
    assert_error(client_for(None).get("/api/v1/rooms/999999/gifts/leaderboard/"), 404, "not_found")
    Room.objects.filter(pk=room.pk).update(status=Room.Status.SUSPENDED)
    assert_error(client_for(viewer).get(f"/api/v1/rooms/{room.pk}/gifts/leaderboard/"), 404, "not_found")
    assert client_for(staff).get(f"/api/v1/rooms/{room.pk}/gifts/leaderboard/").json() == []


def test_the_leaderboard_is_computed_at_most_once_a_second_per_room(client_for, live_room, viewer):
    import time

    from rooms.selectors_gifts import LEADERBOARD_CACHE_S

    grant(viewer, 1000)
    url = f"/api/v1/rooms/{live_room.pk}/gifts/leaderboard/"
    assert client_for(None).get(url).json() == []
    assert send(client_for(viewer), live_room, {"gift": gift().pk}).status_code == 201
    assert client_for(None).get(url).json() == []  # the same second's answer
    time.sleep(LEADERBOARD_CACHE_S + 0.1)
    assert client_for(None).get(url).json() == [{"user": {"id": viewer.pk, "display_name": "Viewer Li"}, "coins": 99}]
