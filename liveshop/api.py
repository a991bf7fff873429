"""Accounts over REST: register, tokens, and the current user."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema, extend_schema_field
from knox.models import AuthToken
from rest_framework import permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from liveshop import services
from liveshop.api_docs import errors
from liveshop.auth import TokenAuthentication
from liveshop.errors import Invalid, NotAuthenticated
from liveshop.models import User
from liveshop.permissions import authenticated_user, host_of
from liveshop.ratelimit import LoginThrottle, RegisterThrottle


class RegisterSerializer(serializers.Serializer[Any]):
    # What a username may be is checked by the service (services.user_register), for the
    # web page's sign-up too.
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=128, write_only=True, style={"input_type": "password"})
    display_name = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    district = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")


class RegisteredSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    username = serializers.CharField()
    display_name = serializers.CharField()
    district = serializers.CharField()
    token = serializers.CharField()


class TokenRequestSerializer(serializers.Serializer[Any]):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=128, style={"input_type": "password"})


class TokenSerializer(serializers.Serializer[Any]):
    token = serializers.CharField()


class MeHostSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    verified = serializers.BooleanField()


class MeSerializer(serializers.ModelSerializer[User]):
    host = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["id", "username", "display_name", "district", "is_staff", "host"]
        read_only_fields = ["id", "username", "is_staff", "host"]

    @extend_schema_field(MeHostSerializer(allow_null=True))
    def get_host(self, user: User) -> dict[str, Any] | None:
        host = host_of(user)
        return MeHostSerializer(host).data if host else None


class RegisterView(APIView):
    permission_classes = [permissions.AllowAny]
    authentication_classes: list[type] = []
    throttle_classes = [RegisterThrottle]

    @extend_schema(request=RegisterSerializer, responses={201: RegisteredSerializer, **errors(400)})
    def post(self, request: Request) -> Response:
        data = RegisterSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_register(**data.validated_data)
        body = {
            "id": user.pk,
            "username": user.username,
            "display_name": user.display_name,
            "district": user.district,
            "token": services.user_token_create(user=user),
        }
        return Response(RegisteredSerializer(body).data, status=status.HTTP_201_CREATED)


def _presented_token(request: Request) -> tuple[AuthToken, str]:
    """The API token the request was authenticated with, and the token itself."""
    if not isinstance(request.auth, AuthToken):
        raise NotAuthenticated("Send the API token to revoke: Authorization: Token <token>.")
    _, key = request.META["HTTP_AUTHORIZATION"].split()
    return request.auth, key


class TokenView(APIView):
    """POST logs in (no credentials needed) and makes a new token, one per device;
    DELETE revokes the token it is sent with (as POST /auth/logout/)."""

    throttle_classes = [LoginThrottle]

    def get_authenticators(self) -> list[Any]:
        if self.request is not None and self.request.method == "POST":
            return []
        return super().get_authenticators()

    def get_permissions(self) -> list[Any]:
        if self.request is not None and self.request.method == "POST":
            return [permissions.AllowAny()]
        return [permissions.IsAuthenticated()]

    @extend_schema(request=TokenRequestSerializer, responses={200: TokenSerializer, **errors(400)})
    def post(self, request: Request) -> Response:
        data = TokenRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(
            request._request, username=data.validated_data["username"], password=data.validated_data["password"]
        )
        if user is None:
            raise Invalid("Wrong username or password.")
        return Response({"token": services.user_token_create(user=user)})

    @extend_schema(request=None, responses={204: None, **errors(401)})
    def delete(self, request: Request) -> Response:
        token, key = _presented_token(request)
        services.user_token_revoke(token=token, key=key)
        return Response(status=status.HTTP_204_NO_CONTENT)


class LogoutView(APIView):
    """Revokes the API token the request is sent with; the user's other devices stay in."""

    authentication_classes = [TokenAuthentication]
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=None, responses={204: None, **errors(401)})
    def post(self, request: Request) -> Response:
        token, key = _presented_token(request)
        services.user_token_revoke(token=token, key=key)
        return Response(status=status.HTTP_204_NO_CONTENT)


class LogoutAllView(APIView):
    """Revokes every API token of the user, on every device (a lost phone)."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=None, responses={204: None, **errors(401)})
    def post(self, request: Request) -> Response:
        services.user_tokens_revoke_all(user=authenticated_user(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={200: MeSerializer, **errors(401)})
    def get(self, request: Request) -> Response:
        return Response(MeSerializer(authenticated_user(request)).data)

    @extend_schema(request=MeSerializer, responses={200: MeSerializer, **errors(400, 401)})
    def patch(self, request: Request) -> Response:
        data = MeSerializer(authenticated_user(request), data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        data.save()
        return Response(data.data)
