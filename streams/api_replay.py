"""A show's replay (CONTRACT.md, "Replay"): its state, video, chapters, and its comments at
their moments."""

from __future__ import annotations

from typing import Any

from django.core.files.storage import default_storage
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from liveshop.api_docs import errors
from liveshop.errors import NotFound
from rooms import selectors as room_selectors
from rooms.api import RoomFilter, RoomItemSerializer, RoomSerializer
from rooms.models import Comment, Room
from streams.models import Replay
from streams.replays import Timeline
from streams.selectors import room_video_ended


class ChapterSerializer(serializers.Serializer[Any]):
    at_s = serializers.FloatField()
    item = RoomItemSerializer()


class ReplaySerializer(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=["none", "processing", "ready", "failed"])
    playback_url = serializers.CharField(allow_null=True)
    duration_s = serializers.FloatField(allow_null=True)
    chapters = ChapterSerializer(many=True)
    error = serializers.CharField(allow_blank=True, help_text="(added) why a failed replay failed")


class ReplayCommentUserSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    display_name = serializers.CharField()


class ReplayCommentSerializer(serializers.ModelSerializer[Comment]):
    user = serializers.SerializerMethodField()
    at_s = serializers.SerializerMethodField()

    class Meta:
        model = Comment
        fields = ["id", "user", "text", "at_s"]

    @staticmethod
    def get_user(comment: Comment) -> dict[str, Any]:
        return {"id": comment.user_id, "display_name": comment.user.public_name}

    def get_at_s(self, comment: Comment) -> float:
        timeline: Timeline = self.context["timeline"]
        return round(timeline.offset(comment.created_at), 3)


def _room(request: Request, pk: int) -> Room:
    room = room_selectors.rooms_visible_to(request.user).filter(pk=pk).first()
    if room is None:
        raise NotFound("No such room.")
    return room


def replay_ready(room: Room) -> Replay | None:
    if room.status != Room.Status.ENDED:
        return None
    return Replay.objects.filter(room=room, status=Replay.Status.READY).first()


class RoomReplayView(APIView):
    @extend_schema(responses={200: ReplaySerializer, **errors(404)})
    def get(self, request: Request, pk: int) -> Response:
        room = _room(request, pk)
        replay = Replay.objects.filter(room=room).first() if room.status == Room.Status.ENDED else None
        if replay is None or replay.status == Replay.Status.EXPIRED:
            return Response({"status": "none", "playback_url": None, "duration_s": None, "chapters": [], "error": ""})
        ready = replay.status == Replay.Status.READY
        chapters: list[dict[str, Any]] = []
        if ready:
            items = {item.pk: item for item in room_selectors.room_items(room=room)}
            chapters = [
                {"at_s": chapter["at_s"], "item": RoomItemSerializer(items[chapter["item"]]).data}
                for chapter in replay.chapters
                if chapter["item"] in items
            ]
        url = default_storage.url(replay.playlist) if ready else None
        return Response(
            {
                "status": replay.status,
                "playback_url": request.build_absolute_uri(url) if url and url.startswith("/") else url,
                "duration_s": replay.duration_s if ready else None,
                "chapters": chapters,
                "error": replay.error if replay.status == Replay.Status.FAILED else "",
            }
        )


SECONDS = [
    OpenApiParameter("from_s", float, description="Comments at this offset or later"),
    OpenApiParameter("to_s", float, description="Comments at this offset or earlier"),
]


class RoomReplayCommentsView(generics.ListAPIView[Comment]):
    """The show's comments that were not removed, each at its offset in the replay, oldest first."""

    serializer_class = ReplayCommentSerializer

    def _offsets(self) -> tuple[float | None, float | None]:
        bounds = []
        for name in ("from_s", "to_s"):
            raw = self.request.query_params.get(name) or ""
            try:
                value = float(raw) if raw else None
            except ValueError:
                raise serializers.ValidationError({name: ["A number of seconds."]}) from None
            if value is not None and not 0 <= value <= 10**7:
                raise serializers.ValidationError({name: ["Between 0 and 10,000,000 seconds."]})
            bounds.append(value)
        return bounds[0], bounds[1]

    def get_queryset(self) -> QuerySet[Comment]:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no room to look up
            return Comment.objects.none()
        room = _room(self.request, int(self.kwargs["pk"]))
        from_s, to_s = self._offsets()
        replay = replay_ready(room)
        if replay is None:
            return Comment.objects.none()
        self.timeline = Timeline.load(replay.timeline)
        comments = Comment.objects.filter(room=room, deleted_at__isnull=True).select_related("user")
        low, high = self.timeline.wall_range(from_s, to_s)
        if low is not None:
            comments = comments.filter(created_at__gte=low)
        if high is not None:
            comments = comments.filter(created_at__lte=high)
        return comments.order_by("created_at", "id")

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "timeline": getattr(self, "timeline", Timeline([]))}

    @extend_schema(parameters=SECONDS, responses={200: ReplayCommentSerializer(many=True), **errors(400, 404)})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


# --- The shows one can watch again ----------------------------------------------------------


class ReplaySummarySerializer(serializers.Serializer[Any]):
    duration_s = serializers.FloatField()
    chapters = serializers.IntegerField(help_text="How many products the show explained")
    ready_at = serializers.DateTimeField()


class ReplayRoomSerializer(RoomSerializer):
    """An ended show in the list of replays: the room, and its replay's length and chapters."""

    replay = serializers.SerializerMethodField()

    class Meta(RoomSerializer.Meta):
        fields = [*RoomSerializer.Meta.fields, "replay"]
        read_only_fields = fields

    @extend_schema_field(ReplaySummarySerializer)
    def get_replay(self, room: Room) -> dict[str, Any]:
        replay = room.replay
        return {"duration_s": replay.duration_s, "chapters": len(replay.chapters), "ready_at": replay.ready_at}

    def get_video(self, room: Room) -> dict[str, Any]:
        return room_video_ended(room)


class ReplayListView(generics.ListAPIView[Room]):
    """(added) Ended shows whose replay is ready, the newest first; `?host=` and `?district=` filter."""

    serializer_class = ReplayRoomSerializer
    filterset_class = RoomFilter

    def get_queryset(self) -> QuerySet[Room]:
        return (
            room_selectors.rooms_visible_to(self.request.user)
            .filter(status=Room.Status.ENDED, replay__status=Replay.Status.READY)
            .select_related("replay")
            .order_by("-ended_at", "-id")
        )

    @extend_schema(responses={200: ReplayRoomSerializer(many=True), **errors(400)})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)
