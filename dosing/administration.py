"""How a drug may be given: its routes, bolus or infusion, and the shortest infusion its rate limit allows.

One set of rules for every path that orders or records a dose (the dose and what-if forms, the API, the
regimen search's constraints and a pharmacist's changed regimen): only routes that both the drug allows and
the model can represent, no duration for a bolus or an oral dose, a duration for an infusion, and no infusion
faster than the drug's maximum rate.
"""

from __future__ import annotations

import math

from mipd_engine.model import PopulationModel
from models_catalog.labels import is_infusion, route_label
from models_catalog.models import Drug


def allowed_routes(drug: Drug, model: PopulationModel) -> list[str]:
    """The drug's routes that the model can represent, in the drug's order (the usual route first)."""
    if not drug.routes:
        return list(model.routes)
    return [route for route in drug.routes if route in model.routes]


def usual_route(drug: Drug, model: PopulationModel) -> str | None:
    routes = allowed_routes(drug, model)
    return routes[0] if routes else None


def shortest_infusion_h(drug: Drug, dose_mg: float) -> float | None:
    """The shortest duration the maximum infusion rate allows for ``dose_mg`` (None without a rate limit)."""
    if not drug.max_infusion_rate_mg_per_h:
        return None
    return dose_mg / drug.max_infusion_rate_mg_per_h


def default_infusion_h(drug: Drug, dose_mg: float | None = None) -> float | None:
    """The usual duration, lengthened to the rate limit for ``dose_mg``; rounded up to 5 minutes."""
    durations = [d for d in (drug.usual_infusion_duration_h,) if d]
    if dose_mg is not None and (shortest := shortest_infusion_h(drug, dose_mg)) is not None:
        durations.append(shortest)
    if not durations:
        return None
    return math.ceil(max(durations) * 12 - 1e-9) / 12


def administration_problems(
    *, drug: Drug, model: PopulationModel, route: str, dose_mg: float | None, duration_h: float | None
) -> dict[str, str]:
    """Field -> problem for a dose given by ``route`` over ``duration_h`` (empty when it may be given)."""
    routes = allowed_routes(drug, model)
    if route not in routes:
        shown = ", ".join(route_label(r) for r in routes) or "none that the model can represent"
        return {"route": f"{drug.display_name} is given by {shown}, not {route_label(route)}"}
    if not is_infusion(route):
        if duration_h:
            return {
                "infusion_duration_h": f"{route_label(route)} has no infusion duration: leave it empty "
                "(or choose IV infusion)"
            }
        return {}
    if not duration_h or duration_h <= 0:
        return {"infusion_duration_h": "an infusion needs its duration (h)"}
    if dose_mg is not None and (shortest := shortest_infusion_h(drug, dose_mg)) is not None:
        if duration_h < shortest * (1 - 1e-9):
            return {
                "infusion_duration_h": (
                    f"{dose_mg:g} mg over {duration_h:g} h is {dose_mg / duration_h:.0f} mg/h, faster than "
                    f"the maximum rate of {drug.max_infusion_rate_mg_per_h:g} mg/h for {drug.display_name}: "
                    f"infuse over at least {math.ceil(shortest * 12 - 1e-9) / 12:.2f} h"
                )
            }
    return {}
