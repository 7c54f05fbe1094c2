from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and roles"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import Group
        from django_otp.plugins.otp_totp.models import TOTPDevice
        from knox.models import AuthToken

        from accounts import schema, signals  # noqa: F401 (schema: registers the OpenAPI extension)
        from audit.registry import register

        user_model = get_user_model()
        # Users and roles are in the audit trail: a role given by SQL shows as a row outside the trail.
        # Password hashes and TOTP keys are covered by the row hash but never shown; sign-in bookkeeping
        # (last login, a device's last time step and failure counter) is left out.
        register(user_model, redact=("password",), ignore=("last_login",))
        register(user_model.groups.through)
        register(Group)
        register(
            TOTPDevice,
            redact=("key",),
            ignore=(
                "last_t",
                "drift",
                "throttling_failure_timestamp",
                "throttling_failure_count",
                "last_used_at",
            ),
        )
        register(AuthToken)
        signals.connect()
