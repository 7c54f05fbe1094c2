"""Celery task of the audit app: one verification run (ids in, one service call)."""

from celery import shared_task

from audit.services import verification_run


@shared_task(name="audit.verify_chain", ignore_result=True)
def verify_chain(*, user_id: int | None = None) -> None:
    from django.contrib.auth import get_user_model

    user = get_user_model()._default_manager.filter(pk=user_id).first() if user_id else None
    verification_run(user=user)
