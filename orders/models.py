"""Orders, payments, refunds, Stripe's events and the double-entry ledger.

Money is an integer in minor units (fen) everywhere. PostgreSQL is the truth: an
order's units are held in the catalog (or in its flash sale) from creation until it is
cancelled or expires; it turns `paid` only from a verified Stripe event, once.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from catalog.models import Offer, Shop, Sku
from rooms.models import FlashSale, GiveawayWinner, Room, RoomItem


class Order(models.Model):
    """What one buyer bought from one shop, in one payment.

    An order holds the items of a single shop: the shop's owner ships it and answers
    for refunds, and the seller's share in the ledger has one owner. A client with a
    mixed cart places one order per shop.
    """

    # Not stored: set by order_create on the order it placed when a line is a flash sale's,
    # so that the request answers without asking Stripe (orders/services/payments.py).
    placed_in_flash_sale: bool = False

    class Status(models.TextChoices):
        PENDING_PAYMENT = "pending_payment"
        PAID = "paid"
        SHIPPED = "shipped"
        DELIVERED = "delivered"
        CANCELLED = "cancelled"
        EXPIRED = "expired"
        REFUNDED = "refunded"

    # Statuses whose units are held (or gone to the buyer); the others gave them back.
    HOLDING = (Status.PENDING_PAYMENT, Status.PAID, Status.SHIPPED, Status.DELIVERED, Status.REFUNDED)
    # Statuses a refund may start from.
    REFUNDABLE = (Status.PAID, Status.SHIPPED, Status.DELIVERED)

    number = models.CharField(max_length=32, unique=True)
    buyer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders")
    shop = models.ForeignKey(Shop, on_delete=models.PROTECT, related_name="orders")
    room = models.ForeignKey(Room, null=True, blank=True, on_delete=models.PROTECT, related_name="orders")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING_PAYMENT)
    subtotal = models.BigIntegerField()
    total = models.BigIntegerField()
    currency = models.CharField(max_length=3, default="cny")
    # {name, phone, address, district}: personal data, shown to the buyer, the seller and staff only.
    shipping = models.JSONField()
    tracking = models.CharField(max_length=100, blank=True)
    refunded_amount = models.BigIntegerField(default=0)
    # Set by settlement: the split of the payment recorded in the ledger.
    platform_fee = models.BigIntegerField(default=0)
    host_commission = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    # While its PaymentIntent waits for a slot under Stripe's rate limit (the payment is
    # "preparing"), the order does not expire, up to this time.
    payment_prepare_until = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    shipped_at = models.DateTimeField(null=True, blank=True)
    # The buyer confirmed receipt, staff did, or AUTO_DELIVER_DAYS passed since shipping.
    delivered_at = models.DateTimeField(null=True, blank=True)
    # When the seller's (and host's) share moved from pending to available, PAYOUT_HOLD_DAYS
    # after delivery (payouts/services/balances.py); later refunds come out of available.
    released_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True, help_text="When it was cancelled or expired.")

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=Q(total__gte=0) & Q(subtotal__gte=0), name="order_amounts_not_negative"),
            models.CheckConstraint(
                condition=Q(refunded_amount__gte=0) & Q(refunded_amount__lte=F("total")),
                name="order_refunded_within_total",
            ),
        ]
        indexes = [
            models.Index(fields=["buyer", "-id"]),
            models.Index(fields=["shop", "-id"]),
            # The expiry sweeper's query: pending orders past their deadline.
            models.Index(fields=["expires_at"], condition=Q(status="pending_payment"), name="order_pending_expiry"),
            # The payout sweeps: shipped orders to deliver, delivered ones to release.
            models.Index(fields=["shipped_at"], condition=Q(status="shipped"), name="order_shipped_undelivered"),
            models.Index(
                fields=["delivered_at"],
                condition=Q(released_at=None, delivered_at__isnull=False),
                name="order_delivered_unreleased",
            ),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def refundable_amount(self) -> int:
        return self.total - self.refunded_amount


class OrderItem(models.Model):
    """A line of an order, with the price the server set when the order was placed."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    sku = models.ForeignKey(Sku, on_delete=models.PROTECT, related_name="order_items")
    room_item = models.ForeignKey(RoomItem, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Set when the units came out of a flash sale rather than the sku's stock: they go
    # back to the sale (or, once it ended, to the sku) when the order expires.
    flash_sale = models.ForeignKey(
        FlashSale, null=True, blank=True, on_delete=models.PROTECT, related_name="order_items"
    )
    # The offer the line was sold under (from the room's shelf): the host's commission.
    offer = models.ForeignKey(Offer, null=True, blank=True, on_delete=models.PROTECT, related_name="order_items")
    title = models.CharField(max_length=250)
    quantity = models.PositiveIntegerField()
    unit_price = models.PositiveIntegerField()
    line_total = models.BigIntegerField()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gte=1), name="order_item_quantity_positive"),
            models.UniqueConstraint(fields=["order", "sku"], name="order_item_sku_once"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.title}"


class Payment(models.Model):
    """The Stripe PaymentIntent of an order. Created after the order's transaction commits."""

    class Status(models.TextChoices):
        REQUIRES_PAYMENT = "requires_payment"
        SUCCEEDED = "succeeded"
        FAILED = "failed"  # the last attempt failed; the buyer may try again until expiry
        CANCELED = "canceled"

    order = models.OneToOneField(Order, on_delete=models.PROTECT, related_name="payment")
    provider = models.CharField(max_length=20, default="stripe")
    payment_intent_id = models.CharField(max_length=255, unique=True)
    client_secret = models.CharField(max_length=255)
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.REQUIRES_PAYMENT)
    # What Stripe actually took (from the succeeded event), which settlement records.
    amount_received = models.BigIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    succeeded_at = models.DateTimeField(null=True, blank=True)

    # Not final yet: the payments of pending orders, and cancels still to send.
    NOT_FINAL = (Status.REQUIRES_PAYMENT, Status.FAILED)

    class Meta:
        indexes = [
            # The outbox sweeper's query (payments.order_payments_cancel_lost): a few rows,
            # however many payments there have been.
            models.Index(
                fields=["order"], condition=Q(status__in=["requires_payment", "failed"]), name="payment_not_final"
            ),
        ]

    def __str__(self) -> str:
        return self.payment_intent_id


class RefundClaim(models.Model):
    """The buyer asking for their money back (the item did not come, arrived broken...).

    One per order; the seller (or staff) answers with a refund (POST /orders/{id}/refund/),
    which marks the claim refunded when it succeeds.
    """

    class Status(models.TextChoices):
        OPEN = "open"
        REFUNDED = "refunded"

    order = models.OneToOneField(Order, on_delete=models.CASCADE, related_name="refund_claim")
    reason = models.CharField(max_length=500)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"refund claim on order {self.order_id} ({self.status})"


class Refund(models.Model):
    """Money given back on an order: asked by the seller or staff, or automatic.

    The amount is reserved against the order when the refund is created (the order's
    row lock serialises that), so two refunds racing can never give back more than was
    paid; a refund that fails frees its reservation.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    class Kind(models.TextChoices):
        REQUESTED = "requested"  # by the shop owner or staff through the API
        LATE_PAYMENT = "late_payment"  # a payment for an order that could no longer be filled
        EXTERNAL = "external"  # made outside liveshop (the Stripe dashboard), learnt from a webhook

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="refunds")
    amount = models.BigIntegerField()
    reason = models.CharField(max_length=500)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.REQUESTED)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    stripe_refund_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    failure_reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.CheckConstraint(condition=Q(amount__gte=1), name="refund_amount_positive")]

    def __str__(self) -> str:
        return f"refund {self.pk} of {self.amount} on {self.order_id}"


class StripeEvent(models.Model):
    """A verified Stripe webhook event: the outbox row of its settlement.

    Stored in the webhook's transaction (unique on Stripe's event id, so a redelivery
    adds nothing), processed by a Celery task enqueued on commit; a beat sweeper
    re-enqueues rows not processed within a minute, so a lost broker message delays
    settlement but never loses it.
    """

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    payload = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    processed_at = models.DateTimeField(null=True, blank=True)
    # What processing did: "settled", "duplicate", "deferred: ...", "ignored: ...".
    outcome = models.CharField(max_length=200, blank=True)

    class Meta:
        indexes = [models.Index(fields=["enqueued_at"], condition=Q(processed_at=None), name="stripe_event_pending")]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class LedgerAccount(models.Model):
    """An account of the double-entry ledger, in one currency.

    Entries are signed: positive debits, negative credits; every transaction sums to
    zero in each currency. `balance` is the sum of the account's entries, kept by the
    same transaction that writes them (and checked by `ledger_check`), so that a
    balance can be read, or conditionally debited, without summing the history.

    Kinds in use: the processor (money at Stripe: an asset, so it rises with payments),
    the platform's fees, what is owed to each shop (the seller's share) and to each host
    (commission on others' goods), and unallocated payments (money in for an order that
    could not be filled, until it is refunded).

    Coins are a currency of their own ("coin"), owed by the platform like the shops'
    shares, so a user's `wallet` holds a credit (negative: coins = -balance). A top-up
    records the money in (processor / coin sales, in fen) and the coins issued (coin
    issue / the wallet, in coins); a gift moves coins from the sender's wallet to the
    host's `coin_earnings` and the platform's `coin_fees`; a staff grant issues coins
    from `coin_promotions`. See orders/services/wallet.py.
    """

    class Kind(models.TextChoices):
        PROCESSOR = "processor"
        PLATFORM_FEES = "platform_fees"
        SELLER = "seller"
        HOST_COMMISSION = "host_commission"
        UNALLOCATED = "unallocated"
        COIN_SALES = "coin_sales"  # fen paid for coins (the platform's, until spent)
        COIN_ISSUE = "coin_issue"  # coins sold, in coins
        COIN_PROMOTIONS = "coin_promotions"  # coins given by staff, in coins
        WALLET = "wallet"  # a user's coins to spend
        COIN_EARNINGS = "coin_earnings"  # a host's share of the gifts received
        COIN_FEES = "coin_fees"  # the platform's share of the gifts
        RED_ENVELOPES = "red_envelopes"  # the coins of red envelopes not grabbed yet (escrow)
        # Money out (payouts/): what a shop or host may be paid now (SELLER and
        # HOST_COMMISSION hold what is still pending), payouts being paid, what went out
        # by bank transfer, and the platform's cost of buying back hosts' coins (in fen),
        # with the coins so retired (in coins).
        PAYABLE = "payable"
        PAYOUTS = "payouts"
        BANK = "bank"
        COIN_CASHOUT_COST = "coin_cashout_cost"
        COIN_CASHOUTS = "coin_cashouts"

    code = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=30, choices=Kind.choices)
    currency = models.CharField(max_length=8)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_accounts"
    )
    shop = models.ForeignKey(Shop, null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_accounts")
    # Kept only for kinds in BALANCE_KINDS: those debited conditionally, where the check
    # must not sum the history (the coin wallet of issue 5). Elsewhere it stays 0 and the
    # balance is the sum of the account's entries, computed when asked: a kept balance
    # is a row every posting updates, and a shop's or the platform's account takes part
    # in every payment of a flash sale, so that row would serialise all settlement.
    balance = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            # Belt and braces behind ledger_post's conditional update: no wallet overdrawn.
            models.CheckConstraint(condition=~Q(kind="wallet") | Q(balance__lte=0), name="ledger_wallet_not_overdrawn"),
        ]

    def __str__(self) -> str:
        return self.code

    # Kinds whose `balance` column is kept equal to the sum of their entries. A wallet
    # is debited conditionally (a gift needs the coins) and belongs to one user, so its
    # row is hot only for that user. A host's earnings are not kept: every gift in a
    # room credits them, and a kept row would serialise the room's gifts.
    #
    # A payee's PAYABLE balance is kept too: a payout takes what it holds under the row's
    # lock, so a refund racing it either comes first (and is not paid out) or after (and
    # is netted from this payout before it is sent, or from the next one).
    BALANCE_KINDS: frozenset[str] = frozenset({Kind.WALLET, Kind.PAYABLE})
    # Kinds whose kept balance may never turn positive (the user would owe coins). A
    # payee's PAYABLE may: a refund after a payout is owed back by the payee.
    NO_OVERDRAFT_KINDS: frozenset[str] = frozenset({Kind.WALLET})

    @property
    def keeps_balance(self) -> bool:
        return self.kind in self.BALANCE_KINDS


class LedgerTransaction(models.Model):
    """A balanced group of ledger entries: one business fact, recorded once.

    `key` names the fact ("order:12:payment", "refund:7"); its uniqueness is what makes
    settlement exactly-once even if two workers race past every other check.
    """

    class Kind(models.TextChoices):
        ORDER_PAYMENT = "order_payment"
        ORDER_REFUND = "order_refund"
        PAYMENT_UNALLOCATED = "payment_unallocated"
        UNALLOCATED_REFUND = "unallocated_refund"
        TOP_UP = "top_up"
        GIFT = "gift"
        COIN_GRANT = "coin_grant"
        RED_ENVELOPE_DROP = "red_envelope_drop"  # host's wallet -> escrow
        RED_ENVELOPE_GRAB = "red_envelope_grab"  # escrow -> a winner's wallet
        RED_ENVELOPE_RETURN = "red_envelope_return"  # escrow -> host's wallet, at expiry
        ORDER_RELEASE = "order_release"  # a delivered order's shares: pending -> payable
        COIN_CASHOUT = "coin_cashout"  # a host's earned coins bought back, into payable
        PAYOUT = "payout"  # payable -> payouts, when the payout is built
        PAYOUT_NETTED = "payout_netted"  # payouts -> payable: refunds since the build
        PAYOUT_SENT = "payout_sent"  # payouts -> processor (a transfer) or bank
        PAYOUT_FAILED = "payout_failed"  # the money came back: owed to the payee again

    key = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=30, choices=Kind.choices)
    order = models.ForeignKey(Order, null=True, blank=True, on_delete=models.PROTECT, related_name="ledger")
    refund = models.ForeignKey(Refund, null=True, blank=True, on_delete=models.PROTECT, related_name="ledger")
    memo = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.key


class LedgerEntry(models.Model):
    transaction = models.ForeignKey(LedgerTransaction, on_delete=models.PROTECT, related_name="entries")
    account = models.ForeignKey(LedgerAccount, on_delete=models.PROTECT, related_name="entries")
    amount = models.BigIntegerField(help_text="Signed minor units: positive debits, negative credits.")
    currency = models.CharField(max_length=8)

    class Meta:
        ordering = ["id"]
        constraints = [models.CheckConstraint(condition=~Q(amount=0), name="ledger_entry_not_zero")]

    def __str__(self) -> str:
        return f"{self.account_id} {self.amount:+d} {self.currency}"


# --- Coins and prizes --------------------------------------------------------------------------


class TopUp(models.Model):
    """Coins bought with a Stripe payment. Credited once, by settlement of its
    `payment_intent.succeeded` event (orders/services/wallet.py), never on the client's word."""

    class Status(models.TextChoices):
        PENDING = "pending"
        PAID = "paid"  # the coins are in the wallet
        CANCELED = "canceled"  # the PaymentIntent was canceled or refused

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="top_ups")
    coins = models.PositiveIntegerField()
    amount = models.BigIntegerField(help_text="Minor units: coins times COIN_PRICE_FEN.")
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    provider = models.CharField(max_length=20, default="stripe")
    # Set once the PaymentIntent exists (created after the top-up's transaction commits).
    payment_intent_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    client_secret = models.CharField(max_length=255, blank=True)
    amount_received = models.BigIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=Q(coins__gte=1) & Q(amount__gte=1), name="top_up_positive"),
        ]
        indexes = [models.Index(fields=["user", "-id"])]

    def __str__(self) -> str:
        return f"top-up {self.pk}: {self.coins} coins for {self.user_id}"


class PrizeClaim(models.Model):
    """The zero-total order that ships a giveaway's prize to one winner: one per winner,
    which is what makes a second claim return the same order."""

    winner = models.OneToOneField(GiveawayWinner, on_delete=models.PROTECT, related_name="prize_claim")
    order = models.OneToOneField(Order, on_delete=models.PROTECT, related_name="prize_claim")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"prize of winner {self.winner_id}: order {self.order_id}"


class FlaggedPayment(models.Model):
    """A payment settlement refused to apply: its amount or currency is not what the order
    or top-up asked for (a PaymentIntent changed behind our back). It never settles
    anything; the money received goes back to the payer in full, and staff see it here."""

    class RefundStatus(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    payment_intent_id = models.CharField(max_length=255, unique=True)
    order = models.ForeignKey(Order, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    top_up = models.ForeignKey(TopUp, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    expected_amount = models.BigIntegerField()
    expected_currency = models.CharField(max_length=3)
    received_amount = models.BigIntegerField()
    received_currency = models.CharField(max_length=3)
    reason = models.CharField(max_length=200)
    refund_status = models.CharField(max_length=16, choices=RefundStatus.choices, default=RefundStatus.PENDING)
    stripe_refund_id = models.CharField(max_length=255, null=True, blank=True)
    failure_reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    refunded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["refund_status", "created_at"])]

    def __str__(self) -> str:
        return f"flagged payment {self.payment_intent_id}: {self.reason}"
