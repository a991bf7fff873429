"""Photos in a real browser: a seller adds a product photo on "My products" (/shop/), a
viewer sees it on the room's shelf and in the "now explaining" card, served by the ASGI
app from its MEDIA_ROOT (<tmp>/media: LIVESHOP_VAR_DIR); the host sets the show's cover
in the studio and the front page shows it."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from playwright.sync_api import expect

from catalog.models import ProductPhoto
from rooms.models import Room
from tests import factories
from tests.photos import image_bytes
from tests.web.conftest import Pages, screenshot
from tests.web.words import BOTH, Viewport

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("viewport", BOTH, ids=lambda viewport: viewport.id)
def test_a_seller_adds_a_photo_and_a_viewer_sees_it_on_the_shelf(pages: Pages, viewport: Viewport, live_room, viewer):
    host = live_room.host.user
    shop = factories.ShopFactory.create(owner=host, name="Xiannv Mountain Farm")
    tea = factories.SkuFactory.create(
        product=factories.ProductFactory.create(shop=shop, title="仙女山红茶", title_en="Xiannv Black Tea"),
        name="250 g tin", price=6800,
    )  # fmt: skip
    title = "仙女山红茶" if viewport.chinese else "Xiannv Black Tea"
    item = factories.RoomItemFactory.create(room=live_room, sku=tea, position=1)
    Room.objects.filter(pk=live_room.pk).update(featured_item=item)

    seller = pages.open("/shop/", user=host, phone=viewport.phone, locale=viewport.locale)
    card = seller.get_by_test_id("shop-product").filter(has_text="仙女山红茶")  # the seller's own words
    expect(card).to_contain_text(viewport.js("%(n)s of %(max)s photos", n=0, max=9))
    # A real phone photo is megabytes: past the 256 KB every other request body is held to.
    noisy = Image.effect_noise((1200, 900), 90).convert("RGB")
    buffer = io.BytesIO()
    noisy.save(buffer, "JPEG", quality=95)
    assert buffer.tell() > 600_000
    card.get_by_test_id("photo-file").set_input_files(
        {"name": "tin.jpg", "mimeType": "image/jpeg", "buffer": buffer.getvalue()}
    )
    expect(card).to_contain_text(viewport.js("%(n)s of %(max)s photos", n=1, max=9))
    thumb = card.get_by_test_id("product-photo")
    expect(thumb).to_have_attribute("alt", "仙女山红茶")
    seller.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumb.element_handle())
    assert ProductPhoto.objects.filter(product=tea.product).count() == 1
    # Something that is not an image is refused with the server's words.
    card.get_by_test_id("photo-file").set_input_files(
        {"name": "evil.jpg", "mimeType": "image/jpeg", "buffer": b"<svg xmlns='http://www.w3.org/2000/svg'/>"}
    )
    # (The API's words are English; the page shows them as they come.)
    expect(card.get_by_test_id("photo-error")).to_have_text("Upload a JPEG, PNG or WebP image.")
    assert seller.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(seller, f"shop-photos-{viewport.id}")

    watcher = pages.open(f"/rooms/{live_room.pk}/", user=viewer, phone=viewport.phone, locale=viewport.locale)
    if viewport.phone:
        watcher.get_by_test_id("shelf-open").click()  # the shelf is the bag's sheet
    shelf_photo = watcher.get_by_test_id("shelf").get_by_test_id("product-photo")
    expect(shelf_photo).to_have_attribute("alt", title)
    expect(shelf_photo).to_have_attribute("loading", "lazy")
    expect(shelf_photo).to_be_in_viewport()
    watcher.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=shelf_photo.element_handle())
    featured_photo = watcher.get_by_test_id("featured").get_by_test_id("product-photo")
    expect(featured_photo).to_be_visible()
    assert featured_photo.get_attribute("src").endswith("-1080.webp")
    screenshot(watcher, f"room-shelf-photo-{viewport.id}")


def test_the_host_sets_a_cover_and_the_front_page_shows_it(pages: Pages, live_room):
    studio = pages.open(f"/studio/rooms/{live_room.pk}/", user=live_room.host.user, phone=False)
    studio.get_by_test_id("cover-file").set_input_files(
        {"name": "cover.png", "mimeType": "image/png", "buffer": image_bytes("PNG", (1600, 1000), (40, 120, 60))}
    )
    studio.get_by_test_id("cover-upload").click()
    expect(studio.get_by_test_id("cover-preview").get_by_test_id("room-cover")).to_be_visible()
    assert Room.objects.get(pk=live_room.pk).cover.name

    home = pages.open("/")
    cover = home.locator(f'[data-room="{live_room.pk}"]').get_by_test_id("room-cover")
    expect(cover).to_have_attribute("alt", live_room.title)
    home.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=cover.element_handle())
    screenshot(home, "home-cover")
