"""Every solution path of ``simulate`` against an independent numerical ODE solution.

The reference (``conftest.reference_amounts``) integrates a right-hand side written here from rate constants
(k10 = CL/V1, k12 = Q/V1, ...) with LSODA at rtol 1e-10, restarting at every dose, infusion end, covariate
change and reset. Agreement is required to a relative 1e-6 at random times, with an absolute floor of 1e-9 ×
the peak (see ``assert_matches_reference``). Regimens and parameters are drawn by hypothesis. The saturable
(Michaelis-Menten) path is also checked against a closed form that needs no integrator: Lambert's W for a
one-compartment IV bolus.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from scipy.special import lambertw

from mipd_engine.events import CovariateChange, Dose, PatientRecord
from mipd_engine.model import parse_model
from mipd_engine.simulation import simulate

from .conftest import (
    PROPERTY_SETTINGS,
    PROPORTIONAL_ERROR,
    Input,
    Kinetics,
    assert_matches_reference,
    make_model,
    mammillary_flows,
    preset_model,
    reference_amounts,
    reference_steady_state,
)

# -- strategies --------------------------------------------------------------------------------------------


def log_uniform(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(math.log(low), math.log(high)).map(math.exp)


PARAMETER_RANGES = {
    "CL": (0.5, 20.0),
    "V": (5.0, 200.0),
    "V1": (5.0, 100.0),
    "Q": (0.5, 30.0),
    "V2": (5.0, 300.0),
    "Q2": (0.5, 30.0),
    "Q3": (0.1, 10.0),
    "V3": (10.0, 500.0),
    "KA": (0.2, 5.0),
}
PRESET_NAMES = {
    "1cmt": ("CL", "V"),
    "2cmt": ("CL", "V1", "Q", "V2"),
    "3cmt": ("CL", "V1", "Q2", "V2", "Q3", "V3"),
}
PRESETS = st.sampled_from(sorted(PRESET_NAMES))
ETAS = st.lists(st.floats(-0.5, 0.5), min_size=2, max_size=2).map(np.array)
# Times, intervals and durations on clinical grids (quarter hours, minutes): the draws then never put two
# events a few ulps apart, which the ODE path does not survive (a separate test below shows it).
QUARTER_HOURS = st.integers(0, 192).map(lambda k: k / 4)  # 0..48 h
INTERVALS = st.integers(16, 96).map(lambda k: k / 4)  # 4..24 h
DURATIONS = st.integers(6, 240).map(lambda k: k / 60)  # 0.1..4 h
TIME_FRACTIONS = st.lists(st.integers(0, 1000).map(lambda k: k / 1000), min_size=3, max_size=12)


def parameters(*names: str) -> st.SearchStrategy[dict[str, float]]:
    return st.fixed_dictionaries({name: log_uniform(*PARAMETER_RANGES[name]) for name in names})


@st.composite
def preset_and_parameters(draw, *, absorption: bool = False) -> tuple[str, dict[str, float]]:
    preset = draw(PRESETS)
    names = PRESET_NAMES[preset] + (("KA",) if absorption else ())
    return preset, draw(parameters(*names))


@st.composite
def regimens(draw, *, kind: str = "bolus", max_records: int = 3) -> list[dict[str, float]]:
    """Keyword arguments of 1..max_records dose records; ``kind`` is bolus, duration or rate."""
    records = []
    for _ in range(draw(st.integers(1, max_records))):
        record: dict[str, float] = {
            "time_h": draw(QUARTER_HOURS),
            "amount_mg": draw(log_uniform(10.0, 1000.0)),
        }
        if kind == "duration":
            record["duration_h"] = draw(DURATIONS)
        elif kind == "rate":
            record["rate_mg_per_h"] = record["amount_mg"] / draw(DURATIONS)
        if draw(st.booleans()):
            record["interval_h"] = draw(INTERVALS)
            record["additional"] = draw(st.integers(1, 3))
        records.append(record)
    return records


def administration_times(record: dict[str, float]) -> list[float]:
    """Times of every administration of a dose record, expanded by hand (NONMEM II/ADDL)."""
    step = record.get("interval_h", 0.0)
    return [record["time_h"] + i * step for i in range(int(record.get("additional", 0)) + 1)]


def evaluation_times(
    fractions: list[float], records: list[dict[str, float]], *, after_h: float = 48.0
) -> list:
    """Random times (quarter-hour grid) over the regimen, plus every administration time (pre-dose)."""
    administered = [t for record in records for t in administration_times(record)]
    horizon = max(administered) + after_h
    return sorted({*(round(f * horizon * 4) / 4 for f in fractions), *administered})


def individual(values: dict[str, float], eta_on: tuple[str, ...], eta: np.ndarray) -> dict[str, float]:
    p = dict(values)
    for name, value in zip(eta_on, eta, strict=True):
        p[name] *= math.exp(value)
    return p


def distinct_rates(*rates: float, gap: float = 1e-3) -> bool:
    """The engine nudges nearly equal eigenvalues (documented, error ~1e-7·λt); keep the draws away from that.

    The equal-rate case itself is tested against its analytic limit in test_simulation_textbook.py.
    """
    values = sorted(rates)
    return all(b - a > gap * b for a, b in itertools.pairwise(values))


def peak_of(inputs: list[Input], volume: float) -> float:
    """Concentration a bolus of the largest input would give: the scale of the absolute floor."""
    return max(i.amount_mg for i in inputs) / volume


def concentrations(model_document, record, times, eta=None, output="conc") -> np.ndarray:
    return simulate(parse_model(model_document), record, times, eta=eta).outputs[output]


# -- IV: bolus and infusions in 1, 2, 3 compartments ---------------------------------------------------------


@PROPERTY_SETTINGS
@given(model=preset_and_parameters(), doses=regimens(kind="bolus"), fractions=TIME_FRACTIONS, eta=ETAS)
def test_it_matches_the_ode_for_iv_boluses(model, doses, fractions, eta) -> None:
    preset, values = model
    eta_on = (PRESET_NAMES[preset][0], PRESET_NAMES[preset][1])  # CL and the central volume
    document = preset_model(preset, values, eta_on=eta_on)
    record = PatientRecord(doses=tuple(Dose(route="iv_bolus", **d) for d in doses))
    times = evaluation_times(fractions, doses)

    actual = concentrations(document, record, times, eta=eta)[0]

    p = individual(values, eta_on, eta)
    kinetics = Kinetics(len(PRESET_NAMES[preset]) // 2, tuple(mammillary_flows(preset, p)))
    inputs = [Input(t, d["amount_mg"], 0) for d in doses for t in administration_times(d)]
    expected = reference_amounts(kinetics, inputs, times)[:, 0] / p[eta_on[1]]
    assert_matches_reference(actual, expected, peak=peak_of(inputs, p[eta_on[1]]))


@PROPERTY_SETTINGS
@given(
    model=preset_and_parameters(),
    doses=regimens(kind="duration"),
    fractions=TIME_FRACTIONS,
    etas=st.lists(ETAS, min_size=2, max_size=2).map(np.array),
    f_central=st.one_of(st.none(), st.floats(0.3, 1.0)),
)
def test_it_matches_the_ode_for_infusions_with_a_duration(model, doses, fractions, etas, f_central) -> None:
    """A batch of two eta vectors at once; with an optional bioavailability on central (rate F·D/d)."""
    preset, values = model
    eta_on = (PRESET_NAMES[preset][0], PRESET_NAMES[preset][1])
    inputs_spec = None
    if f_central is not None:
        values = {**values, "F": f_central}
        inputs_spec = {"central": {"bioavailability": "F"}}
    document = preset_model(preset, values, eta_on=eta_on, inputs=inputs_spec)
    record = PatientRecord(doses=tuple(Dose(route="iv_infusion", **d) for d in doses))
    ends = [t + d["duration_h"] for d in doses for t in administration_times(d)]
    times = sorted({*evaluation_times(fractions, doses), *ends})

    actual = concentrations(document, record, times, eta=etas)
    assert actual.shape == (2, len(times))

    f = 1.0 if f_central is None else f_central
    for row, eta in enumerate(etas):
        p = individual(values, eta_on, eta)
        kinetics = Kinetics(len(PRESET_NAMES[preset]) // 2, tuple(mammillary_flows(preset, p)))
        inputs = [
            Input(t, f * d["amount_mg"], 0, d["duration_h"]) for d in doses for t in administration_times(d)
        ]
        expected = reference_amounts(kinetics, inputs, times)[:, 0] / p[eta_on[1]]
        peak = peak_of(inputs, p[eta_on[1]])
        assert_matches_reference(actual[row], expected, peak=peak, err_msg=f"batch row {row}")


@PROPERTY_SETTINGS
@given(
    model=preset_and_parameters(),
    doses=regimens(kind="rate"),
    fractions=TIME_FRACTIONS,
    f_central=st.floats(0.3, 1.0),
)
def test_it_matches_the_ode_for_infusions_given_by_rate(model, doses, fractions, f_central) -> None:
    """NONMEM RATE > 0: bioavailability shortens the infusion (duration F·D/rate) at the same rate."""
    preset, values = model
    values = {**values, "F": f_central}
    document = preset_model(preset, values, inputs={"central": {"bioavailability": "F"}})
    record = PatientRecord(doses=tuple(Dose(route="iv_infusion", **d) for d in doses))
    times = evaluation_times(fractions, doses)

    actual = concentrations(document, record, times)[0]

    kinetics = Kinetics(len(PRESET_NAMES[preset]) // 2, tuple(mammillary_flows(preset, values)))
    inputs = [
        Input(t, f_central * d["amount_mg"], 0, f_central * d["amount_mg"] / d["rate_mg_per_h"])
        for d in doses
        for t in administration_times(d)
    ]
    volume = values[PRESET_NAMES[preset][1]]
    expected = reference_amounts(kinetics, inputs, times)[:, 0] / volume
    assert_matches_reference(actual, expected, peak=peak_of(inputs, volume))


# -- oral: lag, bioavailability, parallel absorption -------------------------------------------------------


@PROPERTY_SETTINGS
@given(
    model=preset_and_parameters(absorption=True),
    doses=regimens(kind="bolus"),
    fractions=TIME_FRACTIONS,
    f=st.floats(0.05, 1.0),
    lag=st.floats(0.05, 3.0),
    eta=ETAS,
)
def test_it_matches_the_ode_for_oral_doses_with_lag_and_bioavailability(model, doses, fractions, f, lag, eta):
    preset, values = model
    values = {**values, "F": f, "TLAG": lag}
    eta_on = ("KA", "TLAG")
    document = preset_model(
        preset,
        values,
        absorption=True,
        eta_on=eta_on,
        inputs={"depot": {"bioavailability": "F", "lag_h": "TLAG"}},
    )
    record = PatientRecord(doses=tuple(Dose(route="oral", **d) for d in doses))
    p = individual(values, eta_on, eta)
    flows = mammillary_flows(preset, p, absorption=True)
    kinetics = Kinetics(len(PRESET_NAMES[preset]) // 2 + 1, tuple(flows))
    assume(distinct_rates(*np.abs(np.linalg.eigvals(kinetics.matrix()))))
    times = sorted(
        {
            *evaluation_times(fractions, doses),
            *(t + p["TLAG"] for d in doses for t in administration_times(d)),
        }
    )

    actual = concentrations(document, record, times, eta=eta)[0]

    inputs = [
        Input(t + p["TLAG"], f * d["amount_mg"], 0, administered_h=t)
        for d in doses
        for t in administration_times(d)
    ]
    expected = reference_amounts(kinetics, inputs, times)[:, 1] / p[PRESET_NAMES[preset][1]]
    assert_matches_reference(actual, expected, peak=peak_of(inputs, p[PRESET_NAMES[preset][1]]))
    # Before the first lag has elapsed nothing has reached the central compartment.
    first = min(t for d in doses for t in administration_times(d)) + p["TLAG"]
    early = np.asarray(times) <= first
    np.testing.assert_allclose(actual[early], 0.0, atol=1e-300)


@PROPERTY_SETTINGS
@given(
    values=parameters("CL", "V", "KA"),
    d2=st.floats(0.5, 8.0),
    f1=st.floats(0.05, 0.95),
    doses=regimens(kind="bolus"),
    fractions=TIME_FRACTIONS,
    eta=ETAS,
)
def test_it_matches_the_ode_for_parallel_first_and_zero_order_absorption(
    values, d2, f1, doses, fractions, eta
):
    """Like reference run006: a fraction F1 through the depot, 1 − F1 zero-order into central over D2."""
    kinetics_values = {**values}
    assume(distinct_rates(values["KA"], values["CL"] / values["V"]))
    values = {**values, "D2": d2, "F1": f1}
    eta_on = ("CL", "D2")
    document = preset_model(
        "1cmt",
        values,
        absorption=True,
        eta_on=eta_on,
        inputs={
            "depot": {"bioavailability": "F1"},
            "central": {"bioavailability": "1 - F1", "duration_h": "D2"},
        },
        routes={"oral": ["depot", "central"]},
    )
    record = PatientRecord(doses=tuple(Dose(route="oral", **d) for d in doses))
    p = individual(values, eta_on, eta)
    kinetics_values["CL"] = p["CL"]
    times = sorted(
        {*evaluation_times(fractions, doses), *(t + p["D2"] for d in doses for t in administration_times(d))}
    )

    actual = concentrations(document, record, times, eta=eta)[0]

    kinetics = Kinetics(2, tuple(mammillary_flows("1cmt", kinetics_values, absorption=True)))
    inputs = []
    for d in doses:
        for t in administration_times(d):
            inputs.append(Input(t, f1 * d["amount_mg"], 0))
            inputs.append(Input(t, (1 - f1) * d["amount_mg"], 1, p["D2"]))
    expected = reference_amounts(kinetics, inputs, times)[:, 1] / p["V"]
    assert_matches_reference(actual, expected, peak=peak_of(inputs, p["V"]))


# -- time-varying covariates -------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(
    preset=st.sampled_from(["1cmt", "2cmt"]),
    values=parameters("CL", "V1", "Q", "V2"),
    crcl=st.tuples(st.floats(10.0, 150.0), st.floats(1.5, 4.0), st.booleans()),
    weights=st.tuples(st.floats(40.0, 120.0), st.floats(40.0, 120.0)),
    duration=st.floats(2.0, 6.0),
    split=st.floats(0.1, 0.9),
    second_change=st.one_of(st.none(), st.tuples(st.floats(7.0, 40.0), st.floats(10.0, 150.0))),
    repeat=st.tuples(st.floats(8.0, 24.0), st.integers(0, 3)),
    fractions=TIME_FRACTIONS,
)
def test_it_carries_amounts_across_a_covariate_change_during_an_infusion(
    preset, values, crcl, weights, duration, split, second_change, repeat, fractions
) -> None:
    """CL depends on CRCL, the central volume on WT; CRCL changes part-way through the first infusion.

    The engine must integrate the history piecewise (amounts carried across the change): superposing every
    dose with the latest parameters gives another answer, which the test checks too so that it can fail.
    """
    crcl0, ratio, up = crcl
    crcl1 = crcl0 * ratio if up else crcl0 / ratio
    wt0, wt1 = weights
    change_h = split * duration
    # Superposition with the parameters after the change errs by about |Δk|·T/2 relative; keep scenarios
    # where that is visible (> 1e-2).
    k_old = values["CL"] * (crcl0 / 100) ** 0.75 / (values["V1"] * wt0 / 70)
    k_new = values["CL"] * (crcl1 / 100) ** 0.75 / (values["V1"] * wt1 / 70)
    assume(abs(k_old - k_new) * change_h > 0.02)
    volume_name = "V" if preset == "1cmt" else "V1"
    document = make_model(
        id="test-covariates",
        structure={"preset": preset},
        thetas={"TVCL": values["CL"], "TVV1": values["V1"], "TVQ": values["Q"], "TVV2": values["V2"]},
        covariates={
            "CRCL": {"unit": "mL/min", "min": 1, "max": 600},
            "WT": {"unit": "kg", "min": 20, "max": 200},
        },
        parameters={
            "CL": "TVCL * (CRCL/100)**0.75",
            volume_name: "TVV1 * WT/70",
            **({"Q": "TVQ", "V2": "TVV2"} if preset == "2cmt" else {}),
        },
        outputs={
            "conc": {
                "compartment": "central",
                "volume": volume_name,
                "unit": "mg/L",
                "error": PROPORTIONAL_ERROR,
            }
        },
    )
    interval, additional = repeat
    dose = {
        "time_h": 0.0,
        "amount_mg": 500.0,
        "duration_h": duration,
        "interval_h": interval,
        "additional": additional,
    }
    changes = [CovariateChange(change_h, {"CRCL": crcl1, "WT": wt1})]
    phases_covariates = [(-math.inf, crcl0, wt0), (change_h, crcl1, wt1)]
    if second_change is not None:
        changes.append(CovariateChange(second_change[0], {"CRCL": second_change[1]}))
        phases_covariates.append((second_change[0], second_change[1], wt1))
    record = PatientRecord(
        covariates={"CRCL": crcl0, "WT": wt0},
        doses=(Dose(route="iv_infusion", **dose),),
        covariate_changes=tuple(changes),
    )
    ends = [t + duration for t in administration_times(dose)]
    times = sorted({*evaluation_times(fractions, [dose]), *ends, *(c.time_h for c in changes)})

    actual = concentrations(document, record, times)[0]

    phases = []
    volumes = []
    for start, c, w in phases_covariates:
        p = {
            "CL": values["CL"] * (c / 100) ** 0.75,
            volume_name: values["V1"] * w / 70,
            "Q": values["Q"],
            "V2": values["V2"],
        }
        n = 1 if preset == "1cmt" else 2
        phases.append((start, Kinetics(n, tuple(mammillary_flows(preset, p)))))
        volumes.append((start, p[volume_name]))
    inputs = [Input(t, dose["amount_mg"], 0, duration) for t in administration_times(dose)]
    amounts = reference_amounts(phases, inputs, times)[:, 0]
    starts = np.array([start for start, _ in volumes])
    # A change at time T applies for t > T: a level drawn at T still uses the earlier volume.
    volume_at = np.array([volumes[int(np.searchsorted(starts, t, side="left")) - 1][1] for t in times])
    expected = amounts / volume_at
    assert_matches_reference(actual, expected, peak=peak_of(inputs, min(volume_at)))

    # The wrong answer: the whole history superposed with the parameters in force just after the change
    # (CL then differs from the one that governed [0, T]; the error is about |Δk|·T/2 of the amount). Where
    # the two answers still agree within 1e-3 (a peripheral compartment or a volume change can offset it),
    # the scenario could not tell them apart: hypothesis discards it (and fails if it must discard them all).
    just_after = change_h + 1e-3
    naive_record = PatientRecord(covariates={"CRCL": crcl1, "WT": wt1}, doses=record.doses)
    naive = concentrations(document, naive_record, [just_after])[0, 0]
    right = concentrations(document, record, [just_after])[0, 0]
    assume(abs(naive - right) > 1e-3 * right)


# -- graphs: parent and metabolite, Michaelis-Menten --------------------------------------------------------


METABOLITE_MODEL = {
    "structure": {
        "compartments": ["depot", "central", "metabolite"],
        "flows": [
            {"from": "depot", "to": "central", "rate": "KA"},
            {"from": "central", "to": "metabolite", "rate": "FM*CL/V"},
            {"from": "central", "to": None, "rate": "(1 - FM)*CL/V"},
            {"from": "metabolite", "to": None, "rate": "CLM/VM"},
        ],
    },
    "routes": {"oral": ["depot"]},
    "parameters": {
        "CL": "TVCL*exp(ETA_CL)",
        "V": "TVV",
        "KA": "TVKA",
        "FM": "TVFM",
        "CLM": "TVCLM*exp(ETA_CLM)",
        "VM": "TVVM",
    },
    "omega": {"etas": ["ETA_CL", "ETA_CLM"], "matrix": [[0.2, 0.0], [0.0, 0.2]]},
    "covariates": None,
    "outputs": {
        "parent": {"compartment": "central", "volume": "V", "unit": "mg/L", "error": PROPORTIONAL_ERROR},
        "metabolite": {
            "compartment": "metabolite",
            "volume": "VM",
            "unit": "mg/L",
            "error": PROPORTIONAL_ERROR,
        },
    },
}


@PROPERTY_SETTINGS
@given(
    values=st.fixed_dictionaries(
        {
            "CL": log_uniform(0.5, 20.0),
            "V": log_uniform(5.0, 200.0),
            "KA": log_uniform(0.2, 5.0),
            "FM": st.floats(0.05, 0.95),
            "CLM": log_uniform(0.5, 20.0),
            "VM": log_uniform(5.0, 200.0),
        }
    ),
    oral=regimens(kind="bolus"),
    iv=st.one_of(st.none(), st.tuples(QUARTER_HOURS, st.floats(10.0, 500.0))),
    fractions=TIME_FRACTIONS,
    eta=ETAS,
)
def test_it_matches_the_ode_for_a_parent_metabolite_chain(values, oral, iv, fractions, eta) -> None:
    """Three compartments in a chain (depot → central → metabolite), both outputs, oral and IV doses."""
    p = {**values, "CL": values["CL"] * math.exp(eta[0]), "CLM": values["CLM"] * math.exp(eta[1])}
    k_central = p["CL"] / p["V"]
    assume(distinct_rates(p["KA"], k_central, p["CLM"] / p["VM"]))
    document = make_model(
        id="test-metabolite", thetas={f"TV{k}": v for k, v in values.items()}, **METABOLITE_MODEL
    )
    doses = [Dose(route="oral", **d) for d in oral]
    if iv is not None:
        doses.append(Dose(iv[0], iv[1], compartment="central"))
    record = PatientRecord(doses=tuple(doses))
    times = evaluation_times(fractions, oral + ([{"time_h": iv[0]}] if iv else []))

    prediction = simulate(parse_model(document), record, times, eta=eta)

    kinetics = Kinetics(
        3,
        (
            (0, 1, p["KA"]),
            (1, 2, p["FM"] * k_central),
            (1, None, (1 - p["FM"]) * k_central),
            (2, None, p["CLM"] / p["VM"]),
        ),
    )
    inputs = [Input(t, d["amount_mg"], 0) for d in oral for t in administration_times(d)]
    if iv is not None:
        inputs.append(Input(iv[0], iv[1], 1))
    amounts = reference_amounts(kinetics, inputs, times)
    parent, metabolite = prediction.outputs["parent"][0], prediction.outputs["metabolite"][0]
    assert_matches_reference(parent, amounts[:, 1] / p["V"], peak=peak_of(inputs, p["V"]), err_msg="parent")
    peak = peak_of(inputs, p["VM"])
    assert_matches_reference(metabolite, amounts[:, 2] / p["VM"], peak=peak, err_msg="metabolite")


def michaelis_menten_model(values: dict[str, float]) -> dict:
    return make_model(
        id="test-michaelis-menten",
        structure={
            "compartments": ["depot", "central"],
            "flows": [
                {"from": "depot", "to": "central", "rate": "KA"},
                {"from": "central", "to": None, "rate": "CL/V"},
            ],
            "saturable": [{"from": "central", "to": None, "vmax": "VMAX", "km": "KM", "volume": "V"}],
        },
        routes={"oral": ["depot"], "iv_bolus": ["central"], "iv_infusion": ["central"]},
        thetas={f"TV{k}": v for k, v in values.items()},
        covariates=None,
        parameters={"VMAX": "TVVMAX*exp(ETA_VMAX)", "KM": "TVKM", "V": "TVV", "KA": "TVKA", "CL": "TVCL"},
        omega={"etas": ["ETA_VMAX"], "matrix": [[0.2]]},
    )


def michaelis_menten_kinetics(p: dict[str, float]) -> Kinetics:
    return Kinetics(
        2, ((0, 1, p["KA"]), (1, None, p["CL"] / p["V"])), ((1, None, p["VMAX"], p["KM"], p["V"]),)
    )


MM_VALUES = st.fixed_dictionaries(
    {
        "VMAX": log_uniform(10.0, 500.0),
        "KM": log_uniform(0.5, 50.0),
        "V": log_uniform(10.0, 100.0),
        "KA": log_uniform(0.2, 5.0),
        "CL": st.floats(0.0, 5.0),
    }
)


@PROPERTY_SETTINGS
@given(
    values=MM_VALUES,
    route=st.sampled_from(["oral", "iv_bolus", "iv_infusion"]),
    doses=regimens(kind="duration"),
    fractions=TIME_FRACTIONS,
    eta_vmax=st.floats(-0.5, 0.5),
)
def test_it_matches_the_ode_for_michaelis_menten_elimination(
    values, route, doses, fractions, eta_vmax
) -> None:
    """The engine's ODE path (saturable flows) against the reference's own right-hand side."""
    if route != "iv_infusion":
        doses = [{k: v for k, v in d.items() if k != "duration_h"} for d in doses]
    document = michaelis_menten_model(values)
    record = PatientRecord(doses=tuple(Dose(route=route, **d) for d in doses))
    times = evaluation_times(fractions, doses)

    actual = concentrations(document, record, times, eta=np.array([eta_vmax]))[0]

    p = {**values, "VMAX": values["VMAX"] * math.exp(eta_vmax)}
    compartment = 0 if route == "oral" else 1
    inputs = [
        Input(t, d["amount_mg"], compartment, d.get("duration_h", 0.0))
        for d in doses
        for t in administration_times(d)
    ]
    expected = reference_amounts(michaelis_menten_kinetics(p), inputs, times)[:, 1] / p["V"]
    assert_matches_reference(actual, expected, peak=peak_of(inputs, p["V"]))


def michaelis_menten_bolus_closed_form(c0: float, vmax_mg_per_h: float, km: float, v: float, t: np.ndarray):
    """One-compartment IV bolus with Michaelis-Menten elimination only, dC/dt = -(VMAX/V)·C/(KM + C):
    C(t) = KM·W((C0/KM)·exp((C0 - VMAX/V·t)/KM)), W the principal branch of Lambert's W (t >= 0)."""
    argument = c0 / km * np.exp((c0 - vmax_mg_per_h / v * t) / km)
    return km * np.real(lambertw(argument, 0))


@PROPERTY_SETTINGS
@given(
    vmax=log_uniform(5.0, 500.0),
    km=log_uniform(0.5, 50.0),
    v=log_uniform(10.0, 100.0),
    saturation=log_uniform(0.01, 100.0),  # C0/KM: from near-linear to deeply saturated (phenytoin)
    fractions=st.lists(st.integers(1, 1000).map(lambda k: k / 1000), min_size=3, max_size=12),  # after t=0
)
def test_the_saturable_path_matches_the_lambert_w_closed_form(vmax, km, v, saturation, fractions) -> None:
    """An IV bolus eliminated by Michaelis-Menten alone: the engine's ODE path against the closed form
    (Lambert W, scipy), independent of any numerical integrator. Tolerance: relative 1e-6 with an absolute
    floor of 1e-9 x C0, as for the other paths (the engine integrates at rtol 1e-10)."""
    c0 = saturation * km
    dose = c0 * v
    horizon = 3 * (c0 + km * math.log(1 + saturation)) * v / vmax  # ~3 x the time to fall to a fraction
    times = np.array(sorted(f * horizon for f in fractions))
    document = michaelis_menten_model({"VMAX": vmax, "KM": km, "V": v, "KA": 1.0, "CL": 0.0})
    record = PatientRecord(doses=(Dose(0.0, dose, route="iv_bolus"),))
    actual = concentrations(document, record, times, eta=np.array([0.0]))[0]
    expected = michaelis_menten_bolus_closed_form(c0, vmax, km, v, times)
    # The reference solves the integrated rate law KM·ln(C/C0) + (C - C0) = -VMAX/V·t.
    np.testing.assert_allclose(km * np.log(expected / c0) + expected - c0, -vmax / v * times, atol=1e-9 * c0)
    assert_matches_reference(actual, expected, peak=c0)


def test_the_lambert_w_check_tells_saturable_from_first_order_elimination() -> None:
    """With CL = VMAX/KM (the low-concentration limit) at C0 = 10 KM, first-order decline is far faster
    than the saturated one: the comparison above would fail on a path that linearised the flow."""
    vmax, km, v = 100.0, 2.0, 50.0
    times = np.array([2.0, 6.0, 12.0])
    saturated = michaelis_menten_bolus_closed_form(10 * km, vmax, km, v, times)
    first_order = 10 * km * np.exp(-vmax / km / v * times)
    assert np.all(np.abs(first_order / saturated - 1) > 0.1)
    document = michaelis_menten_model({"VMAX": vmax, "KM": km, "V": v, "KA": 1.0, "CL": 0.0})
    record = PatientRecord(doses=(Dose(0.0, 10 * km * v, route="iv_bolus"),))
    actual = concentrations(document, record, times, eta=np.array([0.0]))[0]
    assert_matches_reference(actual, saturated, peak=10 * km)


# -- resets ------------------------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(
    values=parameters("CL", "V1", "Q", "V2", "KA"),
    lag=st.floats(0.1, 2.0),
    oral=regimens(kind="bolus"),
    infusions=regimens(kind="duration", max_records=2),
    reset_fractions=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=2),
    reset_at_a_dose=st.booleans(),
    fractions=TIME_FRACTIONS,
    saturable=st.booleans(),
)
def test_it_empties_every_compartment_at_a_reset(
    values, lag, oral, infusions, reset_fractions, reset_at_a_dose, fractions, saturable
) -> None:
    """NONMEM EVID 3/4: a reset empties the system and cancels running infusions and pending lagged doses.

    Exercised on the exact path (2 compartments with a lagged depot) and on the ODE path (the same with a
    saturable elimination added).
    """
    flows = mammillary_flows("2cmt", values, absorption=True)
    kinetics = Kinetics(3, tuple(flows))
    assume(distinct_rates(*np.abs(np.linalg.eigvals(kinetics.matrix()))))
    document = preset_model(
        "2cmt", {**values, "TLAG": lag}, absorption=True, inputs={"depot": {"lag_h": "TLAG"}}
    )
    if saturable:
        document["structure"] = {
            "compartments": ["depot", "central", "peripheral"],
            "flows": [
                {"from": "depot", "to": "central", "rate": "KA"},
                {"from": "central", "to": None, "rate": "CL/V1"},
                {"from": "central", "to": "peripheral", "rate": "Q/V1"},
                {"from": "peripheral", "to": "central", "rate": "Q/V2"},
            ],
            "saturable": [{"from": "central", "to": None, "vmax": "50", "km": "5", "volume": "V1"}],
        }
        document["routes"] = {"oral": ["depot"], "iv_infusion": ["central"]}
        kinetics = Kinetics(3, tuple(flows), ((1, None, 50.0, 5.0, values["V1"]),))
    administered = [t for d in oral + infusions for t in administration_times(d)]
    horizon = max(administered) + 24.0
    resets = sorted(
        {round(f * horizon * 4) / 4 for f in reset_fractions}
        | ({administered[0]} if reset_at_a_dose else set())
    )
    record = PatientRecord(
        doses=tuple(
            [Dose(route="oral", **d) for d in oral] + [Dose(route="iv_infusion", **d) for d in infusions]
        ),
        resets_h=tuple(resets),
    )
    times = sorted({*evaluation_times(fractions, oral + infusions, after_h=24.0), *resets})

    actual = concentrations(document, record, times)[0]

    inputs = [
        Input(t + lag, d["amount_mg"], 0, administered_h=t) for d in oral for t in administration_times(d)
    ]
    inputs += [
        Input(t, d["amount_mg"], 1, d["duration_h"]) for d in infusions for t in administration_times(d)
    ]
    expected = reference_amounts(kinetics, inputs, times, resets_h=resets)[:, 1] / values["V1"]
    assert_matches_reference(actual, expected, peak=peak_of(inputs, values["V1"]))


# -- steady state ------------------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(
    model=preset_and_parameters(absorption=True),
    route=st.sampled_from(["iv_bolus", "iv_infusion", "oral"]),
    amount=log_uniform(10.0, 1000.0),
    interval=INTERVALS,
    occupancy=st.floats(0.05, 0.9),
    additional=st.integers(0, 2),
    earlier_dose=st.booleans(),
    fractions=TIME_FRACTIONS,
)
def test_it_matches_the_limit_of_infinitely_many_doses_at_steady_state(
    model, route, amount, interval, occupancy, additional, earlier_dose, fractions
) -> None:
    """SS=1: the state at the dose is the fixed point of the one-interval map (computed from the ODE).

    Amounts from an earlier dose are discarded; the level at the steady-state dose time is the trough.
    """
    preset, values = model
    absorption = route == "oral"
    p = {**values, "F": 0.7, "TLAG": occupancy * interval}
    if not absorption:
        del p["KA"]
    document = preset_model(
        preset,
        p,
        absorption=absorption,
        inputs={"depot": {"bioavailability": "F", "lag_h": "TLAG"}} if absorption else None,
    )
    n = len(PRESET_NAMES[preset]) // 2 + absorption
    kinetics = Kinetics(n, tuple(mammillary_flows(preset, p, absorption=absorption)))
    if absorption:
        assume(distinct_rates(*np.abs(np.linalg.eigvals(kinetics.matrix()))))
    t0 = 24.0
    ss_dose = {"time_h": t0, "amount_mg": amount, "interval_h": interval, "additional": additional}
    if route == "iv_infusion":
        ss_dose["duration_h"] = occupancy * interval
    doses = [Dose(route=route, steady_state=True, **ss_dose)]
    if earlier_dose:
        doses.append(Dose(2.0, 1000.0, route=route, duration_h=ss_dose.get("duration_h")))
    record = PatientRecord(doses=tuple(doses))
    horizon = (additional + 2) * interval
    times = sorted({t0, *(t0 + round(f * horizon * 4) / 4 for f in fractions)})

    actual = concentrations(document, record, times)[0]

    central = 1 if absorption else 0

    def inputs_at(t: float) -> Input:
        if route == "oral":
            return Input(t + p["TLAG"], 0.7 * amount, 0, administered_h=t)
        return Input(t, amount, 0, ss_dose.get("duration_h", 0.0))

    trough = reference_steady_state(kinetics, [inputs_at(t0)], interval, t0=t0)
    inputs = [inputs_at(t) for t in administration_times(ss_dose)]
    amounts = reference_amounts(kinetics, inputs, times, initial=(t0, trough))
    expected = amounts[:, central] / p[PRESET_NAMES[preset][1]]
    assert_matches_reference(actual, expected, peak=peak_of(inputs, p[PRESET_NAMES[preset][1]]))
    volume = p[PRESET_NAMES[preset][1]]
    assert_matches_reference(actual[:1], trough[central : central + 1] / volume, peak=peak_of(inputs, volume))


# -- examples the properties might not hit -------------------------------------------------------------------


def test_it_accepts_unsorted_and_repeated_times_on_both_paths() -> None:
    values = {"VMAX": 100.0, "KM": 5.0, "V": 40.0, "KA": 1.2, "CL": 1.0}
    record = PatientRecord(
        doses=(Dose(0.0, 400.0, route="oral"), Dose(12.0, 300.0, route="iv_infusion", duration_h=2))
    )
    times = [30.0, 1.0, 13.0, 1.0, 0.0, 12.0, 7.5]
    inputs = [Input(0.0, 400.0, 0), Input(12.0, 300.0, 1, 2.0)]
    mm = concentrations(michaelis_menten_model(values), record, times)[0]
    assert_matches_reference(
        mm, reference_amounts(michaelis_menten_kinetics(values), inputs, times)[:, 1] / 40.0
    )

    linear = {"CL": 3.0, "V": 40.0, "KA": 1.2}
    document = preset_model("1cmt", linear, absorption=True)
    got = concentrations(document, record, times)[0]
    kinetics = Kinetics(2, tuple(mammillary_flows("1cmt", linear, absorption=True)))
    assert_matches_reference(got, reference_amounts(kinetics, inputs, times)[:, 1] / 40.0)


def test_it_matches_the_ode_at_steady_state_with_michaelis_menten_elimination() -> None:
    """The ODE path's steady state (intervals repeated until converged) against many doses, brute force."""
    values = {"VMAX": 60.0, "KM": 4.0, "V": 30.0, "KA": 1.0, "CL": 0.5}
    interval, amount = 12.0, 300.0
    record = PatientRecord(
        doses=(
            Dose(0.0, amount, route="iv_infusion", duration_h=1.0, interval_h=interval, steady_state=True),
        )
    )
    times = np.array([0.5, 1.0, 3.0, 6.0, 11.99])

    actual = concentrations(michaelis_menten_model(values), record, times)[0]

    # Reference: 60 intervals of history (the trough changes by < 1e-13 relative between the last ones).
    history = 60
    inputs = [Input(-k * interval, amount, 1, 1.0) for k in range(history, -1, -1)]
    kinetics = michaelis_menten_kinetics(values)
    troughs = reference_amounts(kinetics, inputs, [-2 * interval, -interval, 0.0])[:, 1]
    np.testing.assert_allclose(troughs[1], troughs[2], rtol=1e-9)  # converged, to the ODE tolerance
    expected = reference_amounts(kinetics, inputs, times)[:, 1] / values["V"]
    assert_matches_reference(actual, expected)


@pytest.mark.parametrize("saturable", [False, True], ids=["exact path", "ODE path"])
@pytest.mark.parametrize(
    "times",
    [[24.0, 36.0], [24.0], [0.0, 24.0]],
    ids=["followed by a later time", "alone", "as the last time"],
)
def test_it_reports_the_steady_state_trough_at_the_time_of_a_steady_state_dose(saturable, times) -> None:
    """Convention: a level drawn at the time of an SS=1 dose is the steady-state trough, on both paths.

    The usual TDM case: a trough drawn just before a dose given at steady state, and nothing requested after
    it. A negligible saturable flow (VMAX 1e-9 mg/h) switches the engine to its ODE path without changing
    the answer beyond 1e-9 relative.
    """
    cl, v, tau, dose = 4.0, 50.0, 12.0, 100.0
    document = preset_model("1cmt", {"CL": cl, "V": v})
    if saturable:
        document["structure"] = {
            "compartments": ["central"],
            "flows": [{"from": "central", "to": None, "rate": "CL/V"}],
            "saturable": [{"from": "central", "to": None, "vmax": "1e-9", "km": "1", "volume": "V"}],
        }
    record = PatientRecord(doses=(Dose(24.0, dose, route="iv_bolus", interval_h=tau, steady_state=True),))
    k = cl / v
    trough = dose / v * math.exp(-k * tau) / (1 - math.exp(-k * tau))
    expected = np.where(np.asarray(times) >= 24.0, trough, 0.0)  # t = 36 is the next trough

    actual = concentrations(document, record, times)[0]

    np.testing.assert_allclose(actual, expected, rtol=1e-6)


@pytest.mark.parametrize(
    ("dose_h", "level_h"),
    [(0.3, 0.1 * 3), (12.0, float(np.nextafter(12.0, 13.0))), (0.0, 1e-300)],
    ids=["0.1*3 h", "one ulp after 12 h", "1e-300 h"],
)
def test_it_survives_a_level_a_few_ulps_after_a_dose_on_the_ode_path(dose_h, level_h) -> None:
    """Times converted from clock times (minutes / 60, sums of intervals) can land an ulp away from a dose.

    Two breakpoints that close must not make the ODE path fail or return NaN: the level just after a bolus
    is the bolus divided by the volume (nothing has had time to leave).
    """
    values = {"VMAX": 100.0, "KM": 5.0, "V": 40.0, "KA": 1.2, "CL": 1.0}
    record = PatientRecord(doses=(Dose(dose_h, 400.0, route="iv_bolus"),))
    times = [dose_h, level_h, dose_h + 1.0]

    actual = concentrations(michaelis_menten_model(values), record, times)[0]

    expected = (
        reference_amounts(michaelis_menten_kinetics(values), [Input(dose_h, 400.0, 1)], times)[:, 1] / 40.0
    )
    assert_matches_reference(actual, expected)
