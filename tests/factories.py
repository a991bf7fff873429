"""factory_boy factories for the models the tests build."""

from __future__ import annotations

import factory

from catalog.models import Offer, Product, Shop, Sku
from liveshop.models import User
from liveshop.services import user_token_create
from rooms.models import Host, Room, RoomItem


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    display_name = factory.LazyAttribute(lambda u: u.username.title())
    district = "Yuzhong"
    password = factory.PostGenerationMethodCall("set_password", "correct horse battery")

    @factory.post_generation
    def saved(obj: User, create: bool, extracted: object, **kwargs: object) -> None:
        if create:
            obj.save()  # the password set above


def api_token(user: User) -> str:
    """A new API token for `user`, as a login makes one (tokens are stored hashed: a
    test keeps the token it is given)."""
    return user_token_create(user=user)


class HostFactory(factory.django.DjangoModelFactory[Host]):
    class Meta:
        model = Host

    user = factory.SubFactory(UserFactory)
    kind = Host.Kind.FARMER
    district = "Wulong"
    verified = True


class ShopFactory(factory.django.DjangoModelFactory[Shop]):
    class Meta:
        model = Shop

    owner = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"Shop {n}")
    district = "Wulong"


class ProductFactory(factory.django.DjangoModelFactory[Product]):
    class Meta:
        model = Product

    shop = factory.SubFactory(ShopFactory)
    title = factory.Sequence(lambda n: f"Product {n}")
    category = "tea"


class SkuFactory(factory.django.DjangoModelFactory[Sku]):
    class Meta:
        model = Sku

    product = factory.SubFactory(ProductFactory)
    name = "500 g"
    price = 3800
    stock = 100


class RoomFactory(factory.django.DjangoModelFactory[Room]):
    class Meta:
        model = Room

    host = factory.SubFactory(HostFactory)
    title = factory.Sequence(lambda n: f"Show {n}")


class RoomItemFactory(factory.django.DjangoModelFactory[RoomItem]):
    class Meta:
        model = RoomItem

    room = factory.SubFactory(RoomFactory)
    # The room's host's own goods: another shop's sku needs an offer (OfferFactory).
    sku = factory.SubFactory(SkuFactory, product__shop__owner=factory.SelfAttribute("....room.host.user"))
    position = factory.Sequence(lambda n: n)


class OfferFactory(factory.django.DjangoModelFactory[Offer]):
    """A seller's offer on a sku, open to every verified host unless `hosts` are given."""

    class Meta:
        model = Offer
        skip_postgeneration_save = True

    sku = factory.SubFactory(SkuFactory)
    created_by = factory.LazyAttribute(lambda offer: offer.sku.product.shop.owner)
    commission_bps = 1000
    min_live_price = factory.LazyAttribute(lambda offer: offer.sku.price)

    @factory.post_generation
    def hosts(self, create, extracted, **kwargs):
        if create and extracted:
            self.hosts.set(extracted)
