"""API tokens moved from DRF's authtoken (kept in plain text) to django-rest-knox (hashed,
expiring; liveshop/auth.py). DRF's table is no longer any app's, so nothing else would
ever remove it: this drops it, and with it every plain-text token a deployed database
still holds. Those tokens stopped working when the app was removed; their users log in
again. On a fresh database there is no such table and this does nothing."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("liveshop", "0002_idempotency_record"),
    ]

    operations = [
        migrations.RunSQL(sql="DROP TABLE IF EXISTS authtoken_token", reverse_sql=migrations.RunSQL.noop),
    ]
