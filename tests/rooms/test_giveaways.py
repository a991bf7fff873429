"""Giveaways: start with a commitment and a held prize, entries by REST and by keyword
comment, the rules at entry and at the draw, the fair draw, cancel, the sweeper."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from catalog.models import Sku
from rooms import services
from rooms.models import Ban, Comment, Giveaway, GiveawayEntry, GiveawayWinner, Room
from rooms.selectors_gifts import room_giveaways_public
from tests import factories
from tests.coins import close, giveaway
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, str, dict[str, Any]]]:
    events: list[tuple[int, str, dict[str, Any]]] = []

    def record(room_id: int, event_type: str, data: dict[str, Any]) -> int:
        events.append((room_id, event_type, data))
        return len(events)

    monkeypatch.setattr("rooms.broadcast.room_publish", record)
    return events


@pytest.fixture
def committed(django_capture_on_commit_callbacks: Any) -> Any:
    return lambda: django_capture_on_commit_callbacks(execute=True)


def fans(count: int, **kwargs: Any) -> list[Any]:
    return [factories.UserFactory.create(**kwargs) for _ in range(count)]


def contract_winners(seed_hex: str, user_ids: list[int], n: int) -> list[int]:
    # The contract's words, recomputed here without rooms.fairness.
    keyed = sorted((hashlib.sha256(f"{seed_hex}:{uid}".encode()).hexdigest(), uid) for uid in set(user_ids))
    return [uid for _, uid in keyed[:n]]


def start(client: Any, room: Room, body: dict[str, Any]) -> Any:
    return client.post(f"/api/v1/rooms/{room.pk}/giveaways/", body, format="json")


def enter(client: Any, giveaway_id: int) -> Any:
    return client.post(f"/api/v1/giveaways/{giveaway_id}/entries/")


# --- Start ------------------------------------------------------------------------------------


def test_host_starts_a_giveaway_with_a_commitment_and_holds_the_prize(
    client_for, host, live_room, sku, committed, published
):
    with committed():
        response = start(
            client_for(host),
            live_room,
            {
                "title": "Three tins of black tea",
                "prize_sku": sku.pk,
                "winners": 3,
                "duration_s": 120,
                "keyword": " Tea ",
            },
        )

    assert response.status_code == 201, response.content
    body = response.json()
    created = Giveaway.objects.get()
    assert body["id"] == created.pk
    assert body["status"] == "open"
    assert body["commitment"] == hashlib.sha256(created.seed.encode()).hexdigest()
    assert len(created.seed) == 64
    assert body["seed"] is None  # secret until the draw
    assert body["winners"] == []
    assert (body["winners_count"], body["entries"], body["keyword"]) == (3, 0, "Tea")
    assert body["prize"] == {"sku": sku.pk, "title": "Xiannv Black Tea / 250 g tin"}
    closes_in = created.closes_at - timezone.now()
    assert timedelta(seconds=118) < closes_in <= timedelta(seconds=120)
    assert Sku.objects.get(pk=sku.pk).stock == 47  # one unit per winner, held
    assert published == [(live_room.pk, "giveaway.started", {"giveaway": body})]
    assert created.seed not in str(published)


def test_without_a_prize_nothing_is_held(client_for, host, live_room, sku):
    response = start(client_for(host), live_room, {"title": "A shout-out", "winners": 1, "duration_s": 30})
    assert response.status_code == 201
    assert response.json()["prize"] is None
    assert Sku.objects.get(pk=sku.pk).stock == 50


def test_start_authorization_matrix(client_for, persona, live_room):
    body = {"title": "Tea", "winners": 1, "duration_s": 30}
    expected = {"anonymous": 401, "viewer": 403, "host": 201, "other_host": 403, "staff": 403}
    for name, status in expected.items():
        assert start(client_for(persona(name)), live_room, body).status_code == status, name
    assert Giveaway.objects.count() == 1


def test_giveaways_only_in_a_live_room(client_for, host, room):
    body = {"title": "Tea", "winners": 1, "duration_s": 30}
    assert_error(start(client_for(host), room, body), 409, "room_not_live")  # scheduled
    Room.objects.filter(pk=room.pk).update(status=Room.Status.ENDED)
    assert_error(start(client_for(host), room, body), 409, "room_not_live")
    assert not Giveaway.objects.exists()


def test_a_prize_needs_enough_free_units(client_for, host, live_room, sku):
    Sku.objects.filter(pk=sku.pk).update(stock=2)
    body = {"title": "Tea", "prize_sku": sku.pk, "winners": 3, "duration_s": 30}
    assert_error(start(client_for(host), live_room, body), 409, "out_of_stock")
    assert Sku.objects.get(pk=sku.pk).stock == 2
    assert not Giveaway.objects.exists()


def test_a_prize_must_come_from_the_hosts_own_shop(client_for, host, live_room):
    someone_elses = factories.SkuFactory.create(stock=10)
    body = {"title": "Tea", "prize_sku": someone_elses.pk, "winners": 1, "duration_s": 30}
    response = start(client_for(host), live_room, body)
    assert_error(response, 400, "invalid")
    assert "prize_sku" in response.json()["fields"]
    assert Sku.objects.get(pk=someone_elses.pk).stock == 10


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"title": "", "winners": 1, "duration_s": 30},
        {"title": "   ", "winners": 1, "duration_s": 30},
        {"title": "x" * 121, "winners": 1, "duration_s": 30},
        {"title": "Tea", "winners": 0, "duration_s": 30},
        {"title": "Tea", "winners": 101, "duration_s": 30},
        {"title": "Tea", "winners": "two", "duration_s": 30},
        {"title": "Tea", "winners": 1, "duration_s": 4},
        {"title": "Tea", "winners": 1, "duration_s": 86401},
        {"title": "Tea", "winners": 1},
        {"title": "Tea", "winners": 1, "duration_s": 30, "keyword": "k" * 31},
        {"title": "Tea", "winners": 1, "duration_s": 30, "min_account_age_s": -1},
        {"title": "Tea", "winners": 1, "duration_s": 30, "followers_only": "maybe"},
        {"title": "Tea", "winners": 1, "duration_s": 30, "prize_sku": 999_999},
        {"title": "Tea", "winners": 1, "duration_s": 30, "prize_sku": "tea"},
    ],
)
def test_bad_giveaways_are_400_and_start_nothing(client_for, host, live_room, body):
    assert_error(start(client_for(host), live_room, body), 400, "invalid")
    assert not Giveaway.objects.exists()


def test_unknown_room_is_404(client_for, host):
    assert_error(
        start(client_for(host), Room(pk=999_999), {"title": "Tea", "winners": 1, "duration_s": 30}), 404, "not_found"
    )


# --- Reading ----------------------------------------------------------------------------------


def test_anyone_reads_a_giveaway_and_its_entries(client_for, live_room, viewer):
    created = giveaway(live_room)
    services.giveaway_enter(giveaway=created, user=viewer)
    detail = client_for(None).get(f"/api/v1/giveaways/{created.pk}/").json()
    assert (detail["id"], detail["room"], detail["entries"], detail["seed"]) == (created.pk, live_room.pk, 1, None)
    entries = client_for(None).get(f"/api/v1/giveaways/{created.pk}/entries/").json()
    assert entries["count"] == 1
    assert entries["results"][0]["user_id"] == viewer.pk
    assert set(entries["results"][0]) == {"user_id", "entered_at", "via", "eligible", "excluded_reason"}
    assert_error(client_for(None).get("/api/v1/giveaways/999999/"), 404, "not_found")
    assert_error(client_for(None).get("/api/v1/giveaways/999999/entries/"), 404, "not_found")


def test_giveaways_of_a_suspended_room_are_hidden_like_the_room(client_for, live_room, viewer, host, staff):
    created = giveaway(live_room)
    Room.objects.filter(pk=live_room.pk).update(status=Room.Status.SUSPENDED)
    assert_error(client_for(viewer).get(f"/api/v1/giveaways/{created.pk}/"), 404, "not_found")
    for user in (host, staff):
        assert client_for(user).get(f"/api/v1/giveaways/{created.pk}/").status_code == 200


def test_a_rooms_giveaways_are_listed(client_for, live_room):
    first, second = giveaway(live_room), giveaway(live_room, title="Second")
    services.giveaway_cancel(giveaway=first)
    page = client_for(None).get(f"/api/v1/rooms/{live_room.pk}/giveaways/").json()
    assert [g["id"] for g in page["results"]] == [second.pk]


def test_entries_are_paginated_for_the_verifier(client_for, live_room):
    created = giveaway(live_room)
    for fan in fans(25):
        services.giveaway_enter(giveaway=created, user=fan)
    client = client_for(None)
    first = client.get(f"/api/v1/giveaways/{created.pk}/entries/").json()
    assert (first["count"], len(first["results"]), first["next"] is not None) == (25, 20, True)
    big = client.get(f"/api/v1/giveaways/{created.pk}/entries/?page_size=1000").json()
    assert (len(big["results"]), big["next"]) == (25, None)


# --- Entries ----------------------------------------------------------------------------------


def test_entry_is_201_then_200_and_counts_once(client_for, live_room, viewer):
    created = giveaway(live_room)
    first = enter(client_for(viewer), created.pk)
    again = enter(client_for(viewer), created.pk)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json()
    assert first.json()["via"] == "api"
    assert GiveawayEntry.objects.count() == 1


def test_entry_authorization_matrix(client_for, persona, live_room):
    created = giveaway(live_room)
    expected = {"anonymous": 401, "viewer": 201, "host": 403, "other_host": 201, "staff": 201}
    for name, status in expected.items():
        assert enter(client_for(persona(name)), created.pk).status_code == status, name
    assert GiveawayEntry.objects.count() == 3


def test_closed_giveaways_refuse_entries(client_for, live_room, viewer, other_host):
    created = giveaway(live_room)
    close(created)  # past its close, not drawn yet
    assert_error(enter(client_for(viewer), created.pk), 409, "conflict")
    Giveaway.objects.filter(pk=created.pk).update(status=Giveaway.Status.DRAWN)
    assert_error(enter(client_for(viewer), created.pk), 409, "conflict")
    cancelled = giveaway(live_room)
    services.giveaway_cancel(giveaway=cancelled)
    assert_error(enter(client_for(other_host), cancelled.pk), 409, "conflict")
    assert_error(enter(client_for(viewer), 999_999), 404, "not_found")
    assert not GiveawayEntry.objects.exists()


def test_no_entries_once_the_show_is_over(client_for, live_room, viewer):
    created = giveaway(live_room)
    Room.objects.filter(pk=live_room.pk).update(status=Room.Status.ENDED)
    assert_error(enter(client_for(viewer), created.pk), 409, "room_not_live")


def test_followers_only(client_for, live_room, viewer, host_profile):
    created = giveaway(live_room, followers_only=True)
    response = enter(client_for(viewer), created.pk)
    assert_error(response, 403, "permission_denied")
    assert "follower" in response.json()["detail"]
    services.host_follow(user=viewer, host=host_profile)
    assert enter(client_for(viewer), created.pk).status_code == 201


def test_min_account_age(client_for, live_room, viewer):
    created = giveaway(live_room, min_account_age_s=7 * 86400)
    assert_error(enter(client_for(viewer), created.pk), 403, "permission_denied")
    type(viewer).objects.filter(pk=viewer.pk).update(date_joined=timezone.now() - timedelta(days=8))
    assert enter(client_for(viewer), created.pk).status_code == 201


def test_banned_viewers_cannot_enter(client_for, live_room, viewer):
    created = giveaway(live_room)
    Ban.objects.create(room=live_room, user=viewer)
    assert_error(enter(client_for(viewer), created.pk), 403, "banned")


# --- Entry by comment ---------------------------------------------------------------------------


def test_a_comment_equal_to_the_keyword_enters_its_author(live_room, viewer, other_host):
    created = giveaway(live_room, keyword="Hotpot")
    other = giveaway(live_room, keyword="tea")
    for text in ("  hOTPOT ", "hotpot!", "I want the hotpot"):
        services.comment_create(room=live_room, user=viewer, text=text, role="viewer")
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in "HOTPOT")  # as a Chinese keyboard types it
    services.comment_create(room=live_room, user=other_host, text=full_width, role="viewer")

    entries = GiveawayEntry.objects.filter(giveaway=created).order_by("id")
    assert [(e.user_id, e.via) for e in entries] == [(viewer.pk, "comment"), (other_host.pk, "comment")]
    assert not GiveawayEntry.objects.filter(giveaway=other).exists()
    assert Comment.objects.count() == 4  # every comment stands


def test_the_commenter_alone_hears_that_the_keyword_entered_them(
    live_room, viewer, monkeypatch, django_capture_on_commit_callbacks
):
    created = giveaway(live_room, keyword="tea")
    sent: list[tuple[int, int, dict[str, Any]]] = []
    monkeypatch.setattr("rooms.broadcast.room_user_send", lambda room, user, frame: sent.append((room, user, frame)))
    with django_capture_on_commit_callbacks(execute=True):
        services.comment_create(room=live_room, user=viewer, text="Tea", role="viewer")
    with django_capture_on_commit_callbacks(execute=True):
        services.comment_create(room=live_room, user=viewer, text="tea", role="viewer")  # in already: nothing
    assert sent == [(live_room.pk, viewer.pk, {"type": "giveaway.entered", "data": {"giveaway": created.pk}})]


def test_a_keyword_comment_from_someone_the_rules_exclude_is_just_a_comment(live_room, viewer, host):
    created = giveaway(live_room, keyword="tea", followers_only=True)
    services.comment_create(room=live_room, user=viewer, text="tea", role="viewer")
    services.comment_create(room=live_room, user=host, text="tea", role="host")  # the host itself
    assert not GiveawayEntry.objects.filter(giveaway=created).exists()
    assert Comment.objects.count() == 2


def test_a_giveaway_without_a_keyword_is_not_entered_by_comments(live_room, viewer):
    created = giveaway(live_room)
    services.comment_create(room=live_room, user=viewer, text="tea", role="viewer")
    assert not GiveawayEntry.objects.filter(giveaway=created).exists()


# --- The draw ---------------------------------------------------------------------------------


def test_the_draw_matches_the_contract_and_reveals_the_seed(client_for, live_room, committed, published):
    created = giveaway(live_room, winners=3)
    entrants = fans(12)
    for fan in entrants:
        services.giveaway_enter(giveaway=created, user=fan)
    close(created)
    published.clear()

    with committed():
        assert services.giveaway_draw(giveaway_id=created.pk)

    created.refresh_from_db()
    expected = contract_winners(created.seed, [f.pk for f in entrants], 3)
    winners = list(GiveawayWinner.objects.filter(giveaway=created).order_by("rank"))
    assert [w.user_id for w in winners] == expected
    assert [w.status for w in winners] == ["no_prize"] * 3
    assert created.status == Giveaway.Status.DRAWN
    detail = client_for(None).get(f"/api/v1/giveaways/{created.pk}/").json()
    assert detail["seed"] == created.seed
    assert [w["user"]["id"] for w in detail["winners"]] == expected
    names = {f.pk: f.public_name for f in entrants}
    assert published == [
        (
            live_room.pk,
            "giveaway.drawn",
            {
                "giveaway": created.pk,
                "winners": [{"id": uid, "display_name": names[uid]} for uid in expected],
                "seed": created.seed,
            },
        )
    ]


def test_the_draw_is_deterministic_in_the_seed_and_the_entrants(live_room):
    entrants = fans(8)
    results: list[list[int]] = []
    for _ in range(2):
        created = giveaway(live_room, winners=2)
        Giveaway.objects.filter(pk=created.pk).update(seed="ab" * 32)
        for fan in reversed(entrants) if results else entrants:  # another entry order
            services.giveaway_enter(giveaway=created, user=fan)
        close(created)
        services.giveaway_draw(giveaway_id=created.pk)
        results.append(list(GiveawayWinner.objects.filter(giveaway=created).values_list("user_id", flat=True)))
    assert results[0] == results[1] == contract_winners("ab" * 32, [f.pk for f in entrants], 2)


def test_fewer_entrants_than_winners_all_win_and_spare_units_go_back(live_room, sku):
    created = giveaway(live_room, winners=5, prize_sku=sku)
    assert Sku.objects.get(pk=sku.pk).stock == 45
    entrants = fans(2)
    for fan in entrants:
        services.giveaway_enter(giveaway=created, user=fan)
    close(created)
    services.giveaway_draw(giveaway_id=created.pk)
    winners = GiveawayWinner.objects.filter(giveaway=created)
    assert sorted(w.user_id for w in winners) == sorted(f.pk for f in entrants)
    assert {w.status for w in winners} == {"pending"}
    assert Sku.objects.get(pk=sku.pk).stock == 48  # 3 spare units back; 2 await their winners


def test_zero_entrants_draws_no_one_and_returns_every_unit(live_room, sku, committed, published):
    created = giveaway(live_room, winners=3, prize_sku=sku)
    close(created)
    published.clear()
    with committed():
        assert services.giveaway_draw(giveaway_id=created.pk)
    assert not GiveawayWinner.objects.exists()
    assert Giveaway.objects.get(pk=created.pk).status == Giveaway.Status.DRAWN
    assert Sku.objects.get(pk=sku.pk).stock == 50
    created.refresh_from_db()
    assert published[0][2] == {"giveaway": created.pk, "winners": [], "seed": created.seed}


def test_a_draw_run_twice_changes_nothing(live_room, sku):
    created = giveaway(live_room, winners=2, prize_sku=sku)
    for fan in fans(4):
        services.giveaway_enter(giveaway=created, user=fan)
    close(created)
    assert services.giveaway_draw(giveaway_id=created.pk) is True
    first = list(GiveawayWinner.objects.values_list("user_id", "rank", "claim_deadline"))
    assert services.giveaway_draw(giveaway_id=created.pk) is False
    assert services.giveaways_sweep() == (0, 0)
    assert list(GiveawayWinner.objects.values_list("user_id", "rank", "claim_deadline")) == first
    assert Sku.objects.get(pk=sku.pk).stock == 48


def test_no_draw_before_the_close(live_room, viewer):
    created = giveaway(live_room)
    services.giveaway_enter(giveaway=created, user=viewer)
    assert services.giveaway_draw(giveaway_id=created.pk) is False
    assert services.giveaways_sweep() == (0, 0)
    assert Giveaway.objects.get(pk=created.pk).status == Giveaway.Status.OPEN


def test_a_cancelled_giveaway_draws_nothing(live_room, viewer, sku):
    created = giveaway(live_room, prize_sku=sku)
    services.giveaway_enter(giveaway=created, user=viewer)
    services.giveaway_cancel(giveaway=created)
    close(created)
    assert services.giveaway_draw(giveaway_id=created.pk) is False
    assert services.giveaways_sweep() == (0, 0)
    assert not GiveawayWinner.objects.exists()
    assert Giveaway.objects.get(pk=created.pk).status == Giveaway.Status.CANCELLED
    assert Sku.objects.get(pk=sku.pk).stock == 50


def test_the_rules_are_checked_again_at_the_draw(client_for, live_room, host_profile):
    created = giveaway(live_room, winners=10, followers_only=True)
    stays, unfollows, banned, closed = fans(4)
    for fan in (stays, unfollows, banned, closed):
        services.host_follow(user=fan, host=host_profile)
        services.giveaway_enter(giveaway=created, user=fan)
    services.host_unfollow(user=unfollows, host=host_profile)
    Ban.objects.create(room=live_room, user=banned)
    type(closed).objects.filter(pk=closed.pk).update(is_active=False)  # the account was closed
    close(created)
    services.giveaway_draw(giveaway_id=created.pk)

    assert list(GiveawayWinner.objects.values_list("user_id", flat=True)) == [stays.pk]
    entries = {
        e["user_id"]: e for e in client_for(None).get(f"/api/v1/giveaways/{created.pk}/entries/").json()["results"]
    }
    assert (entries[stays.pk]["eligible"], entries[stays.pk]["excluded_reason"]) == (True, "")
    assert (entries[unfollows.pk]["eligible"], entries[unfollows.pk]["excluded_reason"]) == (False, "not_following")
    assert (entries[banned.pk]["eligible"], entries[banned.pk]["excluded_reason"]) == (False, "banned")
    assert (entries[closed.pk]["eligible"], entries[closed.pk]["excluded_reason"]) == (False, "account_inactive")


def test_the_sweeper_draws_what_is_due(live_room, viewer):
    due, later = giveaway(live_room), giveaway(live_room)
    services.giveaway_enter(giveaway=due, user=viewer)
    close(due)
    assert services.giveaways_sweep() == (1, 0)
    assert Giveaway.objects.get(pk=due.pk).status == Giveaway.Status.DRAWN
    assert Giveaway.objects.get(pk=later.pk).status == Giveaway.Status.OPEN


def test_the_draw_goes_ahead_after_the_show_ends(live_room, viewer):
    created = giveaway(live_room)
    services.giveaway_enter(giveaway=created, user=viewer)
    services.room_end(room=live_room)
    close(created)
    assert services.giveaway_draw(giveaway_id=created.pk)
    assert list(GiveawayWinner.objects.values_list("user_id", flat=True)) == [viewer.pk]


# --- Cancel -----------------------------------------------------------------------------------


def test_cancel_authorization_matrix(client_for, persona, live_room, sku, committed, published):
    for name, status in {"anonymous": 401, "viewer": 403, "other_host": 403}.items():
        created = giveaway(live_room, prize_sku=sku)
        assert client_for(persona(name)).post(f"/api/v1/giveaways/{created.pk}/cancel/").status_code == status
        services.giveaway_cancel(giveaway=created)
    for name in ("host", "staff"):
        created = giveaway(live_room, prize_sku=sku)
        published.clear()
        with committed():
            response = client_for(persona(name)).post(f"/api/v1/giveaways/{created.pk}/cancel/")
        assert response.status_code == 200, name
        assert response.json()["status"] == "cancelled"
        assert published == [(live_room.pk, "giveaway.cancelled", {"giveaway": created.pk})]
    assert Sku.objects.get(pk=sku.pk).stock == 50


def test_cancel_only_while_open_and_before_the_close(client_for, host, live_room):
    created = giveaway(live_room)
    assert client_for(host).post(f"/api/v1/giveaways/{created.pk}/cancel/").status_code == 200
    assert_error(client_for(host).post(f"/api/v1/giveaways/{created.pk}/cancel/"), 409, "conflict")
    due = giveaway(live_room)
    close(due)  # the outcome is fixed: a host may not call it off now
    assert_error(client_for(host).post(f"/api/v1/giveaways/{due.pk}/cancel/"), 409, "conflict")
    services.giveaway_draw(giveaway_id=due.pk)
    assert_error(client_for(host).post(f"/api/v1/giveaways/{due.pk}/cancel/"), 409, "conflict")
    assert_error(client_for(host).post("/api/v1/giveaways/999999/cancel/"), 404, "not_found")


# --- The snapshot -----------------------------------------------------------------------------


def test_the_snapshot_lists_the_rooms_giveaways(live_room, viewer):
    drawn, cancelled, open_one = giveaway(live_room), giveaway(live_room), giveaway(live_room, title="Now")
    services.giveaway_enter(giveaway=drawn, user=viewer)
    close(drawn)
    services.giveaway_draw(giveaway_id=drawn.pk)
    services.giveaway_cancel(giveaway=cancelled)

    listed = room_giveaways_public(room=live_room)
    assert [g["id"] for g in listed] == [open_one.pk, drawn.pk]
    assert listed[1]["winners"][0]["user"]["id"] == viewer.pk
    assert listed[1]["seed"] == Giveaway.objects.get(pk=drawn.pk).seed
    assert listed[0]["seed"] is None
    assert listed[1]["entries"] == 1


# --- Operations ---------------------------------------------------------------------------------


def test_the_sweeper_is_on_beat_at_least_every_two_seconds(settings, live_room, viewer):
    from rooms.tasks import giveaways_sweep_task

    entries = [e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == "rooms.tasks.giveaways_sweep_task"]
    assert entries
    assert all(float(e["schedule"]) <= 2 for e in entries)
    due = giveaway(live_room)
    services.giveaway_enter(giveaway=due, user=viewer)
    close(due)
    assert giveaways_sweep_task() == (1, 0)
