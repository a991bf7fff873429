"""Stripe Connect in the Stripe stand-in: the few endpoints payouts use.

localstripe has no Connect. This adds, in its manner (objects in its store, its errors,
its signed webhooks), what liveshop's payouts call (orders/stripe_api.py):

- `POST /v1/accounts`, `GET /v1/accounts/{id}`: an Express connected account. It may
  receive transfers once onboarded.
- `POST /v1/account_links`: the onboarding link. At Stripe it opens Stripe's forms; here
  `GET /_connect/onboard/{account}` stands for the payee filling them in: the account
  becomes able to receive transfers (webhook `account.updated`) and the browser goes on
  to the link's `return_url`.
- `POST /v1/transfers` (honouring `Idempotency-Key`, as Stripe does), `GET
  /v1/transfers[/{id}]`, `POST /v1/transfers/{id}/reversals`: a transfer moves money from
  the platform's balance to the account (webhook `transfer.created`); a reversal brings it
  back (`transfer.reversed`). A transfer to an account that cannot receive them is
  refused with 400, as at Stripe.
- `GET /v1/balance_transactions` with `type` and `created[gte|lte]`: the platform's
  balance history (charges, refunds, transfers and their reversals), as reconciliation
  lists it.

It is a stand-in for tests and `make run`, not Stripe: no fees, no currencies' rules, no
connected account's own balance or payouts.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import web
from localstripe import server as ls_server
from localstripe.errors import UserError
from localstripe.resources import BalanceTransaction, Event, List, StripeObject, store, try_convert_to_int
from localstripe.webhooks import schedule_webhook

_base_url = "http://127.0.0.1:8420"


class Account(StripeObject):
    object = "account"
    _id_prefix = "acct_"

    def __init__(
        self,
        type: Any = None,
        country: Any = None,
        email: Any = None,
        capabilities: Any = None,
        metadata: Any = None,
        business_type: Any = None,
        **kwargs: Any,
    ) -> None:
        if kwargs:
            raise UserError(400, "Unexpected " + ", ".join(kwargs))
        if type not in ("express", "standard", "custom"):
            raise UserError(400, "Bad request: type must be express, standard or custom")
        if metadata is not None and not isinstance(metadata, dict):
            raise UserError(400, "Bad request")
        super().__init__()
        self.type = type
        self.country = country or "CN"
        self.email = email
        self.business_type = business_type
        self.metadata = metadata or {}
        self.details_submitted = False
        self.charges_enabled = False
        self.payouts_enabled = False
        self.capabilities = {"transfers": "inactive"}

    def _onboard(self) -> None:
        self.details_submitted = self.payouts_enabled = True
        self.capabilities = {"transfers": "active"}
        schedule_webhook(Event("account.updated", self))


class AccountLink(StripeObject):
    object = "account_link"
    _id_prefix = "acctlink_"

    def __init__(
        self, account: Any = None, refresh_url: Any = None, return_url: Any = None, type: Any = None, **kwargs: Any
    ) -> None:
        if kwargs:
            raise UserError(400, "Unexpected " + ", ".join(kwargs))
        if type != "account_onboarding" or not isinstance(return_url, str) or not isinstance(refresh_url, str):
            raise UserError(400, "Bad request")
        Account._api_retrieve(str(account))  # 404 for an unknown account
        super().__init__()
        self.expires_at = self.created + 300
        self.url = f"{_base_url}/_connect/onboard/{account}?return_url={quote(return_url, safe='')}"


class _MovementTransaction(BalanceTransaction):
    """A balance transaction of a transfer or its reversal (localstripe's own take only
    charges and refunds)."""

    def __init__(self, *, amount: int, currency: str, source: str, type: str) -> None:
        StripeObject.__init__(self)
        self.amount = amount
        self.available_on = self.created
        self.currency = currency
        self.description = type.upper()
        self.exchange_rate = None
        self.fee = 0
        self.fee_details: list[Any] = []
        self.reporting_category = type
        self.source = source
        self.status = "available"
        self.type = type


class TransferReversal(StripeObject):
    object = "transfer_reversal"
    _id_prefix = "trr_"

    def __init__(self, transfer: Transfer, amount: int) -> None:
        super().__init__()
        self.transfer = transfer.id
        self.amount = amount
        self.currency = transfer.currency
        self.balance_transaction = _MovementTransaction(
            amount=amount, currency=transfer.currency, source=self.id, type="transfer_refund"
        ).id


class Transfer(StripeObject):
    object = "transfer"
    _id_prefix = "tr_"

    def __init__(
        self,
        amount: Any = None,
        currency: Any = None,
        destination: Any = None,
        description: Any = None,
        metadata: Any = None,
        transfer_group: Any = None,
        **kwargs: Any,
    ) -> None:
        if kwargs:
            raise UserError(400, "Unexpected " + ", ".join(kwargs))
        amount = try_convert_to_int(amount)
        if not (isinstance(amount, int) and amount > 0 and isinstance(currency, str) and currency):
            raise UserError(400, "Bad request: amount and currency")
        if metadata is not None and not isinstance(metadata, dict):
            raise UserError(400, "Bad request")
        account = Account._api_retrieve(str(destination))
        if account.capabilities.get("transfers") != "active":
            raise UserError(
                400,
                "Your destination account needs to have at least one of the following capabilities "
                "enabled: transfers, crypto_transfers, legacy_payments",
                {"code": "insufficient_capabilities_for_transfer"},
            )
        super().__init__()
        self.amount = amount
        self.currency = currency
        self.destination = account.id
        self.description = description
        self.metadata = metadata or {}
        self.transfer_group = transfer_group
        self.amount_reversed = 0
        self.reversed = False
        self.balance_transaction = _MovementTransaction(
            amount=-amount, currency=currency, source=self.id, type="transfer"
        ).id
        schedule_webhook(Event("transfer.created", self))

    def _reverse(self, amount: Any = None) -> TransferReversal:
        left = self.amount - self.amount_reversed
        amount = left if amount is None else try_convert_to_int(amount)
        if not (isinstance(amount, int) and 0 < amount <= left):
            raise UserError(400, "Bad request: amount")
        reversal = TransferReversal(self, amount)
        self.amount_reversed += amount
        self.reversed = self.amount_reversed == self.amount
        schedule_webhook(Event("transfer.reversed", self))
        return reversal


def _transfer_create_once(key: str | None, data: dict[str, Any]) -> Transfer:
    """Create a transfer, once per Idempotency-Key (the same key answers the first transfer)."""
    if key is None:
        return Transfer(**data)
    seen = store.get(f"idempotency:transfer:{key}")
    if seen is not None:
        return Transfer._api_retrieve(seen)
    transfer = Transfer(**data)
    store[f"idempotency:transfer:{key}"] = transfer.id
    return transfer


def _balance_transactions(
    cls: type[BalanceTransaction],
    url: str,
    type: Any = None,
    created: Any = None,
    limit: Any = None,
    starting_after: Any = None,
    **kwargs: Any,
) -> List:
    if kwargs:
        raise UserError(400, "Unexpected " + ", ".join(kwargs))
    listing = StripeObject._api_list_all.__func__(cls, url, limit, starting_after)
    rows = listing._list
    if type is not None:
        rows = [row for row in rows if row.type == type]
    if created is not None:
        if not isinstance(created, dict):
            raise UserError(400, "Bad request: created")
        gte, lte = try_convert_to_int(created.get("gte")), try_convert_to_int(created.get("lte"))
        rows = [row for row in rows if (gte is None or row.created >= gte) and (lte is None or row.created <= lte)]
    # Newest first, as at Stripe; the store keeps creation order, so ties stay stable.
    listing._list = sorted(rows, key=lambda row: row.created, reverse=True)
    return listing


async def _post_transfer(request: web.Request) -> web.Response:
    data = await ls_server.get_post_data(request) or {}
    data.pop("expand", None)
    transfer = _transfer_create_once(request.headers.get("Idempotency-Key"), dict(data))
    return ls_server.json_response(transfer._export())


async def _post_reversal(request: web.Request) -> web.Response:
    data = await ls_server.get_post_data(request) or {}
    transfer = Transfer._api_retrieve(request.match_info["id"])
    return ls_server.json_response(transfer._reverse(data.get("amount"))._export())


_ONBOARD_PREFIX = "/_connect/onboard/"


@web.middleware
async def _onboard_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """The onboarding page: opened by the payee's browser, so without the secret key (it
    comes before localstripe's authentication, as Stripe's own pages would)."""
    if not request.path.startswith(_ONBOARD_PREFIX):
        return await handler(request)
    try:
        account = Account._api_retrieve(request.path[len(_ONBOARD_PREFIX) :])
    except UserError as error:
        response: web.StreamResponse = error.to_response()
        return response
    account._onboard()
    return_url = request.query.get("return_url", "")
    if return_url.startswith(("http://", "https://")):
        raise web.HTTPFound(return_url)
    return web.Response(text=f"{account.id} onboarded (Stripe stand-in)")


def install(app: web.Application, *, base_url: str) -> None:
    """Add the Connect endpoints to localstripe's app (before it starts)."""
    global _base_url
    _base_url = base_url
    BalanceTransaction._api_list_all = classmethod(_balance_transactions)
    app.middlewares.insert(0, _onboard_middleware)
    router = app.router
    router.add_post("/v1/transfers", _post_transfer)
    router.add_post("/v1/transfers/{id}/reversals", _post_reversal)
    for cls in (Account, AccountLink, Transfer):
        url = f"/v1/{cls.object}s"
        if cls is not Transfer:
            router.add_post(url, ls_server.api_create(cls, url))
        router.add_get(url + "/{id}", ls_server.api_retrieve(cls, url))
        router.add_get(url, ls_server.api_list_all(cls, url))
