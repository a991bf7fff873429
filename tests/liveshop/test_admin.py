"""The Django admin is usable by staff: every model's pages load, the actions work."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import reverse

from rooms.models import Host, Room
from tests import factories

pytestmark = pytest.mark.django_db

PROJECT_APPS = {"liveshop", "catalog", "rooms", "orders"}


@pytest.fixture
def superuser(db):
    return factories.UserFactory.create(username="root", is_staff=True, is_superuser=True)


def test_every_project_model_is_registered():
    models = [m for m in apps.get_models() if m._meta.app_label in PROJECT_APPS]
    missing = [m.__name__ for m in models if m not in admin.site._registry]
    assert missing == []


def test_every_changelist_and_add_page_loads(client, superuser, item, rf):
    client.force_login(superuser)
    request = rf.get("/admin/")
    request.user = superuser
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label not in PROJECT_APPS:
            continue
        info = (model._meta.app_label, model._meta.model_name)
        assert client.get(reverse(f"admin:{info[0]}_{info[1]}_changelist")).status_code == 200, model
        # Money and audit rows are read-only: their add page is refused, not broken.
        add_status = 200 if model_admin.has_add_permission(request) else 403
        assert client.get(reverse(f"admin:{info[0]}_{info[1]}_add")).status_code == add_status, model
        search = client.get(reverse(f"admin:{info[0]}_{info[1]}_changelist") + "?q=tea")
        assert search.status_code == 200, model


def test_verify_action(client, superuser):
    pending = factories.HostFactory.create(verified=False)
    client.force_login(superuser)
    response = client.post(
        reverse("admin:rooms_host_changelist"), {"action": "verify", "_selected_action": [pending.pk]}, follow=True
    )
    assert response.status_code == 200
    assert Host.objects.get(pk=pending.pk).verified is True


def test_suspend_action(client, superuser, live_room):
    client.force_login(superuser)
    response = client.post(
        reverse("admin:rooms_room_changelist"), {"action": "suspend", "_selected_action": [live_room.pk]}, follow=True
    )
    assert response.status_code == 200
    live_room.refresh_from_db()
    assert live_room.status == Room.Status.SUSPENDED
    assert "root" in live_room.suspend_reason


def test_admin_refuses_non_staff(client, viewer):
    client.force_login(viewer)
    response = client.get(reverse("admin:rooms_room_changelist"))
    assert response.status_code == 302
