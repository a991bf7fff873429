"""The demo's product photos and show cover, drawn with Pillow (seed_demo).

Nothing is downloaded: each picture is gradients, shapes and Pillow's built-in font,
the same bytes on every run. They look like simple studio shots of the goods: a tea tin,
a bag of rice, a bottle of vinegar, dried tofu, a bag of starch with noodles, and a
mountain tea garden at dawn for the live show's cover.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable

from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps

Color = tuple[int, int, int]
SIDE = 1080


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _vertical(size: tuple[int, int], top: Color, bottom: Color) -> Image.Image:
    ramp = Image.linear_gradient("L").resize(size)
    return ImageOps.colorize(ramp, black=top, white=bottom).convert("RGB")


def _shaded(size: tuple[int, int], dark: Color, light: Color, *, highlight: float = 0.35) -> Image.Image:
    """Left-to-right shading of a round body: dark edges, a highlight left of the middle."""
    width, height = size
    row = bytes(int(255 * max(0.0, math.cos((x / 255 - highlight) * math.pi * 0.9)) ** 1.5) for x in range(256))
    ramp = Image.frombytes("L", (256, 1), row).resize((width, height))
    return ImageOps.colorize(ramp, black=dark, white=light).convert("RGB")


def _studio(top: Color = (250, 246, 238), bottom: Color = (222, 212, 196)) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    canvas = _vertical((SIDE, SIDE), top, bottom)
    return canvas, ImageDraw.Draw(canvas)


def _shadow(canvas: Image.Image, box: tuple[int, int, int, int], *, blur: int = 28, strength: int = 110) -> None:
    """A soft contact shadow under an object standing on the table."""
    mask = Image.new("L", canvas.size, 0)
    ImageDraw.Draw(mask).ellipse(box, fill=strength)
    mask = mask.filter(ImageFilter.GaussianBlur(blur))
    canvas.paste((60, 45, 30), (0, 0), mask)


def _paste_shape(canvas: Image.Image, fill: Image.Image, shape: Callable[[ImageDraw.ImageDraw], None]) -> None:
    mask = Image.new("L", canvas.size, 0)
    shape(ImageDraw.Draw(mask))
    canvas.paste(fill, (0, 0), mask)


def _centered(draw: ImageDraw.ImageDraw, y: int, text: str, size: int, fill: Color, x: int = SIDE // 2) -> None:
    draw.text((x, y), text, font=_font(size), fill=fill, anchor="mm")


def tea_tin() -> Image.Image:
    canvas, draw = _studio()
    left, right, top, bottom = 330, 750, 250, 860
    _shadow(canvas, (left - 40, bottom - 40, right + 60, bottom + 50))
    body = _shaded(canvas.size, (70, 10, 12), (200, 45, 40))
    _paste_shape(canvas, body, lambda d: d.rectangle((left, top, right, bottom), fill=255))
    _paste_shape(canvas, body, lambda d: d.ellipse((left, bottom - 40, right, bottom + 40), fill=255))
    gold = _shaded(canvas.size, (120, 85, 20), (250, 215, 120))
    _paste_shape(canvas, gold, lambda d: d.rectangle((left, top + 30, right, top + 56), fill=255))
    _paste_shape(canvas, gold, lambda d: d.rectangle((left, bottom - 70, right, bottom - 44), fill=255))
    lid = _shaded(canvas.size, (110, 80, 25), (245, 210, 120))
    _paste_shape(canvas, lid, lambda d: d.rectangle((left - 8, top - 40, right + 8, top + 10), fill=255))
    draw.ellipse((left - 8, top - 75, right + 8, top - 5), fill=(232, 196, 108), outline=(150, 110, 40), width=3)
    draw.rounded_rectangle(
        (left + 60, 420, right - 60, 700), radius=18, fill=(248, 238, 214), outline=(170, 130, 50), width=4
    )
    _centered(draw, 475, "XIANNV", 58, (150, 25, 20))
    _centered(draw, 545, "BLACK TEA", 52, (60, 30, 20))
    _centered(draw, 620, "Wulong · spring 100 g", 26, (110, 90, 60))
    for n in range(7):  # loose leaves on the table
        x, y = 170 + n * 120, 930 + (n % 3) * 22
        draw.ellipse((x, y, x + 44, y + 16), fill=(52, 30, 20))
    return canvas


def rice_bag() -> Image.Image:
    canvas, draw = _studio((244, 247, 238), (210, 214, 195))
    _shadow(canvas, (270, 850, 830, 950))
    cloth = _shaded(canvas.size, (170, 150, 110), (245, 232, 200), highlight=0.45)
    outline = [(300, 300), (360, 240), (540, 265), (720, 240), (780, 300), (820, 880), (260, 880)]
    _paste_shape(canvas, cloth, lambda d: d.polygon(outline, fill=255))
    draw.line([(360, 240), (540, 265), (720, 240)], fill=(150, 125, 80), width=6)
    for x in range(330, 770, 34):  # the weave
        draw.line([(x, 320), (x - 20, 870)], fill=(226, 212, 178), width=2)
    draw.rounded_rectangle((350, 460, 730, 760), radius=24, fill=(52, 120, 60))
    _centered(draw, 525, "LOACH", 64, (250, 246, 225))
    _centered(draw, 595, "PADDY RICE", 50, (250, 246, 225))
    _centered(draw, 680, "terraced · 5 kg", 30, (205, 235, 200))
    for n in range(60):  # spilled grains
        x = 160 + (n * 97) % 780
        y = 900 + (n * 53) % 120
        draw.ellipse((x, y, x + 16, y + 8), fill=(250, 248, 240), outline=(205, 200, 185))
    return canvas


def vinegar_bottle() -> Image.Image:
    canvas, draw = _studio((246, 240, 232), (205, 190, 172))
    _shadow(canvas, (390, 880, 690, 950))
    glass = _shaded(canvas.size, (25, 10, 5), (120, 60, 30), highlight=0.3)
    _paste_shape(canvas, glass, lambda d: d.rounded_rectangle((400, 420, 680, 920), radius=60, fill=255))
    _paste_shape(canvas, glass, lambda d: d.polygon([(420, 440), (500, 300), (580, 300), (660, 440)], fill=255))
    _paste_shape(canvas, glass, lambda d: d.rectangle((500, 200, 580, 320), fill=255))
    draw.rounded_rectangle((490, 150, 590, 215), radius=10, fill=(160, 25, 25))
    draw.line([(445, 470), (445, 860)], fill=(170, 120, 90), width=10)  # the glass's glint
    draw.rectangle((410, 560, 670, 800), fill=(244, 230, 196), outline=(150, 30, 25), width=5)
    _centered(draw, 615, "YANGJIAO", 40, (150, 30, 25), x=540)
    _centered(draw, 680, "AGED", 56, (40, 25, 15), x=540)
    _centered(draw, 740, "VINEGAR 500 ml", 28, (90, 70, 50), x=540)
    return canvas


def dried_tofu() -> Image.Image:
    canvas, draw = _studio((240, 236, 226), (196, 182, 160))
    draw.ellipse((140, 600, 940, 960), fill=(196, 160, 98), outline=(150, 115, 60), width=6)  # bamboo tray
    for n in range(1, 6):  # the tray's woven rings
        draw.ellipse((140 + n * 40, 600 + n * 18, 940 - n * 40, 960 - n * 18), outline=(170, 135, 75), width=3)
    blocks = [(250, 560), (470, 540), (690, 560), (360, 700), (580, 700)]
    for x, y in blocks:
        face = _vertical((180, 150), (150, 95, 50), (95, 55, 25))
        canvas.paste(face, (x, y))
        draw.polygon([(x, y), (x + 30, y - 30), (x + 210, y - 30), (x + 180, y)], fill=(175, 120, 65))
        draw.polygon([(x + 180, y), (x + 210, y - 30), (x + 210, y + 120), (x + 180, y + 150)], fill=(80, 45, 20))
        for k in range(3):  # the cloth's press marks
            draw.line([(x + 20, y + 35 + k * 40), (x + 160, y + 35 + k * 40)], fill=(120, 75, 35), width=3)
    draw.rounded_rectangle((300, 190, 780, 400), radius=20, fill=(255, 250, 240), outline=(120, 75, 35), width=4)
    _centered(draw, 255, "YANGJIAO", 56, (120, 60, 25))
    _centered(draw, 335, "DRIED TOFU", 52, (50, 35, 25))
    return canvas


def starch_noodles() -> Image.Image:
    canvas, draw = _studio((250, 244, 236), (214, 200, 184))
    _shadow(canvas, (120, 800, 560, 900))
    paper = _shaded(canvas.size, (180, 150, 110), (240, 220, 185))
    _paste_shape(canvas, paper, lambda d: d.polygon([(150, 330), (530, 330), (560, 860), (120, 860)], fill=255))
    draw.polygon([(150, 330), (200, 280), (480, 280), (530, 330)], fill=(205, 180, 140))
    draw.rectangle((170, 470, 510, 700), fill=(200, 60, 40))
    _centered(draw, 535, "WULONG", 44, (255, 240, 220), x=340)
    _centered(draw, 600, "BATATA", 50, (255, 240, 220), x=340)
    _centered(draw, 660, "STARCH 500 g", 28, (255, 220, 200), x=340)
    # A bowl of hot-and-sour noodles beside it.
    _shadow(canvas, (560, 860, 1000, 960))
    draw.ellipse((580, 620, 980, 760), fill=(120, 35, 20))
    draw.chord((580, 560, 980, 940), 0, 180, fill=(236, 236, 230), outline=(180, 180, 175), width=4)
    for n in range(9):
        points = [(620 + x, 680 + n * 6 + 10 * math.sin((x + n * 25) / 28)) for x in range(0, 320, 8)]
        draw.line(points, fill=(215, 200, 170), width=5)
    for x, y in ((660, 660), (760, 650), (880, 670)):
        draw.ellipse((x, y, x + 26, y + 18), fill=(60, 150, 60))  # spring onion
    return canvas


def live_cover() -> Image.Image:
    """A tea garden at dawn, without words: the page around it speaks the viewer's language."""
    width, height = 1280, 720
    canvas = _vertical((width, height), (255, 196, 140), (120, 170, 210))
    draw = ImageDraw.Draw(canvas)
    draw.ellipse((860, 90, 1000, 230), fill=(255, 236, 180))  # the sun rising
    for depth, (color, base) in enumerate((((110, 140, 160), 360), ((70, 110, 100), 430), ((40, 90, 60), 520))):
        points = [(0, height)]
        for x in range(0, width + 80, 80):
            points.append((x, base - int(70 * math.sin(x / (170 + depth * 60) + depth) + 30 * math.sin(x / 53))))
        points.append((width, height))
        draw.polygon(points, fill=color)
    for row in range(6):  # rows of tea bushes on the slope
        y = 560 + row * 30
        for x in range(-40, width, 70):
            draw.ellipse((x + row * 17, y, x + row * 17 + 80, y + 40), fill=(50 + row * 8, 130 + row * 6, 60))
    return canvas


# Product titles of the demo (seed_demo.WULONG_PRODUCTS) and their pictures.
PRODUCT_PICTURES: dict[str, Callable[[], Image.Image]] = {
    "Xiannv Black Tea": tea_tin,
    "Loach Paddy Rice": rice_bag,
    "Yangjiao Well-aged Vinegar": vinegar_bottle,
    "Yangjiao Dried Tofu": dried_tofu,
    "Wulong Batata Starch": starch_noodles,
}


def jpeg(image: Image.Image) -> io.BytesIO:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    out.seek(0)
    return out
