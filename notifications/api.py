"""The bell: GET /notifications/ (newest first), GET /notifications/unread/, POST
/notifications/read/ {upto?}; and a ticket for /ws/me/ for clients without the cookie."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import generics, permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from liveshop.api_docs import errors
from liveshop.errors import Conflict
from liveshop.permissions import authenticated_user
from notifications import push, selectors, services
from notifications.models import Notification


class NotificationSerializer(serializers.Serializer[Notification]):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=Notification.Kind.choices)
    # DRF's metaclass takes declared fields off the class: no clash with Serializer.data.
    data = serializers.DictField(  # type: ignore[assignment]
        help_text="What it is about: {host, room}, {order}, {giveaway, room}."
    )
    created_at = serializers.DateTimeField()
    read = serializers.SerializerMethodField()

    def get_read(self, notification: Notification) -> bool:
        return notification.read_at is not None


UNREAD = inline_serializer("NotificationsUnread", fields={"unread": serializers.IntegerField()})


class NotificationListView(generics.ListAPIView[Notification]):
    permission_classes = [permissions.IsAuthenticated]
    serializer_class = NotificationSerializer

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return Notification.objects.none()
        return selectors.notifications_of(user_id=authenticated_user(self.request).pk)


class NotificationUnreadView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={200: UNREAD, **errors(401)})
    def get(self, request: Request) -> Response:
        unread, _ = selectors.notifications_unread(user_id=authenticated_user(request).pk)
        return Response({"unread": unread})


class NotificationReadSerializer(serializers.Serializer[Any]):
    upto = serializers.IntegerField(required=False, min_value=1, help_text="Up to this id; all when absent.")


class NotificationReadView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=NotificationReadSerializer, responses={200: UNREAD, **errors(400, 401)})
    def post(self, request: Request) -> Response:
        data = NotificationReadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        unread = services.notifications_mark_read(
            user_id=authenticated_user(request).pk, upto=data.validated_data.get("upto")
        )
        return Response({"unread": unread})


TICKET = inline_serializer(
    "UserSocketTicket", fields={"ticket": serializers.CharField(), "expires_at": serializers.DateTimeField()}
)


class UserSocketTicketView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=None, responses={201: TICKET, **errors(401)})
    def post(self, request: Request) -> Response:
        ticket, expires_at = services.socket_ticket_issue(user_id=authenticated_user(request).pk)
        return Response({"ticket": ticket, "expires_at": expires_at}, status=status.HTTP_201_CREATED)


PUSH_CONFIG = inline_serializer("PushConfig", fields={"vapid_public_key": serializers.CharField(allow_null=True)})


class PushConfigView(APIView):
    """The VAPID public key a page passes to PushManager.subscribe(); null: no push here."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(responses={200: PUSH_CONFIG})
    def get(self, request: Request) -> Response:
        return Response({"vapid_public_key": settings.VAPID_PUBLIC_KEY if push.push_enabled() else None})


class PushKeysSerializer(serializers.Serializer[Any]):
    p256dh = serializers.CharField(max_length=128)
    auth = serializers.CharField(max_length=64)


class PushSubscriptionSerializer(serializers.Serializer[Any]):
    """As PushSubscription.toJSON() gives it."""

    endpoint = serializers.URLField(max_length=1000)
    keys = PushKeysSerializer()
    language = serializers.ChoiceField(
        choices=[code for code, _ in settings.LANGUAGES],
        required=False,
        default="en",
        help_text="The page's language: the words of the pushes (added).",
    )


class PushUnsubscribeSerializer(serializers.Serializer[Any]):
    endpoint = serializers.URLField(max_length=1000)


class PushSubscriptionView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        request=PushSubscriptionSerializer,
        responses={201: None, 200: None, **errors(400, 401, 409)},
        description="Keep this browser's push subscription (201; 200 when known). 400 `invalid` for an "
        "endpoint that is not a browser push service or keys that are not keys; 409 `conflict` when "
        "this server has no VAPID key.",
    )
    def post(self, request: Request) -> Response:
        if not push.push_enabled():
            raise Conflict("Web Push is not configured on this server.")
        data = PushSubscriptionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        keys = data.validated_data["keys"]
        _, created = push.push_subscription_save(
            user=authenticated_user(request),
            endpoint=data.validated_data["endpoint"],
            p256dh=keys["p256dh"],
            auth=keys["auth"],
            language=data.validated_data["language"],
        )
        return Response(status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(request=PushUnsubscribeSerializer, responses={204: None, **errors(400, 401)})
    def delete(self, request: Request) -> Response:
        data = PushUnsubscribeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        push.push_subscription_delete(user=authenticated_user(request), endpoint=data.validated_data["endpoint"])
        return Response(status=status.HTTP_204_NO_CONTENT)
