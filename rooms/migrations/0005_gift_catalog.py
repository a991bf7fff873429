"""The gift catalog: things a Chongqing viewer would give, priced in coins.

Prices follow the custom of live-streaming gifts (66 and 188 are lucky, 520 sounds like
"I love you", 1314 like "for a lifetime"). Staff edit the catalog in the admin later;
this migration only adds what is missing, and its reverse removes only gifts never sent.
"""

from django.db import migrations

GIFTS = [
    ("Shizhu red chili", 1, "chili.svg"),
    ("Bowl of Chongqing xiaomian", 5, "noodles.svg"),
    ("Ciqikou mahua", 10, "mahua.svg"),
    ("Cup of Yongchuan xiuya tea", 20, "tea.svg"),
    ("Hongyadong lanterns", 66, "lanterns.svg"),
    ("Chongqing hotpot", 99, "hotpot.svg"),
    ("Liziba monorail", 188, "monorail.svg"),
    ("Yangtze River cable car", 520, "cable_car.svg"),
    ("Chaotianmen night cruise", 1314, "night_cruise.svg"),
]


def add_gifts(apps, schema_editor):
    Gift = apps.get_model("rooms", "Gift")
    for position, (name, coins, image) in enumerate(GIFTS, start=1):
        Gift.objects.get_or_create(
            name=name, defaults={"coins": coins, "image_url": f"gifts/{image}", "position": position}
        )


def remove_gifts(apps, schema_editor):
    Gift = apps.get_model("rooms", "Gift")
    Gift.objects.filter(name__in=[name for name, _, _ in GIFTS], sends__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("rooms", "0004_gifts_giveaways")]

    operations = [migrations.RunPython(add_gifts, remove_gifts)]
