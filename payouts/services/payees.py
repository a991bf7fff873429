"""Who is paid: a shop (its seller's share of each sale) or a host's user (commissions
and cashed-out gift coins), and that payee's accounts in the ledger."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings

from orders.models import LedgerAccount
from orders.services import ledger

Kind = LedgerAccount.Kind


@dataclass(frozen=True)
class Payee:
    shop_id: int | None = None
    user_id: int | None = None

    def __post_init__(self) -> None:
        if (self.shop_id is None) == (self.user_id is None):
            raise ValueError("A payee is a shop or a user, not both or neither.")

    @classmethod
    def of(cls, obj: Any) -> Payee:
        """The payee of a Payout, PayoutAccount or LedgerAccount (anything with shop_id and user_id)."""
        return cls(shop_id=obj.shop_id, user_id=obj.user_id)

    @property
    def code(self) -> str:
        return f"shop:{self.shop_id}" if self.shop_id is not None else f"user:{self.user_id}"

    @property
    def fields(self) -> dict[str, int | None]:
        """Filter or create a row of this payee: {"shop_id": 3, "user_id": None}."""
        return {"shop_id": self.shop_id, "user_id": self.user_id}

    @property
    def pending_kind(self) -> LedgerAccount.Kind:
        """The ledger kind holding what this payee earned and may not be paid yet."""
        return Kind.SELLER if self.shop_id is not None else Kind.HOST_COMMISSION

    def account(self, kind: LedgerAccount.Kind, currency: str | None = None) -> LedgerAccount:
        return ledger.ledger_account(
            kind=kind, currency=currency or settings.CURRENCY, shop_id=self.shop_id, user_id=self.user_id
        )

    def payable(self, currency: str | None = None) -> LedgerAccount:
        return self.account(Kind.PAYABLE, currency)

    def pending(self, currency: str | None = None) -> LedgerAccount:
        return self.account(self.pending_kind, currency)
