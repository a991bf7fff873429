"""The statistics endpoints over REST: a room's figures for its host and staff, the
district report for staff (JSON, or CSV with `?format=csv`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import permissions, renderers, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from liveshop.api_docs import errors
from liveshop.csv_export import CsvRenderer, JsonOrCsvMixin, PeriodQuerySerializer, csv_cell, period_report_schema
from liveshop.errors import NotFound, PermissionDenied
from orders import stats
from rooms import selectors as room_selectors

# --- Serializers (the schema of the answers) ------------------------------------------------------


class RoomStatsSerializer(serializers.Serializer[Any]):
    viewers_now = serializers.IntegerField(help_text="Sockets open to the room now.")
    peak_viewers = serializers.IntegerField(help_text="The most sockets open at once.")
    views = serializers.IntegerField(help_text="Joins of the room (a reload is a new view).")
    unique_viewers = serializers.IntegerField(help_text="Distinct users or devices.")
    likes = serializers.IntegerField()
    comments = serializers.IntegerField(help_text="Comments, less those moderators removed.")
    orders = serializers.IntegerField(help_text="Paid orders not refunded in full.")
    items_sold = serializers.IntegerField(help_text="Units of those orders.")
    gmv = serializers.IntegerField(help_text="Paid orders less refunds, in fen.")
    gmv_pending = serializers.IntegerField(help_text="Orders waiting for payment, in fen.")
    refunds = serializers.IntegerField(help_text="Refunded on paid orders, in fen.")
    gift_coins = serializers.IntegerField()
    currency = serializers.CharField()
    final = serializers.BooleanField(
        help_text="True once the show ended and its audience figures come from the durable report."
    )


class DistrictRowSerializer(serializers.Serializer[Any]):
    district = serializers.CharField()
    shows = serializers.IntegerField(help_text="Rooms that went live in the period.")
    views = serializers.IntegerField()
    products = serializers.IntegerField(help_text="Distinct products on their shelves.")
    items_sold = serializers.IntegerField()
    sales = serializers.IntegerField(help_text="Paid amount less refunds, in fen.")


class DistrictTotalsSerializer(serializers.Serializer[Any]):
    shows = serializers.IntegerField()
    views = serializers.IntegerField()
    products = serializers.IntegerField(help_text="Distinct over all districts.")
    items_sold = serializers.IntegerField()
    sales = serializers.IntegerField()


class DistrictReportSerializer(serializers.Serializer[Any]):
    period_from = serializers.DateField()
    to = serializers.DateField()
    time_zone = serializers.CharField(help_text="The days are days in this time zone (STATS_TIME_ZONE).")
    currency = serializers.CharField()
    rows = DistrictRowSerializer(many=True)
    totals = DistrictTotalsSerializer()

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        fields["from"] = fields.pop("period_from")  # `from` is a Python keyword
        return fields


# --- CSV ------------------------------------------------------------------------------------------

CSV_COLUMNS = ("district", "shows", "views", "products", "items_sold", "sales", "currency")


class DistrictReportCsvRenderer(CsvRenderer):
    """The district report as CSV: a header, one line per district, a last `TOTAL` line.
    Money in fen, as in the JSON."""

    def rows(self, data: Any) -> Iterable[Iterable[Any]]:
        yield CSV_COLUMNS
        currency = data["currency"]
        for row in data["rows"]:
            yield [csv_cell(row[name]) for name in CSV_COLUMNS[:-1]] + [currency]
        totals = data["totals"]
        yield ["TOTAL", *(totals[name] for name in CSV_COLUMNS[1:-1]), currency]


# --- Views ----------------------------------------------------------------------------------------


class RoomStatsView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        responses={200: RoomStatsSerializer, **errors(401, 403, 404)},
        description="The show's figures, for its host and staff: live while the room is live; once it "
        "ended, the audience from its durable report (`final: true`) and the money from its orders.",
    )
    def get(self, request: Request, pk: int) -> Response:
        room = room_selectors.rooms_visible_to(request.user).filter(pk=pk).first()
        if room is None:
            raise NotFound("No such room.")
        if not (room_selectors.is_room_host(request.user, room) or request.user.is_staff):
            raise PermissionDenied("Only the room's host and staff see its figures.")
        return Response(stats.room_stats(room=room))


class DistrictStatsView(JsonOrCsvMixin, APIView):
    permission_classes = [permissions.IsAdminUser]
    renderer_classes = [renderers.JSONRenderer, DistrictReportCsvRenderer]

    @extend_schema(
        **period_report_schema(
            json_answer=DistrictReportSerializer, csv_columns=CSV_COLUMNS, errors=errors(400, 401, 403)
        ),
        description="Per host district, the shows that went live in the period (days in STATS_TIME_ZONE), "
        "their views, distinct products shown, and the units and sales (paid less refunds, fen) of the "
        "orders placed in them, with totals.",
    )
    def get(self, request: Request) -> Response:
        query = PeriodQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        start: dt.date = query.validated_data["from"]
        end: dt.date = query.validated_data["to"]
        report = stats.district_report(start=start, end=end).as_dict()
        response = Response(report)
        if isinstance(request.accepted_renderer, DistrictReportCsvRenderer):
            response["Content-Disposition"] = f'attachment; filename="liveshop-districts-{start}-{end}.csv"'
        return response
