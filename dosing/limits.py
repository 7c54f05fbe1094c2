"""How far ahead, and how much, the engine simulates for a regimen typed in a request (what-if, a pharmacist's
change): the one place these limits live.

The physical ranges (``dosing.ranges``) keep numbers finite; these keep the work bounded. Simulation cost
grows with the doses simulated and the span they cover, so a regimen is refused before the engine runs when
it asks for more than a clinician can act on: at most 100 doses, a forecast ending at most four weeks ahead,
a first dose at most a week ahead, and an interval no shorter than half the drug's shortest usual interval
(a typing slip such as 0.6 h for 6 h, which would multiply the doses simulated by ten). Issue 14 measured
100 doses every 336 h at ~6 s per request; a first dose a year ahead answered a plot with nothing on it.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.core.exceptions import ValidationError

from models_catalog.models import Drug

MAX_DOSES = 100  # four weeks of doses every six hours, and some
MAX_HORIZON_H = 672.0  # 28 days from now to the end of the last dose's interval
MAX_LEAD_H = 168.0  # a first dose at most a week ahead: forecast again when it is near
FLOOR_INTERVAL_H = 0.5  # whatever the drug, no interval shorter than this (``ranges.INTERVAL_H`` agrees)

TOO_MANY_DOSES = (
    f"a forecast covers at most {MAX_DOSES} doses: give fewer, or leave the count empty (until further "
    "notice)"
)


def shortest_interval_h(drug: Drug) -> float:
    """The shortest interval a request may ask of ``drug``: half its shortest usual one, at least 0.5 h."""
    options = [float(value) for value in drug.interval_options_h or [] if float(value) > 0]
    return max(FLOOR_INTERVAL_H, min(options) / 2.0) if options else FLOOR_INTERVAL_H


def horizon_problems(
    *, drug: Drug, interval_h: float, n_doses: int | None, lead_h: float | None
) -> dict[str, str]:
    """Why a regimen asks for too much simulation, by field (``interval_h``, ``n_doses``, ``start_at``).

    ``lead_h``: hours from now to the first dose (None: not known yet, the interval and count are checked);
    ``n_doses`` None: until further notice, which the course's own plot horizon bounds.
    """
    problems: dict[str, str] = {}
    floor_h = shortest_interval_h(drug)
    if interval_h < floor_h - 1e-9:
        shortest = min(float(value) for value in drug.interval_options_h) if drug.interval_options_h else None
        why = f" (half its shortest usual interval, {shortest:g} h)" if shortest else ""
        problems["interval_h"] = (
            f"every {interval_h:g} h is too often for {drug}: at least every {floor_h:g} h{why}; "
            "check the interval's unit (hours)"
        )
    if n_doses is not None and n_doses > MAX_DOSES:
        problems["n_doses"] = TOO_MANY_DOSES
    lead = max(0.0, lead_h or 0.0)
    if lead_h is not None and lead > MAX_LEAD_H + 1e-9:
        problems["start_at"] = (
            f"the first dose lies {lead:.0f} h ahead; a forecast starts at most {MAX_LEAD_H:g} h "
            f"({MAX_LEAD_H / 24:g} days) ahead: forecast from a nearer first dose, and again when it is near"
        )
    elif n_doses is not None and "n_doses" not in problems and "interval_h" not in problems:
        end_h = lead + n_doses * interval_h
        if end_h > MAX_HORIZON_H + 1e-9:
            fits = int((MAX_HORIZON_H - lead) // interval_h)
            instead = (  # an interval of weeks: not even one dose fits, only the open-ended forecast does
                f"give at most {fits} doses at this interval, or leave the count empty (until further notice)"
                if fits >= 1
                else "leave the count empty (until further notice)"
            )
            count = f"{n_doses} doses" if n_doses != 1 else "1 dose"
            problems["n_doses"] = (
                f"{count} every {interval_h:g} h end {end_h:.0f} h from now; a forecast reaches at most "
                f"{MAX_HORIZON_H:g} h ({MAX_HORIZON_H / 24:g} days) ahead: {instead}"
            )
    return problems


def check_horizon(
    *,
    drug: Drug,
    interval_h: float,
    n_doses: int | None,
    lead_h: float | None,
    within: str | None = None,
    fields: Mapping[str, str] | None = None,
) -> None:
    """Raise a ValidationError keyed by each field at fault (``fields`` renames them for the caller's form);
    ``within``: every message goes under this one field, prefixed with the part (a JSON regimen)."""
    problems = horizon_problems(drug=drug, interval_h=interval_h, n_doses=n_doses, lead_h=lead_h)
    if not problems:
        return
    if within:
        raise ValidationError({within: [f"{part}: {message}" for part, message in problems.items()]})
    names = fields or {}
    raise ValidationError({names.get(part, part): [message] for part, message in problems.items()})
