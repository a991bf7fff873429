"""Red envelopes over REST (CONTRACT.md, "Red envelopes")."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from envelopes import selectors, services
from envelopes.models import RedEnvelope
from liveshop.api_docs import errors, idempotency_key_parameter
from liveshop.errors import NotFound, PermissionDenied
from liveshop.idempotency import IdempotentCall, idempotent
from liveshop.permissions import authenticated_user
from rooms import selectors as room_selectors
from rooms.api_gifts import PublicUserSerializer

_IDEMPOTENCY_PARAMETER = idempotency_key_parameter(
    "Retries with the same key and body return the first envelope and take the coins once; kept 24 hours."
)


class RedEnvelopeCreateSerializer(serializers.Serializer[Any]):
    coins = serializers.IntegerField(min_value=1, max_value=RedEnvelope.MAX_COINS)
    shares = serializers.IntegerField(min_value=1, max_value=RedEnvelope.MAX_SHARES)
    opens_in_s = serializers.IntegerField(min_value=0, max_value=RedEnvelope.MAX_OPENS_IN_S, default=0)
    followers_only = serializers.BooleanField(default=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["shares"] > attrs["coins"]:
            raise serializers.ValidationError({"shares": ["At most `coins`: every share is at least one coin."]})
        return attrs


class GrabSerializer(serializers.Serializer[Any]):
    user = PublicUserSerializer()
    coins = serializers.IntegerField()


class RedEnvelopeSerializer(serializers.Serializer[Any]):
    """The shape of envelopes.services.red_envelope_public (for the schema)."""

    id = serializers.IntegerField()
    room = serializers.IntegerField()
    coins = serializers.IntegerField()
    shares = serializers.IntegerField()
    remaining_shares = serializers.IntegerField()
    opens_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    status = serializers.ChoiceField(choices=RedEnvelope.Status.choices)
    followers_only = serializers.BooleanField(help_text="Added: only the host's followers may grab.")
    grabs = GrabSerializer(many=True, required=False, help_text="Once empty or expired: who got what.")


class GrabbedSerializer(serializers.Serializer[Any]):
    coins = serializers.IntegerField(help_text="The share this user won.")


class RoomRedEnvelopesView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        request=RedEnvelopeCreateSerializer,
        parameters=[_IDEMPOTENCY_PARAMETER],
        responses={201: RedEnvelopeSerializer, **errors(400, 401, 402, 403, 404, 409, 422)},
        description="Drop a red envelope (the room's host, while live): the coins leave the host's wallet at once "
        "(402 `insufficient_coins`), split into random shares of at least one coin; the room hears "
        "`red_envelope.dropped`.",
    )
    def post(self, request: Request, pk: int) -> HttpResponse:
        return idempotent(request, lambda call: self._drop(request, pk, call))

    def _drop(self, request: Request, pk: int, call: IdempotentCall) -> Response:
        sender = authenticated_user(request)
        room = room_selectors.rooms_visible_to(sender).filter(pk=pk).first()
        if room is None:
            raise NotFound("No such room.")
        if not room_selectors.is_room_host(sender, room):
            raise PermissionDenied("Only the room's host drops red envelopes in it.")
        envelope = call.resumed(RedEnvelope)
        if envelope is None:
            data = RedEnvelopeCreateSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            envelope = services.red_envelope_drop(
                room=room, sender=sender, on_created=call.attach, **data.validated_data
            )
        return Response(services.red_envelope_public(envelope), status=status.HTTP_201_CREATED)


class RedEnvelopeGrabView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        request=None,
        responses={201: GrabbedSerializer, 200: GrabbedSerializer, **errors(401, 403, 404, 409)},
        description="Grab a share: 201 with the coins won (now in your wallet), 200 with the same share when asked "
        "again; 409 `red_envelope_empty` once every share is taken, `conflict` before `opens_at` or after "
        "`expires_at`; 403 for the sender, and for non-followers of a followers-only envelope's host.",
    )
    def post(self, request: Request, pk: int) -> Response:
        facts = services.envelope_facts(pk)
        if facts is None:
            raise NotFound("No such red envelope.")
        grabbed = services.red_envelope_grab(facts=facts, user=authenticated_user(request))
        return Response({"coins": grabbed.coins}, status=status.HTTP_201_CREATED if grabbed.created else 200)


class RedEnvelopeDetailView(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(responses={200: RedEnvelopeSerializer, **errors(404)})
    def get(self, request: Request, pk: int) -> Response:
        envelope = selectors.red_envelope_visible_get(user=request.user, envelope_id=pk)
        return Response(selectors.red_envelope_detail(envelope))
