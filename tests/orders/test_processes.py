"""`make run` starts localstripe when no Stripe key is set; the deadline sweepers are on beat."""

from __future__ import annotations

import logging

import pytest
from django.conf import settings

from liveshop.management.commands.serve import liveshop_environment, liveshop_processes


def test_make_run_starts_localstripe_on_loopback_without_a_stripe_key(settings):
    settings.STRIPE_SECRET_KEY = ""
    settings.LOCALSTRIPE_PORT = 18420
    processes = {p.name: p.argv for p in liveshop_processes(host="127.0.0.1", port=8000)}
    assert list(processes) == ["stripe", "web", "worker", "beat"]
    assert processes["stripe"][1:5] == ["-m", "orders.localstripe_server", "--port", "18420"]
    env = liveshop_environment()
    assert env["STRIPE_API_BASE"] == "http://127.0.0.1:18420"
    assert env["STRIPE_SECRET_KEY"].startswith("sk_test_")
    assert env["STRIPE_WEBHOOK_SECRET"]


def test_with_a_stripe_key_no_stand_in_runs(settings):
    settings.STRIPE_SECRET_KEY = "sk_live_real"
    assert [p.name for p in liveshop_processes(host="127.0.0.1", port=8000)] == ["web", "worker", "beat"]
    assert liveshop_environment() == {}


@pytest.mark.parametrize("task", ["orders.tasks.orders_expire_due_task", "rooms.tasks.flash_sales_sweep_task"])
def test_deadline_sweepers_run_at_least_every_two_seconds(task):
    entries = [e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == task]
    assert entries
    assert all(float(e["schedule"]) <= 2 for e in entries)


@pytest.mark.parametrize(
    "logger", ["celery.beat", "celery.app.trace", "celery.worker.strategy", "celery.worker.request"]
)
def test_the_per_task_lines_of_the_sweepers_stay_out_of_the_terminal(logger):
    # The worker's "Discarding revoked task" (a sweep past its expiry) is one of them.
    assert logging.getLogger(logger).getEffectiveLevel() >= logging.WARNING
