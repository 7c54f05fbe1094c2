"""load_model_library: the shipped library loads, validates and publishes; reloading is safe."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from models_catalog.library import LIBRARY_DIRECTORY, library_entries, library_load
from models_catalog.models import Drug, ModelVersion, PgxRuleTable, TargetProtocol
from tests.models_catalog.documents import library_entry, reference_checks

pytestmark = pytest.mark.django_db
Status = ModelVersion.Status


def write_library(directory: Path, *entries: dict) -> Path:
    (directory / "models").mkdir(parents=True, exist_ok=True)
    drugs = {
        "drugs": [
            {
                "name": "testdrug",
                "display_name": "Testdrug",
                "routes": ["iv_bolus"],
                "dose_step_mg": 50,
                "target_protocols": [
                    {
                        "indication": "test",
                        "target": {"metric": "trough", "low": 5, "high": 10},
                        "source": "test",
                    }
                ],
            }
        ]
    }
    (directory / "drugs.json").write_text(json.dumps(drugs))
    for i, entry in enumerate(entries):
        (directory / "models" / f"entry{i}.json").write_text(json.dumps(entry))
    return directory


def test_the_shipped_library_loads_validates_and_publishes_with_two_curators(curator, second_curator) -> None:
    out = StringIO()
    call_command(
        "load_model_library", requested_by=curator.username, approved_by=second_curator.username, stdout=out
    )
    shipped = library_entries()
    # Issue 15: at least 25 published models over at least 15 drugs, chosen by demand.
    drugs = [entry["model"]["drug"] for _, entry in shipped]
    assert drugs.count("vancomycin") >= 3
    assert {
        "tobramycin",
        "amikacin",
        "gentamicin",
        "tacrolimus",
        "busulfan",
        "carboplatin",
        "meropenem",
    } <= set(drugs)
    assert {"piperacillin", "voriconazole", "ciclosporin", "infliximab", "levetiracetam"} <= set(drugs)
    published = ModelVersion.objects.published()
    assert published.count() == len(shipped) >= 25
    assert published.values("drug").distinct().count() >= 15
    for version in published:
        run = version.validation_runs.get()
        assert run.success, (version, run.message)
        assert run.results and all(result["passed"] for result in run.results)
        assert version.doi, version
        assert version.published_by == second_curator
    assert {"vancomycin", "tacrolimus"} <= set(published.values_list("drug__name", flat=True))
    assert TargetProtocol.objects.filter(drug__name="vancomycin").exists()
    assert PgxRuleTable.objects.filter(table_id="cpic_tacrolimus_cyp3a5").exists()
    again = StringIO()
    call_command(
        "load_model_library", requested_by=curator.username, approved_by=second_curator.username, stdout=again
    )
    assert f"model versions already loaded: {len(shipped)}" in again.getvalue()
    assert ModelVersion.objects.count() == len(shipped)


def test_without_two_curators_versions_are_only_validated(tmp_path) -> None:
    report = library_load(directory=write_library(tmp_path, library_entry()))
    assert report.problems == []
    version = ModelVersion.objects.get()
    assert version.status == Status.VALIDATED
    assert report.versions_published == []


def test_publishing_needs_both_curators(tmp_path, curator) -> None:
    with pytest.raises(ValidationError, match="both"):
        library_load(directory=write_library(tmp_path, library_entry()), requested_by=curator)


def test_an_entry_failing_its_reference_checks_stays_draft_and_is_reported(
    tmp_path, curator, second_curator
) -> None:
    bad = library_entry(reference_checks=reference_checks(expected_at_6_h=1.0))
    report = library_load(
        directory=write_library(tmp_path, bad), requested_by=curator, approved_by=second_curator
    )
    assert ModelVersion.objects.get().status == Status.DRAFT
    assert "validation failed" in report.problems[0]


def test_a_changed_file_under_a_loaded_version_is_a_conflict_never_an_overwrite(
    tmp_path, curator, second_curator
) -> None:
    library_load(
        directory=write_library(tmp_path, library_entry()), requested_by=curator, approved_by=second_curator
    )
    changed = library_entry()
    changed["model"]["thetas"]["TVCL"] = 5.0
    report = library_load(
        directory=write_library(tmp_path, changed), requested_by=curator, approved_by=second_curator
    )
    assert "different file" in report.problems[0]
    assert ModelVersion.objects.get().document["thetas"]["TVCL"] == 4.0


def test_local_edits_of_drugs_survive_a_reload(tmp_path) -> None:
    library_load(directory=write_library(tmp_path, library_entry()))
    Drug.objects.filter(name="testdrug").update(dose_step_mg=25)
    library_load(directory=write_library(tmp_path, library_entry()))
    assert Drug.objects.get(name="testdrug").dose_step_mg == 25
    assert TargetProtocol.objects.count() == 1


def test_the_command_names_an_unknown_user() -> None:
    with pytest.raises(CommandError, match="unknown user"):
        call_command("load_model_library", requested_by="nobody", approved_by="nobody-else")


def test_the_library_directory_is_inside_the_package() -> None:
    assert (LIBRARY_DIRECTORY / "drugs.json").is_file()
