"""A continuous-infusion-only course target on a drug without a rate limit: the drug's usual infusion
duration (or the last dose's) describes intermittent doses and is not passed to the regimen search, which
refuses it."""

from __future__ import annotations

from dosing.adapters import _merge_limits
from mipd_engine.regimens import RegimenConstraints

DRUG = {  # what _constraints gives for piperacillin after a 4-h extended infusion
    "route": "iv_infusion",
    "interval_options_h": [8, 6],
    "dose_step_mg": 2000,
    "max_dose_mg": 4000,
    "max_daily_dose_mg": 16000,
    "infusion_duration_h": 4,
    "continuous_infusion": True,
}
CONTINUOUS_ONLY = {"metric": "css", "low": 16, "continuous_infusion": True, "interval_options_h": []}


def test_the_drugs_infusion_duration_is_dropped_for_a_continuous_only_target() -> None:
    merged = _merge_limits(DRUG, CONTINUOUS_ONLY)
    assert "infusion_duration_h" not in merged
    assert merged["interval_options_h"] == [] and merged["max_daily_dose_mg"] == 16000
    keys = ("route", "dose_step_mg", "max_daily_dose_mg", "continuous_infusion")
    fields = {key: merged[key] for key in keys}
    assert RegimenConstraints(interval_options_h=(), **fields).continuous_infusion  # the search accepts it


def test_intermittent_targets_keep_it_and_a_stated_one_is_kept_for_the_engine_to_refuse() -> None:
    assert _merge_limits(DRUG, {"metric": "ft_above_mic", "low": 1})["infusion_duration_h"] == 4
    stated = {**CONTINUOUS_ONLY, "infusion_duration_h": 2}
    assert _merge_limits(DRUG, stated)["infusion_duration_h"] == 2
