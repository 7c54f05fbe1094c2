"""The printable recommendation report: one PDF a ward can file, and other code can attach (FHIR export).

``recommendation_pdf(recommendation)`` returns the PDF bytes. The report shows what the recommendation was
based on and decided, from the stored records only (nothing is recomputed): the patient and covariates, the
doses and levels recorded up to the update, the model and its card, the concentration plot with its bands
(drawn here as SVG), the order with its uncertainty and safety figures, the signature manifest with its
verification now, consent and ethics notes, and every warning. Access control and the audit entry of a
download belong to the caller (the view): this module renders.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.safestring import mark_safe

from dosing import signatures
from dosing.models import Recommendation
from dosing.report_plot import concentration_svg
from models_catalog.selectors import model_card
from patients.selectors import consents_current, latest_measurements

STYLESHEET = Path(settings.BASE_DIR) / "static" / "css" / "report.css"
DECIDED = (Recommendation.Status.APPROVED, Recommendation.Status.MODIFIED)
STATUS_NOTES = {
    Recommendation.Status.PENDING_REVIEW: "NOT AN ORDER: awaiting pharmacist review and signature.",
    Recommendation.Status.APPROVED: "Approved by a pharmacist (electronic signature below).",
    Recommendation.Status.MODIFIED: "Approved with changes by a pharmacist (electronic signature below).",
    Recommendation.Status.REJECTED: "REJECTED: this recommendation must not be given.",
    Recommendation.Status.SUPERSEDED: "SUPERSEDED by a newer recommendation: not to be given.",
}


def _plot(recommendation: Recommendation) -> dict[str, Any] | None:
    stored = (recommendation.update.results or {}).get("plot")
    if not stored:
        return None
    plot = dict(stored)
    decided = recommendation.final_figures or {}
    if recommendation.status in DECIDED and decided.get("forecast"):
        plot["forecast"] = decided["forecast"]  # the regimen the pharmacist approved, not the proposal
    return plot


def report_context(recommendation: Recommendation, *, generated_by: Any = None) -> dict[str, Any]:
    """Everything the report template shows, read from the stored records."""
    course = recommendation.course
    update = recommendation.update
    results = update.results or {}
    proposal = results.get("recommendation") or {}
    decided = recommendation.status in DECIDED and recommendation.final_figures
    figures = recommendation.final_figures if decided else proposal
    cutoff = update.requested_at
    plot = _plot(recommendation)
    signature = signatures.signature_view(recommendation=recommendation)
    return {
        "recommendation": recommendation,
        "status_note": STATUS_NOTES.get(recommendation.status, recommendation.get_status_display()),
        "course": course,
        "patient": course.patient,
        "age_years": _age_years(course.patient.birth_date, update.requested_at),
        "measurements": sorted(latest_measurements(patient=course.patient).values(), key=lambda m: m.kind),
        "results": results,
        "proposal": proposal,
        "figures": figures or {},
        "order": (figures or {}).get("order"),
        "target": proposal.get("target") or {},
        "uncertainty_text": (recommendation.final_figures or {}).get("uncertainty_text")
        if recommendation.status == Recommendation.Status.MODIFIED
        else recommendation.uncertainty_text,
        "doses": course.doses.filter(recorded_at__lte=cutoff).order_by("given_at", "pk"),
        "levels": course.levels.filter(recorded_at__lte=cutoff).order_by("sampled_at", "pk"),
        "series": _series(course, cutoff),
        "card": model_card(model_version=update.model_version),
        "domain": (update.model_version.document or {}).get("domain") or {},
        "plot": plot,
        "plot_svg": mark_safe(concentration_svg(plot)) if plot else None,
        "signature": signature,
        "consents": consents_current(patient=course.patient),
        "update": update,
        "generated_at": timezone.now(),
        "generated_by": signatures.printed_name(generated_by) if generated_by is not None else "the system",
        "time_zone": settings.TIME_ZONE,
    }


def _series(course: Any, cutoff: dt.datetime) -> list[Any]:
    """The monitoring devices' series of the course imported up to the update."""
    return list(course.monitoring_series.filter(uploaded_at__lte=cutoff).select_related("device"))


def _age_years(birth_date: dt.date, at: dt.datetime) -> int:
    day = timezone.localtime(at).date()
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))


def recommendation_html(recommendation: Recommendation, *, generated_by: Any = None) -> str:
    return render_to_string("dosing/report.html", report_context(recommendation, generated_by=generated_by))


def recommendation_pdf(recommendation: Recommendation, *, generated_by: Any = None) -> bytes:
    """The report as PDF (A4). Imported late: WeasyPrint loads Pango when first imported."""
    from weasyprint import CSS, HTML

    html = recommendation_html(recommendation, generated_by=generated_by)
    document = HTML(string=html, base_url=str(settings.BASE_DIR))
    return document.write_pdf(
        stylesheets=[CSS(filename=str(STYLESHEET))],
        pdf_identifier=str(recommendation.public_id).encode(),
        custom_metadata=False,
    )


def report_filename(recommendation: Recommendation) -> str:
    course = recommendation.course
    made = timezone.localtime(recommendation.created_at)
    return f"mipd-report-{course.patient.mrn}-{course.drug.name}-{made:%Y%m%d-%H%M}.pdf".replace(" ", "_")
