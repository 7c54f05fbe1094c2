"""API tokens end with the password: a changed password or a deactivated account revokes them all; a
changed group or membership empties the request's role cache (``accounts.selectors``)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save

from accounts.selectors import forget_cached_roles


def _remember_credentials(sender: Any, instance: Any, raw: bool = False, **_: Any) -> None:
    if instance.pk is None:
        instance._credentials_before = None
        return
    instance._credentials_before = (
        sender._base_manager.filter(pk=instance.pk).values_list("password", "is_active").first()
    )


def _revoke_tokens_on_credential_change(sender: Any, instance: Any, created: bool = False, **_: Any) -> None:
    before = getattr(instance, "_credentials_before", None)
    if created or before is None:
        return
    password, active = before
    if password != instance.password or (active and not instance.is_active):
        from knox.models import AuthToken

        AuthToken.objects.filter(user=instance).delete()


def _forget_roles(**_: Any) -> None:
    forget_cached_roles()


def connect() -> None:
    user_model = get_user_model()
    # Memberships change through the manager (``user.groups.add``, ``group.user_set.remove``): m2m_changed.
    m2m_changed.connect(_forget_roles, sender=user_model.groups.through, dispatch_uid="accounts.forget_roles")
    post_save.connect(_forget_roles, sender=Group, dispatch_uid="accounts.forget_roles_group_saved")
    post_delete.connect(_forget_roles, sender=Group, dispatch_uid="accounts.forget_roles_group_deleted")
    pre_save.connect(_remember_credentials, sender=user_model, dispatch_uid="accounts.remember_credentials")
    post_save.connect(
        _revoke_tokens_on_credential_change, sender=user_model, dispatch_uid="accounts.revoke_tokens"
    )
