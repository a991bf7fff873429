from __future__ import annotations

from django.contrib import admin

from streams.models import StreamSession


@admin.register(StreamSession)
class StreamSessionAdmin(admin.ModelAdmin[StreamSession]):
    list_display = ["id", "room", "stream_name", "ingest_node", "started_at", "ended_at", "end_reason"]
    list_filter = ["end_reason"]
    readonly_fields = [f.name for f in StreamSession._meta.fields]
