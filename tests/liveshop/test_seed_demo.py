from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from rest_framework.authtoken.models import Token

from catalog.models import Product, Shop, Sku
from liveshop.models import User
from rooms.models import Host, Room, RoomItem

pytestmark = pytest.mark.django_db


def _counts():
    return {model.__name__: model.objects.count() for model in (User, Host, Shop, Product, Sku, Room, RoomItem)}


def test_seed_demo_is_idempotent_and_prints_tokens():
    first = StringIO()
    call_command("seed_demo", stdout=first)
    counts = _counts()
    second = StringIO()
    call_command("seed_demo", stdout=second)

    assert _counts() == counts
    assert counts == {"User": 4, "Host": 2, "Shop": 1, "Product": 5, "Sku": 10, "Room": 2, "RoomItem": 5}
    farmer_token = Token.objects.get(user__username="farmer").key
    assert farmer_token in first.getvalue()
    assert farmer_token in second.getvalue()


def test_seed_demo_story():
    call_command("seed_demo", stdout=StringIO())
    farmer = Host.objects.get(user__username="farmer")
    cadre = Host.objects.get(user__username="cadre")
    assert (farmer.kind, farmer.district, farmer.verified) == ("farmer", "Wulong", True)
    assert (cadre.kind, cadre.district, cadre.verified) == ("cadre", "Jiangbei", True)
    titles = set(Product.objects.values_list("title", flat=True))
    assert titles == {
        "Xiannv Black Tea",
        "Yangjiao Dried Tofu",
        "Wulong Batata Starch",
        "Loach Paddy Rice",
        "Yangjiao Well-aged Vinegar",
    }
    room = Room.objects.get(status=Room.Status.LIVE)
    upcoming = Room.objects.get(status=Room.Status.SCHEDULED)
    assert (upcoming.host, upcoming.scheduled_start is not None) == (cadre, True)
    assert room.featured_item is not None
    assert room.featured_item.sku.product.title == "Xiannv Black Tea"
    assert User.objects.get(username="admin").is_staff


def test_seed_demo_opens_a_new_show_when_the_demo_show_ended(client_for):
    call_command("seed_demo", stdout=StringIO())
    Room.objects.filter(status=Room.Status.LIVE).update(status=Room.Status.ENDED)
    call_command("seed_demo", stdout=StringIO())
    assert Room.objects.filter(status=Room.Status.LIVE).count() == 1
    assert Room.objects.count() == 3  # the ended show, the new live one, the cadre's upcoming one
