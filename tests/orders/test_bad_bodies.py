"""Bodies nested too deep for Python's JSON decoder are a 400, never a 500 (audit item 11)."""

from __future__ import annotations

import pytest

from orders.intake import OrderIntake
from tests.helpers import assert_error
from tests.orders.test_intake import Downstream, call

pytestmark = pytest.mark.django_db

DEEP = b"[" * 5000


@pytest.mark.parametrize("path", ["/api/v1/orders/", "/api/v1/rooms/", "/api/v1/shops/", "/api/v1/auth/token/"])
def test_json_nested_too_deep_is_invalid(client_for, host, path):
    response = client_for(host).generic("POST", path, DEEP, content_type="application/json")
    assert_error(response, 400, "invalid")


def test_the_order_intake_passes_a_body_nested_too_deep_on_to_django(buyer):
    django = Downstream()
    status, _ = call(OrderIntake(django), DEEP, token="any-token")
    assert (status, django.bodies) == (201, [DEEP])
