"""Moderation over REST: room moderators, mutes, bans, comment deletion and reports, and
the staff side (report queue, banned words, audit log). Translate HTTP to service calls."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import generics, permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from liveshop.api_docs import errors
from liveshop.errors import NotFound, PermissionDenied
from liveshop.models import User
from liveshop.permissions import authenticated_user
from rooms import selectors, services
from rooms.api import UserPublicSerializer
from rooms.models import Ban, BannedWord, Comment, ModerationAction, Mute, Report, Room, RoomModerator
from rooms.services.moderation import MUTE_MAX_S, REPORT_MUTE_DEFAULT_S

# --- Serializers ----------------------------------------------------------------------------


class ModeratorSerializer(serializers.ModelSerializer[RoomModerator]):
    user = UserPublicSerializer(read_only=True)

    class Meta:
        model = RoomModerator
        fields = ["room", "user", "created_at"]
        read_only_fields = fields


class MuteSerializer(serializers.ModelSerializer[Mute]):
    user = UserPublicSerializer(read_only=True)

    class Meta:
        model = Mute
        fields = ["id", "room", "user", "until", "reason", "created_by", "created_at"]
        read_only_fields = fields


class BanSerializer(serializers.ModelSerializer[Ban]):
    user = UserPublicSerializer(read_only=True)

    class Meta:
        model = Ban
        fields = ["id", "room", "user", "reason", "created_by", "created_at"]
        read_only_fields = fields


_users = User.objects.filter(is_active=True)


class ModeratorCreateSerializer(serializers.Serializer[Any]):
    user = serializers.PrimaryKeyRelatedField(queryset=_users, help_text="The user id to appoint.")


class MuteCreateSerializer(serializers.Serializer[Any]):
    user = serializers.PrimaryKeyRelatedField(queryset=_users)
    duration_s = serializers.IntegerField(min_value=1, max_value=MUTE_MAX_S)
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class BanCreateSerializer(serializers.Serializer[Any]):
    user = serializers.PrimaryKeyRelatedField(queryset=_users)
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class ReportCreateSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(max_length=500)


class ReportSerializer(serializers.ModelSerializer[Report]):
    """A report as its reporter sees it."""

    class Meta:
        model = Report
        fields = ["id", "comment", "reason", "status", "created_at"]
        read_only_fields = fields


class ReportedCommentSerializer(serializers.ModelSerializer[Comment]):
    user = UserPublicSerializer(read_only=True)
    deleted = serializers.SerializerMethodField()

    class Meta:
        model = Comment
        fields = ["id", "room", "user", "text", "created_at", "deleted"]
        read_only_fields = fields

    def get_deleted(self, comment: Comment) -> bool:
        return comment.deleted_at is not None


class ReportQueueSerializer(serializers.ModelSerializer[Report]):
    """A report in the staff queue."""

    comment = ReportedCommentSerializer(read_only=True)
    reporter = UserPublicSerializer(read_only=True)
    resolved_by = serializers.SerializerMethodField()
    # Blank while the report is open; declared so that the schema says so (read-only model
    # fields lose allow_blank).
    resolution = serializers.ChoiceField(choices=Report.Resolution.choices, read_only=True, allow_blank=True)

    class Meta:
        model = Report
        fields = [
            "id",
            "room",
            "comment",
            "reporter",
            "reason",
            "status",
            "resolution",
            "resolved_by",
            "resolved_at",
            "created_at",
        ]
        read_only_fields = fields

    @extend_schema_field(UserPublicSerializer(allow_null=True))
    def get_resolved_by(self, report: Report) -> dict[str, Any] | None:
        return _user_ref(report.resolved_by)


class ReportQueueQuerySerializer(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=["open", "resolved", "all"], required=False, default="open")
    room = serializers.IntegerField(min_value=1, required=False)


class ReportResolveSerializer(serializers.Serializer[Any]):
    action = serializers.ChoiceField(choices=Report.Resolution.choices)
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    duration_s = serializers.IntegerField(
        min_value=1,
        max_value=MUTE_MAX_S,
        required=False,
        default=REPORT_MUTE_DEFAULT_S,
        help_text="For `mute`: how long (default 24 hours).",
    )


class BannedWordSerializer(serializers.ModelSerializer[BannedWord]):
    class Meta:
        model = BannedWord
        fields = ["id", "word"]
        read_only_fields = ["id"]
        extra_kwargs = {"word": {"max_length": 100, "validators": []}}


class AuditEntrySerializer(serializers.ModelSerializer[ModerationAction]):
    actor = serializers.SerializerMethodField()
    target_user = serializers.SerializerMethodField()

    class Meta:
        model = ModerationAction
        fields = ["id", "actor", "action", "target_user", "room", "comment", "reason", "details", "created_at"]
        read_only_fields = fields

    @extend_schema_field(UserPublicSerializer(allow_null=True))
    def get_actor(self, entry: ModerationAction) -> dict[str, Any] | None:
        return _user_ref(entry.actor)

    @extend_schema_field(UserPublicSerializer(allow_null=True))
    def get_target_user(self, entry: ModerationAction) -> dict[str, Any] | None:
        return _user_ref(entry.target_user)


class AuditQuerySerializer(serializers.Serializer[Any]):
    room = serializers.IntegerField(min_value=1, required=False)
    actor = serializers.IntegerField(min_value=1, required=False)
    target_user = serializers.IntegerField(min_value=1, required=False)
    action = serializers.ChoiceField(choices=ModerationAction.Action.choices, required=False)


def _user_ref(user: User | None) -> dict[str, Any] | None:
    return {"id": user.pk, "display_name": user.public_name} if user is not None else None


# --- Helpers --------------------------------------------------------------------------------


def _room(request: Request, room_id: int) -> Room:
    room = selectors.rooms_visible_to(request.user).filter(pk=room_id).first()
    if room is None:
        raise NotFound("No such room.")
    return room


def _moderated_room(request: Request, room_id: int) -> Room:
    """The room, if the requester may moderate it (host, room moderator, staff)."""
    room = _room(request, room_id)
    if not selectors.can_moderate(request.user, room):
        raise PermissionDenied("Only the room's host, its moderators and staff may do this.")
    return room


def _hosted_room(request: Request, room_id: int) -> Room:
    room = _room(request, room_id)
    if not selectors.is_room_host(request.user, room):
        raise PermissionDenied("Only the room's host may appoint or remove moderators.")
    return room


def _user(user_id: int) -> User:
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        raise NotFound("No such user.")
    return user


def _created(serializer: serializers.BaseSerializer[Any], created: bool) -> Response:
    return Response(serializer.data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class _RoomListView(generics.ListAPIView[Any]):
    """A paginated list of one room's moderation state, for those who moderate it."""

    permission_classes = [permissions.IsAuthenticated]

    def room(self) -> Room:
        return _moderated_room(self.request, self.kwargs["pk"])

    @property
    def schema_only(self) -> bool:
        # drf-spectacular calls get_queryset without a request's URL arguments.
        return bool(getattr(self, "swagger_fake_view", False))


# --- Room moderators ------------------------------------------------------------------------


class RoomModeratorsView(_RoomListView):
    serializer_class = ModeratorSerializer

    def get_queryset(self) -> QuerySet[RoomModerator]:
        if self.schema_only:
            return RoomModerator.objects.none()
        return selectors.room_moderators(room=self.room())

    @extend_schema(responses={200: ModeratorSerializer(many=True), **errors(401, 403, 404)})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=ModeratorCreateSerializer,
        responses={201: ModeratorSerializer, 200: ModeratorSerializer, **errors(400, 401, 403, 404, 409)},
        description="The host appoints a moderator (201; 200 if the user moderates the room already). "
        "409 `conflict` for a user banned from the room.",
    )
    def post(self, request: Request, pk: int) -> Response:
        room = _hosted_room(request, pk)
        data = ModeratorCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        moderator, created = services.room_moderator_add(
            actor=authenticated_user(request), room=room, user=data.validated_data["user"]
        )
        return _created(ModeratorSerializer(moderator), created)


class RoomModeratorDetailView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={204: None, **errors(401, 403, 404)})
    def delete(self, request: Request, pk: int, user_id: int) -> Response:
        room = _hosted_room(request, pk)
        services.room_moderator_remove(actor=authenticated_user(request), room=room, user=_user(user_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Mutes and bans ---------------------------------------------------------------------------


class RoomMutesView(_RoomListView):
    serializer_class = MuteSerializer

    def get_queryset(self) -> QuerySet[Mute]:
        if self.schema_only:
            return Mute.objects.none()
        return selectors.room_mutes_active(room=self.room())

    @extend_schema(responses={200: MuteSerializer(many=True), **errors(401, 403, 404)}, description="Active mutes.")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=MuteCreateSerializer,
        responses={201: MuteSerializer, **errors(400, 401, 403, 404)},
        description="Mute a user in the room for `duration_s` (a new mute replaces the last). Their comments "
        "get 403 `muted` until then; their sockets get a `moderation.muted` frame `{room, until, reason}`.",
    )
    def post(self, request: Request, pk: int) -> Response:
        room = _moderated_room(request, pk)
        data = MuteCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        mute = services.room_mute(actor=authenticated_user(request), room=room, **data.validated_data)
        return Response(MuteSerializer(mute).data, status=status.HTTP_201_CREATED)


class RoomMuteDetailView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        responses={204: None, **errors(401, 403, 404)},
        description="Lift the mute; the user's sockets get `moderation.unmuted` `{room}`.",
    )
    def delete(self, request: Request, pk: int, user_id: int) -> Response:
        room = _moderated_room(request, pk)
        services.room_unmute(actor=authenticated_user(request), room=room, user=_user(user_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class RoomBansView(_RoomListView):
    serializer_class = BanSerializer

    def get_queryset(self) -> QuerySet[Ban]:
        if self.schema_only:
            return Ban.objects.none()
        return selectors.room_bans(room=self.room())

    @extend_schema(responses={200: BanSerializer(many=True), **errors(401, 403, 404)})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=BanCreateSerializer,
        responses={201: BanSerializer, 200: BanSerializer, **errors(400, 401, 403, 404)},
        description="Ban a user from the room (201; 200 if banned already): their sockets to the room close "
        "with 4403 on every server at once, and cannot reopen.",
    )
    def post(self, request: Request, pk: int) -> Response:
        room = _moderated_room(request, pk)
        data = BanCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        ban, created = services.room_ban(actor=authenticated_user(request), room=room, **data.validated_data)
        return _created(BanSerializer(ban), created)


class RoomBanDetailView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={204: None, **errors(401, 403, 404)}, description="Lift the ban.")
    def delete(self, request: Request, pk: int, user_id: int) -> Response:
        room = _moderated_room(request, pk)
        services.room_unban(actor=authenticated_user(request), room=room, user=_user(user_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Comments and reports ----------------------------------------------------------------------


def _comment(request: Request, comment_id: int) -> Comment:
    comment = selectors.comment_visible_get(user=request.user, comment_id=comment_id)
    if comment is None:
        raise NotFound("No such comment.")
    return comment


class CommentDetailView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        responses={204: None, **errors(401, 403, 404)},
        description="Remove a comment (its author, the room's host or moderators, staff); event `comment.deleted`.",
    )
    def delete(self, request: Request, pk: int) -> Response:
        comment = _comment(request, pk)
        user = authenticated_user(request)
        if comment.user_id != user.pk and not selectors.can_moderate(user, comment.room):
            raise PermissionDenied("Only the comment's author and the room's moderators may remove it.")
        services.comment_delete(actor=user, comment=comment)
        return Response(status=status.HTTP_204_NO_CONTENT)


class CommentReportsView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        request=ReportCreateSerializer,
        responses={201: ReportSerializer, 200: ReportSerializer, **errors(400, 401, 404)},
        description="Report a comment to staff (201; 200 with the first report if you reported it already).",
    )
    def post(self, request: Request, pk: int) -> Response:
        comment = _comment(request, pk)
        data = ReportCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        report, created = services.comment_report(
            reporter=authenticated_user(request), comment=comment, reason=data.validated_data["reason"]
        )
        return _created(ReportSerializer(report), created)


# --- Staff: the report queue, banned words, the audit log ---------------------------------------


class ReportQueueView(generics.ListAPIView[Report]):
    permission_classes = [permissions.IsAdminUser]
    serializer_class = ReportQueueSerializer

    def get_queryset(self) -> QuerySet[Report]:
        query = ReportQueueQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        wanted = query.validated_data["status"]
        return selectors.reports_queue(
            status=None if wanted == "all" else wanted, room_id=query.validated_data.get("room")
        )

    @extend_schema(
        parameters=[ReportQueueQuerySerializer],
        responses={200: ReportQueueSerializer(many=True), **errors(400, 401, 403)},
        description="Reports, oldest first: the open ones unless `status` says otherwise.",
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class ReportResolveView(APIView):
    permission_classes = [permissions.IsAdminUser]

    @extend_schema(
        request=ReportResolveSerializer,
        responses={200: ReportQueueSerializer, **errors(400, 401, 403, 404, 409)},
        description="Resolve the report and every open report of the same comment: `dismiss`, "
        "`delete_comment`, `mute` (the author in the comment's room, for `duration_s`) or `ban` "
        "(the author from the room). 409 `conflict` once resolved.",
    )
    def post(self, request: Request, pk: int) -> Response:
        report = Report.objects.filter(pk=pk).first()
        if report is None:
            raise NotFound("No such report.")
        data = ReportResolveSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        resolved = services.report_resolve(
            actor=authenticated_user(request),
            report=report,
            resolution=data.validated_data["action"],
            reason=data.validated_data["reason"],
            duration_s=data.validated_data["duration_s"],
        )
        return Response(ReportQueueSerializer(selectors.reports_queue(status=None).get(pk=resolved.pk)).data)


class BannedWordsView(generics.ListAPIView[BannedWord]):
    permission_classes = [permissions.IsAdminUser]
    serializer_class = BannedWordSerializer
    queryset = BannedWord.objects.order_by("word")

    @extend_schema(responses={200: BannedWordSerializer(many=True), **errors(401, 403)})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=BannedWordSerializer,
        responses={201: BannedWordSerializer, **errors(400, 401, 403, 409)},
        description="Comments containing the word (case, width and spacing folded) are refused with "
        "`comment_blocked` from the next comment on, on every server. 409 `conflict` if listed already.",
    )
    def post(self, request: Request) -> Response:
        data = BannedWordSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        word = services.banned_word_add(actor=authenticated_user(request), word=data.validated_data["word"])
        return Response(BannedWordSerializer(word).data, status=status.HTTP_201_CREATED)


class BannedWordDetailView(APIView):
    permission_classes = [permissions.IsAdminUser]

    @extend_schema(responses={204: None, **errors(401, 403, 404)})
    def delete(self, request: Request, pk: int) -> Response:
        word = BannedWord.objects.filter(pk=pk).first()
        if word is None:
            raise NotFound("No such banned word.")
        services.banned_word_remove(actor=authenticated_user(request), banned_word=word)
        return Response(status=status.HTTP_204_NO_CONTENT)


class AuditLogView(generics.ListAPIView[ModerationAction]):
    permission_classes = [permissions.IsAdminUser]
    serializer_class = AuditEntrySerializer

    def get_queryset(self) -> QuerySet[ModerationAction]:
        query = AuditQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        filters = query.validated_data
        return selectors.moderation_actions(
            room_id=filters.get("room"),
            actor_id=filters.get("actor"),
            target_user_id=filters.get("target_user"),
            action=filters.get("action"),
        )

    @extend_schema(
        parameters=[AuditQuerySerializer],
        responses={200: AuditEntrySerializer(many=True), **errors(400, 401, 403)},
        description="Every moderation act, newest first: who (`actor`), what (`action`, `details`), whom "
        "(`target_user`), where (`room`, `comment`), when and why (`reason`).",
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)
