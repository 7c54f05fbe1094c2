"""CDS Hooks cards from the MIPD record: the latest recommendation of each open course, what a draft order
of a monitored drug should be, and when to draw the next level.

A card says what the recommendation is (dose, interval, probability of target attainment), on what basis
(a priori or Bayesian), and whether a pharmacist has reviewed it: an unreviewed, rejected or failed result
is never shown as if it were an approved order. The link opens the course page.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from dosing import orders, selectors
from dosing.models import BayesianUpdate, Recommendation, TherapyCourse
from models_catalog.models import Drug
from patients.models import Patient

SUMMARY_MAX = 140  # the CDS Hooks limit on a card's summary
SOURCE_LABEL = "MIPD: model-informed precision dosing"
Url = Callable[[str], str]  # a path of this site -> its absolute URL


def _short(text: str) -> str:
    return text if len(text) <= SUMMARY_MAX else text[: SUMMARY_MAX - 1].rstrip() + "…"


def _card_id(*parts: Any) -> str:
    # The same recommendation gives the same card id (CDS Hooks 2.0 feedback refers to it).
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "mipd-card:" + ":".join(str(part) for part in parts)))


def _review_line(recommendation: Recommendation) -> str:
    status = recommendation.get_status_display()
    if recommendation.reviewed_by_id and recommendation.reviewed_at:
        who = recommendation.reviewed_by.get_full_name() or recommendation.reviewed_by.get_username()
        return f"{status} by {who}, {timezone.localtime(recommendation.reviewed_at):%d %b %Y %H:%M}"
    return f"{status}: **not yet checked by a pharmacist**, do not order it as it stands"


@dataclass(frozen=True)
class Figures:
    """What a card shows of a recommendation: as the pharmacist signed it when modified, else as proposed."""

    regimen: dict[str, Any]
    order: dict[str, Any]
    pta: float
    p_toxic: float | None
    metric_median: float | None
    metric_ci90: list[float] | None
    sampling: str  # when to draw the next level, in words ("" when the engine gave no advice)


def _figures(recommendation: Recommendation) -> Figures:
    # Only the recommendation part of the results: the rest (plot, posterior summaries) is large and unused.
    proposed = (
        BayesianUpdate.objects.filter(pk=recommendation.update_id)
        .values_list("results__recommendation", flat=True)
        .first()
    )
    proposed = proposed if isinstance(proposed, dict) else {}
    signed = recommendation.final_figures
    if recommendation.status == Recommendation.Status.MODIFIED and signed:
        return Figures(
            regimen=recommendation.final_regimen or signed.get("regimen") or recommendation.regimen,
            order=signed.get("order") or {},
            pta=float(signed["pta"]),
            p_toxic=signed.get("p_toxic"),
            metric_median=signed.get("metric_median"),
            metric_ci90=signed.get("metric_ci90"),
            sampling=str((signed.get("sampling_advice") or {}).get("plain_words") or ""),
        )
    predicted = recommendation.predicted or {}
    return Figures(
        regimen=recommendation.regimen,
        order=proposed.get("order") or {},
        pta=recommendation.probability_of_target,
        p_toxic=recommendation.probability_of_toxicity,
        metric_median=predicted.get("median"),
        metric_ci90=predicted.get("ci90"),
        sampling=str((proposed.get("sampling_advice") or {}).get("plain_words") or ""),
    )


def _indicator(recommendation: Recommendation) -> str:
    if recommendation.alerts or recommendation.status == Recommendation.Status.PENDING_REVIEW:
        return "warning"
    return "info"


def _detail(recommendation: Recommendation, figures: Figures) -> str:
    predicted = recommendation.predicted or {}
    lines = [
        f"**Order**: {figures.order.get('text') or orders.regimen_label(figures.regimen)}",
        f"**Basis**: {recommendation.basis}",
        f"**Review**: {_review_line(recommendation)}",
        f"**Probability of target attainment (PTA)**: {figures.pta * 100:.0f} %",
    ]
    if figures.metric_median is not None and figures.metric_ci90:
        low, high = figures.metric_ci90
        lines.append(
            f"**Predicted {predicted.get('label') or predicted.get('metric')}**: {figures.metric_median:.3g} "
            f"{predicted.get('unit', '')} (90 % interval {low:.3g}–{high:.3g})"
        )
    if figures.p_toxic is not None:
        lines.append(f"**Probability of toxic exposure**: {figures.p_toxic * 100:.0f} %")
    if figures.sampling:
        lines.append(f"**Next level**: {figures.sampling}")
    for alert in recommendation.alerts or []:
        lines.append(f"**Alert**: {alert.get('message', alert) if isinstance(alert, dict) else alert}")
    for warning in recommendation.warnings or []:
        lines.append(f"Warning: {warning.get('message', warning) if isinstance(warning, dict) else warning}")
    version = recommendation.course.model_version
    lines.append(f"Model: {version.title} ({version.version})")
    return "\n\n".join(lines)


def _rejected_detail(recommendation: Recommendation) -> str:
    """A rejected proposal's dose is not repeated: only that it was rejected, by whom and why."""
    note = recommendation.review_note.strip() or "no reason recorded"
    return (
        f"**Review**: {_review_line(recommendation)}\n\n**Reason**: {note}\n\n"
        "No MIPD dose stands for this course: a new calculation follows the next dose, level or covariate."
    )


def _links(course: TherapyCourse, *, url: Url, smart_launch_url: str | None) -> list[dict[str, Any]]:
    links = [
        {"label": "Open the course in MIPD", "url": url(f"/courses/{course.public_id}/"), "type": "absolute"}
    ]
    if smart_launch_url:
        links.append(
            {"label": "Open MIPD in the EHR (SMART launch)", "url": smart_launch_url, "type": "smart"}
        )
    return links


def _source(course: TherapyCourse, *, url: Url) -> dict[str, Any]:
    return {"label": SOURCE_LABEL, "url": url(f"/courses/{course.public_id}/")}


def _no_recommendation_card(
    course: TherapyCourse, *, url: Url, smart_launch_url: str | None
) -> dict[str, Any]:
    update = selectors.latest_update(course=course)
    if update is None:
        state = "no dose calculation has run yet"
    elif update.status == BayesianUpdate.Status.FAILED:
        state = f"the latest calculation failed ({update.error or 'no message'}); no dose is recommended"
    elif update.status in (BayesianUpdate.Status.QUEUED, BayesianUpdate.Status.RUNNING):
        state = "a calculation is running; look again in a minute"
    else:
        state = "the latest calculation gave no regimen that can be recommended"
    drug = course.drug.display_name
    return {
        "uuid": _card_id("none", course.public_id, update.public_id if update else ""),
        "summary": _short(f"{drug} (MIPD): no recommendation yet, {state}"),
        "indicator": "warning" if update and update.status == BayesianUpdate.Status.FAILED else "info",
        "detail": f"**{drug}**, course for {course.indication}: {state}.",
        "source": _source(course, url=url),
        "links": _links(course, url=url, smart_launch_url=smart_launch_url),
    }


def recommendation_card(
    course: TherapyCourse, *, url: Url, smart_launch_url: str | None = None, prefix: str = ""
) -> dict[str, Any]:
    """The card of the course's current recommendation (or of why there is none)."""
    recommendation = selectors.current_recommendation(course=course)
    if recommendation is None:
        return _no_recommendation_card(course, url=url, smart_launch_url=smart_launch_url)
    figures = _figures(recommendation)
    drug = course.drug.display_name.split(" (")[0]
    basis = "Bayesian" if "bayes" in recommendation.basis.casefold() else "a priori"
    status = {
        Recommendation.Status.PENDING_REVIEW: "awaiting pharmacist review",
        Recommendation.Status.APPROVED: "approved",
        Recommendation.Status.MODIFIED: "approved with changes",
        Recommendation.Status.REJECTED: "REJECTED by the pharmacist",
    }.get(recommendation.status, recommendation.get_status_display())
    if recommendation.status == Recommendation.Status.REJECTED:
        summary = f"{prefix}{drug}: the MIPD recommendation was rejected by the pharmacist; see the course"
    else:
        summary = (
            f"{prefix}{drug} {orders.regimen_label(figures.regimen)}, PTA {figures.pta * 100:.0f} % "
            f"({basis}, {status})"
        )
    return {
        "uuid": _card_id("rec", recommendation.public_id, recommendation.status),
        "summary": _short(summary),
        "indicator": _indicator(recommendation),
        "detail": _rejected_detail(recommendation)
        if recommendation.status == Recommendation.Status.REJECTED
        else _detail(recommendation, figures),
        "source": _source(course, url=url),
        "links": _links(course, url=url, smart_launch_url=smart_launch_url),
    }


def open_courses(patient: Patient, *, drug: Drug | None = None) -> list[TherapyCourse]:
    courses = patient.courses.filter(status=TherapyCourse.Status.ACTIVE).select_related(
        "drug", "model_version"
    )
    if drug is not None:
        courses = courses.filter(drug=drug)
    return list(courses.order_by("-opened_at", "-pk"))


def patient_view_cards(
    patient: Patient, *, url: Url, smart_launch_url: str | None = None
) -> list[dict[str, Any]]:
    return [
        recommendation_card(course, url=url, smart_launch_url=smart_launch_url)
        for course in open_courses(patient)
    ]


def order_select_cards(
    patient: Patient, drug: Drug, *, url: Url, smart_launch_url: str | None = None
) -> list[dict[str, Any]]:
    """For a draft order of ``drug``: the current recommendation of its open course, or how to get one."""
    courses = open_courses(patient, drug=drug)
    if courses:
        return [
            recommendation_card(course, url=url, smart_launch_url=smart_launch_url, prefix="MIPD dose: ")
            for course in courses
        ]
    open_url = url(f"/patients/{patient.public_id}/courses/new/")
    name = drug.display_name
    return [
        {
            "uuid": _card_id("no-course", patient.public_id, drug.name),
            "summary": _short(
                f"{name} is dosed with MIPD: open a course for an a-priori dose from the covariates"
            ),
            "indicator": "info",
            "detail": (
                f"No MIPD course of **{name}** is open for this patient. Opening one gives an a-priori "
                "regimen from the patient's weight, renal function and genotypes, and a Bayesian one once "
                "levels are recorded."
            ),
            "source": {"label": SOURCE_LABEL, "url": open_url},
            "links": [{"label": f"Open a {name} course in MIPD", "url": open_url, "type": "absolute"}],
        }
    ]
