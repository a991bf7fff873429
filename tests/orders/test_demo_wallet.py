"""The demo's viewer has coins for gifts: a labelled staff grant, balanced, made once."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from liveshop.models import User
from orders.models import LedgerTransaction
from orders.services.wallet import wallet_coins
from tests.coins import assert_ledger_balanced

pytestmark = pytest.mark.django_db


def test_seed_demo_grants_the_viewer_coins_once():
    out = StringIO()
    call_command("seed_demo", "--this-is-a-demo", stdout=out)
    call_command("seed_demo", "--this-is-a-demo", stdout=StringIO())
    viewer = User.objects.get(username="viewer")
    assert wallet_coins(user_id=viewer.pk) == 500
    assert "viewer's wallet: 500 coins" in out.getvalue()
    grant = LedgerTransaction.objects.get(kind=LedgerTransaction.Kind.COIN_GRANT)
    assert (grant.kind, grant.key) == ("coin_grant", "coin_grant:seed_demo:viewer")
    assert_ledger_balanced()
