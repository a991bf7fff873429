"""The Celery app: `celery -A liveshop worker` and one `celery -A liveshop beat`."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "liveshop.settings")

app = Celery("liveshop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
