"""The printable recommendation report: the PDF renders (first page to PNG, not blank), its text holds the
patient, the dose, the safety figures and the signature manifest; access as for the course page; audited."""

from __future__ import annotations

import os

import numpy as np
import pypdfium2 as pdfium
import pytest
from django.urls import reverse

from accounts.roles import Role
from audit.models import AuditEntry
from dosing import reports
from tests.auth import login
from tests.dosing.test_signatures import approve, recommendation  # noqa: F401 - the fixture
from tests.factories import UserFactory


def _pages(pdf: bytes) -> tuple[list[str], np.ndarray]:
    document = pdfium.PdfDocument(pdf)
    texts = [document[i].get_textpage().get_text_range() for i in range(len(document))]
    image = document[0].render(scale=1.5).to_pil().convert("L")
    if os.environ.get("MIPD_REPORT_PDF"):  # to look at it: MIPD_REPORT_PDF=/tmp/report.pdf
        with open(os.environ["MIPD_REPORT_PDF"], "wb") as out:
            out.write(pdf)
    return texts, np.asarray(image)


@pytest.mark.django_db
def test_the_signed_report_renders_and_holds_the_dose_figures_and_signature_manifest(
    recommendation,  # noqa: F811
    pharmacist,
):
    approve(recommendation, pharmacist)
    recommendation.refresh_from_db()
    pdf = reports.recommendation_pdf(recommendation, generated_by=pharmacist)
    assert pdf.startswith(b"%PDF-")
    texts, first_page = _pages(pdf)
    # Not blank: a printed page is mostly white with a real share of dark pixels (text, tables, the plot).
    dark = float((first_page < 128).mean())
    assert 0.01 < dark < 0.5, f"{dark:.3%} of the first page is dark"
    assert first_page.std() > 20
    text = " ".join(" ".join(texts).split())
    signature = recommendation.signature
    order = recommendation.final_figures["order"]
    patient = recommendation.course.patient
    assert patient.mrn in text and patient.family_name.upper() in text
    assert f"{order['dose_mg']:g} mg" in text, order
    assert "P(target)" in text and "P(toxic)" in text and "90 % interval" in text
    assert "SIGNATURE MANIFEST" in text.upper()
    assert signature.printed_name in text
    assert signature.get_meaning_display() in text
    assert f"{signature.signed_at:%Y-%m-%d %H:%M:%S} UTC" in text
    assert signature.content_sha256 in text.replace(" ", "")
    assert "the signed records are unchanged" in text
    assert recommendation.course.model_version.citation_text.split()[0] in text
    assert "CONSENT AND ETHICS" in text.upper()


@pytest.mark.django_db
def test_an_unsigned_report_says_it_is_not_an_order(recommendation):  # noqa: F811
    texts, _ = _pages(reports.recommendation_pdf(recommendation))
    text = " ".join(" ".join(texts).split())
    assert "NOT AN ORDER: awaiting pharmacist review" in text
    assert "Unsigned: no pharmacist has signed this recommendation" in text


@pytest.mark.django_db
def test_the_download_is_for_the_care_team_only_and_audited(client, recommendation, pharmacist):  # noqa: F811
    course = recommendation.course
    url = reverse("dosing:recommendation_report", args=[course.public_id, recommendation.public_id])
    login(client, pharmacist)
    response = client.get(url + "?download=1")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith('attachment; filename="mipd-report-')
    assert response["Cache-Control"] == "no-store"
    reads = AuditEntry.objects.filter(action=AuditEntry.Action.READ, object_type="dosing.recommendation")
    entry = reads.get()
    assert entry.patient_id == course.patient.public_id and "report" in entry.after
    page = client.get(reverse("dosing:course", args=[course.public_id])).content.decode()
    assert url in page
    queue = client.get(reverse("dosing:review_queue")).content.decode()
    assert url in queue
    outsider = UserFactory(username="other-ward-pharmacist", roles=[Role.PHARMACIST])
    client.logout()
    login(client, outsider)
    assert client.get(url).status_code == 403
    assert not AuditEntry.objects.filter(
        action=AuditEntry.Action.READ, object_type="dosing.recommendation", actor=outsider.username
    ).exists()
