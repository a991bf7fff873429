"""Benchmark 11: the comment paths at a province's volume (20 million rows).

    DATABASE_URL=postgres://.../liveshop_bench_scale REDIS_URL=redis://.../N \\
        flock /tmp/liveshop-bench.lock .venv/bin/python -m bench.comments_scale [--rows 20000000]

20,000 shows a quarter with a thousand comments each is 20 million rows. This fills
`rooms_comment` with `--rows` comments of `--rooms` shows spread over `--days` days (in
SQL, a million rows a statement, with progress), and measures each comment path twice in
the same run: with the first 1 % of the rows (the reference), and with all of them.

1. Insert: `comments_write` (the intake's group commit), batches of 100 comments, each
   batch its own transaction; µs a comment.
2. A room's history by cursor (`GET /rooms/{id}/comments/`: `room_comments`), the first
   page and one from the middle of a show; ms.
3. A replay's comments (the query of `GET /rooms/{id}/replay/comments/`: a show's comments
   in a time window, oldest first); ms.
4. Moderation: a comment looked up by id (`comment_visible_get`), a show's comment count
   (its statistics); ms.
5. Retention: the oldest day's comments removed, as rows deleted (`DELETE ... WHERE
   created_at < ...`), and, when the table is partitioned by month
   (rooms/migrations/0011), a whole month dropped (`comment_partitions_drop_before`).

Each query runs on a fresh random show of the filled range, 30 times; the medians are
reported. Writes bench/results/comments_scale-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.flash_sale import ROOT, log, setup_django
from bench.loadgen import median_ms

RESULTS = ROOT / "bench" / "results"
CHUNK = 1_000_000


def _cast(rooms: int, users: int, days: int) -> dict[str, Any]:
    """Users, a host and `rooms` ended shows, one after another over `days` days."""
    from django.db.models import F

    from liveshop.models import User
    from rooms.models import Host, Room

    run = f"{time.time_ns():x}"
    host_user = User.objects.create(username=f"bench-scale-host-{run}", display_name="Bench Host")
    host = Host.objects.create(user=host_user, kind="cadre", district="Jiangbei", verified=True)
    first_user = User.objects.bulk_create(
        [User(username=f"bench-scale-{run}-{n}", display_name=f"Viewer {n}") for n in range(users)]
    )[0].pk
    start = datetime.now(UTC) - timedelta(days=days)
    step = timedelta(seconds=days * 86400 / rooms)
    shows = Room.objects.bulk_create(
        [
            Room(
                host=host,
                title=f"Bench show {n}",
                status=Room.Status.ENDED,
                started_at=start + n * step,
                ended_at=start + n * step + timedelta(hours=2),
            )
            for n in range(rooms)
        ],
        batch_size=2000,
    )
    room_ids = sorted(room.pk for room in shows)
    # Each made the day before its show, as hosts make them (comments follow their room).
    Room.objects.filter(pk__in=room_ids).update(created_at=F("started_at") - timedelta(days=1))
    return {"rooms": room_ids, "first_user": first_user, "users": users, "start": start, "days": days, "host": host}


def _fill(cast: dict[str, Any], upto: int, have: int) -> int:
    """Comments up to `upto` rows in all: each show's in its two hours, in id order."""
    from django.db import connection

    rooms, days = cast["rooms"], cast["days"]
    total = cast["total"]
    per_room = total // len(rooms)
    while have < upto:
        count = min(CHUNK, upto - have)
        with connection.cursor() as cursor:
            cursor.execute(
                """INSERT INTO rooms_comment (room_id, user_id, text, created_at, deleted_at)
                   SELECT %s + (n / %s), %s + (n %% %s), 'comment ' || n,
                          %s + (n / %s) * %s * interval '1 second' + (n %% %s) * (7200.0 / %s) * interval '1 second',
                          NULL
                   FROM generate_series(%s, %s - 1) n""",
                [
                    rooms[0], per_room, cast["first_user"], cast["users"],
                    cast["start"], per_room, days * 86400 / len(rooms), per_room, per_room,
                    have, have + count,
                ],
            )  # fmt: skip
        have += count
        log(f"  {have:,} of {upto:,} comments")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # as autovacuum would have, after the bulk load
    return have


def _measure(cast: dict[str, Any], filled_rooms: int) -> dict[str, Any]:
    from django.contrib.auth.models import AnonymousUser
    from django.db import transaction

    from rooms.models import Comment, Room
    from rooms.selectors import comment_visible_get, comments_of, room_comments
    from rooms.services.live import NewComment, comments_write

    rooms = cast["rooms"][:filled_rooms]
    per_room = cast["total"] // len(cast["rooms"])
    pick = random.Random(7)
    anonymous = AnonymousUser()

    shows = Room.objects.in_bulk(rooms)

    def history_first() -> None:
        list(room_comments(room=shows[pick.choice(rooms)]))

    def history_middle() -> None:
        room_id = pick.choice(rooms)
        first = Comment.objects.filter(room_id=room_id).order_by("id").values_list("id", flat=True)[:1]
        before = (first[0] if first else 0) + per_room // 2
        list(room_comments(room=shows[room_id], before=before))

    def replay_window() -> None:
        room_id = pick.choice(rooms)
        low = cast["start"] + timedelta(
            seconds=(room_id - cast["rooms"][0]) * cast["days"] * 86400 / len(cast["rooms"])
        )
        rows = Comment.objects.filter(room_id=room_id, deleted_at__isnull=True, created_at__gte=low)
        list(rows.filter(created_at__lte=low + timedelta(minutes=10)).order_by("created_at", "id")[:200])

    def by_id() -> None:
        room_id = pick.choice(rooms)
        some = Comment.objects.filter(room_id=room_id).values_list("id", flat=True)[:1]
        if some:
            comment_visible_get(user=anonymous, comment_id=some[0])

    def count() -> None:
        comments_of(shows[pick.choice(rooms)]).count()

    live_room = rooms[-1]
    writes = []
    for batch in range(50):
        comments = [
            NewComment(
                room_id=live_room,
                user_id=cast["first_user"] + n,
                name=f"Viewer {n}",
                role="viewer",
                text=f"live {batch}-{n}",
                enters_giveaway=False,
            )
            for n in range(100)
        ]
        started = time.perf_counter()
        with transaction.atomic():
            comments_write(comments)
        writes.append((time.perf_counter() - started) * 1e6 / len(comments))
    return {
        "insert_us_per_comment": round(statistics.median(writes), 1),
        "history_first_page_ms": median_ms(history_first),
        "history_middle_page_ms": median_ms(history_middle),
        "replay_window_ms": median_ms(replay_window),
        "comment_by_id_ms": median_ms(by_id),
        "show_comment_count_ms": median_ms(count),
    }


def _retention(cast: dict[str, Any]) -> dict[str, Any]:
    """The oldest day's comments deleted row by row (rolled back), and a month dropped."""
    from django.db import connection, transaction

    from liveshop import partitions

    oldest = cast["start"] + timedelta(days=1)
    result: dict[str, Any] = {}
    with transaction.atomic(), connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute("DELETE FROM rooms_comment WHERE created_at < %s", [oldest])
        seconds = time.perf_counter() - started
        result["delete_one_day_rows"] = cursor.rowcount
        result["delete_one_day_s"] = round(seconds, 2)
        result["delete_rows_per_s"] = round(cursor.rowcount / seconds)
        transaction.set_rollback(True)
    if partitions.is_partitioned("rooms_comment"):
        months = partitions.monthly_partitions("rooms_comment")
        if len(months) > 1:
            first = months[0]
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT count(*) FROM {first.name}")
                rows = cursor.fetchone()[0]
            started = time.perf_counter()
            dropped = partitions.drop_before("rooms_comment", first.end)
            result["drop_month_rows"] = rows
            result["drop_month_s"] = round(time.perf_counter() - started, 3)
            result["dropped"] = dropped
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--rooms", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument(
        "--plain", action="store_true", help="the table as before rooms/migrations/0011: not partitioned (the 'before')"
    )
    args = parser.parse_args()
    setup_django()
    from django.core.management import call_command
    from django.db import connection

    from liveshop import partitions

    log("migrating the bench database")
    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE rooms_comment CASCADE")
    if args.plain:
        call_command("migrate", "rooms", "0010", verbosity=0)
    partitions.ensure_monthly("rooms_comment", start=datetime.now(UTC) - timedelta(days=args.days + 1))
    log(f"{args.rooms:,} shows over {args.days} days, {args.users:,} viewers")
    cast = _cast(args.rooms, args.users, args.days) | {"total": args.rows}
    report: dict[str, Any] = {
        "benchmark": "comments_scale",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "rows": args.rows,
        "partitioned": partitions.is_partitioned("rooms_comment"),
    }
    small = args.rows // 100
    have = _fill(cast, small, 0)
    log(f"measuring at {have:,} rows (the reference)")
    report["reference"] = {"rows": have, **_measure(cast, filled_rooms=args.rooms // 100)}
    have = _fill(cast, args.rows, have)
    log(f"measuring at {have:,} rows")
    report["full"] = {"rows": have, **_measure(cast, filled_rooms=args.rooms)}
    report["ratios"] = {
        name: round(report["full"][name] / report["reference"][name], 2)
        for name in report["full"]
        if name != "rows" and report["reference"][name]
    }
    log("retention")
    report["retention"] = _retention(cast)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) FROM pg_class c"
            " WHERE c.relname = 'rooms_comment' OR c.relname LIKE 'rooms_comment\\_p%%'"
        )
        report["table_size"] = cursor.fetchone()[0]
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"comments_scale-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps(report, indent=2, default=str))
    log(f"wrote {out}")


if __name__ == "__main__":
    main()
