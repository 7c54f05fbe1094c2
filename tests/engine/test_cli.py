"""The engine's command line (model-spec section 2): outputs, exit statuses and error messages."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO.parent / "shared" / "reference" / "nonmem-validation"

MODEL = {
    "format": "mipd-model/1",
    "id": "cli-test-2cmt",
    "structure": {"preset": "2cmt"},
    "thetas": {"TVCL": 4.0, "TVV1": 30.0, "TVQ": 5.0, "TVV2": 40.0},
    "covariates": {"CRCL": {"unit": "mL/min", "min": 5, "max": 150}},
    "parameters": {
        "CL": "TVCL * (CRCL/100)**0.75 * exp(ETA_CL)",
        "V1": "TVV1 * exp(ETA_V1)",
        "Q": "TVQ",
        "V2": "TVV2",
    },
    "omega": {"etas": ["ETA_CL", "ETA_V1"], "type": "variance", "matrix": [[0.1, 0.02], [0.02, 0.2]]},
    "outputs": {
        "conc": {
            "compartment": "central",
            "volume": "V1",
            "unit": "mg/L",
            "error": {"model": "combined", "additive": 1.0, "proportional": 0.15},
        }
    },
}


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mipd_engine", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )


@pytest.fixture
def case_dir(tmp_path: Path) -> Path:
    (tmp_path / "model.json").write_text(json.dumps(MODEL))
    case = {
        "model": "model.json",
        "covariates": {"CRCL": 160},
        "covariate_changes": [{"time_h": 48, "CRCL": 41}],
        "doses": [
            {"time_h": 0, "amount_mg": 1500, "route": "iv_infusion", "duration_h": 1.5},
            {
                "time_h": 12,
                "amount_mg": 1000,
                "route": "iv_infusion",
                "duration_h": 1,
                "interval_h": 12,
                "additional": 5,
            },
        ],
        "observations": [{"time_h": 11.5, "value": 14.2}, {"time_h": 35.5, "value": None, "lloq": 2.0}],
        "predict": {"from_h": 0, "to_h": 96, "step_h": 0.25},
        "posterior": {"samples": 500, "seed": 1, "quantiles": [0.05, 0.5, 0.95]},
    }
    (tmp_path / "case.json").write_text(json.dumps(case))
    return tmp_path


def test_fit_prints_the_spec_document(case_dir: Path) -> None:
    result = run("fit", "case.json", cwd=case_dir)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["success"] is True
    assert document["model_id"] == "cli-test-2cmt"
    assert set(document["map"]["eta"]) == {"ETA_CL", "ETA_V1"}
    assert {"CL", "V1", "Q", "V2"} <= set(document["map"]["parameters"])
    assert len(document["map"]["eta_covariance"]) == 2
    assert document["observations"][0]["time_h"] == 11.5
    assert {"pred", "ipred", "iwres"} <= set(document["observations"][0])
    assert "lloq" in document["observations"][1]  # the censored level (M3)
    prediction = document["prediction"]
    assert len(prediction["times_h"]) == 385
    low, mid, high = (prediction["quantiles"][q] for q in ("0.05", "0.5", "0.95"))
    assert all(a <= b <= c for a, b, c in zip(low, mid, high, strict=True))
    assert any("CRCL 160" in w for w in document["warnings"])


def test_simulate_prints_typical_and_prior_quantiles(case_dir: Path) -> None:
    result = run("simulate", "case.json", cwd=case_dir)
    assert result.returncode == 0, result.stderr
    conc = json.loads(result.stdout)["prediction"]["outputs"]["conc"]
    assert len(conc["typical"]) == 385
    assert set(conc["quantiles"]) == {"0.05", "0.5", "0.95"}


def test_invalid_input_exits_2_and_names_the_field(case_dir: Path) -> None:
    case = json.loads((case_dir / "case.json").read_text())
    case["doses"][0]["amount_mg"] = -5
    (case_dir / "bad.json").write_text(json.dumps(case))
    result = run("fit", "bad.json", cwd=case_dir)
    assert result.returncode == 2
    assert "doses[0].amount_mg" in result.stderr
    assert "Traceback" not in result.stderr


def test_validate_model_reports_the_field_path(tmp_path: Path) -> None:
    broken = dict(MODEL, parameters={**MODEL["parameters"], "CL": "TVCL * (CRCLL/100)"})
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    result = run("validate-model", "broken.json", cwd=tmp_path)
    assert result.returncode == 2
    assert "parameters.CL: unknown name 'CRCLL'" in result.stderr
    (tmp_path / "good.json").write_text(json.dumps(MODEL))
    assert run("validate-model", "good.json", cwd=tmp_path).returncode == 0


@pytest.mark.skipif(not REFERENCE.is_dir(), reason=f"reference data not found at {REFERENCE}")
def test_batch_fit_of_a_nonmem_dataset_writes_one_row_per_id(tmp_path: Path) -> None:
    rows = (REFERENCE / "run001" / "data.csv").read_text().splitlines()
    subset = [rows[0]] + [r for r in rows[1:] if r.split(",")[0] in {"1", "2", "3"}]
    (tmp_path / "data.csv").write_text("\n".join(subset) + "\n")
    result = run(
        "fit", "--model", str(REFERENCE / "run001" / "model.json"), "--nonmem", "data.csv", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    table = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [row["ID"] for row in table] == ["1", "2", "3"]
    assert set(table[0]) >= {"ID", "ETA_CL", "ETA_V", "ETA_KA", "ofv", "success"}
    # NONMEM's estimate for ID 1 (nonmem_estimates.csv): ETA1 = 0.405058386.
    assert float(table[0]["ETA_CL"]) == pytest.approx(0.405058386, abs=1e-3)


def test_recommend_ranks_regimens_for_the_spec_target(case_dir: Path) -> None:
    case = json.loads((case_dir / "case.json").read_text())
    case["target"] = {
        "metric": "auc24",
        "low": 400,
        "high": 600,
        "interval_options_h": [8, 12, 24],
        "dose_step_mg": 250,
        "max_dose_mg": 3000,
        "start_h": 72,
    }
    (case_dir / "recommend.json").write_text(json.dumps(case))
    result = run("recommend", "recommend.json", cwd=case_dir)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    regimens = document["regimens"]
    assert regimens, document
    assert all(r["dose_mg"] <= 3000 and r["dose_mg"] % 250 == 0 for r in regimens)
    assert all(r["interval_h"] in (8, 12, 24) for r in regimens)
    ptas = [r["pta"] for r in regimens]
    assert ptas == sorted(ptas, reverse=True)
    assert any("infusion duration" in w for w in document["warnings"])


def test_recommend_solves_the_exact_dose_for_an_auc_value(case_dir: Path) -> None:
    case = json.loads((case_dir / "case.json").read_text())
    case.update(
        eta={"ETA_CL": 0.1, "ETA_V1": -0.2},
        covariates={"CRCL": 100},
        covariate_changes=[],
        doses=[],
        observations=[],
        target={"metric": "auc", "window_h": [0, 24], "value": 400},
        regimen={"start_h": 0, "doses": 1, "interval_h": 24, "duration_h": 2},
    )
    case.pop("posterior")
    (case_dir / "exact.json").write_text(json.dumps(case))
    result = run("recommend", "exact.json", cwd=case_dir)
    assert result.returncode == 0, result.stderr
    exact = json.loads(result.stdout)["exact"]
    assert exact["success"] is True
    assert exact["metric"] == pytest.approx(400.0, rel=1e-6)
    # Independent check: the AUC0-24 of that dose, simulated and integrated here, is the target.
    from mipd_engine.events import Dose, PatientRecord
    from mipd_engine.exposure import Window, auc
    from mipd_engine.model import parse_model
    from mipd_engine.simulation import PatientSimulator

    record = PatientRecord(
        covariates={"CRCL": 100},
        doses=(Dose(0.0, exact["dose_mg"], route="iv_infusion", duration_h=2.0),),
    )
    value = auc(PatientSimulator(parse_model(MODEL), record), Window(0.0, 24.0), eta=np.array([[0.1, -0.2]]))
    assert value[0] == pytest.approx(400.0, rel=1e-6)


def test_trial_refuses_a_dose_step_that_rounds_tacrolimus_doses_to_zero(tmp_path: Path) -> None:
    """The default 250 mg step with an 8 mg tacrolimus dose: an error with the reason, never 0 % silently."""
    entry = json.loads((REPO / "models_catalog/library/models/tacrolimus-andrews-2017.json").read_text())
    model = tmp_path / "tacrolimus.json"
    model.write_text(json.dumps(entry["model"]))
    covariates = ["WT=30", "CYP3A5_EXPR=0", "DONOR_DECEASED=1", "EGFR=60", "HCT=0.3"]
    arguments = [a for c in covariates for a in ("--covariate", c)]
    result = run(
        "trial",
        "--model",
        str(model),
        "--dose",
        "8",
        "--interval",
        "12",
        "--target",
        "10",
        "15",
        "--route",
        "oral",
        *arguments,
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "dose_step_mg" in result.stderr
    assert "round to 0 mg" in result.stderr
