"""Moderation from the Django admin: the same acts as the API, audited, refusals on the form."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from rooms.models import Ban, BannedWord, Comment, Host, ModerationAction, Mute, Report, Room, RoomModerator

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_for(client: Any, staff: Any) -> Any:
    staff.is_superuser = True
    staff.save(update_fields=["is_superuser"])
    client.force_login(staff)
    return client


@pytest.fixture
def committed(django_capture_on_commit_callbacks: Any) -> Any:
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def closes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    sent: list[tuple[int, int]] = []
    monkeypatch.setattr(
        "rooms.broadcast.room_user_close", lambda room_id, user_id, code=4403: sent.append((user_id, code))
    )
    return sent


def _action(client: Any, model: str, action: str, ids: list[int]) -> Any:
    return client.post(
        reverse(f"admin:rooms_{model}_changelist"), {"action": action, "_selected_action": ids}, follow=True
    )


@pytest.mark.parametrize(
    ("action", "effect"),
    [
        ("dismiss", lambda room, troll, comment: Comment.objects.get(pk=comment.pk).deleted_at is None),
        ("delete_comment", lambda room, troll, comment: Comment.objects.get(pk=comment.pk).deleted_at is not None),
        ("mute_author", lambda room, troll, comment: Mute.objects.filter(room=room, user=troll).exists()),
        ("ban_author", lambda room, troll, comment: Ban.objects.filter(room=room, user=troll).exists()),
    ],
)
def test_report_queue_actions(
    admin_client_for, staff, viewer, other_host, live_room, troll, troll_comment, action, effect
):
    reports = [
        Report.objects.create(comment=troll_comment, room=live_room, reporter=user, reason="spam").pk
        for user in (viewer, other_host)
    ]
    changelist = admin_client_for.get(reverse("admin:rooms_report_changelist"))
    assert changelist.status_code == 200
    assert "fake tea, do not buy" in changelist.content.decode()

    assert _action(admin_client_for, "report", action, reports).status_code == 200

    assert effect(live_room, troll, troll_comment)
    assert set(Report.objects.values_list("status", "resolved_by")) == {("resolved", staff.pk)}
    assert ModerationAction.objects.filter(action="report_resolve", actor=staff).count() == 1


def test_report_action_refused_by_the_act_is_reported_not_applied(admin_client_for, viewer, host, live_room):
    comment = Comment.objects.create(room=live_room, user=host, text="buy now")
    report = Report.objects.create(comment=comment, room=live_room, reporter=viewer, reason="ad")
    page = _action(admin_client_for, "report", "ban_author", [report.pk]).content.decode()
    assert "Not resolved" in page
    assert Report.objects.get().status == "open"
    assert not Ban.objects.exists()


def test_ban_from_the_admin_closes_sockets_and_audits(admin_client_for, staff, live_room, troll, closes, committed):
    url = reverse("admin:rooms_ban_add")
    assert admin_client_for.get(url).status_code == 200
    with committed():
        response = admin_client_for.post(url, {"room": live_room.pk, "user": troll.pk, "reason": "abuse"})
    assert response.status_code == 302
    ban = Ban.objects.get()
    assert (ban.created_by, ban.reason) == (staff, "abuse")
    assert closes == [(troll.pk, 4403)]
    assert ModerationAction.objects.get().action == "ban"

    with committed():
        admin_client_for.post(reverse("admin:rooms_ban_delete", args=[ban.pk]), {"post": "yes"})
    assert not Ban.objects.exists()
    assert list(ModerationAction.objects.order_by("id").values_list("action", flat=True)) == ["ban", "unban"]


def test_admin_ban_of_the_host_is_refused_on_the_form(admin_client_for, host, live_room, closes):
    response = admin_client_for.post(reverse("admin:rooms_ban_add"), {"room": live_room.pk, "user": host.pk})
    assert response.status_code == 200
    assert "The room&#x27;s host cannot be banned." in response.content.decode()
    assert not Ban.objects.exists()
    assert closes == []


def test_mute_and_moderator_from_the_admin(admin_client_for, staff, live_room, troll):
    response = admin_client_for.post(
        reverse("admin:rooms_mute_add"), {"room": live_room.pk, "user": troll.pk, "duration_s": 900, "reason": "flood"}
    )
    assert response.status_code == 302
    assert Mute.objects.get().created_by == staff
    response = admin_client_for.post(reverse("admin:rooms_roommoderator_add"), {"room": live_room.pk, "user": troll.pk})
    assert response.status_code == 302
    moderator = RoomModerator.objects.get()
    admin_client_for.post(reverse("admin:rooms_roommoderator_delete", args=[moderator.pk]), {"post": "yes"})
    assert not RoomModerator.objects.exists()
    assert list(ModerationAction.objects.order_by("id").values_list("action", flat=True)) == [
        "mute",
        "moderator_add",
        "moderator_remove",
    ]


def test_banned_words_from_the_admin(admin_client_for):
    url = reverse("admin:rooms_bannedword_add")
    assert admin_client_for.post(url, {"word": "Fake  Tea"}).status_code == 302
    duplicate = admin_client_for.post(url, {"word": "fake tea"})
    assert duplicate.status_code == 200
    assert "banned already" in duplicate.content.decode()
    word = BannedWord.objects.get()
    assert word.word == "Fake Tea"
    response = admin_client_for.post(
        reverse("admin:rooms_bannedword_changelist"),
        {"action": "delete_selected", "_selected_action": [word.pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert not BannedWord.objects.exists()
    assert list(ModerationAction.objects.order_by("id").values_list("action", flat=True)) == [
        "banned_word_add",
        "banned_word_remove",
    ]


def test_comment_removal_action(admin_client_for, staff, troll_comment):
    _action(admin_client_for, "comment", "remove_comments", [troll_comment.pk])
    assert Comment.objects.get().deleted_at is not None
    entry = ModerationAction.objects.get()
    assert (entry.action, entry.actor, entry.comment_id) == ("comment_delete", staff, troll_comment.pk)


def test_suspension_and_verification_are_audited(admin_client_for, staff, live_room, unverified_host):
    _action(admin_client_for, "room", "suspend", [live_room.pk])
    _action(admin_client_for, "host", "verify", [unverified_host.host.pk])
    assert Room.objects.get(pk=live_room.pk).status == "suspended"
    assert Host.objects.get(pk=unverified_host.host.pk).verified
    assert set(ModerationAction.objects.values_list("action", "actor")) == {
        ("room_suspend", staff.pk),
        ("host_verify", staff.pk),
    }


def test_audit_log_is_read_only(admin_client_for, staff, live_room):
    entry = ModerationAction.objects.create(actor=staff, action="ban", room=live_room, reason="x")
    assert admin_client_for.get(reverse("admin:rooms_moderationaction_changelist")).status_code == 200
    assert admin_client_for.get(reverse("admin:rooms_moderationaction_add")).status_code == 403
    view = admin_client_for.get(reverse("admin:rooms_moderationaction_change", args=[entry.pk]))
    assert view.status_code == 200
    assert 'name="_save"' not in view.content.decode()
    assert admin_client_for.post(reverse("admin:rooms_moderationaction_delete", args=[entry.pk])).status_code == 403
    assert ModerationAction.objects.count() == 1
