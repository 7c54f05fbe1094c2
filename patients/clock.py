"""Clinical times: what a sample or dose time may look like when it arrives from a form or a hospital system.

A time without an offset is read in the hospital's zone (``TIME_ZONE``). A time with an offset is accepted in
UTC or in the hospital's own offset at that moment; any other offset is refused, because a time stamped in a
foreign zone usually comes from a misconfigured device or a copy-paste, and a level placed hours off its
true time silently corrupts the fit.
"""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.utils import timezone


def clinical_time(moment: dt.datetime, *, field: str) -> dt.datetime:
    zone = timezone.get_default_timezone()
    if timezone.is_naive(moment):
        return timezone.make_aware(moment, zone)
    offset = moment.utcoffset()
    local_offset = moment.astimezone(zone).utcoffset()
    if offset in (dt.timedelta(0), local_offset):
        return moment
    hours = offset.total_seconds() / 3600 if offset is not None else 0.0
    local_hours = local_offset.total_seconds() / 3600 if local_offset is not None else 0.0
    raise ValidationError(
        {
            field: [
                f"the time is given in UTC{hours:+g}; this hospital is in {zone} (UTC{local_hours:+g} then): "
                "give it in local time or in UTC"
            ]
        },
        code="foreign_time_zone",
    )
