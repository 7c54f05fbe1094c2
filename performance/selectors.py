"""Reads of the performance app: who may see the page, what it shows, and the model card's section."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.db.models import Count, Max

from accounts.roles import Role
from accounts.selectors import user_roles
from models_catalog.models import ModelVersion
from performance import sequential
from performance.models import CusumTrack, PerformanceAlert, PerformanceSummary, ProspectiveScore
from performance.services import alert_message
from performance.subgroups import DIMENSION_LABELS

VIEWER_ROLES = frozenset({Role.MODEL_CURATOR, Role.PHARMACIST})


def may_view(*, user: AbstractBaseUser | AnonymousUser) -> bool:
    """Curators and pharmacists see the performance page (aggregates only: no patient is named)."""
    return bool(user_roles(user=user) & VIEWER_ROLES)


def versions_scored() -> list[dict[str, Any]]:
    """Every model version with scored levels: counts, newest score, open alerts."""
    counts = (
        ProspectiveScore.objects.values("model_version")
        .annotate(n=Count("pk"), newest=Max("scored_at"))
        .order_by("model_version")
    )
    alerts = dict(
        PerformanceAlert.objects.filter(status=PerformanceAlert.Status.OPEN)
        .values_list("model_version")
        .annotate(n=Count("pk"))
    )
    versions = ModelVersion.objects.select_related("drug").in_bulk([row["model_version"] for row in counts])
    return [
        {
            "version": versions[row["model_version"]],
            "n_levels": row["n"],
            "newest": row["newest"],
            "open_alerts": alerts.get(row["model_version"], 0),
        }
        for row in counts
    ]


def open_alerts(*, version: ModelVersion) -> list[dict[str, Any]]:
    return [
        {
            "alert": alert,
            "message": alert_message(alert),
            "test": sequential.TEST_LABELS[alert.test],
            "dimension": DIMENSION_LABELS[alert.dimension],
        }
        for alert in PerformanceAlert.objects.filter(
            model_version=version, status=PerformanceAlert.Status.OPEN
        ).select_related("model_version")
    ]


def performance_page(*, version: ModelVersion) -> dict[str, Any]:
    """The stored figures (as of the newest score they include), the sequential tests and the alerts."""
    summary = PerformanceSummary.objects.filter(model_version=version).first()
    newer = ProspectiveScore.objects.filter(
        model_version=version, pk__gt=summary.last_score_id if summary else 0
    ).count()
    tracks = [
        {
            "dimension": DIMENSION_LABELS[t.dimension],
            "band": t.band,
            "n_levels": t.n_levels,
            "statistics": [
                {
                    "test": sequential.TEST_LABELS[name],
                    "value": getattr(t, name),
                    "fraction": min(1.0, getattr(t, name) / sequential.THRESHOLD),
                }
                for name in sequential.TESTS
            ],
        }
        for t in CusumTrack.objects.filter(model_version=version).order_by("dimension", "band")
    ]
    groups = summary.data["groups"] if summary else []
    return {
        "version": version,
        "summary": summary,
        "groups": groups,
        "unit": summary.data.get("unit", "") if summary else "",
        "newer": newer,
        "tracks": tracks,
        "alerts": open_alerts(version=version),
        "closed_alerts": PerformanceAlert.objects.filter(
            model_version=version, status=PerformanceAlert.Status.CLOSED
        ).select_related("closed_by")[:20],
        "threshold": sequential.THRESHOLD,
        "false_alarm_rate": sequential.FALSE_ALARM_RATE,
        "false_alarm_horizon": sequential.FALSE_ALARM_HORIZON,
        "plot": {
            "groups": [
                {
                    "label": "All levels" if g["dimension"] == "all" else f"{g['label']}: {g['band']}",
                    "n": g["n_levels"],
                    "mean_relative_error_pct": g["mean_relative_error_pct"],
                    "coverage_50": g["coverage_50"],
                    "coverage_90": g["coverage_90"],
                }
                for g in groups
            ],
            "pit_counts": groups[0]["pit_counts"] if groups else [],
        },
    }


def card_section(*, version: ModelVersion, user: AbstractBaseUser) -> dict[str, Any]:
    """What the model card shows of the local performance: overall figures and open alerts, to everyone."""
    summary = PerformanceSummary.objects.filter(model_version=version).first()
    overall = summary.data["groups"][0] if summary and summary.data.get("groups") else None
    return {
        "version": version,
        "overall": overall,
        "unit": summary.data.get("unit", "") if summary else "",
        "computed_at": summary.computed_at if summary else None,
        "alerts": open_alerts(version=version),
        "may_view": may_view(user=user),
    }
