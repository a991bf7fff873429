"""The broadcast path below the sockets: seq, history, namespacing, the embedded event log,
rate limits, the banned-word matcher and the event encoding."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import time

import pytest
from django.db import transaction
from django.utils import timezone

from liveshop.ratelimit import Bucket
from rooms import broadcast
from rooms.banned_words import BannedWordMatcher, banned_word_in, normalize
from rooms.models import BannedWord, RoomEvent, RoomSequence
from rooms.realtime import events as ev
from rooms.realtime import redis_backend
from rooms.realtime.backend import Hold, LocalRateLimiter, Refusal, get_backend
from rooms.realtime.db_backend import DatabaseBackend, _prune
from rooms.realtime.redis_backend import SEQ_BLOCK, RedisBackend
from rooms.services import stats
from tests.helpers import run_concurrently

_room_ids = itertools.count(20_000_000 + int(time.time()) % 1_000_000 * 10)


# --- room_publish and its choke point ---------------------------------------------------------


@pytest.mark.django_db  # publishing reserves seqs in the database
def test_room_publish_numbers_events_and_encodes_once():
    room_id = next(_room_ids)
    assert [broadcast.room_publish(room_id, "order.placed", {"n": i}) for i in range(3)] == [1, 2, 3]
    events = asyncio.run(get_backend().areplay(room_id, 0, 3))
    assert events is not None
    frame = json.loads(events[0].frame)
    assert frame == {"type": "order.placed", "seq": 1, "ts": frame["ts"], "data": {"n": 0}}
    assert dt.datetime.fromisoformat(frame["ts"]).tzinfo is not None


@pytest.mark.django_db  # publishing reserves seqs in the database
def test_room_publish_reads_fanout_facts_from_the_event():
    room_id = next(_room_ids)
    broadcast.room_publish(room_id, "comment.new", {"id": 1, "user": {"id": 9, "role": "host"}, "text": "hi"})
    broadcast.room_publish(room_id, "comment.new", {"id": 2, "user": {"id": 8, "role": "viewer"}, "text": "yo"})
    broadcast.room_publish(room_id, "room.status", {"status": "ended"})
    broadcast.room_publish(room_id, "room.status", {"status": "live"})
    events = asyncio.run(get_backend().areplay(room_id, 0, 4))
    assert events is not None
    assert [(e.author, e.privileged, e.closes_room) for e in events] == [
        (9, True, False),
        (8, False, False),
        (0, False, True),
        (0, False, False),
    ]


@pytest.mark.django_db
def test_room_event_on_commit_publishes_only_after_commit(monkeypatch, django_capture_on_commit_callbacks):
    sent: list[tuple[object, ...]] = []

    def capture(*args: object) -> int:
        sent.append(args)
        return 1

    monkeypatch.setattr(broadcast, "room_publish", capture)
    with django_capture_on_commit_callbacks(execute=True):
        broadcast.room_event_on_commit(5, "item.featured", {"item": None})
        assert sent == []
    assert sent == [(5, "item.featured", {"item": None})]

    try:
        with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
            broadcast.room_event_on_commit(5, "items.updated", {"items": []})
            raise RuntimeError("rolled back")
    except RuntimeError:
        pass
    assert len(sent) == 1


@pytest.mark.django_db
def test_a_publish_failure_after_commit_is_logged_not_raised(monkeypatch, django_capture_on_commit_callbacks, caplog):
    def broken(*args):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(broadcast, "room_publish", broken)
    with django_capture_on_commit_callbacks(execute=True):
        broadcast.room_event_on_commit(5, "item.featured", {"item": None})
    assert "redis is down" in caplog.text


def test_async_publish_goes_through_room_publish(monkeypatch):
    sent: list[tuple[object, ...]] = []

    def capture(*args: object) -> int:
        sent.append(args)
        return 42

    monkeypatch.setattr(broadcast, "room_publish", capture)
    assert asyncio.run(broadcast.room_publish_async(3, "viewers", {"now": 1})) == 42
    assert sent == [(3, "viewers", {"now": 1})]


# --- Redis namespacing and history ---------------------------------------------------------------


async def _received(subscribe_with: RedisBackend, publish_with: RedisBackend, room_id: int) -> list[int]:
    got: list[int] = []
    subscriber = subscribe_with.subscriber(lambda _room, event: got.append(event.seq), lambda *_: None)
    await subscriber.start()
    try:
        await subscriber.subscribe(room_id)
        await asyncio.to_thread(publish_with.publish, room_id, ev.encode_event("order.placed", {}))
        await asyncio.sleep(0.3)
    finally:
        await subscriber.stop()
        await subscribe_with.aclose()
    return got


@pytest.mark.django_db  # publishing reserves seqs in the database
def test_prefixes_keep_deployments_apart(settings, realtime_prefix):
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL")
    room_id = next(_room_ids)
    ours = RedisBackend(url=settings.REDIS_URL, prefix=realtime_prefix, max_connections=10)
    theirs = RedisBackend(url=settings.REDIS_URL, prefix=f"{realtime_prefix}-other", max_connections=10)
    assert asyncio.run(_received(ours, theirs, room_id)) == []
    # Its own counter (the other's would give 2), on the next block of seqs the database
    # reserves for the room: the two deployments share this test database.
    assert asyncio.run(_received(ours, ours, room_id)) == [SEQ_BLOCK + 1]
    assert theirs.counters(room_id).views == 0
    ours.close()
    theirs.close()


@pytest.mark.django_db  # publishing reserves seqs in the database
def test_history_keeps_the_minimum_count_and_age(settings):
    settings.ROOM_REPLAY_MIN_EVENTS = 100
    settings.ROOM_REPLAY_MIN_AGE_S = 600
    room_id = next(_room_ids)
    for i in range(1500):
        get_backend().publish(room_id, ev.encode_event("order.placed", {"n": i}))
    # All 1,500 are younger than the minimum age: all are kept, in order.
    events = asyncio.run(get_backend().areplay(room_id, 0, 1500))
    assert events is not None
    assert [e.seq for e in events] == list(range(1, 1501))
    assert asyncio.run(get_backend().areplay(room_id, 1490, 1500)) is not None
    assert asyncio.run(get_backend().areplay(room_id, 1500, 1500)) == []


@pytest.mark.django_db
def test_seqs_never_go_back_when_redis_loses_the_counter(settings, monkeypatch):
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL")
    monkeypatch.setattr(redis_backend, "SEQ_BLOCK", 10)
    backend = get_backend()
    assert isinstance(backend, RedisBackend)
    room_id = next(_room_ids)
    first = [broadcast.room_publish(room_id, "order.placed", {"n": i}) for i in range(25)]
    assert first == list(range(1, 26))  # across three blocks of 10
    assert RoomSequence.objects.get(room_id=room_id).last_seq == 30

    # Redis restarts empty: the counter, its ceiling and the history are gone.
    backend._sync.delete(*(backend.room_key(room_id, name) for name in ("seq", "seq-ceiling", "history", "marks")))
    again = [broadcast.room_publish(room_id, "order.placed", {"n": i}) for i in range(3)]
    assert again == [31, 32, 33]  # above every seq given before, then one by one
    # A client's `since` from before the break finds no history: it gets a snapshot.
    assert asyncio.run(backend.areplay(room_id, 25, 33)) is None

    # Only the counter lost (evicted): the next block, never a seq given already.
    backend._sync.delete(backend.room_key(room_id, "seq"))
    assert broadcast.room_publish(room_id, "order.placed", {}) == 41

    # Restored from an older snapshot, the counter went back (the hub notices and restores
    # it): above every seq given before.
    backend._sync.set(backend.room_key(room_id, "seq"), 35)
    assert backend.seq_reserve(room_id, seen=41) == 50
    # Another process noticed the same loss at the same time: the counter moves once.
    assert backend.seq_reserve(room_id, seen=41) == 50
    assert broadcast.room_publish(room_id, "order.placed", {}) == 51

    # Two hubs see Redis lose the counter at once (both read no seq): the first sets it up
    # above every seq given, the second finds it past what it saw and leaves it, so the
    # seqs go on without a second jump.
    backend._sync.delete(backend.room_key(room_id, "seq"))
    assert backend.seq_reserve(room_id, seen=51) == 70
    assert backend.seq_reserve(room_id, seen=51) == 70
    assert broadcast.room_publish(room_id, "order.placed", {}) == 71


@pytest.mark.django_db
def test_a_batch_published_in_one_round_trip_keeps_order_and_survives_a_lost_counter(settings):
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL")
    backend = get_backend()
    assert isinstance(backend, RedisBackend)
    lost_room, kept_room = next(_room_ids), next(_room_ids)
    assert broadcast.room_publish(lost_room, "order.placed", {}) == 1
    assert broadcast.room_publish(kept_room, "order.placed", {}) == 1
    backend._sync.delete(backend.room_key(lost_room, "seq"))  # evicted: its events are refused
    events = [(room_id, "comment.new", {"n": n}) for n in range(3) for room_id in (lost_room, kept_room)]
    seqs = broadcast.room_publish_many(events)
    kept = seqs[1::2]
    assert kept == [2, 3, 4]  # published once each, in order
    lost = seqs[0::2]
    assert lost == sorted(lost)
    assert len(set(lost)) == 3
    assert lost[0] > 1  # in a new block, above every seq given before
    history = asyncio.run(backend.areplay(kept_room, 0, 4))
    assert history is not None
    assert [e.seq for e in history] == [1, 2, 3, 4]


@pytest.mark.django_db(transaction=True)  # the seq reservation writes on a connection of its own
def test_counters_come_back_when_redis_restarts_empty(settings, live_room):
    """Likes, views, peak and unique visitors are copied to PostgreSQL while the room is
    live; a Redis that lost them gets the copy back, on top of what came in since."""
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL")
    backend = get_backend()
    assert isinstance(backend, RedisBackend)
    room_id = live_room.pk
    broadcast.room_publish(room_id, "order.placed", {})
    for visitor in ("a", "b", "c"):
        asyncio.run(backend.ajoin(room_id, visitor))
    asyncio.run(backend.alikes_add(room_id, 40))
    backend._sync.set(backend.room_key(room_id, "peak"), 7)
    assert stats.room_counters_checkpoint() == 1
    asyncio.run(backend.alikes_add(room_id, 5))  # after the copy: lost with the restart

    # Redis restarts empty: every key of the room is gone.
    room_keys = list(backend._sync.scan_iter(match=backend.room_key(room_id, "*")))
    backend._sync.delete(*room_keys)
    # Until the room is set up again its counters are not copied (they would overwrite the copy).
    assert stats.room_counters_checkpoint() == 0
    assert RoomSequence.objects.get(room_id=room_id).likes == 40

    # A viewer comes back: the join finds no seq, sets it up, and the counters return.
    asyncio.run(backend.ajoin(room_id, "d"))
    counters = backend.counters(room_id)
    assert (counters.views, counters.unique, counters.likes, counters.peak) == (3 + 1, 4, 40, 7)
    # Added back once: the next join or publish does not add them again.
    asyncio.run(backend.ajoin(room_id, "a"))
    broadcast.room_publish(room_id, "order.placed", {})
    counters = backend.counters(room_id)
    assert (counters.views, counters.unique, counters.likes) == (5, 4, 40)
    # And the next copy carries on from there.
    assert stats.room_counters_checkpoint() == 1
    assert RoomSequence.objects.get(room_id=room_id).views == 5


# --- Rate limits: the same GCRA in Redis and in memory ---------------------------------------------


@pytest.mark.parametrize("where", ["redis", "memory"])
def test_rate_limit_burst_then_sustained(settings, where):
    clock = [1000.0]
    limiter = LocalRateLimiter(clock=lambda: clock[0])
    key = f"test:{next(_room_ids)}"

    def take() -> float:
        if where == "memory":
            return limiter.take(key, per_minute=600, burst=3)
        return get_backend().rate_limit(key, per_minute=600, burst=3)

    assert [take() for _ in range(3)] == [0.0, 0.0, 0.0]  # the burst
    wait = take()
    assert 0.05 < wait <= 0.1001  # then one per 0.1 s
    if where == "memory":
        clock[0] += 0.1
    else:
        time.sleep(0.11)
    assert take() == 0.0
    assert take() > 0


@pytest.mark.parametrize("where", ["redis", "memory"])
def test_limits_are_taken_all_or_nothing(where):
    clock = [50.0]
    limiter = LocalRateLimiter(clock=lambda: clock[0])
    room_id = next(_room_ids)

    def take(buckets: list[Bucket], hold: Hold | None = None) -> Refusal | None:
        if where == "memory":
            return limiter.take_all(buckets, (f"{room_id}:{hold.name}", hold.seconds) if hold else None)
        return get_backend().limits_take(room_id, buckets, hold)

    spare = Bucket(f"test:{room_id}:spare", per_minute=1, burst=2)
    empty = Bucket(f"test:{room_id}:empty", per_minute=1, burst=1)
    assert take([empty]) is None
    refusal = take([spare, empty])
    assert refusal is not None
    assert refusal.index == 1
    assert 59 < refusal.wait <= 60
    # The refused call took nothing from `spare`: its burst of two is still there.
    assert take([spare]) is None
    assert take([spare]) is None
    refusal = take([spare])
    assert refusal is not None
    assert refusal.index == 0
    assert 59 < refusal.wait <= 60
    # The hold (slow mode) answers after the buckets, at index len(buckets).
    slow = Hold("slow:7", 10)
    assert take([], slow) is None
    refusal = take([], slow)
    assert refusal is not None
    assert refusal.index == 0
    assert 9 < refusal.wait <= 10
    if where == "memory":
        clock[0] += 10.01
        assert take([], slow) is None


# --- The embedded event log -------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_event_log_gives_concurrent_publishers_contiguous_seqs():
    backend = DatabaseBackend()
    room_id = next(_room_ids)
    seqs = run_concurrently(
        lambda i: backend.publish(room_id, ev.encode_event("order.placed", {"n": i})),
        8,
    )
    assert sorted(seqs) == list(range(1, 9))
    rows = list(RoomEvent.objects.filter(room_id=room_id).order_by("seq").values_list("seq", "frame"))
    assert [seq for seq, _ in rows] == list(range(1, 9))
    assert all(json.loads(frame)["seq"] == seq for seq, frame in rows)


@pytest.mark.django_db(transaction=True)
async def test_event_log_tail_delivers_in_order_with_controls():
    from channels.db import database_sync_to_async

    backend = DatabaseBackend()
    room_id = next(_room_ids)
    got: list[tuple[str, object]] = []
    subscriber = backend.subscriber(
        lambda room, event: got.append(("event", event.seq)), lambda room, message: got.append(("control", message))
    )
    await subscriber.start()
    try:
        await database_sync_to_async(backend.publish)(room_id, ev.encode_event("order.placed", {}))
        await subscriber.subscribe(room_id)  # from seq 1 on
        for _ in range(3):
            await database_sync_to_async(backend.publish)(room_id, ev.encode_event("order.placed", {}))
        await database_sync_to_async(backend.control)(room_id, {"op": "close", "user": 4, "code": 4403})
        await asyncio.sleep(0.5)
        assert got == [("event", 2), ("event", 3), ("event", 4), ("control", {"op": "close", "user": 4, "code": 4403})]
        assert [e.seq for e in (await backend.areplay(room_id, 1, 4)) or []] == [2, 3, 4]
    finally:
        await subscriber.stop()


@pytest.mark.django_db
def test_event_log_prune_keeps_minimum_count_and_age(settings):
    settings.ROOM_REPLAY_MIN_EVENTS = 3
    settings.ROOM_REPLAY_MIN_AGE_S = 600
    backend = DatabaseBackend()
    room_id = next(_room_ids)
    for _ in range(6):
        backend.publish(room_id, ev.encode_event("order.placed", {}))
    backend.control(room_id, {"op": "send"})
    old = timezone.now() - dt.timedelta(minutes=11)
    RoomEvent.objects.filter(room_id=room_id, seq__lte=5).update(created_at=old)
    RoomEvent.objects.filter(room_id=room_id, seq__isnull=True).update(created_at=old)
    _prune()
    # Seqs 1-3 are old and not among the last 3: gone. 4-5 are old but among the last 3.
    assert list(RoomEvent.objects.filter(room_id=room_id).values_list("seq", flat=True).order_by("seq")) == [4, 5, 6]


# --- Banned words --------------------------------------------------------------------------------------


def test_matcher_finds_any_word_in_one_pass():
    matcher = BannedWordMatcher(["假货", "Fake Tea", "scam", "  "])
    assert matcher.find("这是假货!") == "假货"
    assert matcher.find("FAKE\u200b TEA for sale") == "fake tea"  # zero-width and case folded
    assert matcher.find("\uff33\uff23\uff21\uff2d") == "scam"  # full-width letters
    assert matcher.find("fake  tea") == "fake tea"  # runs of spaces
    assert matcher.find("genuine Wulong tea") is None
    assert BannedWordMatcher([]).find("anything") is None
    assert normalize("  A\u00a0 B ") == "a b"


@pytest.mark.django_db
def test_banned_word_list_changes_apply_at_once():
    assert banned_word_in("buy fake tea") is None
    word = BannedWord.objects.create(word="fake tea")
    assert banned_word_in("buy fake tea") == "fake tea"
    word.word = "real scam"
    word.save()
    assert banned_word_in("buy fake tea") is None
    assert banned_word_in("a real scam") == "real scam"
    word.delete()
    assert banned_word_in("a real scam") is None


# --- Encoding --------------------------------------------------------------------------------------------


def _event(seq: int, event_type: str, author: int = 0, flags: str = "-") -> ev.Event:
    return ev.Event(seq=seq, type=event_type, author=author, flags=flags, frame=f'{{"seq":{seq}}}')


def test_batch_frame_joins_without_encoding():
    one = _event(1, "order.placed")
    assert ev.batch_frame([one]) == one.frame
    assert json.loads(ev.batch_frame([one, _event(2, "viewers")])) == {
        "type": "batch",
        "events": [{"seq": 1}, {"seq": 2}],
    }


def test_encoded_event_round_trip():
    encoded = ev.encode_event("comment.new", {"text": '茶 "quoted"\n'}, author=7, flags="p")
    event = ev.parse_message(ev.message_text(encoded.event(12)))
    assert (event.seq, event.type, event.author, event.privileged) == (12, "comment.new", 7, True)
    assert json.loads(event.frame)["data"] == {"text": '茶 "quoted"\n'}
    assert event.frame.isascii()
    with pytest.raises(ValueError, match="bad event type"):
        ev.encode_event("two words", {})


def test_replay_compaction():
    events = [
        _event(1, "viewers"),
        _event(2, "comment.new", author=5),
        _event(3, "like.total"),
        _event(4, "comment.new", author=6),
        _event(5, "comment.new", author=2, flags="p"),
        _event(6, "order.placed"),
        _event(7, "viewers"),
        _event(8, "comment.new", author=7),
    ]
    viewer = ev.compact_for_replay(events, full=False, max_comments=1)
    assert [e.seq for e in viewer] == [3, 5, 6, 7, 8]
    host = ev.compact_for_replay(events, full=True, max_comments=1)
    assert [e.seq for e in host] == [2, 3, 4, 5, 6, 7, 8]
