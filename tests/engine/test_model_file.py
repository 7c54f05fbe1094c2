"""Model files (``mipd-model/1``): the reference models load; bad input is refused with the field at fault.

Nothing in a model file is ever executed: expressions are checked against a whitelist before anything runs.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from mipd_engine.errors import InvalidInputError, ModelError, ParameterValueError
from mipd_engine.events import Dose, PatientRecord
from mipd_engine.model import PopulationModel, load_model, parse_model
from mipd_engine.simulation import simulate

from .conftest import PROPORTIONAL_ERROR, make_model

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(__file__).resolve().parents[3] / "shared"  # CI copies shared/ beside the repository
REFERENCE_MODELS = sorted((SHARED / "reference" / "nonmem-validation").glob("run*/model.json"))
TYPICAL = {"WT": 70.0}


def rejection(**overrides) -> str:
    """The message of the ModelError raised by a model built with ``overrides``."""
    with pytest.raises(ModelError) as error:
        parse_model(make_model(**overrides))
    return str(error.value)


def with_parameter(expression: str, name: str = "CL") -> dict[str, str]:
    parameters = {"CL": "TVCL * exp(ETA_CL)", "V": "TVV * exp(ETA_V)"}
    parameters[name] = expression
    return parameters


# -- the reference models ----------------------------------------------------------------------------------


@pytest.mark.skipif(
    not REFERENCE_MODELS, reason=f"reference models not found under {SHARED} (shared/ beside the repo)"
)
@pytest.mark.parametrize("path", REFERENCE_MODELS, ids=[p.parent.name for p in REFERENCE_MODELS])
def test_it_loads_every_nonmem_validation_model(path: Path) -> None:
    model = load_model(path)

    document = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(model, PopulationModel)
    assert model.id == document["id"]
    assert model.eta_names == tuple(document["omega"]["etas"])
    np.testing.assert_allclose(
        model.omega, np.array(document["omega"]["matrix"], dtype=float), rtol=0, atol=0
    )
    assert list(model.outputs) == list(document["outputs"])


def test_it_finds_all_eight_reference_models() -> None:
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent (CI copies shared/ beside the repository)")
    assert [p.parent.name for p in REFERENCE_MODELS] == [
        "run001",
        "run003",
        "run006",
        "run102",
        "run201",
        "run301",
        "run401",
        "run901",
    ]


def test_it_loads_a_model_file_from_disk(tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    path.write_text(json.dumps(make_model()), encoding="utf-8")

    model = load_model(path)

    assert model.id == "test-1cmt-iv"
    assert model.is_linear


def test_it_loads_a_library_entry_as_its_model(tmp_path: Path) -> None:
    library = Path(__file__).resolve().parents[2] / "models_catalog" / "library" / "models"
    entry = json.loads((library / "tacrolimus-andrews-2017.json").read_text(encoding="utf-8"))

    model = load_model(library / "tacrolimus-andrews-2017.json")

    assert entry["library_format"] == "mipd-library/1"
    assert model.document == parse_model(entry["model"]).document == entry["model"]
    assert model.id == "tacrolimus-andrews-2017"


def test_a_library_entry_without_a_model_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "entry.json"
    path.write_text(json.dumps({"library_format": "mipd-library/1", "version": "1.0.0"}), encoding="utf-8")

    with pytest.raises(ModelError):
        load_model(path)


def test_it_rejects_a_file_that_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    path.write_text("{'format': 'mipd-model/1'", encoding="utf-8")

    with pytest.raises(ModelError, match=r"^model: model.json is not valid JSON"):
        load_model(path)


def test_it_rejects_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"^model: cannot read"):
        load_model(tmp_path / "absent.json")


# -- expressions outside the language ----------------------------------------------------------------------


def test_it_names_the_field_and_the_unknown_name() -> None:
    with pytest.raises(ModelError) as error:
        parse_model(make_model(parameters=with_parameter("TVCL * (CRCLL/100)")))

    assert str(error.value) == "parameters.CL: unknown name 'CRCLL'"
    assert error.value.path == "parameters.CL"


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("__import__('os')", "unknown function '__import__'"),
        ("TVCL.real", "'Attribute' is not allowed"),
        ("(lambda: TVCL)()", "only the functions exp, log, sqrt, abs, min, max may be called"),
        ("lambda x: x", "'Lambda' is not allowed"),
        ("[TVCL][0]", "not allowed"),
        ("TVCL if 'a' else TVCL", "constant 'a' is not a number"),
        ("sin(TVCL)", "unknown function 'sin'"),
        ("max(TVCL, 2, key=abs)", "'max' takes no keyword arguments"),
        ("exp(TVCL, 2)", "'exp' takes 1 argument(s), got 2"),
        ("min(TVCL)", "'min' takes at least 2 arguments"),
        ("__builtins__", "names may not start with '_'"),
        ("_exp(1)", "unknown function '_exp'"),
        ("TVCL // 2", "operator 'FloorDiv' is not allowed"),
        ("TVCL % 2", "operator 'Mod' is not allowed"),
        ("TVCL in TVCL", "comparison 'In' is not allowed"),
        ("TVCL is TVCL", "comparison 'Is' is not allowed"),
        ("(x := TVCL)", "'NamedExpr' is not allowed"),
        ("1j * TVCL", "constant 1j is not a number"),
        ("None", "constant None is not a number"),
        ("TVCL +", "syntax error"),
        ("", "empty expression"),
        ("TVCL" + " + 1" * 600, "longer than 2000 characters"),
        ("eval('1')", "unknown function 'eval'"),
        ("exp.__globals__", "'Attribute' is not allowed"),
    ],
)
def test_it_rejects_expressions_outside_the_language(expression: str, message: str) -> None:
    text = rejection(parameters=with_parameter(expression))

    assert text.startswith("parameters.CL: ")
    assert message in text


@pytest.mark.parametrize(
    ("overrides", "path", "message"),
    [
        (
            {
                "structure": {"preset": "1cmt", "absorption": "first-order"},
                "parameters": {"CL": "TVCL", "V": "TVV", "KA": "1.0"},
                "inputs": {"depot": {"lag_h": "TLAGG"}},
            },
            "inputs.depot.lag_h",
            "unknown name 'TLAGG'",
        ),
        (
            {
                "outputs": {
                    "conc": {"compartment": "central", "volume": "VV", "error": PROPORTIONAL_ERROR},
                }
            },
            "outputs.conc.volume",
            "unknown name 'VV'",
        ),
        (
            {
                "structure": {
                    "compartments": ["central"],
                    "flows": [{"from": "central", "to": None, "rate": "CLL/V"}],
                },
            },
            "structure.flows[0].rate",
            "unknown name 'CLL'",
        ),
        (
            {
                "structure": {
                    "compartments": ["central"],
                    "saturable": [{"from": "central", "to": None, "vmax": "VMAX", "km": "1", "volume": "V"}],
                },
            },
            "structure.saturable[0].vmax",
            "unknown name 'VMAX'",
        ),
        ({"parameters": {"V": "TVV", "CL": "TVCL * V / V2"}}, "parameters.CL", "unknown name 'V2'"),
        ({"parameters": {"CL": "TVCL * V / 50", "V": "TVV"}}, "parameters.CL", "unknown name 'V'"),
    ],
    ids=["inputs", "outputs", "flows", "saturable", "later name", "name used before its definition"],
)
def test_it_checks_names_in_every_expression_of_the_file(overrides, path: str, message: str) -> None:
    text = rejection(**overrides)

    assert text == f"{path}: {message}"


def test_it_executes_nothing_from_a_model_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "pwned"
    attempts = [
        f"__import__('os').system('touch {marker}')",
        f"open('{marker}', 'w')",
        "().__class__.__base__.__subclasses__()",
        f"exp(1) if __import__('os').system('touch {marker}') else 1",
    ]
    for expression in attempts:
        with pytest.raises(ModelError, match=r"^parameters\.CL: "):
            parse_model(make_model(parameters=with_parameter(expression)))
        output = {"compartment": "central", "volume": expression, "error": PROPORTIONAL_ERROR}
        with pytest.raises(ModelError, match=r"^outputs\.conc\.volume: "):
            parse_model(make_model(outputs={"conc": output}))

    assert not marker.exists()
    assert list(tmp_path.iterdir()) == []


def _parse_in_subprocess(expression: str, timeout_s: float) -> subprocess.CompletedProcess:
    script = textwrap.dedent(
        f"""
        from mipd_engine.errors import ModelError
        from mipd_engine.model import parse_model
        from tests.engine.conftest import make_model
        try:
            parse_model(make_model(parameters={{"CL": {expression!r}, "V": "TVV"}}))
        except ModelError as error:
            print("ModelError", error)
        """
    )
    return subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout_s
    )


def test_it_does_not_hang_on_a_huge_integer_power() -> None:
    """``10**10**10`` is a 10-billion-digit integer in Python arithmetic: loading must stay bounded."""
    try:
        result = _parse_in_subprocess("TVCL * 10**10**10", timeout_s=10)
    except subprocess.TimeoutExpired:
        pytest.fail("parse_model('10**10**10') ran for more than 10 s (Python integer power on constants)")
    assert result.stdout.startswith("ModelError parameters"), result.stdout + result.stderr


@pytest.mark.parametrize(
    "expression",
    ["TVCL / 0", "TVCL / (TVV - 50)", "(0 - TVCL)**0.5", "TVCL**1000", "10.0**400", "0**-1"],
)
def test_it_reports_impossible_arithmetic_on_thetas_as_a_model_error(expression: str) -> None:
    """Thetas and constants must follow the same (numpy) arithmetic as etas and covariates.

    ``TVCL * exp(ETA_CL) / 0`` is inf (then refused as not finite) because the eta is an array; the same
    expression on thetas alone must not escape as a raw ZeroDivisionError, OverflowError or TypeError.
    """
    with pytest.raises(ModelError, match=r"^parameters"):
        parse_model(make_model(parameters={"CL": expression, "V": "TVV"}))


@pytest.mark.parametrize("name", ["True", "None", "lambda", "if"])
def test_it_rejects_python_keywords_as_names(name: str) -> None:
    """``str.isidentifier`` accepts keywords; a name no expression can refer to is an error in the file."""
    with pytest.raises(ModelError, match=rf"^parameters\.{name}: "):
        parse_model(make_model(parameters={"CL": "TVCL", "V": "TVV", name: "1"}))


# -- omega -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        ([[0.1, 0.02], [0.0, 0.05]], "omega.matrix: is not symmetric"),
        ([[0.1, 0.2], [0.2, 0.05]], "omega.matrix: is not positive definite"),
        ([[-0.1, 0.0], [0.0, 0.05]], "omega.matrix: is not positive definite"),
        ([[0.1]], "omega.matrix: expected a 2x2 matrix for 2 etas"),
        (
            [[0.1, 0.0, 0.0], [0.0, 0.1, 0.0], [0.0, 0.0, 0.1]],
            "omega.matrix: expected a 2x2 matrix for 2 etas",
        ),
        ([[0.1, "a"], ["a", 0.1]], "omega.matrix: expected a square matrix of numbers"),
    ],
    ids=[
        "not symmetric",
        "not positive definite",
        "negative variance",
        "too small",
        "too large",
        "not numbers",
    ],
)
def test_it_rejects_a_bad_omega(matrix, message: str) -> None:
    text = rejection(omega={"etas": ["ETA_CL", "ETA_V"], "type": "variance", "matrix": matrix})

    assert text == message


def test_it_converts_cv_percent_to_variances() -> None:
    """ω² = ln(1 + CV²): 30 % → 0.0862, 20 % → 0.0392."""
    model = parse_model(
        make_model(omega={"etas": ["ETA_CL", "ETA_V"], "type": "cv_percent", "matrix": [30, 20]})
    )

    expected = np.diag([math.log(1 + 0.3**2), math.log(1 + 0.2**2)])
    np.testing.assert_allclose(model.omega, expected, rtol=1e-15, atol=0)


def test_it_rejects_a_zero_cv() -> None:
    text = rejection(omega={"etas": ["ETA_CL", "ETA_V"], "type": "cv_percent", "matrix": [30, 0]})

    assert text == "omega.matrix: CVs must be positive"


# -- volumes and other impossible values -------------------------------------------------------------------


@pytest.mark.parametrize("expression", ["-TVV", "TVV / (0 - 2)", "TVV * (WT - 100) / 70"])
def test_it_rejects_a_volume_negative_for_the_typical_patient_at_load(expression: str) -> None:
    text = rejection(parameters={"CL": "TVCL", "V": expression})

    assert "parameters.V must be positive (a volume)" in text
    assert text.startswith("parameters")


def test_it_names_the_output_field_when_an_output_volume_is_negative() -> None:
    text = rejection(
        outputs={
            "conc": {"compartment": "central", "volume": "-V", "unit": "mg/L", "error": PROPORTIONAL_ERROR}
        }
    )

    assert "must be positive" in text
    assert "outputs.conc.volume" in text  # the field path, not an internal name


def test_it_refuses_an_eta_that_drives_a_volume_negative_at_simulation_time() -> None:
    model = parse_model(make_model(parameters={"CL": "TVCL", "V": "TVV + 100 * ETA_V"}))
    record = PatientRecord(covariates=TYPICAL, doses=(Dose(0.0, 100.0, route="iv_bolus"),))
    simulate(model, record, [1.0], eta=np.array([0.0, -0.4]))  # V = 10: fine

    with pytest.raises(ParameterValueError, match=r"parameters\.V must be positive"):
        simulate(model, record, [1.0], eta=np.array([[0.0, 0.1], [0.0, -0.6]]))


def test_it_refuses_a_negative_clearance_at_simulation_time() -> None:
    model = parse_model(make_model(parameters={"CL": "TVCL + 10 * ETA_CL", "V": "TVV"}))
    record = PatientRecord(covariates=TYPICAL, doses=(Dose(0.0, 100.0, route="iv_bolus"),))

    with pytest.raises(ParameterValueError, match="must not be negative"):
        simulate(model, record, [1.0], eta=np.array([-1.0, 0.0]))


# -- structure, outputs, covariates ------------------------------------------------------------------------


def test_it_names_the_parameter_a_preset_is_missing() -> None:
    text = rejection(structure={"preset": "2cmt"}, parameters={"CL": "TVCL", "V1": "TVV", "V2": "2 * TVV"})

    assert text == "parameters: preset '2cmt' needs parameter 'Q'"


def test_it_needs_ka_for_first_order_absorption() -> None:
    text = rejection(structure={"preset": "1cmt", "absorption": "first-order"})

    assert text == "parameters: preset '1cmt' needs parameter 'KA'"


def test_it_rejects_an_output_of_an_unknown_compartment() -> None:
    text = rejection(outputs={"conc": {"compartment": "blood", "volume": "V", "error": PROPORTIONAL_ERROR}})

    assert text == "outputs.conc.compartment: unknown compartment 'blood'"


def test_it_rejects_an_inverted_covariate_range() -> None:
    text = rejection(covariates={"WT": {"unit": "kg", "min": 180, "max": 30}})

    assert text == "covariates.WT: range is inverted: min 180 > max 30"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"format": "mipd-model/2"}, "format: unsupported format 'mipd-model/2'"),
        ({"id": None}, "id: required field is missing"),
        ({"structure": {"preset": "4cmt"}}, "structure.preset: unknown preset '4cmt'"),
        (
            {"structure": {"preset": "1cmt", "absorption": "zero-order"}},
            "structure.absorption: unknown absorption",
        ),
        ({"thetas": {"TVCL": "4", "TVV": 50}}, "thetas.TVCL: expected a finite number"),
        ({"routes": {"oral": ["gut"]}}, "routes.oral: unknown compartment 'gut'"),
        ({"inputs": {"gut": {"lag_h": "1"}}}, "inputs.gut: unknown compartment 'gut'"),
        ({"inputs": {"central": {"lag": "1"}}}, "inputs.central: unknown field(s) lag"),
        (
            {"outputs": {"conc": {"compartment": "central", "volume": "V", "error": {"model": "poisson"}}}},
            "outputs.conc.error.model: unknown error model 'poisson'",
        ),
        (
            {
                "outputs": {
                    "conc": {"compartment": "central", "volume": "V", "error": {"model": "proportional"}}
                }
            },
            "outputs.conc.error.proportional: the proportional error model needs a positive 'proportional'",
        ),
        ({"outputs": {}}, "outputs: a model needs at least one output"),
        (
            {"parameters": {"CL": "TVCL", "V": "TVV", "TVCL": "1"}},
            "parameters.TVCL: 'TVCL' is already a theta",
        ),
    ],
)
def test_it_names_the_field_of_other_structural_errors(overrides, message: str) -> None:
    assert rejection(**overrides).startswith(message)


def test_it_warns_about_covariates_outside_the_declared_range() -> None:
    model = parse_model(
        make_model(covariates={"WT": {"unit": "kg", "min": 30, "max": 180}, "DIAL": {"type": "boolean"}})
    )

    assert model.covariate_warnings({"WT": 70, "DIAL": 1}) == []
    assert model.covariate_warnings({"WT": 250, "DIAL": 0}) == [
        "WT 250 lies outside the model's range [30, 180] kg"
    ]
    assert model.covariate_warnings({"WT": 70, "DIAL": 0.5}) == ["DIAL 0.5 is not 0 or 1"]


def test_it_requires_the_covariates_the_model_uses() -> None:
    model = parse_model(make_model())
    record = PatientRecord(covariates={}, doses=(Dose(0.0, 100.0, route="iv_bolus"),))

    with pytest.raises(ModelError, match=r"^covariates.WT: missing value"):
        simulate(model, record, [1.0])


# -- doses -------------------------------------------------------------------------------------------------


def test_it_rejects_a_route_the_model_does_not_have() -> None:
    model = parse_model(make_model())
    record = PatientRecord(covariates=TYPICAL, doses=(Dose(0.0, 100.0, route="intrathecal"),))

    with pytest.raises(InvalidInputError, match=r"^doses\[0\]\.route: unknown route 'intrathecal'"):
        simulate(model, record, [1.0])


def test_it_rejects_an_infusion_without_a_duration() -> None:
    model = parse_model(make_model())
    record = PatientRecord(covariates=TYPICAL, doses=(Dose(0.0, 100.0, route="iv_infusion"),))

    with pytest.raises(InvalidInputError, match=r"^doses\[0\]\.duration_h: .*duration"):
        simulate(model, record, [1.0])


def test_it_rejects_a_dose_into_an_unknown_compartment() -> None:
    model = parse_model(make_model())
    record = PatientRecord(covariates=TYPICAL, doses=(Dose(0.0, 100.0, compartment="depot"),))

    with pytest.raises(ModelError, match=r"^doses\[0\]\.compartment: unknown compartment 'depot'"):
        simulate(model, record, [1.0])


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"amount_mg": -5.0}, "amount_mg"),
        ({"amount_mg": 0.0}, "amount_mg"),
        ({"amount_mg": math.nan}, "amount_mg"),
        ({"time_h": math.inf}, "time_h"),
        ({"duration_h": -1.0}, "duration_h"),
        ({"rate_mg_per_h": 0.0}, "rate_mg_per_h"),
        ({"rate_mg_per_h": 50.0, "duration_h": 2.0}, "rate_mg_per_h"),
        ({"additional": 2}, "interval_h"),
        ({"steady_state": True}, "interval_h"),
        ({"additional": 1.5, "interval_h": 12.0}, "additional"),
        ({"route": None}, "route"),
    ],
)
def test_it_rejects_an_impossible_dose_record(kwargs, field: str) -> None:
    arguments = {"time_h": 0.0, "amount_mg": 100.0, "route": "iv_infusion", **kwargs}

    with pytest.raises(InvalidInputError) as error:
        Dose(**arguments)

    assert error.value.path == field
    assert str(error.value).startswith(f"{field}: ")
