"""A model's validity domain: the ``domain`` block is validated with field paths, and a patient is checked
against its hard domain (ineligible outside) and soft ranges (eligible, with a finding to acknowledge).

The library part checks every published model: a named source, numeric bounds, soft ranges inside the hard
ones, and adult models closed to children (and the paediatric ones to adults).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mipd_engine.domain import DomainFacts, ModelDomain, check_domain, parse_domain
from mipd_engine.errors import ModelError
from mipd_engine.model import PopulationModel, parse_model

from .conftest import make_model

LIBRARY_MODELS = sorted(
    (Path(__file__).resolve().parents[2] / "models_catalog" / "library" / "models").glob("*.json")
)
PAEDIATRIC = {
    "tobramycin-hennig-2008",
    "tacrolimus-andrews-2017",
    "vancomycin-dao-2020",
    "gentamicin-fuchs-2014",
    "busulfan-neroutsos-2022",
    "lamotrigine-he-2012",
}
# Built on children and young adults together: an older adult lies outside, as a young child does.
CHILDREN_AND_YOUNG_ADULTS = {"everolimus-park-2023": 70.0}

GOTI_LIKE = {
    "source": "test fixture: Goti 2018 Table 1",
    "hard": {
        "age_years": [18, None],
        "weight_kg": [24, 319],
        "renal_replacement": ["none", "intermittent_haemodialysis"],
        "ecmo": [False],
    },
    "soft": {"age_years": [17, 101], "weight_kg": [33, 255], "WT": [33, 255]},
}


def model_with_domain(domain: Any) -> PopulationModel:
    return parse_model(make_model(domain=domain))


def refusal(domain: Any) -> ModelError:
    with pytest.raises(ModelError) as error:
        model_with_domain(domain)
    return error.value


def domain_of(document: dict[str, Any]) -> ModelDomain:
    domain = model_with_domain(document).domain
    assert domain is not None
    return domain


# -- parsing ------------------------------------------------------------------------------------------------


def test_a_valid_domain_is_parsed_into_rules() -> None:
    domain = domain_of(GOTI_LIKE)

    assert domain.source == "test fixture: Goti 2018 Table 1"
    hard = {rule.key: rule for rule in domain.hard}
    assert (hard["age_years"].low, hard["age_years"].high) == (18.0, None)
    assert (hard["weight_kg"].low, hard["weight_kg"].high) == (24.0, 319.0)
    assert hard["renal_replacement"].allowed == ("none", "intermittent_haemodialysis")
    assert hard["ecmo"].allowed == (False,)
    assert not hard["ecmo"].is_range and hard["age_years"].is_range
    assert {rule.key for rule in domain.soft} == {"age_years", "weight_kg", "WT"}
    assert domain.keys == {"age_years", "weight_kg", "renal_replacement", "ecmo", "WT"}


def test_a_model_covariate_name_is_accepted_as_a_key() -> None:
    domain = domain_of({"source": "s", "hard": {"WT": [30, 180]}})

    (rule,) = domain.hard
    assert (rule.key, rule.low, rule.high) == ("WT", 30.0, 180.0)
    # The same name on a model without that covariate is unknown.
    with pytest.raises(ModelError) as error:
        parse_domain({"source": "s", "hard": {"WT": [30, 180]}}, covariates={})
    assert error.value.path == "domain.hard.WT"


@pytest.mark.parametrize(
    ("domain", "path", "words"),
    [
        ({"source": "s", "hard": {"AGE": [18, None]}}, "domain.hard.AGE", "unknown key 'AGE'"),
        ({"source": "s", "soft": {"weight_kg": [100, 40]}}, "domain.soft.weight_kg", "inverted"),
        (
            {"source": "s", "hard": {"renal_replacement": ["none", "haemofiltration"]}},
            "domain.hard.renal_replacement",
            "unknown modality 'haemofiltration'",
        ),
        ({"source": "s", "hard": {"age_years": 18}}, "domain.hard.age_years", "expected [min, max]"),
        ({"source": "s", "hard": {"age_years": [18]}}, "domain.hard.age_years", "expected [min, max]"),
        ({"source": "s", "hard": {"age_years": [None, None]}}, "domain.hard.age_years", "at least one"),
        ({"source": "s", "hard": {"age_years": ["18", None]}}, "domain.hard.age_years", "number or null"),
        ({"source": "s", "hard": {"age_years": [True, None]}}, "domain.hard.age_years", "number or null"),
        (
            {"source": "s", "hard": {"renal_replacement": "none"}},
            "domain.hard.renal_replacement",
            "non-empty list",
        ),
        ({"source": "s", "hard": {"ecmo": []}}, "domain.hard.ecmo", "non-empty list"),
        ({"source": "s", "hard": {"ecmo": [0]}}, "domain.hard.ecmo", "true/false"),
        ({"source": "s", "hard": ["age_years"]}, "domain.hard", "expected an object"),
        ({"hard": {"age_years": [18, None]}}, "domain.source", "say where"),
        ({"source": "   ", "hard": {"age_years": [18, None]}}, "domain.source", "say where"),
        ({"source": "s"}, "domain", "at least one hard or soft bound"),
        ({"source": "s", "hard": {}, "soft": {}}, "domain", "at least one hard or soft bound"),
        ({"source": "s", "hrad": {"age_years": [18, None]}}, "domain", "unknown field(s) hrad"),
        (["age_years"], "domain", "expected an object"),
    ],
)
def test_parse_errors_name_the_field_path(domain: Any, path: str, words: str) -> None:
    error = refusal(domain)

    assert error.path == path
    assert words in error.message


def test_a_model_without_a_domain_has_none() -> None:
    assert parse_model(make_model()).domain is None


# -- checking a patient -------------------------------------------------------------------------------------


def adult(**values: list[float]) -> DomainFacts:
    base: dict[str, list[float]] = {"age_years": [50.0], "weight_kg": [70.0], "WT": [70.0]}
    base.update(values)
    return DomainFacts(values=base)


def test_a_patient_inside_every_bound_is_eligible_without_findings() -> None:
    check = check_domain(domain_of(GOTI_LIKE), adult())

    assert check.declared and check.eligible
    assert check.findings == ()


def test_outside_the_hard_domain_the_patient_is_ineligible_with_a_readable_message() -> None:
    check = check_domain(domain_of(GOTI_LIKE), adult(age_years=[8.0], weight_kg=[25.0], WT=[25.0]))

    assert not check.eligible
    (age,) = [f for f in check.hard if f.key == "age_years"]
    assert not age.missing
    assert age.message == "age 8 years lies below the model's domain (at least 18 years)"
    # A weight of 25 kg is inside the hard band (24-319 kg) but below the studied 33 kg: soft findings only.
    assert {f.key for f in check.hard} == {"age_years"}
    assert {f.key for f in check.soft} == {"age_years", "weight_kg", "WT"}


def test_above_the_hard_domain_names_the_value_and_the_range() -> None:
    check = check_domain(domain_of(GOTI_LIKE), adult(weight_kg=[330.0]))

    assert not check.eligible
    (weight,) = [f for f in check.hard if f.key == "weight_kg"]
    assert weight.message == "weight 330 kg lies above the model's domain (24-319 kg)"


def test_outside_a_soft_range_the_patient_stays_eligible_with_a_soft_finding() -> None:
    check = check_domain(domain_of(GOTI_LIKE), adult(age_years=[104.0]))

    assert check.eligible
    assert check.hard == ()
    (finding,) = check.soft
    assert finding.key == "age_years" and not finding.hard and not finding.missing
    assert finding.message == "age 104 years lies above the population the model was built on (17-101 years)"


def test_a_bound_is_inclusive() -> None:
    check = check_domain(domain_of(GOTI_LIKE), adult(age_years=[18.0], weight_kg=[319.0], WT=[70.0]))

    assert check.eligible
    assert {f.key for f in check.hard} == set()
    assert [f.key for f in check.soft] == ["weight_kg"]  # 319 > 255 (soft), = 319 (hard)


def test_a_missing_fact_is_a_hard_finding_marked_missing() -> None:
    facts = DomainFacts(values={"age_years": [50.0], "WT": [70.0]})  # no weight_kg

    check = check_domain(domain_of(GOTI_LIKE), facts)

    assert not check.eligible
    (finding,) = check.hard
    assert finding.key == "weight_kg" and finding.missing
    assert "weight is not recorded" in finding.message and "24-319 kg" in finding.message
    # The soft range on the same fact cannot be checked either; that finding is soft.
    (soft,) = check.soft
    assert soft.key == "weight_kg" and soft.missing and not soft.hard


def test_a_value_recorded_as_none_counts_as_missing() -> None:
    no_age: list[Any] = [None]
    facts = DomainFacts(values={"age_years": no_age, "weight_kg": [70.0], "WT": [70.0]})

    check = check_domain(domain_of(GOTI_LIKE), facts)

    assert not check.eligible
    assert [(f.key, f.missing) for f in check.hard] == [("age_years", True)]


def test_a_missing_ecmo_status_is_a_hard_finding_marked_missing() -> None:
    facts = DomainFacts(values=adult().values, ecmo=None)

    check = check_domain(domain_of(GOTI_LIKE), facts)

    assert not check.eligible
    (finding,) = check.hard
    assert finding.key == "ecmo" and finding.missing
    assert "ECMO status is not recorded" in finding.message


@pytest.mark.parametrize(
    ("received", "eligible", "words"),
    [
        (frozenset({"none"}), True, ""),
        (frozenset({"intermittent_haemodialysis"}), True, ""),
        (frozenset({"none", "intermittent_haemodialysis"}), True, ""),
        (frozenset({"crrt"}), False, "receives continuous renal replacement therapy (CRRT)"),
        (frozenset({"intermittent_haemodialysis", "peritoneal_dialysis"}), False, "peritoneal dialysis"),
    ],
)
def test_renal_replacement_must_be_in_the_allowed_set(received, eligible: bool, words: str) -> None:
    facts = DomainFacts(values=adult().values, renal_replacement=received)

    check = check_domain(domain_of(GOTI_LIKE), facts)

    assert check.eligible is eligible
    if eligible:
        assert check.findings == ()
    else:
        (finding,) = check.hard
        assert finding.key == "renal_replacement" and not finding.missing
        assert words in finding.message
        assert "no renal replacement therapy, intermittent haemodialysis" in finding.message


def test_a_model_for_patients_without_renal_replacement_refuses_haemodialysis() -> None:
    domain = domain_of({"source": "s", "hard": {"renal_replacement": ["none"]}})

    on_dialysis = DomainFacts(renal_replacement=frozenset({"intermittent_haemodialysis"}))
    check = check_domain(domain, on_dialysis)

    assert not check.eligible
    assert "receives intermittent haemodialysis" in check.hard[0].message
    assert check_domain(domain, DomainFacts()).eligible


@pytest.mark.parametrize(("ecmo", "eligible"), [(False, True), (True, False)])
def test_ecmo_must_be_allowed(ecmo: bool, eligible: bool) -> None:
    check = check_domain(domain_of(GOTI_LIKE), DomainFacts(values=adult().values, ecmo=ecmo))

    assert check.eligible is eligible
    if not eligible:
        (finding,) = check.hard
        assert finding.key == "ecmo" and not finding.missing
        assert finding.message == "the patient is on ECMO; the model's domain covers no ECMO"


def test_an_ecmo_model_accepts_a_patient_on_ecmo() -> None:
    domain = domain_of({"source": "s", "hard": {"ecmo": [True]}})

    assert check_domain(domain, DomainFacts(ecmo=True)).eligible
    not_on = check_domain(domain, DomainFacts(ecmo=False))
    assert not not_on.eligible
    assert not_on.hard[0].message == "the patient is not on ECMO; the model's domain covers on ECMO"


@pytest.mark.parametrize(
    ("crcl", "shown", "side"),
    [
        ([60.0, 160.0, 90.0], "160 mL/min", "above"),  # the maximum is out, the first value is not
        ([90.0, 3.5, 100.0], "3.5 mL/min", "below"),  # the minimum is out
    ],
)
def test_a_covariate_with_several_values_is_checked_at_its_min_and_max(crcl, shown: str, side: str) -> None:
    domain = parse_domain({"source": "s", "soft": {"CRCL": [4, 150]}}, covariates={"CRCL": object()})

    check = check_domain(domain, DomainFacts(values={"CRCL": crcl}), covariate_units={"CRCL": "mL/min"})

    assert check.eligible
    (finding,) = check.soft
    assert finding.message == f"CRCL {shown} lies {side} the population the model was built on (4-150 mL/min)"
    inside = check_domain(domain, DomainFacts(values={"CRCL": [4.0, 80.0, 150.0]}))
    assert inside.findings == ()


def test_a_hard_bound_broken_only_later_in_the_course_makes_the_patient_ineligible() -> None:
    facts = adult(weight_kg=[70.0, 72.0, 330.0])

    check = check_domain(domain_of(GOTI_LIKE), facts)

    assert not check.eligible
    assert "weight 330 kg" in check.hard[0].message


def test_a_model_without_a_domain_is_eligible_and_says_it_declares_none() -> None:
    model = parse_model(make_model())

    check = check_domain(model.domain, DomainFacts(values={"age_years": [8.0]}))

    assert check.eligible and not check.declared
    assert check.findings == ()


# -- the library -------------------------------------------------------------------------------------------


def library_model(path: Path) -> PopulationModel:
    return parse_model(json.loads(path.read_text(encoding="utf-8"))["model"])


def test_the_library_has_models_to_check() -> None:
    stems = {path.stem for path in LIBRARY_MODELS}
    assert len(stems) >= 9
    assert PAEDIATRIC <= stems


@pytest.mark.parametrize("path", LIBRARY_MODELS, ids=[p.stem for p in LIBRARY_MODELS])
def test_every_library_model_declares_a_sourced_numeric_domain(path: Path) -> None:
    domain = library_model(path).domain
    card = json.loads(path.read_text(encoding="utf-8"))["model_card"]

    assert domain is not None, f"{path.stem} declares no domain"
    assert domain.source.strip()
    for part, name in ((domain.hard, "hard"), (domain.soft, "soft")):
        ranges = [rule for rule in part if rule.is_range]
        if name == "soft" and not ranges:
            # No studied range published in the sources: allowed only when the card says why, per covariate.
            assert card.get("ranges_not_reported"), f"{path.stem}: no soft range and no reason given"
        else:
            assert ranges, f"{path.stem}: no numeric {name} bound"
        for rule in ranges:
            assert rule.low is not None or rule.high is not None
    hard = {rule.key: rule for rule in domain.hard if rule.is_range}
    for soft in (rule for rule in domain.soft if rule.is_range):
        if soft.key not in hard:
            continue
        outer = hard[soft.key]
        if outer.low is not None:
            assert soft.low is not None and soft.low >= outer.low, f"{path.stem}: {soft.key} low"
        if outer.high is not None:
            assert soft.high is not None and soft.high <= outer.high, f"{path.stem}: {soft.key} high"


def typical_facts(domain: ModelDomain) -> dict[str, list[float]]:
    """A value for every numeric key: the middle of its soft range (else of its hard range)."""
    values: dict[str, list[float]] = {}
    for rule in (*domain.hard, *domain.soft):  # soft last: it wins
        if not rule.is_range:
            continue
        low = rule.low if rule.low is not None else 0.0
        high = rule.high if rule.high is not None else 2 * low + 1
        values[rule.key] = [0.5 * (low + high)]
    return values


@pytest.mark.parametrize("path", LIBRARY_MODELS, ids=[p.stem for p in LIBRARY_MODELS])
def test_adult_models_exclude_a_child_and_paediatric_models_an_adult(path: Path) -> None:
    model = library_model(path)
    assert model.domain is not None
    values = typical_facts(model.domain)
    # A model for one modality only (e.g. CRRT) is checked on a patient receiving it.
    renal = next((rule.allowed for rule in model.domain.hard if rule.key == "renal_replacement"), ("none",))
    on = frozenset({"none"} if "none" in renal else {renal[0]})
    assert check_domain(model.domain, DomainFacts(values=values, renal_replacement=on)).eligible, "typical"

    excluded_age = 30.0 if path.stem in PAEDIATRIC else CHILDREN_AND_YOUNG_ADULTS.get(path.stem, 8.0)
    facts = DomainFacts(values={**values, "age_years": [excluded_age]}, renal_replacement=on)
    check = check_domain(model.domain, facts)

    assert not check.eligible
    assert [(f.key, f.missing) for f in check.hard] == [("age_years", False)]
    assert f"age {excluded_age:g} years lies" in check.hard[0].message
