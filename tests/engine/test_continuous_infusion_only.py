"""recommend on a continuous-infusion-only target for a drug without a rate limit (piperacillin, meropenem).

Regression: the report kept the latest infusion's duration (1 h here) for a target that gives none, and the
regimen search then refused it ("not used by a continuous infusion"); without it, it asked for one.
"""

from __future__ import annotations

import copy

from mipd_engine.case import parse_case
from mipd_engine.reports import recommend_case
from tests.engine.test_recommend_forecast import CASE


def test_a_continuous_only_target_is_searched_without_an_infusion_duration() -> None:
    case = copy.deepcopy(CASE)
    case["target"] = {
        "metric": "css",
        "low": 10,
        "high": 15,
        "continuous_infusion": True,
        "interval_options_h": [],
        "dose_step_mg": 250,
        "max_daily_dose_mg": 6000,
        "start_h": 48,
    }
    result = recommend_case(parse_case(case))
    assert result["success"], result.get("message")
    assert result["regimens"] and all(r["continuous"] and r["duration_h"] == 24 for r in result["regimens"])
    assert not [w for w in result["warnings"] if "infusion duration" in w]
