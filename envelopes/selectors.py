"""Reads of red envelopes."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from envelopes.models import RedEnvelope, RedEnvelopeShare
from envelopes.services import red_envelope_public
from liveshop.errors import NotFound
from rooms.selectors import rooms_visible_to


def red_envelope_visible_get(*, user: Any, envelope_id: int) -> RedEnvelope:
    """The envelope, if its room is one the user may see (404 otherwise)."""
    envelope = RedEnvelope.objects.filter(pk=envelope_id, room__in=rooms_visible_to(user)).first()
    if envelope is None:
        raise NotFound("No such red envelope.")
    return envelope


def red_envelope_detail(envelope: RedEnvelope) -> dict[str, Any]:
    """The public envelope; once empty or expired, with who got what (in the order grabbed)."""
    data = red_envelope_public(envelope)
    if envelope.status in (RedEnvelope.Status.EMPTY, RedEnvelope.Status.EXPIRED):
        grabs = (
            RedEnvelopeShare.objects.filter(envelope=envelope, user__isnull=False)
            .select_related("user")
            .order_by("grabbed_at", "index")
        )
        data["grabs"] = [
            {"user": {"id": share.user.pk, "display_name": share.user.public_name}, "coins": share.coins}
            for share in grabs
            if share.user is not None
        ]
    return data


def room_open_red_envelopes(*, room_id: int) -> QuerySet[RedEnvelope]:
    """The room's envelopes still to be grabbed (scheduled or open), oldest first: the snapshot's."""
    return RedEnvelope.objects.filter(room_id=room_id, status=RedEnvelope.Status.OPEN).order_by("pk")
