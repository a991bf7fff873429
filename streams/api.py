"""The ingest server's callbacks (nginx-rtmp on_publish/on_publish_done) and key rotation."""

from __future__ import annotations

import hmac
from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from liveshop.api_docs import errors
from liveshop.errors import NotFound, PermissionDenied
from rooms import selectors as room_selectors
from streams import replays, services

MAX_FIELD = 255
# The nginx-rtmp application that writes HLS and records (deploy/nginx-rtmp.conf).
RECORDING_APP = "hls"


class PublishCallbackSerializer(serializers.Serializer[Any]):
    """The form nginx-rtmp posts (notify_method post); other fields (flashver, tcurl,
    the publish URL's own query args...) are accepted and ignored."""

    call = serializers.CharField(max_length=32)
    app = serializers.CharField(max_length=MAX_FIELD)
    name = serializers.CharField(max_length=MAX_FIELD)
    addr = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    clientid = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")


class RecordDoneSerializer(PublishCallbackSerializer):
    """on_record_done adds the recorder's name and the file's path."""

    path = serializers.CharField(max_length=1024)
    recorder = serializers.CharField(max_length=MAX_FIELD, required=False, allow_blank=True, default="")


class StreamKeySerializer(serializers.Serializer[Any]):
    stream_key = serializers.CharField()
    ingest_url = serializers.CharField(allow_blank=True)


SECRET_PARAMETER = OpenApiParameter("secret", str, description="INGEST_CALLBACK_SECRET", required=False)


def _check_secret(request: Request) -> None:
    expected = settings.INGEST_CALLBACK_SECRET
    given = request.query_params.get("secret", "")
    if not expected or not hmac.compare_digest(expected.encode(), given.encode()):
        raise PermissionDenied("Wrong or missing ingest callback secret.")


def _ingest_node(request: Request) -> str:
    # The nginx config names its node in the callback URL (&node=...); else its address.
    return request.query_params.get("node", "")[:MAX_FIELD] or request.META.get("REMOTE_ADDR", "")


def _callback(
    request: Request, call: str, *, app: str = "", form: type[PublishCallbackSerializer] = PublishCallbackSerializer
) -> dict[str, Any]:
    _check_secret(request)
    data = form(data=request.data)
    data.is_valid(raise_exception=True)
    if data.validated_data["call"] != call:
        raise serializers.ValidationError({"call": [f"Expected {call!r}."]})
    if data.validated_data["app"] != (app or settings.RTMP_APP):
        raise services.StreamRefused("Unknown application.")
    return dict(data.validated_data)


class _IngestCallbackView(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [permissions.AllowAny]
    parser_classes = [FormParser, MultiPartParser]
    throttle_classes: list[Any] = []


class OnPublishView(_IngestCallbackView):
    @extend_schema(
        parameters=[SECRET_PARAMETER],
        request={"application/x-www-form-urlencoded": PublishCallbackSerializer},
        responses={
            302: OpenApiResponse(description="Accepted; `Location` is the room's public stream name."),
            **errors(400, 403),
        },
    )
    def post(self, request: Request) -> Response:
        data = _callback(request, "publish")
        session = services.stream_publish_start(
            key=data["name"], ingest_node=_ingest_node(request), client_addr=data["addr"], client_id=data["clientid"]
        )
        # nginx-rtmp renames the stream to a bare (non rtmp://) Location: HLS files and
        # playlists carry the public name, never the key.
        return Response(status=status.HTTP_302_FOUND, headers={"Location": session.stream_name})


class OnPublishDoneView(_IngestCallbackView):
    @extend_schema(
        parameters=[SECRET_PARAMETER],
        request={"application/x-www-form-urlencoded": PublishCallbackSerializer},
        responses={200: OpenApiResponse(description="Done (also when nothing was open)."), **errors(400, 403)},
    )
    def post(self, request: Request) -> Response:
        data = _callback(request, "publish_done")
        services.stream_publish_done(name=data["name"], ingest_node=_ingest_node(request), client_id=data["clientid"])
        return Response(status=status.HTTP_200_OK)


class OnRecordDoneView(_IngestCallbackView):
    """A recording of a room's stream is complete (nginx-rtmp's on_record_done, from the
    `hls` application, where the stream carries its public name): kept for the replay."""

    @extend_schema(
        parameters=[SECRET_PARAMETER],
        request={"application/x-www-form-urlencoded": RecordDoneSerializer},
        responses={200: OpenApiResponse(description="Kept (or not ours: ignored)."), **errors(400, 403)},
    )
    def post(self, request: Request) -> Response:
        data = _callback(request, "record_done", app=RECORDING_APP, form=RecordDoneSerializer)
        replays.recording_done(name=data["name"], path=data["path"], ingest_node=_ingest_node(request))
        return Response(status=status.HTTP_200_OK)


class RoomStreamKeyView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=None, responses={200: StreamKeySerializer, **errors(401, 403, 404)})
    def post(self, request: Request, pk: int) -> Response:
        room = room_selectors.rooms_visible_to(request.user).filter(pk=pk).first()
        if room is None:
            raise NotFound("No such room.")
        if not room_selectors.is_room_host(request.user, room):
            raise PermissionDenied("Only the room's host may rotate its stream key.")
        room = services.stream_key_rotate(room=room)
        return Response({"stream_key": room.stream_key, "ingest_url": settings.RTMP_INGEST_URL})
