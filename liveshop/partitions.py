"""Monthly range partitions of a PostgreSQL table (the comments: rooms/migrations/0011).

A table partitioned by RANGE (created_at) has one partition per calendar month (UTC),
named `<table>_pYYYYMM`, and a DEFAULT partition `<table>_pdefault` for a row no month
covers, so that an insert never fails for want of a partition. A beat task creates the
months ahead and drops the months past retention whole: dropping a month is a catalog
change, where deleting its rows would take minutes, bloat the table and load the replicas.

On another database (SQLite, the embedded default) nothing is partitioned: the helpers
say so and do nothing.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone


@dataclass(frozen=True)
class Partition:
    name: str
    start: dt.datetime  # included
    end: dt.datetime  # excluded


def is_partitioned(table: str) -> bool:
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_partitioned_table pt JOIN pg_class c ON c.oid = pt.partrelid WHERE c.relname = %s",
            [table],
        )
        return cursor.fetchone() is not None


def month_start(moment: dt.datetime) -> dt.datetime:
    moment = moment.astimezone(dt.UTC)
    return dt.datetime(moment.year, moment.month, 1, tzinfo=dt.UTC)


def next_month(start: dt.datetime) -> dt.datetime:
    return dt.datetime(start.year + start.month // 12, start.month % 12 + 1, 1, tzinfo=dt.UTC)


def monthly_partitions(table: str) -> list[Partition]:
    """The table's monthly partitions, oldest first (the default partition is not one)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = %s",
            [table],
        )
        names = [row[0] for row in cursor.fetchall()]
    found = []
    for name in names:
        match = re.fullmatch(rf"{re.escape(table)}_p(\d{{4}})(\d{{2}})", name)
        if match:
            start = dt.datetime(int(match[1]), int(match[2]), 1, tzinfo=dt.UTC)
            found.append(Partition(name=name, start=start, end=next_month(start)))
    return sorted(found, key=lambda partition: partition.start)


def _literal(moment: dt.datetime) -> str:
    # Partition bounds are DDL: no bind parameters. The value is a datetime we made.
    return f"'{moment.isoformat()}'"


def ensure_monthly(table: str, *, start: dt.datetime | None = None, months_ahead: int = 2) -> list[str]:
    """Create the monthly partitions from `start`'s month (default: this month) to
    `months_ahead` months after this one. Rows the default partition holds for a month
    being created move into it, in the same transaction. Returns the names created."""
    if not is_partitioned(table):
        return []
    existing = {partition.name for partition in monthly_partitions(table)}
    month = month_start(start or timezone.now())
    last = month_start(timezone.now())
    for _ in range(months_ahead):
        last = next_month(last)
    created = []
    while month <= last:
        name = f"{table}_p{month:%Y%m}"
        if name not in existing:
            _create(table, name, month, next_month(month))
            created.append(name)
        month = next_month(month)
    return created


def _create(table: str, name: str, start: dt.datetime, end: dt.datetime) -> None:
    low, high = _literal(start), _literal(end)
    with transaction.atomic(), connection.cursor() as cursor:
        # Made apart, filled from the default partition, then attached: attaching checks
        # that the default partition holds no row of the new month.
        cursor.execute(f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
        cursor.execute(
            f"WITH moved AS (DELETE FROM {table}_pdefault WHERE created_at >= {low} AND created_at < {high}"
            f" RETURNING *) INSERT INTO {name} SELECT * FROM moved"
        )
        cursor.execute(f"ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES FROM ({low}) TO ({high})")


def drop_before(table: str, cutoff: dt.datetime, *, before_drop: Callable[[str], None] | None = None) -> list[str]:
    """Drop every monthly partition that ends at or before `cutoff` (each in its own
    transaction, `before_drop(name)` first, for what refers to its rows), and delete the
    default partition's rows older than `cutoff`. Returns the names dropped."""
    dropped = []
    for partition in monthly_partitions(table):
        if partition.end > cutoff:
            break
        with transaction.atomic(), connection.cursor() as cursor:
            if before_drop is not None:
                before_drop(partition.name)
            cursor.execute(f"ALTER TABLE {table} DETACH PARTITION {partition.name}")
            cursor.execute(f"DROP TABLE {partition.name}")
        dropped.append(partition.name)
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table}_pdefault WHERE created_at < {_literal(cutoff)}")
    return dropped
