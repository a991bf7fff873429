"""Claiming a giveaway's prize: a zero-total paid order that ships the held unit.

It lives in orders because it creates an order (orders may import rooms, not the other
way round); the giveaway's side (the winner's compare-and-set, fulfilment) is a rooms
service called inside the same transaction. The unit was held since the giveaway
started, so the order takes no stock: it becomes that unit's order, for the host's
shop to ship like any other. A PrizeClaim row per winner (unique) ties the two, which
is what makes a second claim return the first order.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from liveshop.errors import Conflict, PermissionDenied
from liveshop.models import User
from orders.models import Order, OrderItem, PrizeClaim
from orders.services.orders import order_number_new
from rooms import services as room_services
from rooms.models import Giveaway, GiveawayWinner


def giveaway_prize_claim(*, giveaway: Giveaway, user: User, shipping: dict[str, str]) -> tuple[Order, bool]:
    """The winner's prize order, created on the first claim. Returns (order, created).

    Raises Conflict (not drawn yet, cancelled, no prize to ship, or the claim window
    closed) or PermissionDenied (not a winner).
    """
    giveaway = Giveaway.objects.select_related("prize_sku__product", "room").get(pk=giveaway.pk)
    if not giveaway.is_drawn:
        if giveaway.status == Giveaway.Status.CANCELLED:
            raise Conflict("This giveaway was cancelled.")
        raise Conflict("This giveaway has not been drawn yet.")
    winner = GiveawayWinner.objects.filter(giveaway=giveaway, user=user).first()
    if winner is None:
        raise PermissionDenied("Only a winner may claim the prize.")
    sku = giveaway.prize_sku
    if sku is None:
        raise Conflict("This giveaway has no prize to ship.")
    existing = PrizeClaim.objects.filter(winner=winner).select_related("order").first()
    if existing is not None:
        return existing.order, False

    now = timezone.now()
    with transaction.atomic():
        if not room_services.giveaway_winner_claim(winner=winner):
            # Claimed by a concurrent request (the row lock made this one wait for its
            # commit), or forfeited: the window has closed.
            existing = PrizeClaim.objects.filter(winner=winner).select_related("order").first()
            if existing is not None:
                return existing.order, False
            raise Conflict("The claim window for this prize has closed.")
        title = f"{sku.product.title} / {sku.name}"
        order = Order.objects.create(
            number=order_number_new(),
            buyer=user,
            shop_id=sku.product.shop_id,
            room=giveaway.room,
            status=Order.Status.PAID,
            subtotal=0,
            total=0,
            currency=sku.currency,
            shipping=shipping,
            expires_at=now,
            paid_at=now,
        )
        OrderItem.objects.create(
            order=order,
            sku=sku,
            title=f"Giveaway prize: {title}"[:250],
            quantity=1,
            unit_price=0,
            line_total=0,
        )
        PrizeClaim.objects.create(winner=winner, order=order)
        room_services.giveaway_fulfil_if_done(giveaway_id=giveaway.pk)
    return order, True
