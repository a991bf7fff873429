"""Money out over REST: who sees whose money, bad input, delivery, netting before a
payout is sent, cash-outs, and the admin's payout actions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from orders.models import Order
from orders.services.refunds import refund_apply_result, refund_request
from payouts.models import Payout
from payouts.services import payouts
from payouts.services.payees import Payee
from rooms.models import RoomModerator
from tests import factories
from tests.coins import assert_ledger_balanced
from tests.helpers import assert_error
from tests.payouts.money import paid_order, released_order, ship

pytestmark = pytest.mark.django_db

PERSONAS = ("anonymous", "viewer", "host", "other_host", "moderator", "staff")


@pytest.fixture
def moderator(live_room):
    user = factories.UserFactory.create(username="moderator")
    RoomModerator.objects.create(room=live_room, user=user)
    return user


def _persona(request, name):
    return None if name == "anonymous" else request.getfixturevalue(name)


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/shops/{shop}/balance/",
        "/api/v1/shops/{shop}/statement/?from=2026-01-01&to=2026-01-31",
        "/api/v1/shops/{shop}/payout-account/",
        "/api/v1/hosts/{host}/balance/",
        "/api/v1/hosts/{host}/statement/?from=2026-01-01&to=2026-01-31",
        "/api/v1/hosts/{host}/payout-account/",
    ],
)
def test_only_the_payee_and_staff_see_its_money(
    request, client_for, shop, host_profile, live_room, moderator, path, persona
):
    user = _persona(request, persona)
    response = client_for(user).get(path.format(shop=shop.pk, host=host_profile.pk))
    expected = {"anonymous": 401, "host": 200, "staff": 200}.get(persona, 403)
    assert response.status_code == expected, response.content


def test_money_of_a_shop_or_host_that_does_not_exist_is_404(client_for, staff):
    assert_error(client_for(staff).get("/api/v1/shops/999999/balance/"), 404, "not_found")
    assert_error(
        client_for(staff).get("/api/v1/hosts/999999/statement/?from=2026-01-01&to=2026-01-02"), 404, "not_found"
    )


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?from=2026-01-01",
        "?from=2026-02-01&to=2026-01-01",
        "?from=2026-13-01&to=2026-12-31",
        "?from=2024-01-01&to=2026-01-31",
        "?from=2026-01-01&to=2026-01-31&format=xml",
    ],
)
def test_a_bad_statement_period_is_400(client_for, host, shop, query):
    response = client_for(host).get(f"/api/v1/shops/{shop.pk}/statement/{query}")
    assert_error(response, 400, "invalid")
    assert response["Content-Type"].startswith("application/json")


def test_payouts_list_shows_a_payee_its_own_and_staff_all(client_for, host, shop, other_host, staff, viewer):
    today = timezone.localdate()
    mine = Payout.objects.create(
        shop=shop, amount=100, built_amount=100, currency="cny", period_start=today, period_end=today
    )
    theirs = Payout.objects.create(
        user=other_host, amount=200, built_amount=200, currency="cny", period_start=today, period_end=today
    )
    ids = lambda user: {row["id"] for row in client_for(user).get("/api/v1/payouts/").json()["results"]}  # noqa: E731
    assert ids(host) == {mine.pk}
    assert ids(other_host) == {theirs.pk}
    assert ids(viewer) == set()
    assert ids(staff) == {mine.pk, theirs.pk}
    row = client_for(other_host).get("/api/v1/payouts/").json()["results"][0]
    assert row["payee"] == {"kind": "host", "id": other_host.host.pk, "name": "Cadre Zhou"}
    assert set(row) >= {"id", "payee", "amount", "currency", "status", "period_start", "period_end"}


def test_approving_twice_is_a_conflict(client_for, staff, shop):
    today = timezone.localdate()
    payout = Payout.objects.create(
        shop=shop, amount=100, built_amount=100, currency="cny", period_start=today, period_end=today
    )
    assert client_for(staff).post(f"/api/v1/payouts/{payout.pk}/approve/").status_code == 200
    assert_error(client_for(staff).post(f"/api/v1/payouts/{payout.pk}/approve/"), 409, "conflict")
    assert_error(client_for(staff).post("/api/v1/payouts/999999/approve/"), 404, "not_found")


def test_delivery_is_for_a_shipped_order_once(client_for, buyer, host, shelf_item, committed):
    order = paid_order(client_for(buyer), shelf_item, 1, committed)
    assert_error(client_for(buyer).post(f"/api/v1/orders/{order.pk}/deliver/"), 409, "conflict")
    ship(client_for(host), order)
    assert_error(client_for(host).post(f"/api/v1/orders/{order.pk}/deliver/"), 403, "permission_denied")
    answer = client_for(buyer).post(f"/api/v1/orders/{order.pk}/deliver/")
    assert answer.json()["status"] == "delivered"
    assert answer.json()["delivered_at"]
    assert_error(client_for(buyer).post(f"/api/v1/orders/{order.pk}/deliver/"), 409, "conflict")


def test_a_refund_between_build_and_send_is_netted_before_the_money_leaves(
    client_for, buyer, host, shop, shelf_item, staff, committed
):
    farmer = Payee(shop_id=shop.pk)
    order = released_order(client_for(buyer), client_for(host), shelf_item, 2, committed)
    (payout,) = payouts.payouts_build(today=timezone.localdate())
    refund = refund_request(order=order, reason="dented", requested_by=host, amount=2000)
    refund_apply_result(refund_id=refund.pk, stripe_refund_id="re_between", status="succeeded")
    owed_back = 2000 - 2000 * order.platform_fee // order.total

    with committed():
        payouts.payout_approve(payout_id=payout.pk, by=staff)
    assert payouts.bank_mark_sent(payout_id=payout.pk)

    payout.refresh_from_db()
    assert (payout.built_amount - payout.amount, payout.status) == (owed_back, "sent")
    assert client_for(host).get(f"/api/v1/shops/{shop.pk}/balance/").json()["available"] == 0
    assert farmer.payable().pk
    lines = client_for(host).get(
        f"/api/v1/shops/{shop.pk}/statement/?from={timezone.localdate()}&to={timezone.localdate()}"
    )
    assert [line["amount"] for line in lines.json()["lines"] if line["kind"] == "payout_netted"] == [owed_back]
    assert_ledger_balanced()


def test_a_refund_of_everything_before_sending_sends_nothing(client_for, buyer, host, shelf_item, staff, committed):
    order = released_order(client_for(buyer), client_for(host), shelf_item, 1, committed)
    (payout,) = payouts.payouts_build(today=timezone.localdate())
    refund = refund_request(order=order, reason="lost", requested_by=host)
    refund_apply_result(refund_id=refund.pk, stripe_refund_id="re_all", status="succeeded")
    with committed():
        payouts.payout_approve(payout_id=payout.pk, by=staff)
    payout.refresh_from_db()
    assert (payout.amount, payout.status, payout.sent_at) == (0, "paid", None)
    assert_ledger_balanced()


def test_an_order_with_a_pending_refund_waits_to_be_released(client_for, buyer, host, shelf_item, committed):
    from payouts.services.balances import order_release

    order = paid_order(client_for(buyer), shelf_item, 1, committed)
    ship(client_for(host), order)
    Order.objects.filter(pk=order.pk).update(status="delivered", delivered_at=timezone.now() - timedelta(days=30))
    refund = refund_request(order=order, reason="dented", requested_by=host, amount=100)
    assert order_release(order_id=order.pk) is False
    refund_apply_result(refund_id=refund.pk, stripe_refund_id="re_wait", status="succeeded")
    assert order_release(order_id=order.pk) is True
    assert order_release(order_id=order.pk) is False  # once


@pytest.mark.parametrize(
    ("coins", "status", "code"),
    [
        (0, 400, "invalid"),
        (99, 400, "invalid"),
        ("many", 400, "invalid"),
        (10**12, 400, "invalid"),
        (100, 402, "insufficient_coins"),
    ],
)
def test_bad_cash_outs(client_for, other_host, coins, status, code):
    response = client_for(other_host).post("/api/v1/wallet/cash-outs/", {"coins": coins}, format="json")
    assert_error(response, status, code)


def test_a_cash_out_is_idempotent_by_key(client_for, other_host, viewer, live_room, settings):
    from rooms.models import Room
    from tests.coins import gift, grant

    room = factories.RoomFactory.create(host=other_host.host, status=Room.Status.LIVE)
    grant(viewer, 1000)
    client_for(viewer).post(f"/api/v1/rooms/{room.pk}/gifts/", {"gift": gift().pk, "quantity": 3}, format="json")
    cadre = client_for(other_host)
    earned = cadre.get("/api/v1/wallet/").json()["earned_coins"]
    first = cadre.post("/api/v1/wallet/cash-outs/", {"coins": 150}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    again = cadre.post("/api/v1/wallet/cash-outs/", {"coins": 150}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert cadre.get("/api/v1/wallet/").json()["earned_coins"] == earned - 150
    assert (
        cadre.get(f"/api/v1/hosts/{other_host.host.pk}/balance/").json()["available"] == 150 * settings.COIN_CASHOUT_FEN
    )


def test_bad_bank_details_are_400_and_change_nothing(client_for, host, shop):
    response = client_for(host).post(
        f"/api/v1/shops/{shop.pk}/payout-account/", {"bank_account_number": "=HYPERLINK(1)"}, format="json"
    )
    assert_error(response, 400, "invalid")
    assert client_for(host).get(f"/api/v1/shops/{shop.pk}/payout-account/").json()["bank_account_number"] == ""


def test_staff_approve_and_export_bank_payouts_in_the_admin(client, shop, committed):
    staff = factories.UserFactory.create(username="admin", is_staff=True, is_superuser=True)
    today = timezone.localdate()
    payout = Payout.objects.create(
        shop=shop, amount=12345, built_amount=12345, currency="cny", period_start=today, period_end=today
    )
    client.force_login(staff)
    with committed():
        client.post("/admin/payouts/payout/", {"action": "approve", "_selected_action": [payout.pk]})
    payout.refresh_from_db()
    assert (payout.status, payout.method, payout.approved_by_id) == ("approved", "bank", staff.pk)
    answer = client.post("/admin/payouts/payout/", {"action": "export_for_bank", "_selected_action": [payout.pk]})
    assert answer["Content-Type"].startswith("text/csv")
    assert f"{payout.pk},Wulong Hills Farm,,,,123.45,CNY" in answer.content.decode("utf-8-sig")
    assert client.get("/admin/payouts/reconciliation/").status_code == 200
