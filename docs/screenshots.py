"""Take the README's screenshots (docs/img/) from a running `make run` demo.

    make run                                   # in one terminal
    .venv/bin/python docs/screenshots.py       # in another (Debian's chromium)

Each main page, the demo's replay of a past show and a product with its clips are shot
twice: on a phone in Chinese (`*-zh.png`) and on a desktop in English (`*-en.png`), signed
in as the demo's users. To show the room in a busy moment it starts a flash sale (as the
demo farmer, when none runs) and says a few words as the demo viewer, through the same API
and socket any client uses.
"""

from __future__ import annotations

import argparse
import json
import urllib.request
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, sync_playwright

OUT = Path(__file__).resolve().parent / "img"
PASSWORD = "liveshop-demo"
COMMENTS = {
    "zh": ["老乡，这茶怎么泡？", "豆腐干还有吗", "武隆的米好香", "主播声音好好听"],
    "en": ["How do I brew this tea?", "Any dried tofu left?", "Greetings from Yuzhong!", "Two tins please"],
}
VIEWPORTS: dict[str, dict[str, Any]] = {
    "zh": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "locale": "zh-CN"},
    "en": {"viewport": {"width": 1280, "height": 860}, "is_mobile": False, "locale": "en-US"},
}


def api(base: str, path: str, *, token: str, body: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(
        f"{base}/api/v1{path}",
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
        method="POST" if body is not None else "GET",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)


def token(base: str, username: str) -> str:
    request = urllib.request.Request(
        f"{base}/api/v1/auth/token/",
        data=json.dumps({"username": username, "password": PASSWORD}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return str(json.load(answer)["token"])


def flash_sale_running(base: str, room: int) -> None:
    items = api(base, f"/rooms/{room}/items/", token=token(base, "farmer"))
    if any(item["flash_sale"] for item in items):
        return
    item = items[1] if len(items) > 1 else items[0]
    body = {"price": item["price"] * 2 // 3, "quantity": 30, "duration_s": 900}
    api(base, f"/rooms/{room}/items/{item['id']}/flash-sale/", token=token(base, "farmer"), body=body)


def sign_in(page: Page, username: str) -> None:
    page.goto("/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.locator("form button[type=submit]").first.click()
    page.wait_for_url(lambda url: "/login/" not in url)


def shoot(page: Page, name: str, *, full: bool = False) -> None:
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(1500)  # the socket's snapshot, the video's first frames
    path = OUT / f"{name}.png"
    page.screenshot(path=str(path), full_page=full)
    print(f"  {path.relative_to(OUT.parent.parent)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="http://127.0.0.1:8000")
    parser.add_argument("--room", type=int, default=1)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    flash_sale_running(args.base, args.room)
    orders = api(args.base, "/orders/", token=token(args.base, "viewer"))
    order = (orders.get("results", orders) or [None])[0]
    replay = (api(args.base, "/replays/", token=token(args.base, "viewer"))["results"] or [None])[0]
    chapters = (
        api(args.base, f"/rooms/{replay['id']}/replay/", token=token(args.base, "viewer"))["chapters"] if replay else []
    )
    replay_moment = int(chapters[-1]["at_s"]) + 10 if chapters else 0
    product = chapters[-1]["item"]["product"]["id"] if chapters else None

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
        for lang, options in VIEWPORTS.items():
            print(f"{lang}:", flush=True)
            host = browser.new_context(base_url=args.base, **options).new_page()
            sign_in(host, "farmer")
            host.goto(f"/studio/rooms/{args.room}/")  # open first: its live feed sees the viewer come
            viewer = browser.new_context(base_url=args.base, **options).new_page()
            sign_in(viewer, "viewer")
            shoot(viewer, f"home-{lang}", full=True)
            viewer.goto(f"/rooms/{args.room}/")
            viewer.wait_for_selector("[data-testid=room-status]:not(:empty)")
            for words in COMMENTS[lang]:
                viewer.fill("#comment-text", words)
                viewer.press("#comment-text", "Enter")
                viewer.wait_for_timeout(300)
            for _ in range(8):
                viewer.click("#like-button")
            shoot(viewer, f"room-{lang}")
            shoot(host, f"studio-{lang}")
            if lang == "zh":
                viewer.click("#shelf-open")
                shoot(viewer, f"room-shelf-{lang}")
            viewer.goto("/orders/")
            shoot(viewer, f"orders-{lang}", full=True)
            if order:
                viewer.goto(f"/orders/{order['id']}/")
                shoot(viewer, f"order-{lang}", full=True)

            if replay:
                # A moment well into the show: its chapter playing, comments said by then.
                viewer.goto(f"/rooms/{replay['id']}/replay/?t={replay_moment}")
                viewer.wait_for_selector("#video[data-state=playing]", timeout=30_000)
                shoot(viewer, f"replay-{lang}", full=lang == "zh")
                if product:
                    viewer.goto(f"/products/{product}/")
                    viewer.wait_for_selector("[data-testid=clip]", timeout=15_000)
                    shoot(viewer, f"product-{lang}", full=True)

            host.goto("/shop/")
            shoot(host, f"shop-{lang}")
            host.context.close()
            viewer.context.close()
        browser.close()


if __name__ == "__main__":
    main()
