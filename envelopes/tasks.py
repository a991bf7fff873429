from __future__ import annotations

from celery import shared_task

from envelopes.services import red_envelopes_expire_due


@shared_task(ignore_result=True)
def red_envelopes_expire_task() -> int:
    """Beat, every 2 s: close the envelopes past `expires_at`, their coins left back to the sender."""
    return red_envelopes_expire_due()
