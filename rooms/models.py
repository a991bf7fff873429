from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q

from catalog.models import Offer, Sku


class Host(models.Model):
    """A user who broadcasts: a farmer, a cadre (local official) or a merchant."""

    class Kind(models.TextChoices):
        FARMER = "farmer"
        CADRE = "cadre"
        MERCHANT = "merchant"

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="host")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    district = models.CharField(max_length=64)
    bio = models.TextField(blank=True, max_length=2000)
    verified = models.BooleanField(default=False)
    verified_at = models.DateTimeField(null=True, blank=True)
    # Kept equal to the Follow rows by the follow services (conditional F() updates).
    followers_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["district"])]

    def __str__(self) -> str:
        return f"{self.user} ({self.kind}, {self.district})"


class Follow(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="follows")
    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="follows")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "host"], name="follow_once")]

    def __str__(self) -> str:
        return f"{self.user_id} follows {self.host_id}"


def new_stream_key() -> str:
    return secrets.token_urlsafe(24)


class Room(models.Model):
    """One broadcast show: scheduled -> live -> ended, or suspended by staff at any time."""

    class Status(models.TextChoices):
        SCHEDULED = "scheduled"
        LIVE = "live"
        ENDED = "ended"
        SUSPENDED = "suspended"

    host = models.ForeignKey(Host, on_delete=models.PROTECT, related_name="rooms")
    title = models.CharField(max_length=120)
    # In English, for English pages, when the host gives it (added; `title` is as written).
    title_en = models.CharField(max_length=120, blank=True)
    description = models.TextField(blank=True, max_length=5000)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SCHEDULED)
    scheduled_start = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    suspended_at = models.DateTimeField(null=True, blank=True)
    suspend_reason = models.CharField(max_length=500, blank=True)
    slow_mode_s = models.PositiveIntegerField(default=0)
    # New-account protection, switched on by the host: viewers whose account is younger
    # than this may watch but not comment (0: off). Ban evaders come back on new accounts.
    comment_min_account_age_s = models.PositiveIntegerField(default=0)
    # The RTMP/SRT ingest key: shown to the host only.
    stream_key = models.CharField(max_length=64, default=new_stream_key, unique=True)
    # Where viewers watch (HLS/FLV from the streaming server); set by the host.
    playback_url = models.URLField(max_length=500, blank=True)
    featured_item = models.ForeignKey("RoomItem", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # The show's cover image, 16:9 (liveshop/images.py COVER_SIZES): 1280 and 480 px wide.
    cover = models.ImageField(max_length=255, blank=True)
    cover_thumb = models.ImageField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["status", "-id"]),
            # The district report selects the shows that went live in a period.
            models.Index(fields=["started_at"], name="room_started_at"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_open(self) -> bool:
        """Scheduled or live: the host may still change the show."""
        return self.status in (self.Status.SCHEDULED, self.Status.LIVE)


class RoomItem(models.Model):
    """A sku on a room's shelf, with an optional live-only price."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="items")
    sku = models.ForeignKey(Sku, on_delete=models.PROTECT, related_name="room_items")
    # The seller's terms this item is sold under: set when the sku is another shop's.
    offer = models.ForeignKey(Offer, null=True, blank=True, on_delete=models.PROTECT, related_name="room_items")
    live_price = models.PositiveIntegerField(null=True, blank=True)
    position = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["position", "id"]
        constraints = [models.UniqueConstraint(fields=["room", "sku"], name="room_item_sku_once")]

    def __str__(self) -> str:
        return f"{self.room_id}: {self.sku}"


class FlashSale(models.Model):
    """A time-boxed sale of `quantity` units of a shelf item at `price`.

    The units leave the sku's free stock when the sale starts; the ones not sold go back
    when it ends. `remaining` is the truth in PostgreSQL; a Redis gate mirrors it.
    """

    class Status(models.TextChoices):
        ACTIVE = "active"
        ENDED = "ended"

    item = models.ForeignKey(RoomItem, on_delete=models.CASCADE, related_name="flash_sales")
    price = models.PositiveIntegerField()
    quantity = models.PositiveIntegerField()
    remaining = models.PositiveIntegerField()
    per_buyer_limit = models.PositiveIntegerField(null=True, blank=True)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    ended_at = models.DateTimeField(null=True, blank=True)
    # Units that went back to the sku's stock when the sale ended.
    returned = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["item"], condition=Q(status="active"), name="one_active_flash_sale_per_item"
            ),
            models.CheckConstraint(condition=Q(remaining__lte=models.F("quantity")), name="flash_remaining_le_qty"),
        ]
        indexes = [models.Index(fields=["status", "ends_at"])]

    def __str__(self) -> str:
        return f"flash sale {self.pk} of item {self.item_id}"

    @property
    def sold(self) -> int:
        return self.quantity - self.remaining


# --- Live: comments and moderation ---------------------------------------------------------


class Comment(models.Model):
    """A comment sent in a room over the WebSocket; history reads it back by id cursor.

    In PostgreSQL the table is partitioned by month of `created_at` (its primary key is
    (id, created_at) there; ids stay unique, from one sequence): retention drops whole
    months (rooms/migrations/0011, liveshop/partitions.py).
    """

    MAX_LENGTH = 200

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="comments")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="comments")
    text = models.CharField(max_length=MAX_LENGTH)
    created_at = models.DateTimeField(auto_now_add=True)
    # Set when a moderator removes the comment; history and snapshots skip it.
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["room", "-id"], name="comment_room_history")]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.room_id}: {self.text[:40]}"


class RoomModerator(models.Model):
    """A user the host trusts to moderate the room: sees every comment, mutes and bans."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="moderators")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="moderated_rooms")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["room", "user"], name="room_moderator_once")]

    def __str__(self) -> str:
        return f"{self.user_id} moderates {self.room_id}"


class Mute(models.Model):
    """The user may watch the room but not comment in it until `until`."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="mutes")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mutes")
    until = models.DateTimeField()
    reason = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["room", "user"], name="mute_once_per_room")]

    def __str__(self) -> str:
        return f"{self.user_id} muted in {self.room_id} until {self.until:%Y-%m-%d %H:%M}"


class Ban(models.Model):
    """The user may not open the room's WebSocket at all (close code 4403)."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="bans")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="room_bans")
    reason = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["room", "user"], name="ban_once_per_room")]

    def __str__(self) -> str:
        return f"{self.user_id} banned from {self.room_id}"


class BannedWord(models.Model):
    """A word or phrase that blocks a comment containing it (case-insensitive)."""

    word = models.CharField(max_length=100, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Any edit moves this forward, which is how every process notices the list changed.
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["word"]

    def __str__(self) -> str:
        return self.word


# --- The embedded event log ------------------------------------------------------------------


class RoomSequence(models.Model):
    """A room's seq high-water mark: no event of the room was ever given a higher `seq`.

    Without Redis (the embedded default) this row is the counter itself, which every
    process (web, Celery worker, beat) shares through the database. With Redis the counter
    is a Redis key that hands out seqs only up to this mark, reserved in blocks, so a
    Redis that restarts empty continues above every seq it gave
    (rooms/realtime/redis_backend.py, SEQ_BLOCK).
    """

    room_id = models.BigIntegerField(primary_key=True)
    last_seq = models.BigIntegerField(default=0)
    # The room's Redis counters as a beat task last copied them (every few seconds while
    # it is live): what a Redis that restarted empty adds back (redis_backend.py). The
    # unique visitors are kept as Redis's own HyperLogLog bytes, so they merge exactly.
    # (db_default: the seq reservation inserts rows with raw SQL.)
    views = models.PositiveBigIntegerField(db_default=0)
    likes = models.PositiveBigIntegerField(db_default=0)
    peak_viewers = models.PositiveBigIntegerField(db_default=0)
    visitors = models.BinaryField(null=True)
    counted_at = models.DateTimeField(null=True)

    def __str__(self) -> str:
        return f"room {self.room_id} at seq {self.last_seq}"


class RoomEvent(models.Model):
    """One room event in the embedded default's log: the hand-off between processes and the
    `?since=` replay history. The web process tails it; old rows are pruned.
    """

    room_id = models.BigIntegerField()
    # Null for a control message (close a user's sockets, a private frame): not a room event.
    seq = models.BigIntegerField(null=True)
    # "<type> <author id> <flags>": what the fanout needs without decoding the frame.
    header = models.CharField(max_length=100)
    frame = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["room_id", "seq"], name="room_event_seq_once")]
        indexes = [models.Index(fields=["created_at"], name="room_event_age")]

    def __str__(self) -> str:
        return f"room {self.room_id} #{self.seq}"


# --- Moderation: reports and the audit log ----------------------------------------------------


class Report(models.Model):
    """A user's report of a comment: it waits in the staff queue until resolved.

    Resolving one report resolves every open report of the same comment: they ask the
    same question.
    """

    class Status(models.TextChoices):
        OPEN = "open"
        RESOLVED = "resolved"

    class Resolution(models.TextChoices):
        DISMISS = "dismiss"
        DELETE_COMMENT = "delete_comment"
        MUTE = "mute"
        BAN = "ban"

    # No foreign key in PostgreSQL: comments are partitioned by month (a key would have to
    # name the month too). Django still cascades a comment's deletion; the retention that
    # drops a month deletes its reports first (rooms/services/retention.py).
    comment = models.ForeignKey(Comment, on_delete=models.CASCADE, related_name="reports", db_constraint=False)
    # The comment's room, kept here so that the queue filters by room without a join.
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="comment_reports")
    reporter = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=500)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    resolution = models.CharField(max_length=20, choices=Resolution.choices, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["comment", "reporter"], name="report_once_per_user")]
        indexes = [models.Index(fields=["status", "id"], name="report_queue")]

    def __str__(self) -> str:
        return f"report {self.pk} of comment {self.comment_id} ({self.status})"


class ModerationAction(models.Model):
    """One moderation act, for the audit log: who did what to whom, where, when and why.

    The moderation services write it in the act's own transaction, so the log holds
    exactly the acts that happened. Rows are never changed; the references survive the
    deletion of what they point at as nulls, so the log outlives users and rooms.
    """

    class Action(models.TextChoices):
        MODERATOR_ADD = "moderator_add"
        MODERATOR_REMOVE = "moderator_remove"
        MUTE = "mute"
        UNMUTE = "unmute"
        BAN = "ban"
        UNBAN = "unban"
        COMMENT_DELETE = "comment_delete"
        REPORT_RESOLVE = "report_resolve"
        BANNED_WORD_ADD = "banned_word_add"
        BANNED_WORD_REMOVE = "banned_word_remove"
        ROOM_SUSPEND = "room_suspend"
        HOST_VERIFY = "host_verify"
        COIN_GRANT = "coin_grant"  # staff gave a user coins (a county's campaign for its cadre host)

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=32, choices=Action.choices)
    target_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    room = models.ForeignKey(Room, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # As Report.comment: no key in PostgreSQL; a dropped month's comments leave it null.
    comment = models.ForeignKey(
        Comment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_constraint=False
    )
    reason = models.CharField(max_length=500, blank=True)
    # What else the act needs to be understood: a mute's duration, a word, a resolution.
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["room", "-id"], name="moderation_action_room"),
            models.Index(fields=["target_user", "-id"], name="moderation_action_target"),
        ]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor_id} at {self.created_at:%Y-%m-%d %H:%M}"


# --- Statistics ---------------------------------------------------------------------------------


class RoomStatsReport(models.Model):
    """A show's audience figures, written once when it ends, so that they outlive Redis.

    While a room is live its views, visitors, peak and likes exist only as Redis counters
    (rooms/realtime/); a Celery task copies them here at the end. Order figures are not
    kept: the orders in PostgreSQL stay their truth, and refunds after the show change them.
    """

    room = models.OneToOneField(Room, on_delete=models.CASCADE, primary_key=True, related_name="stats_report")
    views = models.PositiveBigIntegerField(default=0)
    unique_viewers = models.PositiveBigIntegerField(default=0)
    peak_viewers = models.PositiveBigIntegerField(default=0)
    likes = models.PositiveBigIntegerField(default=0)
    written_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"stats of room {self.room_id}"


# --- Gifts and giveaways ---------------------------------------------------------------------
#
# The coins behind a gift move in the ledger (orders); the rows here are what the room
# shows: the catalog, who sent what (the leaderboard sums these), and the giveaways.


class Gift(models.Model):
    """A virtual gift viewers send to a room's host, priced in coins. Seeded by a migration."""

    name = models.CharField(max_length=64, unique=True)
    # The catalog is the platform's, named in English; its Chinese name for Chinese pages.
    name_zh = models.CharField(max_length=64, blank=True)
    coins = models.PositiveIntegerField()
    # A static file ("gifts/hotpot.svg", served under STATIC_URL) or an absolute URL.
    image_url = models.CharField(max_length=500)
    position = models.PositiveIntegerField(default=0)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["position", "id"]
        constraints = [models.CheckConstraint(condition=Q(coins__gte=1), name="gift_coins_positive")]

    def __str__(self) -> str:
        return f"{self.name} ({self.coins} coins)"


class GiftSend(models.Model):
    """One gift sent in a room. Its coins moved in the ledger in the same transaction,
    under the key `gift:<id>`, so these rows sum to exactly what the ledger says."""

    room = models.ForeignKey(Room, on_delete=models.PROTECT, related_name="gift_sends")
    sender = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="gifts_sent")
    # The room's host at the time: the user whose earned coins rose.
    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="gifts_received")
    gift = models.ForeignKey(Gift, on_delete=models.PROTECT, related_name="sends")
    quantity = models.PositiveIntegerField()
    coins = models.BigIntegerField(help_text="What the sender paid: the gift's price times the quantity.")
    host_coins = models.BigIntegerField(help_text="The host's share; the platform kept the rest.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gte=1) & Q(coins__gte=1), name="gift_send_positive"),
            models.CheckConstraint(
                condition=Q(host_coins__gte=0) & Q(host_coins__lte=models.F("coins")), name="gift_send_share_in_range"
            ),
        ]
        # The leaderboard's GROUP BY sender within a room.
        indexes = [models.Index(fields=["room", "sender"], name="gift_send_room_sender")]

    def __str__(self) -> str:
        return f"{self.sender_id} sent {self.quantity} x {self.gift_id} in {self.room_id}"


class Giveaway(models.Model):
    """A provably fair draw among a room's viewers (CONTRACT.md, rooms/fairness.py).

    `seed` stays secret until the draw; `commitment` (its hash) is public from the start.
    When `prize_sku` is set, `winners_count` of its units are held from creation, so that
    they exist at the draw; the ones no winner takes go back to stock.
    """

    class Status(models.TextChoices):
        OPEN = "open"
        DRAWN = "drawn"
        FULFILLED = "fulfilled"  # every winner claimed the prize or let it go
        CANCELLED = "cancelled"

    KEYWORD_MAX_LENGTH = 30

    room = models.ForeignKey(Room, on_delete=models.PROTECT, related_name="giveaways")
    title = models.CharField(max_length=120)
    prize_sku = models.ForeignKey(Sku, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    winners_count = models.PositiveIntegerField()
    keyword = models.CharField(max_length=KEYWORD_MAX_LENGTH, blank=True)
    # The keyword as comments are compared with it (rooms.services.giveaways.keyword_key).
    keyword_key = models.CharField(max_length=4 * KEYWORD_MAX_LENGTH, blank=True)
    followers_only = models.BooleanField(default=False)
    min_account_age_s = models.PositiveIntegerField(default=0)
    seed = models.CharField(max_length=64, help_text="Secret until the draw.")
    commitment = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    closes_at = models.DateTimeField()
    drawn_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    fulfilled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [models.CheckConstraint(condition=Q(winners_count__gte=1), name="giveaway_winners_positive")]
        indexes = [
            # The sweeper's query: open giveaways past their close.
            models.Index(fields=["closes_at"], condition=Q(status="open"), name="giveaway_open_close"),
            # Every comment in a room asks whether it is an open giveaway's keyword.
            models.Index(fields=["room", "keyword_key"], condition=Q(status="open"), name="giveaway_open_keyword"),
        ]

    def __str__(self) -> str:
        return f"giveaway {self.pk}: {self.title}"

    @property
    def is_drawn(self) -> bool:
        return self.status in (self.Status.DRAWN, self.Status.FULFILLED)


class GiveawayEntry(models.Model):
    """A user in a giveaway's draw: once per user (the unique constraint decides races).

    The entries are public (user ids), so anyone can recompute the winners. An entrant
    whom the rules exclude at the draw (unfollowed the host, was banned) stays listed
    with `eligible` false and the reason, and is left out of the draw.
    """

    class Via(models.TextChoices):
        API = "api"
        COMMENT = "comment"

    giveaway = models.ForeignKey(Giveaway, on_delete=models.PROTECT, related_name="entries")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="giveaway_entries")
    via = models.CharField(max_length=16, choices=Via.choices, default=Via.API)
    entered_at = models.DateTimeField(auto_now_add=True)
    eligible = models.BooleanField(default=True)
    excluded_reason = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["giveaway", "user"], name="giveaway_entry_once")]

    def __str__(self) -> str:
        return f"{self.user_id} in giveaway {self.giveaway_id}"


class GiveawayWinner(models.Model):
    """A winner of a drawn giveaway, by rank, and what became of the prize.

    `pending` winners have until `claim_deadline` to claim (the claim creates a prize
    order, in orders); the sweeper forfeits the others and their units go back to stock.
    """

    class Status(models.TextChoices):
        PENDING = "pending"  # a prize waits for the winner's claim
        CLAIMED = "claimed"
        FORFEITED = "forfeited"
        NO_PRIZE = "no_prize"  # a giveaway without a prize sku: nothing to claim

    giveaway = models.ForeignKey(Giveaway, on_delete=models.PROTECT, related_name="winners")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="giveaway_wins")
    rank = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices)
    claim_deadline = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    forfeited_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["giveaway", "rank"]
        constraints = [
            models.UniqueConstraint(fields=["giveaway", "user"], name="giveaway_winner_once"),
            models.UniqueConstraint(fields=["giveaway", "rank"], name="giveaway_winner_rank_once"),
        ]
        indexes = [
            # The sweeper's query: prizes not claimed in time.
            models.Index(fields=["claim_deadline"], condition=Q(status="pending"), name="giveaway_winner_due"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} won #{self.rank} of giveaway {self.giveaway_id}"
