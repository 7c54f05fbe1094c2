"""Model averaging and selection for a course (issue 17): every published model of the drug that fits the
patient, fitted to the course's doses and levels and combined by ``mipd_engine.averaging``.

The drug's :class:`~dosing.models.DrugModelStrategy` says how: its courses' pinned model (the default),
"select" (the best-fitting eligible model) or "average". The course's own model always takes part (its
domain was checked when the update started); the others are the published models whose hard domain fits the
patient now (``dosing.eligibility``). A model whose case cannot be built (a covariate it needs is missing)
is listed with the reason and gets no weight.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.roles import Role
from accounts.selectors import user_has_role
from audit import context
from dosing import adapters, eligibility
from dosing.models import DrugModelStrategy, TherapyCourse
from mipd_engine.averaging import ModelCandidate, average_recommend
from mipd_engine.case import parse_case
from models_catalog.models import Drug, ModelVersion

Mode = DrugModelStrategy.Mode


@dataclass(frozen=True)
class Strategy:
    mode: str
    prior_weights: dict[str, float]

    def prior_weight(self, model_id: str) -> float:
        return float(self.prior_weights.get(model_id, 1.0))


def strategy_of(drug: Drug) -> Strategy:
    """The drug's strategy; a drug without one uses its courses' pinned models."""
    row = DrugModelStrategy.objects.filter(drug=drug).first()
    if row is None:
        return Strategy(Mode.PINNED, {})
    return Strategy(row.mode, {str(k): float(v) for k, v in row.prior_weights.items()})


def _checked_weights(drug: Drug, prior_weights: dict[str, Any]) -> dict[str, float]:
    known = set(ModelVersion.objects.filter(drug=drug).values_list("model_id", flat=True))
    checked: dict[str, float] = {}
    for model_id, value in prior_weights.items():
        if model_id not in known:
            raise ValidationError({"prior_weights": [f"'{model_id}' is not a model of {drug.name}"]})
        try:
            weight = float(value)
        except (TypeError, ValueError):
            raise ValidationError({"prior_weights": [f"{model_id}: '{value}' is not a number"]}) from None
        if not (weight > 0 and weight < float("inf")):
            raise ValidationError({"prior_weights": [f"{model_id}: the prior weight must be positive"]})
        checked[model_id] = weight
    return checked


def strategy_set(
    *, drug: Drug, mode: str, prior_weights: dict[str, Any], reason: str, user: AbstractBaseUser | None
) -> DrugModelStrategy:
    """Set how the drug's models are used (curators only; ``None`` is the system); audited with the reason."""
    if user is None or not user_has_role(user=user, role=Role.MODEL_CURATOR):
        raise PermissionDenied("only model curators choose how a drug's models are used")
    if mode not in Mode.values:
        raise ValidationError({"mode": [f"choose one of: {', '.join(Mode.values)}"]})
    if not reason.strip():
        raise ValidationError(
            {"reason": ["say why (protocol, committee decision): it goes in the audit trail"]}
        )
    weights = _checked_weights(drug, prior_weights)
    with transaction.atomic(), context.acting_as(user), context.because(reason.strip()):
        row = DrugModelStrategy.objects.select_for_update().filter(drug=drug).first()
        row = row or DrugModelStrategy(drug=drug)
        row.mode, row.prior_weights, row.reason, row.updated_by = mode, weights, reason.strip(), user
        row.full_clean()
        row.save()
    return row


@dataclass(frozen=True)
class Excluded:
    label: str
    reason: str


def candidates_for(
    *, course: TherapyCourse, case: adapters.CourseCase, strategy: Strategy
) -> tuple[list[tuple[ModelVersion, adapters.CourseCase]], list[Excluded]]:
    """The course's model first, then every other published model of the drug that fits the patient now."""
    now = timezone.now()
    others = eligibility.eligible_alternatives(
        patient=course.patient,
        drug=course.drug,
        exclude=course.model_version,
        now=now,
        use_genotype=case.genotype_used,
    )
    chosen = [(course.model_version, case)]
    excluded: list[Excluded] = []
    for version in others:
        try:
            other = adapters.course_case(course, version=version)
        except adapters.CaseBuildError as exc:
            excluded.append(Excluded(_label(version), str(exc)))
            continue
        chosen.append((version, other))
    return chosen, excluded


def _label(version: ModelVersion) -> str:
    return f"{version.model_id}@{version.version}"


def recommend_for_course(
    *, course: TherapyCourse, case: adapters.CourseCase, strategy: Strategy
) -> dict[str, Any]:
    """The engine's recommendation document from the drug's models combined by ``strategy`` (select or
    average), with ``averaging``: per model its weight, prediction and why; the models left out and why."""
    chosen, excluded = candidates_for(course=course, case=case, strategy=strategy)
    candidates = [
        ModelCandidate(
            label=_label(version),
            case=parse_case(model_case.document),
            prior_weight=strategy.prior_weight(version.model_id),
        )
        for version, model_case in chosen
    ]
    document = average_recommend(candidates, method=strategy.mode, forecast=True)
    rows = document["averaging"]["models"]
    for row, (version, model_case) in zip(rows, chosen, strict=True):
        row["title"] = version.title
        row["citation"] = version.citation_text
        row["inputs_sha256"] = model_case.inputs_sha256
        row["seed"] = model_case.seed
        row["domain"] = "the course's model" if version.pk == course.model_version_id else "hard domain fits"
    document["averaging"]["excluded"] = [{"label": e.label, "reason": e.reason} for e in excluded]
    return document
