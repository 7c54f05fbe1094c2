"""Celery task of the performance app: an id in, one service call, safe to run twice."""

from celery import shared_task

from models_catalog.models import ModelVersion
from performance.services import summary_refresh


@shared_task(name="performance.refresh_summary", ignore_result=True)
def refresh_summary(*, model_version_id: int) -> None:
    """Recompute a model version's performance figures, unless they already include its newest score."""
    version = ModelVersion.objects.filter(pk=model_version_id).first()
    if version is not None:
        summary_refresh(model_version=version, only_if_behind=True)
