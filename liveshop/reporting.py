"""What Django's error reports may show of the settings."""

from __future__ import annotations

import re
from typing import Any

from django.views.debug import SafeExceptionReporterFilter

# The password of a URL: scheme://user:PASSWORD@host (DATABASE_URL, REDIS_URL, the broker).
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:@/\s]*:)(?P<password>[^@/\s]+)(?=@)", re.IGNORECASE)


class SettingsFilter(SafeExceptionReporterFilter):
    """Django's filter (it hides settings named like API, KEY, SECRET, PASS, TOKEN), which
    also hides the password inside any setting that is a URL or holds one: REDIS_URL,
    CELERY_BROKER_URL, REDIS_CLUSTER_URL, CACHES' locations, and the like. The rest of
    the URL stays readable, so a report still says which server was meant."""

    def cleanse_setting(self, key: Any, value: Any) -> Any:
        cleansed = super().cleanse_setting(key, value)
        if isinstance(cleansed, str):
            return _URL_PASSWORD.sub(lambda match: match["head"] + self.cleansed_substitute, cleansed)
        return cleansed
