"""Reports for a period that answer JSON, or CSV with `?format=csv` (the district report, statements)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import renderers, serializers
from rest_framework.request import Request

from liveshop.errors import Invalid


class PeriodQuerySerializer(serializers.Serializer[Any]):
    """`?from=YYYY-MM-DD&to=YYYY-MM-DD[&format=csv]`: a report's days, both included.
    Subclasses may set MAX_DAYS."""

    MAX_DAYS: int | None = None

    period_from = serializers.DateField(input_formats=["%Y-%m-%d"], help_text="First day, YYYY-MM-DD.")
    to = serializers.DateField(input_formats=["%Y-%m-%d"], help_text="Last day (included), YYYY-MM-DD.")
    format = serializers.ChoiceField(choices=["json", "csv"], required=False, default="json")

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        fields["from"] = fields.pop("period_from")  # `from` is a Python keyword
        return fields

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["from"] > attrs["to"]:
            raise serializers.ValidationError({"to": ["Must be on or after `from`."]})
        if self.MAX_DAYS is not None and (attrs["to"] - attrs["from"]).days >= self.MAX_DAYS:
            raise serializers.ValidationError({"to": [f"A period covers at most {self.MAX_DAYS} days."]})
        return attrs


def period_report_schema(*, json_answer: Any, csv_columns: Iterable[str], errors: dict[int, Any]) -> dict[str, Any]:
    """`extend_schema` arguments of a period report: its query and its two answers."""
    return {
        "parameters": [
            OpenApiParameter("from", OpenApiTypes.DATE, required=True, description="First day, YYYY-MM-DD."),
            OpenApiParameter("to", OpenApiTypes.DATE, required=True, description="Last day (included)."),
            OpenApiParameter("format", str, enum=["json", "csv"], description="csv: the same report as CSV."),
        ],
        "responses": {
            (200, "application/json"): json_answer,
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description=",".join(csv_columns)),
            **errors,
        },
    }


def csv_cell(value: Any) -> Any:
    """Neutralise text a spreadsheet would run as a formula (names are free text)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def csv_text(rows: Iterable[Iterable[Any]]) -> bytes:
    """CSV lines with a byte-order mark, so that spreadsheet programs read UTF-8 names right."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerows(rows)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


class CsvRenderer(renderers.BaseRenderer):
    """Subclasses turn the view's data into rows (`rows`)."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def rows(self, data: Any) -> Iterable[Iterable[Any]]:
        raise NotImplementedError

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Mapping[str, Any] | None = None
    ) -> bytes:
        return csv_text(self.rows(data))


class JsonOrCsvMixin:
    """For an APIView whose renderer_classes are JSON and a CsvRenderer: an unknown
    `?format=` is a 400 (DRF's default is a bare 404), and only the report itself is CSV:
    errors, and OPTIONS answers, stay JSON in the contract's shape."""

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        wanted = request.query_params.get("format")
        if not force and wanted is not None and wanted not in ("json", "csv"):
            raise Invalid("`format` is json or csv.", fields={"format": ['Choose "json" or "csv".']})
        return super().perform_content_negotiation(request, force)  # type: ignore[misc]

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        if (response.status_code >= 400 or request.method not in ("GET", "HEAD")) and isinstance(
            getattr(request, "accepted_renderer", None), CsvRenderer
        ):
            request.accepted_renderer = renderers.JSONRenderer()
            request.accepted_media_type = renderers.JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
