"""Moderation over REST: who may do what (the matrix), what each act does, bad input."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.utils import timezone

from rooms.models import Ban, BannedWord, Comment, ModerationAction, Mute, Report, Room, RoomModerator
from tests import factories
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db

PERSONAS = ["anonymous", "viewer", "moderator", "other_moderator", "host", "other_host", "staff"]
ROOM_MODERATORS = {"moderator", "host", "staff"}


@pytest.fixture
def committed(django_capture_on_commit_callbacks: Any) -> Callable[..., Any]:
    """`with committed(): ...` runs the block's on-commit hooks as a commit would."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """What the acts send to sockets, recorded where it would leave for Redis."""
    sent: list[tuple[Any, ...]] = []
    monkeypatch.setattr("rooms.broadcast.room_publish", lambda room_id, kind, data: sent.append(("event", kind, data)))
    monkeypatch.setattr(
        "rooms.broadcast.room_user_send", lambda room_id, user_id, frame: sent.append(("send", user_id, frame))
    )
    monkeypatch.setattr(
        "rooms.broadcast.room_user_mute",
        lambda room_id, user_id, until, frame: sent.append(("send", user_id, frame)),
    )
    monkeypatch.setattr(
        "rooms.broadcast.room_user_close", lambda room_id, user_id, code=4403: sent.append(("close", user_id, code))
    )
    return sent


@dataclass
class Case:
    method: str
    path: str  # formatted with room, troll, comment, report, word
    allowed: set[str]
    success: int
    body: dict[str, Any] | None = None
    setup: Callable[[dict[str, Any]], None] | None = None
    done: Callable[[dict[str, Any]], bool] | None = None  # did the act happen?


def _mute(ctx: dict[str, Any]) -> None:
    Mute.objects.create(room=ctx["room"], user=ctx["troll"], until=timezone.now() + dt.timedelta(hours=1))


def _ban(ctx: dict[str, Any]) -> None:
    Ban.objects.create(room=ctx["room"], user=ctx["troll"])


def _make_moderator(ctx: dict[str, Any]) -> None:
    RoomModerator.objects.create(room=ctx["room"], user=ctx["troll"])


def _report(ctx: dict[str, Any]) -> None:
    ctx["report"] = Report.objects.create(
        comment=ctx["comment"], room=ctx["room"], reporter=ctx["reporter"], reason="spam"
    ).pk


def _word(ctx: dict[str, Any]) -> None:
    ctx["word"] = BannedWord.objects.create(word="counterfeit").pk


def _troll_moderates(ctx: dict[str, Any]) -> bool:
    return RoomModerator.objects.filter(room=ctx["room"], user=ctx["troll"]).exists()


def _troll_muted(ctx: dict[str, Any]) -> bool:
    return Mute.objects.filter(room=ctx["room"], user=ctx["troll"]).exists()


def _troll_banned(ctx: dict[str, Any]) -> bool:
    return Ban.objects.filter(room=ctx["room"], user=ctx["troll"]).exists()


def _comment_gone(ctx: dict[str, Any]) -> bool:
    return Comment.objects.get(pk=ctx["comment"].pk).deleted_at is not None


CASES = {
    "moderator_add": Case(
        "post", "/api/v1/rooms/{room}/moderators/", {"host"}, 201, {"user": "{troll}"}, done=_troll_moderates
    ),
    "moderator_remove": Case(
        "delete",
        "/api/v1/rooms/{room}/moderators/{troll}/",
        {"host"},
        204,
        setup=_make_moderator,
        done=lambda ctx: not _troll_moderates(ctx),
    ),
    "moderators_list": Case("get", "/api/v1/rooms/{room}/moderators/", ROOM_MODERATORS, 200),
    "mute": Case(
        "post",
        "/api/v1/rooms/{room}/mutes/",
        ROOM_MODERATORS,
        201,
        {"user": "{troll}", "duration_s": 600, "reason": "spam"},
        done=_troll_muted,
    ),
    "unmute": Case(
        "delete",
        "/api/v1/rooms/{room}/mutes/{troll}/",
        ROOM_MODERATORS,
        204,
        setup=_mute,
        done=lambda ctx: not _troll_muted(ctx),
    ),
    "mutes_list": Case("get", "/api/v1/rooms/{room}/mutes/", ROOM_MODERATORS, 200),
    "ban": Case("post", "/api/v1/rooms/{room}/bans/", ROOM_MODERATORS, 201, {"user": "{troll}"}, done=_troll_banned),
    "unban": Case(
        "delete",
        "/api/v1/rooms/{room}/bans/{troll}/",
        ROOM_MODERATORS,
        204,
        setup=_ban,
        done=lambda ctx: not _troll_banned(ctx),
    ),
    "bans_list": Case("get", "/api/v1/rooms/{room}/bans/", ROOM_MODERATORS, 200),
    "comment_delete": Case("delete", "/api/v1/comments/{comment}/", ROOM_MODERATORS, 204, done=_comment_gone),
    "comment_report": Case(
        "post",
        "/api/v1/comments/{comment}/reports/",
        set(PERSONAS) - {"anonymous"},
        201,
        {"reason": "It lies about the tea."},
        done=lambda ctx: Report.objects.exclude(reporter=ctx["reporter"]).exists(),
    ),
    "reports_queue": Case("get", "/api/v1/moderation/reports/", {"staff"}, 200),
    "report_resolve": Case(
        "post",
        "/api/v1/moderation/reports/{report}/resolve/",
        {"staff"},
        200,
        {"action": "dismiss"},
        setup=_report,
        done=lambda ctx: Report.objects.get(pk=ctx["report"]).status == "resolved",
    ),
    "banned_words_list": Case("get", "/api/v1/moderation/banned-words/", {"staff"}, 200),
    "banned_word_add": Case(
        "post",
        "/api/v1/moderation/banned-words/",
        {"staff"},
        201,
        {"word": "fake tea"},
        done=lambda ctx: BannedWord.objects.filter(word="fake tea").exists(),
    ),
    "banned_word_remove": Case(
        "delete",
        "/api/v1/moderation/banned-words/{word}/",
        {"staff"},
        204,
        setup=_word,
        done=lambda ctx: not BannedWord.objects.exists(),
    ),
    "audit": Case("get", "/api/v1/moderation/audit/", {"staff"}, 200),
}


def _fill(template: Any, ctx: dict[str, Any]) -> Any:
    values = {key: getattr(value, "pk", value) for key, value in ctx.items()}
    if isinstance(template, str):
        text = template.format(**values)
        return int(text) if template.startswith("{") and text.isdigit() else text
    if isinstance(template, dict):
        return {key: _fill(value, ctx) for key, value in template.items()}
    return template


@pytest.mark.parametrize("who", PERSONAS)
@pytest.mark.parametrize("case_name", list(CASES))
def test_authorization_matrix(
    client_for,
    persona,
    live_room,
    troll,
    troll_comment,
    moderator,
    other_moderator,
    published,
    committed,
    case_name,
    who,
):
    case = CASES[case_name]
    reporter = factories.UserFactory.create(username="reporter")
    ctx: dict[str, Any] = {"room": live_room, "troll": troll, "comment": troll_comment, "reporter": reporter}
    if case.setup:
        case.setup(ctx)
    audited_before = ModerationAction.objects.count()
    user = persona(who)

    with committed():
        response = getattr(client_for(user), case.method)(
            _fill(case.path, ctx), _fill(case.body, ctx) if case.body else None, format="json"
        )

    if who in case.allowed:
        assert response.status_code == case.success, response.content
    elif who == "anonymous":
        assert_error(response, 401, "not_authenticated")
    else:
        assert_error(response, 403, "permission_denied")
    if case.done is not None:
        assert case.done(ctx) is (who in case.allowed)
    if who not in case.allowed:
        assert ModerationAction.objects.count() == audited_before
        assert published == []
    elif case_name in ("mute", "unmute", "ban", "comment_delete"):
        assert len(published) == 1  # the sockets hear of it


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/rooms/{room}/mutes/",
        "/api/v1/rooms/{room}/bans/",
        "/api/v1/rooms/{room}/moderators/",
        "/api/v1/comments/{comment}/",
    ],
)
def test_suspended_room_is_not_found_for_others(client_for, viewer, moderator, live_room, troll_comment, path):
    """A suspended room is gone for everyone but its host and staff: 404, not 403."""
    Room.objects.filter(pk=live_room.pk).update(status=Room.Status.SUSPENDED)
    url = path.format(room=live_room.pk, comment=troll_comment.pk)
    method = "delete" if "comments" in url else "post"
    assert_error(getattr(client_for(viewer), method)(url, {}, format="json"), 404, "not_found")
    assert_error(client_for(viewer).get("/api/v1/rooms/999999/mutes/"), 404, "not_found")


# --- Room moderators -------------------------------------------------------------------------------


def test_moderator_appointment(client_for, host, live_room, troll):
    client = client_for(host)
    first = client.post(f"/api/v1/rooms/{live_room.pk}/moderators/", {"user": troll.pk}, format="json")
    again = client.post(f"/api/v1/rooms/{live_room.pk}/moderators/", {"user": troll.pk}, format="json")
    assert first.status_code == 201
    assert again.status_code == 200
    assert first.json()["user"] == {"id": troll.pk, "display_name": "Troll Ma"}
    assert RoomModerator.objects.filter(room=live_room, user=troll).count() == 1
    assert ModerationAction.objects.filter(action="moderator_add").count() == 1

    listed = client.get(f"/api/v1/rooms/{live_room.pk}/moderators/").json()
    assert [m["user"]["id"] for m in listed["results"]] == [troll.pk]

    # The new moderator may now mute in this room.
    viewer = factories.UserFactory.create()
    muted = client_for(troll).post(
        f"/api/v1/rooms/{live_room.pk}/mutes/", {"user": viewer.pk, "duration_s": 60}, format="json"
    )
    assert muted.status_code == 201

    assert client.delete(f"/api/v1/rooms/{live_room.pk}/moderators/{troll.pk}/").status_code == 204
    assert_error(client.delete(f"/api/v1/rooms/{live_room.pk}/moderators/{troll.pk}/"), 404, "not_found")
    assert_error(client.delete(f"/api/v1/rooms/{live_room.pk}/moderators/999999/"), 404, "not_found")


@pytest.mark.parametrize(
    "body",
    [{}, {"user": None}, {"user": "abc"}, {"user": 999999}, {"user": [1]}, {"user": True}],
)
def test_moderator_add_bad_input(client_for, host, live_room, body):
    response = client_for(host).post(f"/api/v1/rooms/{live_room.pk}/moderators/", body, format="json")
    assert_error(response, 400, "invalid")
    assert not RoomModerator.objects.exists()


def test_moderator_add_refuses_the_host_and_banned_users(client_for, host, live_room, troll):
    client = client_for(host)
    body = assert_error(
        client.post(f"/api/v1/rooms/{live_room.pk}/moderators/", {"user": host.pk}, format="json"), 400, "invalid"
    )
    assert "user" in body["fields"]
    Ban.objects.create(room=live_room, user=troll)
    assert_error(
        client.post(f"/api/v1/rooms/{live_room.pk}/moderators/", {"user": troll.pk}, format="json"), 409, "conflict"
    )
    assert not RoomModerator.objects.exists()
    assert not ModerationAction.objects.exists()


# --- Mutes -------------------------------------------------------------------------------------------


def test_mute_tells_the_user_and_is_audited(client_for, moderator, live_room, troll, published, committed):
    url = f"/api/v1/rooms/{live_room.pk}/mutes/"
    before = timezone.now()
    with committed():
        response = client_for(moderator).post(
            url, {"user": troll.pk, "duration_s": 600, "reason": "spam"}, format="json"
        )
    assert response.status_code == 201
    mute = Mute.objects.get()
    assert before + dt.timedelta(seconds=600) <= mute.until <= timezone.now() + dt.timedelta(seconds=600)
    body = response.json()
    assert body["user"] == {"id": troll.pk, "display_name": "Troll Ma"}
    assert (body["room"], body["reason"], body["created_by"]) == (live_room.pk, "spam", moderator.pk)
    until = mute.until.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert published == [
        (
            "send",
            troll.pk,
            {"type": "moderation.muted", "data": {"room": live_room.pk, "until": until, "reason": "spam"}},
        )
    ]
    entry = ModerationAction.objects.get()
    assert (entry.actor, entry.action, entry.target_user, entry.room, entry.reason) == (
        moderator,
        "mute",
        troll,
        live_room,
        "spam",
    )
    assert entry.details == {"duration_s": 600, "until": until}

    # A new mute replaces the last; the active list shows one.
    client_for(moderator).post(
        f"/api/v1/rooms/{live_room.pk}/mutes/", {"user": troll.pk, "duration_s": 60}, format="json"
    )
    listed = client_for(moderator).get(f"/api/v1/rooms/{live_room.pk}/mutes/").json()
    assert listed["count"] == 1
    assert Mute.objects.get().reason == ""

    with committed():
        assert client_for(moderator).delete(f"/api/v1/rooms/{live_room.pk}/mutes/{troll.pk}/").status_code == 204
    assert published[-1] == ("send", troll.pk, {"type": "moderation.unmuted", "data": {"room": live_room.pk}})
    assert_error(client_for(moderator).delete(f"/api/v1/rooms/{live_room.pk}/mutes/{troll.pk}/"), 404, "not_found")
    assert list(ModerationAction.objects.order_by("id").values_list("action", flat=True)) == ["mute", "mute", "unmute"]


@pytest.mark.parametrize(
    "body",
    [
        {"duration_s": 60},
        {"user": "{troll}"},
        {"user": "{troll}", "duration_s": 0},
        {"user": "{troll}", "duration_s": -5},
        {"user": "{troll}", "duration_s": 366 * 24 * 3600},
        {"user": "{troll}", "duration_s": "soon"},
        {"user": "{troll}", "duration_s": 60, "reason": "r" * 501},
        {"user": 999999, "duration_s": 60},
        {"user": "{host}", "duration_s": 60},
        {"user": "{staff}", "duration_s": 60},
        {"user": "{moderator}", "duration_s": 60},
    ],
)
def test_mute_bad_input(client_for, moderator, host, staff, live_room, troll, body, published, committed):
    ctx = {"troll": troll, "host": host, "staff": staff, "moderator": moderator}
    with committed():
        response = client_for(moderator).post(f"/api/v1/rooms/{live_room.pk}/mutes/", _fill(body, ctx), format="json")
    assert_error(response, 400, "invalid")
    assert not Mute.objects.exists()
    assert published == []


def test_a_moderator_cannot_silence_another_but_the_host_can(client_for, host, moderator, live_room):
    second = factories.UserFactory.create()
    RoomModerator.objects.create(room=live_room, user=second)
    url = f"/api/v1/rooms/{live_room.pk}/mutes/"
    assert_error(
        client_for(moderator).post(url, {"user": second.pk, "duration_s": 60}, format="json"),
        403,
        "permission_denied",
    )
    assert client_for(host).post(url, {"user": second.pk, "duration_s": 60}, format="json").status_code == 201


# --- Bans --------------------------------------------------------------------------------------------


def test_ban_closes_the_sockets_and_is_audited_once(client_for, staff, live_room, troll, published, committed):
    RoomModerator.objects.create(room=live_room, user=troll)
    url = f"/api/v1/rooms/{live_room.pk}/bans/"
    with committed():
        first = client_for(staff).post(url, {"user": troll.pk, "reason": "abuse"}, format="json")
        again = client_for(staff).post(url, {"user": troll.pk}, format="json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert published == [("close", troll.pk, 4403)]
    assert not RoomModerator.objects.exists()  # a banned moderator stops being one
    assert list(ModerationAction.objects.values_list("action", "reason")) == [("ban", "abuse")]
    # Banned users get no ticket to the room's socket.
    assert_error(client_for(troll).post(f"/api/v1/rooms/{live_room.pk}/ws-ticket/"), 403, "banned")

    assert client_for(staff).delete(f"{url}{troll.pk}/").status_code == 204
    assert client_for(troll).post(f"/api/v1/rooms/{live_room.pk}/ws-ticket/").status_code == 201
    assert_error(client_for(staff).delete(f"{url}{troll.pk}/"), 404, "not_found")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"user": "x"},
        {"user": 999999},
        {"user": "{troll}", "reason": "r" * 501},
        {"user": "{host}"},
        {"user": "{me}"},
    ],
)
def test_ban_bad_input(client_for, moderator, host, live_room, troll, body, published, committed):
    with committed():
        response = client_for(moderator).post(
            f"/api/v1/rooms/{live_room.pk}/bans/",
            _fill(body, {"troll": troll, "host": host, "me": moderator}),
            format="json",
        )
    assert_error(response, 400, "invalid")
    assert not Ban.objects.exists()
    assert published == []


# --- Comments -----------------------------------------------------------------------------------------


def test_author_deletes_own_comment_without_audit(client_for, troll, troll_comment, published, committed):
    with committed():
        assert client_for(troll).delete(f"/api/v1/comments/{troll_comment.pk}/").status_code == 204
    assert published == [("event", "comment.deleted", {"id": troll_comment.pk})]
    assert not ModerationAction.objects.exists()
    assert_error(client_for(troll).delete(f"/api/v1/comments/{troll_comment.pk}/"), 404, "not_found")
    assert_error(client_for(troll).delete("/api/v1/comments/999999/"), 404, "not_found")


def test_moderator_deletion_is_audited_and_settles_reports(client_for, moderator, viewer, troll_comment, published):
    client_for(viewer).post(f"/api/v1/comments/{troll_comment.pk}/reports/", {"reason": "lies"}, format="json")
    assert client_for(moderator).delete(f"/api/v1/comments/{troll_comment.pk}/").status_code == 204
    entry = ModerationAction.objects.get()
    assert (entry.action, entry.comment_id, entry.target_user_id) == (
        "comment_delete",
        troll_comment.pk,
        troll_comment.user_id,
    )
    assert entry.details == {"text": "fake tea, do not buy"}
    report = Report.objects.get()
    assert (report.status, report.resolution, report.resolved_by) == ("resolved", "delete_comment", moderator)
    # Gone from the history.
    history = client_for(None).get(f"/api/v1/rooms/{troll_comment.room_id}/comments/").json()
    assert history["results"] == []


# --- Reports and the staff queue ---------------------------------------------------------------------


def test_report_once_per_user(client_for, viewer, troll, troll_comment):
    url = f"/api/v1/comments/{troll_comment.pk}/reports/"
    first = client_for(viewer).post(url, {"reason": "lies about the tea"}, format="json")
    again = client_for(viewer).post(url, {"reason": "still lying"}, format="json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == {
        "id": again.json()["id"],
        "comment": troll_comment.pk,
        "reason": "lies about the tea",
        "status": "open",
        "created_at": first.json()["created_at"],
    }
    assert_error(client_for(troll).post(url, {"reason": "mine"}, format="json"), 400, "invalid")


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "   "}, {"reason": "r" * 501}, {"reason": ["x"]}])
def test_report_bad_input(client_for, viewer, troll_comment, body):
    response = client_for(viewer).post(f"/api/v1/comments/{troll_comment.pk}/reports/", body, format="json")
    assert_error(response, 400, "invalid")
    assert not Report.objects.exists()


def test_report_of_a_removed_comment_is_not_found(client_for, viewer, troll_comment):
    Comment.objects.filter(pk=troll_comment.pk).update(deleted_at=timezone.now())
    response = client_for(viewer).post(f"/api/v1/comments/{troll_comment.pk}/reports/", {"reason": "x"}, format="json")
    assert_error(response, 404, "not_found")


@pytest.fixture
def two_reports(client_for, viewer, other_host, troll_comment) -> list[int]:
    return [
        client_for(user)
        .post(f"/api/v1/comments/{troll_comment.pk}/reports/", {"reason": why}, format="json")
        .json()["id"]
        for user, why in ((viewer, "lies"), (other_host, "spam"))
    ]


def test_report_queue_shape_and_filters(client_for, staff, two_reports, troll, troll_comment, live_room):
    queue = client_for(staff).get("/api/v1/moderation/reports/").json()
    assert queue["count"] == 2
    first = queue["results"][0]
    assert first["id"] == two_reports[0]
    assert first["comment"] == {
        "id": troll_comment.pk,
        "room": live_room.pk,
        "user": {"id": troll.pk, "display_name": "Troll Ma"},
        "text": "fake tea, do not buy",
        "created_at": first["comment"]["created_at"],
        "deleted": False,
    }
    assert (first["room"], first["reason"], first["status"], first["resolution"], first["resolved_by"]) == (
        live_room.pk,
        "lies",
        "open",
        "",
        None,
    )
    assert client_for(staff).get(f"/api/v1/moderation/reports/?room={live_room.pk + 1}").json()["count"] == 0
    assert client_for(staff).get("/api/v1/moderation/reports/?status=resolved").json()["count"] == 0
    for bad in ("?status=closed", "?room=abc", "?room=0"):
        assert_error(client_for(staff).get(f"/api/v1/moderation/reports/{bad}"), 400, "invalid")


@pytest.mark.parametrize(
    ("action", "effect"),
    [
        ("dismiss", lambda room, troll, comment: not Comment.objects.filter(deleted_at__isnull=False).exists()),
        ("delete_comment", lambda room, troll, comment: Comment.objects.get(pk=comment.pk).deleted_at is not None),
        ("mute", lambda room, troll, comment: Mute.objects.filter(room=room, user=troll).exists()),
        ("ban", lambda room, troll, comment: Ban.objects.filter(room=room, user=troll).exists()),
    ],
)
def test_resolve_settles_every_report_of_the_comment(
    client_for, staff, two_reports, live_room, troll, troll_comment, published, action, effect
):
    response = client_for(staff).post(
        f"/api/v1/moderation/reports/{two_reports[1]}/resolve/", {"action": action, "reason": "seen"}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["resolution"], body["resolved_by"]) == (
        "resolved",
        action,
        {"id": staff.pk, "display_name": "Admin Wang"},
    )
    assert effect(live_room, troll, troll_comment)
    assert set(Report.objects.values_list("status", "resolution")) == {("resolved", action)}
    resolution = ModerationAction.objects.get(action="report_resolve")
    assert resolution.details == {"resolution": action, "reports": sorted(two_reports)}
    assert (resolution.target_user, resolution.comment_id, resolution.reason) == (troll, troll_comment.pk, "seen")
    if action == "mute":
        mute = Mute.objects.get()
        assert abs((mute.until - timezone.now()).total_seconds() - 24 * 3600) < 60  # the default day
    assert_error(
        client_for(staff).post(
            f"/api/v1/moderation/reports/{two_reports[0]}/resolve/", {"action": "ban"}, format="json"
        ),
        409,
        "conflict",
    )


@pytest.mark.parametrize(
    "body", [{}, {"action": "nuke"}, {"action": "mute", "duration_s": 0}, {"action": "dismiss", "reason": "r" * 501}]
)
def test_resolve_bad_input(client_for, staff, two_reports, body):
    response = client_for(staff).post(f"/api/v1/moderation/reports/{two_reports[0]}/resolve/", body, format="json")
    assert_error(response, 400, "invalid")
    assert set(Report.objects.values_list("status", flat=True)) == {"open"}
    assert_error(
        client_for(staff).post("/api/v1/moderation/reports/999999/resolve/", {"action": "dismiss"}, format="json"),
        404,
        "not_found",
    )


def test_resolve_that_the_act_refuses_leaves_the_reports_open(client_for, staff, viewer, host, live_room):
    """The host cannot be banned from its own room: nothing is resolved, nothing audited."""
    comment = Comment.objects.create(room=live_room, user=host, text="buy now")
    report_id = (
        client_for(viewer).post(f"/api/v1/comments/{comment.pk}/reports/", {"reason": "ad"}, format="json").json()["id"]
    )
    response = client_for(staff).post(
        f"/api/v1/moderation/reports/{report_id}/resolve/", {"action": "ban"}, format="json"
    )
    assert_error(response, 400, "invalid")
    assert Report.objects.get().status == "open"
    assert not Ban.objects.exists()
    assert not ModerationAction.objects.exists()


# --- Banned words -------------------------------------------------------------------------------------


def test_banned_words(client_for, staff):
    client = client_for(staff)
    created = client.post("/api/v1/moderation/banned-words/", {"word": "  Fake   Tea "}, format="json")
    assert created.status_code == 201
    word_id = created.json()["id"]
    assert created.json() == {"id": word_id, "word": "Fake Tea"}
    # The same word in another case or width is the same word to the check.
    assert_error(
        client.post("/api/v1/moderation/banned-words/", {"word": "\uff26\uff21\uff2b\uff25 tea"}, format="json"),
        409,
        "conflict",
    )
    assert client.get("/api/v1/moderation/banned-words/").json()["results"] == [{"id": word_id, "word": "Fake Tea"}]
    assert client.delete(f"/api/v1/moderation/banned-words/{word_id}/").status_code == 204
    assert_error(client.delete(f"/api/v1/moderation/banned-words/{word_id}/"), 404, "not_found")
    assert list(ModerationAction.objects.order_by("id").values_list("action", "details")) == [
        ("banned_word_add", {"word": "Fake Tea"}),
        ("banned_word_remove", {"word": "Fake Tea"}),
    ]


@pytest.mark.parametrize(
    "body", [{}, {"word": ""}, {"word": "   "}, {"word": "w" * 101}, {"word": ["x"]}, {"word": None}]
)
def test_banned_word_bad_input(client_for, staff, body):
    assert_error(client_for(staff).post("/api/v1/moderation/banned-words/", body, format="json"), 400, "invalid")
    assert not BannedWord.objects.exists()


# --- The audit log --------------------------------------------------------------------------------------


def test_audit_log_shape_and_filters(client_for, staff, host, moderator, live_room, troll, troll_comment):
    client_for(moderator).post(
        f"/api/v1/rooms/{live_room.pk}/mutes/", {"user": troll.pk, "duration_s": 60, "reason": "flood"}, format="json"
    )
    client_for(host).delete(f"/api/v1/comments/{troll_comment.pk}/")
    client_for(staff).post(f"/api/v1/rooms/{live_room.pk}/suspend/", {"reason": "fraud"}, format="json")
    client_for(staff).post(f"/api/v1/hosts/{host.host.pk}/verify/")  # verified already: no act, no entry

    log = client_for(staff).get("/api/v1/moderation/audit/").json()
    assert [e["action"] for e in log["results"]] == ["room_suspend", "comment_delete", "mute"]
    mute = log["results"][2]
    assert set(mute) == {"id", "actor", "action", "target_user", "room", "comment", "reason", "details", "created_at"}
    assert mute["actor"] == {"id": moderator.pk, "display_name": "Moderator Xu"}
    assert mute["target_user"] == {"id": troll.pk, "display_name": "Troll Ma"}
    assert (mute["room"], mute["comment"], mute["reason"]) == (live_room.pk, None, "flood")
    assert mute["created_at"].endswith("Z")
    suspend = log["results"][0]
    assert (suspend["target_user"], suspend["reason"], suspend["actor"]["id"]) == (None, "fraud", staff.pk)
    assert log["results"][1]["comment"] == troll_comment.pk

    def count(query: str) -> int:
        return client_for(staff).get(f"/api/v1/moderation/audit/?{query}").json()["count"]

    assert count(f"room={live_room.pk}") == 3
    assert count("action=mute") == 1
    assert count(f"actor={host.pk}") == 1
    assert count(f"target_user={troll.pk}") == 2
    for bad in ("action=explode", "room=x", "actor=-1"):
        assert_error(client_for(staff).get(f"/api/v1/moderation/audit/?{bad}"), 400, "invalid")


def test_unverified_host_verification_is_audited(client_for, staff, unverified_host):
    host_id = unverified_host.host.pk
    assert client_for(staff).post(f"/api/v1/hosts/{host_id}/verify/").status_code == 200
    entry = ModerationAction.objects.get()
    assert (entry.actor, entry.action, entry.target_user) == (staff, "host_verify", unverified_host)


# --- New-account protection (the room setting) --------------------------------------------------------


def test_new_account_protection_is_a_room_setting(client_for, host, viewer, live_room):
    url = f"/api/v1/rooms/{live_room.pk}/"
    response = client_for(host).patch(url, {"comment_min_account_age_s": 600}, format="json")
    assert response.status_code == 200
    assert response.json()["comment_min_account_age_s"] == 600
    assert client_for(viewer).get(url).json()["comment_min_account_age_s"] == 600
    assert_error(
        client_for(viewer).patch(url, {"comment_min_account_age_s": 0}, format="json"), 403, "permission_denied"
    )
    for bad in (-1, 31 * 24 * 3600, "ten", None):
        assert_error(client_for(host).patch(url, {"comment_min_account_age_s": bad}, format="json"), 400, "invalid")
    assert Room.objects.get(pk=live_room.pk).comment_min_account_age_s == 600
