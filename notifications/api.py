"""The bell: GET /notifications/ (newest first), GET /notifications/unread/, POST
/notifications/read/ {upto?}; and a ticket for /ws/me/ for clients without the cookie."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import generics, permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from liveshop.api_docs import errors
from liveshop.permissions import authenticated_user
from notifications import selectors, services
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
