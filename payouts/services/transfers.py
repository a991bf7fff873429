"""Stripe's word on transfers, through the orders' webhook outbox (stored once, applied
by the settlement's drainers, retried by its sweeper): a transfer created is a payout
paid; a transfer reversed in full is a payout failed, its money owed to the payee again.
A redelivered or repeated event finds the payout's status already moved and changes
nothing."""

from __future__ import annotations

import logging
from typing import Any

from orders.services import payments
from payouts.models import Payout
from payouts.services import payouts

logger = logging.getLogger(__name__)


def _payout_of(transfer: dict[str, Any]) -> Payout | None:
    metadata = transfer.get("metadata") or {}
    found = Payout.objects.filter(stripe_transfer_id=transfer["id"]).first()
    if found is None and str(metadata.get("liveshop_payout", "")).isdigit():
        found = Payout.objects.filter(pk=int(metadata["liveshop_payout"]), method=Payout.Method.STRIPE).first()
    return found


def on_transfer_created(transfer: dict[str, Any]) -> str:
    payout = _payout_of(transfer)
    if payout is None:
        return "ignored: not a liveshop payout"
    if transfer.get("amount") != payout.amount or transfer.get("currency") != payout.currency:
        logger.error("Transfer %s does not match payout %s", transfer["id"], payout.pk)
        return f"mismatch: transfer {transfer['id']} is not payout {payout.pk}'s amount (reconcile reports it)"
    # The webhook may come before the call that created the transfer returned.
    Payout.objects.filter(pk=payout.pk, stripe_transfer_id=None).update(stripe_transfer_id=transfer["id"])
    if payouts.payout_paid(payout_id=payout.pk):
        return f"payout {payout.pk} paid"
    return f"payout {payout.pk} already {Payout.objects.values_list('status', flat=True).get(pk=payout.pk)}"


def on_transfer_reversed(transfer: dict[str, Any]) -> str:
    payout = _payout_of(transfer)
    if payout is None:
        return "ignored: not a liveshop payout"
    if not transfer.get("reversed"):
        if not transfer.get("amount_reversed"):
            return f"payout {payout.pk}: nothing to do"
        # A partial reversal is not something liveshop makes; reconcile shows it to staff.
        logger.error("Transfer %s of payout %s partly reversed", transfer["id"], payout.pk)
        return f"partial reversal of payout {payout.pk}: left to staff"
    if payouts.payout_fail(payout_id=payout.pk, reason="the transfer was reversed"):
        return f"payout {payout.pk} failed: transfer reversed"
    return f"payout {payout.pk} already failed"


def register_stripe_events() -> None:
    payments.stripe_event_handler_register(
        event_type="transfer.created", object_kind="transfer", handler=on_transfer_created
    )
    payments.stripe_event_handler_register(
        event_type="transfer.reversed", object_kind="transfer", handler=on_transfer_reversed
    )
    payments.stripe_event_handler_register(
        event_type="transfer.updated", object_kind="transfer", handler=on_transfer_reversed
    )
